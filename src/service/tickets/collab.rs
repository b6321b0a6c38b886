//! Comments, watchers and links of a ticket (attachments: `attachments.rs`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{LoadedTicket, TicketCaller, load};
use crate::db::tickets::{
    CommentRow, LINK_DUPLICATE_OF, LINK_PARENT, LINK_RELATED, LinkRow, SOURCE_COMMENTS,
    SOURCE_INTERNAL_COMMENTS,
};
use crate::db::types::Json;
use crate::db::{self, DbConnection};
use crate::domain::event::EventType;
use crate::domain::ids::{CommentId, LinkId, TicketId, UserId};
use crate::domain::search;
use crate::domain::ticket::HistoryKind;
pub use crate::domain::ticket::LinkKind;
use crate::domain::ticket::MAX_LINKS_PER_TICKET;
use crate::service::definitions::DefinitionCache;
use crate::service::error::{ConflictKind, ServiceError};
use crate::service::events;
use serde_json::{Value, json};

use super::transition::NewComment;

/// Longest comment body, in characters.
pub const MAX_COMMENT_CHARS: usize = 20_000;

/// Writes a comment and its search tokens (the ticket must already be checked).
pub(crate) fn insert_comment(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    ticket: TicketId,
    comment: &NewComment,
    now: DateTime<Utc>,
) -> Result<CommentRow, ServiceError> {
    let body = comment.body.trim();
    if body.is_empty() {
        return Err(ServiceError::validation(
            "comment.body",
            "required",
            "must not be empty",
        ));
    }
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(ServiceError::validation(
            "comment.body",
            "too_long",
            format!("at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    if comment.internal && !caller.audience.is_staff() {
        return Err(ServiceError::Forbidden(
            "Only staff write internal comments.".to_owned(),
        ));
    }
    let row = CommentRow {
        tenant_id: caller.scope.tenant_id(),
        id: CommentId::new_at(now),
        ticket_id: ticket,
        author_kind: caller.actor.kind.to_owned(),
        author_id: caller.actor.id,
        author_name: caller.actor.name.clone(),
        body: body.to_owned(),
        internal: comment.internal,
        created_at: now.into(),
    };
    db::tickets::insert_comment(conn, &caller.scope, &row)?;
    let source = if comment.internal {
        SOURCE_INTERNAL_COMMENTS
    } else {
        SOURCE_COMMENTS
    };
    let tokens: Vec<(String, i16)> = search::tokenize(body)
        .into_iter()
        .map(|t| (t, source))
        .collect();
    db::tickets::add_tokens(conn, &caller.scope, ticket, &tokens)?;
    Ok(row)
}

/// Adds a comment to a ticket the caller can see. Restricted callers write public comments
/// only; auditors write none.
pub fn add_comment(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    comment: &NewComment,
    now: DateTime<Utc>,
) -> Result<CommentRow, ServiceError> {
    let ticket = load(conn, defs, caller, id)?;
    caller.require_writer()?;
    let row = insert_comment(conn, caller, ticket.row.id, comment, now)?;
    comment_event(conn, caller, &ticket, &row)?;
    if !row.internal {
        // A public comment by someone other than the requester is a first response.
        let fields = ticket.fields();
        let clocks = crate::service::sla::TicketClockInput {
            id: ticket.row.id,
            template: &ticket.template_key,
            def: &ticket.def,
            fields: &fields,
            requester: ticket.row.requester_id,
        };
        crate::service::sla::refresh(conn, &caller.scope, &clocks, now)?;
    }
    Ok(row)
}

/// The `ticket.commented` event; an internal comment's is for staff only.
pub(crate) fn comment_event(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    ticket: &LoadedTicket,
    row: &CommentRow,
) -> Result<(), ServiceError> {
    let comment = json!({
        "id": row.id,
        "ticket_id": row.ticket_id,
        "author": {"kind": row.author_kind, "id": row.author_id, "name": row.author_name},
        "body": row.body,
        "internal": row.internal,
        "created_at": row.created_at.0,
    });
    events::ticket_activity(
        conn,
        &caller.scope,
        &caller.actor,
        row.created_at.0,
        &ticket.summary(),
        EventType::TicketCommented,
        ("comment", comment),
        !row.internal,
    )
}

pub fn comments(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    after: Option<CommentId>,
    limit: i64,
) -> Result<Vec<CommentRow>, ServiceError> {
    load(conn, defs, caller, id)?;
    Ok(db::tickets::comments(
        conn,
        &caller.scope,
        id,
        caller.audience.is_staff(),
        after,
        limit,
    )?)
}

/// Watchers: workers add anyone; everyone else may add and remove only themselves.
pub fn set_watching(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    user: UserId,
    watch: bool,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let ticket = load(conn, defs, caller, id)?;
    if !caller.worker && caller.user != Some(user) {
        return Err(ServiceError::Forbidden(
            "You may add or remove only yourself as a watcher.".to_owned(),
        ));
    }
    if watch {
        super::check_user(conn, &caller.scope, "user", user)?;
        let added = db::tickets::add_watcher(conn, &caller.scope, id, user, now.into())?;
        if added {
            events::ticket_activity(
                conn,
                &caller.scope,
                &caller.actor,
                now,
                &ticket.summary(),
                EventType::TicketWatcherAdded,
                ("watcher", json!({"user_id": user, "since": now})),
                false,
            )?;
        }
        Ok(added)
    } else {
        Ok(db::tickets::remove_watcher(conn, &caller.scope, id, user)?)
    }
}

pub fn watchers(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
) -> Result<Vec<(UserId, crate::db::types::Timestamp)>, ServiceError> {
    load(conn, defs, caller, id)?;
    Ok(db::tickets::watchers(conn, &caller.scope, id)?)
}

/// The stored row (source, target, kind) for "`this` has `other` as its <kind>".
fn stored(kind: LinkKind, this: TicketId, other: TicketId) -> (TicketId, TicketId, &'static str) {
    match kind {
        LinkKind::Parent => (other, this, LINK_PARENT),
        LinkKind::Child => (this, other, LINK_PARENT),
        LinkKind::Related => (this, other, LINK_RELATED),
        LinkKind::DuplicateOf => (this, other, LINK_DUPLICATE_OF),
        LinkKind::DuplicatedBy => (other, this, LINK_DUPLICATE_OF),
    }
}

/// How a stored link looks from `this`.
fn seen_from(row: &LinkRow, this: TicketId) -> (LinkKind, TicketId) {
    let outgoing = row.source_id == this;
    let other = if outgoing {
        row.target_id
    } else {
        row.source_id
    };
    let kind = match (row.kind.as_str(), outgoing) {
        (LINK_PARENT, true) => LinkKind::Child,
        (LINK_PARENT, false) => LinkKind::Parent,
        (LINK_DUPLICATE_OF, true) => LinkKind::DuplicateOf,
        (LINK_DUPLICATE_OF, false) => LinkKind::DuplicatedBy,
        _ => LinkKind::Related,
    };
    (kind, other)
}

/// The links of a ticket, each with the other ticket (when the caller may see it).
pub fn links(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
) -> Result<Vec<(LinkRow, LinkKind, LoadedTicket)>, ServiceError> {
    load(conn, defs, caller, id)?;
    let mut out = Vec::new();
    for row in db::tickets::links(conn, &caller.scope, id)? {
        let (kind, other) = seen_from(&row, id);
        match load(conn, defs, caller, other) {
            Ok(ticket) => out.push((row, kind, ticket)),
            Err(ServiceError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Links two tickets. Workers only; both tickets must exist in the tenant.
pub fn add_link(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    kind: LinkKind,
    other: TicketId,
    now: DateTime<Utc>,
) -> Result<(LinkRow, LoadedTicket), ServiceError> {
    let ticket = load(conn, defs, caller, id)?;
    caller.require_worker()?;
    if other == id {
        return Err(ServiceError::validation(
            "ticket",
            "self_link",
            "a ticket cannot link to itself",
        ));
    }
    let target = match load(conn, defs, caller, other) {
        Ok(t) => t,
        Err(ServiceError::NotFound) => {
            return Err(ServiceError::validation(
                "ticket",
                "unknown_reference",
                "no ticket with this id",
            ));
        }
        Err(e) => return Err(e),
    };
    let existing = db::tickets::links(conn, &caller.scope, id)?;
    if existing.len() >= MAX_LINKS_PER_TICKET {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::TooManyLinks,
            detail: format!("A ticket has at most {MAX_LINKS_PER_TICKET} links."),
        });
    }
    let (source, dest, stored) = stored(kind, id, other);
    let taken: BTreeSet<(TicketId, TicketId, &str)> = existing
        .iter()
        .map(|l| (l.source_id, l.target_id, l.kind.as_str()))
        .collect();
    let reverse_parent = stored == LINK_PARENT && taken.contains(&(dest, source, LINK_PARENT));
    if taken.contains(&(source, dest, stored)) || reverse_parent {
        return Err(ServiceError::duplicate(
            "These tickets are already linked that way.",
        ));
    }
    let row = LinkRow {
        tenant_id: caller.scope.tenant_id(),
        id: LinkId::new_at(now),
        source_id: source,
        target_id: dest,
        kind: stored.to_owned(),
        created_by: caller.entity(),
        created_at: now.into(),
    };
    db::tickets::insert_link(conn, &caller.scope, &row)?;
    let link = json!({
        "id": row.id,
        "kind": kind,
        "ticket": {"id": target.row.id, "key": target.row.key(), "title": target.row.title,
            "state": target.row.state},
        "created_at": now,
    });
    events::ticket_activity(
        conn,
        &caller.scope,
        &caller.actor,
        now,
        &ticket.summary(),
        EventType::TicketLinked,
        ("link", link),
        false,
    )?;
    Ok((row, target))
}

pub fn remove_link(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    link: LinkId,
) -> Result<(), ServiceError> {
    load(conn, defs, caller, id)?;
    caller.require_worker()?;
    let row = db::tickets::find_link(conn, &caller.scope, link)?
        .filter(|l| l.source_id == id || l.target_id == id)
        .ok_or(ServiceError::NotFound)?;
    db::tickets::delete_link(conn, &caller.scope, row.id)?;
    Ok(())
}

/// History entries the caller may see, in order.
pub fn history(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    after: Option<(i64, i32)>,
    limit: i64,
) -> Result<Vec<db::tickets::HistoryRow>, ServiceError> {
    let ticket = load(conn, defs, caller, id)?;
    let mut rows = db::tickets::history(
        conn,
        &caller.scope,
        id,
        caller.audience.is_staff(),
        after,
        limit,
    )?;
    // The creation entry holds every initial value; internal ones are not for everyone.
    for row in rows
        .iter_mut()
        .filter(|r| r.kind == HistoryKind::Created.as_str())
    {
        if let Some(Json(Value::Object(fields))) = &mut row.new_value {
            *fields = caller.audience.redact(&ticket.def, std::mem::take(fields));
        }
    }
    Ok(rows)
}
