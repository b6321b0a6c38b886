//! Masters: a tenant's code lists with ordered, bilingual, optionally hierarchical items.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::common::{Page, PageParams, created, double_option, if_match, ok_with_etag};
use crate::api::error::{ApiError, FieldError};
use crate::api::exports::{self, ExportParams, Pages, optional_cell};
use crate::api::state::AppState;
use crate::auth::{Principal, TenantScope};
use crate::db::masters::{ItemChanges, ItemRow, MasterChanges, MasterRow};
use crate::domain::identity::Role;
use crate::domain::ids::MasterId;
use crate::domain::master::{ItemCode, Labels, MAX_ITEMS, MasterKey};
use crate::domain::tabular::text_cell;
use crate::service::masters::{self as svc, ItemInput, MasterInput};

/// Everyone in the tenant reads masters (forms need the labels); these roles change them.
const READERS: &[Role] = &Role::ALL;
const EDITORS: &[Role] = &[Role::TenantAdmin, Role::ProcessManager];

#[derive(Debug, Serialize, ToSchema)]
pub struct MasterItem {
    /// The value stored in tickets.
    pub code: String,
    pub label: Labels,
    /// Display order (ascending; ties by code).
    pub order: i32,
    /// Inactive items stay valid in existing values but cannot be chosen anew.
    pub active: bool,
    /// Code of the parent item, for hierarchical lists.
    pub parent: Option<String>,
    pub version: i64,
}

impl From<ItemRow> for MasterItem {
    fn from(row: ItemRow) -> Self {
        Self {
            code: row.code,
            label: Labels {
                ja: row.label_ja,
                en: row.label_en,
            },
            order: row.sort_order,
            active: row.active,
            parent: row.parent_code,
            version: row.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MasterSummary {
    pub id: MasterId,
    pub key: String,
    pub name: Labels,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<MasterRow> for MasterSummary {
    fn from(row: MasterRow) -> Self {
        Self {
            id: row.id,
            key: row.key,
            name: Labels {
                ja: row.name_ja,
                en: row.name_en,
            },
            description: row.description,
            version: row.version,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-4a00-7000-8000-000000000010", "key": "impact",
    "name": {"ja": "影響度", "en": "Impact"}, "description": "", "version": 1,
    "created_at": "2026-04-01T09:00:00Z", "updated_at": "2026-04-01T09:00:00Z",
    "items": [{"code": "high", "label": {"ja": "高", "en": "High"}, "order": 10, "active": true, "parent": null, "version": 1}]}))]
pub struct Master {
    #[serde(flatten)]
    pub master: MasterSummary,
    /// All items, active and inactive, in display order.
    pub items: Vec<MasterItem>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItem {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
    pub label: Labels,
    /// Display order; default: after the last item.
    pub order: Option<i32>,
    /// Default true.
    pub active: Option<bool>,
    pub parent: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "impact", "name": {"ja": "影響度", "en": "Impact"},
    "items": [{"code": "high", "label": {"ja": "高", "en": "High"}},
              {"code": "low", "label": {"ja": "低", "en": "Low"}}]}))]
pub struct CreateMaster {
    /// Lowercase letters, digits and underscores, starting with a letter; input is taken in
    /// its canonical form (NFKC, lowercase).
    #[validate(length(min = 1, max = 63))]
    #[schema(min_length = 1, max_length = 63)]
    pub key: String,
    pub name: Labels,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// At most 5,000.
    #[validate(nested)]
    #[serde(default)]
    pub items: Vec<CreateItem>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMaster {
    pub name: Option<Labels>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"active": false}))]
pub struct UpdateItem {
    pub label: Option<Labels>,
    pub order: Option<i32>,
    pub active: Option<bool>,
    /// `null` makes the item a top-level item.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent: Option<Option<String>>,
}

fn check_labels(labels: &Labels, field: &str) -> Result<(), ApiError> {
    labels.check().map_err(|(lang, message)| {
        ApiError::validation(&format!("{field}.{lang}"), "length", message)
    })
}

