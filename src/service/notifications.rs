//! Notification mail (#15 point 5): rules per template say which ticket events mail whom;
//! a matching event enqueues a `mail.notify` job in its own transaction, and the job renders
//! one mail per recipient from what that recipient may see of the ticket and sends it over
//! SMTP, with threading headers so that replies come back to the ticket. docs/mail.md.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::{TenantScope, acting_user};
use crate::db::audit::Actor;
use crate::db::jobs::NewJob;
use crate::db::mail::MessageRow;
use crate::db::notifications::{self as rows, RuleRow};
use crate::db::types::Json;
use crate::db::{self, Database, DbConnection};
use crate::domain::event::EventType;
use crate::domain::ids::{EntityId, EventId, MailMessageId, NotificationRuleId, TicketId, UserId};
use crate::domain::mail_channel::{MessageStatus, normalize_address};
use crate::domain::notification::{Language, NotificationKind, RecipientRole, Rendering, render};
use crate::domain::ticket::Audience;
use crate::mailer::{Mailer, OutgoingMail, SendError};
use crate::service::definitions::DefinitionCache;
use crate::service::error::{ConflictKind, ServiceError, check_version};
use crate::service::tickets::TicketCaller;

/// The job kind that sends the mails of one rule for one event.
pub const SEND: &str = "mail.notify";
/// Attempts of a send job (the runner's back-off, capped at an hour: about a day).
pub const SEND_ATTEMPTS: i32 = 30;
/// Most rules per tenant.
pub const MAX_RULES: i64 = 200;
/// Most fixed addresses per rule.
pub const MAX_ADDRESSES: usize = 20;
/// Most recipients one rule mails for one event (a large group is cut here).
pub const MAX_RECIPIENTS: usize = 200;

/// A rule as an admin writes it.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub template: String,
    pub event: NotificationKind,
    pub to_state: Option<String>,
    pub recipients: Vec<RecipientRole>,
    pub addresses: Vec<String>,
    pub language: Language,
    pub description: String,
    pub enabled: bool,
}

/// A partial change of a rule (`to_state: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub template: Option<String>,
    pub event: Option<NotificationKind>,
    pub to_state: Option<Option<String>>,
    pub recipients: Option<Vec<RecipientRole>>,
    pub addresses: Option<Vec<String>>,
    pub language: Option<Language>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A stored rule, parsed.
#[derive(Debug, Clone)]
pub struct Rule {
    pub row: RuleRow,
    pub input: RuleInput,
}

fn corrupt(what: &str) -> ServiceError {
    ServiceError::internal(format!("stored notification rule: bad {what}"))
}

impl Rule {
    pub fn of(row: RuleRow) -> Result<Self, ServiceError> {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let recipients = strings(&row.recipients.0)
            .iter()
            .map(|r| RecipientRole::parse(r).ok_or_else(|| corrupt("recipient")))
            .collect::<Result<_, _>>()?;
        let input = RuleInput {
            template: row.template.clone(),
            event: NotificationKind::parse(&row.event).ok_or_else(|| corrupt("event"))?,
            to_state: row.to_state.clone(),
            recipients,
            addresses: strings(&row.addresses.0),
            language: Language::parse(&row.language).ok_or_else(|| corrupt("language"))?,
            description: row.description.clone(),
            enabled: row.enabled,
        };
        Ok(Self { row, input })
    }
}

impl RuleInput {
    fn apply(mut self, patch: &RulePatch) -> Self {
        let p = patch.clone();
        self.template = p.template.unwrap_or(self.template);
        self.event = p.event.unwrap_or(self.event);
        self.to_state = p.to_state.unwrap_or(self.to_state);
        self.recipients = p.recipients.unwrap_or(self.recipients);
        self.addresses = p.addresses.unwrap_or(self.addresses);
        self.language = p.language.unwrap_or(self.language);
        self.description = p.description.unwrap_or(self.description);
        self.enabled = p.enabled.unwrap_or(self.enabled);
        self
    }

