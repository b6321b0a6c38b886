//! Ticket field values checked against a definition: types, lengths, ranges, patterns,
//! master items and required fields.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::limits::{MAX_LONG_TEXT_CHARS, MAX_MULTI_SELECT_ITEMS, MAX_TEXT_CHARS};
use super::model::{Bound, FieldDef, FieldRule, FieldType, TemplateDefinition};
use super::scalar::{Ordinal, is_set, is_uuid, parse_date, parse_datetime};

/// Master key → item codes.
pub type MasterItems = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    /// The state whose `required` rules apply (with `check_required`).
    pub state: Option<&'a str>,
    /// Master key → *active* item codes: a new value must be an active item.
    pub masters: &'a MasterItems,
    /// Whether unset required fields are violations (off for partial updates).
    pub check_required: bool,
    /// The ticket's stored values. A value equal to the stored one is not checked against
    /// the active master items, so deactivating an item never breaks existing tickets.
    pub previous: Option<&'a Map<String, Value>>,
}

/// One field problem, located as `fields.<key>` for problem+json `errors` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldViolation {
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: format!("fields.{field}"),
            code,
            message: message.into(),
        }
    }
}

/// What value validation needs from a definition: its fields and, optionally, per-state
/// rules. Templates implement it; libraries (whose records have no states) reuse the same
/// validation through it rather than a copy.
pub trait FieldSet {
    fn field_defs(&self) -> &[FieldDef];

    /// The first field with this key.
    fn field_def(&self, key: &str) -> Option<&FieldDef> {
        self.field_defs().iter().find(|f| f.key == key)
    }

    /// Whether `key` is a field requesters and partners may see (defined, not internal).
    fn is_public(&self, key: &str) -> bool {
        self.field_def(key).is_some_and(|f| !f.internal)
    }

    /// The rule `state` sets for `field`, if any.
    fn state_rule(&self, _state: &str, _field: &str) -> Option<FieldRule> {
        None
    }
}

impl FieldSet for TemplateDefinition {
    fn field_defs(&self) -> &[FieldDef] {
        &self.fields
    }

    fn state_rule(&self, state: &str, field: &str) -> Option<FieldRule> {
        self.rule(state, field)
    }
}

impl<T: FieldSet + ?Sized> FieldSet for std::sync::Arc<T> {
    fn field_defs(&self) -> &[FieldDef] {
        (**self).field_defs()
    }

    fn state_rule(&self, state: &str, field: &str) -> Option<FieldRule> {
        (**self).state_rule(state, field)
    }
}

impl FieldSet for [FieldDef] {
    fn field_defs(&self) -> &[FieldDef] {
        self
    }
}

/// The values of `fields` requesters and partners may see: no internal field, nothing the
/// definition does not know.
pub fn public_only<D: FieldSet + ?Sized>(
    def: &D,
    mut fields: Map<String, Value>,
) -> Map<String, Value> {
    fields.retain(|k, _| def.is_public(k));
    fields
}

