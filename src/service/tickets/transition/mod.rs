//! Transitions: what the caller can do next, and firing one — the state change, the field
//! changes, the actions and the history in one transaction, or nothing at all.
//!
//! Firing runs in steps, each a function of its own: [`load_step`] (lock the ticket, check the
//! version and what the caller may write, gather what the guards consult) → [`plan`] (the
//! pure domain engine) → one function per planned action ([`actions`]), which build the
//! ticket's next version ([`Draft`]) and collect what they made ([`Produced`]) → [`apply`]
//! (the conditional update, the history rows, the index diff) → [`record`] (the comment and
//! the outcome). A dry run is the same steps in a savepoint that is always rolled back.

mod actions;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{HistoryBatch, LoadedTicket, TicketCaller, apply_change, load, load_for_update};
use crate::db::tickets::{CommentRow, TicketChanges};
use crate::db::types::Json;
use crate::db::{self, DbConnection};
use crate::domain::event::EventType;
use crate::domain::ids::{GroupId, TicketId, UserId};
use crate::domain::template::{
    ActorView, Facts, MasterItems, PlanError, TicketView, TransitionInput, TransitionKey,
    TransitionOption, TransitionPlan, Unavailable, available_transitions, plan_transition,
};
use crate::domain::ticket;
use crate::domain::ticket::Audience;
use crate::service::definitions::DefinitionCache;
use crate::service::error::{ConflictKind, FieldError, ServiceError, check_version};
use crate::service::events;
use crate::service::fields::{check_references, master_items, refuse_internal};
use crate::service::libraries::{LibraryWrite, Source, Writer};

/// A comment written with a transition or on its own.
#[derive(Debug, Clone)]
pub struct NewComment {
    pub body: String,
    pub internal: bool,
}

/// A transition request, parsed: the engine's input (a transition key, the supplied values)
/// and the comment written with it.
#[derive(Debug, Clone)]
pub struct TransitionRequest {
    pub input: TransitionInput,
    pub comment: Option<NewComment>,
}

impl TransitionRequest {
    /// Parses what a caller sent; a transition name that is not a key is refused as the
    /// engine refuses an unknown one (422 on `transition`).
    pub fn parse(
        transition: &str,
        fields: Map<String, Value>,
        comment: Option<NewComment>,
    ) -> Result<Self, ServiceError> {
        let transition = TransitionKey::parse(transition).map_err(|_| {
            ServiceError::validation(
                "transition",
                "unknown_transition",
                format!("the template has no transition '{transition}'"),
            )
        })?;
        Ok(Self {
            input: TransitionInput { transition, fields },
            comment,
        })
    }

    fn fields(&self) -> &Map<String, Value> {
        &self.input.fields
    }
}

/// Whether a transition is committed or only tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Written in the request's transaction.
    Execute,
    /// Executed to the end in a savepoint that is always rolled back, so the verdict
    /// (the actions' own checks included) is exactly what a real request would get.
    DryRun,
}

/// Who fires a transition on which ticket, when, and how.
#[derive(Debug, Clone, Copy)]
pub struct TransitionContext<'a> {
    pub definitions: &'a DefinitionCache,
    pub caller: &'a TicketCaller,
    pub ticket: TicketId,
    /// The version the caller saw (`If-Match`), when it sent one.
    pub expected_version: Option<i64>,
    pub now: DateTime<Utc>,
    pub mode: Mode,
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

fn actor_view(conn: &mut DbConnection, caller: &TicketCaller) -> Result<ActorView, ServiceError> {
    let groups = db::groups::names(conn, &caller.scope, &caller.groups)?;
    Ok(ActorView {
        user: caller.user,
        roles: caller.roles.clone(),
        groups,
    })
}

/// The facts guards may consult; loaded only when a guard of the template uses one.
fn facts(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    ticket: &LoadedTicket,
) -> Result<Facts, ServiceError> {
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
        assignee: ticket.row.assignee_id,
        requester: ticket.row.requester_id,
    }
}

