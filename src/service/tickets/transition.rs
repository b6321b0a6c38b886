//! Transitions: what the caller can do next, and firing one — the state change, the field
//! changes, the actions and the history in one transaction, or nothing at all.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    HistoryBatch, LoadedTicket, NewTicketRequest, TicketCaller, apply_change, create_from,
    event_payload, load, load_for_update, master_items,
};
use crate::api::error::ApiError;
use crate::db::tickets::{CommentRow, LINK_PARENT, LinkRow, TicketChanges};
use crate::db::types::Json;
use crate::db::{self, DbConnection};
use crate::domain::template::{
    ActorView, Assignee, Facts, MappedValue, PlanError, PlannedAction, TicketView,
    TransitionOption, TransitionPlan, Unavailable, available_transitions, convert_literal,
    convert_mapped, plan_transition,
};
use crate::domain::ticket::{self, Audience};
use crate::ids::{GroupId, LinkId, RecordId, TicketId, UserId};
use crate::service::definitions::DefinitionCache;
use crate::service::error::FieldError;
use crate::service::libraries::{
    ActionTarget, LibraryWrite, Source, Writer, write_from_transition,
};

/// A comment written with a transition or on its own.
#[derive(Debug, Clone)]
pub struct NewComment {
    pub body: String,
    pub internal: bool,
}

#[derive(Debug, Clone)]
pub struct TransitionRequest {
    pub transition: String,
    pub fields: Map<String, Value>,
    pub comment: Option<NewComment>,
}

/// What a transition did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct TransitionOutcome {
    pub ticket: LoadedTicket,
    pub plan: TransitionPlan,
    pub children: Vec<LoadedTicket>,
    /// Records written by `library_upsert` / `library_update` actions, in order.
    pub library_writes: Vec<LibraryWrite>,
    /// Events recorded by `notify` actions (kind `ticket.notify`), in order.
    pub events: Vec<Value>,
    pub comment: Option<CommentRow>,
}

fn actor_view(conn: &mut DbConnection, caller: &TicketCaller) -> Result<ActorView, ApiError> {
    let groups = db::groups::names(conn, &caller.scope, &caller.groups)?;
    Ok(ActorView {
        user: caller.user.map(|u| u.0),
        roles: caller.roles.clone(),
        groups,
    })
}

/// The facts guards may consult; loaded only when a guard of the template uses one.
fn facts(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    ticket: &LoadedTicket,
) -> Result<Facts, ApiError> {
    let needed = ticket
        .def
        .transitions
        .iter()
        .any(|t| t.guard.as_ref().is_some_and(|g| g.uses_facts()));
    Ok(Facts {
        all_children_closed: needed
            && db::tickets::all_children_closed(conn, &caller.scope, ticket.row.id)?,
    })
}

fn view<'a>(ticket: &'a LoadedTicket, fields: &'a Map<String, Value>) -> TicketView<'a> {
    TicketView {
        state: &ticket.row.state,
        fields,
        assignee: ticket.row.assignee_id.map(|u| u.0),
        requester: ticket.row.requester_id.map(|u| u.0),
    }
}

/// The transitions the caller can take now (with `explain`, every transition and why not).
pub fn options(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    explain: bool,
) -> Result<(LoadedTicket, Vec<TransitionOption>), ApiError> {
    let ticket = load(conn, defs, caller, id)?;
    let actor = actor_view(conn, caller)?;
    let facts = facts(conn, caller, &ticket)?;
    let fields = ticket.fields();
    let mut options = available_transitions(
        &ticket.def,
        &view(&ticket, &fields),
        &actor,
        &facts,
        explain,
    );
    if !caller.audience.is_staff() {
        // Restricted callers never learn the names of internal fields.
        for option in &mut options {
            option
                .required_fields
                .retain(|f| ticket.def.field(f).is_none_or(|d| !d.internal));
        }
    }
    Ok((ticket, options))
}

