//! Webhook subscriptions (tenant admins), their delivery log, redelivery and ping.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::webhooks::{DeliveryRow, WebhookRow};
use crate::domain::event::EventType;
use crate::domain::identity::Role;
use crate::domain::ids::{DeliveryId, EventId, WebhookId};
use crate::domain::webhook_signature::WebhookSecret;
use crate::service::webhooks::{self as svc, Redelivery, UrlRules, WebhookInput, WebhookPatch};

const ADMINS: &[Role] = &[Role::TenantAdmin];
/// Most event types one subscription lists.
const MAX_TYPES: usize = 50;

/// A webhook subscription (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-7000-7000-8000-000000000001",
    "url": "https://esb.example.com/stageflow", "description": "ESB incident flow",
    "events": ["ticket.created", "ticket.transitioned"], "template": "itil_incident",
    "enabled": true, "failing_since": null, "disabled_reason": null,
    "previous_secret_valid_until": null, "version": 1,
    "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z"}))]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    /// The event types delivered; empty: every type.
    pub events: Vec<String>,
    /// Only ticket and template events of this template; null: any.
    pub template: Option<String>,
    pub enabled: bool,
    /// The first failed delivery since the last success (null: not failing).
    pub failing_since: Option<DateTime<Utc>>,
    /// Why Stageflow disabled it (deliveries failed too long); enabling it clears this.
    pub disabled_reason: Option<String>,
    /// After a secret rotation: until when the previous secret still signs too.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Self {
            events: row.types(),
            id: row.id,
            url: row.url,
            description: row.description,
            template: row.template,
            enabled: row.enabled,
            failing_since: row.failing_since.map(|t| t.0),
            disabled_reason: row.disabled_reason,
            previous_secret_valid_until: row.previous_secret_until.map(|t| t.0),
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

/// A subscription with its signing secret: shown only when created or rotated.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret (`whsec_…`, Standard Webhooks): verify `webhook-signature` with
    /// it. Shown only in this response; stored sealed.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://esb.example.com/stageflow",
    "description": "ESB incident flow", "events": ["ticket.created", "ticket.transitioned"],
    "template": "itil_incident"}))]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: https (or http), at most 2,048 bytes, no user info;
    /// private, loopback and link-local addresses are refused unless the server allows them.
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Event types to deliver (at most 50); empty or omitted: every type. (`event_types`
    /// is accepted as another name of it.)
    #[serde(default, alias = "event_types")]
    #[schema(max_items = 50)]
    pub events: Vec<EventType>,
    /// Only ticket and template events of this template.
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct UpdateWebhook {
    pub url: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Event types to deliver; empty: every type (`event_types` is accepted as well).
    #[serde(alias = "event_types")]
    #[schema(max_items = 50)]
    pub events: Option<Vec<EventType>>,
    /// A template key, or null for any.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub template: Option<Option<String>>,
    /// `true` re-enables a subscription Stageflow disabled, clearing its failure record.
    pub enabled: Option<bool>,
}

fn check_types(types: &[EventType]) -> Result<(), ApiError> {
    if types.len() > MAX_TYPES {
        return Err(ApiError::validation(
            "events",
            "too_many",
            format!("at most {MAX_TYPES} event types"),
        ));
    }
    Ok(())
}

fn rules(state: &AppState) -> UrlRules {
    UrlRules {
        allow_private: state.config.webhooks.allow_private,
    }
}

fn new_secret() -> WebhookSecret {
    WebhookSecret::from_bytes(rand::random())
}

/// The tenant's webhook subscriptions.
#[utoipa::path(
    tag = "webhooks", operation_id = "list_webhooks", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of subscriptions", body = Page<Webhook>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Webhook>>, ApiError> {
    let scope = principal.require(ADMINS)?;
    page.parse()?
        .load(
            &state.db,
            move |conn, after, limit| svc::list(conn, &scope, after.map(WebhookId), limit),
            |r| r.id.0,
            Webhook::from,
        )
        .await
}