/// The transitions the caller can take now (with `explain`, every transition and why not).
pub fn options(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    explain: bool,
) -> Result<(LoadedTicket, Vec<TransitionOption>), ServiceError> {
    let ticket = load(conn, defs, caller, id)?;
    let actor = actor_view(conn, caller)?;
    let facts = facts(conn, caller, &ticket)?;
    let fields = ticket.fields();
    let options = available_transitions(
        &ticket.def,
        &view(&ticket, &fields),
        &actor,
        &facts,
        explain,
    );
    Ok((ticket, options))
}

/// The refusal as the caller may see it: every reason passes through the audience rules
/// first, so a requester or partner learns no internal field's name or condition. A transition
/// that needs only internal fields they cannot supply is unavailable to them (409), not a
/// validation error naming those fields.
fn transition_error(
    errors: Vec<PlanError>,
    ticket: &LoadedTicket,
    audience: &Audience,
    transition: &str,
) -> ServiceError {
    let def = &ticket.def;
    let mut refusal = Refusal::default();
    for error in errors {
        match error {
            PlanError::Field(v) => refusal
                .fields
                .push(FieldError::new(v.field, v.code, v.message)),
            PlanError::Unavailable(r) => {
                let seen = audience.reason(def, def.transition(transition), r);
                if let Some(unknown) = refusal.add(seen) {
                    return unknown;
                }
            }
        }
    }
    refusal.into_error(&ticket.row.state)
}

/// The reasons a transition was refused, gathered into the one error the caller gets:
/// 409 when any reason is about state or condition, else 403 when not permitted, else 422.
#[derive(Default)]
struct Refusal {
    fields: Vec<FieldError>,
    conflict: Vec<String>,
    forbidden: bool,
}

impl Refusal {
    /// Adds one reason; an unknown transition is answered at once (422), returned here.
    fn add(&mut self, reason: Unavailable) -> Option<ServiceError> {
        match reason {
            Unavailable::UnknownTransition { transition } => {
                return Some(ServiceError::validation(
                    "transition",
                    "unknown_transition",
                    format!("the template has no transition '{transition}'"),
                ));
            }
            Unavailable::WrongState { current, from } => self.conflict.push(format!(
                "the ticket is in state '{current}' and the transition leaves from: {}",
                from.join(", ")
            )),
            Unavailable::NotPermitted => self.forbidden = true,
            Unavailable::GuardFailed { description, .. } => self
                .conflict
                .push(format!("its condition does not hold: {description}")),
            Unavailable::MissingFields { fields } if fields.is_empty() => self
                .conflict
                .push("it needs values that staff fill in first".to_owned()),
            Unavailable::MissingFields { fields } => {
                self.fields.extend(fields.into_iter().map(|f| {
                    FieldError::new(
                        format!("fields.{f}"),
                        "required",
                        "this transition needs it",
                    )
                }));
            }
        }
        None
    }

    fn into_error(self, state: &str) -> ServiceError {
        let Refusal {
            fields,
            conflict,
            forbidden,
        } = self;
        if !conflict.is_empty() {
            return ServiceError::conflict(
                ConflictKind::TransitionUnavailable,
                format!(
                    "The transition is not available from state '{state}': {}.",
                    conflict.join("; ")
                ),
            );
        }
        if forbidden {
            return ServiceError::Forbidden(
                "You may not take this transition on this ticket.".to_owned(),
            );
        }
        ServiceError::Validation(fields)
    }
}

/// Fires a transition: the steps below in the request's transaction, or, for
/// [`Mode::DryRun`], in a savepoint that is always rolled back.
pub fn fire(
    conn: &mut DbConnection,
    cx: &TransitionContext<'_>,
    request: &TransitionRequest,
) -> Result<TransitionOutcome, ServiceError> {
    match cx.mode {
        Mode::Execute => execute(conn, cx, request),
        Mode::DryRun => crate::service::rolled_back(conn, |c| execute(c, cx, request)),
    }
}

