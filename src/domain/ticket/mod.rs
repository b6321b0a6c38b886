//! Tickets: what is pure about them — who sees what, the values indexed for field filters,
//! the search tokens, and the title.

pub mod search;

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::template::{FieldDef, FieldType, TemplateDefinition, is_set};

/// Who is looking at tickets, which decides what they see.
///
/// - `Staff` (tenant admins, process managers, agents, auditors, and API keys with one of those
///   roles) see every ticket of the tenant, internal fields and internal comments included.
/// - `Restricted` callers see the tickets they requested and, when they belong to a partner
///   organization, the tickets of that organization; never an internal field, comment,
///   attachment or history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Restricted {
        user: Option<Uuid>,
        organization: Option<Uuid>,
    },
}

impl Audience {
    pub fn is_staff(&self) -> bool {
        matches!(self, Audience::Staff)
    }

    /// Whether a ticket with this requester and organization is visible.
    pub fn sees(&self, requester: Option<Uuid>, organization: Option<Uuid>) -> bool {
        match self {
            Audience::Staff => true,
            Audience::Restricted {
                user,
                organization: own,
            } => (user.is_some() && requester == *user) || (own.is_some() && organization == *own),
        }
    }

    /// The fields this audience may see: everything for staff, no internal field otherwise.
    pub fn redact(
        &self,
        def: &TemplateDefinition,
        mut fields: Map<String, Value>,
    ) -> Map<String, Value> {
        if !self.is_staff() {
            fields.retain(|k, _| def.field(k).is_some_and(|f| !f.internal));
        }
        fields
    }
}

/// Most links one ticket may have (both directions).
pub const MAX_LINKS_PER_TICKET: usize = 500;

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

/// The rows of the field index for a ticket's values: one per scalar (one per item of a
/// multi-select). Long text is left to keyword search.
pub fn indexed_values(def: &TemplateDefinition, fields: &Map<String, Value>) -> Vec<IndexedValue> {
    let mut out = BTreeSet::new();
    for field in &def.fields {
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

/// The texts keyword search indexes for a ticket: the title and the text fields, split by
/// whether partners may see them.
pub fn search_texts<'a>(
    def: &'a TemplateDefinition,
    title: &'a str,
    fields: &'a Map<String, Value>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut public = vec![title];
    let mut internal = Vec::new();
    for field in def.fields.iter().filter(|f| f.kind.is_textual()) {
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

/// The ticket's title: the `title` field, else the first set text field, else empty.
pub fn title_of(def: &TemplateDefinition, fields: &Map<String, Value>) -> String {
    let text = |f: &FieldDef| match fields.get(&f.key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    def.field("title")
        .filter(|f| f.kind.is_textual())
        .and_then(text)
        .or_else(|| {
            def.fields
                .iter()
                .filter(|f| f.kind == FieldType::Text)
                .find_map(text)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::template::parse_definition;

    fn def() -> TemplateDefinition {
        parse_definition(&json!({
            "name": {"ja": "問い合わせ", "en": "Inquiry"},
            "key_prefix": "INQ",
            "fields": [
                {"key": "title", "type": "text", "label": {"ja": "件名", "en": "Title"}},
                {"key": "body", "type": "long_text", "label": {"ja": "本文", "en": "Body"}},
                {"key": "note", "type": "text", "internal": true, "label": {"ja": "メモ", "en": "Note"}},
                {"key": "count", "type": "integer", "label": {"ja": "数", "en": "Count"}},
                {"key": "cost", "type": "decimal", "label": {"ja": "費用", "en": "Cost"}},
                {"key": "tags", "type": "multi_select", "master": "tags", "label": {"ja": "タグ", "en": "Tags"}},
                {"key": "at", "type": "datetime", "label": {"ja": "日時", "en": "At"}}
            ],
            "stages": [{"key": "open", "label": {"ja": "受付", "en": "Open"},
                        "states": [{"key": "new", "label": {"ja": "新規", "en": "New"}, "initial": true},
                                   {"key": "done", "label": {"ja": "完了", "en": "Done"}, "terminal": true}]}],
            "transitions": []
        }))
        .unwrap()
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn restricted_callers_see_their_own_and_their_organizations_tickets() {
        let (me, org, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let partner = Audience::Restricted {
            user: Some(me),
            organization: Some(org),
        };
        assert!(partner.sees(Some(me), None));
        assert!(partner.sees(Some(other), Some(org)));
        assert!(!partner.sees(Some(other), Some(other)));
        let requester = Audience::Restricted {
            user: Some(me),
            organization: None,
        };
        assert!(!requester.sees(Some(other), None));
        let nobody = Audience::Restricted {
            user: None,
            organization: None,
        };
        assert!(!nobody.sees(None, None));
        assert!(Audience::Staff.sees(None, None));
    }

    #[test]
    fn internal_fields_are_redacted_for_restricted_callers() {
        let values = fields(json!({"title": "t", "note": "secret", "count": 3}));
        let restricted = Audience::Restricted {
            user: None,
            organization: None,
        };
        let seen = restricted.redact(&def(), values.clone());
        assert!(!seen.contains_key("note"));
        assert_eq!(seen.len(), 2);
        assert_eq!(Audience::Staff.redact(&def(), values.clone()), values);
    }

    #[test]
    fn values_are_indexed_in_canonical_form() {
        let values = fields(json!({
            "title": "Printer", "body": "long text is not indexed", "note": "n",
            "count": 42, "cost": 1.50, "tags": ["a", "b"], "at": "2026-11-26T18:00:00+09:00"
        }));
        let indexed = indexed_values(&def(), &values);
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
        let stored = indexed_values(&def(), &fields(json!({"title": long.clone()})));
        assert_eq!(filter_candidates(&long), [stored[0].value.clone()]);
    }

    #[test]
    fn the_title_is_the_title_field() {
        assert_eq!(title_of(&def(), &fields(json!({"title": "件名"}))), "件名");
        assert_eq!(title_of(&def(), &fields(json!({"note": "n"}))), "n");
        assert_eq!(title_of(&def(), &fields(json!({}))), "");
    }
}
