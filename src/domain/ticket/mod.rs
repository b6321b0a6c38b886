//! Tickets: what is pure about them — who sees what, and the title. The field index and the
//! search tokens are shared with libraries (`domain::index`, `domain::search`).

use serde_json::{Map, Value};
use uuid::Uuid;

use super::template::{FieldDef, FieldSet, FieldType, TemplateDefinition, public_only};

use crate::domain::closed_set::closed_set;

closed_set! {
    /// What a ticket history entry records.
    pub enum HistoryKind {
        /// The ticket was filed; `new_value` holds every initial value.
        Created = "created",
        /// A transition fired (`transition`, `from_state`, `to_state`).
        Transition = "transition",
        /// A field value changed (`field`, `old_value`, `new_value`).
        FieldChanged = "field_changed",
        /// The assignee, group or organization changed.
        AttributeChanged = "attribute_changed",
    }
}

closed_set! {
    /// Who acted on a ticket or a record: a signed-in user or an API key.
    pub enum ActorKind {
        User = "user",
        ApiKey = "api_key",
    }
}

closed_set! {
    /// A link as seen from one ticket: what the other ticket is to this one.
    pub enum LinkKind {
        /// The other ticket is this one's parent.
        Parent = "parent",
        /// The other ticket is this one's child.
        Child = "child",
        Related = "related",
        /// This ticket duplicates the other.
        DuplicateOf = "duplicate_of",
        /// The other ticket duplicates this one.
        DuplicatedBy = "duplicated_by",
    }
}

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
    pub fn redact<D: FieldSet + ?Sized>(
        &self,
        def: &D,
        fields: Map<String, Value>,
    ) -> Map<String, Value> {
        if self.is_staff() {
            fields
        } else {
            public_only(def, fields)
        }
    }
}

/// Most links one ticket may have (both directions).
pub const MAX_LINKS_PER_TICKET: usize = 500;

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
    fn the_title_is_the_title_field() {
        assert_eq!(title_of(&def(), &fields(json!({"title": "件名"}))), "件名");
        assert_eq!(title_of(&def(), &fields(json!({"note": "n"}))), "n");
        assert_eq!(title_of(&def(), &fields(json!({}))), "");
    }
}
