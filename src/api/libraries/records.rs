//! Library records: list (with freshness), create, read, edit, delete, review.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::api::common::{
    Page, bad_cursor, decode_cursor, if_match, list_query, ok_with_etag, page_limit, query_pairs,
    search_query,
};
use crate::api::error::ApiError;
use crate::api::exports::{
    self, EXPORT_PAGE, ExportParams, Pages, csv_cell, optional_cell, time_cell,
};
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::libraries::{RecordAfter, RecordRow, RecordSort};
use crate::db::replica::ReadRoute;
use crate::domain::ids::RecordId;
use crate::domain::tabular::text_cell;
use crate::service::idempotency::{self, Replayable};
use crate::service::libraries::{self as svc, Library, LibraryCaller, RecordQuery};

/// Where a record came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordOrigin {
    /// The ticket whose transition created the record.
    pub ticket_id: uuid::Uuid,
}

/// A library record as the caller may see it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "019ac0d2-4a00-7000-8000-0000000000c1", "library": "cmdb",
    "title": "mail-01", "fields": {"name": "mail-01", "status": "in_service"}, "version": 3,
    "reviewed_at": "2026-11-26T09:00:00Z", "review_due_at": "2027-11-26T09:00:00Z",
    "stale": false, "created_at": "2026-06-01T09:00:00Z", "updated_at": "2026-11-26T09:00:00Z"}))]