/// Checks `values` (the whole field map of a ticket, or a partial update without
/// `check_required`). Fields are checked in definition order, one violation per field at
/// most, then keys the template does not define, sorted.
pub fn validate_values<D: FieldSet + ?Sized>(
    def: &D,
    values: &Map<String, Value>,
    ctx: ValidationContext<'_>,
) -> Result<(), Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut defined = HashMap::with_capacity(def.field_defs().len());
    for field in def.field_defs() {
        if defined.insert(field.key.as_str(), field).is_some() {
            // A duplicate key (a lint error) is checked once.
            continue;
        }
        let value = values.get(&field.key);
        if let Some(value) = value {
            let previous = ctx.previous.and_then(|p| p.get(&field.key));
            if let Err((code, message)) = check_value(field, value, ctx.masters, previous) {
                violations.push(FieldViolation::new(&field.key, code, message));
                continue;
            }
        }
        if ctx.check_required && !is_set(value) && is_required(def, field, ctx.state) {
            violations.push(FieldViolation::new(&field.key, "required", "must be set"));
        }
    }
    let mut unknown: Vec<&String> = values
        .keys()
        .filter(|k| !defined.contains_key(k.as_str()))
        .collect();
    unknown.sort();
    for key in unknown {
        let message = "the template has no such field";
        violations.push(FieldViolation::new(key, "unknown_field", message));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// Required on every ticket, or by the rule of `state`.
pub fn is_required<D: FieldSet + ?Sized>(def: &D, field: &FieldDef, state: Option<&str>) -> bool {
    field.required
        || state.is_some_and(|s| def.state_rule(s, &field.key) == Some(FieldRule::Required))
}

/// Rejects changes, made by a person while the ticket is in `state`, to fields that state
/// makes read-only or hides. (Transitions write through their own grant instead; see
/// `plan_transition`.)
pub fn check_editable<'k, D: FieldSet + ?Sized>(
    def: &D,
    state: &str,
    changed: impl IntoIterator<Item = &'k str>,
) -> Result<(), Vec<FieldViolation>> {
    let violations: Vec<FieldViolation> = changed
        .into_iter()
        .filter_map(|key| match def.state_rule(state, key) {
            Some(FieldRule::ReadOnly) => Some(FieldViolation::new(
                key,
                "read_only",
                "cannot be changed in this state",
            )),
            Some(FieldRule::Hidden) => Some(FieldViolation::new(
                key,
                "hidden",
                "cannot be changed in this state",
            )),
            Some(FieldRule::Required) | None => None,
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

type Problem = (&'static str, String);

fn problem(code: &'static str, message: impl Into<String>) -> Result<(), Problem> {
    Err((code, message.into()))
}

/// Checks one value against its field. `null` (clearing the field) always passes here;
/// whether the field may be empty is the required check's business.
pub fn check_value(
    field: &FieldDef,
    value: &Value,
    masters: &MasterItems,
    previous: Option<&Value>,
) -> Result<(), (&'static str, String)> {
    if value.is_null() {
        return Ok(());
    }
    let expected = expected_shape(field.kind);
    let wrong_type = || problem("invalid_type", format!("must be {expected}"));
    match field.kind {
        FieldType::Text | FieldType::LongText => match value.as_str() {
            Some(text) => check_text(field, text),
            None => wrong_type(),
        },
        FieldType::Integer if value.as_i64().is_none() => wrong_type(),
        FieldType::Decimal if !value.is_number() => wrong_type(),
        FieldType::Date if value.as_str().and_then(parse_date).is_none() => wrong_type(),
        FieldType::Datetime if value.as_str().and_then(parse_datetime).is_none() => wrong_type(),
        FieldType::Integer | FieldType::Decimal | FieldType::Date | FieldType::Datetime => {
            check_range(field, value)
        }
        FieldType::Boolean if !value.is_boolean() => wrong_type(),
        FieldType::Boolean => Ok(()),
        FieldType::Select => match value.as_str() {
            Some(_) if previous == Some(value) => Ok(()),
            Some(code) => check_item(field, code, masters),
            None => wrong_type(),
        },
        FieldType::MultiSelect => check_multi(field, value, masters, previous),
        FieldType::User
        | FieldType::Group
        | FieldType::Organization
        | FieldType::LibraryRef
        | FieldType::Attachment => match value.as_str() {
            Some(id) if is_uuid(id) => Ok(()),
            _ => wrong_type(),
        },
    }
}

fn expected_shape(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Text | FieldType::LongText => "a string",
        FieldType::Integer => "an integer",
        FieldType::Decimal => "a number",
        FieldType::Date => "a date (YYYY-MM-DD)",
        FieldType::Datetime => "an RFC 3339 datetime",
        FieldType::Boolean => "true or false",
        FieldType::Select => "an item code (string)",
        FieldType::MultiSelect => "a list of item codes",
        FieldType::User
        | FieldType::Group
        | FieldType::Organization
        | FieldType::LibraryRef
        | FieldType::Attachment => "an id (UUID string)",
    }
}

/// Lengths count characters, not bytes, so Japanese text gets the same limit as English.
/// The empty string means "no value" and is left to the required check.
fn check_text(field: &FieldDef, text: &str) -> Result<(), Problem> {
    if text.is_empty() {
        return Ok(());
    }
    let cap = if field.kind == FieldType::Text {
        MAX_TEXT_CHARS
    } else {
        MAX_LONG_TEXT_CHARS
    } as u64;
    let max = field.max_length.map_or(cap, |m| m.min(cap));
    // Counting stops just past the maximum so a huge value costs no more than a long one.
    let chars = text
        .chars()
        .take(usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1))
        .count() as u64;
    if chars > max {
        return problem("too_long", format!("must be at most {max} characters"));
    }
    if let Some(min) = field.min_length
        && chars < min
    {
        return problem("too_short", format!("must be at least {min} characters"));
    }
    if let Some(pattern) = &field.pattern {
        match pattern.regex() {
            Some(regex) if regex.is_match(text) => {}
            Some(_) => return problem("pattern", format!("must match {}", pattern.source())),
            // Fail closed: a definition with a broken pattern never passes lint, but if one
            // is used anyway no value is accepted unchecked.
            None => return problem("pattern", "the template's pattern is invalid"),
        }
    }
    Ok(())
}

fn check_range(field: &FieldDef, value: &Value) -> Result<(), Problem> {
    let Some(actual) = Ordinal::of(value) else {
        return Ok(());
    };
    let bound = |b: &Bound| Ordinal::of(&b.to_value());
    if let Some(min) = &field.min
        && let Some(limit) = bound(min)
        && actual.compare(&limit).is_some_and(|o| o.is_lt())
    {
        return problem("below_min", format!("must be at least {}", min.to_value()));
    }
    if let Some(max) = &field.max
        && let Some(limit) = bound(max)
        && actual.compare(&limit).is_some_and(|o| o.is_gt())
    {
        return problem("above_max", format!("must be at most {}", max.to_value()));
    }
    Ok(())
}

fn check_item(field: &FieldDef, code: &str, masters: &MasterItems) -> Result<(), Problem> {
    let active = field
        .master
        .as_ref()
        .and_then(|m| masters.get(m))
        .is_some_and(|items| items.contains(code));
    if !active {
        return problem(
            "unknown_item",
            "must be an active item of the field's master",
        );
    }
    if let Some(allowed) = &field.allowed_items
        && !allowed.iter().any(|a| a == code)
    {
        return problem("not_allowed", "is not one of the items this field allows");
    }
    Ok(())
}

fn check_multi(
    field: &FieldDef,
    value: &Value,
    masters: &MasterItems,
    previous: Option<&Value>,
) -> Result<(), Problem> {
    let Some(items) = value.as_array() else {
        return problem("invalid_type", "must be a list of item codes");
    };
    if items.len() > MAX_MULTI_SELECT_ITEMS {
        let message = format!("must hold at most {MAX_MULTI_SELECT_ITEMS} items");
        return problem("too_many_items", message);
    }
    let kept: HashSet<&str> = previous
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut seen = HashSet::new();
    for item in items {
        let Some(code) = item.as_str() else {
            return problem("invalid_type", "must be a list of item codes");
        };
        if !seen.insert(code) {
            return problem("duplicate_item", format!("lists {code} more than once"));
        }
        if !kept.contains(code) {
            check_item(field, code, masters)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
