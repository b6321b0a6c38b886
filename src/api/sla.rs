//! SLA: business calendars and SLA policies (tenant admins and process managers write, staff
//! read), and the Japanese public holidays a calendar closes. docs/sla.md.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::calendar::{Closure, Exception, Rules, Week};
use crate::domain::identity::Role;
use crate::domain::ids::{CalendarId, SlaPolicyId};
use crate::domain::ticket::STAFF_ROLES;
use crate::service::sla::{
    self as svc, CalendarInput, CalendarPatch, CalendarView, Condition, Policy, PolicyInput,
    PolicyPatch,
};

const MANAGERS: &[Role] = &[Role::TenantAdmin, Role::ProcessManager];

// ---------------------------------------------------------------- calendars

/// A business calendar: working hours per weekday in a time zone, less Japanese public
/// holidays (when on), yearly closures and dated exceptions.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-7100-7000-8000-0000000000c1", "name": "東京本社",
    "time_zone": "Asia/Tokyo",
    "working_hours": {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
        "tue": [{"start": "09:00", "end": "18:00"}], "wed": [{"start": "09:00", "end": "18:00"}],
        "thu": [{"start": "09:00", "end": "18:00"}], "fri": [{"start": "09:00", "end": "18:00"}],
        "sat": [], "sun": []},
    "japanese_holidays": true,
    "closures": [{"from": "12-29", "to": "01-03", "name": "年末年始"}],
    "exceptions": [{"date": "2026-12-26", "hours": [{"start": "09:00", "end": "12:00"}], "name": "棚卸"}],
    "version": 1, "created_at": "2026-11-29T09:00:00Z", "updated_at": "2026-11-29T09:00:00Z"}))]
pub struct Calendar {
    pub id: CalendarId,
    pub name: String,
    /// IANA time zone the hours are in.
    pub time_zone: String,
    pub working_hours: Week,
    /// Japanese public holidays (with substitute and citizens' holidays) are closed.
    pub japanese_holidays: bool,
    pub closures: Vec<Closure>,
    pub exceptions: Vec<Exception>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CalendarView> for Calendar {
    fn from(v: CalendarView) -> Self {
        Self {
            id: v.row.id,
            name: v.row.name,
            time_zone: v.row.time_zone,
            working_hours: v.rules.working_hours,
            japanese_holidays: v.rules.japanese_holidays,
            closures: v.rules.closures,
            exceptions: v.rules.exceptions,
            version: v.row.version,
            created_at: v.row.created_at.0,
            updated_at: v.row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "東京本社", "closures": [{"from": "12-29", "to": "01-03", "name": "年末年始"}]}))]
pub struct CreateCalendar {
    /// Unique in the tenant, 1–200 characters.
    #[schema(max_length = 200)]
    pub name: String,
    /// IANA time zone; default the tenant's.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Default Monday to Friday, 09:00–18:00. Spans per day in order, not overlapping, at
    /// most 6; `24:00` ends a span at midnight.
    #[serde(default)]
    pub working_hours: Option<Week>,
    /// Default true.
    #[serde(default = "yes")]
    pub japanese_holidays: bool,
    /// Yearly closures, at most 50.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub closures: Vec<Closure>,
    /// Dated exceptions (one per date), at most 500: over weekday hours, holidays and
    /// closures alike.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub exceptions: Vec<Exception>,
}

fn yes() -> bool {
    true
}

/// A partial change; every member as in creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"exceptions": [{"date": "2026-12-28", "hours": [], "name": "仕事納め"}]}))]
pub struct UpdateCalendar {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub working_hours: Option<Week>,
    pub japanese_holidays: Option<bool>,
    #[schema(max_items = 50)]
    pub closures: Option<Vec<Closure>>,
    #[schema(max_items = 500)]
    pub exceptions: Option<Vec<Exception>>,
}

/// The tenant's calendars in id order.
#[utoipa::path(
    tag = "sla", operation_id = "list_calendars", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of calendars", body = Page<Calendar>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/calendars")]
