//! Keyword search tokens, the same for every backend.
//!
//! Text is normalized (NFKC, lower case), so full-width `ＳＥＲＶＥＲ` and half-width `ｻｰﾊﾞ` find
//! `server` and `サーバ`. Then:
//! - runs of letters and digits outside the CJK scripts become whole words (`vpn`, `502`);
//! - runs of CJK characters (kanji, kana, Hangul) become their overlapping bigrams
//!   (`サーバ障害` → `サー`, `ーバ`, `バ障`, `障害`); a lone CJK character is a token of its own.
//!
//! A query term matches a text holding every token of the term. A two-character Japanese
//! word is exactly one bigram, so `障害` is a single index lookup. Longer CJK terms match
//! texts that hold all their bigrams, which is what pg_bigm does before its recheck; we skip
//! the recheck, so a rare false positive (the bigrams present but apart) is possible.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

/// Longest word token kept, in characters; longer words are cut (still found by a prefix of
/// that length).
pub const MAX_WORD_CHARS: usize = 64;
/// Most distinct tokens kept per indexed text, so a huge field cannot swell the index.
pub const MAX_TOKENS_PER_TEXT: usize = 4096;
/// Most terms in one query.
pub const MAX_QUERY_TERMS: usize = 8;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana (with the prolonged sound mark)
        | 0x31F0..=0x31FF    // katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // compatibility ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0x20000..=0x2FA1F  // supplementary ideographs
        | 0x3005 | 0x3006    // 々 〆
    )
}

#[derive(PartialEq, Clone, Copy)]
enum Run {
    None,
    Word,
    Cjk,
}

/// Appends the tokens of `text` to `out` (bounded by [`MAX_TOKENS_PER_TEXT`]).
pub fn tokenize_into(text: &str, out: &mut BTreeSet<String>) {
    let normalized: String = text.nfkc().flat_map(char::to_lowercase).collect();
    let mut run = Run::None;
    let mut current: Vec<char> = Vec::new();
    let flush = |run: Run, chars: &mut Vec<char>, out: &mut BTreeSet<String>| {
        match run {
            Run::Word => {
                out.insert(chars.iter().take(MAX_WORD_CHARS).collect());
            }
            Run::Cjk if chars.len() == 1 => {
                out.insert(chars.iter().collect());
            }
            Run::Cjk => {
                for pair in chars.windows(2) {
                    if out.len() >= MAX_TOKENS_PER_TEXT {
                        break;
                    }
                    out.insert(pair.iter().collect());
                }
            }
            Run::None => {}
        }
        chars.clear();
    };
    for c in normalized.chars() {
        if out.len() >= MAX_TOKENS_PER_TEXT {
            return;
        }
        let kind = if is_cjk(c) {
            Run::Cjk
        } else if c.is_alphanumeric() {
            Run::Word
        } else {
            Run::None
        };
        if kind != run {
            flush(run, &mut current, out);
            run = kind;
        }
        if kind != Run::None {
            current.push(c);
        }
    }
    if out.len() < MAX_TOKENS_PER_TEXT {
        flush(run, &mut current, out);
    }
}

/// The tokens of one text.
pub fn tokenize(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    tokenize_into(text, &mut out);
    out
}

/// A parsed `q`: every token must be present. Empty when the query holds no word at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub tokens: Vec<String>,
}

/// Why a query cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Nothing searchable (only punctuation or spaces).
    Empty,
    /// More than [`MAX_QUERY_TERMS`] terms.
    TooManyTerms,
}

