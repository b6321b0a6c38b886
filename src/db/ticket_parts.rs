//! What hangs off a ticket: comments, watchers, links, attachments, events and stored
//! idempotent responses (reached as `db::tickets::…`).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{
    idempotency_keys, ticket_attachments, ticket_comments, ticket_links, ticket_watchers, tickets,
};
use super::types::Timestamp;
use crate::auth::TenantScope;
use crate::domain::ids::{AttachmentId, CommentId, EntityId, LinkId, TenantId, TicketId, UserId};

/// The one page query of what a ticket holds in id order (comments, attachments): one
/// ticket's rows after `after`, internal ones only when `include_internal`.
macro_rules! ticket_items_page {
    ($table:ident, $scope:expr, $ticket:expr, $include_internal:expr, $after:expr, $limit:expr) => {{
        let mut query = $table::table
            .filter($table::tenant_id.eq($scope.tenant_id()))
            .filter($table::ticket_id.eq($ticket))
            .order($table::id.asc())
            .limit($limit)
            .into_boxed();
        if !$include_internal {
            query = query.filter($table::internal.eq(false));
        }
        if let Some(after) = $after {
            query = query.filter($table::id.gt(after));
        }
        query
    }};
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = ticket_comments)]
pub struct CommentRow {
    pub tenant_id: TenantId,
    pub id: CommentId,
    pub ticket_id: TicketId,
    pub author_kind: String,
    pub author_id: Option<EntityId>,
    pub author_name: String,
    pub body: String,
    pub internal: bool,
    pub created_at: Timestamp,
}

pub fn insert_comment(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &CommentRow,
) -> QueryResult<()> {
    diesel::insert_into(ticket_comments::table)
        .values(CommentRow {
            tenant_id: scope.tenant_id(),
            ..row.clone()
        })
        .execute(conn)?;
    Ok(())
}

pub fn comments(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    include_internal: bool,
    after: Option<CommentId>,
    limit: i64,
) -> QueryResult<Vec<CommentRow>> {
    ticket_items_page!(
        ticket_comments,
        scope,
        ticket,
        include_internal,
        after,
        limit
    )
    .load(conn)
}