pub struct Record {
    pub id: RecordId,
    pub library: String,
    /// The value of the library's title field.
    pub title: String,
    /// Field values; internal fields are left out for requesters and partners.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    pub version: i64,
    /// The last review or change (a change counts as a review).
    pub reviewed_at: DateTime<Utc>,
    /// When the record becomes stale (null: the library has no review interval).
    pub review_due_at: Option<DateTime<Utc>>,
    /// Whether the review is due now.
    pub stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<RecordOrigin>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Record {
    fn of(library: &Library, row: &RecordRow, caller: &LibraryCaller, now: DateTime<Utc>) -> Self {
        Self {
            id: row.id,
            library: library.row.key.clone(),
            title: row.title.clone(),
            fields: library.redact(&caller.reader(), row.fields()),
            version: row.version,
            reviewed_at: row.reviewed_at.0,
            review_due_at: row.review_due_at.map(|t| t.0),
            stale: row.review_due_at.is_some_and(|due| due.0 <= now),
            origin: row
                .origin_ticket_id
                .map(|t| RecordOrigin { ticket_id: t.0 }),
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

fn record_response(
    library: &Library,
    row: &RecordRow,
    caller: &LibraryCaller,
    now: DateTime<Utc>,
) -> HttpResponse {
    ok_with_etag(&Record::of(library, row, caller, now), row.version)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"fields": {"name": "mail-01", "ci_type": "server", "status": "in_service"}}))]
pub struct RecordInput {
    /// Field values. On update only the keys present change, and `null` clears a field.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"note": "手順を確認、変更なし"}))]
pub struct ReviewInput {
    /// Why the record is still valid (at most 2,000 characters).
    pub note: Option<String>,
}

/// Query of a record list. Fields are filtered with `field.<key>=<value>` (up to 8, all must
/// match; a multi-select matches when it holds the value).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordListQuery {
    /// Keywords (all must match): English words, and Japanese words of two or more
    /// characters, over the title and text fields (internal ones only for staff); at most
    /// 200 characters.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// `true`: only records whose review is due (past the library's review interval).
    pub stale: Option<bool>,
    /// Only records last changed at or after this instant (RFC 3339).
    pub updated_after: Option<DateTime<Utc>>,
    /// Only records last changed before this instant (RFC 3339).
    pub updated_before: Option<DateTime<Utc>>,
    /// Default `-created` (newest first); with `stale=true` `due` is allowed too and the
    /// default (most overdue first).
    #[param(inline)]
    pub sort: Option<RecordListSort>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

crate::domain::closed_set::closed_set! {
    /// The order of a record list; `-` means descending.
    pub enum RecordListSort {
        Created = "created",
        CreatedDesc = "-created",
        Updated = "updated",
        UpdatedDesc = "-updated",
        /// Stale lists only.
        Due = "due",
        DueDesc = "-due",
    }
}

fn parse_record_query(
    pairs: &[(String, String)],
    probe_threshold: i64,
) -> Result<(RecordListQuery, RecordQuery), ApiError> {
    let (query, fields): (RecordListQuery, _) = list_query(pairs, &exports::EXPORT_PARAMS)?;
    let stale = query.stale.unwrap_or(false);
    // A stale list is read most overdue first unless asked otherwise.
    let default = if stale {
        RecordListSort::Due
    } else {
        RecordListSort::CreatedDesc
    };
    let (sort, descending) = match query.sort.unwrap_or(default) {
        RecordListSort::Created => (RecordSort::Created, false),
        RecordListSort::CreatedDesc => (RecordSort::Created, true),
        RecordListSort::Updated => (RecordSort::Updated, false),
        RecordListSort::UpdatedDesc => (RecordSort::Updated, true),
        RecordListSort::Due if stale => (RecordSort::Due, false),
        RecordListSort::DueDesc if stale => (RecordSort::Due, true),
        RecordListSort::Due | RecordListSort::DueDesc => {
            return Err(ApiError::validation(
                "sort",
                "invalid",
                "`due` orders stale lists only (with stale=true)",
            ));
        }
    };
    let q = search_query(query.q.as_deref())?;
    let filter = RecordQuery {
        stale,
        updated_after: query.updated_after.map(Into::into),
        updated_before: query.updated_before.map(Into::into),
        fields,
        q,
        probe_threshold,
        sort,
        descending,
    };
    Ok((query, filter))
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordCursor {
    /// Sort key kind: c, u, d.
    s: char,
    id: RecordId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
}

fn record_cursor(sort: RecordSort, row: &RecordRow) -> RecordCursor {
    match sort {
        RecordSort::Created => RecordCursor {
            s: 'c',
            id: row.id,
            at: None,
        },
        RecordSort::Updated => RecordCursor {
            s: 'u',
            id: row.id,
            at: Some(row.updated_at.0),
        },
        RecordSort::Due => RecordCursor {
            s: 'd',
            id: row.id,
            at: row.review_due_at.map(|t| t.0),
        },
    }
}

fn decode_record_cursor(raw: &str, sort: RecordSort) -> Result<RecordAfter, ApiError> {
    let c: RecordCursor = decode_cursor(raw)?;
    match (sort, c.s, c.at) {
        (RecordSort::Created, 'c', _) => Ok(RecordAfter::Created(c.id)),
        (RecordSort::Updated, 'u', Some(at)) => Ok(RecordAfter::Updated(at.into(), c.id)),
        (RecordSort::Due, 'd', Some(at)) => Ok(RecordAfter::Due(at.into(), c.id)),
        _ => Err(bad_cursor()),
    }
}

/// A library's live records, filtered and sorted, with stable cursor pagination. Every
/// filter is index-backed: `field.<key>=<value>` (up to 8; numbers and datetimes match
/// whatever their written form), `q` (the same Japanese-aware keyword search as tickets),
/// `stale=true` (records past their review date, most overdue first).
#[utoipa::path(
    tag = "libraries", operation_id = "list_library_records", security(("bearer" = [])),
    params(("key" = String, Path), RecordListQuery, ("field" = Option<std::collections::HashMap<String, String>>, Query, style = DeepObject, explode, description = "Custom-field filters: `field[<key>]=<value>` (also written `field.<key>=<value>`), up to 8, all must match; a multi-select matches when it holds the value.")),
    responses(
        (status = 200, description = "A page of records", body = Page<Record>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/libraries/{key}/records")]
pub async fn list_records(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<web::Json<Page<Record>>, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let (query, filter) =
        parse_record_query(&query_pairs(&req)?, state.config.list_probe_threshold)?;
    let limit = page_limit(query.limit)?;
    let after = match &query.cursor {
        Some(raw) => Some(decode_record_cursor(raw, filter.sort)?),
        None => None,
    };
    let (key, now, sort) = (key.into_inner(), state.clock.now(), filter.sort);
    let route = crate::api::extract::read_route(&req);
    let (library, rows, caller) = state
        .db
        .read_routed(route, move |conn| {
            let (library, rows) =
                svc::list_records(conn, &caller, &key, &filter, after.as_ref(), limit + 1, now)?;
            Ok::<_, ApiError>((library, rows, caller.clone()))
        })
        .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| record_cursor(sort, r),
        |r| Record::of(&library, &r, &caller, now),
    )))
}

/// Where the next page starts after `row`; `None` when the row has no sort key (never in a
/// stale list, where every record has a due date).
fn record_after(sort: RecordSort, row: &RecordRow) -> Option<RecordAfter> {
    match sort {
        RecordSort::Created => Some(RecordAfter::Created(row.id)),
        RecordSort::Updated => Some(RecordAfter::Updated(row.updated_at, row.id)),
        RecordSort::Due => row.review_due_at.map(|due| RecordAfter::Due(due, row.id)),
    }
}

/// The records of one export, walked a page at a time in the list's order.
struct RecordPages {
    state: web::Data<AppState>,
    caller: LibraryCaller,
    key: String,
    filter: RecordQuery,
    after: Option<RecordAfter>,
    route: ReadRoute,
    now: DateTime<Utc>,
    /// `field.<key>` columns: the library's fields the caller may see, in definition order
    /// (set by the first page).
    columns: Vec<String>,
    done: bool,
}

impl Pages for RecordPages {
    type Item = Record;

