//! Mail channels (tenant admins), the messages they took in, and intake over HTTP
//! (`POST /mail-channels/{id}/messages`, `message/rfc822`). docs/mail.md.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::mail::MessageRow;
use crate::domain::identity::Role;
use crate::domain::ids::{CommentId, MailChannelId, MailMessageId, TicketId};
use crate::domain::mail_channel::{
    AfterIntake, DomainOrganization, ImapConfig, ImapSecurity, MessageStatus, ReplyTransition,
    UnknownSenders,
};
use crate::service::mail::imap::ImapInput;
use crate::service::mail::intake::{self, IntakeEnv, IntakeSettings};
use crate::service::mail::{self as svc, Channel, ChannelInput, ChannelPatch};

const ADMINS: &[Role] = &[Role::TenantAdmin];

/// A mail channel: an address whose mail becomes tickets (and replies, comments).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-7000-7000-8000-000000000001",
    "address": "support@example.co.jp", "description": "お問い合わせ窓口",
    "template": "customer_inquiry", "defaults": {"channel": "mail"},
    "subject_field": "title", "body_field": "description",
    "reply_transitions": {"waiting_customer": "customer_replied"},
    "unknown_senders": "create_requester", "organization_domains": [],
    "max_message_bytes": 10_485_760, "max_attachments": 20, "enabled": true,
    "imap": {"host": "imap.example.co.jp", "port": 993, "security": "tls",
        "username": "support@example.co.jp", "password_set": true, "folder": "INBOX",
        "after_intake": "mark_seen", "idle": true},
    "imap_state": {"uidvalidity": 1_795_897_266, "last_uid": 42, "last_error": null,
        "polled_at": "2026-11-28T09:05:00Z"},
    "version": 1, "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z"}))]
pub struct MailChannel {
    pub id: MailChannelId,
    /// The channel's address, lower-cased (unique in the tenant).
    pub address: String,
    pub description: String,
    /// The template new tickets are filed in.
    pub template: String,
    /// Field values every new ticket gets (the sender's own values win where both set one).
    pub defaults: Map<String, Value>,
    /// The field the subject is filed in.
    pub subject_field: String,
    /// The field the body (as text) is filed in.
    pub body_field: String,
    /// Which transition a reply from the requester fires, by the ticket's state:
    /// `{state: transition}`.
    pub reply_transitions: BTreeMap<String, String>,
    pub unknown_senders: UnknownSenders,
    pub organization_domains: Vec<DomainOrganization>,
    /// Larger messages are refused (413) before anything is stored.
    pub max_message_bytes: i64,
    /// A message with more attachments is refused.
    pub max_attachments: i32,
    /// A disabled channel refuses messages (recorded as `refused`).
    pub enabled: bool,
    /// The mailbox this channel polls over IMAP; null: none (mail comes by HTTP or pipe).
    pub imap: Option<MailChannelImap>,
    /// Where the IMAP poller stands; null without `imap`.
    pub imap_state: Option<ImapPollState>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A channel's IMAP poller as shown: the password is never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailChannelImap {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: String,
    /// Whether a password is stored (it is write-only).
    pub password_set: bool,
    pub folder: String,
    pub after_intake: AfterIntake,
    /// IDLE (server push) when the server offers it; else a poll every
    /// `STAGEFLOW_IMAP_POLL_SECONDS`.
    pub idle: bool,
}

/// The IMAP poller's state (read-only; written by the `mail.imap` job).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImapPollState {
    /// The mailbox's UIDVALIDITY when last selected; when it changes, polling starts over
    /// from UID 1 (copies are recognised by their Message-ID).
    pub uidvalidity: Option<i64>,
    /// The highest UID taken in (0: none yet).
    pub last_uid: i64,
    /// Why the last run failed (or a message it left in the mailbox); null after a clean run.
    pub last_error: Option<String>,
    pub polled_at: Option<DateTime<Utc>>,
}

/// A channel's IMAP poller as written. `password` is write-only: required when the channel
/// gets IMAP, and whenever `host` or `username` change; omitted, the stored one is kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"host": "imap.example.co.jp", "username": "support",
    "password": "s3cret-app-password"}))]
