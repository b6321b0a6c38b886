//! A version's states, transitions and fields as resources: readable on every version,
//! changeable one at a time on a draft (409 on a published version). Each change is linted
//! and answered with the draft's located lint result and its new ETag.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::common::{created, if_match, ok_with_etag};
use super::templates::{EDITORS, Lint, READERS, parse_number};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::template::items::ItemKind;
use crate::service::template_items::{self as svc, ItemChange};

/// The items of one collection of a version, in definition order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"template": "incident", "version": 2, "items": [
    {"key": "new", "label": {"ja": "新規", "en": "New"}, "initial": true, "stage": "open"}]}))]
pub struct DefinitionItems {
    pub template: String,
    /// The version number.
    pub version: i32,
    /// States carry the key of their stage as `stage`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// An item after a change, with the draft's lint result.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"item": {"key": "waiting", "label": {"ja": "保留", "en": "Waiting"},
    "stage": "open"}, "lint": {"valid": false, "errors": [{"code": "unreachable_state",
    "pointer": "/stages/0/states/2", "message": "no transition leads to state `waiting`"}],
    "warnings": []}}))]
pub struct DefinitionItemChange {
    /// The item as it now is; null after a removal.
    #[schema(value_type = Option<Object>)]
    pub item: Option<Value>,
    /// The whole draft's lint result after the change (drafts may have errors; publishing
    /// refuses them).
    pub lint: Lint,
}

type VersionPath = web::Path<(String, String)>;
type ItemPath = web::Path<(String, String, String)>;

async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    path: VersionPath,
    kind: ItemKind,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(READERS)?;
    let (key, number) = path.into_inner();
    let number = parse_number(&number)?;
    let template = key.clone();
    let (items, etag) = state
        .db
        .read(move |conn| svc::list(conn, &scope, &key, number, kind))
        .await?;
    let body = DefinitionItems {
        template,
        version: number,
        items,
    };
    Ok(ok_with_etag(&body, etag))
}

async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    path: ItemPath,
    kind: ItemKind,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(READERS)?;
    let (key, number, item) = path.into_inner();
    let number = parse_number(&number)?;
    let (item, etag) = state
        .db
        .read(move |conn| svc::get(conn, &scope, &key, number, kind, &item))
        .await?;
    Ok(ok_with_etag(&item, etag))
}

async fn change(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    (key, number): (String, String),
    kind: ItemKind,
    change: ItemChange,
) -> Result<(DefinitionItemChange, i64, String), ApiError> {
    let scope = principal.require(EDITORS)?;
    let expected = if_match(&req)?;
    let number = parse_number(&number)?;
    let now = state.clock.now();
    let base = format!("/api/v1/templates/{key}/versions/{number}");
    let changed = state
        .db
        .write(move |conn| {
            svc::change(
                conn, &principal, &scope, &key, number, expected, kind, change, now,
            )
        })
        .await?;
    let body = DefinitionItemChange {
        item: changed.item,
        lint: (&changed.report).into(),
    };
    Ok((body, changed.version.version, base))
}