    async fn next_page(&mut self) -> Result<Vec<Record>, ApiError> {
        if self.done {
            return Ok(Vec::new());
        }
        let (caller, key, filter) = (self.caller.clone(), self.key.clone(), self.filter.clone());
        let (after, now) = (self.after.clone(), self.now);
        let (library, rows) = self
            .state
            .db
            .read_routed(self.route, move |conn| {
                svc::list_records(
                    conn,
                    &caller,
                    &key,
                    &filter,
                    after.as_ref(),
                    EXPORT_PAGE,
                    now,
                )
            })
            .await?;
        let reader = self.caller.reader();
        if self.after.is_none() {
            self.columns = library
                .def
                .fields
                .iter()
                .filter(|f| reader.is_staff() || !f.internal)
                .map(|f| f.key.clone())
                .collect();
        }
        self.after = rows
            .last()
            .and_then(|last| record_after(self.filter.sort, last));
        self.done = (rows.len() as i64) < EXPORT_PAGE || self.after.is_none();
        Ok(rows
            .iter()
            .map(|r| Record::of(&library, r, &self.caller, now))
            .collect())
    }

    fn header(&self) -> Vec<String> {
        let fixed = [
            "id",
            "title",
            "version",
            "reviewed_at",
            "review_due_at",
            "created_at",
            "updated_at",
        ];
        let fields = self.columns.iter().map(|c| format!("field.{c}"));
        fixed
            .iter()
            .map(|c| (*c).to_owned())
            .chain(fields)
            .collect()
    }

