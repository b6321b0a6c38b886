//! The event log: every change writes one event in its own transaction (the use cases call
//! the writers below), and the feed reads them back in commit order with the audience rules
//! applied — decided when the event is written (who may read it; what requesters and
//! partners read instead), so the feed only filters.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::{Principal, TenantScope};
use crate::db::audit::Actor;
use crate::db::events::{FeedFilter, FeedVisibility, NewEvent, Position, RestrictedReader};
use crate::db::tickets::NewHistory;
use crate::db::{self, DbConnection};
use crate::domain::event::{EventAudience, EventReader, EventType, SubjectType};
use crate::domain::identity::Role;
use crate::domain::ids::{EntityId, EventId, OrganizationId, TenantId, TicketId, UserId};
use crate::domain::library::Reader;
use crate::domain::template::{TemplateDefinition, public_only};
use crate::domain::ticket::HistoryKind;
use crate::service::error::ServiceError;

pub use crate::db::events::EventRow;

/// One event to write.
#[derive(Debug, Clone)]
pub(crate) struct Emit<'a> {
    pub event_type: EventType,
    pub subject_type: SubjectType,
    pub subject_id: EntityId,
    pub ticket: Option<TicketId>,
    /// The template key (ticket and template events) or library key (record events).
    pub container: Option<&'a str>,
    pub audience: EventAudience,
    pub payload: Value,
    /// What requesters and partners read instead; `None`: the event is not for them.
    pub restricted: Option<Value>,
}

/// Writes one event in the caller's transaction, and its webhook deliveries (the outbox).
pub(crate) fn emit(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    at: DateTime<Utc>,
    event: Emit<'_>,
) -> Result<(), ServiceError> {
    let id = EventId::new_at(at);
    let payload = event.payload;
    db::events::insert(
        conn,
        scope,
        NewEvent {
            id,
            at: at.into(),
            event_type: event.event_type.as_str(),
            actor_kind: actor.kind,
            actor_id: actor.id,
            actor_name: &actor.name,
            subject_type: event.subject_type.as_str(),
            subject_id: event.subject_id,
            ticket_id: event.ticket,
            container: event.container,
            audience: event.audience.as_str(),
            payload: payload.clone(),
            restricted_payload: event.restricted,
        },
    )?;
    if let (SubjectType::Ticket, Some(template), Some(ticket)) =
        (event.subject_type, event.container, event.ticket)
    {
        super::notifications::enqueue(
            conn,
            scope,
            &super::notifications::TicketEvent {
                id,
                event_type: event.event_type,
                template,
                ticket,
                actor,
                payload: &payload,
            },
            at,
        )?;
    }
    super::webhooks::enqueue(
        conn,
        scope,
        &super::webhooks::OutboxEvent {
            event_type: event.event_type,
            container: event.container,
        },
        at,
    )
}

/// The body of a webhook delivery of an event: the event as `GET /events` shows it to a
/// tenant admin, without `cursor` (deliveries keep no copy; it is made when sent).
pub fn delivery_body(tenant: TenantId, row: &EventRow) -> Result<Value, ServiceError> {
    let subject_type = SubjectType::from_storage(&row.subject_type)
        .map_err(|e| ServiceError::Internal(format!("event {}: {e}", row.id)))?;
    let container = row.container.as_deref();
    let (template, library) = match subject_type {
        SubjectType::Record => (None, container),
        SubjectType::Ticket | SubjectType::Template => (container, None),
        SubjectType::User
        | SubjectType::Webhook
        | SubjectType::MailMessage
        | SubjectType::Announcement => (None, None),
    };
    Ok(json!({
        "id": row.id,
        "type": row.event_type,
        "occurred_at": row.at.0,
        "tenant": tenant,
        "actor": {"kind": row.actor_kind, "id": row.actor_id, "name": row.actor_name},
        "subject": {
            "kind": subject_type,
            "id": row.subject_id,
            "key": subject_key(subject_type, container, &row.payload.0),
        },
        "ticket_id": row.ticket_id,
        "template": template,
        "library": library,
        "data": row.payload.0,
    }))
}

/// The human key of an event's subject, when it has one: a ticket's key (`INC-42`), a
/// template's key, a user's username — taken from what the event carries.
pub fn subject_key(
    subject_type: SubjectType,
    container: Option<&str>,
    payload: &Value,
) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match subject_type {
        SubjectType::Ticket => text(&payload["ticket"]["key"]),
        SubjectType::Template => container.map(str::to_owned),
        SubjectType::User => text(&payload["user"]["username"]),
        SubjectType::Record
        | SubjectType::Webhook
        | SubjectType::MailMessage
        | SubjectType::Announcement => None,
    }
}

/// A ticket as its events name it (the `Ticket` summary fields of the API).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TicketSummary<'a> {
    pub id: TicketId,
    pub key: String,
    pub template: &'a str,
    pub title: &'a str,
    pub stage: &'a str,
    pub state: &'a str,
    pub closed: bool,
    pub version: i64,
}

/// A history row in the shape of the API's `HistoryEntry`.
fn history_entry(row: &NewHistory) -> Value {
    json!({
        "ticket_version": row.ticket_version,
        "ordinal": row.ordinal,
        "at": row.at.0,
        "actor": {"kind": row.actor_kind, "id": row.actor_id, "name": row.actor_name},
        "kind": row.kind,
        "transition": row.transition,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "field": row.field,
        "old_value": row.old_value.as_ref().map(|v| &v.0),
        "new_value": row.new_value.as_ref().map(|v| &v.0),
    })
}

