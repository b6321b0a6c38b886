//! The template definition as a process manager writes it (JSON, `snake_case`, unknown
//! properties refused). Deserializing only checks the shape; whether the definition makes
//! sense (keys, references, the state graph, guards) is the linter's job, so that every
//! problem can be reported at once with its location.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::guard::Guard;
use super::limits::MAX_PATTERN_CHARS;
use crate::domain::ids::UserId;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A label in Japanese and English; the linter requires both to be non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub ja: String,
    pub en: String,
}

impl Label {
    pub fn new(ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            ja: ja.into(),
            en: en.into(),
        }
    }
}

/// The type of a template or library field.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    Date,
    Datetime,
    Boolean,
    Select,
    MultiSelect,
    User,
    Group,
    Organization,
    LibraryRef,
    Attachment,
}

impl FieldType {
    pub const ALL: [FieldType; 14] = [
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Boolean,
        FieldType::Select,
        FieldType::MultiSelect,
        FieldType::User,
        FieldType::Group,
        FieldType::Organization,
        FieldType::LibraryRef,
        FieldType::Attachment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Boolean => "boolean",
            FieldType::Select => "select",
            FieldType::MultiSelect => "multi_select",
            FieldType::User => "user",
            FieldType::Group => "group",
            FieldType::Organization => "organization",
            FieldType::LibraryRef => "library_ref",
            FieldType::Attachment => "attachment",
        }
    }

    /// Text types: length and pattern rules apply.
    pub fn is_textual(self) -> bool {
        matches!(self, FieldType::Text | FieldType::LongText)
    }

    /// Types with an order: range rules and `gt`/`ge`/`lt`/`le` apply.
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldType::Integer | FieldType::Decimal | FieldType::Date | FieldType::Datetime
        )
    }

    /// Types whose values are items of a master.
    pub fn is_select(self) -> bool {
        matches!(self, FieldType::Select | FieldType::MultiSelect)
    }

    /// Types whose values are ids (UUID strings) of other records.
    pub fn is_reference(self) -> bool {
        matches!(
            self,
            FieldType::User
                | FieldType::Group
                | FieldType::Organization
                | FieldType::LibraryRef
                | FieldType::Attachment
        )
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `min` / `max` rule: a number for integer and decimal fields, a date or datetime string
/// for date and datetime fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(serde_json::Number),
    Text(String),
}

impl Bound {
    pub fn to_value(&self) -> Value {
        match self {
            Bound::Number(n) => Value::Number(n.clone()),
            Bound::Text(s) => Value::String(s.clone()),
        }
    }
}

impl Serialize for Bound {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Bound::Number(n) => n.serialize(s),
            Bound::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => Ok(Bound::Number(n)),
            Value::String(s) => Ok(Bound::Text(s)),
            _ => Err(de::Error::custom(
                "expected a number, or a date / datetime string",
            )),
        }
    }
}

/// A `pattern` rule, compiled once when the definition is read. An invalid pattern is kept
/// (with its error) rather than refused, so the linter can report it in place with the rest.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    compiled: Result<Regex, String>,
}

/// Compiled-program bound: with it, a short but explosive pattern (`(a{100}){100}`) is
/// refused instead of taking memory; matching is linear-time in the `regex` crate anyway.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl Pattern {
    pub fn new(source: impl Into<String>) -> Self {
        let source = source.into();
        let compiled = if source.chars().count() > MAX_PATTERN_CHARS {
            Err(format!("longer than {MAX_PATTERN_CHARS} characters"))
        } else {
            RegexBuilder::new(&source)
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| e.to_string())
        };
        Self { source, compiled }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn regex(&self) -> Option<&Regex> {
        self.compiled.as_ref().ok()
    }

    pub fn error(&self) -> Option<&str> {
        self.compiled.as_ref().err().map(String::as_str)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Pattern::new)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub label: Label,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Never shown to partners (enforced by the API layer, carried here).
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_items: Option<Vec<String>>,
}

impl FieldDef {
    /// A field with no rules, for definitions built in code.
    pub fn new(key: impl Into<String>, kind: FieldType, label: Label) -> Self {
        Self {
            key: key.into(),
            kind,
            label,
            required: false,
            internal: false,
            master: None,
            library: None,
            min_length: None,
            max_length: None,
            min: None,
            max: None,
            pattern: None,
            allowed_items: None,
        }
    }
}

/// How a state affects the SLA clock of a ticket in it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SlaCategory {
    #[default]
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub key: String,
    pub label: Label,
    #[serde(default, skip_serializing_if = "is_false")]
    pub initial: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub terminal: bool,
    #[serde(default)]
    pub sla: SlaCategory,
}

/// The coarse phase; states are the fine status inside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub key: String,
    pub label: Label,
    pub states: Vec<State>,
}

/// The states a transition leaves from: a list of state keys, or `"*"` for every
/// non-terminal state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromStates {
    Any,
    States(Vec<String>),
}

