//! The field index shared by tickets and library records: one row per scalar value of a
//! custom field, in a canonical text form, so that a `field.<key>=` filter is an index lookup
//! on both backends; and the texts keyword search tokenizes (`domain::search`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::template::{FieldSet, FieldType, is_set};

/// Longest filter value kept as text in the field index; longer ones are stored hashed.
pub const MAX_INDEXED_VALUE_CHARS: usize = 200;

fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_INDEXED_VALUE_CHARS {
        text
    } else {
        let digest = Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

fn canonical_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            Some(f) => format!("{f}"),
            None => n.to_string(),
        }
    }
}

fn canonical_scalar(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(canonical_number(n)),
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(bounded(
            super::template::parse_datetime_utc(s).unwrap_or_else(|| s.clone()),
        )),
        _ => None,
    }
}

/// One indexed value of a custom field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexedValue {
    pub field: String,
    pub value: String,
    pub internal: bool,
}

/// The rows of the field index for a ticket's or a record's values: one per scalar (one per item of a
/// multi-select). Long text is left to keyword search.
pub fn indexed_values<D: FieldSet + ?Sized>(
    def: &D,
    fields: &Map<String, Value>,
) -> Vec<IndexedValue> {
    let mut out = BTreeSet::new();
    for field in def.field_defs() {
        if field.kind == FieldType::LongText {
            continue;
        }
        let Some(value) = fields.get(&field.key).filter(|v| is_set(Some(v))) else {
            continue;
        };
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            if let Some(value) = canonical_scalar(item) {
                out.insert(IndexedValue {
                    field: field.key.clone(),
                    value,
                    internal: field.internal,
                });
            }
        }
    }
    out.into_iter().collect()
}

/// The stored forms a `field.<key>=raw` filter can match: the text itself, and its
/// canonical number or UTC datetime form when it reads as one (the filter does not know
/// the field's type; a value of any type is stored in the same canonical form).
pub fn filter_candidates(raw: &str) -> Vec<String> {
    let mut out = vec![bounded(raw.to_owned())];
    if let Ok(n) = raw.trim().parse::<serde_json::Number>() {
        out.push(canonical_number(&n));
    }
    if let Some(utc) = super::template::parse_datetime_utc(raw) {
        out.push(bounded(utc));
    }
    out.sort();
    out.dedup();
    out
}

/// The texts keyword search indexes for a ticket or a record: the title and the text
/// fields, split by whether requesters and partners may see them.
pub fn search_texts<'a, D: FieldSet + ?Sized>(
    def: &'a D,
    title: &'a str,
    fields: &'a Map<String, Value>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut public = vec![title];
    let mut internal = Vec::new();
    for field in def.field_defs().iter().filter(|f| f.kind.is_textual()) {
        if let Some(Value::String(text)) = fields.get(&field.key) {
            if field.internal {
                internal.push(text.as_str());
            } else {
                public.push(text.as_str());
            }
        }
    }
    (public, internal)
}

/// What a ticket's or record's values put into the field index and the token index: the
/// indexed values, and each distinct token with the source it counts for (`sources`: the
/// public and the internal source code of the caller's token table).
pub fn entries<D: FieldSet + ?Sized>(
    def: &D,
    title: &str,
    fields: &Map<String, Value>,
    (public_source, internal_source): (i16, i16),
) -> (BTreeSet<IndexedValue>, BTreeSet<(String, i16)>) {
    let values = indexed_values(def, fields).into_iter().collect();
    let (public, internal) = search_texts(def, title, fields);
    let mut tokens = BTreeSet::new();
    for (texts, source) in [(public, public_source), (internal, internal_source)] {
        let mut set = BTreeSet::new();
        for text in texts {
            super::search::tokenize_into(text, &mut set);
        }
        tokens.extend(set.into_iter().map(|t| (t, source)));
    }
    (values, tokens)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::template::{FieldDef, Label};

    fn def() -> Vec<FieldDef> {
        let field = |key: &str, kind: FieldType| FieldDef::new(key, kind, Label::new(key, key));
        let mut note = field("note", FieldType::Text);
        note.internal = true;
        let mut tags = field("tags", FieldType::MultiSelect);
        tags.master = Some("tags".to_owned());
        vec![
            field("title", FieldType::Text),
            field("body", FieldType::LongText),
            note,
            field("count", FieldType::Integer),
            field("cost", FieldType::Decimal),
            tags,
            field("at", FieldType::Datetime),
        ]
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_indexed_in_canonical_form() {
        let values = fields(json!({
            "title": "Printer", "body": "long text is not indexed", "note": "n",
            "count": 42, "cost": 1.50, "tags": ["a", "b"], "at": "2026-11-26T18:00:00+09:00"
        }));
        let indexed = indexed_values(def().as_slice(), &values);
        let pairs: Vec<(&str, &str, bool)> = indexed
            .iter()
            .map(|v| (v.field.as_str(), v.value.as_str(), v.internal))
            .collect();
        assert_eq!(
            pairs,
            [
                ("at", "2026-11-26T09:00:00Z", false),
                ("cost", "1.5", false),
                ("count", "42", false),
                ("note", "n", true),
                ("tags", "a", false),
                ("tags", "b", false),
                ("title", "Printer", false),
            ]
        );
    }

    #[test]
    fn filters_match_the_canonical_forms() {
        assert!(filter_candidates("1.50").contains(&"1.5".to_owned()));
        assert!(filter_candidates("42").contains(&"42".to_owned()));
        assert!(
            filter_candidates("2026-11-26T18:00:00+09:00")
                .contains(&"2026-11-26T09:00:00Z".to_owned())
        );
        let long = "x".repeat(300);
        let stored = indexed_values(def().as_slice(), &fields(json!({"title": long.clone()})));
        assert_eq!(filter_candidates(&long), [stored[0].value.clone()]);
    }
}
