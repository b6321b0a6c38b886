//! Notification rules (tenant admins and process managers) and each user's opt-outs.
//! docs/mail.md, "Notifications".

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::identity::Role;
use crate::domain::ids::NotificationRuleId;
use crate::domain::notification::{Language, NotificationKind, RecipientRole};
use crate::service::notifications::{self as svc, Rule, RuleInput, RulePatch};

const MANAGERS: &[Role] = &[Role::TenantAdmin, Role::ProcessManager];

/// A notification rule: which events of a template's tickets mail whom.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-7200-7000-8000-000000000001",
    "template": "itil_incident", "event": "transitioned", "to_state": "resolved",
    "recipients": ["requester", "watchers"], "addresses": ["helpdesk@example.co.jp"],
    "language": "ja", "description": "解決したら依頼者に通知", "enabled": true, "version": 1,
    "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z"}))]
pub struct NotificationRule {
    pub id: NotificationRuleId,
    /// The template whose tickets it watches.
    pub template: String,
    pub event: NotificationKind,
    /// `transitioned` only: the state entered; null: any.
    pub to_state: Option<String>,
    pub recipients: Vec<RecipientRole>,
    /// Fixed addresses (lower-cased); they see the ticket's public fields only.
    pub addresses: Vec<String>,
    pub language: Language,
    pub description: String,
    pub enabled: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Rule> for NotificationRule {
    fn from(rule: Rule) -> Self {
        let i = rule.input;
        Self {
            id: rule.row.id,
            template: i.template,
            event: i.event,
            to_state: i.to_state,
            recipients: i.recipients,
            addresses: i.addresses,
            language: i.language,
            description: i.description,
            enabled: i.enabled,
            version: rule.row.version,
            created_at: rule.row.created_at.0,
            updated_at: rule.row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"template": "itil_incident", "event": "transitioned",
    "to_state": "resolved", "recipients": ["requester"], "language": "ja"}))]