    fn into_row(self, base: RuleRow) -> RuleRow {
        RuleRow {
            template: self.template,
            event: self.event.as_str().to_owned(),
            to_state: self.to_state,
            recipients: Json(json!(
                self.recipients
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
            )),
            addresses: Json(json!(self.addresses)),
            language: self.language.as_str().to_owned(),
            description: self.description,
            enabled: self.enabled,
            ..base
        }
    }
}

/// Every check of a rule, against the template's published version.
fn check(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    input: &mut RuleInput,
) -> Result<(), ServiceError> {
    let def = super::mail::published_definition(conn, defs, scope, &input.template)?;
    if let Some(state) = &input.to_state {
        if input.event != NotificationKind::Transitioned {
            return Err(ServiceError::validation(
                "to_state",
                "not_allowed",
                "only a `transitioned` rule names a state",
            ));
        }
        if def.state(state).is_none() {
            return Err(ServiceError::validation(
                "to_state",
                "unknown",
                "the template has no such state",
            ));
        }
    }
    let mut unique = Vec::with_capacity(input.recipients.len());
    for role in &input.recipients {
        if !unique.contains(role) {
            unique.push(*role);
        }
    }
    input.recipients = unique;
    if input.addresses.len() > MAX_ADDRESSES {
        return Err(ServiceError::validation(
            "addresses",
            "too_many",
            format!("at most {MAX_ADDRESSES} addresses"),
        ));
    }
    let mut addresses = Vec::with_capacity(input.addresses.len());
    for (i, raw) in input.addresses.iter().enumerate() {
        let address = normalize_address(raw).ok_or_else(|| {
            ServiceError::validation(
                &format!("addresses/{i}"),
                "invalid",
                "is not a mail address",
            )
        })?;
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    input.addresses = addresses;
    if input.recipients.is_empty() && input.addresses.is_empty() {
        return Err(ServiceError::validation(
            "recipients",
            "empty",
            "name at least one recipient or address",
        ));
    }
    if input.description.chars().count() > 500 {
        return Err(ServiceError::validation(
            "description",
            "too_long",
            "at most 500 characters",
        ));
    }
    Ok(())
}

pub fn create(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    actor: &Actor,
    mut input: RuleInput,
    now: DateTime<Utc>,
) -> Result<Rule, ServiceError> {
    check(conn, defs, scope, &mut input)?;
    if rows::count(conn, scope)? >= MAX_RULES {
        return Err(ServiceError::conflict(
            ConflictKind::Duplicate,
            format!("A tenant has at most {MAX_RULES} notification rules."),
        ));
    }
    let base = RuleRow {
        tenant_id: scope.tenant_id(),
        id: NotificationRuleId::new_at(now),
        template: String::new(),
        event: String::new(),
        to_state: None,
        recipients: Json(Value::Null),
        addresses: Json(Value::Null),
        language: String::new(),
        description: String::new(),
        enabled: true,
        version: 1,
        created_at: now.into(),
        updated_at: now.into(),
    };
    let row = input.clone().into_row(base);
    rows::insert(conn, scope, &row)?;
    audit(conn, scope, actor, "notification_rule.created", &row, now)?;
    Ok(Rule { row, input })
}

fn audit(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    action: &str,
    row: &RuleRow,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    super::audit(
        conn,
        scope,
        actor,
        action,
        ("notification_rule", row.id),
        json!({"template": row.template, "event": row.event, "enabled": row.enabled}),
        now.into(),
    )
}

pub fn get(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: NotificationRuleId,
) -> Result<Rule, ServiceError> {
    Rule::of(rows::find(conn, scope, id)?.ok_or(ServiceError::NotFound)?)
}

pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: Option<&str>,
    after: Option<NotificationRuleId>,
    limit: i64,
) -> Result<Vec<Rule>, ServiceError> {
    rows::list(conn, scope, template, after, limit)?
        .into_iter()
        .map(Rule::of)
        .collect()
}