/// What one change of a ticket was, from its history rows.
fn ticket_event_type(rows: &[NewHistory]) -> EventType {
    let has = |kind: HistoryKind| rows.iter().any(|r| r.kind == kind.as_str());
    if has(HistoryKind::Created) {
        EventType::TicketCreated
    } else if has(HistoryKind::Transition) {
        EventType::TicketTransitioned
    } else if rows.iter().all(|r| {
        r.kind == HistoryKind::AttributeChanged.as_str()
            && matches!(r.field.as_deref(), Some("assignee" | "group"))
    }) {
        EventType::TicketAssigned
    } else {
        EventType::TicketUpdated
    }
}

/// The event of one ticket change (creation, transition, edit): the ticket and the change's
/// history entries; requesters and partners read the entries they may see, with the
/// creation's internal values left out.
pub(crate) fn ticket_changed(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    def: &TemplateDefinition,
    ticket: &TicketSummary<'_>,
    rows: &[NewHistory],
) -> Result<(), ServiceError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let changes: Vec<Value> = rows.iter().map(history_entry).collect();
    let restricted: Vec<Value> = rows
        .iter()
        .filter(|r| !r.internal)
        .map(|r| {
            let mut entry = history_entry(r);
            if r.kind == HistoryKind::Created.as_str()
                && let Some(Value::Object(fields)) = entry.get_mut("new_value")
            {
                *fields = public_only(def, std::mem::take(fields));
            }
            entry
        })
        .collect();
    let payload = |changes: Vec<Value>| json!({"ticket": ticket, "changes": changes});
    emit(
        conn,
        scope,
        actor,
        first.at.0,
        Emit {
            event_type: ticket_event_type(rows),
            subject_type: SubjectType::Ticket,
            subject_id: EntityId(ticket.id.0),
            ticket: Some(ticket.id),
            container: Some(ticket.template),
            audience: EventAudience::Tickets,
            restricted: (!restricted.is_empty()).then(|| payload(restricted)),
            payload: payload(changes),
        },
    )
}

/// An event about something added to a ticket (a comment, an attachment, a link, a watcher,
/// a `notify` action): `{"ticket": …, <name>: value}`. `public`: requesters and partners of
/// the ticket read it too.
#[expect(
    clippy::too_many_arguments,
    reason = "the ticket, the addition, and who reads it"
)]
pub(crate) fn ticket_activity(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    at: DateTime<Utc>,
    ticket: &TicketSummary<'_>,
    event_type: EventType,
    (name, value): (&str, Value),
    public: bool,
) -> Result<(), ServiceError> {
    let payload = json!({"ticket": ticket, name: value});
    emit(
        conn,
        scope,
        actor,
        at,
        Emit {
            event_type,
            subject_type: SubjectType::Ticket,
            subject_id: EntityId(ticket.id.0),
            ticket: Some(ticket.id),
            container: Some(ticket.template),
            audience: EventAudience::Tickets,
            restricted: public.then(|| payload.clone()),
            payload,
        },
    )
}

/// Who reads the feed: resolved once per request from the principal.
#[derive(Debug, Clone)]
pub struct FeedCaller {
    pub scope: TenantScope,
    roles: Vec<Role>,
    user: Option<UserId>,
    organization: Option<OrganizationId>,
}

impl FeedCaller {
    /// Any tenant caller (what it reads follows its roles); 403 for the operator.
    pub fn of(principal: &Principal) -> Result<Self, ServiceError> {
        let scope = principal.require(&Role::ALL)?;
        let user = principal.user().ok();
        Ok(Self {
            scope,
            roles: super::tickets::held_roles(principal),
            user: user.map(|u| u.id),
            organization: user.and_then(|u| u.organization_id),
        })
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            roles: &self.roles,
            organization: self.organization,
        }
    }

    /// Whether this caller reads the restricted payloads.
    pub fn restricted(&self) -> bool {
        !EventReader::of(&self.roles).staff
    }

    fn visibility(&self, conn: &mut DbConnection) -> Result<FeedVisibility, ServiceError> {
        let reader = EventReader::of(&self.roles);
        let libraries = super::libraries::all_readable(conn, &self.scope, &self.reader())?;
        if reader.staff {
            return Ok(FeedVisibility {
                full_audiences: reader
                    .full_audiences()
                    .into_iter()
                    .map(EventAudience::as_str)
                    .collect(),
                full_libraries: libraries,
                restricted: None,
            });
        }
        Ok(FeedVisibility {
            restricted: Some(RestrictedReader {
                user: self.user,
                organization: self.organization,
                libraries,
            }),
            ..FeedVisibility::default()
        })
    }
}

/// What a client asked of the feed.
#[derive(Debug, Clone, Default)]
pub struct FeedRequest {
    pub after: Position,
    pub types: Vec<EventType>,
    pub subject: Option<EntityId>,
    pub limit: i64,
}

/// One page of the feed after `request.after`; each row's payload is the one the caller may
/// read (the restricted one for requesters and partners).
pub fn feed(
    conn: &mut DbConnection,
    caller: &FeedCaller,
    request: &FeedRequest,
) -> Result<Vec<EventRow>, ServiceError> {
    let visibility = caller.visibility(conn)?;
    let filter = FeedFilter {
        types: request.types.iter().map(|t| t.as_str()).collect(),
        subject: request.subject,
    };
    let mut rows = db::events::after(
        conn,
        &caller.scope,
        &visibility,
        &filter,
        request.after,
        request.limit,
    )?;
    if caller.restricted() {
        for row in &mut rows {
            if let Some(restricted) = row.restricted_payload.take() {
                row.payload = restricted;
            }
        }
    }
    for row in &mut rows {
        row.restricted_payload = None;
    }
    Ok(rows)
}

/// Where a live stream without a position starts: after the last readable event.
pub fn latest(conn: &mut DbConnection, caller: &FeedCaller) -> Result<Position, ServiceError> {
    Ok(db::events::latest(conn, &caller.scope)?)
}
