//! The workflow engine's decisions: which transitions a person may take on a ticket, and
//! what firing one changes. Pure: the caller loads the ticket, the actor and the facts,
//! and executes the plan in one database transaction.
//!
//! Guards are evaluated on the ticket as stored, not on the values a request supplies, so
//! that the list of available transitions and the plan always agree.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::guard::{Facts, holds};
use super::model::{
    Action, FieldRule, FieldType, Label, SlaCategory, TemplateDefinition, Transition,
};
use super::request::TransitionInput;
use super::scalar::is_set;
use super::values::{FieldViolation, MasterItems, check_value};
use crate::domain::identity::Role;
use crate::domain::ids::{GroupId, RecordId, UserId};

/// The ticket as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct TicketView<'a> {
    pub state: &'a str,
    pub fields: &'a Map<String, Value>,
    pub assignee: Option<UserId>,
    pub requester: Option<UserId>,
}

/// The person (or API key) asking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorView {
    pub user: Option<UserId>,
    pub roles: Vec<Role>,
    /// Keys of the groups the actor belongs to.
    pub groups: Vec<String>,
}

/// Why a transition cannot be taken; serialized with a `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Unavailable {
    /// No transition has this key.
    UnknownTransition {
        transition: String,
    },
    /// The ticket is not in one of the states the transition leaves from (`["*"]`: any
    /// non-terminal state).
    WrongState {
        current: String,
        from: Vec<String>,
    },
    /// The actor matches none of the transition's `allowed` entries.
    NotPermitted,
    GuardFailed {
        clause: String,
        description: String,
    },
    /// Fields that must be set and are not.
    MissingFields {
        fields: Vec<String>,
    },
}