async fn add(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: VersionPath,
    body: web::Json<Value>,
    (kind, segment): (ItemKind, &str),
) -> Result<HttpResponse, ApiError> {
    let item = body.into_inner();
    let (body, etag, base) = change(
        state,
        principal,
        req,
        path.into_inner(),
        kind,
        ItemChange::Add(item),
    )
    .await?;
    let item_key = body
        .item
        .as_ref()
        .and_then(|item| item.get("key"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let location = format!("{base}/{segment}/{item_key}");
    Ok(created(&body, etag, location))
}

async fn update(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: ItemPath,
    body: web::Json<Value>,
    kind: ItemKind,
) -> Result<HttpResponse, ApiError> {
    let (key, number, item) = path.into_inner();
    let patch = ItemChange::Patch(item, body.into_inner());
    let (body, etag, _) = change(state, principal, req, (key, number), kind, patch).await?;
    Ok(ok_with_etag(&body, etag))
}

async fn remove(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: ItemPath,
    kind: ItemKind,
) -> Result<HttpResponse, ApiError> {
    let (key, number, item) = path.into_inner();
    let removal = ItemChange::Remove(item);
    let (body, etag, _) = change(state, principal, req, (key, number), kind, removal).await?;
    Ok(ok_with_etag(&body, etag))
}

/// The five operations of one item collection, documented.
macro_rules! item_endpoints {
    (
        kind: $kind:expr, segment: $segment:literal, item: $item_param:literal,
        collection_path: $collection:literal, item_path: $item_path:literal,
        list: ($list:ident, $list_id:literal, $list_doc:literal),
        create: ($create:ident, $create_id:literal, $create_doc:literal),
        get: ($get:ident, $get_id:literal, $get_doc:literal),
        update: ($update:ident, $update_id:literal, $update_doc:literal),
        delete: ($delete:ident, $delete_id:literal, $delete_doc:literal),
    ) => {
        #[doc = $list_doc]
        #[utoipa::path(
            tag = "templates", operation_id = $list_id, security(("bearer" = [])),
            params(("key" = String, Path, description = "Template key"),
                   ("n" = i32, Path, description = "Version number")),
            responses(
                (status = 200, description = "The items", body = DefinitionItems, headers(("ETag" = String, description = "The version's ETag"))),
                (status = 401, response = super::problems::Unauthorized),
                (status = 403, response = super::problems::Forbidden),
                (status = 404, response = super::problems::NotFound),
            )
        )]
        #[get($collection)]
        pub async fn $list(
            state: web::Data<AppState>,
            principal: Principal,
            path: VersionPath,
        ) -> Result<HttpResponse, ApiError> {
            list(state, principal, path, $kind).await
        }

        #[doc = $create_doc]
        #[utoipa::path(
            tag = "templates", operation_id = $create_id, security(("bearer" = [])),
            params(("key" = String, Path, description = "Template key"),
                   ("n" = i32, Path, description = "Version number of a draft"),
                   ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
            request_body(content = Object, description = "The item, as in a definition, with a `key`"),
            responses(
                (status = 201, description = "Added; see `lint`", body = DefinitionItemChange, headers(("ETag" = String), ("Location" = String))),
                (status = 401, response = super::problems::Unauthorized),
                (status = 403, response = super::problems::Forbidden),
                (status = 404, response = super::problems::NotFound),
                (status = 409, response = super::problems::Conflict),
                (status = 412, response = super::problems::PreconditionFailed),
                (status = 422, response = super::problems::Unprocessable),
            )
        )]
        #[post($collection)]
        pub async fn $create(
            state: web::Data<AppState>,
            principal: Principal,
            req: HttpRequest,
            path: VersionPath,
            body: web::Json<Value>,
        ) -> Result<HttpResponse, ApiError> {
            add(state, principal, req, path, body, ($kind, $segment)).await
        }

        #[doc = $get_doc]
        #[utoipa::path(
            tag = "templates", operation_id = $get_id, security(("bearer" = [])),
            params(("key" = String, Path, description = "Template key"),
                   ("n" = i32, Path, description = "Version number"),
                   ($item_param = String, Path, description = "Item key")),
            responses(
                (status = 200, description = "The item", body = Object, headers(("ETag" = String, description = "The version's ETag"))),
                (status = 401, response = super::problems::Unauthorized),
                (status = 403, response = super::problems::Forbidden),
                (status = 404, response = super::problems::NotFound),
            )
        )]
        #[get($item_path)]
        pub async fn $get(
            state: web::Data<AppState>,
            principal: Principal,
            path: ItemPath,
        ) -> Result<HttpResponse, ApiError> {
            get_one(state, principal, path, $kind).await
        }

        #[doc = $update_doc]
        #[utoipa::path(
            tag = "templates", operation_id = $update_id, security(("bearer" = [])),
            params(("key" = String, Path, description = "Template key"),
                   ("n" = i32, Path, description = "Version number of a draft"),
                   ($item_param = String, Path, description = "Item key"),
                   ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
            request_body(content = Object, description = "A JSON merge patch (RFC 7396) of the item; null removes a member; the key cannot change"),
            responses(
                (status = 200, description = "Changed; see `lint`", body = DefinitionItemChange, headers(("ETag" = String))),
                (status = 401, response = super::problems::Unauthorized),
                (status = 403, response = super::problems::Forbidden),
                (status = 404, response = super::problems::NotFound),
                (status = 409, response = super::problems::Conflict),
                (status = 412, response = super::problems::PreconditionFailed),
                (status = 422, response = super::problems::Unprocessable),
            )
        )]
        #[patch($item_path)]
        pub async fn $update(
            state: web::Data<AppState>,
            principal: Principal,
            req: HttpRequest,
            path: ItemPath,
            body: web::Json<Value>,
        ) -> Result<HttpResponse, ApiError> {
            update(state, principal, req, path, body, $kind).await
        }

        #[doc = $delete_doc]
        #[utoipa::path(
            tag = "templates", operation_id = $delete_id, security(("bearer" = [])),
            params(("key" = String, Path, description = "Template key"),
                   ("n" = i32, Path, description = "Version number of a draft"),
                   ($item_param = String, Path, description = "Item key"),
                   ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
            responses(
                (status = 200, description = "Removed (`item` is null); see `lint`", body = DefinitionItemChange, headers(("ETag" = String))),
                (status = 401, response = super::problems::Unauthorized),
                (status = 403, response = super::problems::Forbidden),
                (status = 404, response = super::problems::NotFound),
                (status = 409, response = super::problems::Conflict),
                (status = 412, response = super::problems::PreconditionFailed),
            )
        )]
        #[delete($item_path)]
        pub async fn $delete(
            state: web::Data<AppState>,
            principal: Principal,
            req: HttpRequest,
            path: ItemPath,
        ) -> Result<HttpResponse, ApiError> {
            remove(state, principal, req, path, $kind).await
        }
    };
}

