//! Mail channels and the messages they take in (see `service::mail`).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{mail_channels, mail_messages};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{CommentId, MailChannelId, MailMessageId, TenantId, TicketId};

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = mail_channels)]
pub struct ChannelRow {
    pub tenant_id: TenantId,
    pub id: MailChannelId,
    pub address: String,
    pub description: String,
    pub template: String,
    pub defaults: Json,
    pub subject_field: String,
    pub body_field: String,
    pub reply_transitions: Json,
    pub unknown_senders: String,
    pub organization_domains: Json,
    pub max_message_bytes: i64,
    pub max_attachments: i32,
    pub enabled: bool,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The IMAP poller's configuration (`domain::mail_channel::ImapConfig`), without the
    /// password; `None`: no polling.
    pub imap: Option<Json>,
    /// The IMAP password sealed under the master key (bound to the channel id).
    pub imap_password: Option<String>,
    /// The poll state, written by the `mail.imap` job ([`set_imap_state`]).
    pub imap_uidvalidity: Option<i64>,
    pub imap_last_uid: i64,
    pub imap_last_error: Option<String>,
    pub imap_polled_at: Option<Timestamp>,
}

pub fn insert_channel(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &ChannelRow,
) -> QueryResult<()> {
    super::of_scope(scope, row.tenant_id)?;
    diesel::insert_into(mail_channels::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_channel(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailChannelId,
) -> QueryResult<Option<ChannelRow>> {
    mail_channels::table
        .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
        .filter(mail_channels::id.eq(id))
        .first(conn)
        .optional()
}

/// The channel with this address (lower-cased), if any.
pub fn channel_by_address(
    conn: &mut DbConnection,
    scope: &TenantScope,
    address: &str,
) -> QueryResult<Option<ChannelRow>> {
    mail_channels::table
        .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
        .filter(mail_channels::address.eq(address))
        .first(conn)
        .optional()
}

/// The channel row locked for a change (PostgreSQL; SQLite has one writer).
pub fn lock_channel(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailChannelId,
) -> QueryResult<Option<ChannelRow>> {
    match conn {
        DbConnection::Postgres(pg) => mail_channels::table
            .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
            .filter(mail_channels::id.eq(id))
            .for_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => find_channel(conn, scope, id),
    }
}

pub fn list_channels(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<MailChannelId>,
    limit: i64,
) -> QueryResult<Vec<ChannelRow>> {
    let mut query = mail_channels::table
        .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
        .order(mail_channels::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(mail_channels::id.gt(after));
    }
    query.load(conn)
}

pub fn count_channels(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<i64> {
    mail_channels::table
        .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
        .count()
        .get_result(conn)
}

/// Replaces a channel's row (its id and tenant stay).
pub fn update_channel(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &ChannelRow,
) -> QueryResult<()> {
    diesel::update(
        mail_channels::table
            .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
            .filter(mail_channels::id.eq(row.id)),
    )
    .set((
        mail_channels::address.eq(&row.address),
        mail_channels::description.eq(&row.description),
        mail_channels::template.eq(&row.template),
        mail_channels::defaults.eq(&row.defaults),
        mail_channels::subject_field.eq(&row.subject_field),
        mail_channels::body_field.eq(&row.body_field),
        mail_channels::reply_transitions.eq(&row.reply_transitions),
        mail_channels::unknown_senders.eq(&row.unknown_senders),
        mail_channels::organization_domains.eq(&row.organization_domains),
        mail_channels::max_message_bytes.eq(row.max_message_bytes),
        mail_channels::max_attachments.eq(row.max_attachments),
        mail_channels::enabled.eq(row.enabled),
        mail_channels::version.eq(row.version),
        mail_channels::updated_at.eq(row.updated_at),
        mail_channels::imap.eq(&row.imap),
        mail_channels::imap_password.eq(&row.imap_password),
        mail_channels::imap_uidvalidity.eq(row.imap_uidvalidity),
        mail_channels::imap_last_uid.eq(row.imap_last_uid),
        mail_channels::imap_last_error.eq(&row.imap_last_error),
    ))
    .execute(conn)?;
    Ok(())
}

/// Where the IMAP poller of a channel stands.
#[derive(Debug, Clone, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = mail_channels, treat_none_as_null = true)]
pub struct ImapState {
    #[diesel(column_name = imap_uidvalidity)]
    pub uidvalidity: Option<i64>,
    #[diesel(column_name = imap_last_uid)]
    pub last_uid: i64,
    #[diesel(column_name = imap_last_error)]
    pub last_error: Option<String>,
    #[diesel(column_name = imap_polled_at)]
    pub polled_at: Option<Timestamp>,
}

impl ImapState {
    pub fn of(row: &ChannelRow) -> Self {
        Self {
            uidvalidity: row.imap_uidvalidity,
            last_uid: row.imap_last_uid,
            last_error: row.imap_last_error.clone(),
            polled_at: row.imap_polled_at,
        }
    }
}

/// Writes the IMAP poll state of a channel (neither its version nor `updated_at` change: the
/// state is not configuration). False when the channel is gone.
pub fn set_imap_state(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailChannelId,
    state: &ImapState,
) -> QueryResult<bool> {
    let n = diesel::update(
        mail_channels::table
            .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
            .filter(mail_channels::id.eq(id)),
    )
    .set(state)
    .execute(conn)?;
    Ok(n == 1)
}

/// Whether a message with this Message-ID was already taken in on the channel: filed,
/// commented or quarantined, or waiting (`pending`) since before `this` arrived (so of two
/// pending copies the earlier one wins). A refused, failed or ignored one does not count:
/// the message may be taken in again.
pub fn duplicate_on_channel(
    conn: &mut DbConnection,
    scope: &TenantScope,
    channel: MailChannelId,
    message_id: &str,
    this: MailMessageId,
) -> QueryResult<bool> {
    let n: i64 = mail_messages::table
        .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
        .filter(mail_messages::channel_id.eq(channel))
        .filter(mail_messages::direction.eq("in"))
        .filter(mail_messages::message_id.eq(message_id))
        .filter(mail_messages::id.ne(this))
        .filter(
            mail_messages::status
                .eq_any(["filed", "commented", "quarantined"])
                .or(mail_messages::status
                    .eq("pending")
                    .and(mail_messages::id.lt(this))),
        )
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Deletes a channel; its message log stays (its rows lose the channel).
pub fn delete_channel(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailChannelId,
) -> QueryResult<bool> {
    diesel::update(
        mail_messages::table
            .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
            .filter(mail_messages::channel_id.eq(id)),
    )
    .set(mail_messages::channel_id.eq(None::<MailChannelId>))
    .execute(conn)?;
    let n = diesel::delete(
        mail_channels::table
            .filter(mail_channels::tenant_id.eq(scope.tenant_id()))
            .filter(mail_channels::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = mail_messages)]
pub struct MessageRow {
    pub tenant_id: TenantId,
    pub id: MailMessageId,
    pub channel_id: Option<MailChannelId>,
    pub direction: String,
    pub message_id: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub signature: Option<String>,
    pub sender: String,
    pub subject: String,
    pub size: i64,
    pub sha256: String,
    pub ticket_id: Option<TicketId>,
    pub raw: Option<Vec<u8>>,
    pub attempts: i32,
    pub received_at: Timestamp,
    pub processed_at: Option<Timestamp>,
    /// The comment a reply became.
    pub comment_id: Option<CommentId>,
}

/// What became of a message; written once its handling ends (or another attempt is due).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = mail_messages, treat_none_as_null = true)]
pub struct Outcome {
    pub status: String,
    pub reason: Option<String>,
    pub signature: Option<String>,
    pub sender: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub ticket_id: Option<TicketId>,
    pub raw: Option<Vec<u8>>,
    pub attempts: i32,
    pub processed_at: Option<Timestamp>,
    pub comment_id: Option<CommentId>,
}

pub fn insert_message(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &MessageRow,
) -> QueryResult<()> {
    super::of_scope(scope, row.tenant_id)?;
    diesel::insert_into(mail_messages::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_message(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailMessageId,
) -> QueryResult<Option<MessageRow>> {
    mail_messages::table
        .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
        .filter(mail_messages::id.eq(id))
        .first(conn)
        .optional()
}

pub fn set_outcome(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailMessageId,
    outcome: &Outcome,
) -> QueryResult<()> {
    diesel::update(
        mail_messages::table
            .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
            .filter(mail_messages::id.eq(id)),
    )
    .set(outcome)
    .execute(conn)?;
    Ok(())
}

/// A channel's messages, newest last, without their raw bytes.
pub fn list_messages(
    conn: &mut DbConnection,
    scope: &TenantScope,
    channel: MailChannelId,
    after: Option<MailMessageId>,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    let mut query = mail_messages::table
        .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
        .filter(mail_messages::channel_id.eq(channel))
        .order(mail_messages::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(mail_messages::id.gt(after));
    }
    let mut rows: Vec<MessageRow> = query.load(conn)?;
    for row in &mut rows {
        row.raw = None;
    }
    Ok(rows)
}

/// The ticket of the first of these Message-IDs that Stageflow took in or sent, in the
/// order given (a reply's In-Reply-To first, then its References, newest first).
pub fn ticket_of_message_ids(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ids: &[String],
) -> QueryResult<Option<TicketId>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let found: Vec<(Option<String>, Option<TicketId>)> = mail_messages::table
        .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
        .filter(mail_messages::message_id.eq_any(ids))
        .filter(mail_messages::ticket_id.is_not_null())
        .select((mail_messages::message_id, mail_messages::ticket_id))
        .load(conn)?;
    Ok(ids.iter().find_map(|id| {
        found
            .iter()
            .find(|(m, _)| m.as_deref() == Some(id.as_str()))
            .and_then(|(_, t)| *t)
    }))
}

/// A message Stageflow sent with this Message-ID (a notification job's retry skips it).
pub fn find_sent(
    conn: &mut DbConnection,
    scope: &TenantScope,
    message_id: &str,
) -> QueryResult<Option<MessageRow>> {
    mail_messages::table
        .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
        .filter(mail_messages::message_id.eq(message_id))
        .filter(mail_messages::direction.eq("out"))
        .first(conn)
        .optional()
}

/// Incoming messages waiting for a scan, every tenant together: a node-wide figure for
/// `/metrics`, which shows no tenant's data.
pub fn count_pending(conn: &mut DbConnection) -> QueryResult<i64> {
    mail_messages::table
        .filter(mail_messages::direction.eq("in"))
        .filter(
            mail_messages::status.eq(crate::domain::mail_channel::MessageStatus::Pending.as_str()),
        )
        .count()
        .get_result(conn)
}

/// Messages taken in from this sender since a time (the loop guard's rate).
pub fn count_from_since(
    conn: &mut DbConnection,
    scope: &TenantScope,
    sender: &str,
    since: Timestamp,
) -> QueryResult<i64> {
    mail_messages::table
        .filter(mail_messages::tenant_id.eq(scope.tenant_id()))
        .filter(mail_messages::direction.eq("in"))
        .filter(mail_messages::sender.eq(sender))
        .filter(mail_messages::received_at.ge(since))
        .count()
        .get_result(conn)
}