    fn cells(&self, record: &Record) -> Vec<String> {
        let fixed = [
            record.id.to_string(),
            text_cell(record.title.clone()),
            record.version.to_string(),
            time_cell(record.reviewed_at),
            optional_cell(record.review_due_at, time_cell),
            time_cell(record.created_at),
            time_cell(record.updated_at),
        ];
        let fields = self
            .columns
            .iter()
            .map(|key| record.fields.get(key).map(csv_cell).unwrap_or_default());
        fixed.into_iter().chain(fields).collect()
    }
}

/// Exports a library's live records as CSV (UTF-8 or CP932) or JSON Lines.
///
/// The same filters (`field.<key>=`, `q`, `stale`, `updated_after`, `updated_before`) and
/// order as `GET /libraries/{key}/records`, every matching record (`limit` and `cursor` are
/// refused with 422). CSV columns: `id`,
/// `title`, `version`, `reviewed_at`, `review_due_at`, `created_at`, `updated_at`, then
/// `field.<key>` for each field of the library the caller may see, in definition order
/// (requesters and partners get no internal field). Text cells starting with `=`, `+`, `-`,
/// `@`, tab or carriage return get a leading `'`. JSON Lines: one `Record` per line, exactly
/// as the list returns it. `encoding=cp932` holds at most 200,000 records, and a character
/// CP932 cannot hold refuses the export with 422 naming each (row, column).
#[utoipa::path(
    tag = "libraries", operation_id = "export_library_records", security(("bearer" = [])),
    params(("key" = String, Path), ExportParams, RecordListQuery, ("field" = Option<std::collections::HashMap<String, String>>, Query, style = DeepObject, explode, description = "Custom-field filters: `field[<key>]=<value>` (also written `field.<key>=<value>`), up to 8, all must match; a multi-select matches when it holds the value.")),
    responses(
        (status = 200, description = "The records: CSV (a header row, then one row per record; `charset=utf-8` or `charset=Shift_JIS` for cp932) or JSON Lines (one `Record` object per line)",
         content(
            (String = "text/csv", example = "id,title,version,reviewed_at,review_due_at,created_at,updated_at,field.name,field.status\n019ac0d2-4a00-7000-8000-0000000000c1,mail-01,3,2026-11-26T09:00:00Z,2027-11-26T09:00:00Z,2026-06-01T09:00:00Z,2026-11-26T09:00:00Z,mail-01,in_service\n"),
            (String = "application/x-ndjson", example = "{\"id\":\"019ac0d2-4a00-7000-8000-0000000000c1\",\"library\":\"cmdb\",\"title\":\"mail-01\",\"fields\":{\"name\":\"mail-01\",\"status\":\"in_service\"},\"version\":3,\"reviewed_at\":\"2026-11-26T09:00:00Z\",\"review_due_at\":\"2027-11-26T09:00:00Z\",\"stale\":false,\"created_at\":\"2026-06-01T09:00:00Z\",\"updated_at\":\"2026-11-26T09:00:00Z\"}\n")
         ),
         headers(("Content-Disposition" = String, description = "`attachment` with the file name `<key>-records.csv` or `<key>-records.jsonl`"))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::exports::ExportUnprocessable),
    )
)]
#[get("/libraries/{key}/records/export")]
pub async fn export_records(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let shape = params.shape()?;
    let (query, filter) =
        parse_record_query(&query_pairs(&req)?, state.config.list_probe_threshold)?;
    exports::refuse_paging(query.limit, query.cursor.as_deref())?;
    let key = key.into_inner();
    let name = format!("{key}-records");
    let pages = RecordPages {
        state: state.clone(),
        caller,
        key,
        filter,
        after: None,
        route: crate::api::extract::read_route(&req),
        now: state.clock.now(),
        columns: Vec::new(),
        done: false,
    };
    exports::respond(shape, &name, pages).await
}