impl SearchQuery {
    pub fn parse(q: &str) -> Result<Self, QueryError> {
        let terms: Vec<&str> = q.split_whitespace().collect();
        if terms.len() > MAX_QUERY_TERMS {
            return Err(QueryError::TooManyTerms);
        }
        let mut tokens = BTreeSet::new();
        for term in terms {
            tokenize_into(term, &mut tokens);
        }
        if tokens.is_empty() {
            return Err(QueryError::Empty);
        }
        // Most selective first is the planner's job; a stable order keeps SQL cacheable.
        Ok(Self {
            tokens: tokens.into_iter().take(MAX_QUERY_TERMS * 4).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        tokenize(text).into_iter().collect()
    }

    #[test]
    fn japanese_runs_become_bigrams() {
        assert_eq!(tokens("障害"), ["障害"]);
        assert_eq!(tokens("サーバ障害"), ["サー", "バ障", "ーバ", "障害"]);
        assert_eq!(tokens("申請を出す"), ["を出", "出す", "申請", "請を"]);
    }

    #[test]
    fn words_are_lower_case_and_split_on_punctuation() {
        assert_eq!(
            tokens("VPN down: error 502!"),
            ["502", "down", "error", "vpn"]
        );
        assert_eq!(tokens("mail-server"), ["mail", "server"]);
    }

    #[test]
    fn mixed_text_splits_at_script_boundaries() {
        assert_eq!(
            tokens("VPN接続が不安定"),
            ["vpn", "が不", "不安", "安定", "接続", "続が"]
        );
    }

    #[test]
    fn width_variants_normalize() {
        assert_eq!(tokens("ＳＥＲＶＥＲ"), ["server"]);
        assert_eq!(tokens("ｻｰﾊﾞ"), tokens("サーバ"));
    }

    #[test]
    fn a_lone_kanji_is_a_token() {
        assert_eq!(tokens("旧 system"), ["system", "旧"]);
    }

    #[test]
    fn a_two_character_query_is_one_lookup() {
        assert_eq!(SearchQuery::parse("障害").unwrap().tokens, ["障害"]);
        assert_eq!(
            SearchQuery::parse("  VPN  障害 ").unwrap().tokens,
            ["vpn", "障害"]
        );
        assert_eq!(SearchQuery::parse(" ,. "), Err(QueryError::Empty));
        assert_eq!(
            SearchQuery::parse("a b c d e f g h i"),
            Err(QueryError::TooManyTerms)
        );
    }

    #[test]
    fn the_index_is_bounded() {
        let long: String = (0..20_000u32)
            .map(|i| char::from_u32(0x4E00 + i).unwrap())
            .collect();
        assert_eq!(tokenize(&long).len(), MAX_TOKENS_PER_TEXT);
        let word = "x".repeat(500);
        assert_eq!(tokens(&word)[0].chars().count(), MAX_WORD_CHARS);
    }

    proptest::proptest! {
        /// Any two consecutive CJK characters of a text, searched for, find the text; and
        /// tokenizing never panics on arbitrary input.
        #[test]
        fn every_cjk_pair_of_a_text_finds_it(
            text in "[a-zA-Z0-9 ぁ-んァ-ン一-龥ｱ-ﾝ、。!-]{0,60}",
            at in 0usize..60,
        ) {
            let indexed = tokenize(&text);
            let normalized: Vec<char> = text.nfkc().flat_map(char::to_lowercase).collect();
            if at + 1 < normalized.len() && is_cjk(normalized[at]) && is_cjk(normalized[at + 1]) {
                let pair: String = normalized[at..at + 2].iter().collect();
                let query = SearchQuery::parse(&pair).unwrap();
                proptest::prop_assert!(query.tokens.iter().all(|t| indexed.contains(t)));
            }
        }
    }

    #[test]
    fn query_tokens_are_found_in_the_text_they_come_from() {
        let text = "メールサーバに接続できない障害が発生 (SMTP timeout)";
        let indexed = tokenize(text);
        for q in ["障害", "サーバ", "接続", "smtp", "Timeout", "メールサーバ"] {
            let query = SearchQuery::parse(q).unwrap();
            assert!(query.tokens.iter().all(|t| indexed.contains(t)), "{q}");
        }
        let query = SearchQuery::parse("申請").unwrap();
        assert!(!query.tokens.iter().all(|t| indexed.contains(t)));
    }
}
