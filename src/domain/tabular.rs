//! Tabular files as spreadsheets read and write them: the character encodings of a CSV file
//! (UTF-8, UTF-8 with a byte order mark, CP932 for Excel on Japanese Windows) and the cell
//! neutralisation that keeps a spreadsheet from evaluating text as a formula. Exports write
//! with [`encode`] and [`text_cell`]; imports read back with [`decode`] and [`plain_cell`].

use encoding_rs::{DecoderResult, EncoderResult, SHIFT_JIS};

crate::domain::closed_set::closed_set! {
    /// The character encoding of a CSV file.
    pub enum TextEncoding {
        /// UTF-8 without a byte order mark.
        Utf8 = "utf-8",
        /// UTF-8 starting with the byte order mark EF BB BF, which Excel needs to read UTF-8.
        Utf8Bom = "utf-8-bom",
        /// Windows code page 932 (Shift_JIS with the NEC and IBM extensions).
        Cp932 = "cp932",
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One character an encoding cannot hold: 1-based line in the text, 1-based character
/// column, the char.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unencodable {
    pub line: usize,
    pub column: usize,
    pub character: char,
}

/// Encodes text. `Utf8Bom` prepends EF BB BF. `Cp932`: every character CP932 cannot hold is
/// reported (up to `limit` of them, at least one), never replaced — a spreadsheet user would
/// not notice a `?` in place of a name. `encoding_rs::SHIFT_JIS` is WHATWG Shift_JIS, which
/// encodes exactly as CP932 does.
pub fn encode(
    text: &str,
    encoding: TextEncoding,
    limit: usize,
) -> Result<Vec<u8>, Vec<Unencodable>> {
    match encoding {
        TextEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
        TextEncoding::Utf8Bom => {
            let mut out = Vec::with_capacity(BOM.len() + text.len());
            out.extend_from_slice(BOM);
            out.extend_from_slice(text.as_bytes());
            Ok(out)
        }
        TextEncoding::Cp932 => encode_cp932(text, limit.max(1)),
    }
}

fn encode_cp932(text: &str, limit: usize) -> Result<Vec<u8>, Vec<Unencodable>> {
    let mut encoder = SHIFT_JIS.new_encoder();
    // CP932 needs at most two bytes for a character UTF-8 spells in one to four.
    let mut out = Vec::with_capacity(text.len() + text.len() / 2 + 16);
    let mut errors = Vec::new();
    let mut locator = Locator::new(text);
    let mut start = 0;
    loop {
        let rest = text.get(start..).unwrap_or_default();
        let (result, read) =
            encoder.encode_from_utf8_to_vec_without_replacement(rest, &mut out, true);
        start += read;
        match result {
            EncoderResult::InputEmpty => break,
            EncoderResult::OutputFull => out.reserve(rest.len().saturating_sub(read) * 2 + 16),
            EncoderResult::Unmappable(character) => {
                let (line, column) = locator.locate(start - character.len_utf8());
                errors.push(Unencodable {
                    line,
                    column,
                    character,
                });
                if errors.len() >= limit {
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Line and column of byte offsets met in increasing order, counted once over the text.
struct Locator<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Locator {
            text,
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    fn locate(&mut self, offset: usize) -> (usize, usize) {
        for c in self
            .text
            .get(self.offset..offset)
            .unwrap_or_default()
            .chars()
        {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.offset = offset.max(self.offset);
        (self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Bytes that are not valid in the declared (or detected) encoding; byte offset of the
    /// first bad byte in the file.
    Malformed {
        encoding: TextEncoding,
        offset: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed { encoding, offset } => {
                write!(f, "the bytes at offset {offset} are not valid {encoding}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a file to text and says which encoding it was in.
///
/// A UTF-8 byte order mark means `Utf8Bom` (the mark removed) whatever was declared, except
/// when `Cp932` was declared: then the file is refused (`Malformed` at 0), since a CP932 file
/// cannot start with those bytes. Declared `Utf8` or `Utf8Bom`: the bytes must be UTF-8, and
/// the answer is `Utf8Bom` only when the mark is there. Declared `Cp932`: the bytes must
/// decode without a single error. Nothing declared: UTF-8 when the bytes are valid UTF-8,
/// else CP932 when they decode strictly, else `Malformed { Utf8, <first invalid UTF-8 byte> }`.
pub fn decode(
    bytes: &[u8],
    declared: Option<TextEncoding>,
) -> Result<(String, TextEncoding), DecodeError> {
    if let Some(body) = bytes.strip_prefix(BOM) {
        if declared == Some(TextEncoding::Cp932) {
            return Err(DecodeError::Malformed {
                encoding: TextEncoding::Cp932,
                offset: 0,
            });
        }
        return decode_utf8(body, TextEncoding::Utf8Bom, BOM.len());
    }
    match declared {
        Some(TextEncoding::Utf8 | TextEncoding::Utf8Bom) => {
            decode_utf8(bytes, TextEncoding::Utf8, 0).map_err(
                |DecodeError::Malformed { offset, .. }| DecodeError::Malformed {
                    encoding: declared.unwrap_or(TextEncoding::Utf8),
                    offset,
                },
            )
        }
        Some(TextEncoding::Cp932) => decode_cp932(bytes).map(|text| (text, TextEncoding::Cp932)),
        None => match decode_utf8(bytes, TextEncoding::Utf8, 0) {
            Ok(decoded) => Ok(decoded),
            Err(utf8_error) => decode_cp932(bytes)
                .map(|text| (text, TextEncoding::Cp932))
                .map_err(|_| utf8_error),
        },
    }
}

fn decode_utf8(
    bytes: &[u8],
    encoding: TextEncoding,
    skipped: usize,
) -> Result<(String, TextEncoding), DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((text.to_owned(), encoding)),
        Err(e) => Err(DecodeError::Malformed {
            encoding,
            offset: skipped + e.valid_up_to(),
        }),
    }
}

fn decode_cp932(bytes: &[u8]) -> Result<String, DecodeError> {
    let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(3));
    let mut text = String::with_capacity(capacity);
    let mut start = 0;
    loop {
        let rest = bytes.get(start..).unwrap_or_default();
        let (result, read) = decoder.decode_to_string_without_replacement(rest, &mut text, true);
        start += read;
        match result {
            DecoderResult::InputEmpty => return Ok(text),
            DecoderResult::OutputFull => text.reserve(rest.len().saturating_sub(read) * 3 + 16),
            DecoderResult::Malformed(bad, after) => {
                return Err(DecodeError::Malformed {
                    encoding: TextEncoding::Cp932,
                    offset: start - usize::from(after) - usize::from(bad),
                });
            }
        }
    }
}

/// First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection):
/// `=`, `+`, `-`, `@`, tab, carriage return.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Text as a cell no spreadsheet evaluates: a leading formula character gets an apostrophe,
/// which Excel and LibreOffice show as a text marker rather than part of the value.
pub fn text_cell(text: String) -> String {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text
    }
}

/// The inverse of [`text_cell`] for imports: `'=x` → `=x` (an apostrophe followed by a
/// formula character is dropped); anything else is returned unchanged.
pub fn plain_cell(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAPANESE: &str = "申請番号,件名\r\nSD-1,ﾃｽﾄ用ｶﾀｶﾅと①の件\r\n";

    #[test]
    fn cp932_round_trips_japanese_text() {
        let bytes = encode(JAPANESE, TextEncoding::Cp932, 10).unwrap();
        // Half-width katakana is one byte in CP932; ① is the NEC extension 0x8740.
        assert!(bytes.windows(2).any(|w| w == [0x87, 0x40]));
        assert!(bytes.contains(&0xC3)); // ﾃ
        assert_eq!(
            decode(&bytes, Some(TextEncoding::Cp932)).unwrap(),
            (JAPANESE.to_owned(), TextEncoding::Cp932)
        );
        assert_eq!(
            decode(&bytes, None).unwrap(),
            (JAPANESE.to_owned(), TextEncoding::Cp932)
        );
    }

    #[test]
    fn characters_outside_cp932_are_reported_where_they_are() {
        let text = "a,b\r\nx❤y,吉\r\n\"𠮷田\n❤\",z";
        let errors = encode(text, TextEncoding::Cp932, 10).unwrap_err();
        assert_eq!(
            errors,
            vec![
                Unencodable {
                    line: 2,
                    column: 2,
                    character: '❤'
                },
                Unencodable {
                    line: 3,
                    column: 2,
                    character: '𠮷'
                },
                Unencodable {
                    line: 4,
                    column: 1,
                    character: '❤'
                },
            ]
        );
        let first = encode(text, TextEncoding::Cp932, 1).unwrap_err();
        assert_eq!(first.len(), 1);
        assert_eq!(encode(text, TextEncoding::Cp932, 0).unwrap_err().len(), 1);
    }

    #[test]
    fn utf8_encodings_hold_everything() {
        let text = "❤𠮷";
        assert_eq!(
            encode(text, TextEncoding::Utf8, 1).unwrap(),
            text.as_bytes()
        );
        let with_bom = encode(text, TextEncoding::Utf8Bom, 1).unwrap();
        assert_eq!(&with_bom[..3], [0xEF, 0xBB, 0xBF]);
        assert_eq!(&with_bom[3..], text.as_bytes());
    }

    #[test]
    fn a_byte_order_mark_is_detected_and_removed() {
        let bytes = encode("件名\r\n", TextEncoding::Utf8Bom, 1).unwrap();
        for declared in [None, Some(TextEncoding::Utf8), Some(TextEncoding::Utf8Bom)] {
            assert_eq!(
                decode(&bytes, declared).unwrap(),
                ("件名\r\n".to_owned(), TextEncoding::Utf8Bom)
            );
        }
        assert_eq!(
            decode(&bytes, Some(TextEncoding::Cp932)),
            Err(DecodeError::Malformed {
                encoding: TextEncoding::Cp932,
                offset: 0
            })
        );
        assert_eq!(
            decode("件名".as_bytes(), Some(TextEncoding::Utf8Bom)).unwrap(),
            ("件名".to_owned(), TextEncoding::Utf8)
        );
    }

    #[test]
    fn plain_utf8_is_preferred_when_nothing_is_declared() {
        assert_eq!(
            decode("件名,①".as_bytes(), None).unwrap(),
            ("件名,①".to_owned(), TextEncoding::Utf8)
        );
        assert_eq!(
            decode(b"", None).unwrap(),
            (String::new(), TextEncoding::Utf8)
        );
    }

    #[test]
    fn malformed_input_names_the_first_bad_byte() {
        // 0x85 0x40 is an unassigned CP932 row, and 0x85 cannot start UTF-8 either.
        let bytes = b"ab\x85\x40cd";
        assert_eq!(
            decode(bytes, None),
            Err(DecodeError::Malformed {
                encoding: TextEncoding::Utf8,
                offset: 2
            })
        );
        assert_eq!(
            decode(bytes, Some(TextEncoding::Cp932)),
            Err(DecodeError::Malformed {
                encoding: TextEncoding::Cp932,
                offset: 2
            })
        );
        assert_eq!(
            decode(b"abc\xA0", Some(TextEncoding::Cp932)),
            Err(DecodeError::Malformed {
                encoding: TextEncoding::Cp932,
                offset: 3
            })
        );
        // A lead byte at the very end is cut off.
        let mut cut = encode("件名", TextEncoding::Cp932, 1).unwrap();
        cut.truncate(3);
        assert_eq!(
            decode(&cut, Some(TextEncoding::Cp932)),
            Err(DecodeError::Malformed {
                encoding: TextEncoding::Cp932,
                offset: 2
            })
        );
        // CP932 that is declared UTF-8 is refused at its first non-ASCII byte.
        let sjis = encode("id,件名", TextEncoding::Cp932, 1).unwrap();
        assert_eq!(
            decode(&sjis, Some(TextEncoding::Utf8)),
            Err(DecodeError::Malformed {
                encoding: TextEncoding::Utf8,
                offset: 3
            })
        );
        assert_eq!(
            decode(b"\xEF\xBB\xBFok\xFF", None),
            Err(DecodeError::Malformed {
                encoding: TextEncoding::Utf8Bom,
                offset: 5
            })
        );
    }

    #[test]
    fn formula_cells_round_trip() {
        for start in FORMULA_STARTS {
            let value = format!("{start}cmd|' /C calc'!A0");
            let cell = text_cell(value.clone());
            assert_eq!(cell, format!("'{value}"));
            assert_eq!(plain_cell(&cell), value);
        }
        assert_eq!(text_cell("plain".to_owned()), "plain");
        assert_eq!(plain_cell("plain"), "plain");
        assert_eq!(plain_cell("'quoted"), "'quoted");
        assert_eq!(plain_cell("'"), "'");
    }
}