#[expect(clippy::too_many_arguments, reason = "one edit with its preconditions")]
pub fn update(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    actor: &Actor,
    id: NotificationRuleId,
    expected_version: Option<i64>,
    patch: &RulePatch,
    now: DateTime<Utc>,
) -> Result<Rule, ServiceError> {
    let rule = get(conn, scope, id)?;
    check_version(expected_version, rule.row.version)?;
    let mut input = rule.input.apply(patch);
    check(conn, defs, scope, &mut input)?;
    let mut row = input.clone().into_row(rule.row);
    row.version += 1;
    row.updated_at = now.into();
    rows::update(conn, scope, &row)?;
    audit(conn, scope, actor, "notification_rule.updated", &row, now)?;
    Ok(Rule { row, input })
}

pub fn delete(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    id: NotificationRuleId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let rule = get(conn, scope, id)?;
    rows::delete(conn, scope, id)?;
    audit(
        conn,
        scope,
        actor,
        "notification_rule.deleted",
        &rule.row,
        now,
    )
}

/// The kinds a user opted out of.
pub fn opt_outs(
    conn: &mut DbConnection,
    scope: &TenantScope,
    user: UserId,
) -> Result<Vec<NotificationKind>, ServiceError> {
    Ok(rows::opt_outs(conn, scope, user)?
        .iter()
        .filter_map(|k| NotificationKind::parse(k))
        .collect())
}

/// Replaces the kinds a user opted out of.
pub fn set_opt_outs(
    conn: &mut DbConnection,
    scope: &TenantScope,
    user: UserId,
    kinds: &[NotificationKind],
) -> Result<Vec<NotificationKind>, ServiceError> {
    let kinds: BTreeSet<&str> = kinds.iter().map(|k| k.as_str()).collect();
    rows::set_opt_outs(conn, scope, user, &kinds.into_iter().collect::<Vec<_>>())?;
    opt_outs(conn, scope, user)
}

/// What a ticket event tells the notification outbox.
pub(crate) struct TicketEvent<'a> {
    pub id: EventId,
    pub event_type: EventType,
    pub template: &'a str,
    pub ticket: TicketId,
    pub actor: &'a Actor,
    pub payload: &'a Value,
}

/// Enqueues a `mail.notify` job for every enabled rule the event matches, in the event's
/// transaction. Internal comments never notify.
pub(crate) fn enqueue(
    conn: &mut DbConnection,
    scope: &TenantScope,
    event: &TicketEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let Some(kind) = NotificationKind::of(event.event_type) else {
        return Ok(());
    };
    let comment = &event.payload["comment"];
    if kind == NotificationKind::Commented && comment["internal"] != Value::Bool(false) {
        return Ok(());
    }
    let state = event.payload["ticket"]["state"].as_str();
    for rule in rows::matching(conn, scope, event.template, kind.as_str())? {
        if rule.to_state.is_some() && rule.to_state.as_deref() != state {
            continue;
        }
        let payload = json!({
            "rule_id": rule.id, "ticket_id": event.ticket, "event_id": event.id,
            "kind": kind, "actor": {"id": event.actor.id, "name": event.actor.name},
            "comment": comment["body"],
        });
        let mut job = NewJob::new(SEND, payload, now);
        job.tenant = Some(scope.tenant_id());
        job.max_attempts = SEND_ATTEMPTS;
        db::jobs::enqueue(conn, &job)?;
    }
    Ok(())
}

/// What the send job reads from its payload.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub rule: NotificationRuleId,
    pub ticket: TicketId,
    pub event: EventId,
    pub kind: NotificationKind,
    pub actor_id: Option<EntityId>,
    pub actor_name: String,
    pub comment: Option<String>,
}

