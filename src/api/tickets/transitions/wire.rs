//! The typed wire form of what the transition engine answers: the reasons a transition is
//! unavailable, the plan of a fired (or dry-run) transition and the events `notify` actions
//! record. Each DTO mirrors the engine's serde output member for member (the unit tests
//! compare the JSON), and the conversions match every engine variant, so a new variant does
//! not compile until the document says it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::ids::{GroupId, RecordId, TicketId, UserId};
use crate::domain::template::{self as engine, FieldType, SlaCategory, Unavailable};

/// Why a transition is unavailable, told by `code` (with `explain`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(discriminator(property_name = "code", mapping(
    ("unknown_transition" = "#/components/schemas/UnknownTransitionReason"),
    ("wrong_state" = "#/components/schemas/WrongStateReason"),
    ("not_permitted" = "#/components/schemas/NotPermittedReason"),
    ("guard_failed" = "#/components/schemas/GuardFailedReason"),
    ("missing_fields" = "#/components/schemas/MissingFieldsReason"),
)))]
pub enum TransitionReason {
    UnknownTransition(UnknownTransitionReason),
    WrongState(WrongStateReason),
    NotPermitted(NotPermittedReason),
    GuardFailed(GuardFailedReason),
    MissingFields(MissingFieldsReason),
}

/// Declares the one-value `code` enum of a reason (the variant in snake case is the code).
macro_rules! reason_code {
    ($name:ident, $variant:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $variant,
        }
    };
}

reason_code!(UnknownTransitionCode, UnknownTransition);
reason_code!(WrongStateCode, WrongState);
reason_code!(NotPermittedCode, NotPermitted);
reason_code!(GuardFailedCode, GuardFailed);
reason_code!(MissingFieldsCode, MissingFields);

/// No transition of the template has this key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"code": "unknown_transition", "transition": "reopen"}))]
pub struct UnknownTransitionReason {
    #[schema(inline)]
    pub code: UnknownTransitionCode,
    pub transition: String,
}

/// The ticket is in none of the states the transition leaves from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"code": "wrong_state", "current": "new", "from": ["in_progress"]}))]
pub struct WrongStateReason {
    #[schema(inline)]
    pub code: WrongStateCode,
    /// The ticket's state.
    pub current: String,
    /// The states the transition leaves from (`["*"]`: any non-terminal state).
    pub from: Vec<String>,
}

/// The caller matches none of the transition's `allowed` entries.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"code": "not_permitted"}))]
pub struct NotPermittedReason {
    #[schema(inline)]
    pub code: NotPermittedCode,
}

/// The transition's guard does not hold on the ticket as stored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"code": "guard_failed", "clause": "/all/0",
    "description": "impact = high"}))]
pub struct GuardFailedReason {
    #[schema(inline)]
    pub code: GuardFailedCode,
    /// JSON pointer to the clause of the guard that failed.
    pub clause: String,
    /// The failed condition in words; `condition not met` for requesters and partners when
    /// it compares an internal field.
    pub description: String,
}

/// Fields that must be set and are not (requesters and partners: public fields only, so the
/// list may be empty).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"code": "missing_fields", "fields": ["resolution"]}))]
pub struct MissingFieldsReason {
    #[schema(inline)]
    pub code: MissingFieldsCode,
    pub fields: Vec<String>,
}

impl From<Unavailable> for TransitionReason {
    fn from(reason: Unavailable) -> Self {
        match reason {
            Unavailable::UnknownTransition { transition } => {
                Self::UnknownTransition(UnknownTransitionReason {
                    code: UnknownTransitionCode::UnknownTransition,
                    transition,
                })
            }
            Unavailable::WrongState { current, from } => Self::WrongState(WrongStateReason {
                code: WrongStateCode::WrongState,
                current,
                from,
            }),
            Unavailable::NotPermitted => Self::NotPermitted(NotPermittedReason {
                code: NotPermittedCode::NotPermitted,
            }),
            Unavailable::GuardFailed {
                clause,
                description,
            } => Self::GuardFailed(GuardFailedReason {
                code: GuardFailedCode::GuardFailed,
                clause,
                description,
            }),
            Unavailable::MissingFields { fields } => Self::MissingFields(MissingFieldsReason {
                code: MissingFieldsCode::MissingFields,
                fields,
            }),
        }
    }
}

