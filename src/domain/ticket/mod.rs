//! Tickets: what is pure about them — who sees what (`audience`), and the title. The field
//! index and the search tokens are shared with libraries (`domain::index`, `domain::search`).

mod audience;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use audience::{Audience, HIDDEN_CONDITION, STAFF_ROLES};

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
        /// The ticket moved to another template version (`from_state`, `to_state`;
        /// `old_value`/`new_value`: `{"template_version": n, "fields_dropped": [...]}`).
        Migrated = "migrated",
    }
}

closed_set! {
    /// Who acted on a ticket or a record: a signed-in user or an API key.
    pub enum ActorKind {
        User = "user",
        ApiKey = "api_key",
        /// Stageflow itself (background work, e.g. disabling a failing webhook).
        System = "system",
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

use super::template::{FieldDef, FieldType, TemplateDefinition};

/// Most links one ticket may have (both directions).
pub const MAX_LINKS_PER_TICKET: usize = 500;

/// The ticket's title: the `title` field, else the first set public text field, else empty.
///
/// The title is shown to everyone who sees the ticket and its words are searchable by them,
/// so it never comes from an internal field (the linter refuses an internal `title` field;
/// should one exist anyway, it is skipped like any internal field).
pub fn title_of(def: &TemplateDefinition, fields: &Map<String, Value>) -> String {
    let text = |f: &FieldDef| match fields.get(&f.key) {
        Some(Value::String(s)) if !f.internal && !s.is_empty() => Some(s.clone()),
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
