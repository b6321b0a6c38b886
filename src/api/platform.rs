//! Platform operator endpoints: plans, accounts (with usage) and tenants.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::platform::{
    AccountChanges, AccountRow, PlanChanges, PlanRow, TenantChanges, TenantRow,
};
use crate::domain::credentials::{NewPassword, Username};
use crate::domain::identity::{TenantSlug, TimeZone};
use crate::domain::ids::{AccountId, PlanId, TenantId};
use crate::service::platform::{self as svc, PlanInput, TenantInput};

#[derive(Debug, Serialize, ToSchema)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    /// Live tenants an account on this plan may have.
    pub max_tenants: i32,
    /// Published templates (processes) an account may have.
    pub max_processes: i32,
    /// Active users (IDs) an account may have across its tenants.
    pub max_users: i32,
    /// Bytes of attachments an account may store across its tenants (each attachment counts
    /// its full size); `null`: unlimited.
    pub max_stored_bytes: Option<i64>,
    /// Data rows of one bulk import (`POST /imports`); `null`: the server's default, 100,000.
    pub max_import_rows: Option<i64>,
    /// Bytes of one bulk import's file; `null`: the server's default, 32 MiB.
    pub max_import_bytes: Option<i64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PlanRow> for Plan {
    fn from(row: PlanRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            max_tenants: row.max_tenants,
            max_processes: row.max_processes,
            max_users: row.max_users,
            max_stored_bytes: row.max_stored_bytes,
            max_import_rows: row.max_import_rows,
            max_import_bytes: row.max_import_bytes,
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Standard", "max_tenants": 3, "max_processes": 20, "max_users": 100}))]
pub struct CreatePlan {
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[validate(range(min = 0, max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_tenants: i32,
    #[validate(range(min = 0, max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_processes: i32,
    #[validate(range(min = 0, max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_users: i32,
    /// Bytes of attachments across the account's tenants; absent or `null`: unlimited.
    #[serde(default)]
    #[validate(range(min = 0))]
    #[schema(minimum = 0)]
    pub max_stored_bytes: Option<i64>,
    /// Data rows of one bulk import, 1–1,000,000; absent or `null`: the default, 100,000.
    #[serde(default)]
    #[validate(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_import_rows: Option<i64>,
    /// Bytes of one bulk import's file, 1–268,435,456 (256 MiB; the file is held in memory
    /// while it is read); absent or `null`: the default, 33,554,432 (32 MiB).
    #[serde(default)]
    #[validate(range(min = 1, max = 268_435_456))]
    #[schema(minimum = 1, maximum = 268_435_456)]
    pub max_import_bytes: Option<i64>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_users": 50}))]
pub struct UpdatePlan {
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[validate(range(min = 0, max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_tenants: Option<i32>,
    #[validate(range(min = 0, max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_processes: Option<i32>,
    #[validate(range(min = 0, max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_users: Option<i32>,
    /// `null` makes attachment storage unlimited.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub max_stored_bytes: Option<Option<i64>>,
    /// 1–1,000,000; `null`: back to the default (100,000).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000)]
    pub max_import_rows: Option<Option<i64>>,
    /// 1–268,435,456; `null`: back to the default (32 MiB).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 268_435_456)]
    pub max_import_bytes: Option<Option<i64>>,
}

/// 422 for an import cap of a plan change outside its range (`validator` does not look
/// inside the double option).
fn check_import_caps(body: &UpdatePlan) -> Result<(), ApiError> {
    let caps = [
        ("max_import_rows", body.max_import_rows, 1_000_000),
        ("max_import_bytes", body.max_import_bytes, 268_435_456),
    ];
    for (field, value, most) in caps {
        if let Some(Some(v)) = value
            && !(1..=most).contains(&v)
        {
            return Err(ApiError::validation(
                field,
                "range",
                format!("must be 1 to {most}, or null for the default"),
            ));
        }
    }
    Ok(())
}

/// Lists plans in creation order.
#[utoipa::path(
    tag = "platform", operation_id = "list_plans", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of plans", body = Page<Plan>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/plans")]
pub async fn list_plans(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Plan>>, ApiError> {
    principal.operator()?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, after, limit| svc::list_plans(conn, after.map(PlanId), limit),
            |r| r.id.0,
            Plan::from,
        )
        .await
}

/// Creates a plan.
#[utoipa::path(
    tag = "platform", operation_id = "create_plan", security(("bearer" = [])),
    request_body = CreatePlan,
    responses(
        (status = 201, description = "Created", body = Plan, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/plans")]
pub async fn create_plan(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreatePlan>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    body.validate()?;
    let body = body.into_inner();
    let input = PlanInput {
        name: body.name,
        max_tenants: body.max_tenants,
        max_processes: body.max_processes,
        max_users: body.max_users,
        max_stored_bytes: body.max_stored_bytes,
        max_import_rows: body.max_import_rows,
        max_import_bytes: body.max_import_bytes,
    };
    let now = state.clock.now();
    let plan = state
        .db
        .write(move |conn| svc::create_plan(conn, &principal, &input, now))
        .await?;
    let location = format!("/api/v1/plans/{}", plan.id);
    let version = plan.version;
    Ok(created(&Plan::from(plan), version, location))
}

/// One plan, with its ETag.
#[utoipa::path(
    tag = "platform", operation_id = "get_plan", security(("bearer" = [])),
    params(("plan_id" = PlanId, Path)),
    responses(
        (status = 200, description = "The plan", body = Plan, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/plans/{plan_id}")]
pub async fn get_plan(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<PlanId>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    let id = id.into_inner();
    let plan = state.db.read(move |conn| svc::get_plan(conn, id)).await?;
    let version = plan.version;
    Ok(ok_with_etag(&Plan::from(plan), version))
}

/// Changes a plan. Lowering a cap below current usage is allowed; it only blocks growth.
#[utoipa::path(
    tag = "platform", operation_id = "update_plan", security(("bearer" = [])),
    params(("plan_id" = PlanId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdatePlan,
    responses(
        (status = 200, description = "Updated", body = Plan, headers(("ETag" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/plans/{plan_id}")]
pub async fn update_plan(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<PlanId>,
    body: web::Json<UpdatePlan>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    body.validate()?;
    check_import_caps(&body)?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    let changes = PlanChanges {
        name: body.name,
        max_tenants: body.max_tenants,
        max_processes: body.max_processes,
        max_users: body.max_users,
        max_stored_bytes: body.max_stored_bytes,
        max_import_rows: body.max_import_rows,
        max_import_bytes: body.max_import_bytes,
    };
    let (id, now) = (id.into_inner(), state.clock.now());
    let plan = state
        .db
        .write(move |conn| svc::update_plan(conn, &principal, id, expected, changes, now))
        .await?;
    let version = plan.version;
    Ok(ok_with_etag(&Plan::from(plan), version))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub plan_id: PlanId,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            plan_id: row.plan_id,
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Example Corp.", "plan_id": "019ac0d2-4a00-7000-8000-000000000001"}))]
pub struct CreateAccount {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub plan_id: PlanId,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub plan_id: Option<PlanId>,
}

/// Lists customer accounts in creation order.
#[utoipa::path(
    tag = "platform", operation_id = "list_accounts", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of accounts", body = Page<Account>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/accounts")]
pub async fn list_accounts(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Account>>, ApiError> {
    principal.operator()?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, after, limit| svc::list_accounts(conn, after.map(AccountId), limit),
            |r| r.id.0,
            Account::from,
        )
        .await
}

/// Creates a customer account (contract) on a plan.
#[utoipa::path(
    tag = "platform", operation_id = "create_account", security(("bearer" = [])),
    request_body = CreateAccount,
    responses(
        (status = 201, description = "Created", body = Account, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/accounts")]
pub async fn create_account(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateAccount>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    body.validate()?;
    let body = body.into_inner();
    let now = state.clock.now();
    let account = state
        .db
        .write(move |conn| svc::create_account(conn, &principal, &body.name, body.plan_id, now))
        .await?;
    let location = format!("/api/v1/accounts/{}", account.id);
    let version = account.version;
    Ok(created(&Account::from(account), version, location))
}

/// One account, with its ETag.
#[utoipa::path(
    tag = "platform", operation_id = "get_account", security(("bearer" = [])),
    params(("account_id" = AccountId, Path)),
    responses(
        (status = 200, description = "The account", body = Account, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/accounts/{account_id}")]
pub async fn get_account(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<AccountId>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    let id = id.into_inner();
    let account = state
        .db
        .read(move |conn| svc::get_account(conn, id))
        .await?;
    let version = account.version;
    Ok(ok_with_etag(&Account::from(account), version))
}

/// Renames an account or moves it to another plan.
#[utoipa::path(
    tag = "platform", operation_id = "update_account", security(("bearer" = [])),
    params(("account_id" = AccountId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateAccount,
    responses(
        (status = 200, description = "Updated", body = Account, headers(("ETag" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/accounts/{account_id}")]
pub async fn update_account(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<AccountId>,
    body: web::Json<UpdateAccount>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    body.validate()?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    let changes = AccountChanges {
        name: body.name,
        plan_id: body.plan_id,
    };
    let (id, now) = (id.into_inner(), state.clock.now());
    let account = state
        .db
        .write(move |conn| svc::update_account(conn, &principal, id, expected, changes, now))
        .await?;
    let version = account.version;
    Ok(ok_with_etag(&Account::from(account), version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// The billing month, `YYYY-MM` (UTC). Default: the current month.
    pub month: Option<String>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UsageFigures {
    /// Active users (IDs) now.
    pub active_ids: i64,
    /// Published templates (processes) now.
    pub processes: i64,
    /// Tickets created in the month.
    pub tickets: i64,
    /// Bytes of stored attachments now: the sum of the attachments' sizes (content attached
    /// twice counts twice).
    pub stored_bytes: i64,
    /// Authenticated API calls in the month (this node's unflushed calls included).
    pub api_calls: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantUsage {
    pub tenant_id: TenantId,
    pub slug: String,
    #[serde(flatten)]
    pub usage: UsageFigures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountUsage {
    pub account_id: AccountId,
    pub month: String,
    pub tenants: Vec<TenantUsage>,
    pub total: UsageFigures,
}

/// Metered usage of an account for billing: per live tenant and in total.
///
/// API calls are counted in memory and flushed every `STAGEFLOW_USAGE_FLUSH_SECONDS` and at
/// shutdown; a node that dies loses at most one interval of counts.
#[utoipa::path(
    tag = "platform", operation_id = "get_account_usage", security(("bearer" = [])),
    params(("account_id" = AccountId, Path), UsageParams),
    responses(
        (status = 200, description = "Usage figures", body = AccountUsage),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/accounts/{account_id}/usage")]
pub async fn get_account_usage(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<AccountId>,
    params: web::Query<UsageParams>,
) -> Result<web::Json<AccountUsage>, ApiError> {
    principal.operator()?;
    let month = match &params.month {
        Some(month) => {
            crate::usage::month_bounds(month)
                .ok_or_else(|| ApiError::validation("month", "format", "must be YYYY-MM"))?;
            month.clone()
        }
        None => crate::usage::month_of(state.clock.now()),
    };
    let (id, db_month) = (id.into_inner(), month.clone());
    let rows = state
        .db
        .read(move |conn| svc::account_usage(conn, id, &db_month))
        .await?;
    let mut total = UsageFigures::default();
    let tenants = rows
        .into_iter()
        .map(|(tenant, stored)| {
            let usage = UsageFigures {
                active_ids: stored.active_ids,
                processes: stored.processes,
                tickets: stored.tickets,
                stored_bytes: stored.stored_bytes,
                api_calls: stored.api_calls + state.usage.pending(tenant.id, &month),
            };
            total.active_ids += usage.active_ids;
            total.processes += usage.processes;
            total.tickets += usage.tickets;
            total.stored_bytes += usage.stored_bytes;
            total.api_calls += usage.api_calls;
            TenantUsage {
                tenant_id: tenant.id,
                slug: tenant.slug,
                usage,
            }
        })
        .collect();
    Ok(web::Json(AccountUsage {
        account_id: id,
        month,
        tenants,
        total,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub account_id: AccountId,
    pub slug: String,
    pub name: String,
    /// IANA time zone used for business calendars and reports.
    pub time_zone: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Self {
            id: row.id,
            account_id: row.account_id,
            slug: row.slug,
            name: row.name,
            time_zone: row.time_zone,
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantAdmin {
    /// Letters, digits and `. _ - @`; stored in its canonical form (NFKC, lowercase).
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub username: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"account_id": "019ac0d2-4a00-7000-8000-000000000001", "slug": "acme",
    "name": "ACME 株式会社", "time_zone": "Asia/Tokyo",
    "admin": {"username": "admin", "password": "a long admin passphrase"}}))]
pub struct CreateTenant {
    pub account_id: AccountId,
    /// Lowercase letters, digits and hyphens, starting with a letter; input is taken in its
    /// canonical form (NFKC, lowercase), so `ＡＣＭＥ` is `acme`.
    #[validate(length(min = 2, max = 63))]
    #[schema(min_length = 2, max_length = 63)]
    pub slug: String,
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: String,
    #[validate(nested)]
    pub admin: TenantAdmin,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantListParams {
    /// Only tenants of this account.
    pub account_id: Option<AccountId>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// Lists live tenants in creation order.
#[utoipa::path(
    tag = "platform", operation_id = "list_tenants", security(("bearer" = [])),
    params(TenantListParams),
    responses(
        (status = 200, description = "A page of tenants", body = Page<Tenant>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/tenants")]
pub async fn list_tenants(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<TenantListParams>,
) -> Result<web::Json<Page<Tenant>>, ApiError> {
    principal.operator()?;
    let params = params.into_inner();
    let request = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .parse()?;
    let account = params.account_id;
    request
        .load(
            &state.db,
            move |conn, after, limit| svc::list_tenants(conn, account, after.map(TenantId), limit),
            |r| r.id.0,
            Tenant::from,
        )
        .await
}

fn parse_tenant_input(
    body: CreateTenant,
    min_password_chars: usize,
) -> Result<TenantInput, ApiError> {
    let slug =
        TenantSlug::parse(&body.slug).map_err(|m| ApiError::validation("slug", "pattern", m))?;
    let time_zone = TimeZone::parse(&body.time_zone)
        .map_err(|m| ApiError::validation("time_zone", "unknown", m))?;
    let username = Username::parse(&body.admin.username)
        .map_err(|e| ApiError::validation("admin.username", e.code(), e.to_string()))?;
    NewPassword::parse(&body.admin.password, username.as_str(), min_password_chars)
        .map_err(|e| ApiError::validation("admin.password", e.code(), e.to_string()))?;
    Ok(TenantInput {
        account_id: body.account_id,
        slug,
        name: body.name,
        time_zone,
        admin_display_name: body
            .admin
            .display_name
            .unwrap_or_else(|| username.to_string()),
        admin_username: username.to_string(),
        admin_password_hash: body.admin.password,
    })
}

/// Creates a tenant and its first tenant admin in one transaction. Refused with
/// `/problems/quota-exceeded` when the account's plan caps tenants or users are reached.
#[utoipa::path(
    tag = "platform", operation_id = "create_tenant", security(("bearer" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = Tenant, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/tenants")]
pub async fn create_tenant(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let operator = principal.operator()?.clone();
    body.validate()?;
    let mut input = parse_tenant_input(body.into_inner(), state.config.password_min_chars)?;
    input.admin_password_hash = state
        .passwords
        .hash(std::mem::take(&mut input.admin_password_hash))
        .await?;
    let now = state.clock.now();
    let (tenant, _admin) = state
        .db
        .write(move |conn| svc::create_tenant(conn, &principal, &operator, &input, now))
        .await?;
    let location = format!("/api/v1/tenants/{}", tenant.id);
    let version = tenant.version;
    Ok(created(&Tenant::from(tenant), version, location))
}

/// One live tenant, with its ETag.
#[utoipa::path(
    tag = "platform", operation_id = "get_tenant", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 200, description = "The tenant", body = Tenant, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/tenants/{tenant_id}")]
pub async fn get_tenant(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    let id = id.into_inner();
    let tenant = state.db.read(move |conn| svc::get_tenant(conn, id)).await?;
    let version = tenant.version;
    Ok(ok_with_etag(&Tenant::from(tenant), version))
}

/// Renames a tenant or changes its time zone.
#[utoipa::path(
    tag = "platform", operation_id = "update_tenant", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "Updated", body = Tenant, headers(("ETag" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/tenants/{tenant_id}")]
pub async fn update_tenant(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<TenantId>,
    body: web::Json<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    body.validate()?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    let time_zone = match body.time_zone {
        Some(tz) => Some(
            TimeZone::parse(&tz)
                .map_err(|m| ApiError::validation("time_zone", "unknown", m))?
                .name()
                .to_owned(),
        ),
        None => None,
    };
    let changes = TenantChanges {
        name: body.name,
        time_zone,
    };
    let (id, now) = (id.into_inner(), state.clock.now());
    let tenant = state
        .db
        .write(move |conn| svc::update_tenant(conn, &principal, id, expected, changes, now))
        .await?;
    let version = tenant.version;
    Ok(ok_with_etag(&Tenant::from(tenant), version))
}

/// Deletes a tenant for good: refused (409 `/problems/export-required`) until an export of it
/// is done (`POST /api/v1/tenants/{tenant_id}/exports`); then every row of the tenant and the
/// attachment content no other tenant shares are erased in one transaction, a count checks
/// that nothing is left, and the platform audit log records `tenant.deleted`. Every token and
/// API key of its users stops working at once; its exports stay.
#[utoipa::path(
    tag = "platform", operation_id = "delete_tenant", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being deleted")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
    )
)]
#[delete("/tenants/{tenant_id}")]
pub async fn delete_tenant(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    principal.operator()?;
    let expected = if_match(&req)?;
    let (id, now) = (id.into_inner(), state.clock.now());
    let erased = state
        .db
        .write(move |conn| {
            crate::service::tenant_export::erase(conn, &principal, id, expected, now)
        })
        .await?;
    let blobs = state.blobs.clone();
    web::block(move || {
        crate::service::tenant_export::remove_contents(blobs.as_ref(), &erased.contents)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(HttpResponse::NoContent().finish())
}