/// What a transition changes (or, in a dry run, would change), as the caller may see it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"transition": "resolve", "from": "in_progress", "to": "resolved",
    "sla": "stopped",
    "field_changes": [{"field": "resolution", "old": null, "new": "再起動で復旧"}],
    "actions": [{"type": "notify", "event": "incident.resolved"}]}))]
pub struct TransitionPlan {
    pub transition: String,
    pub from: String,
    pub to: String,
    /// The SLA category of the target state.
    pub sla: SlaCategory,
    /// In field order; `set_field` actions are here too.
    pub field_changes: Vec<PlannedFieldChange>,
    /// In definition order (without `set_field`, which is in `field_changes`).
    pub actions: Vec<PlannedAction>,
}

/// A field's value before and after the transition.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlannedFieldChange {
    pub field: String,
    /// The value before: any JSON value the field holds, null when unset.
    #[schema(value_type = Value)]
    pub old: Value,
    /// The value after: any JSON value the field holds, null when unset.
    #[schema(value_type = Value)]
    pub new: Value,
}

/// An action the transition executes, resolved against the ticket, told by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlannedAction {
    /// Assigns the ticket.
    Assign { assignee: PlannedAssignee },
    /// Files a child ticket with these field values.
    CreateChildTicket {
        template: String,
        fields: MappedFields,
    },
    /// Creates or updates a record of a library.
    LibraryUpsert {
        library: String,
        /// The record named by the action's `record_field`, when that field is set.
        #[serde(skip_serializing_if = "Option::is_none")]
        record: Option<RecordId>,
        /// Where a created record's id is written back.
        #[serde(skip_serializing_if = "Option::is_none")]
        record_field: Option<String>,
        fields: MappedFields,
    },
    /// Updates a record of a library.
    LibraryUpdate {
        library: String,
        record: RecordId,
        fields: MappedFields,
    },
    /// Records an event for integrations (see `TransitionResult.events`).
    Notify { event: String },
}

/// Whom an `assign` action assigns, told by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlannedAssignee {
    /// A user.
    User { id: UserId },
    /// A group by id, taken from a group field.
    Group { id: GroupId },
    /// A group by key, as written in the definition.
    GroupKey { key: String },
}

/// The values an action writes, by target field.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(transparent)]
pub struct MappedFields(pub BTreeMap<String, MappedValue>);

/// Where a value an action writes comes from, told by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MappedValue {
    /// A field of this ticket (its value after the transition's field changes).
    Copied {
        /// Any JSON value the source field holds.
        #[schema(value_type = Value)]
        value: Value,
        source_type: FieldType,
    },
    /// A literal from the definition, converted for the target field when written.
    Literal { text: String },
}

/// The payload of a `ticket.notify` event a `notify` action records for integrations.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"ticket_id": "019ac0d2-4a00-7000-8000-0000000000a1",
    "key": "INC-42", "template": "itil_incident", "state": "in_progress",
    "event": "incident.resolved", "transition": "resolve", "to_state": "resolved"}))]
pub struct NotifyEvent {
    pub ticket_id: TicketId,
    /// The ticket's key (`INC-42`).
    pub key: String,
    /// The ticket's template.
    pub template: String,
    /// The ticket's state when the action ran.
    pub state: String,
    /// The event name the action names.
    pub event: String,
    pub transition: String,
    /// The state the transition leads to.
    pub to_state: String,
}

impl From<engine::TransitionPlan> for TransitionPlan {
    fn from(plan: engine::TransitionPlan) -> Self {
        Self {
            transition: plan.transition,
            from: plan.from,
            to: plan.to,
            sla: plan.sla,
            field_changes: plan
                .field_changes
                .into_iter()
                .map(|c| PlannedFieldChange {
                    field: c.field,
                    old: c.old,
                    new: c.new,
                })
                .collect(),
            actions: plan.actions.into_iter().map(PlannedAction::from).collect(),
        }
    }
}

fn mapped(fields: BTreeMap<String, engine::MappedValue>) -> MappedFields {
    MappedFields(
        fields
            .into_iter()
            .map(|(target, value)| (target, MappedValue::from(value)))
            .collect(),
    )
}

