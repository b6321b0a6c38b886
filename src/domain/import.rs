//! Bulk import, the pure part (docs/import-export.md): reading a decoded CSV or JSON Lines
//! file into rows of named cells, and turning a cell's text into the JSON value a field of a
//! given type takes (dates written the Japanese way, full-width digits, `;`-joined lists).

use std::fmt;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use serde_json::{Number, Value};
use unicode_normalization::UnicodeNormalization;

use super::tabular::plain_cell;
use super::template::FieldType;

crate::domain::closed_set::closed_set! {
    /// What an import writes.
    pub enum ImportTarget {
        /// Tickets of one template (`template`).
        Tickets = "tickets",
        /// Records of one library (`library`).
        LibraryRecords = "library_records",
        /// Users of the tenant.
        Users = "users",
        /// Items of one master (`master`).
        MasterItems = "master_items",
    }
}

crate::domain::closed_set::closed_set! {
    /// What an import does with each row.
    pub enum ImportMode {
        /// Every row is new.
        Create = "create",
        /// A row whose key matches an existing one updates it; the others are created.
        Upsert = "upsert",
        /// Every row must match an existing one by its key.
        Update = "update",
    }
}

crate::domain::closed_set::closed_set! {
    /// The layout of an import file.
    pub enum SourceFormat {
        /// A header row, then one row per item.
        Csv = "csv",
        /// One JSON object per line.
        Jsonl = "jsonl",
        /// One JSON array of objects.
        Json = "json",
    }
}

/// One data row of a file: its number (from 1, header not counted), the line it starts on,
/// and its cells by column name, in column order. A CSV cell is a string; a JSON cell any
/// value.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub number: i64,
    pub line: i64,
    /// Column names are shared by every row of a file (one allocation per column, not per
    /// cell: a 100,000-row file is held whole while a job turn runs).
    pub cells: Vec<(Arc<str>, Value)>,
}

impl SourceRow {
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.cells
            .iter()
            .find(|(c, _)| &**c == column)
            .map(|(_, v)| v)
    }
}

/// A file that cannot be read as rows; nothing of it is imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    Empty,
    /// A row with another number of cells than the header.
    Ragged {
        line: u64,
        expected: u64,
        found: u64,
    },
    /// A header cell that is empty or repeats an earlier one.
    BadHeader {
        column: String,
        reason: &'static str,
    },
    /// Not CSV (an unterminated quote, …) or not JSON.
    Syntax {
        line: u64,
        message: String,
    },
    /// A JSON line that is not an object.
    NotObject {
        line: u64,
    },
    TooManyRows {
        limit: usize,
    },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Empty => write!(f, "the file has no header row"),
            SourceError::Ragged {
                line,
                expected,
                found,
            } => write!(
                f,
                "line {line} has {found} cells where the header has {expected}"
            ),
            SourceError::BadHeader { column, reason } => {
                write!(f, "header column {column:?}: {reason}")
            }
            SourceError::Syntax { line, message } => write!(f, "line {line}: {message}"),
            SourceError::NotObject { line } => write!(f, "line {line} is not a JSON object"),
            SourceError::TooManyRows { limit } => {
                write!(f, "the file has more than {limit} data rows")
            }
        }
    }
}

/// Reads CSV text (decoded, BOM removed) with a header row. Header cells are trimmed; a cell
/// exported with a formula-neutralising apostrophe (`'=x`) reads back as `=x`, and no cell is
/// ever evaluated. Rows with only empty cells are skipped.
pub fn read_csv(text: &str, max_rows: usize) -> Result<Vec<SourceRow>, SourceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&e))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.is_empty() || headers.iter().all(String::is_empty) {
        return Err(SourceError::Empty);
    }
    check_header(&headers)?;
    let headers: Vec<Arc<str>> = headers.into_iter().map(Arc::from).collect();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&e)),
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() >= max_rows {
            return Err(SourceError::TooManyRows { limit: max_rows });
        }
        // The reader counts a line when its terminator ends a record, so a record's position
        // is the line before the one it starts on.
        let line = record.position().map_or(0, |p| p.line()) + 1;
        let cells = headers
            .iter()
            .zip(record.iter())
            .map(|(h, c)| (Arc::clone(h), Value::String(plain_cell(c).to_owned())))
            .collect();
        rows.push(SourceRow {
            number: i64::try_from(rows.len()).unwrap_or(i64::MAX) + 1,
            line: i64::try_from(line).unwrap_or(i64::MAX),
            cells,
        });
    }
    Ok(rows)
}

fn check_header(headers: &[String]) -> Result<(), SourceError> {
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            return Err(SourceError::BadHeader {
                column: format!("#{}", i + 1),
                reason: "is empty",
            });
        }
        if headers[..i].contains(h) {
            return Err(SourceError::BadHeader {
                column: h.clone(),
                reason: "appears twice",
            });
        }
    }
    Ok(())
}