fn parse_item(item: CreateItem, field: &str, errors: &mut Vec<FieldError>) -> Option<ItemInput> {
    let code = ItemCode::parse(&item.code)
        .map_err(|m| errors.push(FieldError::new(format!("{field}.code"), "pattern", m)))
        .ok();
    let parent = match &item.parent {
        Some(parent) => match ItemCode::parse(parent) {
            Ok(code) => Some(code),
            Err(m) => {
                errors.push(FieldError::new(format!("{field}.parent"), "pattern", m));
                None
            }
        },
        None => None,
    };
    if let Err((lang, m)) = item.label.check() {
        errors.push(FieldError::new(
            format!("{field}.label.{lang}"),
            "length",
            m,
        ));
    }
    Some(ItemInput {
        code: code?,
        label: item.label,
        order: item.order,
        active: item.active.unwrap_or(true),
        parent,
    })
}

fn parse_master(body: CreateMaster) -> Result<MasterInput, ApiError> {
    if body.items.len() > MAX_ITEMS {
        return Err(ApiError::validation(
            "items",
            "too_many",
            format!("at most {MAX_ITEMS} items"),
        ));
    }
    let mut errors = Vec::new();
    let key = MasterKey::parse(&crate::domain::credentials::canonical_name(&body.key))
        .map_err(|m| errors.push(FieldError::new("key", "pattern", m)))
        .ok();
    if let Err((lang, m)) = body.name.check() {
        errors.push(FieldError::new(format!("name.{lang}"), "length", m));
    }
    let items: Vec<Option<ItemInput>> = body
        .items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_item(item, &format!("items.{i}"), &mut errors))
        .collect();
    match key {
        Some(key) if errors.is_empty() => Ok(MasterInput {
            key,
            name: body.name,
            description: body.description.unwrap_or_default(),
            items: items.into_iter().flatten().collect(),
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

fn master_body(master: MasterRow, items: Vec<ItemRow>) -> Master {
    Master {
        master: master.into(),
        items: items.into_iter().map(MasterItem::from).collect(),
    }
}

/// Lists the tenant's masters (without items) in creation order.
#[utoipa::path(
    tag = "masters", operation_id = "list_masters", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of masters", body = Page<MasterSummary>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/masters")]
pub async fn list_masters(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<MasterSummary>>, ApiError> {
    let scope = principal.require(READERS)?;
    let request = page.parse()?;
    request
        .load(
            &state.db,
            move |conn, after, limit| svc::list_masters(conn, &scope, after.map(MasterId), limit),
            |r| r.id.0,
            MasterSummary::from,
        )
        .await
}

/// Creates a master with its items.
#[utoipa::path(
    tag = "masters", operation_id = "create_master", security(("bearer" = [])),
    request_body = CreateMaster,
    responses(
        (status = 201, description = "Created", body = Master, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/masters")]
pub async fn create_master(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateMaster>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    body.validate()?;
    let input = parse_master(body.into_inner())?;
    let now = state.clock.now();
    let (master, items) = state
        .db
        .write(move |conn| svc::create_master(conn, &principal, &scope, &input, now))
        .await?;
    let location = format!("/api/v1/masters/{}", master.key);
    let version = master.version;
    Ok(created(&master_body(master, items), version, location))
}

/// One master with all its items, and its ETag (which changes when any item changes).
#[utoipa::path(
    tag = "masters", operation_id = "get_master", security(("bearer" = [])),
    params(("key" = String, Path, description = "The master's key")),
    responses(
        (status = 200, description = "The master", body = Master, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/masters/{key}")]
pub async fn get_master(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(READERS)?;
    let key = key.into_inner();
    let (master, items) = state
        .db
        .read(move |conn| svc::get_with_items(conn, &scope, &key))
        .await?;
    let version = master.version;
    Ok(ok_with_etag(&master_body(master, items), version))
}

/// Renames a master or changes its description.
#[utoipa::path(
    tag = "masters", operation_id = "update_master", security(("bearer" = [])),
    params(("key" = String, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateMaster,
    responses(
        (status = 200, description = "Updated", body = Master, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/masters/{key}")]
pub async fn update_master(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<UpdateMaster>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    body.validate()?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    if let Some(name) = &body.name {
        check_labels(name, "name")?;
    }
    let changes = MasterChanges {
        name_ja: body.name.as_ref().map(|n| n.ja.clone()),
        name_en: body.name.map(|n| n.en),
        description: body.description,
    };
    let (key, now) = (key.into_inner(), state.clock.now());
    let (master, items) = state
        .db
        .write(move |conn| {
            svc::update_master(conn, &principal, &scope, &key, expected, changes, now)
        })
        .await?;
    let version = master.version;
    Ok(ok_with_etag(&master_body(master, items), version))
}

/// Deletes a master and its items — refused (409 `/problems/master-in-use`) while a template
/// uses it; deactivate items instead.
#[utoipa::path(
    tag = "masters", operation_id = "delete_master", security(("bearer" = [])),
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
#[delete("/masters/{key}")]
pub async fn delete_master(
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
        .write(move |conn| svc::delete_master(conn, &principal, &scope, &key, expected, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemListParams {
    /// Only active items (what a form offers).
    pub active: Option<bool>,
}

/// A master's items in display order. Not paged: a master holds at most 5,000 items, so
/// `next_cursor` is always null.
#[utoipa::path(
    tag = "masters", operation_id = "list_master_items", security(("bearer" = [])),
    params(("key" = String, Path), ItemListParams),
    responses(
        (status = 200, description = "All items of the master in one page (`next_cursor` is always null; a master holds at most 5,000)", body = Page<MasterItem>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/masters/{key}/items")]
pub async fn list_master_items(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    params: web::Query<ItemListParams>,
) -> Result<web::Json<Page<MasterItem>>, ApiError> {
    let scope = principal.require(READERS)?;
    let (key, active_only) = (key.into_inner(), params.active.unwrap_or(false));
    let items = state
        .db
        .read(move |conn| svc::list_items(conn, &scope, &key, active_only))
        .await?;
    Ok(web::Json(Page {
        items: items.into_iter().map(MasterItem::from).collect(),
        next_cursor: None,
    }))
}

/// A master's items for an export: one read (a master holds at most 5,000 items).
struct ItemPages {
    state: web::Data<AppState>,
    scope: TenantScope,
    key: String,
    active_only: bool,
    done: bool,
}

impl Pages for ItemPages {
    type Item = MasterItem;

    async fn next_page(&mut self) -> Result<Vec<MasterItem>, ApiError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(Vec::new());
        }
        let (scope, key, active_only) = (self.scope, self.key.clone(), self.active_only);
        let items = self
            .state
            .db
            .read(move |conn| svc::list_items(conn, &scope, &key, active_only))
            .await?;
        Ok(items.into_iter().map(MasterItem::from).collect())
    }

    fn header(&self) -> Vec<String> {
        let columns = ["code", "label_ja", "label_en", "order", "active", "parent"];
        columns.iter().map(|c| (*c).to_owned()).collect()
    }

    fn cells(&self, item: &MasterItem) -> Vec<String> {
        vec![
            text_cell(item.code.clone()),
            text_cell(item.label.ja.clone()),
            text_cell(item.label.en.clone()),
            item.order.to_string(),
            item.active.to_string(),
            optional_cell(item.parent.clone(), text_cell),
        ]
    }
}

/// Exports a master's items as CSV (UTF-8 or CP932) or JSON Lines.
///
/// Everyone who may read the master; its items in display order (`active=true`: only
/// active ones). CSV columns: `code`, `label_ja`, `label_en`, `order`, `active` (`true`/`false`), `parent`
/// (the parent item's code, or empty). Text cells starting with `=`, `+`, `-`, `@`, tab or
/// carriage return get a leading `'`. JSON Lines: one `MasterItem` per line, exactly as the
/// item list returns it. `encoding=cp932` refuses a label CP932 cannot hold with 422 naming
/// each (row, column).
#[utoipa::path(
    tag = "masters", operation_id = "export_master_items", security(("bearer" = [])),
    params(("key" = String, Path), ExportParams, ItemListParams),
    responses(
        (status = 200, description = "The items: CSV (a header row, then one row per item; `charset=utf-8` or `charset=Shift_JIS` for cp932) or JSON Lines (one `MasterItem` object per line)",
         content(
            (String = "text/csv", example = "code,label_ja,label_en,order,active,parent\nhigh,高,High,10,true,\nlow,低,Low,20,true,\n"),
            (String = "application/x-ndjson", example = "{\"code\":\"high\",\"label\":{\"ja\":\"高\",\"en\":\"High\"},\"order\":10,\"active\":true,\"parent\":null,\"version\":1}\n")
         ),
         headers(("Content-Disposition" = String, description = "`attachment` with the file name `<key>-items.csv` or `<key>-items.jsonl`"))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::exports::ExportUnprocessable),
    )
)]
#[get("/masters/{key}/items/export")]
pub async fn export_master_items(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    params: web::Query<ExportParams>,
    filter: web::Query<ItemListParams>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(READERS)?;
    let shape = params.shape()?;
    let key = key.into_inner();
    let name = format!("{key}-items");
    let pages = ItemPages {
        state: state.clone(),
        scope,
        key,
        active_only: filter.active.unwrap_or(false),
        done: false,
    };
    exports::respond(shape, &name, pages).await
}

/// Adds an item to a master.
#[utoipa::path(
    tag = "masters", operation_id = "create_master_item", security(("bearer" = [])),
    params(("key" = String, Path)),
    request_body = CreateItem,
    responses(
        (status = 201, description = "Added", body = MasterItem, headers(("ETag" = String), ("Location" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/masters/{key}/items")]
pub async fn create_master_item(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    body: web::Json<CreateItem>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    body.validate()?;
    let mut errors = Vec::new();
    let item = parse_item(body.into_inner(), "body", &mut errors);
    let item = match item {
        Some(item) if errors.is_empty() => item,
        _ => {
            for error in &mut errors {
                error.field = error.field.trim_start_matches("body.").to_owned();
            }
            return Err(ApiError::Validation(errors));
        }
    };
    let (key, now) = (key.into_inner(), state.clock.now());
    let location = format!("/api/v1/masters/{key}/items/{}", item.code.as_str());
    let row = state
        .db
        .write(move |conn| svc::add_item(conn, &principal, &scope, &key, &item, now))
        .await?;
    let version = row.version;
    Ok(created(&MasterItem::from(row), version, location))
}

/// Edits an item: label, order, active, parent. Deactivating keeps existing values valid.
#[utoipa::path(
    tag = "masters", operation_id = "update_master_item", security(("bearer" = [])),
    params(("key" = String, Path), ("code" = String, Path),
        ("If-Match" = Option<String>, Header, description = "ETag of the item version being changed")),
    request_body = UpdateItem,
    responses(
        (status = 200, description = "Updated", body = MasterItem, headers(("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 412, response = super::problems::PreconditionFailed),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[patch("/masters/{key}/items/{code}")]
pub async fn update_master_item(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateItem>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(EDITORS)?;
    let expected = if_match(&req)?;
    let body = body.into_inner();
    if let Some(label) = &body.label {
        check_labels(label, "label")?;
    }
    let parent = match body.parent {
        Some(Some(parent)) => Some(Some(
            ItemCode::parse(&parent)
                .map_err(|m| ApiError::validation("parent", "pattern", m))?
                .as_str()
                .to_owned(),
        )),
        Some(None) => Some(None),
        None => None,
    };
    let changes = ItemChanges {
        label_ja: body.label.as_ref().map(|l| l.ja.clone()),
        label_en: body.label.map(|l| l.en),
        sort_order: body.order,
        active: body.active,
        parent_code: parent,
    };
    let ((key, code), now) = (path.into_inner(), state.clock.now());
    let row = state
        .db
        .write(move |conn| {
            svc::update_item(
                conn, &principal, &scope, &key, &code, expected, changes, now,
            )
        })
        .await?;
    let version = row.version;
    Ok(ok_with_etag(&MasterItem::from(row), version))
}