item_endpoints! {
    kind: ItemKind::State, segment: "states", item: "state_key",
    collection_path: "/templates/{key}/versions/{n}/states",
    item_path: "/templates/{key}/versions/{n}/states/{state_key}",
    list: (list_version_states, "list_version_states",
        "Lists a version's states, each with the key of its stage as `stage`."),
    create: (create_version_state, "create_version_state",
        "Adds a state to a draft.\n\nThe body is the state as in a definition plus `stage`, the key of the stage it joins (appended at its end)."),
    get: (get_version_state, "get_version_state", "Reads one state of a version."),
    update: (update_version_state, "update_version_state",
        "Changes a state of a draft.\n\nA JSON merge patch; `stage` moves the state to the end of another stage."),
    delete: (delete_version_state, "delete_version_state",
        "Removes a state from a draft.\n\nA state that transitions, field rules or layouts still name is 409 `/problems/definition-item-in-use` listing each place (as JSON pointers)."),
}

item_endpoints! {
    kind: ItemKind::Transition, segment: "transitions", item: "transition_key",
    collection_path: "/templates/{key}/versions/{n}/transitions",
    item_path: "/templates/{key}/versions/{n}/transitions/{transition_key}",
    list: (list_version_transitions, "list_version_transitions",
        "Lists a version's transitions."),
    create: (create_version_transition, "create_version_transition",
        "Adds a transition to a draft.\n\nThe body is the transition as in a definition; it is appended to the list."),
    get: (get_version_transition, "get_version_transition", "Reads one transition of a version."),
    update: (update_version_transition, "update_version_transition",
        "Changes a transition of a draft.\n\nA JSON merge patch of the transition."),
    delete: (delete_version_transition, "delete_version_transition",
        "Removes a transition from a draft."),
}

item_endpoints! {
    kind: ItemKind::Field, segment: "fields", item: "field_key",
    collection_path: "/templates/{key}/versions/{n}/fields",
    item_path: "/templates/{key}/versions/{n}/fields/{field_key}",
    list: (list_version_fields, "list_version_fields", "Lists a version's fields."),
    create: (create_version_field, "create_version_field",
        "Adds a field to a draft.\n\nThe body is the field as in a definition; it is appended to the list."),
    get: (get_version_field, "get_version_field", "Reads one field of a version."),
    update: (update_version_field, "update_version_field",
        "Changes a field of a draft.\n\nA JSON merge patch of the field."),
    delete: (delete_version_field, "delete_version_field",
        "Removes a field from a draft.\n\nA field that transitions, guards, rules, actions or layouts still name is 409 `/problems/definition-item-in-use` listing each place (as JSON pointers)."),
}
