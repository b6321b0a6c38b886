//! The shipped template catalog.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::common::{Page, created};
use super::templates::{Template, TemplateVersion, version_body};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::catalog;
use crate::domain::identity::Role;
use crate::domain::master::Labels;
use crate::service::templates as svc;

const INSTALLERS: &[Role] = &[Role::TenantAdmin, Role::ProcessManager];

/// One entry of the catalog listing. (Its schema has its own name: `CatalogEntry` is the
/// import/export format of `crate::catalog`.)
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CatalogListEntry)]
pub struct CatalogEntry {
    pub key: String,
    pub name: Labels,
    pub description: Labels,
    /// Keys of the masters it ships (existing masters with the same key are reused).
    pub masters: Vec<String>,
    /// Keys of the catalog templates this one files child tickets into; installing it
    /// installs those too (and theirs), unless the tenant has them already.
    pub requires: Vec<String>,
    /// Whether this tenant has a template with this key.
    pub installed: bool,
}

/// The shipped templates (ITIL, ISMS, BPO intake, customer inquiry) and whether each is
/// installed in the caller's tenant. Not paged: the catalog is small.
#[utoipa::path(
    tag = "templates", operation_id = "list_catalog", security(("bearer" = [])),
    responses(
        (status = 200, description = "The whole catalog in one page (`next_cursor` is always null; it has a handful of entries)", body = Page<CatalogEntry>),
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
        .read(move |conn| crate::service::templates::keys(conn, &scope))
        .await?;
    let items = catalog::entries()
        .iter()
        .map(|entry| CatalogEntry {
            key: entry.key.clone(),
            name: entry.name.clone(),
            description: entry.description.clone(),
            masters: entry.masters.iter().map(|m| m.key.clone()).collect(),
            requires: catalog::required_templates(entry),
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
    /// Version 1: published, or a draft whose `lint` says what stopped publication (with
    /// `publish=false`, or when a template the tenant already had does not fit it).
    pub version: TemplateVersion,
    /// Masters created by this installation (the others existed and were reused).
    pub masters_created: Vec<String>,
    /// Libraries created by this installation (the others existed and were reused).
    pub libraries_created: Vec<String>,
    /// Templates installed (and published) along with this one because it files child
    /// tickets into them, in installation order; the ones the tenant had were reused.
    pub templates_created: Vec<String>,
}

/// Installs a catalog template with everything it needs.
///
/// The entry comes with the masters and libraries it uses and the catalog templates it
/// files child tickets into (its `requires`, transitively); whatever the tenant already has
/// is reused as it is. With `publish` (the default) every new template is published in
/// dependency order. Installing the same entry twice is 409 `/problems/already-installed`; a
/// plan without room for the new processes is 409 `/problems/quota-exceeded` and nothing is
/// installed.
#[utoipa::path(
    tag = "templates", operation_id = "install_catalog_entry", security(("bearer" = [])),
    params(("key" = String, Path), InstallParams),
    responses(
        (status = 201, description = "Installed", body = Installation, headers(("ETag" = String), ("Location" = String))),
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
        .write(move |conn| {
            let order = catalog::install_order(entry);
            svc::install(conn, &principal, &scope, &order, publish, now)
        })
        .await?;
    let location = format!("/api/v1/templates/{}", installed.template.key);
    let etag = installed.template.version;
    let body = Installation {
        version: version_body(
            &installed.template.key,
            installed.version,
            &installed.report,
        )?,
        template: installed.template.into(),
        masters_created: installed.masters_created,
        libraries_created: installed.libraries_created,
        templates_created: installed.templates_created,
    };
    Ok(created(&body, etag, location))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// A version number; default: the published version (else the latest).
    pub version: Option<i32>,
}

/// Exports a template in the catalog format: its definition and the masters its select
/// fields use. `POST /api/v1/templates/import` takes the same document back.
#[utoipa::path(
    tag = "templates", operation_id = "get_template_export", security(("bearer" = [])),
    params(("key" = String, Path), ExportParams),
    responses(
        (status = 200, description = "The template in catalog format", body = catalog::CatalogEntry),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/templates/{key}/export")]
pub async fn export_template(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    params: web::Query<ExportParams>,
) -> Result<web::Json<catalog::CatalogEntry>, ApiError> {
    let scope = principal.require(INSTALLERS)?;
    let (key, version) = (key.into_inner(), params.version);
    let entry = state
        .db
        .read(move |conn| svc::export(conn, &scope, &key, version))
        .await?;
    Ok(web::Json(entry))
}

/// Imports a template exported by this or another Stageflow (the catalog format): creates
/// the masters the tenant lacks, the template, and publishes it when it lints clean and
/// `publish` is not false. A template with the same key is 409.
#[utoipa::path(
    tag = "templates", operation_id = "create_template_import", security(("bearer" = [])),
    params(InstallParams),
    request_body = catalog::CatalogEntry,
    responses(
        (status = 201, description = "Imported", body = Installation, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/templates/import")]
pub async fn import_template(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<InstallParams>,
    body: web::Json<catalog::CatalogEntry>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(INSTALLERS)?;
    let entry = body.into_inner();
    check_entry(&entry)?;
    let (publish, now) = (params.publish.unwrap_or(true), state.clock.now());
    let installed = state
        .db
        .write(move |conn| svc::install(conn, &principal, &scope, &[&entry], publish, now))
        .await?;
    let location = format!("/api/v1/templates/{}", installed.template.key);
    let etag = installed.template.version;
    let body = Installation {
        version: version_body(
            &installed.template.key,
            installed.version,
            &installed.report,
        )?,
        template: installed.template.into(),
        masters_created: installed.masters_created,
        libraries_created: installed.libraries_created,
        templates_created: installed.templates_created,
    };
    Ok(created(&body, etag, location))
}

/// An imported document is client input: keys, codes and labels are checked like any other.
fn check_entry(entry: &catalog::CatalogEntry) -> Result<(), ApiError> {
    use crate::api::error::FieldError;
    use crate::domain::master::{ItemCode, MasterKey};
    let mut errors = Vec::new();
    if !crate::domain::template::is_key(&entry.key) {
        errors.push(FieldError::new("key", "pattern", "is not a template key"));
    }
    for (m, master) in entry.masters.iter().enumerate() {
        if MasterKey::parse(&master.key).is_err() {
            errors.push(FieldError::new(
                format!("masters.{m}.key"),
                "pattern",
                "is not a master key",
            ));
        }
        if let Err((lang, message)) = master.name.check() {
            errors.push(FieldError::new(
                format!("masters.{m}.name.{lang}"),
                "length",
                message,
            ));
        }
        if master.items.len() > crate::domain::master::MAX_ITEMS {
            errors.push(FieldError::new(
                format!("masters.{m}.items"),
                "too_many",
                "too many items",
            ));
        }
        for (i, item) in master.items.iter().enumerate() {
            let bad_parent = item
                .parent
                .as_deref()
                .is_some_and(|p| ItemCode::parse(p).is_err());
            if ItemCode::parse(&item.code).is_err() || bad_parent {
                errors.push(FieldError::new(
                    format!("masters.{m}.items.{i}.code"),
                    "pattern",
                    "is not an item code",
                ));
            }
            if let Err((lang, message)) = item.label.check() {
                errors.push(FieldError::new(
                    format!("masters.{m}.items.{i}.label.{lang}"),
                    "length",
                    message,
                ));
            }
        }
        if let Err(e) = crate::domain::master::check_hierarchy(
            master
                .items
                .iter()
                .map(|i| (i.code.as_str(), i.parent.as_deref())),
        ) {
            errors.push(FieldError::new(
                format!("masters.{m}.items"),
                "hierarchy",
                e.to_string(),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}