/// Adds a watcher; true if they were not watching yet.
pub fn add_watcher(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    user: UserId,
    now: Timestamp,
) -> QueryResult<bool> {
    let added = per_backend!(conn, |c| diesel::insert_into(ticket_watchers::table)
        .values((
            ticket_watchers::tenant_id.eq(scope.tenant_id()),
            ticket_watchers::ticket_id.eq(ticket),
            ticket_watchers::user_id.eq(user),
            ticket_watchers::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(added == 1)
}

pub fn remove_watcher(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    user: UserId,
) -> QueryResult<bool> {
    let removed = diesel::delete(
        ticket_watchers::table
            .filter(ticket_watchers::tenant_id.eq(scope.tenant_id()))
            .filter(ticket_watchers::ticket_id.eq(ticket))
            .filter(ticket_watchers::user_id.eq(user)),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

/// Watchers of a ticket, by user id.
pub fn watchers(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
) -> QueryResult<Vec<(UserId, Timestamp)>> {
    ticket_watchers::table
        .filter(ticket_watchers::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_watchers::ticket_id.eq(ticket))
        .order(ticket_watchers::user_id.asc())
        .select((ticket_watchers::user_id, ticket_watchers::created_at))
        .load(conn)
}

pub const LINK_PARENT: &str = "parent";
pub const LINK_RELATED: &str = "related";
pub const LINK_DUPLICATE_OF: &str = "duplicate_of";

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = ticket_links)]
pub struct LinkRow {
    pub tenant_id: TenantId,
    pub id: LinkId,
    pub source_id: TicketId,
    pub target_id: TicketId,
    pub kind: String,
    pub created_by: EntityId,
    pub created_at: Timestamp,
}

pub fn insert_link(conn: &mut DbConnection, scope: &TenantScope, row: &LinkRow) -> QueryResult<()> {
    diesel::insert_into(ticket_links::table)
        .values(LinkRow {
            tenant_id: scope.tenant_id(),
            ..row.clone()
        })
        .execute(conn)?;
    Ok(())
}

/// The links of a ticket in either direction, oldest first.
pub fn links(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
) -> QueryResult<Vec<LinkRow>> {
    ticket_links::table
        .filter(ticket_links::tenant_id.eq(scope.tenant_id()))
        .filter(
            ticket_links::source_id
                .eq(ticket)
                .or(ticket_links::target_id.eq(ticket)),
        )
        .order(ticket_links::id.asc())
        .limit(crate::domain::ticket::MAX_LINKS_PER_TICKET as i64 * 2)
        .load(conn)
}

pub fn find_link(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: LinkId,
) -> QueryResult<Option<LinkRow>> {
    ticket_links::table
        .filter(ticket_links::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_links::id.eq(id))
        .first(conn)
        .optional()
}

pub fn delete_link(conn: &mut DbConnection, scope: &TenantScope, id: LinkId) -> QueryResult<()> {
    diesel::delete(
        ticket_links::table
            .filter(ticket_links::tenant_id.eq(scope.tenant_id()))
            .filter(ticket_links::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

/// Whether every child of a ticket is closed (true when it has none): the engine's
/// `all_children_closed` fact.
pub fn all_children_closed(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
) -> QueryResult<bool> {
    let open: i64 = ticket_links::table
        .inner_join(
            tickets::table.on(tickets::tenant_id
                .eq(ticket_links::tenant_id)
                .and(tickets::id.eq(ticket_links::target_id))),
        )
        .filter(ticket_links::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_links::source_id.eq(ticket))
        .filter(ticket_links::kind.eq(LINK_PARENT))
        .filter(tickets::closed.eq(false))
        .count()
        .get_result(conn)?;
    Ok(open == 0)
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = ticket_attachments)]
pub struct AttachmentRow {
    pub tenant_id: TenantId,
    pub id: AttachmentId,
    pub ticket_id: TicketId,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub internal: bool,
    pub uploaded_by: EntityId,
    pub uploader_name: String,
    pub created_at: Timestamp,
}

pub fn insert_attachment(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &AttachmentRow,
) -> QueryResult<()> {
    diesel::insert_into(ticket_attachments::table)
        .values(AttachmentRow {
            tenant_id: scope.tenant_id(),
            ..row.clone()
        })
        .execute(conn)?;
    Ok(())
}

pub fn attachments(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    include_internal: bool,
    after: Option<AttachmentId>,
    limit: i64,
) -> QueryResult<Vec<AttachmentRow>> {
    ticket_items_page!(
        ticket_attachments,
        scope,
        ticket,
        include_internal,
        after,
        limit
    )
    .load(conn)
}

pub fn find_attachment(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: AttachmentId,
) -> QueryResult<Option<AttachmentRow>> {
    ticket_attachments::table
        .filter(ticket_attachments::tenant_id.eq(scope.tenant_id()))
        .filter(ticket_attachments::id.eq(id))
        .first(conn)
        .optional()
}

/// Which of `hashes` any attachment row of any tenant references. Platform-wide, like the
/// content store it serves: the blob collector keeps every hash in this set.
pub fn referenced_contents(
    conn: &mut DbConnection,
    hashes: &[String],
) -> QueryResult<std::collections::HashSet<String>> {
    if hashes.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let found: Vec<String> = ticket_attachments::table
        .filter(ticket_attachments::sha256.eq_any(hashes))
        .select(ticket_attachments::sha256)
        .distinct()
        .load(conn)?;
    Ok(found.into_iter().collect())
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotentResponse {
    pub tenant_id: TenantId,
    pub principal: String,
    pub key: String,
    pub request_hash: String,
    pub status: i32,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub body: String,
    pub created_at: Timestamp,
}

pub fn find_idempotent(
    conn: &mut DbConnection,
    scope: &TenantScope,
    principal: &str,
    key: &str,
) -> QueryResult<Option<IdempotentResponse>> {
    idempotency_keys::table
        .filter(idempotency_keys::tenant_id.eq(scope.tenant_id()))
        .filter(idempotency_keys::principal.eq(principal))
        .filter(idempotency_keys::key.eq(key))
        .first(conn)
        .optional()
}

pub fn insert_idempotent(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &IdempotentResponse,
) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(IdempotentResponse {
            tenant_id: scope.tenant_id(),
            ..row.clone()
        })
        .execute(conn)?;
    Ok(())
}

/// Forgets one stored response if it was stored before `expired_before`.
pub fn delete_idempotent(
    conn: &mut DbConnection,
    scope: &TenantScope,
    principal: &str,
    key: &str,
    expired_before: Timestamp,
) -> QueryResult<()> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::tenant_id.eq(scope.tenant_id()))
            .filter(idempotency_keys::principal.eq(principal))
            .filter(idempotency_keys::key.eq(key))
            .filter(idempotency_keys::created_at.lt(expired_before)),
    )
    .execute(conn)?;
    Ok(())
}
