//! Intake: a raw message → size check → virus scan → parse → filed as a ticket, a comment on
//! the ticket it replies to, ignored, refused or quarantined — one code path for the HTTP
//! endpoint, `stageflow mail deliver` and the IMAP poller. Nothing is stored before the
//! scanner has answered, except a message it could not scan, which is kept `pending` and
//! scanned again by the `mail.rescan` job; nothing is filed unscanned.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Channel;
use crate::auth::keys::MasterKey;
use crate::auth::{TenantScope, acting_user};
use crate::db::audit::Actor;
use crate::db::jobs::NewJob;
use crate::db::mail::{self as rows, MessageRow, Outcome};
use crate::db::{self, Database, DbConnection};
use crate::domain::event::{EventAudience, EventType, SubjectType};
use crate::domain::ids::{CommentId, EntityId, MailChannelId, MailMessageId, TicketId};
use crate::domain::mail::{self as mail, Automation, Intake, MailLimits, ParsedMail};
use crate::domain::mail_channel::{MessageStatus, UnknownSenders, domain_of};
use crate::scanner::{Scanner, Verdict};
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;
use crate::service::events;
use crate::service::tickets::{self, TicketCaller};
use crate::storage::BlobStore;

/// The job kind that scans a pending message again.
pub const RESCAN: &str = "mail.rescan";
/// Attempts of the rescan job: with the runner's back-off (capped at an hour) about four
/// days of scanner outage before the job fails; the message stays `pending` and is listed.
pub const RESCAN_ATTEMPTS: i32 = 100;
/// Messages one sender may send a tenant per hour; more are ignored (a mail-loop guard).
pub const SENDER_RATE_PER_HOUR: i64 = 30;

/// What intake needs besides the database.
pub struct IntakeEnv<'a> {
    pub definitions: &'a DefinitionCache,
    pub blobs: &'a dyn BlobStore,
    pub master: &'a MasterKey,
    /// `None`: no scanner configured; every message waits as `pending`.
    pub scanner: Option<&'a Scanner>,
    /// The domain of the Message-IDs Stageflow writes (our own mail looping back is ignored).
    pub own_domain: &'a str,
}

/// The parts of [`IntakeEnv`] that come from configuration, owned.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    pub scanner: Option<Scanner>,
    pub own_domain: String,
    /// The IMAP poller's timing (`service::mail::imap`).
    pub imap: crate::config::ImapSettings,
}

impl IntakeSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            scanner: config.clamd.as_ref().map(|c| c.scanner()),
            own_domain: config
                .smtp
                .as_ref()
                .map(|s| s.message_id_domain.clone())
                .unwrap_or_else(|| "stageflow.invalid".to_owned()),
            imap: config.imap,
        }
    }
}

/// The largest message any way in reads (a channel's own limit is at most this).
pub const MAX_MESSAGE_BYTES: usize = super::MAX_MESSAGE_BYTES as usize;

/// Everything intake needs outside a server (`stageflow mail deliver`): the tenant, the
/// master key, the attachment store, a definition cache and the settings.
pub struct CommandLineIntake {
    scope: TenantScope,
    master: MasterKey,
    blobs: crate::storage::FsBlobStore,
    definitions: DefinitionCache,
    settings: IntakeSettings,
}

impl CommandLineIntake {
    /// `None` when no live tenant has this slug.
    pub fn open(
        db: &Database,
        config: &crate::config::Config,
        tenant: &str,
    ) -> Result<Option<Self>, ServiceError> {
        let slug = tenant.to_owned();
        let found = db.write_blocking(move |conn| {
            Ok::<_, ServiceError>(db::platform::find_tenant_by_slug(conn, &slug)?)
        })?;
        let Some(tenant) = found else {
            return Ok(None);
        };
        let master = MasterKey::load(&config.master_key, false)
            .map_err(|e| ServiceError::Unavailable(format!("master key: {e}")))?;
        let blobs =
            crate::storage::FsBlobStore::open(crate::storage::attachments_dir(&config.data_dir))
                .map_err(|e| ServiceError::Unavailable(format!("attachment store: {e}")))?;
        Ok(Some(Self {
            scope: crate::auth::job_scope(tenant.id),
            master,
            blobs,
            definitions: DefinitionCache::default(),
            settings: IntakeSettings::from_config(config),
        }))
    }