fn transition_error(errors: Vec<PlanError>, state: &str) -> ApiError {
    let mut fields = Vec::new();
    let mut conflict = Vec::new();
    let mut forbidden = false;
    for error in errors {
        match error {
            PlanError::Field(v) => fields.push(FieldError::new(v.field, v.code, v.message)),
            PlanError::Unavailable(Unavailable::UnknownTransition { transition }) => {
                return ApiError::validation(
                    "transition",
                    "unknown_transition",
                    format!("the template has no transition '{transition}'"),
                );
            }
            PlanError::Unavailable(Unavailable::WrongState { current, from }) => {
                conflict.push(format!(
                    "the ticket is in state '{current}' and the transition leaves from: {}",
                    from.join(", ")
                ))
            }
            PlanError::Unavailable(Unavailable::NotPermitted) => forbidden = true,
            PlanError::Unavailable(Unavailable::GuardFailed { description, .. }) => {
                conflict.push(format!("its condition does not hold: {description}"));
            }
            PlanError::Unavailable(Unavailable::MissingFields { fields: missing }) => {
                fields.extend(missing.into_iter().map(|f| {
                    FieldError::new(
                        format!("fields.{f}"),
                        "required",
                        "this transition needs it",
                    )
                }));
            }
        }
    }
    if !conflict.is_empty() {
        return ApiError::Conflict {
            code: "/problems/transition-unavailable",
            detail: format!(
                "The transition is not available from state '{state}': {}.",
                conflict.join("; ")
            ),
        };
    }
    if forbidden {
        return ApiError::Forbidden("You may not take this transition on this ticket.".to_owned());
    }
    ApiError::Validation(fields)
}

fn action_failed(detail: String) -> ApiError {
    ApiError::Conflict {
        code: "/problems/action-failed",
        detail,
    }
}