/// The steps of one transition, in order; any error rolls the whole transition back.
fn execute(
    conn: &mut DbConnection,
    cx: &TransitionContext<'_>,
    request: &TransitionRequest,
) -> Result<TransitionOutcome, ServiceError> {
    let loaded = load_step(conn, cx, request)?;
    let plan = plan(&loaded, &cx.caller.audience, request)?;
    check_references(
        conn,
        &cx.caller.scope,
        &*loaded.ticket.def,
        request.fields(),
        &cx.caller.reader(),
    )?;
    let firing = Firing::new(cx, &loaded, &plan);
    let mut draft = Draft::start(&firing);
    let mut produced = Produced::default();
    for action in &plan.actions {
        actions::perform(conn, &firing, action, &mut draft, &mut produced)?;
    }
    apply(conn, &firing, draft)?;
    record(conn, cx, request, plan, produced)
}

/// The ticket as locked, and everything the plan is decided on.
struct Loaded {
    ticket: LoadedTicket,
    /// The ticket's values before the transition.
    fields: Map<String, Value>,
    actor: ActorView,
    facts: Facts,
    masters: MasterItems,
}

/// Load: locks the ticket (404 unless the caller sees it), checks the expected version after
/// the lock, refuses what the caller may not write, and gathers what the guards consult.
fn load_step(
    conn: &mut DbConnection,
    cx: &TransitionContext<'_>,
    request: &TransitionRequest,
) -> Result<Loaded, ServiceError> {
    let caller = cx.caller;
    let ticket = load_for_update(conn, cx.definitions, caller, cx.ticket)?;
    check_version(cx.expected_version, ticket.row.version)?;
    caller.require_writer()?;
    let staff = caller.audience.is_staff();
    refuse_internal(&*ticket.def, staff, request.fields(), "template")?;
    if request.comment.as_ref().is_some_and(|c| c.internal) && !staff {
        return Err(ServiceError::Forbidden(
            "Only staff write internal comments.".to_owned(),
        ));
    }
    let actor = actor_view(conn, caller)?;
    let facts = facts(conn, caller, &ticket)?;
    let masters = master_items(conn, &caller.scope, &*ticket.def, request.fields().keys())?;
    Ok(Loaded {
        fields: ticket.fields(),
        ticket,
        actor,
        facts,
        masters,
    })
}

/// Plan: the domain engine's decision, pure; its refusals become the request's error.
fn plan(
    loaded: &Loaded,
    audience: &Audience,
    request: &TransitionRequest,
) -> Result<TransitionPlan, ServiceError> {
    let ticket = &loaded.ticket;
    plan_transition(
        &ticket.def,
        &view(ticket, &loaded.fields),
        &loaded.actor,
        &loaded.facts,
        &request.input,
        &loaded.masters,
    )
    .map_err(|e| transition_error(e, ticket, audience, request.input.transition.as_str()))
}

/// What the actions of one planned transition share.
struct Firing<'a> {
    cx: &'a TransitionContext<'a>,
    loaded: &'a Loaded,
    plan: &'a TransitionPlan,
    /// What library records written by the actions name as their origin.
    source: Source,
}

impl<'a> Firing<'a> {
    fn new(cx: &'a TransitionContext<'a>, loaded: &'a Loaded, plan: &'a TransitionPlan) -> Self {
        let source = Source::Ticket {
            id: loaded.ticket.row.id,
            key: loaded.ticket.row.key(),
            transition: plan.transition.clone(),
        };
        Self {
            cx,
            loaded,
            plan,
            source,
        }
    }

    fn ticket(&self) -> &LoadedTicket {
        &self.loaded.ticket
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            scope: &self.cx.caller.scope,
            actor: &self.cx.caller.actor,
            source: &self.source,
            now: self.cx.now,
        }
    }
}

