//! Webhook subscriptions (tenant admins), the outbox (a delivery row and a job written with
//! every matching event), and the bookkeeping of delivery attempts. Sending is the
//! `webhook.deliver` job's (`crate::jobs::webhooks`).

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::auth::TenantScope;
use crate::auth::keys::MasterKey;
use crate::db::audit::Actor;
use crate::db::events::Position;
use crate::db::jobs::NewJob;
use crate::db::types::Json;
use crate::db::webhooks::{self as rows, DeliveryRow, WebhookRow};
use crate::db::{self, DbConnection};
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, EntityId, EventId, WebhookId};
use crate::domain::webhook_signature::WebhookSecret;
use crate::outbound::is_public;
use crate::service::error::{ServiceError, check_version};

/// The job kind that sends a subscription's deliveries (one job per subscription, keyed by
/// [`job_key`]).
pub const DELIVER: &str = "webhook.deliver";
/// The recurring job that starts the delivery job of a subscription with due deliveries and
/// no job.
pub const SWEEP: &str = "webhook.sweep";
/// Most subscriptions per tenant.
pub const MAX_WEBHOOKS: i64 = 20;
/// Longest URL, in bytes.
pub const MAX_URL_BYTES: usize = 2_048;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;
/// Most deliveries one redelivery request puts back.
pub const MAX_REDELIVER: i64 = 1_000;
/// Attempts the runner allows a delivery job; the delivery itself decides when to give up
/// (its subscription is disabled after failing for `STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS`).
const JOB_ATTEMPTS: i32 = 10_000;

/// A subscription as a tenant admin writes it.
#[derive(Debug, Clone)]
pub struct WebhookInput {
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub template: Option<String>,
    pub enabled: bool,
}

/// A partial change of a subscription.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub template: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// What the outbound rules allow (`STAGEFLOW_WEBHOOK_ALLOW_PRIVATE`).
#[derive(Debug, Clone, Copy)]
pub struct UrlRules {
    pub allow_private: bool,
}

/// Checks a subscription URL: http(s), a host, no user info, bounded; an address literal
/// must be public unless private targets are allowed (names are checked at delivery, when
/// they are resolved).
pub fn check_url(raw: &str, rules: UrlRules) -> Result<url::Url, ServiceError> {
    let bad = |message: &str| ServiceError::validation("url", "invalid", message);
    if raw.len() > MAX_URL_BYTES {
        return Err(ServiceError::validation(
            "url",
            "too_long",
            format!("at most {MAX_URL_BYTES} bytes"),
        ));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("the scheme must be https or http"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("user info is not allowed in a webhook URL"));
    }
    if url.fragment().is_some() {
        return Err(bad("a fragment is not allowed in a webhook URL"));
    }
    let ip = match url.host() {
        None => return Err(bad("the URL has no host")),
        Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !rules.allow_private
        && !is_public(ip)
    {
        return Err(ServiceError::validation(
            "url",
            "private_address",
            "private, loopback and link-local addresses are refused",
        ));
    }
    Ok(url)
}

fn check_description(description: &str) -> Result<(), ServiceError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::validation(
            "description",
            "too_long",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_template(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: Option<&str>,
) -> Result<(), ServiceError> {
    if let Some(key) = template
        && db::templates::find_template(conn, scope, key)?.is_none()
    {
        return Err(ServiceError::validation(
            "template",
            "unknown",
            "no template with this key",
        ));
    }
    Ok(())
}

fn types_json(types: &[EventType]) -> Json {
    Json(json!(types.iter().map(|t| t.as_str()).collect::<Vec<_>>()))
}

/// The additional data the master key binds a sealed secret to.
fn secret_kid(id: WebhookId, which: &str) -> String {
    format!("webhook:{id}:{which}")
}

fn seal(master: &MasterKey, id: WebhookId, secret: &WebhookSecret) -> Result<String, ServiceError> {
    master
        .seal(&secret_kid(id, "secret"), secret.as_bytes())
        .map_err(|e| ServiceError::internal(format!("webhook secret: {e}")))
}

/// The secrets a delivery is signed with now: the current one, and the previous one while
/// its overlap lasts.
pub fn signing_secrets(
    master: &MasterKey,
    hook: &WebhookRow,
    now: DateTime<Utc>,
) -> Result<Vec<WebhookSecret>, ServiceError> {
    let open = |sealed: &str| {
        let bytes = master
            .open(&secret_kid(hook.id, "secret"), sealed)
            .map_err(|e| ServiceError::internal(format!("webhook secret: {e}")))?;
        let bytes = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| ServiceError::internal("webhook secret of the wrong length"))?;
        Ok::<_, ServiceError>(WebhookSecret::from_bytes(bytes))
    };
    let mut secrets = vec![open(&hook.secret)?];
    if let (Some(previous), Some(until)) = (&hook.previous_secret, hook.previous_secret_until)
        && until.0 > now
    {
        secrets.push(open(previous)?);
    }
    Ok(secrets)
}

/// Creates a subscription; returns it with its secret (shown once).
pub fn create(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    master: &MasterKey,
    (input, rules): (&WebhookInput, UrlRules),
    secret: WebhookSecret,
    now: DateTime<Utc>,
) -> Result<(WebhookRow, WebhookSecret), ServiceError> {
    let url = check_url(&input.url, rules)?;
    check_description(&input.description)?;
    check_template(conn, scope, input.template.as_deref())?;
    if rows::count(conn, scope)? >= MAX_WEBHOOKS {
        return Err(ServiceError::conflict(
            crate::service::error::ConflictKind::Duplicate,
            format!("A tenant has at most {MAX_WEBHOOKS} webhook subscriptions."),
        ));
    }
    let id = WebhookId::new_at(now);
    let row = WebhookRow {
        tenant_id: scope.tenant_id(),
        id,
        url: url.to_string(),
        description: input.description.clone(),
        event_types: types_json(&input.event_types),
        template: input.template.clone(),
        enabled: input.enabled,
        secret: seal(master, id, &secret)?,
        previous_secret: None,
        previous_secret_until: None,
        failing_since: None,
        disabled_reason: None,
        created_by: actor.id.unwrap_or(EntityId::UNKNOWN),
        version: 1,
        created_at: now.into(),
        updated_at: now.into(),
        cursor_txid: 0,
        cursor_seq: 0,
    };
    // It takes the events written from now on.
    let start = db::events::latest(conn, scope)?;
    let row = WebhookRow {
        cursor_txid: start.txid,
        cursor_seq: start.seq,
        ..row
    };
    rows::insert(conn, scope, &row)?;
    super::audit(
        conn,
        scope,
        actor,
        "webhook.created",
        ("webhook", id),
        json!({"url": row.url, "event_types": row.event_types.0}),
        now.into(),
    )?;
    Ok((row, secret))
}

pub fn get(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: WebhookId,
) -> Result<WebhookRow, ServiceError> {
    rows::find(conn, scope, id)?.ok_or(ServiceError::NotFound)
}

pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<WebhookId>,
    limit: i64,
) -> Result<Vec<WebhookRow>, ServiceError> {
    Ok(rows::list(conn, scope, after, limit)?)
}