pub struct ImapBody {
    #[schema(max_length = 253)]
    pub host: String,
    /// 1–65535 (default 993).
    #[serde(default = "default_imap_port")]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: i64,
    /// `tls` (default), `starttls`, or `none` — no TLS, only for a loopback host.
    #[serde(default = "default_imap_security")]
    pub security: ImapSecurity,
    #[schema(max_length = 255)]
    pub username: String,
    #[schema(max_length = 1024, format = Password)]
    pub password: Option<String>,
    /// Default `INBOX`.
    #[serde(default = "default_imap_folder")]
    #[schema(max_length = 255)]
    pub folder: String,
    /// `mark_seen` (default) or `delete` (flag `\Deleted` and expunge).
    #[serde(default = "default_after_intake")]
    pub after_intake: AfterIntake,
    /// Default true.
    #[serde(default = "enabled")]
    pub idle: bool,
}

fn default_imap_port() -> i64 {
    993
}
fn default_imap_security() -> ImapSecurity {
    ImapSecurity::Tls
}
fn default_imap_folder() -> String {
    "INBOX".to_owned()
}
fn default_after_intake() -> AfterIntake {
    AfterIntake::MarkSeen
}

impl From<ImapBody> for ImapInput {
    fn from(b: ImapBody) -> Self {
        Self {
            config: ImapConfig {
                host: b.host,
                port: 0,
                security: b.security,
                username: b.username,
                folder: b.folder,
                after_intake: b.after_intake,
                idle: b.idle,
            },
            password: b.password,
            port: b.port,
        }
    }
}

impl From<Channel> for MailChannel {
    fn from(c: Channel) -> Self {
        let i = c.input;
        let password_set = c.row.imap_password.is_some();
        let imap_state = i.imap.as_ref().map(|_| ImapPollState {
            uidvalidity: c.row.imap_uidvalidity,
            last_uid: c.row.imap_last_uid,
            last_error: c.row.imap_last_error.clone(),
            polled_at: c.row.imap_polled_at.map(|t| t.0),
        });
        let imap = i.imap.map(|imap| MailChannelImap {
            host: imap.config.host,
            port: imap.config.port,
            security: imap.config.security,
            username: imap.config.username,
            password_set,
            folder: imap.config.folder,
            after_intake: imap.config.after_intake,
            idle: imap.config.idle,
        });
        Self {
            id: c.row.id,
            address: i.address,
            description: i.description,
            template: i.template,
            defaults: i.defaults,
            subject_field: i.subject_field,
            body_field: i.body_field,
            reply_transitions: by_state(&i.reply_transitions),
            unknown_senders: i.unknown_senders,
            organization_domains: i.organization_domains,
            max_message_bytes: i.max_message_bytes,
            max_attachments: i.max_attachments,
            enabled: i.enabled,
            imap,
            imap_state,
            version: c.row.version,
            created_at: c.row.created_at.0,
            updated_at: c.row.updated_at.0,
        }
    }
}

/// Which transition a reply from the requester fires, by the ticket's state: an object
/// `{state: transition}`, or the list form `[{from: [state…], transition}]` (several states
/// to one transition). At most 50 entries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"waiting_customer": "customer_replied"}))]
pub enum ReplyTransitions {
    ByState(BTreeMap<String, String>),
    Rules(Vec<ReplyTransition>),
}

impl Default for ReplyTransitions {
    fn default() -> Self {
        Self::Rules(Vec::new())
    }
}

impl ReplyTransitions {
    fn into_rules(self) -> Vec<ReplyTransition> {
        match self {
            Self::Rules(rules) => rules,
            Self::ByState(map) => map
                .into_iter()
                .map(|(state, transition)| ReplyTransition {
                    from: vec![state],
                    transition,
                })
                .collect(),
        }
    }
}

/// The rules as `{state: transition}` (the first rule naming a state wins, as in intake).
fn by_state(rules: &[ReplyTransition]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for rule in rules {
        for state in &rule.from {
            map.entry(state.clone())
                .or_insert_with(|| rule.transition.clone());
        }
    }
    map
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"address": "support@example.co.jp", "template": "customer_inquiry",
    "defaults": {"channel": "mail"},
    "reply_transitions": {"waiting_customer": "customer_replied"}}))]
pub struct CreateMailChannel {
    #[schema(max_length = 254)]
    pub address: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// A published template's key.
    pub template: String,
    /// Field values of every new ticket (not internal fields: mail is filed as its sender).
    #[serde(default)]
    pub defaults: Map<String, Value>,
    /// A text or long_text field (default `title`).
    #[serde(default = "default_subject_field")]
    pub subject_field: String,
    /// A text or long_text field (default `description`).
    #[serde(default = "default_body_field")]
    pub body_field: String,
    #[serde(default)]
    pub reply_transitions: ReplyTransitions,
    #[serde(default = "default_unknown_senders")]
    pub unknown_senders: UnknownSenders,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub organization_domains: Vec<DomainOrganization>,
    /// 1,024 – 26,214,400 (default 10,485,760).
    #[serde(default = "default_max_bytes")]
    #[schema(minimum = 1024, maximum = 26_214_400)]
    pub max_message_bytes: i64,
    /// 0 – 100 (default 20).
    #[serde(default = "default_max_attachments")]
    #[schema(minimum = 0, maximum = 100)]
    pub max_attachments: i32,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Poll this mailbox over IMAP (docs/mail.md, "IMAP setup"); absent or null: no polling.
    #[serde(default)]
    pub imap: Option<ImapBody>,
}