pub async fn list_calendars(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Calendar>>, ApiError> {
    let scope = principal.require(&STAFF_ROLES)?;
    page.parse()?
        .load(
            &state.db,
            move |conn, after, limit| {
                svc::list_calendars(conn, &scope, after.map(CalendarId), limit)
            },
            |c| c.row.id.0,
            Calendar::from,
        )
        .await
}

/// Creates a calendar.
#[utoipa::path(
    tag = "sla", operation_id = "create_calendar", security(("bearer" = [])),
    request_body = CreateCalendar,
    responses(
        (status = 201, description = "Created", body = Calendar, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/calendars")]
pub async fn create_calendar(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateCalendar>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let b = body.into_inner();
    let input = CalendarInput {
        name: b.name,
        time_zone: b.time_zone,
        rules: Rules {
            working_hours: b.working_hours.unwrap_or_else(Week::office),
            japanese_holidays: b.japanese_holidays,
            closures: b.closures,
            exceptions: b.exceptions,
        },
    };
    let (now, actor) = (state.clock.now(), principal.actor());
    let view = state
        .db
        .write(move |conn| svc::create_calendar(conn, &scope, &actor, input, now))
        .await?;
    let (version, location) = (
        view.row.version,
        format!("/api/v1/calendars/{}", view.row.id),
    );
    Ok(created(&Calendar::from(view), version, location))
}

/// One calendar.
#[utoipa::path(
    tag = "sla", operation_id = "get_calendar", security(("bearer" = [])),
    params(("calendar_id" = CalendarId, Path)),
    responses(
        (status = 200, description = "The calendar", body = Calendar, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/calendars/{calendar_id}")]
pub async fn get_calendar(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<CalendarId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(&STAFF_ROLES)?;
    let id = id.into_inner();
    let view = state
        .db
        .read(move |conn| svc::get_calendar(conn, &scope, id))
        .await?;
    let version = view.row.version;
    Ok(ok_with_etag(&Calendar::from(view), version))
}

/// Changes a calendar (with `If-Match`, 412 when it changed since); the SLA clocks of every
/// template whose policies use it are replayed by a job.
#[utoipa::path(
    tag = "sla", operation_id = "update_calendar", security(("bearer" = [])),
    params(("calendar_id" = CalendarId, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the calendar changed since")),
    request_body = UpdateCalendar,
    responses(
        (status = 200, description = "The changed calendar", body = Calendar, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/calendars/{calendar_id}")]
pub async fn update_calendar(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<CalendarId>,
    body: web::Json<UpdateCalendar>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let expected = if_match(&req)?;
    let b = body.into_inner();
    let patch = CalendarPatch {
        name: b.name,
        time_zone: b.time_zone,
        working_hours: b.working_hours,
        japanese_holidays: b.japanese_holidays,
        closures: b.closures,
        exceptions: b.exceptions,
    };
    let (id, now, actor) = (id.into_inner(), state.clock.now(), principal.actor());
    let view = state
        .db
        .write(move |conn| svc::update_calendar(conn, &scope, &actor, (id, expected), patch, now))
        .await?;
    let version = view.row.version;
    Ok(ok_with_etag(&Calendar::from(view), version))
}

/// Deletes a calendar no SLA policy uses (409 `/problems/calendar-in-use` otherwise).
#[utoipa::path(
    tag = "sla", operation_id = "delete_calendar", security(("bearer" = [])),
    params(("calendar_id" = CalendarId, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
    )
)]
#[delete("/calendars/{calendar_id}")]
pub async fn delete_calendar(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<CalendarId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let (id, now, actor) = (id.into_inner(), state.clock.now(), principal.actor());
    state
        .db
        .write(move |conn| svc::delete_calendar(conn, &scope, &actor, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One Japanese public holiday.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"date": "2026-05-06", "name": "憲法記念日 振替休日"}))]
pub struct Holiday {
    pub date: NaiveDate,
    /// The holiday's Japanese name (a substitute holiday names the one it stands for).
    pub name: String,
}

/// A year's Japanese public holidays.
#[derive(Debug, Serialize, ToSchema)]
pub struct JapaneseHolidays {
    pub year: i32,
    /// In date order.
    pub holidays: Vec<Holiday>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HolidayYear {
    /// 1955–2099.
    #[param(minimum = 1955, maximum = 2099, example = 2026)]
    pub year: i32,
}

/// The Japanese public holidays of a year (national, substitute and citizens' holidays): what
/// a calendar with `japanese_holidays: true` closes. Computed by the `jpholiday` crate; see
/// docs/sla.md for how it is kept current.
#[utoipa::path(
    tag = "sla", operation_id = "list_japanese_holidays", security(("bearer" = [])),
    params(HolidayYear),
    responses(
        (status = 200, description = "The year's holidays", body = JapaneseHolidays),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/japanese-holidays")]
pub async fn list_japanese_holidays(
    principal: Principal,
    query: web::Query<HolidayYear>,
) -> Result<web::Json<JapaneseHolidays>, ApiError> {
    principal.require(&STAFF_ROLES)?;
    let year = query.year;
    let holidays = svc::japanese_holidays(year)?
        .into_iter()
        .map(|(date, name)| Holiday { date, name })
        .collect();
    Ok(web::Json(JapaneseHolidays { year, holidays }))
}

// ---------------------------------------------------------------- policies

/// An SLA policy: first-response and resolution targets, in business time on a calendar,
/// for the tickets of one template that meet its condition.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-7200-7000-8000-0000000000a1", "template": "itil_incident",
    "name": "P1 — 1時間以内に一次回答", "rank": 10,
    "condition": {"field": "priority", "in": ["p1"]},
    "calendar_id": "019ac0d2-7100-7000-8000-0000000000c1",
    "first_response_minutes": 60, "resolution_minutes": 480, "at_risk_percent": 80,
    "enabled": true, "version": 1,
    "created_at": "2026-11-29T09:00:00Z", "updated_at": "2026-11-29T09:00:00Z"}))]
pub struct SlaPolicy {
    pub id: SlaPolicyId,
    pub template: String,
    pub name: String,
    /// Policies of a template are tried in rank order (then id); the first enabled one whose
    /// condition holds applies.
    pub rank: i32,
    /// `null`: every ticket of the template.
    pub condition: Option<Condition>,
    /// `null`: around the clock (UTC, every day).
    pub calendar_id: Option<CalendarId>,
    /// Business minutes to the first response; `null`: no such target.
    pub first_response_minutes: Option<i32>,
    /// Business minutes to a state whose `sla` is `stopped`; `null`: no such target.
    pub resolution_minutes: Option<i32>,
    /// The share of a target after which a clock is at risk (`ticket.sla_at_risk`).
    pub at_risk_percent: i32,
    pub enabled: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Policy> for SlaPolicy {
    fn from(p: Policy) -> Self {
        let i = p.input;
        Self {
            id: p.row.id,
            template: i.template,
            name: i.name,
            rank: i.rank,
            condition: i.condition,
            calendar_id: i.calendar,
            first_response_minutes: i.first_response_minutes,
            resolution_minutes: i.resolution_minutes,
            at_risk_percent: i.at_risk_percent,
            enabled: i.enabled,
            version: p.row.version,
            created_at: p.row.created_at.0,
            updated_at: p.row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"template": "itil_incident", "name": "P1", "rank": 10,
    "condition": {"field": "priority", "in": ["p1"]}, "calendar_id": "019ac0d2-7100-7000-8000-0000000000c1",
    "first_response_minutes": 60, "resolution_minutes": 480}))]
pub struct CreateSlaPolicy {
    /// A published template's key.
    pub template: String,
    #[schema(max_length = 200)]
    pub name: String,
    /// 0–1000000, default 100.
    #[serde(default = "default_rank")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub rank: i32,
    #[serde(default)]
    pub condition: Option<Condition>,
    #[serde(default)]
    pub calendar_id: Option<CalendarId>,
    /// 1–525600; at least one of the two targets.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 525_600)]
    pub first_response_minutes: Option<i32>,
    /// 1–525600.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 525_600)]
    pub resolution_minutes: Option<i32>,
    /// 1–99, default 80.
    #[serde(default = "default_at_risk")]
    #[schema(minimum = 1, maximum = 99)]
    pub at_risk_percent: i32,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_rank() -> i32 {
    100
}
fn default_at_risk() -> i32 {
    80
}

/// A partial change; every member as in creation (`null` clears a nullable one). The
/// template stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"resolution_minutes": 240}))]
pub struct UpdateSlaPolicy {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub rank: Option<i32>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Condition>)]
    pub condition: Option<Option<Condition>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<CalendarId>)]
    pub calendar_id: Option<Option<CalendarId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 525_600)]
    pub first_response_minutes: Option<Option<i32>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 525_600)]
    pub resolution_minutes: Option<Option<i32>>,
    #[schema(minimum = 1, maximum = 99)]
    pub at_risk_percent: Option<i32>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyFilter {
    /// Only the policies of this template.
    pub template: Option<String>,
}