impl FromStates {
    /// Whether a ticket in `state` may take the transition, as far as its state goes.
    pub fn includes(&self, state: &str, state_is_terminal: bool) -> bool {
        match self {
            FromStates::Any => !state_is_terminal,
            FromStates::States(states) => states.iter().any(|s| s == state),
        }
    }

    /// The wire form, for messages: `["*"]` or the listed keys.
    pub fn keys(&self) -> Vec<String> {
        match self {
            FromStates::Any => vec!["*".to_owned()],
            FromStates::States(states) => states.clone(),
        }
    }
}

impl Serialize for FromStates {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FromStates::Any => s.serialize_str("*"),
            FromStates::States(states) => states.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for FromStates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FromVisitor;
        impl<'de> Visitor<'de> for FromVisitor {
            type Value = FromStates;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"*\" or a list of state keys")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FromStates, E> {
                if v == "*" {
                    Ok(FromStates::Any)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<FromStates, A::Error> {
                let mut states = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(state) = seq.next_element::<String>()? {
                    states.push(state);
                }
                Ok(FromStates::States(states))
            }
        }
        d.deserialize_any(FromVisitor)
    }
}

/// Who may fire a transition: anyone matching one of the entries. Empty means nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// Role names (`agent`, `requester`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Group keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The ticket's assignee.
    #[serde(default, skip_serializing_if = "is_false")]
    pub assignee: bool,
    /// The ticket's requester.
    #[serde(default, skip_serializing_if = "is_false")]
    pub requester: bool,
}

impl Allowed {
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.groups.is_empty() && !self.assignee && !self.requester
    }
}

/// What a transition does besides moving the ticket. `mapping` maps a *target* field key
/// (of the child ticket or library record) to a *source*: a field key of this ticket, or a
/// literal written as a string starting with `=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Writes `value` (`null` clears) into a field of this ticket.
    SetField {
        field: String,
        value: Value,
    },
    /// Assigns the ticket: exactly one of `group` (a group key), `user` (a user id) or
    /// `from_field` (a user or group field of this ticket).
    Assign {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<UserId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_field: Option<String>,
    },
    CreateChildTicket {
        template: String,
        #[serde(default)]
        mapping: BTreeMap<String, String>,
    },
    /// Creates a library record from the mapping, or updates the record this ticket names:
    /// the one in `record_field` (a `library_ref` field of this ticket) when it is set, else
    /// the one this ticket created with an earlier upsert into the same library. A record it
    /// creates is written back into `record_field`.
    LibraryUpsert {
        library: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record_field: Option<String>,
        #[serde(default)]
        mapping: BTreeMap<String, String>,
    },
    /// Updates the library record named by `record_field` (a `library_ref` field).
    LibraryUpdate {
        library: String,
        record_field: String,
        #[serde(default)]
        mapping: BTreeMap<String, String>,
    },
    Notify {
        event: String,
    },
}

impl Action {
    /// The field mapping of a library or child-ticket action.
    pub fn mapping(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Action::CreateChildTicket { mapping, .. }
            | Action::LibraryUpsert { mapping, .. }
            | Action::LibraryUpdate { mapping, .. } => Some(mapping),
            Action::SetField { .. } | Action::Assign { .. } | Action::Notify { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub key: String,
    pub label: Label,
    pub from: FromStates,
    pub to: String,
    #[serde(default)]
    pub allowed: Allowed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// Fields that must be set (on the ticket or in the request) to fire the transition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Further fields the request may set while firing it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

/// A per-state rule for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    Required,
    ReadOnly,
    Hidden,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub key: String,
    pub label: Label,
    pub fields: Vec<String>,
}

/// Form layout for frontends: the default sections, and per-state replacements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    #[serde(default)]
    pub sections: Vec<Section>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub states: BTreeMap<String, Vec<Section>>,
}

/// One version of a template, as written by a process manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDefinition {
    pub name: Label,
    /// Prefix of the human ticket key (`INC` in `INC-42`).
    pub key_prefix: String,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// State key → field key → rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub field_rules: BTreeMap<String, BTreeMap<String, FieldRule>>,
    #[serde(default)]
    pub layout: Layout,
}

impl TemplateDefinition {
    /// The first field with this key.
    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// All states, in definition order, with their stage.
    pub fn states(&self) -> impl Iterator<Item = (&Stage, &State)> {
        self.stages
            .iter()
            .flat_map(|stage| stage.states.iter().map(move |state| (stage, state)))
    }

    /// The first state with this key.
    pub fn state(&self, key: &str) -> Option<&State> {
        self.states().map(|(_, s)| s).find(|s| s.key == key)
    }

    /// The first transition with this key.
    pub fn transition(&self, key: &str) -> Option<&Transition> {
        self.transitions.iter().find(|t| t.key == key)
    }

    /// The rule `state` sets for `field`, if any.
    pub fn rule(&self, state: &str, field: &str) -> Option<FieldRule> {
        self.field_rules.get(state)?.get(field).copied()
    }
}
