//! How JSON values are read as field values: what counts as set, how numbers, dates and
//! datetimes compare. Shared by value validation, guard evaluation and the linter so that
//! all three agree.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::Value;

/// Absent, `null`, `""` and `[]` all mean "no value": a frontend clearing a field sends one
/// of them, and a required field must not be satisfied by any of them.
pub fn is_set(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// `YYYY-MM-DD` exactly (chrono alone would also take `+2024-1-5`).
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let b = raw.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// An RFC 3339 timestamp with its offset.
pub fn parse_datetime(raw: &str) -> Option<DateTime<FixedOffset>> {
    if raw.len() > 64 {
        return None;
    }
    DateTime::parse_from_rfc3339(raw).ok()
}

/// An RFC 3339 timestamp in its canonical UTC form (`2026-11-26T09:00:00Z`), so that equal
/// instants written with different offsets compare equal as text.
pub fn parse_datetime_utc(raw: &str) -> Option<String> {
    parse_datetime(raw).map(|t| {
        t.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    })
}

pub fn is_uuid(raw: &str) -> bool {
    raw.len() == 36 && uuid::Uuid::try_parse(raw).is_ok()
}

/// A value that can be ordered: numbers, dates and instants. Values of different kinds do
/// not compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ordinal {
    Int(i64),
    Float(f64),
    Date(NaiveDate),
    Instant(DateTime<FixedOffset>),
}

impl Ordinal {
    pub fn of(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n
                .as_i64()
                .map(Ordinal::Int)
                .or_else(|| n.as_f64().map(Ordinal::Float)),
            Value::String(s) => parse_datetime(s)
                .map(Ordinal::Instant)
                .or_else(|| parse_date(s).map(Ordinal::Date)),
            _ => None,
        }
    }

    pub fn compare(&self, other: &Ordinal) -> Option<Ordering> {
        match (self, other) {
            (Ordinal::Int(a), Ordinal::Int(b)) => Some(a.cmp(b)),
            (Ordinal::Date(a), Ordinal::Date(b)) => Some(a.cmp(b)),
            (Ordinal::Instant(a), Ordinal::Instant(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            // Only reached when the other side is a float, which is approximate already.
            Ordinal::Int(i) => Some(*i as f64),
            Ordinal::Float(f) => Some(*f),
            Ordinal::Date(_) | Ordinal::Instant(_) => None,
        }
    }
}

/// Equality as a person means it: `1` equals `1.0`, and two timestamps naming the same
/// instant in different offsets are equal.
pub fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => {
            matches!(Ordinal::of(a).zip(Ordinal::of(b)), Some((x, y)) if x.compare(&y) == Some(Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => {
            x == y
                || matches!(
                    (parse_datetime(x), parse_datetime(y)),
                    (Some(p), Some(q)) if p == q
                )
        }
        _ => a == b,
    }
}

/// The set-membership reading used by guards: on a list (multi-select) value, equality means
/// "contains".
pub fn matches(actual: &Value, expected: &Value) -> bool {
    match actual {
        Value::Array(items) => items.iter().any(|item| scalar_eq(item, expected)),
        _ => scalar_eq(actual, expected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_values() {
        assert!(!is_set(None));
        assert!(!is_set(Some(&json!(null))));
        assert!(!is_set(Some(&json!(""))));
        assert!(!is_set(Some(&json!([]))));
        assert!(is_set(Some(&json!(0))));
        assert!(is_set(Some(&json!(false))));
        assert!(is_set(Some(&json!(" "))));
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("2024-2-9").is_none());
        assert!(parse_date("+2024-02-09").is_none());
        assert!(parse_datetime("2024-02-29T10:00:00+09:00").is_some());
        assert!(parse_datetime("2024-02-29").is_none());
    }

    #[test]
    fn equality_and_order() {
        assert!(scalar_eq(&json!(1), &json!(1.0)));
        assert!(!scalar_eq(&json!(1), &json!("1")));
        assert!(scalar_eq(
            &json!("2024-01-01T09:00:00+09:00"),
            &json!("2024-01-01T00:00:00Z")
        ));
        assert!(matches(&json!(["a", "b"]), &json!("b")));
        let cmp = |a: Value, b: Value| Ordinal::of(&a)?.compare(&Ordinal::of(&b)?);
        assert_eq!(cmp(json!(2), json!(1.5)), Some(Ordering::Greater));
        assert_eq!(
            cmp(json!("2024-01-02"), json!("2024-01-10")),
            Some(Ordering::Less)
        );
        assert_eq!(cmp(json!("2024-01-02"), json!(3)), None);
        assert_eq!(
            cmp(json!(i64::MAX), json!(i64::MAX - 1)),
            Some(Ordering::Greater)
        );
    }
}