/// The tenant's SLA policies in id order, optionally of one template.
#[utoipa::path(
    tag = "sla", operation_id = "list_sla_policies", security(("bearer" = [])),
    params(PolicyFilter, PageParams),
    responses(
        (status = 200, description = "A page of policies", body = Page<SlaPolicy>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/sla-policies")]
pub async fn list_sla_policies(
    state: web::Data<AppState>,
    principal: Principal,
    filter: web::Query<PolicyFilter>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<SlaPolicy>>, ApiError> {
    let scope = principal.require(&STAFF_ROLES)?;
    let template = filter.into_inner().template;
    page.parse()?
        .load(
            &state.db,
            move |conn, after, limit| {
                let after = after.map(SlaPolicyId);
                svc::list_policies(conn, &scope, template.as_deref(), after, limit)
            },
            |p| p.row.id.0,
            SlaPolicy::from,
        )
        .await
}

/// Creates an SLA policy; its template's tickets are replayed under it by a job.
#[utoipa::path(
    tag = "sla", operation_id = "create_sla_policy", security(("bearer" = [])),
    request_body = CreateSlaPolicy,
    responses(
        (status = 201, description = "Created", body = SlaPolicy, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/sla-policies")]
pub async fn create_sla_policy(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateSlaPolicy>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let b = body.into_inner();
    let input = PolicyInput {
        template: b.template,
        name: b.name,
        rank: b.rank,
        condition: b.condition,
        calendar: b.calendar_id,
        first_response_minutes: b.first_response_minutes,
        resolution_minutes: b.resolution_minutes,
        at_risk_percent: b.at_risk_percent,
        enabled: b.enabled,
    };
    let (now, actor) = (state.clock.now(), principal.actor());
    let policy = state
        .db
        .write(move |conn| svc::create_policy(conn, &scope, &actor, input, now))
        .await?;
    let (version, location) = (
        policy.row.version,
        format!("/api/v1/sla-policies/{}", policy.row.id),
    );
    Ok(created(&SlaPolicy::from(policy), version, location))
}

/// One SLA policy.
#[utoipa::path(
    tag = "sla", operation_id = "get_sla_policy", security(("bearer" = [])),
    params(("policy_id" = SlaPolicyId, Path)),
    responses(
        (status = 200, description = "The policy", body = SlaPolicy, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/sla-policies/{policy_id}")]
pub async fn get_sla_policy(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<SlaPolicyId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(&STAFF_ROLES)?;
    let id = id.into_inner();
    let policy = state
        .db
        .read(move |conn| svc::get_policy(conn, &scope, id))
        .await?;
    let version = policy.row.version;
    Ok(ok_with_etag(&SlaPolicy::from(policy), version))
}

/// Changes an SLA policy (with `If-Match`, 412 when it changed since); its template's
/// tickets are replayed under the change by a job.
#[utoipa::path(
    tag = "sla", operation_id = "update_sla_policy", security(("bearer" = [])),
    params(("policy_id" = SlaPolicyId, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the policy changed since")),
    request_body = UpdateSlaPolicy,
    responses(
        (status = 200, description = "The changed policy", body = SlaPolicy, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/sla-policies/{policy_id}")]
pub async fn update_sla_policy(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<SlaPolicyId>,
    body: web::Json<UpdateSlaPolicy>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let expected = if_match(&req)?;
    let b = body.into_inner();
    let patch = PolicyPatch {
        name: b.name,
        rank: b.rank,
        condition: b.condition,
        calendar: b.calendar_id,
        first_response_minutes: b.first_response_minutes,
        resolution_minutes: b.resolution_minutes,
        at_risk_percent: b.at_risk_percent,
        enabled: b.enabled,
    };
    let (id, now, actor) = (id.into_inner(), state.clock.now(), principal.actor());
    let policy = state
        .db
        .write(move |conn| svc::update_policy(conn, &scope, &actor, (id, expected), patch, now))
        .await?;
    let version = policy.row.version;
    Ok(ok_with_etag(&SlaPolicy::from(policy), version))
}

/// Deletes an SLA policy; its template's tickets are replayed without it by a job.
#[utoipa::path(
    tag = "sla", operation_id = "delete_sla_policy", security(("bearer" = [])),
    params(("policy_id" = SlaPolicyId, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[delete("/sla-policies/{policy_id}")]
pub async fn delete_sla_policy(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<SlaPolicyId>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(MANAGERS)?;
    let (id, now, actor) = (id.into_inner(), state.clock.now(), principal.actor());
    state
        .db
        .write(move |conn| svc::delete_policy(conn, &scope, &actor, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