fn csv_error(e: &csv::Error) -> SourceError {
    let line = e.position().map_or(0, csv::Position::line);
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => SourceError::Ragged {
            line,
            expected: *expected_len,
            found: *len,
        },
        csv::ErrorKind::Utf8 { .. } => SourceError::Syntax {
            line,
            message: "not valid text in the file's encoding".to_owned(),
        },
        _ => SourceError::Syntax {
            line,
            message: "not valid CSV".to_owned(),
        },
    }
}

/// Reads JSON Lines: one object per non-blank line.
pub fn read_jsonl(text: &str, max_rows: usize) -> Result<Vec<SourceRow>, SourceError> {
    let mut objects = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = u64::try_from(index).unwrap_or(u64::MAX) + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if objects.len() >= max_rows {
            return Err(SourceError::TooManyRows { limit: max_rows });
        }
        let value: Value = serde_json::from_str(raw).map_err(|e| SourceError::Syntax {
            line,
            message: format!("not JSON: {}", e.classify_message()),
        })?;
        objects.push((line, value));
    }
    read_objects(objects)
}

/// Reads a JSON array of objects (`line` is the object's position in the array, from 1).
pub fn read_json_array(text: &str, max_rows: usize) -> Result<Vec<SourceRow>, SourceError> {
    let values: Vec<Value> = serde_json::from_str(text).map_err(|e| SourceError::Syntax {
        line: u64::try_from(e.line()).unwrap_or(0),
        message: format!("not a JSON array of objects: {}", e.classify_message()),
    })?;
    if values.len() > max_rows {
        return Err(SourceError::TooManyRows { limit: max_rows });
    }
    read_objects(
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (u64::try_from(i).unwrap_or(u64::MAX) + 1, v))
            .collect(),
    )
}

trait Classify {
    fn classify_message(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_message(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "a syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "it ends early",
        }
    }
}

/// Rows from JSON objects (`(line, object)`): each key is a column, except `fields`, whose
/// entries become `field.<key>` columns (the shape the API and the JSON Lines export use).
pub fn read_objects(objects: Vec<(u64, Value)>) -> Result<Vec<SourceRow>, SourceError> {
    let mut rows = Vec::with_capacity(objects.len());
    for (index, (line, value)) in objects.into_iter().enumerate() {
        let Value::Object(object) = value else {
            return Err(SourceError::NotObject { line });
        };
        let mut cells = Vec::with_capacity(object.len());
        for (key, value) in object {
            match (key.as_str(), value) {
                ("fields", Value::Object(fields)) => {
                    cells.extend(
                        fields
                            .into_iter()
                            .map(|(k, v)| (Arc::from(format!("field.{k}")), v)),
                    );
                }
                (_, value) => cells.push((Arc::from(key), value)),
            }
        }
        rows.push(SourceRow {
            number: i64::try_from(index).unwrap_or(i64::MAX) + 1,
            line: i64::try_from(line).unwrap_or(i64::MAX),
            cells,
        });
    }
    Ok(rows)
}

/// Whether a cell holds nothing: null, or text that is empty after trimming.
pub fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Text for lenient parsing: NFKC (full-width digits and signs become ASCII) and trimmed.
fn normal(raw: &str) -> String {
    raw.nfkc().collect::<String>().trim().to_owned()
}

/// A date in ISO form from `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, `YYYYMMDD` or
/// `YYYY年M月D日` (one-digit months and days too), or with an explicit chrono `format`.
pub fn parse_date(raw: &str, format: Option<&str>) -> Option<String> {
    let text = normal(raw);
    let date = match format {
        Some(format) => NaiveDate::parse_from_str(&text, format).ok()?,
        None => {
            let unified = text
                .replace(['/', '.'], "-")
                .replace(['年', '月'], "-")
                .replace('日', "");
            NaiveDate::parse_from_str(&unified, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(&text, "%Y%m%d"))
                .ok()?
        }
    };
    Some(date.format("%Y-%m-%d").to_string())
}