/// Subscribes a URL to the tenant's events. Deliveries are signed per Standard Webhooks
/// with the secret in this response (shown once); see docs/integration.md.
#[utoipa::path(
    tag = "webhooks", operation_id = "create_webhook", security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = WebhookWithSecret, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let body = body.into_inner();
    check_types(&body.events)?;
    let input = WebhookInput {
        url: body.url,
        description: body.description,
        event_types: body.events,
        template: body.template,
        enabled: body.enabled,
    };
    let (rules, now, actor) = (rules(&state), state.clock.now(), principal.actor());
    let s = state.clone();
    let (row, secret) = state
        .db
        .write(move |conn| {
            let master = s.tokens.master();
            svc::create(
                conn,
                &scope,
                &actor,
                master,
                (&input, rules),
                new_secret(),
                now,
            )
        })
        .await?;
    let location = format!("/api/v1/webhooks/{}", row.id);
    Ok(created(
        &WebhookWithSecret {
            webhook: row.into(),
            secret: secret.render(),
        },
        1,
        location,
    ))
}

/// One subscription.
#[utoipa::path(
    tag = "webhooks", operation_id = "get_webhook", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path)),
    responses(
        (status = 200, description = "The subscription", body = Webhook, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/webhooks/{webhook_id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let id = id.into_inner();
    let row = state
        .db
        .read(move |conn| svc::get(conn, &scope, id))
        .await?;
    let version = row.version;
    Ok(ok_with_etag(&Webhook::from(row), version))
}

/// Changes a subscription (If-Match: its version). Enabling a disabled one clears its
/// failure record.
#[utoipa::path(
    tag = "webhooks", operation_id = "update_webhook", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the subscription changed since")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The changed subscription", body = Webhook, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/webhooks/{webhook_id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<WebhookId>,
    body: web::Json<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    if let Some(types) = &body.events {
        check_types(types)?;
    }
    let patch = WebhookPatch {
        url: body.url,
        description: body.description,
        event_types: body.events,
        template: body.template,
        enabled: body.enabled,
    };
    let (id, rules, now, actor) = (
        id.into_inner(),
        rules(&state),
        state.clock.now(),
        principal.actor(),
    );
    let row = state
        .db
        .write(move |conn| svc::update(conn, &scope, &actor, id, expected, &patch, rules, now))
        .await?;
    let version = row.version;
    Ok(ok_with_etag(&Webhook::from(row), version))
}

/// Deletes a subscription and its delivery log; pending deliveries are dropped.
#[utoipa::path(
    tag = "webhooks", operation_id = "delete_webhook", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[delete("/webhooks/{webhook_id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let (id, now, actor) = (id.into_inner(), state.clock.now(), principal.actor());
    state
        .db
        .write(move |conn| svc::delete(conn, &scope, &actor, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotates the signing secret (If-Match: the subscription's version). The new secret is in
/// the answer, once; the previous one keeps signing too for 24 hours (both signatures are
/// sent), so a receiver can switch without missing a delivery.
#[utoipa::path(
    tag = "webhooks", operation_id = "create_webhook_secret", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the subscription changed since")),
    responses(
        (status = 200, description = "The subscription with its new secret", body = WebhookWithSecret, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
    )
)]
#[post("/webhooks/{webhook_id}/secret")]
pub async fn create_webhook_secret(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    rotate(state, principal, req, id.into_inner()).await
}

/// Rotates the signing secret: the same as `POST /webhooks/{webhook_id}/secret` under the
/// contract's name. The new secret is in the answer, once; the previous one keeps signing too
/// for 24 hours.
#[utoipa::path(
    tag = "webhooks", operation_id = "create_webhook_secret_rotation", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the subscription changed since")),
    responses(
        (status = 200, description = "The subscription with its new secret", body = WebhookWithSecret, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
    )
)]
#[post("/webhooks/{webhook_id}/rotate-secret")]
pub async fn rotate_webhook_secret(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    rotate(state, principal, req, id.into_inner()).await
}

async fn rotate(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: WebhookId,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let expected = if_match(&req)?;
    let (now, actor) = (state.clock.now(), principal.actor());
    let s = state.clone();
    let (row, secret) = state
        .db
        .write(move |conn| {
            let master = s.tokens.master();
            svc::rotate_secret(
                conn,
                &scope,
                &actor,
                master,
                (id, expected),
                new_secret(),
                now,
            )
        })
        .await?;
    let version = row.version;
    Ok(ok_with_etag(
        &WebhookWithSecret {
            webhook: row.into(),
            secret: secret.render(),
        },
        version,
    ))
}

/// One delivery: an event (or a ping) sent to a subscription, with its last attempt.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-7100-7000-8000-000000000001",
    "webhook_id": "019ac0d2-7000-7000-8000-000000000001",
    "event_id": "019ac0d2-6000-7000-8000-000000000001", "event_type": "ticket.created",
    "status": "delivered", "attempts": 1, "last_status": 204, "last_latency_ms": 38,
    "last_error": null, "response_excerpt": null, "next_attempt_at": null,
    "created_at": "2026-11-28T09:00:00Z", "last_attempt_at": "2026-11-28T09:00:00Z",
    "delivered_at": "2026-11-28T09:00:00Z"}))]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    /// Also the `webhook-id` header: receivers deduplicate on it.
    pub event_id: EventId,
    /// The event's type, or `webhook.ping`.
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// The HTTP status of the last attempt (null: no answer).
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    /// Why the last attempt failed (timeout, connection refused, HTTP 503, refused address…).
    pub last_error: Option<String>,
    /// The first kilobyte of the receiver's last answer.
    pub response_excerpt: Option<String>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

crate::domain::closed_set::closed_set! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Not yet delivered; attempts continue.
        Pending = "pending",
        Delivered = "delivered",
        /// Given up (a 4xx answer, a refused address, a disabled subscription); redeliver
        /// it when the receiver is fixed.
        Failed = "failed",
    }
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = ApiError;

    fn try_from(r: DeliveryRow) -> Result<Self, ApiError> {
        Ok(Self {
            status: DeliveryStatus::from_storage(&r.status).map_err(ApiError::internal)?,
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event_type: r.event_type,
            attempts: r.attempts,
            last_status: r.last_status,
            last_latency_ms: r.last_latency_ms,
            last_error: r.last_error,
            response_excerpt: r.response_excerpt,
            next_attempt_at: r.next_attempt_at.map(|t| t.0),
            created_at: r.created_at.0,
            last_attempt_at: r.last_attempt_at.map(|t| t.0),
            delivered_at: r.delivered_at.map(|t| t.0),
        })
    }
}