fn default_subject_field() -> String {
    "title".to_owned()
}
fn default_body_field() -> String {
    "description".to_owned()
}
fn default_unknown_senders() -> UnknownSenders {
    UnknownSenders::CreateRequester
}
fn default_max_bytes() -> i64 {
    svc::DEFAULT_MESSAGE_BYTES
}
fn default_max_attachments() -> i32 {
    20
}
fn enabled() -> bool {
    true
}

/// A partial change; every member as in creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateMailChannel {
    #[schema(max_length = 254)]
    pub address: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub template: Option<String>,
    pub defaults: Option<Map<String, Value>>,
    pub subject_field: Option<String>,
    pub body_field: Option<String>,
    pub reply_transitions: Option<ReplyTransitions>,
    pub unknown_senders: Option<UnknownSenders>,
    #[schema(max_items = 50)]
    pub organization_domains: Option<Vec<DomainOrganization>>,
    #[schema(minimum = 1024, maximum = 26_214_400)]
    pub max_message_bytes: Option<i64>,
    #[schema(minimum = 0, maximum = 100)]
    pub max_attachments: Option<i32>,
    pub enabled: Option<bool>,
    /// The whole IMAP part (the password may be omitted to keep it); null stops polling.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<ImapBody>)]
    pub imap: Option<Option<ImapBody>>,
}

/// One message a channel took in: what became of it. Its content is never shown here.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-7000-7000-8000-000000000002",
    "message_id": "019ac0d2-7000-7000-8000-000000000002",
    "channel_id": "019ac0d2-7000-7000-8000-000000000001", "direction": "in",
    "header_message_id": "20261128090000.1234@mail.example.co.jp", "status": "filed", "reason": null,
    "signature": null, "sender": "tanaka@example.co.jp", "subject": "ネットワーク障害のご連絡",
    "size": 2048, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "ticket_id": "019ac0d2-7000-7000-8000-000000000003", "comment_id": null, "attempts": 1,
    "received_at": "2026-11-28T09:00:00Z", "processed_at": "2026-11-28T09:00:00Z"}))]
pub struct MailMessage {
    pub id: MailMessageId,
    /// The same as `id` (the name the intake answer has in the API contract).
    pub message_id: MailMessageId,
    /// Null once its channel was deleted.
    pub channel_id: Option<MailChannelId>,
    /// `in` (taken in) or `out` (sent by Stageflow).
    pub direction: String,
    /// The message's own Message-ID header, without angle brackets.
    pub header_message_id: Option<String>,
    pub status: MessageStatus,
    /// Why it was ignored, refused, kept pending or failed.
    pub reason: Option<String>,
    /// The scanner's signature name, when quarantined.
    pub signature: Option<String>,
    /// The sender's address (lower-cased), when known.
    pub sender: String,
    pub subject: String,
    /// Size of the raw message in bytes.
    pub size: i64,
    /// SHA-256 of the raw message.
    pub sha256: String,
    /// The ticket filed from it or commented on.
    pub ticket_id: Option<TicketId>,
    /// The comment it became (`status` `commented`).
    pub comment_id: Option<CommentId>,
    /// Scan attempts so far.
    pub attempts: i32,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl TryFrom<MessageRow> for MailMessage {
    type Error = ApiError;
    fn try_from(row: MessageRow) -> Result<Self, ApiError> {
        Ok(Self {
            status: MessageStatus::from_storage(&row.status)
                .map_err(|e| ApiError::internal(e.to_string()))?,
            id: row.id,
            message_id: row.id,
            channel_id: row.channel_id,
            direction: row.direction,
            header_message_id: row.message_id,
            reason: row.reason,
            signature: row.signature,
            sender: row.sender,
            subject: row.subject,
            size: row.size,
            sha256: row.sha256,
            ticket_id: row.ticket_id,
            comment_id: row.comment_id,
            attempts: row.attempts,
            received_at: row.received_at.0,
            processed_at: row.processed_at.map(|t| t.0),
        })
    }
}

/// The tenant's mail channels.
#[utoipa::path(
    tag = "mail", operation_id = "list_mail_channels", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of channels", body = Page<MailChannel>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/mail-channels")]