/// Fires a transition. With `dry_run`, everything is executed and then rolled back, so the
/// verdict (including the actions' own checks) is exactly what a real request would get.
#[expect(clippy::too_many_arguments, reason = "one use case")]
pub fn fire(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    expected_version: Option<i64>,
    request: &TransitionRequest,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<TransitionOutcome, ApiError> {
    if !dry_run {
        return execute(conn, defs, caller, id, expected_version, request, now);
    }
    enum Undo {
        Done(Box<TransitionOutcome>),
        Failed(ApiError),
    }
    impl From<diesel::result::Error> for Undo {
        fn from(e: diesel::result::Error) -> Self {
            Undo::Failed(e.into())
        }
    }
    let result = diesel::Connection::transaction::<(), Undo, _>(conn, |c| {
        match execute(c, defs, caller, id, expected_version, request, now) {
            Ok(outcome) => Err(Undo::Done(Box::new(outcome))),
            Err(e) => Err(Undo::Failed(e)),
        }
    });
    match result {
        Err(Undo::Done(outcome)) => Ok(*outcome),
        Err(Undo::Failed(e)) => Err(e),
        Ok(()) => Err(ApiError::Internal("dry run committed".to_owned())),
    }
}

fn execute(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    expected_version: Option<i64>,
    request: &TransitionRequest,
    now: DateTime<Utc>,
) -> Result<TransitionOutcome, ApiError> {
    let scope = &caller.scope;
    let ticket = load_for_update(conn, defs, caller, id)?;
    crate::service::error::check_version(expected_version, ticket.row.version)?;
    caller.require_writer()?;
    crate::service::fields::refuse_internal(
        &*ticket.def,
        caller.audience.is_staff(),
        &request.fields,
        "template",
    )?;
    if let Some(comment) = &request.comment
        && comment.internal
        && !caller.audience.is_staff()
    {
        return Err(ApiError::Forbidden(
            "Only staff write internal comments.".to_owned(),
        ));
    }
    let def = ticket.def.clone();
    let old = ticket.fields();
    let actor = actor_view(conn, caller)?;
    let facts = facts(conn, caller, &ticket)?;
    let masters = master_items(conn, scope, &def, request.fields.keys())?;
    let plan = plan_transition(
        &def,
        &view(&ticket, &old),
        &actor,
        &facts,
        &request.transition,
        &request.fields,
        &masters,
    )
    .map_err(|e| transition_error(e, &ticket.row.state))?;
    let mut fields = old.clone();
    for change in &plan.field_changes {
        if change.new.is_null() {
            fields.remove(&change.field);
        } else {
            fields.insert(change.field.clone(), change.new.clone());
        }
    }
    crate::service::fields::check_references(
        conn,
        scope,
        &*def,
        &request.fields,
        &caller.reader(),
    )?;

    let version = ticket.row.version + 1;
    let mut history = HistoryBatch::new(caller, id, version, now.into());
    history.transition(&plan.transition, &plan.from, &plan.to);
    for change in &plan.field_changes {
        history.field(&def, &change.field, &change.old, &change.new);
    }
    let mut assignee = ticket.row.assignee_id;
    let mut group = ticket.row.group_id;
    let mut children = Vec::new();
    let mut library_writes = Vec::new();
    let source = Source::Ticket {
        id,
        key: ticket.row.key(),
        transition: plan.transition.clone(),
    };
    let writer = Writer {
        scope,
        actor: &caller.actor,
        source: &source,
        now,
    };
    let mut events = Vec::new();
    for action in &plan.actions {
        match action {
            PlannedAction::Assign { assignee: target } => match target {
                Assignee::User { id: user } => {
                    db::users::find(conn, scope, UserId(*user))?
                        .filter(|u| u.active)
                        .ok_or_else(|| action_failed(format!("assign: no active user {user}")))?;
                    assignee = Some(UserId(*user));
                }
                Assignee::Group { id: g } => {
                    db::groups::find_group(conn, scope, GroupId(*g))?
                        .ok_or_else(|| action_failed(format!("assign: no group {g}")))?;
                    group = Some(GroupId(*g));
                }
                Assignee::GroupKey { key } => {
                    let found =
                        db::groups::find_group_by_name(conn, scope, key)?.ok_or_else(|| {
                            action_failed(format!("assign: the tenant has no group '{key}'"))
                        })?;
                    group = Some(found.id);
                }
            },
            PlannedAction::CreateChildTicket {
                template,
                fields: mapped,
            } => {
                let child = create_child(conn, defs, caller, &ticket, template, mapped, now)?;
                db::tickets::insert_link(
                    conn,
                    &LinkRow {
                        tenant_id: scope.tenant_id(),
                        id: LinkId::new_at(now),
                        source_id: id,
                        target_id: child.row.id,
                        kind: LINK_PARENT.to_owned(),
                        created_by: caller.entity(),
                        created_at: now.into(),
                    },
                )?;
                children.push(child);
            }
            PlannedAction::Notify { event } => {
                let mut payload = event_payload(&ticket);
                if let Some(map) = payload.as_object_mut() {
                    map.insert("event".to_owned(), json!(event));
                    map.insert("transition".to_owned(), json!(plan.transition));
                    map.insert("to_state".to_owned(), json!(plan.to));
                }
                db::tickets::insert_event(
                    conn,
                    scope,
                    "ticket.notify",
                    Some(id),
                    payload.clone(),
                    now.into(),
                )?;
                events.push(payload);
            }
            PlannedAction::LibraryUpsert {
                library,
                record,
                record_field,
                fields: mapped,
            } => {
                let target = ActionTarget::Upsert {
                    record: record.map(RecordId),
                };
                let mut write = write_from_transition(conn, &writer, library, target, mapped)?;
                // The record written is linked in `record_field` when the field was empty
                // (a record the upsert created, or found as this ticket's earlier one).
                if record.is_none()
                    && let Some(field) = record_field
                {
                    let new = Value::String(write.record.id.0.to_string());
                    let old = fields.insert(field.clone(), new.clone());
                    history.field(&def, field, &old.unwrap_or(Value::Null), &new);
                    write.record_field = Some(field.clone());
                }
                library_writes.push(write);
            }
            PlannedAction::LibraryUpdate {
                library,
                record,
                fields: mapped,
            } => {
                let target = ActionTarget::Update {
                    record: RecordId(*record),
                };
                library_writes.push(write_from_transition(
                    conn, &writer, library, target, mapped,
                )?);
            }
        }
    }
    history.attribute(
        "assignee",
        ticket.row.assignee_id.map(|u| u.0),
        assignee.map(|u| u.0),
    );
    history.attribute(
        "group",
        ticket.row.group_id.map(|g| g.0),
        group.map(|g| g.0),
    );

    let (stage, target) = def
        .states()
        .find(|(_, s)| s.key == plan.to)
        .ok_or_else(|| ApiError::Internal("transition to an unknown state".to_owned()))?;
    let title = ticket::title_of(&def, &fields);
    let changes = TicketChanges {
        title: &title,
        stage: &stage.key,
        state: &target.key,
        closed: target.terminal,
        assignee_id: assignee,
        group_id: group,
        organization_id: ticket.row.organization_id,
        fields: Json(Value::Object(fields.clone())),
        version,
        updated_at: now.into(),
    };
    apply_change(
        conn,
        scope,
        &def,
        &ticket.row,
        &old,
        &changes,
        &fields,
        history,
    )?;
    let comment = match &request.comment {
        Some(c) => Some(super::insert_comment(conn, caller, id, c, now)?),
        None => None,
    };
    let ticket = load(conn, defs, caller, id)?;
    Ok(TransitionOutcome {
        ticket,
        plan,
        children,
        library_writes,
        events,
        comment,
    })
}

/// Creates the child ticket of a `create_child_ticket` action, from the mapped values. The
/// child is created with the workflow's authority (the parent's requester and organization),
/// whoever fired the transition.
fn create_child(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    parent: &LoadedTicket,
    template_key: &str,
    mapped: &std::collections::BTreeMap<String, MappedValue>,
    now: DateTime<Utc>,
) -> Result<LoadedTicket, ApiError> {
    let scope = &caller.scope;
    let failed = |why: &str| action_failed(format!("create_child_ticket '{template_key}': {why}"));
    let template = db::templates::find_template(conn, scope, template_key)?
        .ok_or_else(|| failed("the tenant has no such template"))?;
    let number = template
        .published_version
        .filter(|_| !template.archived)
        .ok_or_else(|| failed("the template is not published"))?;
    let def = defs.get(conn, scope, template.id, number)?;
    let mut fields = Map::new();
    for (target, value) in mapped {
        let field = def
            .field(target)
            .ok_or_else(|| failed(&format!("the template has no field '{target}'")))?;
        let converted = match value {
            MappedValue::Copied { value, source_type } => {
                convert_mapped(field.kind, *source_type, value)
            }
            MappedValue::Literal { text } => convert_literal(field.kind, text),
        }
        .ok_or_else(|| failed(&format!("the value for '{target}' does not fit its type")))?;
        if !converted.is_null() {
            fields.insert(target.clone(), converted);
        }
    }
    let workflow = TicketCaller {
        audience: Audience::Staff,
        worker: true,
        ..caller.clone()
    };
    let request = NewTicketRequest {
        template: template_key.to_owned(),
        fields,
        requester: parent.row.requester_id,
        assignee: None,
        group: None,
        organization: parent.row.organization_id,
    };
    create_from(
        conn,
        &workflow,
        &template.id,
        number,
        def,
        &request,
        now,
        &template.key,
    )
    .map_err(|e| match ApiError::from(e) {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = format!("create_child_ticket.{template_key}.{}", e.field);
                    e
                })
                .collect(),
        ),
        other => other,
    })
}