/// Sends a `webhook.ping` delivery now (signed like every delivery) to test the receiver.
#[utoipa::path(
    tag = "webhooks", operation_id = "create_webhook_ping", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path)),
    responses(
        (status = 202, description = "The ping delivery, queued", body = Delivery),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[post("/webhooks/{webhook_id}/ping")]
pub async fn create_webhook_ping(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let (id, now) = (id.into_inner(), state.clock.now());
    let row = state
        .db
        .write(move |conn| svc::ping(conn, &scope, id, now))
        .await?;
    Ok(HttpResponse::Accepted().json(Delivery::try_from(row)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// The subscription's delivery log, newest first.
#[utoipa::path(
    tag = "webhooks", operation_id = "list_webhook_deliveries", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<Delivery>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/webhooks/{webhook_id}/deliveries")]
pub async fn list_webhook_deliveries(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<WebhookId>,
    params: web::Query<DeliveryParams>,
) -> Result<web::Json<Page<Delivery>>, ApiError> {
    let scope = principal.require(ADMINS)?;
    let params = params.into_inner();
    let request = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .parse()?;
    let (id, status) = (id.into_inner(), params.status);
    request
        .try_load(
            &state.db,
            move |conn, before, limit| {
                let status = status.map(DeliveryStatus::as_str);
                svc::deliveries(conn, &scope, id, status, before.map(DeliveryId), limit)
            },
            |r| r.id.0,
            Delivery::try_from,
        )
        .await
}

/// One delivery of the subscription.
#[utoipa::path(
    tag = "webhooks", operation_id = "get_webhook_delivery", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path), ("delivery_id" = DeliveryId, Path)),
    responses(
        (status = 200, description = "The delivery", body = Delivery),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/webhooks/{webhook_id}/deliveries/{delivery_id}")]
pub async fn get_webhook_delivery(
    state: web::Data<AppState>,
    principal: Principal,
    ids: web::Path<(WebhookId, DeliveryId)>,
) -> Result<web::Json<Delivery>, ApiError> {
    let scope = principal.require(ADMINS)?;
    let (id, delivery) = ids.into_inner();
    let row = state
        .db
        .read(move |conn| svc::delivery(conn, &scope, id, delivery))
        .await?;
    Ok(web::Json(Delivery::try_from(row)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "2026-11-28T00:00:00Z", "to": "2026-11-28T12:00:00Z"}))]
pub struct CreateRedelivery {
    /// These deliveries (at most 100)…
    #[schema(max_items = 100)]
    pub delivery_ids: Option<Vec<DeliveryId>>,
    /// …or every delivery created from this instant (inclusive)…
    pub from: Option<DateTime<Utc>>,
    /// …to this one (exclusive); at most 1,000 deliveries.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    /// The deliveries queued again (pending, due now).
    pub items: Vec<Delivery>,
}

/// Delivers again: some deliveries by id, or all of a time range, whatever their state.
/// Each keeps its event id as `webhook-id`, so receivers recognise what they processed.
#[utoipa::path(
    tag = "webhooks", operation_id = "create_webhook_redelivery", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path)),
    request_body = CreateRedelivery,
    responses(
        (status = 202, description = "Queued again", body = Redelivered),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/webhooks/{webhook_id}/redeliveries")]
pub async fn create_webhook_redelivery(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<WebhookId>,
    body: web::Json<CreateRedelivery>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let what = match body.into_inner() {
        CreateRedelivery {
            delivery_ids: Some(ids),
            from: None,
            to: None,
        } if (1..=100).contains(&ids.len()) => Redelivery::Ids(ids),
        CreateRedelivery {
            delivery_ids: None,
            from: Some(from),
            to: Some(to),
        } if from < to => Redelivery::Range { from, to },
        _ => {
            return Err(ApiError::validation(
                "delivery_ids",
                "invalid",
                "give either 1–100 delivery_ids, or from and to with from before to",
            ));
        }
    };
    let (id, now) = (id.into_inner(), state.clock.now());
    let rows = state
        .db
        .write(move |conn| svc::redeliver(conn, &scope, id, &what, now))
        .await?;
    let items = rows
        .into_iter()
        .map(Delivery::try_from)
        .collect::<Result<_, _>>()?;
    Ok(HttpResponse::Accepted().json(Redelivered { items }))
}

/// Delivers one delivery again, whatever its state, keeping its event id as `webhook-id`.
#[utoipa::path(
    tag = "webhooks", operation_id = "create_webhook_delivery_redelivery", security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path), ("delivery_id" = DeliveryId, Path)),
    responses(
        (status = 202, description = "Queued again (pending, due now)", body = Delivery),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver_webhook_delivery(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(WebhookId, DeliveryId)>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(ADMINS)?;
    let ((id, delivery), now) = (path.into_inner(), state.clock.now());
    let rows = state
        .db
        .write(move |conn| {
            // An unknown delivery is a 404 here (the path names it), not a 422.
            svc::delivery(conn, &scope, id, delivery)?;
            svc::redeliver(conn, &scope, id, &Redelivery::Ids(vec![delivery]), now)
        })
        .await?;
    let row = rows.into_iter().next().ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Accepted().json(Delivery::try_from(row)?))
}
