//! Library definitions: list, create, read, change, delete.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::common::{Page, created, if_match, ok_with_etag};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::master::Labels;
use crate::service::libraries::{self as svc, Library, LibraryCaller};

/// A library: its definition (fields, title field, layout, review interval, access).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"key": "knowledge_base", "id": "019ac0d2-4a00-7000-8000-0000000000b1",
    "name": {"ja": "ナレッジベース", "en": "Knowledge base"}, "version": 1,
    "definition": {"name": {"ja": "ナレッジベース", "en": "Knowledge base"},
        "fields": [{"key": "title", "type": "text", "required": true, "label": {"ja": "件名", "en": "Title"}},
                   {"key": "body", "type": "long_text", "label": {"ja": "本文", "en": "Body"}}],
        "title_field": "title", "review_interval_days": 180,
        "access": {"read": ["agent", "requester"], "write": ["agent"], "partner_organizations": []}},
    "created_at": "2026-11-26T09:00:00Z", "updated_at": "2026-11-26T09:00:00Z"}))]
pub struct LibraryBody {
    pub key: String,
    pub id: uuid::Uuid,
    pub name: Labels,
    /// The definition as written; requesters and partners see it without internal fields
    /// and without `access`.
    #[schema(value_type = Object)]
    pub definition: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl LibraryBody {
    fn of(library: &Library, caller: &LibraryCaller) -> Self {
        Self {
            key: library.row.key.clone(),
            id: library.row.id.0,
            name: Labels {
                ja: library.def.name.ja.clone(),
                en: library.def.name.en.clone(),
            },
            definition: library.visible_definition(&caller.reader()),
            version: library.row.version,
            created_at: library.row.created_at.0,
            updated_at: library.row.updated_at.0,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "faq", "definition": {
    "name": {"ja": "FAQ", "en": "FAQ"},
    "fields": [{"key": "question", "type": "text", "required": true, "label": {"ja": "質問", "en": "Question"}},
               {"key": "answer", "type": "long_text", "required": true, "label": {"ja": "回答", "en": "Answer"}}],
    "title_field": "question", "review_interval_days": 180,
    "access": {"read": ["agent", "requester"], "write": ["agent"]}}}))]
pub struct CreateLibrary {
    /// Lowercase letters, digits and underscores, starting with a letter (at most 63); input
    /// is taken in its canonical form (NFKC, lowercase).
    pub key: String,
    /// `name`, `description`, `fields` (exactly as in templates), `title_field` (a text
    /// field), `layout.sections`, `review_interval_days` (1–3650; omitted: never stale),
    /// `access` (`read`: agent, requester; `write`: agent; `partner_organizations`: ids).
    #[schema(value_type = Object)]
    pub definition: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLibrary {
    /// The whole new definition.
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// The libraries the caller may read, by key.
#[utoipa::path(
    tag = "libraries", operation_id = "list_libraries", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every library the caller may read, in one page (`next_cursor` is always null)", body = Page<LibraryBody>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
    )
)]
#[get("/libraries")]
pub async fn list_libraries(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<Page<LibraryBody>>, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let (libraries, caller) = state
        .db
        .read(move |conn| Ok::<_, ApiError>((svc::list(conn, &caller)?, caller)))
        .await?;
    Ok(web::Json(Page {
        items: libraries
            .iter()
            .map(|l| LibraryBody::of(l, &caller))
            .collect(),
        next_cursor: None,
    }))
}

/// Creates a library (tenant admins and process managers). The definition is linted like a
/// template's fields: every problem is one 422 entry located by JSON pointer under
/// `definition`.
#[utoipa::path(
    tag = "libraries", operation_id = "create_library", security(("bearer" = [])),
    request_body = CreateLibrary,
    responses(
        (status = 201, description = "Created", body = LibraryBody, headers(("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/libraries")]
pub async fn create_library(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateLibrary>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let body = body.into_inner();
    let now = state.clock.now();
    let (library, caller) = state
        .db
        .write(move |conn| {
            let key = crate::domain::credentials::canonical_name(&body.key);
            let l = svc::create(conn, &caller, &key, &body.definition, now)?;
            Ok::<_, ApiError>((l, caller))
        })
        .await?;
    let location = format!("/api/v1/libraries/{}", library.row.key);
    Ok(created(
        &LibraryBody::of(&library, &caller),
        library.row.version,
        location,
    ))
}

/// One library, with its ETag.
#[utoipa::path(
    tag = "libraries", operation_id = "get_library", security(("bearer" = [])),
    params(("key" = String, Path)),
    responses(
        (status = 200, description = "The library", body = LibraryBody, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/libraries/{key}")]
pub async fn get_library(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let key = key.into_inner();
    let (library, caller) = state
        .db
        .read(move |conn| Ok::<_, ApiError>((svc::readable(conn, &caller, &key)?, caller)))
        .await?;
    Ok(ok_with_etag(
        &LibraryBody::of(&library, &caller),
        library.row.version,
    ))
}

/// Replaces a library's definition. A field records hold values for can be neither removed
/// nor retyped (409 `/problems/library-field-in-use`); a new review interval moves every
/// record's due date.
#[utoipa::path(
    tag = "libraries", operation_id = "update_library", security(("bearer" = [])),
    params(("key" = String, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateLibrary,
    responses(
        (status = 200, description = "Updated", body = LibraryBody, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/libraries/{key}")]
pub async fn update_library(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<UpdateLibrary>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let expected = if_match(&req)?;
    let (key, body) = (key.into_inner(), body.into_inner());
    let now = state.clock.now();
    let (library, caller) = state
        .db
        .write(move |conn| {
            let l = svc::update(conn, &caller, &key, &body.definition, expected, now)?;
            Ok::<_, ApiError>((l, caller))
        })
        .await?;
    Ok(ok_with_etag(
        &LibraryBody::of(&library, &caller),
        library.row.version,
    ))
}

/// Deletes a library that has no live record and that no template references (409
/// `/problems/library-in-use` otherwise).
#[utoipa::path(
    tag = "libraries", operation_id = "delete_library", security(("bearer" = [])),
    params(("key" = String, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being deleted")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 409, response = crate::api::problems::Conflict),
        (status = 412, response = crate::api::problems::PreconditionFailed),
    )
)]
#[delete("/libraries/{key}")]
pub async fn delete_library(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let expected = if_match(&req)?;
    let key = key.into_inner();
    let now = state.clock.now();
    state
        .db
        .write(move |conn| svc::delete(conn, &caller, &key, expected, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