/// Changes a subscription. Enabling it again clears its failure record.
#[expect(clippy::too_many_arguments, reason = "one edit with its preconditions")]
pub fn update(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    id: WebhookId,
    expected_version: Option<i64>,
    patch: &WebhookPatch,
    rules: UrlRules,
    now: DateTime<Utc>,
) -> Result<WebhookRow, ServiceError> {
    let mut row = rows::lock(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    check_version(expected_version, row.version)?;
    if let Some(url) = &patch.url {
        row.url = check_url(url, rules)?.to_string();
    }
    if let Some(description) = &patch.description {
        check_description(description)?;
        row.description = description.clone();
    }
    if let Some(types) = &patch.event_types {
        row.event_types = types_json(types);
    }
    if let Some(template) = &patch.template {
        check_template(conn, scope, template.as_deref())?;
        row.template = template.clone();
    }
    let enabling = patch.enabled == Some(true) && !row.enabled;
    if let Some(enabled) = patch.enabled {
        if enabling {
            row.failing_since = None;
            row.disabled_reason = None;
        }
        row.enabled = enabled;
    }
    row.version += 1;
    row.updated_at = now.into();
    rows::update(conn, scope, &row)?;
    if enabling {
        // Events written while it was off are not delivered (a redelivery can send those
        // that were attempted before).
        let start = db::events::latest(conn, scope)?;
        rows::set_cursor(conn, (scope.tenant_id(), id), start)?;
        row.cursor_txid = start.txid;
        row.cursor_seq = start.seq;
    }
    super::audit(
        conn,
        scope,
        actor,
        "webhook.updated",
        ("webhook", id),
        json!({"url": row.url, "enabled": row.enabled}),
        now.into(),
    )?;
    Ok(row)
}

pub fn delete(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    id: WebhookId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if !rows::delete(conn, scope, id)? {
        return Err(ServiceError::NotFound);
    }
    super::audit(
        conn,
        scope,
        actor,
        "webhook.deleted",
        ("webhook", id),
        json!({}),
        now.into(),
    )?;
    Ok(())
}

/// A new secret; the previous one keeps signing for [`ROTATION_OVERLAP_HOURS`], so
/// receivers can switch without losing a delivery.
pub fn rotate_secret(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    master: &MasterKey,
    (id, expected_version): (WebhookId, Option<i64>),
    secret: WebhookSecret,
    now: DateTime<Utc>,
) -> Result<(WebhookRow, WebhookSecret), ServiceError> {
    let mut row = rows::lock(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    check_version(expected_version, row.version)?;
    row.previous_secret = Some(row.secret.clone());
    row.previous_secret_until = Some((now + Duration::hours(ROTATION_OVERLAP_HOURS)).into());
    row.secret = seal(master, id, &secret)?;
    row.version += 1;
    row.updated_at = now.into();
    rows::update(conn, scope, &row)?;
    super::audit(
        conn,
        scope,
        actor,
        "webhook.secret_rotated",
        ("webhook", id),
        json!({"previous_valid_until": row.previous_secret_until.map(|t| t.0)}),
        now.into(),
    )?;
    Ok((row, secret))
}

/// What the outbox needs of an event.
pub(crate) struct OutboxEvent<'a> {
    pub event_type: EventType,
    pub container: Option<&'a str>,
}

fn matches(hook: &WebhookRow, event: &OutboxEvent<'_>) -> bool {
    let types = hook.types();
    let type_ok = types.is_empty() || types.iter().any(|t| t == event.event_type.as_str());
    let template_ok = match &hook.template {
        None => true,
        Some(key) => {
            let of_template = event.event_type.as_str().starts_with("ticket.")
                || event.event_type == EventType::TemplatePublished;
            of_template && event.container == Some(key.as_str())
        }
    };
    type_ok && template_ok
}

/// The outbox is the event log itself: each enabled subscription the event matches gets its
/// delivery job started if it has none, in the event's own transaction; the job reads the
/// event after the subscription's cursor. A job that exists is left alone — also one that is
/// closing at this moment: it waits for this transaction before it looks a last time
/// (`jobs::webhooks`, ARCHITECTURE.md "Ending without losing a delivery").
pub(crate) fn enqueue(
    conn: &mut DbConnection,
    scope: &TenantScope,
    event: &OutboxEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let hooks = rows::enabled_with_job(conn, scope, JOB_KEY_PREFIX)?;
    for (hook, _) in hooks.iter().filter(|(h, job)| !job && matches(h, event)) {
        schedule(conn, (scope.tenant_id(), hook.id), now, false)?;
    }
    Ok(())
}

/// A delivery due now: `(event id, event type, subject)` of what it carries.
pub(crate) fn pending_delivery(
    tenant: crate::domain::ids::TenantId,
    webhook: WebhookId,
    (event_id, event_type, subject): (EventId, &str, Option<EntityId>),
    position: Position,
    body: String,
    now: DateTime<Utc>,
) -> DeliveryRow {
    DeliveryRow {
        tenant_id: tenant,
        id: DeliveryId::new_at(now),
        webhook_id: webhook,
        event_id,
        event_type: event_type.to_owned(),
        subject_id: subject,
        event_txid: position.txid,
        event_seq: position.seq,
        body,
        status: rows::PENDING.to_owned(),
        attempts: 0,
        last_status: None,
        last_latency_ms: None,
        last_error: None,
        response_excerpt: None,
        next_attempt_at: Some(now.into()),
        created_at: now.into(),
        last_attempt_at: None,
        delivered_at: None,
    }
}

/// Makes sure the subscription's delivery job exists (it sends every pending delivery of the
/// subscription, in event order). `now`: a manual send (a ping, a redelivery) also makes a
/// job waiting for a retry due at once; an event leaves that wait alone.
pub(crate) fn schedule(
    conn: &mut DbConnection,
    (tenant, webhook): (crate::domain::ids::TenantId, WebhookId),
    at: DateTime<Utc>,
    now: bool,
) -> Result<(), ServiceError> {
    let mut job = NewJob::new(
        DELIVER,
        json!({"tenant_id": tenant, "webhook_id": webhook}),
        at,
    );
    job.tenant = Some(tenant);
    job.max_attempts = JOB_ATTEMPTS;
    let key = job_key(webhook);
    if now {
        db::jobs::ensure_keyed_revived(conn, &job, &key)?;
    } else {
        db::jobs::ensure_keyed(conn, &job, &key)?;
    }
    Ok(())
}

/// The singleton key of a subscription's delivery job.
pub fn job_key(webhook: WebhookId) -> String {
    format!("{JOB_KEY_PREFIX}{webhook}")
}

/// What every delivery job's key starts with (the subscription id follows): [`DELIVER`] and
/// a colon, spelled out once so that no event allocates it.
const JOB_KEY_PREFIX: &str = "webhook.deliver:";

/// A `webhook.ping` delivery to one subscription (not an event of the log): the body names
/// the subscription, signed like every delivery.
pub fn ping(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: WebhookId,
    now: DateTime<Utc>,
) -> Result<DeliveryRow, ServiceError> {
    let hook = rows::find(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    let event_id = EventId::new_at(now);
    let body = json!({
        "id": event_id, "type": "webhook.ping", "occurred_at": now, "tenant": scope.tenant_id(),
        "subject": {"kind": "webhook", "id": hook.id},
        "data": {"webhook": {"id": hook.id, "url": hook.url}},
    });
    let delivery = pending_delivery(
        scope.tenant_id(),
        hook.id,
        (event_id, "webhook.ping", None),
        Position::default(),
        body.to_string(),
        now,
    );
    rows::insert_delivery(conn, scope, &delivery)?;
    schedule(conn, (scope.tenant_id(), hook.id), now, true)?;
    Ok(delivery)
}

pub fn deliveries(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: WebhookId,
    status: Option<&str>,
    before: Option<DeliveryId>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, ServiceError> {
    rows::find(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    Ok(rows::deliveries(conn, scope, id, status, before, limit)?)
}

pub fn delivery(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: WebhookId,
    delivery: DeliveryId,
) -> Result<DeliveryRow, ServiceError> {
    rows::find_delivery(conn, scope, id, delivery)?.ok_or(ServiceError::NotFound)
}

/// What to deliver again: some deliveries by id, or every delivery created in a time range.
#[derive(Debug, Clone)]
pub enum Redelivery {
    Ids(Vec<DeliveryId>),
    Range {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// Puts deliveries back to pending and schedules them now; returns them. Their
/// `webhook-id` stays the event id, so receivers that already processed one recognise it.
pub fn redeliver(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: WebhookId,
    what: &Redelivery,
    now: DateTime<Utc>,
) -> Result<Vec<DeliveryRow>, ServiceError> {
    rows::find(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    let found = match what {
        Redelivery::Ids(ids) => {
            let mut found = Vec::new();
            for d in ids {
                let row = rows::find_delivery(conn, scope, id, *d)?.ok_or_else(|| {
                    ServiceError::validation(
                        "delivery_ids",
                        "unknown",
                        format!("no delivery {d} of this webhook"),
                    )
                })?;
                found.push(row);
            }
            found
        }
        Redelivery::Range { from, to } => rows::deliveries_between(
            conn,
            scope,
            id,
            ((*from).into(), (*to).into()),
            MAX_REDELIVER,
        )?,
    };
    let mut found = found;
    for row in &mut found {
        rows::reset(conn, scope, row.id, now.into())?;
        row.status = rows::PENDING.to_owned();
        row.next_attempt_at = Some(now.into());
    }
    if !found.is_empty() {
        schedule(conn, (scope.tenant_id(), id), now, true)?;
    }
    Ok(found)
}

/// Records a subscription's failure state after a delivery attempt (the job's view: by ids).
/// Disabling it writes a `webhook.disabled` event and an audit entry by the system.
pub fn set_failing(
    conn: &mut DbConnection,
    hook: &WebhookRow,
    since: Option<DateTime<Utc>>,
    disable: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    rows::set_failing(
        conn,
        hook.tenant_id,
        hook.id,
        since.map(Into::into),
        disable,
    )?;
    let Some(reason) = disable else {
        return Ok(());
    };
    let scope = crate::auth::job_scope(hook.tenant_id);
    let actor = Actor::system("webhook delivery");
    super::events::emit(
        conn,
        &scope,
        &actor,
        now,
        super::events::Emit {
            event_type: EventType::WebhookDisabled,
            subject_type: crate::domain::event::SubjectType::Webhook,
            subject_id: EntityId(hook.id.0),
            ticket: None,
            container: None,
            audience: crate::domain::event::EventAudience::Admin,
            payload: json!({"webhook": {"id": hook.id, "url": hook.url, "reason": reason}}),
            restricted: None,
        },
    )?;
    super::audit(
        conn,
        &scope,
        &actor,
        "webhook.disabled",
        ("webhook", hook.id),
        json!({"url": hook.url, "reason": reason}),
        now.into(),
    )?;
    super::alerts::enqueue(
        conn,
        "[Stageflow] a webhook subscription was disabled",
        &format!(
            "The webhook subscription {} of tenant {} ({}) was disabled: {reason}.\n\n\
             Its tenant admins can enable it again (PATCH /api/v1/webhooks/{} \
             {{\"enabled\": true}}) once the receiver works.\n",
            hook.id, hook.tenant_id, hook.url, hook.id
        ),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_key_prefix_is_the_job_kind_and_a_colon() {
        assert_eq!(JOB_KEY_PREFIX, format!("{DELIVER}:"));
    }
}
