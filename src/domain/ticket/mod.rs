//! Tickets: what is pure about them — who sees what (`audience`), and the title. The field
//! index and the search tokens are shared with libraries (`domain::index`, `domain::search`).

mod audience;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use audience::{Audience, HIDDEN_CONDITION, STAFF_ROLES};

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