impl From<engine::PlannedAction> for PlannedAction {
    fn from(action: engine::PlannedAction) -> Self {
        use engine::PlannedAction as A;
        match action {
            A::Assign { assignee } => Self::Assign {
                assignee: assignee.into(),
            },
            A::CreateChildTicket { template, fields } => Self::CreateChildTicket {
                template,
                fields: mapped(fields),
            },
            A::LibraryUpsert {
                library,
                record,
                record_field,
                fields,
            } => Self::LibraryUpsert {
                library,
                record,
                record_field,
                fields: mapped(fields),
            },
            A::LibraryUpdate {
                library,
                record,
                fields,
            } => Self::LibraryUpdate {
                library,
                record,
                fields: mapped(fields),
            },
            A::Notify { event } => Self::Notify { event },
        }
    }
}

impl From<engine::Assignee> for PlannedAssignee {
    fn from(assignee: engine::Assignee) -> Self {
        match assignee {
            engine::Assignee::User { id } => Self::User { id },
            engine::Assignee::Group { id } => Self::Group { id },
            engine::Assignee::GroupKey { key } => Self::GroupKey { key },
        }
    }
}

impl From<engine::MappedValue> for MappedValue {
    fn from(value: engine::MappedValue) -> Self {
        match value {
            engine::MappedValue::Copied { value, source_type } => {
                Self::Copied { value, source_type }
            }
            engine::MappedValue::Literal { text } => Self::Literal { text },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_json<D: Serialize, W: Serialize>(domain: &D, wire: &W) {
        let (d, w) = (serde_json::to_value(domain), serde_json::to_value(wire));
        assert_eq!(d.ok(), w.ok());
    }

    #[test]
    fn reasons_serialize_as_the_engine_does() {
        let reasons = [
            Unavailable::UnknownTransition {
                transition: "x".to_owned(),
            },
            Unavailable::WrongState {
                current: "new".to_owned(),
                from: vec!["*".to_owned()],
            },
            Unavailable::NotPermitted,
            Unavailable::GuardFailed {
                clause: "/all/0".to_owned(),
                description: "impact = high".to_owned(),
            },
            Unavailable::MissingFields {
                fields: vec!["resolution".to_owned()],
            },
        ];
        for reason in reasons {
            let wire = TransitionReason::from(reason.clone());
            same_json(&reason, &wire);
            let code = serde_json::to_value(&wire).ok().map(|v| v["code"].clone());
            assert_eq!(code, Some(json!(reason.code())));
        }
    }

    #[test]
    fn plans_serialize_as_the_engine_does() {
        let id = uuid::Uuid::now_v7();
        let copied = engine::MappedValue::Copied {
            value: json!("high"),
            source_type: FieldType::Select,
        };
        let literal = engine::MappedValue::Literal {
            text: "1".to_owned(),
        };
        let fields: BTreeMap<String, engine::MappedValue> =
            [("a".to_owned(), copied), ("b".to_owned(), literal)].into();
        let plan = engine::TransitionPlan {
            transition: "resolve".to_owned(),
            from: "new".to_owned(),
            to: "resolved".to_owned(),
            sla: SlaCategory::Stopped,
            field_changes: vec![engine::FieldChange {
                field: "impact".to_owned(),
                old: Value::Null,
                new: json!(3),
            }],
            actions: vec![
                engine::PlannedAction::Assign {
                    assignee: engine::Assignee::User { id: UserId(id) },
                },
                engine::PlannedAction::Assign {
                    assignee: engine::Assignee::Group { id: GroupId(id) },
                },
                engine::PlannedAction::Assign {
                    assignee: engine::Assignee::GroupKey {
                        key: "l2".to_owned(),
                    },
                },
                engine::PlannedAction::CreateChildTicket {
                    template: "task".to_owned(),
                    fields: fields.clone(),
                },
                engine::PlannedAction::LibraryUpsert {
                    library: "kb".to_owned(),
                    record: None,
                    record_field: Some("article".to_owned()),
                    fields: fields.clone(),
                },
                engine::PlannedAction::LibraryUpsert {
                    library: "kb".to_owned(),
                    record: Some(RecordId(id)),
                    record_field: None,
                    fields: BTreeMap::new(),
                },
                engine::PlannedAction::LibraryUpdate {
                    library: "kb".to_owned(),
                    record: RecordId(id),
                    fields,
                },
                engine::PlannedAction::Notify {
                    event: "e".to_owned(),
                },
            ],
        };
        same_json(&plan, &TransitionPlan::from(plan.clone()));
    }
}