/// Creates a record (callers the library's access lets write). Values are validated
/// exactly like ticket fields: every offending field is one 422 entry `fields.<key>`;
/// `library_ref`, user, group and organization values must exist in the tenant.
///
/// With `Idempotency-Key`, a repeat of the same request (same caller, key, library and body)
/// within 24 hours replays the first response; the same key with a different request is 422.
#[utoipa::path(
    tag = "libraries", operation_id = "create_library_record", security(("bearer" = [])),
    params(("key" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a repeat replays the first response")),
    request_body = RecordInput,
    responses(
        (status = 201, description = "Created", body = Record, headers(("Idempotent-Replayed" = String), ("ETag" = String), ("Location" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/libraries/{key}/records")]
pub async fn create_record(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<RecordInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let idempotency_key = crate::api::tickets::idempotency_key(&req)?;
    let (key, body, now) = (key.into_inner(), body.into_inner(), state.clock.now());
    let fingerprint = idempotency::fingerprint(&(&key, &body.fields));
    let retention = state.config.idempotency_retention;
    let replay = state
        .db
        .write(move |conn| {
            idempotency::run(
                conn,
                &caller.scope,
                &caller.actor,
                idempotency_key.as_deref(),
                &fingerprint,
                (now, retention),
                |conn| {
                    let (library, row) =
                        svc::create_record(conn, &caller, &key, &body.fields, now)?;
                    Ok(Replayable::created(
                        &Record::of(&library, &row, &caller, now),
                        row.version,
                        format!("/api/v1/libraries/{}/records/{}", library.row.key, row.id),
                    ))
                },
            )
        })
        .await?;
    Ok(crate::api::tickets::replay_response(replay))
}

/// One live record, with its ETag.
#[utoipa::path(
    tag = "libraries", operation_id = "get_library_record", security(("bearer" = [])),
    params(("key" = String, Path), ("record_id" = RecordId, Path)),
    responses(
        (status = 200, description = "The record", body = Record, headers(("ETag" = String))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/libraries/{key}/records/{record_id}")]
pub async fn get_record(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, RecordId)>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let ((key, id), now) = (path.into_inner(), state.clock.now());
    let (library, row, caller) = state
        .db
        .read(move |conn| {
            let (l, r) = svc::get_record(conn, &caller, &key, id)?;
            Ok::<_, ApiError>((l, r, caller))
        })
        .await?;
    Ok(record_response(&library, &row, &caller, now))
}

/// Changes a record's fields (only the keys present; `null` clears). Every change is a new
/// version in the history; a change also counts as a review.
#[utoipa::path(
    tag = "libraries", operation_id = "update_library_record", security(("bearer" = [])),
    params(("key" = String, Path), ("record_id" = RecordId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = RecordInput,
    responses(
        (status = 200, description = "Updated", body = Record, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[patch("/libraries/{key}/records/{record_id}")]
pub async fn update_record(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, RecordId)>,
    body: web::Json<RecordInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let expected = if_match(&req)?;
    let ((key, id), body, now) = (path.into_inner(), body.into_inner(), state.clock.now());
    let (library, row, caller) = state
        .db
        .write(move |conn| {
            let (l, r) = svc::update_record(conn, &caller, &key, id, &body.fields, expected, now)?;
            Ok::<_, ApiError>((l, r, caller))
        })
        .await?;
    Ok(record_response(&library, &row, &caller, now))
}

/// Deletes a record softly: it leaves lists, search and new references, and its history
/// keeps every version (a `deleted` one last).
#[utoipa::path(
    tag = "libraries", operation_id = "delete_library_record", security(("bearer" = [])),
    params(("key" = String, Path), ("record_id" = RecordId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being deleted")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
    )
)]
#[delete("/libraries/{key}/records/{record_id}")]
pub async fn delete_record(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, RecordId)>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let expected = if_match(&req)?;
    let ((key, id), now) = (path.into_inner(), state.clock.now());
    state
        .db
        .write(move |conn| svc::delete_record(conn, &caller, &key, id, expected, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Records a review: the record is confirmed as still valid, a `reviewed` version is
/// written, and its review date moves a full interval on.
#[utoipa::path(
    tag = "libraries", operation_id = "create_library_record_review", security(("bearer" = [])),
    params(("key" = String, Path), ("record_id" = RecordId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being reviewed")),
    request_body = ReviewInput,
    responses(
        (status = 200, description = "Reviewed", body = Record, headers(("ETag" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 412, response = crate::api::problems::PreconditionFailed),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/libraries/{key}/records/{record_id}/review")]
pub async fn review_record(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, RecordId)>,
    body: web::Json<ReviewInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = LibraryCaller::of(&principal)?;
    let expected = if_match(&req)?;
    let ((key, id), body, now) = (path.into_inner(), body.into_inner(), state.clock.now());
    let (library, row, caller) = state
        .db
        .write(move |conn| {
            let note = body.note.as_deref();
            let (l, r) = svc::review_record(conn, &caller, &key, id, note, expected, now)?;
            Ok::<_, ApiError>((l, r, caller))
        })
        .await?;
    Ok(record_response(&library, &row, &caller, now))
}