/// An RFC 3339 instant; or a local `YYYY-MM-DD HH:MM[:SS]` (any of the date spellings of
/// [`parse_date`]), or one in an explicit chrono `format`, read in `zone`.
pub fn parse_datetime<Z: TimeZone>(raw: &str, format: Option<&str>, zone: &Z) -> Option<String> {
    let text = normal(raw);
    if format.is_none()
        && let Ok(at) = chrono::DateTime::parse_from_rfc3339(&text)
    {
        return Some(
            at.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
    }
    let local = match format {
        Some(format) => NaiveDateTime::parse_from_str(&text, format).ok()?,
        None => {
            let unified = text.replace(['/', '.'], "-").replace('T', " ");
            NaiveDateTime::parse_from_str(&unified, "%Y-%m-%d %H:%M:%S")
                .or_else(|_| NaiveDateTime::parse_from_str(&unified, "%Y-%m-%d %H:%M"))
                .ok()?
        }
    };
    let at = zone.from_local_datetime(&local).earliest()?;
    Some(
        at.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

/// `true`/`false` from the spellings spreadsheets and people use.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match normal(raw).to_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" | "はい" | "○" | "◯" | "有" => Some(true),
        "false" | "0" | "no" | "n" | "off" | "いいえ" | "×" | "無" => Some(false),
        _ => None,
    }
}

/// A number from text with thousands separators and full-width digits allowed.
pub fn parse_number(raw: &str, integer: bool) -> Option<Value> {
    let text: String = normal(raw).chars().filter(|c| *c != ',').collect();
    if integer {
        return text.parse::<i64>().ok().map(Value::from);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f = text.parse::<f64>().ok()?;
    Number::from_f64(f).map(Value::Number)
}

/// The items of a multi-select cell: split on `;` (full-width too), trimmed, empty ones
/// dropped.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split([';', '；'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How a text cell becomes a value of a field type when no lookup is needed; `None` when the
/// text does not fit the type (selects, users, groups, organizations and library records are
/// resolved by the caller, which knows their codes and names).
pub fn scalar_value<Z: TimeZone>(
    kind: FieldType,
    raw: &str,
    date_format: Option<&str>,
    zone: &Z,
) -> Option<Value> {
    match kind {
        FieldType::Text | FieldType::LongText => Some(Value::String(raw.to_owned())),
        FieldType::Integer => parse_number(raw, true),
        FieldType::Decimal => parse_number(raw, false),
        FieldType::Date => parse_date(raw, date_format).map(Value::String),
        FieldType::Datetime => parse_datetime(raw, date_format, zone).map(Value::String),
        FieldType::Boolean => parse_bool(raw).map(Value::Bool),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn csv_rows_are_numbered_and_neutralised_cells_read_back() {
        let rows = read_csv("a,b\r\n1,'=cmd\r\n\r\n,\r\n\"x\ny\",2\r\n", 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].get("b"), Some(&json!("=cmd")));
        assert_eq!(rows[1].number, 2);
        assert_eq!(rows[1].line, 5);
        assert_eq!(rows[1].get("a"), Some(&json!("x\ny")));
    }

    #[test]
    fn ragged_rows_and_bad_headers_are_refused() {
        assert_eq!(
            read_csv("a,b\n1,2\n1,2,3\n", 10),
            Err(SourceError::Ragged {
                line: 3,
                expected: 2,
                found: 3
            })
        );
        assert!(matches!(
            read_csv("a,a\n1,2\n", 10),
            Err(SourceError::BadHeader { .. })
        ));
        assert_eq!(
            read_csv("a\n1\n2\n3\n", 2),
            Err(SourceError::TooManyRows { limit: 2 })
        );
    }

    #[test]
    fn json_lines_flatten_fields() {
        let rows = read_jsonl("{\"key\":\"A-1\",\"fields\":{\"x\":[1]}}\n\n{}\n", 10).unwrap();
        assert_eq!(rows[0].get("field.x"), Some(&json!([1])));
        assert_eq!(rows[1].line, 3);
        assert_eq!(
            read_jsonl("[1]\n", 10),
            Err(SourceError::NotObject { line: 1 })
        );
        let array = read_json_array("[{\"a\": 1}, {\"fields\": {\"b\": true}}]", 10).unwrap();
        assert_eq!(array[1].get("field.b"), Some(&json!(true)));
        assert_eq!(array[1].line, 2);
        assert_eq!(
            read_json_array("[1, 2]", 1),
            Err(SourceError::TooManyRows { limit: 1 })
        );
    }

    #[test]
    fn dates_numbers_and_booleans_are_read_leniently() {
        for raw in [
            "2026-03-04",
            "2026/3/4",
            "２０２６／０３／０４",
            "2026年3月4日",
            "20260304",
        ] {
            assert_eq!(
                parse_date(raw, None).as_deref(),
                Some("2026-03-04"),
                "{raw}"
            );
        }
        assert_eq!(
            parse_date("04/03/2026", Some("%d/%m/%Y")).as_deref(),
            Some("2026-03-04")
        );
        assert_eq!(parse_date("2026-13-01", None), None);
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(
            parse_datetime("2026/03/04 09:30", None, &tokyo).as_deref(),
            Some("2026-03-04T00:30:00Z")
        );
        assert_eq!(
            parse_datetime("2026-03-04T09:30:00+09:00", None, &tokyo).as_deref(),
            Some("2026-03-04T00:30:00Z")
        );
        assert_eq!(parse_number("1,234", true), Some(json!(1234)));
        assert_eq!(parse_number("１２", true), Some(json!(12)));
        assert_eq!(parse_number("1.5", false), Some(json!(1.5)));
        assert_eq!(parse_number("1.5", true), None);
        assert_eq!(parse_bool("はい"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(split_list("a; b；;c"), vec!["a", "b", "c"]);
    }
}