    pub fn receive(
        &self,
        db: &Database,
        channel: MailChannelId,
        raw: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<MessageRow, ServiceError> {
        let env = IntakeEnv {
            definitions: &self.definitions,
            blobs: &self.blobs,
            master: &self.master,
            scanner: self.settings.scanner.as_ref(),
            own_domain: &self.settings.own_domain,
        };
        receive(db, &env, self.scope, channel, raw, now)
    }
}

/// The scanner's answer for a message and each of its attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    Clean,
    Infected(String),
    /// Unreachable, timed out or broken: scanned again later.
    Unavailable(String),
    /// Larger than the scanner takes: refused (never filed unscanned).
    TooLarge,
}

/// Scans the raw message, then every attachment decoded, with the first finding winning.
pub fn scan(scanner: Option<&Scanner>, raw: &[u8], parsed: Option<&ParsedMail>) -> Scan {
    let Some(scanner) = scanner else {
        return Scan::Unavailable("no virus scanner is configured".to_owned());
    };
    let parts = parsed.map(|p| p.attachments.as_slice()).unwrap_or_default();
    let contents = std::iter::once(raw).chain(parts.iter().map(|a| a.content.as_slice()));
    for content in contents {
        match scanner.scan(content) {
            Ok(Verdict::Clean) => {}
            Ok(Verdict::Infected { signature }) => return Scan::Infected(signature),
            Err(crate::scanner::ScanError::TooLarge { .. }) => return Scan::TooLarge,
            Err(e) => return Scan::Unavailable(e.to_string()),
        }
    }
    Scan::Clean
}

