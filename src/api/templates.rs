//! Templates (process definitions): versions, publishing, linting, states and diagrams.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::common::{Page, PageParams, created, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::templates::{TemplateRow, VersionRow};
use crate::domain::diagram::{self, DiagramFormat, Language};
use crate::domain::identity::Role;
use crate::domain::ids::TemplateId;
use crate::domain::master::Labels;
use crate::domain::template::{
    LintContext, LintIssue, LintReport, SlaCategory, VersionStatus, is_key, lint,
};
use crate::service::templates as svc;

/// Template definitions are read by those who run and inspect processes; requesters and
/// partners see states (and, with tickets, the forms they may fill).
pub(super) const READERS: &[Role] = &[
    Role::TenantAdmin,
    Role::ProcessManager,
    Role::Agent,
    Role::Auditor,
];
pub(super) const EDITORS: &[Role] = &[Role::TenantAdmin, Role::ProcessManager];

#[derive(Debug, Serialize, ToSchema)]
pub struct Template {
    pub id: TemplateId,
    pub key: String,
    /// From the published version (or, before the first publication, the draft).
    pub name: Labels,
    pub latest_version: i32,
    /// The version new tickets start on; null until the first publication.
    pub published_version: Option<i32>,
    /// Archived templates take no new tickets.
    pub archived: bool,
    /// The catalog entry it was installed from, if any.
    pub catalog_key: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TemplateRow> for Template {
    fn from(row: TemplateRow) -> Self {
        Self {
            id: row.id,
            key: row.key,
            name: Labels {
                ja: row.name_ja,
                en: row.name_en,
            },
            latest_version: row.latest_version,
            published_version: row.published_version,
            archived: row.archived,
            catalog_key: row.catalog_key,
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Issue {
    /// Stable code, e.g. `unreachable_state`, `unknown_master` (docs/template-model.md).
    pub code: String,
    /// JSON pointer into the definition, e.g. `/transitions/3/to`.
    pub pointer: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Lint {
    /// True when there are no errors (warnings do not stop publishing).
    pub valid: bool,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl From<&LintReport> for Lint {
    fn from(report: &LintReport) -> Self {
        let issues = |list: &[LintIssue]| {
            list.iter()
                .map(|i| Issue {
                    code: i.code.to_owned(),
                    pointer: i.pointer.clone(),
                    message: i.message.clone(),
                })
                .collect()
        };
        Self {
            valid: report.is_ok(),
            errors: issues(&report.errors),
            warnings: issues(&report.warnings),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateVersion {
    pub template: String,
    pub number: i32,
    pub status: VersionStatus,
    /// The definition (docs/template-model.md).
    pub definition: Value,
    /// The linter's verdict on this version against the tenant as it is now.
    pub lint: Lint,
    pub published_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn version_body(
    key: &str,
    row: VersionRow,
    report: &LintReport,
) -> Result<TemplateVersion, ApiError> {
    Ok(TemplateVersion {
        template: key.to_owned(),
        number: row.number,
        status: VersionStatus::from_storage(&row.status).map_err(ApiError::internal)?,
        definition: row.definition.0,
        lint: report.into(),
        published_at: row.published_at.map(|t| t.0),
        version: row.version,
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
    })
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "incident", "definition": {"name": {"ja": "インシデント", "en": "Incident"}, "key_prefix": "INC",
    "fields": [], "stages": [{"key": "open", "label": {"ja": "受付", "en": "Open"}, "states": [
        {"key": "new", "label": {"ja": "新規", "en": "New"}, "initial": true},
        {"key": "closed", "label": {"ja": "完了", "en": "Closed"}, "terminal": true}]}],
    "transitions": [{"key": "close", "label": {"ja": "完了", "en": "Close"}, "from": ["new"], "to": "closed", "allowed": {"roles": ["agent"]}}]}}))]
pub struct CreateTemplate {
    /// Lowercase letters, digits and underscores, starting with a letter; input is taken in
    /// its canonical form (NFKC, lowercase), so `ＩＮＣ` is `inc`.
    #[validate(length(min = 1, max = 63))]
    #[schema(min_length = 1, max_length = 63)]
    pub key: String,
    pub definition: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTemplate {
    pub template: Template,
    /// Version 1, a draft.
    pub draft: TemplateVersion,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplate {
    /// Archived templates take no new tickets; running tickets continue.
    pub archived: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutVersion {
    pub definition: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LintRequest {
    /// The key the template has or will have (lets a definition create children of itself).
    pub key: Option<String>,
    pub definition: Value,
}

fn parse_key(key: &str) -> Result<(), ApiError> {
    if is_key(key) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "key",
            "pattern",
            "must be 1 to 63 lowercase letters, digits or underscores, starting with a letter",
        ))
    }
}

pub(super) fn parse_number(raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or(ApiError::NotFound)
}

/// Lists the tenant's templates in creation order.
#[utoipa::path(
    tag = "templates", operation_id = "list_templates", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of templates", body = Page<Template>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/templates")]
pub async fn list_templates(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Template>>, ApiError> {
    let scope = principal.require(READERS)?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, after, limit| {
                svc::list_templates(conn, &scope, after.map(TemplateId), limit)
            },
            |r| r.id.0,
            Template::from,
        )
        .await
}

/// Creates a template with version 1 as a draft. The definition must have the right shape
/// (422 otherwise); lint errors are reported in `draft.lint` and block only publishing.
#[utoipa::path(
    tag = "templates", operation_id = "create_template", security(("bearer" = [])),
    request_body = CreateTemplate,
    responses(
        (status = 201, description = "Created", body = CreatedTemplate, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/templates")]
pub async fn create_template(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateTemplate>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    body.validate()?;
    let body = body.into_inner();
    // Keys are taken in their canonical form, so `ＩＮＣ` is `inc` (and a 409 beside it).
    let key = crate::domain::credentials::canonical_name(&body.key);
    parse_key(&key)?;
    let now = state.clock.now();
    let (template, version, report) = state
        .db
        .write(move |conn| {
            svc::create_template(conn, &principal, &scope, &key, &body.definition, None, now)
        })
        .await?;
    let location = format!("/api/v1/templates/{}", template.key);
    let etag = template.version;
    let key = template.key.clone();
    let body = CreatedTemplate {
        template: template.into(),
        draft: version_body(&key, version, &report)?,
    };
    Ok(created(&body, etag, location))
}

/// One template, with its ETag.
#[utoipa::path(
    tag = "templates", operation_id = "get_template", security(("bearer" = [])),
    params(("key" = String, Path)),
    responses(
        (status = 200, description = "The template", body = Template, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/templates/{key}")]
pub async fn get_template(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(READERS)?;
    let key = key.into_inner();
    let template = state
        .db
        .read(move |conn| svc::find(conn, &scope, &key))
        .await?;
    let version = template.version;
    Ok(ok_with_etag(&Template::from(template), version))
}

/// Archives or restores a template.
#[utoipa::path(
    tag = "templates", operation_id = "update_template", security(("bearer" = [])),
    params(("key" = String, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateTemplate,
    responses(
        (status = 200, description = "Updated", body = Template, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/templates/{key}")]
pub async fn update_template(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<UpdateTemplate>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    let expected = if_match(&req)?;
    let (key, now, archived) = (key.into_inner(), state.clock.now(), body.archived);
    let template = state
        .db
        .write(move |conn| {
            svc::set_archived(conn, &principal, &scope, &key, expected, archived, now)
        })
        .await?;
    let version = template.version;
    Ok(ok_with_etag(&Template::from(template), version))
}

/// Deletes a template that was never published (409 for a published one: archive it).
#[utoipa::path(
    tag = "templates", operation_id = "delete_template", security(("bearer" = [])),
    params(("key" = String, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being deleted")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
    )
)]
#[delete("/templates/{key}")]
pub async fn delete_template(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    let expected = if_match(&req)?;
    let (key, now) = (key.into_inner(), state.clock.now());
    state
        .db
        .write(move |conn| svc::delete_template(conn, &principal, &scope, &key, expected, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// All versions of a template, oldest first, each with its lint verdict.
#[utoipa::path(
    tag = "templates", operation_id = "list_template_versions", security(("bearer" = [])),
    params(("key" = String, Path)),
    responses(
        (status = 200, description = "All versions in one page (`next_cursor` is always null; one version per publication)", body = Page<TemplateVersion>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/templates/{key}/versions")]
pub async fn list_template_versions(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
) -> Result<web::Json<Page<TemplateVersion>>, ApiError> {
    let scope = principal.require(READERS)?;
    let key = key.into_inner();
    let items = state
        .db
        .read(move |conn| {
            let (versions, context) = svc::list_versions(conn, &scope, &key)?;
            versions
                .into_iter()
                .map(|v| with_lint(&key, v, &context))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    Ok(web::Json(Page {
        items,
        next_cursor: None,
    }))
}

fn with_lint(
    key: &str,
    row: VersionRow,
    context: &LintContext,
) -> Result<TemplateVersion, ApiError> {
    let report = match crate::domain::template::parse_definition(&row.definition.0) {
        Ok(def) => lint(&def, context),
        Err(errors) => LintReport {
            errors,
            warnings: Vec::new(),
        },
    };
    version_body(key, row, &report)
}

/// Starts a new draft from the latest version (409 while a draft exists).
#[utoipa::path(
    tag = "templates", operation_id = "create_template_version", security(("bearer" = [])),
    params(("key" = String, Path)),
    responses(
        (status = 201, description = "The new draft", body = TemplateVersion, headers(("ETag" = String), ("Location" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
    )
)]
#[post("/templates/{key}/versions")]
pub async fn create_template_version(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    let (key, now) = (key.into_inner(), state.clock.now());
    let body = state
        .db
        .write(move |conn| {
            let row = svc::new_draft(conn, &principal, &scope, &key, now)?;
            let context = svc::lint_context(conn, &scope, &key)?;
            with_lint(&key, row, &context)
        })
        .await?;
    let location = format!(
        "/api/v1/templates/{}/versions/{}",
        body.template, body.number
    );
    let version = body.version;
    Ok(created(&body, version, location))
}

/// One version with its lint verdict and ETag.
#[utoipa::path(
    tag = "templates", operation_id = "get_template_version", security(("bearer" = [])),
    params(("key" = String, Path), ("n" = i32, Path, description = "Version number")),
    responses(
        (status = 200, description = "The version", body = TemplateVersion, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/templates/{key}/versions/{n}")]
pub async fn get_template_version(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(READERS)?;
    let (key, number) = path.into_inner();
    let number = parse_number(&number)?;
    let body = state
        .db
        .read(move |conn| {
            let template = svc::find(conn, &scope, &key)?;
            let row = svc::find_version(conn, &scope, &template, number)?;
            let context = svc::lint_context(conn, &scope, &key)?;
            with_lint(&key, row, &context)
        })
        .await?;
    let version = body.version;
    Ok(ok_with_etag(&body, version))
}

/// Replaces a draft's definition (409 for a published version, which is immutable).
#[utoipa::path(
    tag = "templates", operation_id = "update_template_version", security(("bearer" = [])),
    params(("key" = String, Path), ("n" = i32, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = PutVersion,
    responses(
        (status = 200, description = "Saved; see `lint`", body = TemplateVersion, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[put("/templates/{key}/versions/{n}")]
pub async fn update_template_version(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<PutVersion>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    let expected = if_match(&req)?;
    let (key, number) = path.into_inner();
    let number = parse_number(&number)?;
    let (definition, now) = (body.into_inner().definition, state.clock.now());
    let lookup = key.clone();
    let (row, report) = state
        .db
        .write(move |conn| {
            svc::update_draft(
                conn,
                &principal,
                &scope,
                &lookup,
                number,
                expected,
                &definition,
                now,
            )
        })
        .await?;
    let version = row.version;
    Ok(ok_with_etag(&version_body(&key, row, &report)?, version))
}

/// Lints and freezes a draft. A definition with lint errors is refused with 422 listing each
/// error located by its JSON pointer; the first publication of a template counts against the
/// plan's `max_processes` (409 `/problems/quota-exceeded`).
#[utoipa::path(
    tag = "templates", operation_id = "publish_template_version", security(("bearer" = [])),
    params(("key" = String, Path), ("n" = i32, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being published")),
    responses(
        (status = 200, description = "Published", body = TemplateVersion, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/templates/{key}/versions/{n}/publish")]
pub async fn publish_template_version(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    let expected = if_match(&req)?;
    let (key, number) = path.into_inner();
    let number = parse_number(&number)?;
    let now = state.clock.now();
    let lookup = key.clone();
    let (_template, row, report) = state
        .db
        .write(move |conn| svc::publish(conn, &principal, &scope, &lookup, number, expected, now))
        .await?;
    let version = row.version;
    Ok(ok_with_etag(&version_body(&key, row, &report)?, version))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StateInfo {
    pub key: String,
    pub label: Labels,
    pub initial: bool,
    pub terminal: bool,
    /// SLA clock category.
    pub sla: SlaCategory,
    /// Tickets currently in this state.
    pub ticket_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageInfo {
    pub key: String,
    pub label: Labels,
    pub states: Vec<StateInfo>,
    /// Tickets currently in this stage.
    pub ticket_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateStates {
    pub template: String,
    /// The published version described.
    pub version: i32,
    pub stages: Vec<StageInfo>,
}

/// Stages → states of the published version, with live ticket counts (all versions'
/// tickets; counted for staff only, 0 for requesters and partners).
#[utoipa::path(
    tag = "templates", operation_id = "get_template_states", security(("bearer" = [])),
    params(("key" = String, Path)),
    responses(
        (status = 200, description = "Stages and states", body = TemplateStates),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
    )
)]
#[get("/templates/{key}/states")]
pub async fn get_template_states(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
) -> Result<web::Json<TemplateStates>, ApiError> {
    let scope = principal.require(&Role::ALL)?;
    let staff = principal.require(&crate::service::tickets::STAFF).is_ok();
    let key = key.into_inner();
    let lookup = key.clone();
    let (number, def, counts) = state
        .db
        .read(move |conn| svc::states_with_counts(conn, &scope, &lookup, staff))
        .await?;
    let count = |state: &str| counts.get(state).copied().unwrap_or(0);
    let stages = def
        .stages
        .iter()
        .map(|stage| StageInfo {
            key: stage.key.clone(),
            label: Labels {
                ja: stage.label.ja.clone(),
                en: stage.label.en.clone(),
            },
            states: stage
                .states
                .iter()
                .map(|s| StateInfo {
                    key: s.key.clone(),
                    label: Labels {
                        ja: s.label.ja.clone(),
                        en: s.label.en.clone(),
                    },
                    initial: s.initial,
                    terminal: s.terminal,
                    sla: s.sla,
                    ticket_count: count(&s.key),
                })
                .collect(),
            ticket_count: stage.states.iter().map(|s| count(&s.key)).sum(),
        })
        .collect();
    Ok(web::Json(TemplateStates {
        template: key,
        version: number,
        stages,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiagramParams {
    /// The diagram language: `mermaid` or `dot` (Graphviz).
    #[param(inline)]
    pub format: DiagramFormat,
    /// A version number; default: the published version.
    pub version: Option<i32>,
    /// Label language; default `ja`.
    #[param(inline)]
    pub lang: Option<Language>,
    /// `format=svg` only: draw on each state its tickets now and the p90 of the stays
    /// that ended in the last 30 days (as `GET /stats/templates/{key}` counts them).
    #[serde(default)]
    pub overlay: bool,
}

/// The state machine as a Mermaid or Graphviz DOT diagram (text), or an SVG picture drawn
/// in-process (`format=svg`, optionally with live figures per state: `overlay=true`).
#[utoipa::path(
    tag = "templates", operation_id = "get_template_diagram", security(("bearer" = [])),
    params(("key" = String, Path), DiagramParams),
    responses(
        (status = 200, description = "The diagram source: Mermaid for `format=mermaid`, Graphviz DOT for `format=dot` (UTF-8 text)",
         content((String = "text/vnd.mermaid", example = "stateDiagram-v2\n    new --> resolved"), (String = "text/vnd.graphviz", example = "digraph { new -> resolved }"), (String = "image/svg+xml", example = "<svg xmlns=\"http://www.w3.org/2000/svg\">…</svg>"))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/templates/{key}/diagram")]
pub async fn get_template_diagram(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    params: web::Query<DiagramParams>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(READERS)?;
    let (format, language) = (params.format, params.lang.unwrap_or(Language::Ja));
    let overlay = params.overlay && format == DiagramFormat::Svg;
    let (key, version, now, s) = (
        key.into_inner(),
        params.version,
        state.clock.now(),
        state.clone(),
    );
    let (def, figures) = state
        .db
        .read(move |conn| {
            let def = svc::definition(conn, &scope, &key, version)?;
            let figures = if overlay {
                Some(crate::service::stats::state_figures(
                    conn,
                    &s.definitions,
                    &scope,
                    &key,
                    now,
                )?)
            } else {
                None
            };
            Ok::<_, crate::service::error::ServiceError>((def, figures))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(diagram::render(&def, format, language, figures.as_ref())))
}

/// Lints a definition without saving it: every error and warning with its JSON pointer.
#[utoipa::path(
    tag = "templates", operation_id = "create_template_lint", security(("bearer" = [])),
    request_body = LintRequest,
    responses(
        (status = 200, description = "The verdict (also for a definition of the wrong shape)", body = Lint),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/template-lint")]
pub async fn lint_template(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<LintRequest>,
) -> Result<web::Json<Lint>, ApiError> {
    let scope = principal.require(EDITORS)?;
    let body = body.into_inner();
    let key = body.key.unwrap_or_default();
    if !key.is_empty() {
        parse_key(&key)?;
    }
    let report = state
        .db
        .read(move |conn| {
            let context = svc::lint_context(conn, &scope, &key)?;
            Ok::<_, ApiError>(
                match crate::domain::template::parse_definition(&body.definition) {
                    Ok(def) => lint(&def, &context),
                    Err(errors) => LintReport {
                        errors,
                        warnings: Vec::new(),
                    },
                },
            )
        })
        .await?;
    Ok(web::Json(Lint::from(&report)))
}