impl SendRequest {
    pub fn of(payload: &Value) -> Option<Self> {
        let id = |key: &str| payload[key].as_str();
        Some(Self {
            rule: id("rule_id")?.parse().ok()?,
            ticket: id("ticket_id")?.parse().ok()?,
            event: id("event_id")?.parse().ok()?,
            kind: NotificationKind::parse(id("kind")?)?,
            actor_id: payload["actor"]["id"].as_str().and_then(|s| s.parse().ok()),
            actor_name: payload["actor"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            comment: payload["comment"].as_str().map(str::to_owned),
        })
    }
}

/// One recipient: an address, with the audience that decides what the mail shows.
struct Recipient {
    address: String,
    name: Option<String>,
    audience: Audience,
}

/// Why sending stopped.
#[derive(Debug)]
pub enum SendFailure {
    /// Try the job again later (SMTP 4xx, no connection, the database).
    Transient(String),
}

/// Sends the mails of one rule for one event: one per recipient, each showing only what that
/// recipient may see; a recipient already mailed for this event and rule (a retried job) is
/// skipped, so a retry sends only what is missing. Returns how many mails went out.
pub fn send(
    db: &Database,
    defs: &DefinitionCache,
    mailer: &Mailer,
    scope: TenantScope,
    request: &SendRequest,
    now: DateTime<Utc>,
) -> Result<usize, SendFailure> {
    let transient = |e: ServiceError| SendFailure::Transient(e.to_string());
    let prepared = db
        .write_blocking(|conn| prepare(conn, defs, &scope, request, mailer.message_id_domain()))
        .map_err(transient)?;
    let mut sent = 0;
    for (mail, ticket) in prepared {
        match mailer.send(&mail) {
            Ok(()) => {}
            Err(SendError::Permanent(reason)) => {
                log::warn!("notification to a recipient refused: {reason}");
                continue;
            }
            Err(e @ SendError::Transient(_)) => return Err(SendFailure::Transient(e.to_string())),
        }
        db.write_blocking(|conn| record(conn, &scope, &mail, ticket, now))
            .map_err(transient)?;
        sent += 1;
    }
    Ok(sent)
}

/// The mails still to send, rendered (nothing when the rule or ticket is gone).
fn prepare(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    request: &SendRequest,
    domain: &str,
) -> Result<Vec<(OutgoingMail, TicketId)>, ServiceError> {
    let Some(rule) = rows::find(conn, scope, request.rule)?
        .map(Rule::of)
        .transpose()?
    else {
        return Ok(Vec::new());
    };
    let Some((ticket, _)) = db::tickets::find_ticket(conn, scope, request.ticket)? else {
        return Ok(Vec::new());
    };
    let def = defs.get(conn, scope, ticket.template_id, ticket.template_version)?;
    let fields = ticket.fields();
    let root = format!("ticket.{}@{domain}", ticket.id);
    let mut mails = Vec::new();
    for recipient in recipients(conn, scope, &rule.input, &ticket, request)? {
        if !recipient
            .audience
            .sees(ticket.requester_id, ticket.organization_id)
            && recipient.audience != PUBLIC
        {
            continue;
        }
        let message_id = message_id(request, &recipient.address, domain);
        if db::mail::find_sent(conn, scope, &message_id)?.is_some() {
            continue;
        }
        let visible = recipient.audience.redact(def.as_ref(), fields.clone());
        let ja = rule.input.language == Language::Ja;
        let label =
            |l: &crate::domain::template::Label| if ja { l.ja.clone() } else { l.en.clone() };
        let shown = def
            .fields
            .iter()
            .filter_map(|f| visible.get(&f.key).map(|v| (label(&f.label), v.clone())))
            .collect();
        let state = def
            .state(&ticket.state)
            .map(|s| label(&s.label))
            .unwrap_or_else(|| ticket.state.clone());
        let (subject, text) = render(&Rendering {
            kind: request.kind,
            language: rule.input.language,
            key: &ticket.key(),
            title: &ticket.title,
            state: &state,
            actor: &request.actor_name,
            fields: shown,
            comment: request.comment.as_deref(),
        });
        let mail = OutgoingMail {
            to: vec![(recipient.name.clone(), recipient.address.clone())],
            subject,
            text,
            message_id,
            in_reply_to: Some(root.clone()),
            references: vec![root.clone()],
            auto_submitted: true,
        };
        mails.push((mail, ticket.id));
    }
    Ok(mails)
}

/// What a fixed address sees: public fields only.
const PUBLIC: Audience = Audience::Restricted {
    user: None,
    organization: None,
};

/// The rule's recipients for this ticket: active users with an address who did not opt out
/// of the kind and did not make the change themselves, then the fixed addresses; each address
/// once.
fn recipients(
    conn: &mut DbConnection,
    scope: &TenantScope,
    rule: &RuleInput,
    ticket: &db::tickets::TicketRow,
    request: &SendRequest,
) -> Result<Vec<Recipient>, ServiceError> {
    let mut users: Vec<UserId> = Vec::new();
    for role in &rule.recipients {
        match role {
            RecipientRole::Requester => users.extend(ticket.requester_id),
            RecipientRole::Assignee => users.extend(ticket.assignee_id),
            RecipientRole::Watchers => users.extend(
                db::tickets::watchers(conn, scope, ticket.id)?
                    .into_iter()
                    .map(|(u, _)| u),
            ),
            RecipientRole::Group => {
                if let Some(group) = ticket.group_id {
                    let limit = MAX_RECIPIENTS as i64;
                    users.extend(db::groups::members(conn, scope, group, None, limit)?);
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for user in users {
        if request.actor_id == Some(EntityId(user.0)) || !seen.insert(user) {
            continue;
        }
        let Some(principal) = acting_user(conn, scope, user)? else {
            continue;
        };
        let Some(row) = db::users::find(conn, scope, user)? else {
            continue;
        };
        let Some(address) = row.email.as_deref().and_then(normalize_address) else {
            continue;
        };
        if rows::opt_outs(conn, scope, user)?
            .iter()
            .any(|k| k == request.kind.as_str())
        {
            continue;
        }
        let caller = TicketCaller::of(&principal)?;
        out.push(Recipient {
            address,
            name: Some(row.display_name.clone()).filter(|n| !n.is_empty()),
            audience: caller.audience,
        });
    }
    for address in &rule.addresses {
        if out.iter().all(|r| &r.address != address) {
            out.push(Recipient {
                address: address.clone(),
                name: None,
                audience: PUBLIC,
            });
        }
    }
    out.truncate(MAX_RECIPIENTS);
    Ok(out)
}

/// The same for every attempt of a job, so a retry recognises what it sent.
fn message_id(request: &SendRequest, address: &str, domain: &str) -> String {
    let hash = Sha256::digest(address.as_bytes());
    let short: String = format!("{hash:x}").chars().take(16).collect();
    format!("n.{}.{}.{short}@{domain}", request.event, request.rule)
}

/// Records a sent mail (direction `out`), so that replies naming it thread to the ticket.
fn record(
    conn: &mut DbConnection,
    scope: &TenantScope,
    mail: &OutgoingMail,
    ticket: TicketId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let recipient = mail.to.first().map(|(_, a)| a.clone()).unwrap_or_default();
    let row = MessageRow {
        tenant_id: scope.tenant_id(),
        id: MailMessageId::new_at(now),
        channel_id: None,
        direction: "out".to_owned(),
        message_id: Some(mail.message_id.clone()),
        status: MessageStatus::Sent.as_str().to_owned(),
        reason: None,
        signature: None,
        sender: recipient,
        subject: mail.subject.clone(),
        size: i64::try_from(mail.text.len()).unwrap_or(i64::MAX),
        sha256: format!("{:x}", Sha256::digest(mail.text.as_bytes())),
        ticket_id: Some(ticket),
        raw: None,
        attempts: 1,
        received_at: now.into(),
        processed_at: Some(now.into()),
        comment_id: None,
    };
    db::mail::insert_message(conn, scope, &row)?;
    Ok(())
}