pub async fn list_mail_channels(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<MailChannel>>, ApiError> {
    let scope = principal.require(ADMINS)?;
    page.parse()?
        .load(
            &state.db,
            move |conn, after, limit| svc::list(conn, &scope, after.map(MailChannelId), limit),
            |c| c.row.id.0,
            MailChannel::from,
        )
        .await
}

/// Creates a mail channel. Its template must be published; the subject and body fields,
/// defaults and reply transitions are checked against that version.
#[utoipa::path(
    tag = "mail", operation_id = "create_mail_channel", security(("bearer" = [])),
    request_body = CreateMailChannel,
    responses(
        (status = 201, description = "Created", body = MailChannel, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/mail-channels")]
pub async fn create_mail_channel(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateMailChannel>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let b = body.into_inner();
    let input = ChannelInput {
        address: b.address,
        description: b.description,
        template: b.template,
        defaults: b.defaults,
        subject_field: b.subject_field,
        body_field: b.body_field,
        reply_transitions: b.reply_transitions.into_rules(),
        unknown_senders: b.unknown_senders,
        organization_domains: b.organization_domains,
        max_message_bytes: b.max_message_bytes,
        max_attachments: b.max_attachments,
        enabled: b.enabled,
        imap: b.imap.map(ImapInput::from),
    };
    let (now, actor, s) = (state.clock.now(), principal.actor(), state.clone());
    let channel = state
        .db
        .write(move |conn| {
            let master = s.tokens.master();
            svc::create(conn, &s.definitions, master, &scope, &actor, input, now)
        })
        .await?;
    let location = format!("/api/v1/mail-channels/{}", channel.row.id);
    Ok(created(&MailChannel::from(channel), 1, location))
}

/// One mail channel.
#[utoipa::path(
    tag = "mail", operation_id = "get_mail_channel", security(("bearer" = [])),
    params(("channel_id" = MailChannelId, Path)),
    responses(
        (status = 200, description = "The channel", body = MailChannel, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/mail-channels/{channel_id}")]
pub async fn get_mail_channel(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<MailChannelId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let id = id.into_inner();
    let channel = state
        .db
        .read(move |conn| svc::get(conn, &scope, id))
        .await?;
    let version = channel.row.version;
    Ok(ok_with_etag(&MailChannel::from(channel), version))
}

/// Changes a mail channel (If-Match: its version); the result is checked whole again.
#[utoipa::path(
    tag = "mail", operation_id = "update_mail_channel", security(("bearer" = [])),
    params(("channel_id" = MailChannelId, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the channel changed since")),
    request_body = UpdateMailChannel,
    responses(
        (status = 200, description = "The changed channel", body = MailChannel, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/mail-channels/{channel_id}")]
pub async fn update_mail_channel(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<MailChannelId>,
    body: web::Json<UpdateMailChannel>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let expected = if_match(&req)?;
    let b = body.into_inner();
    let patch = ChannelPatch {
        address: b.address,
        description: b.description,
        template: b.template,
        defaults: b.defaults,
        subject_field: b.subject_field,
        body_field: b.body_field,
        reply_transitions: b.reply_transitions.map(ReplyTransitions::into_rules),
        unknown_senders: b.unknown_senders,
        organization_domains: b.organization_domains,
        max_message_bytes: b.max_message_bytes,
        max_attachments: b.max_attachments,
        enabled: b.enabled,
        imap: b.imap.map(|imap| imap.map(ImapInput::from)),
    };
    let (id, now, actor, s) = (
        id.into_inner(),
        state.clock.now(),
        principal.actor(),
        state.clone(),
    );
    let channel = state
        .db
        .write(move |conn| {
            svc::update(
                conn,
                &s.definitions,
                s.tokens.master(),
                &scope,
                &actor,
                id,
                expected,
                &patch,
                now,
            )
        })
        .await?;
    let version = channel.row.version;
    Ok(ok_with_etag(&MailChannel::from(channel), version))
}

/// Deletes a mail channel; its message log stays (without the channel).
#[utoipa::path(
    tag = "mail", operation_id = "delete_mail_channel", security(("bearer" = [])),
    params(("channel_id" = MailChannelId, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[delete("/mail-channels/{channel_id}")]
pub async fn delete_mail_channel(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<MailChannelId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let (id, now, actor) = (id.into_inner(), state.clock.now(), principal.actor());
    state
        .db
        .write(move |conn| svc::delete(conn, &scope, &actor, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The messages a channel took in, oldest first: status, sender, subject, ticket.
#[utoipa::path(
    tag = "mail", operation_id = "list_mail_messages", security(("bearer" = [])),
    params(("channel_id" = MailChannelId, Path), PageParams),
    responses(
        (status = 200, description = "A page of messages", body = Page<MailMessage>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/mail-channels/{channel_id}/messages")]
pub async fn list_mail_messages(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<MailChannelId>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<MailMessage>>, ApiError> {
    let scope = principal.require(ADMINS)?;
    let id = id.into_inner();
    page.parse()?
        .try_load(
            &state.db,
            move |conn, after, limit| {
                svc::messages(conn, &scope, id, after.map(MailMessageId), limit)
            },
            |r| r.id.0,
            MailMessage::try_from,
        )
        .await
}

/// One message of the log.
#[utoipa::path(
    tag = "mail", operation_id = "get_mail_message", security(("bearer" = [])),
    params(("message_id" = MailMessageId, Path)),
    responses(
        (status = 200, description = "The message's record", body = MailMessage),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/mail-messages/{message_id}")]
pub async fn get_mail_message(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<MailMessageId>,
) -> Result<web::Json<MailMessage>, ApiError> {
    let scope = principal.require(ADMINS)?;
    let id = id.into_inner();
    let row = state
        .db
        .read(move |conn| svc::message(conn, &scope, id))
        .await?;
    Ok(web::Json(MailMessage::try_from(row)?))
}

/// A raw internet message (RFC 5322), headers and body, as received.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(
    dead_code,
    reason = "documents the request body; the bytes are read by hand"
)]
pub struct RawMail(Vec<u8>);

/// Most bytes read from a posted message (the largest any channel may accept).
const MAX_POSTED_BYTES: usize = intake::MAX_MESSAGE_BYTES;

/// Takes one raw message (`message/rfc822`, as an MTA or mail gateway posts it) in on the
/// channel: it is scanned for malware before anything is stored, then filed as a new ticket,
/// added as a comment to the ticket it replies to, or recorded as ignored, refused or
/// quarantined; the answer (202) says which. When the scanner could not be reached the
/// message is kept `pending` and scanned again later, never filed unscanned. docs/mail.md.
#[utoipa::path(
    tag = "mail", operation_id = "create_mail_message", security(("bearer" = [])),
    params(("channel_id" = MailChannelId, Path)),
    request_body(content = inline(RawMail), content_type = "message/rfc822", description = "The raw message, headers and body, as received"),
    responses(
        (status = 202, description = "Taken in: `status` says what became of it — `filed`, `commented`, `ignored`, `refused`, `quarantined`, `failed`, or `pending` (the scanner was unavailable; scanned again by the job runner)", body = MailMessage, headers(("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 413, response = crate::api::problems::PayloadTooLarge),
        (status = 415, response = crate::api::problems::UnsupportedMediaType),
    )
)]
#[post("/mail-channels/{channel_id}/messages")]
pub async fn create_mail_message(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<MailChannelId>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt;
    let scope = principal.require(ADMINS)?;
    let id = id.into_inner();
    // Another tenant's channel is a 404 whatever the request looks like.
    state
        .db
        .read(move |conn| svc::get(conn, &scope, id))
        .await?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("message/rfc822")
    {
        return Err(ApiError::UnsupportedMediaType(
            "Send the raw message as `message/rfc822`.".to_owned(),
        ));
    }
    let mut raw = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::Malformed("The body could not be read.".to_owned()))?;
        if raw.len() + chunk.len() > MAX_POSTED_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_POSTED_BYTES,
            });
        }
        raw.extend_from_slice(&chunk);
    }
    let (now, s) = (state.clock.now(), state.clone());
    let row = web::block(move || {
        let settings = IntakeSettings::from_config(&s.config);
        let env = IntakeEnv {
            definitions: &s.definitions,
            blobs: s.blobs.as_ref(),
            master: s.tokens.master(),
            scanner: settings.scanner.as_ref(),
            own_domain: &settings.own_domain,
        };
        intake::receive(&s.db, &env, scope, id, raw, now)
    })
    .await
    .map_err(|_| ApiError::internal("mail intake was cancelled"))??;
    let location = format!("/api/v1/mail-messages/{}", row.id);
    let message = MailMessage::try_from(row)?;
    Ok(HttpResponse::Accepted()
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(message))
}