impl Unavailable {
    pub fn code(&self) -> &'static str {
        match self {
            Unavailable::UnknownTransition { .. } => "unknown_transition",
            Unavailable::WrongState { .. } => "wrong_state",
            Unavailable::NotPermitted => "not_permitted",
            Unavailable::GuardFailed { .. } => "guard_failed",
            Unavailable::MissingFields { .. } => "missing_fields",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionOption {
    pub key: String,
    pub label: Label,
    pub to: String,
    pub available: bool,
    /// What the transition's form asks for: its `requires` and the fields the target
    /// state's rules make required, in field order, whether set already or not.
    pub required_fields: Vec<String>,
    /// Only with `explain`: everything that stands in the way on the ticket as it is.
    pub reasons: Vec<Unavailable>,
}

/// The transitions of the ticket's template, in definition order, as the actor sees them.
///
/// `available` means the transition can be fired now provided the request supplies the
/// missing `required_fields` — so it is the same with or without `explain`. Without
/// `explain`, only available transitions are listed. With `explain`, every transition is
/// listed with all its reasons, and `missing_fields` appears whenever a needed field is not
/// set on the ticket as it is; on an available transition it is the only reason and names
/// what the request must supply. Missing fields make a transition unavailable only when the
/// request could not supply them (they are in neither `requires` nor `sets`).
pub fn available_transitions(
    def: &TemplateDefinition,
    ticket: &TicketView<'_>,
    actor: &ActorView,
    facts: &Facts,
    explain: bool,
) -> Vec<TransitionOption> {
    let current = def.state(ticket.state);
    let current_terminal = current.is_none_or(|s| s.terminal);
    let mut options = Vec::new();
    for t in &def.transitions {
        let in_state = current.is_some() && t.from.includes(ticket.state, current_terminal);
        if !explain && !in_state {
            continue;
        }
        let mut reasons = Vec::new();
        if !in_state {
            reasons.push(wrong_state(ticket.state, t));
        }
        if !permitted(t, ticket, actor) {
            if !explain {
                continue;
            }
            reasons.push(Unavailable::NotPermitted);
        }
        if let Some(failure) = guard_failure(t, ticket.fields, facts) {
            if !explain {
                continue;
            }
            reasons.push(failure);
        }
        let required_fields = form_fields(def, t);
        let missing = missing_fields(def, t, ticket.fields, &required_fields);
        let suppliable = missing
            .iter()
            .all(|f| t.requires.contains(f) || t.sets.contains(f));
        if !explain && !suppliable {
            continue;
        }
        let available = reasons.is_empty() && suppliable;
        if explain && !missing.is_empty() {
            reasons.push(Unavailable::MissingFields { fields: missing });
        }
        options.push(TransitionOption {
            key: t.key.clone(),
            label: t.label.clone(),
            to: t.to.clone(),
            available,
            required_fields,
            reasons,
        });
    }
    options
}

fn wrong_state(current: &str, t: &Transition) -> Unavailable {
    Unavailable::WrongState {
        current: current.to_owned(),
        from: t.from.keys(),
    }
}

fn permitted(t: &Transition, ticket: &TicketView<'_>, actor: &ActorView) -> bool {
    let allowed = &t.allowed;
    let is = |who: Option<UserId>| actor.user.is_some() && actor.user == who;
    // Definitions name roles as text (the linter reports unknown ones); an unknown name
    // permits nobody.
    let holds_role = |name: &String| Role::parse(name).is_some_and(|r| actor.roles.contains(&r));
    allowed.roles.iter().any(holds_role)
        || allowed.groups.iter().any(|g| actor.groups.contains(g))
        || (allowed.assignee && is(ticket.assignee))
        || (allowed.requester && is(ticket.requester))
}

fn guard_failure(
    t: &Transition,
    values: &Map<String, Value>,
    facts: &Facts,
) -> Option<Unavailable> {
    let guard = t.guard.as_ref()?;
    if holds(guard, values, facts, 1) == Some(true) {
        return None;
    }
    let failed = super::guard::evaluate_guard(guard, values, facts).failed?;
    Some(Unavailable::GuardFailed {
        clause: failed.clause,
        description: failed.description,
    })
}

/// Fields a `set_field` action of the transition fills (so nobody needs to supply them).
fn filled_by_actions(t: &Transition) -> impl Iterator<Item = &str> {
    t.actions.iter().filter_map(|a| match a {
        Action::SetField { field, value } if is_set(Some(value)) => Some(field.as_str()),
        _ => None,
    })
}

/// `requires` ∪ the target state's `required` rules, in field order, less what the
/// transition's own actions fill.
fn form_fields(def: &TemplateDefinition, t: &Transition) -> Vec<String> {
    let target_rules = def.field_rules.get(&t.to);
    let mut out: Vec<String> = Vec::new();
    for f in &def.fields {
        let needed = t.requires.contains(&f.key)
            || target_rules.is_some_and(|r| r.get(&f.key) == Some(&FieldRule::Required));
        let filled = filled_by_actions(t).any(|k| k == f.key);
        if needed && !filled && !out.contains(&f.key) {
            out.push(f.key.clone());
        }
    }
    out
}

/// Of the form fields and the fields required on every ticket, those not set in `values`.
fn missing_fields(
    def: &TemplateDefinition,
    t: &Transition,
    values: &Map<String, Value>,
    form: &[String],
) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for f in &def.fields {
        let needed =
            form.contains(&f.key) || (f.required && !filled_by_actions(t).any(|k| k == f.key));
        if needed && !is_set(values.get(&f.key)) && !missing.contains(&f.key) {
            missing.push(f.key.clone());
        }
    }
    missing
}

/// A field's value before and after the transition (`null`: unset).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// Where a mapped value comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MappedValue {
    /// A field of this ticket (value after the transition's field changes). The executor
    /// converts it for the target field with `convert_mapped(target, source_type, value)`.
    Copied {
        value: Value,
        source_type: FieldType,
    },
    /// A literal; the executor reads it with `convert_literal(target, text)`.
    Literal { text: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Assignee {
    User {
        id: UserId,
    },
    /// A group by id, taken from a group field.
    Group {
        id: GroupId,
    },
    /// A group by key, as written in the definition.
    GroupKey {
        key: String,
    },
}

/// An action to execute, resolved against the ticket. `set_field` actions are not listed:
/// they are part of `field_changes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlannedAction {
    Assign {
        assignee: Assignee,
    },
    CreateChildTicket {
        template: String,
        fields: BTreeMap<String, MappedValue>,
    },
    LibraryUpsert {
        library: String,
        /// The record named by the action's `record_field`, when that field is set.
        #[serde(skip_serializing_if = "Option::is_none")]
        record: Option<RecordId>,
        /// Where a created record's id is written back.
        #[serde(skip_serializing_if = "Option::is_none")]
        record_field: Option<String>,
        fields: BTreeMap<String, MappedValue>,
    },
    LibraryUpdate {
        library: String,
        record: RecordId,
        fields: BTreeMap<String, MappedValue>,
    },
    Notify {
        event: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionPlan {
    pub transition: String,
    pub from: String,
    pub to: String,
    /// The SLA category of the target state.
    pub sla: SlaCategory,
    /// In field order.
    pub field_changes: Vec<FieldChange>,
    /// In definition order.
    pub actions: Vec<PlannedAction>,
}

/// One reason a transition request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PlanError {
    Unavailable(Unavailable),
    Field(FieldViolation),
}

/// Decides a transition request: every reason it must be refused, or exactly what it
/// changes.
///
/// - State, permission and guard are checked as in `available_transitions`.
/// - `supplied` may only name fields in the transition's `requires` ∪ `sets`. That listing
///   is an explicit grant: it overrides a `read_only` rule of the current or target state
///   (recording effort at closing, read-only once closed, is the point). A field the target
///   state hides cannot be supplied: whoever works the ticket next could not see it.
///   Supplied values are validated like any field value (`masters`: active items).
/// - `set_field` actions then apply, in order, over the supplied values.
/// - Afterwards every field in `requires`, required by the target state's rules or required
///   on every ticket must be set (`missing_fields`).
/// - Other actions are resolved against the values after all field changes. An `assign`
///   from an empty field and a `library_update` whose record field is empty are left out;
///   mapping entries whose source field is empty are left out.
pub fn plan_transition(
    def: &TemplateDefinition,
    ticket: &TicketView<'_>,
    actor: &ActorView,
    facts: &Facts,
    input: &TransitionInput,
    masters: &MasterItems,
) -> Result<TransitionPlan, Vec<PlanError>> {
    let (transition_key, supplied) = (input.transition.as_str(), &input.fields);
    let Some(t) = def.transition(transition_key) else {
        return Err(vec![PlanError::Unavailable(
            Unavailable::UnknownTransition {
                transition: transition_key.to_owned(),
            },
        )]);
    };
    let mut errors = Vec::new();
    let current = def.state(ticket.state);
    let current_terminal = current.is_none_or(|s| s.terminal);
    if current.is_none() || !t.from.includes(ticket.state, current_terminal) {
        errors.push(PlanError::Unavailable(wrong_state(ticket.state, t)));
    }
    if !permitted(t, ticket, actor) {
        errors.push(PlanError::Unavailable(Unavailable::NotPermitted));
    }
    if let Some(failure) = guard_failure(t, ticket.fields, facts) {
        errors.push(PlanError::Unavailable(failure));
    }

    let mut values = ticket.fields.clone();
    let mut keys: Vec<&String> = supplied.keys().collect();
    keys.sort();
    for key in keys {
        let Some(value) = supplied.get(key) else {
            continue;
        };
        let violation =
            |code, message: &str| PlanError::Field(FieldViolation::new(key, code, message));
        let Some(field) = def.field(key) else {
            errors.push(violation("unknown_field", "the template has no such field"));
            continue;
        };
        if !t.requires.contains(key) && !t.sets.contains(key) {
            errors.push(violation(
                "not_settable",
                "this transition does not set this field",
            ));
            continue;
        }
        if def.rule(&t.to, key) == Some(FieldRule::Hidden) {
            errors.push(violation("hidden", "the target state hides this field"));
            continue;
        }
        if let Err((code, message)) = check_value(field, value, masters, ticket.fields.get(key)) {
            errors.push(violation(code, &message));
            continue;
        }
        write(&mut values, key, value.clone());
    }
    for action in &t.actions {
        if let Action::SetField { field, value } = action
            && def.field(field).is_some()
        {
            write(&mut values, field, value.clone());
        }
    }

    let form = form_fields(def, t);
    let missing: Vec<String> = def
        .fields
        .iter()
        .filter(|f| (f.required || form.contains(&f.key)) && !is_set(values.get(&f.key)))
        .map(|f| f.key.clone())
        .collect();
    if !missing.is_empty() {
        errors.push(PlanError::Unavailable(Unavailable::MissingFields {
            fields: missing,
        }));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut field_changes = Vec::new();
    for f in &def.fields {
        let old = ticket.fields.get(&f.key).cloned().unwrap_or(Value::Null);
        let new = values.get(&f.key).cloned().unwrap_or(Value::Null);
        if old != new && !field_changes.iter().any(|c: &FieldChange| c.field == f.key) {
            field_changes.push(FieldChange {
                field: f.key.clone(),
                old,
                new,
            });
        }
    }
    let actions = t
        .actions
        .iter()
        .filter_map(|a| plan_action(def, a, &values))
        .collect();
    Ok(TransitionPlan {
        transition: t.key.clone(),
        from: ticket.state.to_owned(),
        to: t.to.clone(),
        sla: def.state(&t.to).map(|s| s.sla).unwrap_or_default(),
        field_changes,
        actions,
    })
}

/// Stores a value; `null` removes the field, so "unset" has one representation.
fn write(values: &mut Map<String, Value>, key: &str, value: Value) {
    if value.is_null() {
        values.remove(key);
    } else {
        values.insert(key.to_owned(), value);
    }
}

/// The id stored in a user, group or record field, if it is set and well-formed.
fn id_of<Id: std::str::FromStr>(values: &Map<String, Value>, key: &str) -> Option<Id> {
    values.get(key)?.as_str()?.parse().ok()
}

fn plan_action(
    def: &TemplateDefinition,
    action: &Action,
    values: &Map<String, Value>,
) -> Option<PlannedAction> {
    let map = |mapping: &BTreeMap<String, String>| -> BTreeMap<String, MappedValue> {
        mapping
            .iter()
            .filter_map(|(target, source)| {
                let mapped = match source.strip_prefix('=') {
                    Some(text) => MappedValue::Literal {
                        text: text.to_owned(),
                    },
                    None => {
                        let field = def.field(source)?;
                        let value = values.get(source).filter(|v| is_set(Some(v)))?;
                        MappedValue::Copied {
                            value: value.clone(),
                            source_type: field.kind,
                        }
                    }
                };
                Some((target.clone(), mapped))
            })
            .collect()
    };
    match action {
        Action::SetField { .. } => None,
        Action::Assign {
            group,
            user,
            from_field,
        } => {
            let assignee = if let Some(id) = user {
                Assignee::User { id: *id }
            } else if let Some(key) = group {
                Assignee::GroupKey { key: key.clone() }
            } else {
                let source = from_field.as_deref()?;
                match def.field(source)?.kind {
                    FieldType::User => Assignee::User {
                        id: id_of(values, source)?,
                    },
                    FieldType::Group => Assignee::Group {
                        id: id_of(values, source)?,
                    },
                    _ => return None,
                }
            };
            Some(PlannedAction::Assign { assignee })
        }
        Action::CreateChildTicket { template, mapping } => Some(PlannedAction::CreateChildTicket {
            template: template.clone(),
            fields: map(mapping),
        }),
        Action::LibraryUpsert {
            library,
            record_field,
            mapping,
        } => Some(PlannedAction::LibraryUpsert {
            library: library.clone(),
            record: record_field.as_deref().and_then(|f| id_of(values, f)),
            record_field: record_field.clone(),
            fields: map(mapping),
        }),
        Action::LibraryUpdate {
            library,
            record_field,
            mapping,
        } => Some(PlannedAction::LibraryUpdate {
            library: library.clone(),
            record: id_of(values, record_field)?,
            fields: map(mapping),
        }),
        Action::Notify { event } => Some(PlannedAction::Notify {
            event: event.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
