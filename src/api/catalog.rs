//! The shipped template catalog.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::common::{Page, created};
use super::templates::{Template, TemplateVersion, version_body};
use crate::app::AppState;
use crate::auth::Principal;
use crate::catalog;
use crate::db;
use crate::domain::identity::Role;
use crate::domain::master::Labels;
use crate::error::ApiError;
use crate::service::templates as svc;

const INSTALLERS: &[Role] = &[Role::TenantAdmin, Role::ProcessManager];

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogEntry {
    pub key: String,
    pub name: Labels,
    pub description: Labels,
    /// Keys of the masters it ships (existing masters with the same key are reused).
    pub masters: Vec<String>,
    /// Whether this tenant has a template with this key.
    pub installed: bool,
}

/// The shipped templates (ITIL, ISMS, BPO intake, customer inquiry) and whether each is
/// installed in the caller's tenant. Not paged: the catalog is small.
#[utoipa::path(
    tag = "templates", operation_id = "list_catalog", security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalog", body = Page<CatalogEntry>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
    )
)]
#[get("/catalog")]
pub async fn list_catalog(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<Page<CatalogEntry>>, ApiError> {
    let scope = principal.require(INSTALLERS)?;
    let installed = state
        .db
        .read(move |conn| db::templates::keys(conn, &scope).map_err(ApiError::from))
        .await?;
    let items = catalog::entries()
        .iter()
        .map(|entry| CatalogEntry {
            key: entry.key.clone(),
            name: entry.name.clone(),
            description: entry.description.clone(),
            masters: entry.masters.iter().map(|m| m.key.clone()).collect(),
            installed: installed.contains(&entry.key),
        })
        .collect();
    Ok(web::Json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstallParams {
    /// Publish version 1 right away when it lints clean in this tenant (default true).
    pub publish: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Installation {
    pub template: Template,
    /// Version 1: published, or a draft whose `lint` says what stopped publication (e.g. a
    /// child-ticket template that is not installed yet).
    pub version: TemplateVersion,
    /// Masters created by this installation (the others existed and were reused).
    pub masters_created: Vec<String>,
}

/// Installs a catalog template and the masters it needs into the tenant. Installing the same
/// entry twice is 409 `/problems/already-installed`; a plan without room for another process
/// is 409 `/problems/quota-exceeded` and nothing is installed.
#[utoipa::path(
    tag = "templates", operation_id = "install_catalog_entry", security(("bearer" = [])),
    params(("key" = String, Path), InstallParams),
    responses(
        (status = 201, description = "Installed", body = Installation),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
    )
)]
#[post("/catalog/{key}/install")]
pub async fn install_catalog_entry(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    params: web::Query<InstallParams>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(INSTALLERS)?;
    let entry = catalog::entry(&key).ok_or(ApiError::NotFound)?;
    let (publish, now) = (params.publish.unwrap_or(true), state.clock.now());
    let installed = state
        .db
        .write(move |conn| svc::install(conn, &principal, &scope, entry, publish, now))
        .await?;
    let location = format!("/api/v1/templates/{}", installed.template.key);
    let etag = installed.template.version;
    let body = Installation {
        version: version_body(
            &installed.template.key,
            installed.version,
            &installed.report,
        ),
        template: installed.template.into(),
        masters_created: installed.masters_created,
    };
    Ok(created(&body, etag, location))
}