/// The ticket's next version as the actions build it, with its history rows.
struct Draft<'a> {
    version: i64,
    fields: Map<String, Value>,
    history: HistoryBatch<'a>,
    assignee: Option<UserId>,
    group: Option<GroupId>,
}

impl<'a> Draft<'a> {
    /// The transition's history row, then the plan's field changes (`set_field`).
    fn start(firing: &Firing<'a>) -> Self {
        let row = &firing.ticket().row;
        let version = row.version + 1;
        let caller = firing.cx.caller;
        let mut history = HistoryBatch::new(
            caller,
            (row.id, row.template_id),
            version,
            firing.cx.now.into(),
        );
        let plan = firing.plan;
        history.transition(
            &plan.transition,
            (&plan.from, row.state_entered_at),
            &plan.to,
        );
        let mut draft = Self {
            version,
            fields: firing.loaded.fields.clone(),
            history,
            assignee: row.assignee_id,
            group: row.group_id,
        };
        actions::set_fields(&mut draft, &firing.ticket().def, plan);
        draft
    }
}

/// What the actions made besides the ticket's next version, in action order.
#[derive(Default)]
struct Produced {
    children: Vec<LoadedTicket>,
    library_writes: Vec<LibraryWrite>,
    events: Vec<Value>,
}

/// Apply: the attribute history rows, then the ticket's update — conditional on the version
/// it was loaded at (412 otherwise) — with its history and index diff.
fn apply(
    conn: &mut DbConnection,
    firing: &Firing<'_>,
    draft: Draft<'_>,
) -> Result<(), ServiceError> {
    let Draft {
        version,
        fields,
        mut history,
        assignee,
        group,
    } = draft;
    let loaded = firing.ticket();
    let LoadedTicket { row, def, .. } = loaded;
    history.attribute("assignee", row.assignee_id, assignee);
    history.attribute("group", row.group_id, group);
    let (stage, target) = def
        .states()
        .find(|(_, s)| s.key == firing.plan.to)
        .ok_or_else(|| ServiceError::Internal("transition to an unknown state".to_owned()))?;
    let title = ticket::title_of(def, &fields);
    let changes = TicketChanges {
        template_version: row.template_version,
        title: &title,
        stage: &stage.key,
        state: &target.key,
        closed: target.terminal,
        assignee_id: assignee,
        group_id: group,
        organization_id: row.organization_id,
        fields: Json(Value::Object(fields.clone())),
        version,
        updated_at: firing.cx.now.into(),
        state_entered_at: Some(firing.cx.now.into()),
    };
    let scope = &firing.cx.caller.scope;
    let old = &firing.loaded.fields;
    apply_change(conn, scope, loaded, old, &changes, &fields, history)
}

/// Record: the comment written with the transition, and the outcome with the ticket as it
/// now reads.
fn record(
    conn: &mut DbConnection,
    cx: &TransitionContext<'_>,
    request: &TransitionRequest,
    plan: TransitionPlan,
    produced: Produced,
) -> Result<TransitionOutcome, ServiceError> {
    let comment = match &request.comment {
        Some(c) => Some(super::insert_comment(
            conn, cx.caller, cx.ticket, c, cx.now,
        )?),
        None => None,
    };
    let ticket = load(conn, cx.definitions, cx.caller, cx.ticket)?;
    if let Some(row) = &comment {
        super::comment_event(conn, cx.caller, &ticket, row)?;
    }
    for event in &produced.events {
        let notify = json!({
            "event": event.get("event"),
            "transition": &plan.transition,
            "from_state": &plan.from,
            "to_state": &plan.to,
        });
        events::ticket_activity(
            conn,
            &cx.caller.scope,
            &cx.caller.actor,
            cx.now,
            &ticket.summary(),
            EventType::TicketNotify,
            ("notify", notify),
            true,
        )?;
    }
    Ok(TransitionOutcome {
        ticket,
        plan,
        children: produced.children,
        library_writes: produced.library_writes,
        events: produced.events,
        comment,
    })
}