/// Takes one raw message in on a channel: checks its size, scans it and settles it.
/// 413 (`PayloadTooLarge`) above the channel's limit, before anything is stored.
pub fn receive(
    db: &Database,
    env: &IntakeEnv<'_>,
    scope: TenantScope,
    channel: MailChannelId,
    raw: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<MessageRow, ServiceError> {
    let found = db.write_blocking(|conn| super::get(conn, &scope, channel))?;
    let limit = usize::try_from(found.input.max_message_bytes).unwrap_or(usize::MAX);
    if raw.len() > limit {
        return Err(ServiceError::TooLarge { limit });
    }
    let parsed = parse(&raw, &found);
    let verdict = scan(env.scanner, &raw, parsed.as_ref().ok());
    db.write_blocking(|conn| {
        let id = MailMessageId::new_at(now);
        let row = new_row(&scope, id, channel, &raw, now);
        rows::insert_message(conn, &scope, &row)?;
        settle(conn, env, &found, row, raw.clone(), &verdict, now)
    })
}

/// Scans a pending message again (the `mail.rescan` job) and settles it; `None` once it is
/// no longer pending.
pub fn rescan(
    db: &Database,
    env: &IntakeEnv<'_>,
    scope: TenantScope,
    id: MailMessageId,
    now: DateTime<Utc>,
) -> Result<Option<MessageRow>, ServiceError> {
    let row =
        db.write_blocking(|conn| Ok::<_, ServiceError>(rows::find_message(conn, &scope, id)?))?;
    let Some(row) = row.filter(|r| r.status == MessageStatus::Pending.as_str()) else {
        return Ok(None);
    };
    let raw = row.raw.clone().unwrap_or_default();
    let Some(channel_id) = row.channel_id else {
        let outcome = outcome_of(
            &row,
            MessageStatus::Refused,
            Some("its channel was deleted"),
            now,
        );
        return db
            .write_blocking(|conn| finish(conn, &scope, row.clone(), outcome))
            .map(Some);
    };
    let channel = db.write_blocking(|conn| super::get(conn, &scope, channel_id))?;
    let parsed = parse(&raw, &channel);
    let verdict = scan(env.scanner, &raw, parsed.as_ref().ok());
    db.write_blocking(|conn| {
        // Settled by another node meanwhile: leave it.
        let Some(current) = rows::find_message(conn, &scope, id)?
            .filter(|r| r.status == MessageStatus::Pending.as_str())
        else {
            return Ok(None);
        };
        settle(conn, env, &channel, current, raw.clone(), &verdict, now).map(Some)
    })
}

fn parse(raw: &[u8], channel: &Channel) -> Result<ParsedMail, mail::MailError> {
    mail::parse(
        raw,
        &MailLimits {
            max_message_bytes: usize::try_from(channel.input.max_message_bytes).unwrap_or(0),
            max_attachments: usize::try_from(channel.input.max_attachments).unwrap_or(0),
        },
    )
}

fn new_row(
    scope: &TenantScope,
    id: MailMessageId,
    channel: MailChannelId,
    raw: &[u8],
    now: DateTime<Utc>,
) -> MessageRow {
    MessageRow {
        tenant_id: scope.tenant_id(),
        id,
        channel_id: Some(channel),
        direction: "in".to_owned(),
        message_id: None,
        status: MessageStatus::Pending.as_str().to_owned(),
        reason: None,
        signature: None,
        sender: String::new(),
        subject: String::new(),
        size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
        sha256: hex(&Sha256::digest(raw)),
        ticket_id: None,
        raw: Some(raw.to_vec()),
        attempts: 0,
        received_at: now.into(),
        processed_at: None,
        comment_id: None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcome of `row` as `status`, keeping the bytes only where the status keeps them.
fn outcome_of(
    row: &MessageRow,
    status: MessageStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Outcome {
    Outcome {
        status: status.as_str().to_owned(),
        reason: reason.map(str::to_owned),
        signature: None,
        sender: row.sender.clone(),
        subject: row.subject.clone(),
        message_id: row.message_id.clone(),
        ticket_id: None,
        raw: if status.keeps_raw() {
            row.raw.clone()
        } else {
            None
        },
        attempts: row.attempts + 1,
        processed_at: (status != MessageStatus::Pending).then(|| now.into()),
        comment_id: None,
    }
}

fn finish(
    conn: &mut DbConnection,
    scope: &TenantScope,
    mut row: MessageRow,
    outcome: Outcome,
) -> Result<MessageRow, ServiceError> {
    rows::set_outcome(conn, scope, row.id, &outcome)?;
    row.status = outcome.status;
    row.reason = outcome.reason;
    row.signature = outcome.signature;
    row.sender = outcome.sender;
    row.subject = outcome.subject;
    row.message_id = outcome.message_id;
    row.ticket_id = outcome.ticket_id;
    row.attempts = outcome.attempts;
    row.processed_at = outcome.processed_at;
    row.comment_id = outcome.comment_id;
    row.raw = None;
    Ok(row)
}

/// Decides what becomes of a recorded message, in the caller's transaction.
fn settle(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    channel: &Channel,
    mut row: MessageRow,
    raw: Vec<u8>,
    verdict: &Scan,
    now: DateTime<Utc>,
) -> Result<MessageRow, ServiceError> {
    let scope = channel.row.tenant_id;
    let scope = crate::auth::job_scope(scope);
    let parsed = parse(&raw, channel);
    if let Ok(p) = &parsed {
        row.sender = p
            .from
            .as_ref()
            .map(|m| m.address.clone())
            .unwrap_or_default();
        row.subject = p.subject.chars().take(500).collect();
        row.message_id = p.message_id.clone();
    }
    match verdict {
        Scan::Unavailable(why) => pending(conn, &scope, row, why, now),
        Scan::TooLarge => {
            let o = outcome_of(
                &row,
                MessageStatus::Refused,
                Some("too large for the virus scanner"),
                now,
            );
            finish(conn, &scope, row, o)
        }
        Scan::Infected(signature) => quarantine(conn, env, &scope, row, &raw, signature, now),
        Scan::Clean => match parsed {
            Err(e) => {
                let o = outcome_of(&row, MessageStatus::Refused, Some(&e.to_string()), now);
                finish(conn, &scope, row, o)
            }
            Ok(parsed) => file_or_fail(conn, env, channel, row, &raw, &parsed, now),
        },
    }
}

/// Kept with its bytes; the `mail.rescan` job tries again after a back-off.
fn pending(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: MessageRow,
    why: &str,
    now: DateTime<Utc>,
) -> Result<MessageRow, ServiceError> {
    let first = row.attempts == 0;
    let mut outcome = outcome_of(&row, MessageStatus::Pending, Some(why), now);
    outcome.raw = row.raw.clone();
    if first {
        db::jobs::enqueue(
            conn,
            &NewJob {
                kind: RESCAN.to_owned(),
                tenant: Some(scope.tenant_id()),
                payload: json!({"message_id": row.id}),
                run_at: now + Duration::seconds(30),
                max_attempts: RESCAN_ATTEMPTS,
                created_at: now,
            },
        )?;
    }
    finish(conn, scope, row, outcome)
}

/// Sealed under the master key (bound to the message id): only a tenant admin's explicit
/// download opens it. An event and an audit entry say what was found.
fn quarantine(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    scope: &TenantScope,
    row: MessageRow,
    raw: &[u8],
    signature: &str,
    now: DateTime<Utc>,
) -> Result<MessageRow, ServiceError> {
    let sealed = env
        .master
        .seal(&seal_context(row.id), raw)
        .map_err(|e| ServiceError::internal(format!("quarantine: {e}")))?;
    let mut outcome = outcome_of(&row, MessageStatus::Quarantined, Some("malware found"), now);
    outcome.signature = Some(signature.to_owned());
    outcome.raw = Some(sealed.into_bytes());
    let system = Actor::system("mail intake");
    let details = json!({"id": row.id, "channel_id": row.channel_id,
        "sender": row.sender, "subject": row.subject, "signature": signature});
    crate::service::audit(
        conn,
        scope,
        &system,
        "mail_message.quarantined",
        ("mail_message", row.id),
        details.clone(),
        now.into(),
    )?;
    events::emit(
        conn,
        scope,
        &system,
        now,
        events::Emit {
            event_type: EventType::MailMessageQuarantined,
            subject_type: SubjectType::MailMessage,
            subject_id: EntityId(row.id.0),
            ticket: None,
            container: None,
            audience: EventAudience::Admin,
            payload: json!({"mail_message": details}),
            restricted: None,
        },
    )?;
    finish(conn, scope, row, outcome)
}

/// The additional data a quarantined message is sealed with.
pub fn seal_context(id: MailMessageId) -> String {
    format!("mail-quarantine:{id}")
}

/// Files the message in a savepoint; a refusal of the ticket use case (a required field the
/// channel does not fill, a cap) rolls that back and records the message as `failed`,
/// kept for the tenant admin.
fn file_or_fail(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    channel: &Channel,
    row: MessageRow,
    raw: &[u8],
    parsed: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<MessageRow, ServiceError> {
    let scope = crate::auth::job_scope(channel.row.tenant_id);
    let attempt =
        diesel::Connection::transaction(conn, |c| decide(c, env, channel, &row, raw, parsed, now));
    match attempt {
        Ok((status, reason, ticket, comment)) => {
            let mut o = outcome_of(&row, status, reason.as_deref(), now);
            o.ticket_id = ticket;
            o.comment_id = comment;
            finish(conn, &scope, row, o)
        }
        Err(
            e @ (ServiceError::Internal(_)
            | ServiceError::Unavailable(_)
            | ServiceError::Busy { .. }),
        ) => Err(e),
        Err(e) => {
            let reason = reason_of(&e);
            let o = outcome_of(&row, MessageStatus::Failed, Some(&reason), now);
            finish(conn, &scope, row, o)
        }
    }
}

/// Why filing failed, for the message log (no internals: those are returned as errors).
fn reason_of(error: &ServiceError) -> String {
    match error {
        ServiceError::Validation(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        ServiceError::Forbidden(detail) | ServiceError::Conflict { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// What became of it, why, and the ticket and comment it became.
type Decision = (
    MessageStatus,
    Option<String>,
    Option<TicketId>,
    Option<CommentId>,
);

fn decide(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    channel: &Channel,
    row: &MessageRow,
    raw: &[u8],
    parsed: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Decision, ServiceError> {
    let scope = crate::auth::job_scope(channel.row.tenant_id);
    let refused = |why: &str| Ok((MessageStatus::Refused, Some(why.to_owned()), None, None));
    if !channel.input.enabled {
        return refused("the channel is disabled");
    }
    if parsed.from.is_none() {
        return refused("the message has no sender");
    }
    // At-least-once ways in (an IMAP poll that died before it stored the UID, an MTA that
    // retries) may bring a message twice.
    if let Some(message_id) = &parsed.message_id
        && rows::duplicate_on_channel(conn, &scope, channel.row.id, message_id, row.id)?
    {
        return Ok((
            MessageStatus::Ignored,
            Some("a duplicate: this Message-ID was already taken in on the channel".to_owned()),
            None,
            None,
        ));
    }
    let intake = mail::classify(parsed, env.own_domain);
    if let Intake::Ignore(why) = &intake {
        return Ok((
            MessageStatus::Ignored,
            Some(automation_reason(*why).to_owned()),
            None,
            None,
        ));
    }
    let since = now - Duration::hours(1);
    if rows::count_from_since(conn, &scope, &row.sender, since.into())? > SENDER_RATE_PER_HOUR {
        return Ok((
            MessageStatus::Ignored,
            Some("over the sender's hourly rate (a mail loop?)".to_owned()),
            None,
            None,
        ));
    }
    let Some(caller) = sender(conn, channel, parsed, now)? else {
        return refused("unknown sender (the channel refuses them)");
    };
    if let Intake::Reply { message_ids, key } = &intake
        && let Some(ticket) = replied_ticket(conn, env, &caller, message_ids, key.as_ref())?
    {
        let comment = super::reply::comment(conn, env, channel, &caller, ticket, raw, parsed, now)?;
        return Ok((MessageStatus::Commented, None, Some(ticket), Some(comment)));
    }
    let ticket = super::reply::file(conn, env, channel, &caller, raw, parsed, now)?;
    Ok((MessageStatus::Filed, None, Some(ticket), None))
}

fn automation_reason(why: Automation) -> &'static str {
    match why {
        Automation::AutoReply => "an automatic reply",
        Automation::Bounce => "a bounce (delivery status notification)",
        Automation::Bulk => "bulk or list mail",
    }
}

/// The ticket a reply is about, if its sender can see it (by Message-ID first, then by the
/// key in the subject); a reply the sender cannot see is filed as new mail.
fn replied_ticket(
    conn: &mut DbConnection,
    env: &IntakeEnv<'_>,
    caller: &TicketCaller,
    message_ids: &[String],
    key: Option<&(String, i64)>,
) -> Result<Option<TicketId>, ServiceError> {
    let mut candidates: Vec<TicketId> = Vec::new();
    if let Some(t) = rows::ticket_of_message_ids(conn, &caller.scope, message_ids)? {
        candidates.push(t);
    }
    if let Some((prefix, number)) = key {
        candidates.extend(db::tickets::ids_by_key(
            conn,
            &caller.scope,
            &prefix.to_uppercase(),
            *number,
        )?);
    }
    for id in candidates {
        match tickets::load(conn, env.definitions, caller, id) {
            Ok(_) => return Ok(Some(id)),
            Err(ServiceError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The ticket caller the message acts as: the active user with the sender's address, or a
/// new requester (per the channel), or `None` when the channel refuses unknown senders.
fn sender(
    conn: &mut DbConnection,
    channel: &Channel,
    parsed: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Option<TicketCaller>, ServiceError> {
    let scope = crate::auth::job_scope(channel.row.tenant_id);
    let Some(from) = &parsed.from else {
        return Ok(None);
    };
    let user = match db::users::find_active_by_email(conn, &scope, &from.address)? {
        Some(user) => user.id,
        None if channel.input.unknown_senders == UnknownSenders::Refuse => return Ok(None),
        None => super::reply::new_requester(conn, channel, from, domain_of(&from.address), now)?,
    };
    let Some(principal) = acting_user(conn, &scope, user)? else {
        return Ok(None);
    };
    TicketCaller::of(&principal).map(Some)
}

/// A JSON value for events about a message (no content).
pub fn summary(row: &MessageRow) -> Value {
    json!({"id": row.id, "channel_id": row.channel_id, "status": row.status,
        "sender": row.sender, "subject": row.subject})
}
