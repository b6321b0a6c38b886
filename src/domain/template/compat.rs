//! Which field types may be copied into which, for child-ticket and library mappings and
//! `set_field`, and how `=literal` mapping sources are read.
//!
//! | target ← source | accepted |
//! |---|---|
//! | any ← same type | yes |
//! | text ← integer, decimal, date, datetime, boolean, select | yes, written as a string |
//! | text ← long_text | no: it may be longer and hold line breaks |
//! | long_text ← text and everything text accepts | yes, written as a string |
//! | decimal ← integer | yes |
//! | multi_select ← select | yes, as a one-item list |
//! | anything else | no (ids of users, groups… are not text; dates do not become datetimes) |
//!
//! Select to select needs the same master where the linter can see both masters (a child of
//! the same template); across templates only the types are known, and the child ticket's own
//! validation catches an item its master lacks.

use serde_json::{Number, Value};

use super::model::FieldType;
use super::scalar::{is_uuid, parse_date, parse_datetime};

/// Scalars that read naturally as text.
fn is_text_like(kind: FieldType) -> bool {
    matches!(
        kind,
        FieldType::Integer
            | FieldType::Decimal
            | FieldType::Date
            | FieldType::Datetime
            | FieldType::Boolean
            | FieldType::Select
    )
}

/// Whether a value of a `source` field may be written into a `target` field.
pub fn compatible(target: FieldType, source: FieldType) -> bool {
    if target == source {
        return true;
    }
    match target {
        FieldType::Text => is_text_like(source),
        FieldType::LongText => source == FieldType::Text || is_text_like(source),
        FieldType::Decimal => source == FieldType::Integer,
        FieldType::MultiSelect => source == FieldType::Select,
        _ => false,
    }
}

/// A source field's value converted for the target field, following the table above.
/// `None` when the types are incompatible or the value does not have the source type.
pub fn convert_mapped(target: FieldType, source: FieldType, value: &Value) -> Option<Value> {
    if !compatible(target, source) {
        return None;
    }
    if target == source || value.is_null() {
        return Some(value.clone());
    }
    match (target, value) {
        (FieldType::Text | FieldType::LongText, Value::String(_)) => Some(value.clone()),
        (FieldType::Text | FieldType::LongText, Value::Number(_) | Value::Bool(_)) => {
            Some(Value::String(value.to_string()))
        }
        (FieldType::Decimal, Value::Number(_)) => Some(value.clone()),
        (FieldType::MultiSelect, Value::String(_)) => Some(Value::Array(vec![value.clone()])),
        _ => None,
    }
}

/// Reads the text after `=` in a mapping source as a value of the target type: numbers,
/// `true`/`false`, dates, datetimes and ids in their JSON form, a multi-select as
/// comma-separated item codes. An empty literal clears the target (`null`). `None` when the
/// text does not fit the type.
pub fn convert_literal(target: FieldType, text: &str) -> Option<Value> {
    if text.is_empty() {
        return Some(Value::Null);
    }
    let string = || Some(Value::String(text.to_owned()));
    match target {
        FieldType::Text | FieldType::LongText | FieldType::Select => string(),
        FieldType::Integer => text.parse::<i64>().ok().map(Value::from),
        FieldType::Decimal => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number),
        FieldType::Boolean => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        FieldType::Date => parse_date(text).and_then(|_| string()),
        FieldType::Datetime => parse_datetime(text).and_then(|_| string()),
        FieldType::MultiSelect => {
            let items: Vec<Value> = text
                .split(',')
                .map(str::trim)
                .map(|item| Value::String(item.to_owned()))
                .collect();
            let all_named = items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| !s.is_empty()));
            all_named.then_some(Value::Array(items))
        }
        FieldType::User
        | FieldType::Group
        | FieldType::Organization
        | FieldType::LibraryRef
        | FieldType::Attachment => is_uuid(text).then(string).flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldType::*;
    use serde_json::json;

    #[test]
    fn compatibility_table() {
        for kind in FieldType::ALL {
            assert!(compatible(kind, kind), "{kind}");
        }
        assert!(compatible(Text, Integer));
        assert!(compatible(Text, Select));
        assert!(!compatible(Text, LongText));
        assert!(!compatible(Text, User));
        assert!(!compatible(Text, MultiSelect));
        assert!(compatible(LongText, Text));
        assert!(compatible(LongText, Date));
        assert!(compatible(Decimal, Integer));
        assert!(!compatible(Integer, Decimal));
        assert!(compatible(MultiSelect, Select));
        assert!(!compatible(Select, MultiSelect));
        assert!(!compatible(Datetime, Date));
        assert!(!compatible(User, Group));
    }

    #[test]
    fn conversions() {
        assert_eq!(convert_mapped(Text, Integer, &json!(42)), Some(json!("42")));
        assert_eq!(
            convert_mapped(Text, Boolean, &json!(true)),
            Some(json!("true"))
        );
        assert_eq!(
            convert_mapped(Text, Date, &json!("2024-01-02")),
            Some(json!("2024-01-02"))
        );
        assert_eq!(convert_mapped(Decimal, Integer, &json!(3)), Some(json!(3)));
        assert_eq!(
            convert_mapped(MultiSelect, Select, &json!("a")),
            Some(json!(["a"]))
        );
        assert_eq!(convert_mapped(Text, LongText, &json!("x")), None);
        assert_eq!(
            convert_mapped(Text, Integer, &json!(null)),
            Some(json!(null))
        );
    }

    #[test]
    fn literals() {
        assert_eq!(convert_literal(Text, "retired"), Some(json!("retired")));
        assert_eq!(convert_literal(Integer, "5"), Some(json!(5)));
        assert_eq!(convert_literal(Integer, "5.5"), None);
        assert_eq!(convert_literal(Decimal, "5.5"), Some(json!(5.5)));
        assert_eq!(convert_literal(Decimal, "NaN"), None);
        assert_eq!(convert_literal(Boolean, "yes"), None);
        assert_eq!(
            convert_literal(Date, "2024-01-31"),
            Some(json!("2024-01-31"))
        );
        assert_eq!(convert_literal(Date, "2024-01-32"), None);
        assert_eq!(
            convert_literal(MultiSelect, "a, b"),
            Some(json!(["a", "b"]))
        );
        assert_eq!(convert_literal(MultiSelect, "a,,b"), None);
        assert_eq!(convert_literal(User, "not-a-uuid"), None);
        let id = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
        assert_eq!(convert_literal(User, id), Some(json!(id)));
        assert_eq!(convert_literal(Integer, ""), Some(json!(null)));
    }
}