pub struct CreateNotificationRule {
    /// A published template's key.
    pub template: String,
    pub event: NotificationKind,
    /// With `transitioned` only: a state of the template.
    #[serde(default)]
    pub to_state: Option<String>,
    /// Whom to mail (each once); with `addresses`, at least one recipient in all.
    #[serde(default)]
    #[schema(max_items = 4)]
    pub recipients: Vec<RecipientRole>,
    /// Fixed addresses, at most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub addresses: Vec<String>,
    /// The mails' language (default `ja`).
    #[serde(default = "default_language")]
    pub language: Language,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn default_language() -> Language {
    Language::Ja
}
fn enabled() -> bool {
    true
}

/// A partial change; every member as in creation (`to_state: null` clears it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateNotificationRule {
    pub template: Option<String>,
    pub event: Option<NotificationKind>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub to_state: Option<Option<String>>,
    #[schema(max_items = 4)]
    pub recipients: Option<Vec<RecipientRole>>,
    #[schema(max_items = 20)]
    pub addresses: Option<Vec<String>>,
    pub language: Option<Language>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleFilter {
    /// Only the rules of this template.
    pub template: Option<String>,
}

/// The tenant's notification rules, optionally of one template.
#[utoipa::path(
    tag = "notifications", operation_id = "list_notification_rules", security(("bearer" = [])),
    params(RuleFilter, PageParams),
    responses(
        (status = 200, description = "A page of rules", body = Page<NotificationRule>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/notification-rules")]
pub async fn list_notification_rules(
    state: web::Data<AppState>,
    principal: Principal,
    filter: web::Query<RuleFilter>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<NotificationRule>>, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let template = filter.into_inner().template;
    page.parse()?
        .load(
            &state.db,
            move |conn, after, limit| {
                let after = after.map(NotificationRuleId);
                svc::list(conn, &scope, template.as_deref(), after, limit)
            },
            |r| r.row.id.0,
            NotificationRule::from,
        )
        .await
}

/// Creates a notification rule; its template must be published and its state exist there.
#[utoipa::path(
    tag = "notifications", operation_id = "create_notification_rule", security(("bearer" = [])),
    request_body = CreateNotificationRule,
    responses(
        (status = 201, description = "Created", body = NotificationRule, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/notification-rules")]
pub async fn create_notification_rule(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateNotificationRule>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let b = body.into_inner();
    let input = RuleInput {
        template: b.template,
        event: b.event,
        to_state: b.to_state,
        recipients: b.recipients,
        addresses: b.addresses,
        language: b.language,
        description: b.description,
        enabled: b.enabled,
    };
    let (now, actor, s) = (state.clock.now(), principal.actor(), state.clone());
    let rule = state
        .db
        .write(move |conn| svc::create(conn, &s.definitions, &scope, &actor, input, now))
        .await?;
    let (version, location) = (
        rule.row.version,
        format!("/api/v1/notification-rules/{}", rule.row.id),
    );
    Ok(created(&NotificationRule::from(rule), version, location))
}

/// One rule.
#[utoipa::path(
    tag = "notifications", operation_id = "get_notification_rule", security(("bearer" = [])),
    params(("rule_id" = NotificationRuleId, Path)),
    responses(
        (status = 200, description = "The rule", body = NotificationRule, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/notification-rules/{rule_id}")]
pub async fn get_notification_rule(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<NotificationRuleId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let id = id.into_inner();
    let rule = state
        .db
        .read(move |conn| svc::get(conn, &scope, id))
        .await?;
    let version = rule.row.version;
    Ok(ok_with_etag(&NotificationRule::from(rule), version))
}

/// Changes a rule (with `If-Match`, 412 when it changed since).
#[utoipa::path(
    tag = "notifications", operation_id = "update_notification_rule", security(("bearer" = [])),
    params(("rule_id" = NotificationRuleId, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the rule changed since")),
    request_body = UpdateNotificationRule,
    responses(
        (status = 200, description = "The changed rule", body = NotificationRule, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/notification-rules/{rule_id}")]
pub async fn update_notification_rule(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<NotificationRuleId>,
    body: web::Json<UpdateNotificationRule>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let expected = if_match(&req)?;
    let b = body.into_inner();
    let patch = RulePatch {
        template: b.template,
        event: b.event,
        to_state: b.to_state,
        recipients: b.recipients,
        addresses: b.addresses,
        language: b.language,
        description: b.description,
        enabled: b.enabled,
    };
    let (id, now, actor, s) = (
        id.into_inner(),
        state.clock.now(),
        principal.actor(),
        state.clone(),
    );
    let rule = state
        .db
        .write(move |conn| {
            svc::update(
                conn,
                &s.definitions,
                &scope,
                &actor,
                id,
                expected,
                &patch,
                now,
            )
        })
        .await?;
    let version = rule.row.version;
    Ok(ok_with_etag(&NotificationRule::from(rule), version))
}

/// Deletes a rule; jobs it already queued send nothing.
#[utoipa::path(
    tag = "notifications", operation_id = "delete_notification_rule", security(("bearer" = [])),
    params(("rule_id" = NotificationRuleId, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[delete("/notification-rules/{rule_id}")]
pub async fn delete_notification_rule(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<NotificationRuleId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let (id, now, actor) = (id.into_inner(), state.clock.now(), principal.actor());
    state
        .db
        .write(move |conn| svc::delete(conn, &scope, &actor, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The kinds of notification mail a user does not want.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"opted_out": ["commented"]}))]
pub struct NotificationPreferences {
    /// Kinds never mailed to this user, whatever the rules say.
    #[schema(max_items = 4)]
    pub opted_out: Vec<NotificationKind>,
}

/// The signed-in user's notification preferences.
#[utoipa::path(
    tag = "notifications", operation_id = "get_notification_preferences", security(("bearer" = [])),
    responses(
        (status = 200, description = "The preferences", body = NotificationPreferences),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
    )
)]
#[get("/me/notification-preferences")]
pub async fn get_notification_preferences(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<NotificationPreferences>, ApiError> {
    let user = principal.user()?;
    let (scope, id) = (user.scope, user.id);
    let opted_out = state
        .db
        .read(move |conn| svc::opt_outs(conn, &scope, id))
        .await?;
    Ok(web::Json(NotificationPreferences { opted_out }))
}

/// Replaces the signed-in user's notification preferences.
#[utoipa::path(
    tag = "notifications", operation_id = "update_notification_preferences", security(("bearer" = [])),
    request_body = NotificationPreferences,
    responses(
        (status = 200, description = "The preferences as stored", body = NotificationPreferences),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[put("/me/notification-preferences")]
pub async fn update_notification_preferences(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NotificationPreferences>,
) -> Result<web::Json<NotificationPreferences>, ApiError> {
    let user = principal.user()?;
    let (scope, id, kinds) = (user.scope, user.id, body.into_inner().opted_out);
    let opted_out = state
        .db
        .write(move |conn| svc::set_opt_outs(conn, &scope, id, &kinds))
        .await?;
    Ok(web::Json(NotificationPreferences { opted_out }))
}
