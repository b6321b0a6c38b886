//! What intake writes for a clean message: a new ticket (the channel's defaults, the subject
//! and the body, the attachments and the original `.eml`), or a comment on the ticket it
//! replies to (and the channel's reply transition), or a requester for an unknown sender.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::Channel;
use super::intake::IntakeEnv;
use crate::db::DbConnection;
use crate::db::audit::Actor;
use crate::db::tickets::AttachmentRow;
use crate::domain::identity::{Role, RoleSet};
use crate::domain::ids::{AttachmentId, CommentId, TicketId, UserId};
use crate::domain::mail::{Mailbox, ParsedMail};
use crate::service::directory::{UserInput, create_user_by};
use crate::service::error::ServiceError;
use crate::service::tickets::{self, NewTicketRequest, TicketCaller, add_attachment, add_comment};
use crate::service::tickets::{Mode, NewComment, TransitionContext, TransitionRequest, fire};

/// The subject filed when a message has none.
const NO_SUBJECT: &str = "(件名なし / no subject)";
/// The body filed when a message has no text.
const NO_TEXT: &str = "(本文なし / no text)";

/// Files a new ticket as the sender; returns its id.
pub(super) fn file(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    channel: &Channel,
    caller: &TicketCaller,
    raw: &[u8],
    parsed: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<TicketId, ServiceError> {
    let mut fields: Map<String, Value> = channel.input.defaults.clone();
    let subject = parsed.subject.trim();
    let subject = if subject.is_empty() {
        NO_SUBJECT
    } else {
        subject
    };
    fields.insert(
        channel.input.subject_field.clone(),
        Value::String(clip(subject, 200)),
    );
    let text = parsed.text.trim();
    let text = if text.is_empty() { NO_TEXT } else { text };
    fields.insert(
        channel.input.body_field.clone(),
        Value::String(clip(text, 20_000)),
    );
    let request = NewTicketRequest {
        template: channel.input.template.clone(),
        fields,
        requester: None,
        assignee: None,
        group: None,
        organization: None,
        imported: None,
    };
    let ticket = tickets::create(conn, env.definitions, caller, &request, now)?;
    attach_all(conn, env, caller, ticket.row.id, raw, parsed, now)?;
    Ok(ticket.row.id)
}

/// Adds the reply as a public comment by its sender, with its attachments, and fires the
/// channel's reply transition when the ticket is in one of its states and the sender may.
#[expect(clippy::too_many_arguments, reason = "one step of intake")]
pub(super) fn comment(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    channel: &Channel,
    caller: &TicketCaller,
    ticket: TicketId,
    raw: &[u8],
    parsed: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<CommentId, ServiceError> {
    let text = parsed.text.trim();
    let body = if text.is_empty() { NO_TEXT } else { text };
    let comment = NewComment {
        body: clip(body, 20_000),
        internal: false,
    };
    let comment = add_comment(conn, env.definitions, caller, ticket, &comment, now)?.id;
    attach_all(conn, env, caller, ticket, raw, parsed, now)?;
    let loaded = tickets::load(conn, env.definitions, caller, ticket)?;
    let state = loaded.row.state.clone();
    let Some(rule) = channel
        .input
        .reply_transitions
        .iter()
        .find(|r| r.from.contains(&state))
    else {
        return Ok(comment);
    };
    let request = TransitionRequest::parse(&rule.transition, Map::new(), None)?;
    let cx = TransitionContext {
        definitions: env.definitions,
        caller,
        ticket,
        expected_version: None,
        now,
        mode: Mode::Execute,
    };
    // Not allowed for this sender, or its guard fails: the comment stands without it.
    match fire(conn, &cx, &request) {
        Ok(_) => Ok(comment),
        Err(
            ServiceError::Forbidden(_)
            | ServiceError::Conflict { .. }
            | ServiceError::Validation(_),
        ) => Ok(comment),
        Err(e) => Err(e),
    }
}

/// The attachments of the message and the message itself (`.eml`), public, by the sender.
fn attach_all(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    caller: &TicketCaller,
    ticket: TicketId,
    raw: &[u8],
    parsed: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let original = ("message.eml".to_owned(), "message/rfc822".to_owned(), raw);
    let parts = parsed.attachments.iter().map(|a| {
        (
            a.filename.clone(),
            a.content_type.clone(),
            a.content.as_slice(),
        )
    });
    for (file_name, content_type, content) in parts.chain(std::iter::once(original)) {
        let store = |e: crate::storage::StorageError| {
            ServiceError::internal(format!("attachment store: {e}"))
        };
        let mut writer = env.blobs.writer(u64::MAX).map_err(store)?;
        writer.write(content).map_err(store)?;
        let staged = writer.stage().map_err(store)?;
        let blob = staged.blob().clone();
        let row = AttachmentRow {
            tenant_id: caller.scope.tenant_id(),
            id: AttachmentId::new_at(now),
            ticket_id: ticket,
            file_name,
            content_type,
            size: i64::try_from(blob.size).unwrap_or(i64::MAX),
            sha256: blob.sha256,
            internal: false,
            uploaded_by: caller.entity(),
            uploader_name: caller.actor.name.clone(),
            created_at: now.into(),
        };
        add_attachment(conn, env.definitions, caller, row, staged)?;
    }
    Ok(())
}

/// A requester for an unknown sender: username and mail address the sender's address,
/// display name from the `From` header, the organization the channel maps the domain to, and
/// no password (it cannot sign in until a tenant admin sets one).
pub(super) fn new_requester(
    conn: &mut DbConnection,
    channel: &Channel,
    from: &Mailbox,
    domain: &str,
    now: DateTime<Utc>,
) -> Result<UserId, ServiceError> {
    let scope = crate::auth::job_scope(channel.row.tenant_id);
    let organization_id = channel
        .input
        .organization_domains
        .iter()
        .find(|d| d.domain == domain)
        .map(|d| d.organization_id);
    let input = UserInput {
        username: from.address.clone(),
        password_hash: "!".to_owned(),
        display_name: clip(from.name.as_deref().unwrap_or(&from.address), 100),
        email: Some(from.address.clone()),
        roles: RoleSet::new([Role::Requester])
            .unwrap_or_else(|| RoleSet::from_storage("requester")),
        organization_id,
    };
    let actor = Actor::system("mail intake");
    Ok(create_user_by(conn, &actor, &scope, &input, now)?.id)
}

fn clip(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}
