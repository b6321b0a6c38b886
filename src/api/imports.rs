//! Bulk import (docs/import-export.md): `POST /imports` takes a CSV or JSON Lines file (a
//! raw body, a multipart form, or text inside a JSON request) or JSON rows, maps its columns
//! and applies each row through the target's use case; `?dry_run=true` checks every row and
//! writes nothing. Larger files run as a job that `GET /imports/{id}` follows.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::imports::{ImportRow, ImportRowOutcome};
use crate::domain::ids::ImportId;
use crate::domain::import::{ImportMode, ImportTarget, SourceFormat, SourceRow};
use crate::domain::tabular::{self, TextEncoding};
use crate::service::idempotency::{self, Replayable};
use crate::service::imports::{self as svc, ColumnMap, ImportSpec, RunContext};

/// Files with more data rows than this run as a job (a real run; a dry run is always answered
/// at once).
pub const INLINE_ROWS: usize = 2_000;

/// How one column is read: the name it fills, or the full form.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum MappingEntry {
    /// The name the column fills (`field.<key>`, a field key or label, or a target column
    /// such as `key`, `state`, `username`, `code`); `null`: ignore the column.
    Name(Option<String>),
    Full(MappingRule),
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingRule {
    /// The name the column fills; null or absent: ignore the column.
    pub to: Option<String>,
    /// Cell text → the value to use instead, applied first (`{"特大": "xl"}`).
    #[serde(default)]
    #[schema(value_type = Object, additional_properties = true)]
    pub translate: BTreeMap<String, Value>,
    /// A chrono format for date cells, e.g. `%d/%m/%Y`.
    pub date_format: Option<String>,
}

/// An import: what to write, how to read the file, and the file or rows themselves.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"target": "master_items", "master": "impact", "mode": "upsert",
    "format": "csv", "encoding": "utf-8",
    "mapping": {"コード": "code", "名称": "label_ja", "Name": "label_en"},
    "content": "コード,名称,Name\nxl,特大,Extra large\n"}))]
pub struct ImportRequest {
    pub target: ImportTarget,
    /// The template whose tickets are imported (target `tickets`).
    pub template: Option<String>,
    /// The library whose records are imported (target `library_records`).
    pub library: Option<String>,
    /// The master whose items are imported (target `master_items`).
    pub master: Option<String>,
    /// `create` (default), `upsert` or `update`.
    pub mode: Option<ImportMode>,
    /// The column (or the name it fills) that matches existing rows in `upsert` and `update`:
    /// tickets `key` (default) or `id`; records `id` (default) or any field such as the title
    /// field; users `username` (default) or `id`; items `code`.
    pub key: Option<String>,
    /// Column → how it is read. Columns not named here are matched by name: a target column,
    /// `field.<key>`, a field key, or a field's Japanese or English label; others are ignored
    /// (listed in `ignored_columns`).
    #[serde(default)]
    pub mapping: BTreeMap<String, MappingEntry>,
    /// Name → value for rows whose cell is empty or missing.
    #[serde(default)]
    #[schema(value_type = Object, additional_properties = true)]
    pub defaults: Map<String, Value>,
    /// The layout of `content` or of the uploaded file: `csv` (default), `jsonl` (one object
    /// per line) or `json` (one array of objects).
    pub format: Option<SourceFormat>,
    /// The encoding of the file; absent: UTF-8 (a BOM is recognised), else CP932 when the
    /// bytes are valid CP932.
    pub encoding: Option<TextEncoding>,
    /// The file as text (JSON requests only).
    pub content: Option<String>,
    /// Rows as JSON objects (JSON requests only): keys are column names; a `fields` object's
    /// entries are `field.<key>` columns.
    #[schema(value_type = Option<Vec<Object>>)]
    pub rows: Option<Vec<Value>>,
}

/// The import form, for the document: the options as a JSON part, then the file.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the multipart form; parts are read by hand"
)]
pub struct ImportUpload {
    /// An `ImportRequest` as JSON, without `content` and `rows`. Send it before `file`.
    options: ImportRequest,
    /// The CSV or JSON Lines file (its encoding from `options.encoding`, or detected).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Check every row exactly as a real run would, and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// For a raw `text/csv` or `application/x-ndjson` body (no JSON options): the target.
    pub target: Option<ImportTarget>,
    /// Raw body, target `tickets`: the template.
    pub template: Option<String>,
    /// Raw body, target `library_records`: the library.
    pub library: Option<String>,
    /// Raw body, target `master_items`: the master.
    pub master: Option<String>,
    /// Raw body: `create` (default), `upsert` or `update`.
    pub mode: Option<ImportMode>,
    /// Raw body: the column that matches existing rows (see `ImportRequest.key`).
    pub key: Option<String>,
    /// Raw body: the file's encoding when the content type has no `charset` (absent: UTF-8,
    /// or CP932 when the bytes are not UTF-8).
    pub encoding: Option<TextEncoding>,
}

crate::domain::closed_set::closed_set! {
    /// Where an import stands.
    pub enum ImportStatus {
        /// A dry run: nothing was written, and nothing is kept.
        DryRun = "dry_run",
        Queued = "queued",
        Running = "running",
        Done = "done",
        /// Stopped before the end (the file could not be read any more, or the importing
        /// user was deactivated); the rows before stay imported.
        Failed = "failed",
    }
}

crate::domain::closed_set::closed_set! {
    /// What happened to a row.
    pub enum RowOutcome {
        Created = "created",
        Updated = "updated",
        Unchanged = "unchanged",
        Failed = "failed",
        /// Dry run: the row would be applied (`action` says how).
        Ok = "ok",
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportCounts {
    pub total: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
}

/// One located problem of a row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RowProblem {
    /// The file's column (null: the row as a whole, or a default).
    pub column: Option<String>,
    /// The path the API itself reports (`fields.impact`, `username`, …).
    pub field: String,
    pub code: String,
    pub message: String,
}

/// The outcome of one data row.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"row": 17, "line": 18, "outcome": "failed", "action": null, "id": null,
    "key": null, "errors": [{"column": "影響度", "field": "fields.impact",
    "code": "unknown_item", "message": "row 17, column 影響度: unknown item \"特大\""}]}))]
pub struct ImportRowResult {
    /// The data row's number (1 is the first row after the header).
    pub row: i64,
    /// The line of the file it starts on.
    pub line: i64,
    pub outcome: RowOutcome,
    /// Dry run: what a real run would do (`created`, `updated` or `unchanged`).
    pub action: Option<RowOutcome>,
    /// The ticket, record or user id, or the item code (real runs).
    pub id: Option<String>,
    /// The ticket key, record title, username or item code.
    pub key: Option<String>,
    pub errors: Vec<RowProblem>,
}

/// A column of the file and the name it fills.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MappedColumn {
    pub column: String,
    pub to: String,
}

/// An import and its outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Import {
    /// Null for a dry run (nothing is kept).
    pub id: Option<ImportId>,
    pub status: ImportStatus,
    pub target: ImportTarget,
    /// The template, library or master.
    pub target_key: Option<String>,
    pub mode: ImportMode,
    pub format: SourceFormat,
    pub encoding: TextEncoding,
    pub counts: ImportCounts,
    /// Rows read from the file.
    pub total_rows: i64,
    /// Rows applied so far.
    pub rows_done: i64,
    /// Rows per second so far (null before the first batch).
    pub rows_per_second: Option<f64>,
    /// Which column fills which name (answers to `POST` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<MappedColumn>>,
    /// Columns nothing reads (answers to `POST` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_columns: Option<Vec<String>>,
    /// Every row (answers to `POST` that ran at once); for a stored import, page through
    /// `results`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<ImportRowResult>>,
    /// The first failed rows so far (up to 100; `GET` of a stored import).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ImportRowResult>>,
    /// Why a stored import stopped.
    pub error: Option<String>,
    /// Where every row's outcome is (also as CSV with `?format=csv`).
    pub results: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn outcome_of(text: &str) -> RowOutcome {
    RowOutcome::parse(text).unwrap_or(RowOutcome::Failed)
}

fn row_result(r: &svc::RowResult, dry_run: bool) -> ImportRowResult {
    let failed = r.outcome == svc::FAILED;
    let located = |e: &svc::RowError| RowProblem {
        column: e.column.clone(),
        field: e.field.clone(),
        code: e.code.clone(),
        message: match &e.column {
            Some(column) => format!("row {}, column {column}: {}", r.row, e.message),
            None => format!("row {}: {}", r.row, e.message),
        },
    };
    ImportRowResult {
        row: r.row,
        line: r.line,
        outcome: if dry_run && !failed {
            RowOutcome::Ok
        } else {
            outcome_of(r.outcome)
        },
        action: (dry_run && !failed).then(|| outcome_of(r.outcome)),
        id: if dry_run && r.outcome == svc::CREATED {
            None
        } else {
            r.id.clone()
        },
        key: if dry_run && r.outcome == svc::CREATED {
            None
        } else {
            r.key.clone()
        },
        errors: r.errors.iter().map(located).collect(),
    }
}

fn stored_row(r: ImportRowOutcome) -> ImportRowResult {
    let errors: Vec<RowProblem> = serde_json::from_value::<Vec<svc::RowError>>(r.errors.0)
        .unwrap_or_default()
        .into_iter()
        .map(|e| RowProblem {
            message: match &e.column {
                Some(column) => format!("row {}, column {column}: {}", r.row_number, e.message),
                None => format!("row {}: {}", r.row_number, e.message),
            },
            column: e.column,
            field: e.field,
            code: e.code,
        })
        .collect();
    ImportRowResult {
        row: r.row_number,
        line: r.line,
        outcome: outcome_of(&r.outcome),
        action: None,
        id: r.subject_id,
        key: r.subject_key,
        errors,
    }
}

fn stored_import(row: &ImportRow) -> Import {
    let done = row.next_row;
    let rate = match (row.started_at, row.finished_at.unwrap_or(row.updated_at)) {
        (Some(start), end) if done > 0 => {
            let seconds = (end.0 - start.0).num_milliseconds() as f64 / 1000.0;
            Some(if seconds > 0.0 {
                (done as f64 / seconds * 10.0).round() / 10.0
            } else {
                done as f64
            })
        }
        _ => None,
    };
    Import {
        id: Some(row.id),
        status: ImportStatus::parse(&row.status).unwrap_or(ImportStatus::Failed),
        target: ImportTarget::parse(&row.target).unwrap_or(ImportTarget::Tickets),
        target_key: row.target_key.clone(),
        mode: ImportMode::parse(&row.mode).unwrap_or(ImportMode::Create),
        format: SourceFormat::parse(&row.format).unwrap_or(SourceFormat::Csv),
        encoding: TextEncoding::parse(&row.encoding).unwrap_or(TextEncoding::Utf8),
        counts: ImportCounts {
            total: row.total_rows,
            created: row.created_count,
            updated: row.updated_count,
            unchanged: row.unchanged_count,
            failed: row.failed_count,
        },
        total_rows: row.total_rows,
        rows_done: done,
        rows_per_second: rate,
        columns: None,
        ignored_columns: None,
        rows: None,
        errors: None,
        error: row.error.clone(),
        results: Some(format!("/api/v1/imports/{}/rows", row.id)),
        created_at: Some(row.created_at.0),
        started_at: row.started_at.map(|t| t.0),
        finished_at: row.finished_at.map(|t| t.0),
    }
}

/// What the request carried.
struct Received {
    spec: ImportSpec,
    bytes: Option<Vec<u8>>,
    rows: Option<Vec<Value>>,
}

fn spec_of(request: &ImportRequest, format: SourceFormat) -> Result<ImportSpec, ApiError> {
    let named = [
        ("template", &request.template, ImportTarget::Tickets),
        ("library", &request.library, ImportTarget::LibraryRecords),
        ("master", &request.master, ImportTarget::MasterItems),
    ];
    let mut target_key = None;
    for (name, value, target) in named {
        match (value, request.target == target) {
            (Some(v), true) => target_key = Some(v.clone()),
            (None, true) => {
                return Err(ApiError::validation(
                    name,
                    "required",
                    format!("an import of {} names its {name}", target.as_str()),
                ));
            }
            (Some(_), false) => {
                return Err(ApiError::validation(
                    name,
                    "not_allowed",
                    format!("only an import of {} names a {name}", target.as_str()),
                ));
            }
            (None, false) => {}
        }
    }
    let mapping = request
        .mapping
        .iter()
        .map(|(column, entry)| {
            let map = match entry {
                MappingEntry::Name(to) => ColumnMap {
                    to: to.clone(),
                    ..ColumnMap::default()
                },
                MappingEntry::Full(rule) => ColumnMap {
                    to: rule.to.clone(),
                    translate: rule.translate.clone(),
                    date_format: rule.date_format.clone(),
                },
            };
            (column.trim().to_owned(), map)
        })
        .collect();
    Ok(ImportSpec {
        target: request.target,
        target_key,
        mode: request.mode.unwrap_or(ImportMode::Create),
        key: request.key.clone(),
        mapping,
        defaults: request.defaults.clone(),
        format: request.format.unwrap_or(format),
        encoding: request.encoding,
        acting_user: None,
    })
}

/// Reads at most `limit` bytes of a stream (413 beyond).
async fn read_capped<S, E>(mut stream: S, limit: usize) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::Malformed(format!("The upload broke off: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn parse_request(bytes: &[u8]) -> Result<ImportRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::validation(
            if path == "." { "body" } else { &path },
            "invalid",
            e.inner().to_string(),
        )
    })
}

async fn receive(
    req: &HttpRequest,
    query: &ImportQuery,
    payload: web::Payload,
    caps: svc::ImportCaps,
) -> Result<Received, ApiError> {
    let mime = actix_web::HttpMessage::mime_type(req).ok().flatten();
    let Some(mime) = mime else {
        return Err(ApiError::UnsupportedMediaType(
            "Send application/json, multipart/form-data, text/csv or application/x-ndjson."
                .to_owned(),
        ));
    };
    let essence = mime.essence_str().to_owned();
    match essence.as_str() {
        "application/json" => {
            let body = read_capped(payload, caps.bytes).await?;
            let request = parse_request(&body)?;
            let spec = spec_of(&request, SourceFormat::Csv)?;
            if request.content.is_some() && spec.encoding == Some(TextEncoding::Cp932) {
                return Err(ApiError::validation(
                    "encoding",
                    "invalid",
                    "`content` is JSON text (UTF-8); send a CP932 file as the `file` part of a \
                     form or as a text/csv body",
                ));
            }
            match (request.content, request.rows) {
                (Some(content), None) => Ok(Received {
                    spec,
                    bytes: Some(content.into_bytes()),
                    rows: None,
                }),
                (None, Some(rows)) => Ok(Received {
                    spec: ImportSpec {
                        format: SourceFormat::Jsonl,
                        ..spec
                    },
                    bytes: None,
                    rows: Some(rows),
                }),
                _ => Err(ApiError::validation(
                    "body",
                    "one_of",
                    "give the file as `content` or the rows as `rows` (one of the two)",
                )),
            }
        }
        "multipart/form-data" => {
            let mut form = actix_multipart::Multipart::new(req.headers(), payload);
            let (mut options, mut file) = (None, None);
            while let Some(part) = form.next().await {
                let part =
                    part.map_err(|e| ApiError::Malformed(format!("The form cannot be read: {e}")))?;
                match part.name().unwrap_or("") {
                    "options" if options.is_none() => {
                        options = Some(parse_request(&read_capped(part, caps.bytes).await?)?);
                    }
                    "file" if file.is_none() => file = Some(read_capped(part, caps.bytes).await?),
                    other => {
                        return Err(ApiError::validation(
                            other,
                            "unknown_part",
                            "the form has the parts `options` (JSON) and `file`",
                        ));
                    }
                }
            }
            let options = options.ok_or_else(|| {
                ApiError::validation(
                    "options",
                    "required",
                    "send the options as a JSON part named `options`",
                )
            })?;
            let file = file.ok_or_else(|| {
                ApiError::validation("file", "required", "send the file as a part named `file`")
            })?;
            if options.content.is_some() || options.rows.is_some() {
                return Err(ApiError::validation(
                    "options",
                    "not_allowed",
                    "with a form, the file is the `file` part (no `content` or `rows`)",
                ));
            }
            Ok(Received {
                spec: spec_of(&options, SourceFormat::Csv)?,
                bytes: Some(file),
                rows: None,
            })
        }
        "text/csv" | "application/x-ndjson" | "application/jsonl" | "application/json-lines" => {
            let format = if essence == "text/csv" {
                SourceFormat::Csv
            } else {
                SourceFormat::Jsonl
            };
            let charset = mime.get_param("charset").map(|c| c.as_str().to_lowercase());
            let declared = match charset.as_deref() {
                None => query.encoding,
                Some("utf-8" | "utf8") => Some(query.encoding.unwrap_or(TextEncoding::Utf8)),
                Some("shift_jis" | "shift-jis" | "sjis" | "cp932" | "windows-31j" | "ms932") => {
                    Some(TextEncoding::Cp932)
                }
                Some(other) => {
                    return Err(ApiError::UnsupportedMediaType(format!(
                        "charset {other} is not read; send UTF-8 or Shift_JIS (CP932)"
                    )));
                }
            };
            let target = query.target.ok_or_else(|| {
                ApiError::validation("target", "required", "name the target in the query")
            })?;
            let request = ImportRequest {
                target,
                template: query.template.clone(),
                library: query.library.clone(),
                master: query.master.clone(),
                mode: query.mode,
                key: query.key.clone(),
                mapping: BTreeMap::new(),
                defaults: Map::new(),
                format: Some(format),
                encoding: declared,
                content: None,
                rows: None,
            };
            Ok(Received {
                spec: spec_of(&request, format)?,
                bytes: Some(read_capped(payload, caps.bytes).await?),
                rows: None,
            })
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "{other} is not an import; send application/json, multipart/form-data, text/csv or \
             application/x-ndjson"
        ))),
    }
}

fn file_error(code: &str, message: String) -> ApiError {
    ApiError::validation("file", code, message)
}

/// The rows of what was received, and the source text a stored import keeps.
fn rows_of(
    received: &mut Received,
    caps: svc::ImportCaps,
) -> Result<(Vec<SourceRow>, String), ApiError> {
    if let Some(rows) = received.rows.take() {
        if rows.len() > caps.rows {
            return Err(file_error(
                "too_many_rows",
                format!(
                    "at most {} rows per import (the plan's max_import_rows)",
                    caps.rows
                ),
            ));
        }
        let source = rows
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let numbered = rows
            .into_iter()
            .enumerate()
            .map(|(i, v)| (u64::try_from(i).unwrap_or(u64::MAX) + 1, v))
            .collect();
        let parsed = crate::domain::import::read_objects(numbered)
            .map_err(|e| file_error("malformed", e.to_string()))?;
        return Ok((parsed, source));
    }
    let bytes = received.bytes.take().unwrap_or_default();
    let (text, encoding) =
        tabular::decode(&bytes, received.spec.encoding).map_err(|e| match e {
            tabular::DecodeError::Malformed { encoding, offset } => file_error(
                "encoding",
                format!(
                    "the file is not valid {} (first bad byte at offset {offset}); declare its \
                 encoding (`utf-8` or `cp932`)",
                    encoding.as_str()
                ),
            ),
        })?;
    received.spec.encoding = Some(encoding);
    let parsed = svc::parse_source(&received.spec, &text, caps.rows).map_err(|e| {
        use crate::domain::import::SourceError as E;
        let code = match e {
            E::Empty => "empty",
            E::Ragged { .. } => "ragged",
            E::BadHeader { .. } => "header",
            E::Syntax { .. } | E::NotObject { .. } => "malformed",
            E::TooManyRows { .. } => "too_many_rows",
        };
        file_error(code, e.to_string())
    })?;
    Ok((parsed, text))
}

/// Imports rows into tickets, library records, users or master items.
///
/// The request is one of: `application/json` (an `ImportRequest` with the file as `content`
/// or the rows as `rows`); `multipart/form-data` (a JSON part `options`, an `ImportRequest`
/// without `content`/`rows`, and the file as part `file`); or the file itself as the body,
/// `Content-Type: text/csv` (`; charset=shift_jis` for CP932) or `application/x-ndjson`,
/// with the options in the query (`target`, `template`/`library`/`master`, `mode`, `key`,
/// `encoding`) and the columns matched by name. The raw forms are not listed as request
/// content types so that generated clients, which cannot send them, stay valid.
///
/// A malformed file (bad encoding, ragged rows, a bad header, more rows than the plan's
/// `max_import_rows`, default 100,000) is 422, a file over the plan's `max_import_bytes`
/// (default 32 MiB) is 413, and nothing is written. Each row is applied through the same use case as
/// its API (fields, rights and audit alike) in its own savepoint: a failing row is reported
/// with its located errors and the others go on. Cells are never evaluated: `=cmd` is text,
/// and a leading `'` before a formula character (as exports write it) is dropped.
///
/// With `?dry_run=true`: 200, every row checked (`ok` and the `action`, or `failed`), nothing
/// written. Up to 2,000 rows: 201, applied now, every row's outcome in `rows`. More: 202, a
/// job applies the rows in batches (resumable after a crash); follow `GET /imports/{id}`.
/// `Idempotency-Key` makes a retry replay the first answer instead of importing again.
#[utoipa::path(
    tag = "imports", operation_id = "create_import", security(("bearer" = [])),
    params(ImportQuery, ("Idempotency-Key" = Option<String>, Header, description = "A repeat with the same key and body replays the first answer")),
    request_body(content(
        (ImportRequest = "application/json"),
        (ImportUpload = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Dry run: every row checked, nothing written", body = Import),
        (status = 201, description = "Imported now", body = Import,
         headers(("Location" = String), ("Idempotent-Replayed" = String))),
        (status = 202, description = "Queued as a job", body = Import,
         headers(("Location" = String), ("Idempotent-Replayed" = String))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 413, response = crate::api::problems::PayloadTooLarge),
        (status = 415, response = crate::api::problems::UnsupportedMediaType),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[post("/imports")]
pub async fn create_import(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(&crate::domain::identity::Role::ALL)?;
    let caps = state
        .db
        .read(move |conn| svc::caps(conn, &scope).map_err(ApiError::from))
        .await?;
    let mut received = receive(&req, &query, payload, caps).await?;
    svc::check_caller(&principal, &received.spec)?;
    // Decoding and reading up to 100,000 rows is CPU work: off the async threads.
    let (received, read) = web::block(move || {
        let read = rows_of(&mut received, caps);
        (received, read)
    })
    .await
    .map_err(|_| ApiError::Internal("import reading cancelled".to_owned()))?;
    let (rows, source) = read?;
    let dry_run = query.dry_run;
    let key = super::tickets::idempotency_key(&req)?;
    let fingerprint = idempotency::fingerprint(&(&received.spec, dry_run, &source));
    let now = state.clock.now();
    let retention = state.config.idempotency_retention;
    let st = state.clone();
    let mut spec = received.spec;
    let response = state
        .db
        .write(move |conn| {
            let scope = principal.audit_scope();
            spec.acting_user = svc::acting_user(conn, &principal)?;
            let columns = svc::columns_of(&rows);
            let plan = svc::plan_columns(conn, &st.definitions, &scope, &spec, &columns)?;
            let cx = RunContext {
                defs: &st.definitions,
                principal: &principal,
                spec: &spec,
                now,
                import: None,
            };
            if dry_run {
                let summary = svc::run_inline(conn, &cx, &plan, &rows, true)?;
                let body = answer(&spec, &plan, None, &summary, true);
                return Ok::<_, ApiError>(Replayable {
                    status: 200,
                    location: None,
                    etag: None,
                    body: serde_json::to_string(&body).unwrap_or_default(),
                    replayed: false,
                });
            }
            idempotency::run(
                conn,
                &scope,
                &principal.actor(),
                key.as_deref(),
                &fingerprint,
                (now, retention),
                |conn| {
                    let new = svc::NewImport {
                        spec: &spec,
                        source,
                        total_rows: i64::try_from(rows.len()).unwrap_or(i64::MAX),
                        created_by: principal
                            .actor()
                            .id
                            .unwrap_or(crate::domain::ids::EntityId::UNKNOWN),
                    };
                    if rows.len() > INLINE_ROWS {
                        let stored = svc::store_import(conn, &scope, &new, None, now)?;
                        let mut body = stored_import(&stored);
                        body.columns = Some(mapped(&plan));
                        body.ignored_columns = Some(plan.ignored.clone());
                        return Ok(Replayable {
                            status: 202,
                            location: Some(format!("/api/v1/imports/{}", stored.id)),
                            etag: None,
                            body: serde_json::to_string(&body).unwrap_or_default(),
                            replayed: false,
                        });
                    }
                    // The id comes first so the rows' history can name it.
                    let id = ImportId::new_at(now);
                    let cx = RunContext {
                        import: Some(id),
                        ..cx
                    };
                    let summary = svc::run_inline(conn, &cx, &plan, &rows, false)?;
                    let stored =
                        svc::store_import_with_id(conn, &scope, id, &new, Some(&summary), now)?;
                    let body = answer(&spec, &plan, Some(&stored), &summary, false);
                    Ok(Replayable {
                        status: 201,
                        location: Some(format!("/api/v1/imports/{}", stored.id)),
                        etag: None,
                        body: serde_json::to_string(&body).unwrap_or_default(),
                        replayed: false,
                    })
                },
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(super::tickets::replay_response(response))
}

fn mapped(plan: &svc::ColumnPlan) -> Vec<MappedColumn> {
    plan.mapped
        .iter()
        .map(|(column, to)| MappedColumn {
            column: column.clone(),
            to: to.clone(),
        })
        .collect()
}

fn answer(
    spec: &ImportSpec,
    plan: &svc::ColumnPlan,
    stored: Option<&ImportRow>,
    summary: &svc::RunSummary,
    dry_run: bool,
) -> Import {
    let c = summary.counts;
    let base = match stored {
        Some(row) => stored_import(row),
        None => Import {
            id: None,
            status: ImportStatus::DryRun,
            target: spec.target,
            target_key: spec.target_key.clone(),
            mode: spec.mode,
            format: spec.format,
            encoding: spec.encoding.unwrap_or(TextEncoding::Utf8),
            counts: ImportCounts {
                total: 0,
                created: 0,
                updated: 0,
                unchanged: 0,
                failed: 0,
            },
            total_rows: c.total,
            rows_done: c.total,
            rows_per_second: None,
            columns: None,
            ignored_columns: None,
            rows: None,
            errors: None,
            error: None,
            results: None,
            created_at: None,
            started_at: None,
            finished_at: None,
        },
    };
    Import {
        counts: ImportCounts {
            total: c.total,
            created: c.created,
            updated: c.updated,
            unchanged: c.unchanged,
            failed: c.failed,
        },
        columns: Some(mapped(plan)),
        ignored_columns: Some(plan.ignored.clone()),
        rows: Some(
            summary
                .rows
                .iter()
                .map(|r| row_result(r, dry_run))
                .collect(),
        ),
        ..base
    }
}

/// The tenant's imports, newest first.
#[utoipa::path(
    tag = "imports", operation_id = "list_imports", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "Newest first", body = Page<Import>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/imports")]
pub async fn list_imports(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Import>>, ApiError> {
    let scope = principal.require(&STAFF)?;
    page.parse()?
        .load(
            &state.db,
            move |conn, after, limit| svc::list(conn, &scope, after.map(ImportId), limit),
            |row| row.id.0,
            |row| stored_import(&row),
        )
        .await
}

/// Who follows imports: the roles that may start one of some target.
const STAFF: [crate::domain::identity::Role; 3] = [
    crate::domain::identity::Role::TenantAdmin,
    crate::domain::identity::Role::ProcessManager,
    crate::domain::identity::Role::Agent,
];

/// A stored import: its status, counts, progress (rows done, rows per second) and the first
/// failed rows so far.
#[utoipa::path(
    tag = "imports", operation_id = "get_import", security(("bearer" = [])),
    params(("import_id" = ImportId, Path)),
    responses(
        (status = 200, description = "The import", body = Import),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
    )
)]
#[get("/imports/{import_id}")]
pub async fn get_import(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ImportId>,
) -> Result<web::Json<Import>, ApiError> {
    let scope = principal.require(&STAFF)?;
    let id = path.into_inner();
    let (row, failed) = state
        .db
        .read(move |conn| {
            let row = svc::get(conn, &scope, id)?;
            let failed = svc::outcomes(conn, &scope, id, None, true, 100)?;
            Ok::<_, ApiError>((row, failed))
        })
        .await?;
    let mut body = stored_import(&row);
    body.errors = Some(failed.into_iter().map(stored_row).collect());
    Ok(web::Json(body))
}

crate::domain::closed_set::closed_set! {
    /// The form of an import's row outcomes.
    pub enum RowsFormat {
        Json = "json",
        /// One line per row: row, line, outcome, id, key, errors (`column: message`, `; `).
        Csv = "csv",
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsParams {
    /// `failed`: only the rows that failed.
    pub outcome: Option<RowOutcome>,
    /// `csv`: every row (no paging) as a CSV download.
    #[param(inline)]
    pub format: Option<RowsFormat>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// A stored import's row outcomes in row order; `?format=csv` downloads them all.
#[utoipa::path(
    tag = "imports", operation_id = "list_import_rows", security(("bearer" = [])),
    params(("import_id" = ImportId, Path), RowsParams),
    responses(
        (status = 200, description = "The rows' outcomes", body = Page<ImportRowResult>,
         content((Page<ImportRowResult> = "application/json"),
                 (String = "text/csv", example = "row,line,outcome,id,key,errors\r\n3,4,failed,,,\"影響度: unknown item \"\"特大\"\"\"\r\n"))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/imports/{import_id}/rows")]
pub async fn list_import_rows(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ImportId>,
    params: web::Query<RowsParams>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(&STAFF)?;
    let id = path.into_inner();
    let failed_only = match params.outcome {
        None => false,
        Some(RowOutcome::Failed) => true,
        Some(_) => {
            return Err(ApiError::validation(
                "outcome",
                "invalid",
                "only `failed` filters the rows",
            ));
        }
    };
    if params.format == Some(RowsFormat::Csv) {
        let rows = state
            .db
            .read(move |conn| {
                Ok::<_, ApiError>(svc::outcomes(
                    conn,
                    &scope,
                    id,
                    None,
                    failed_only,
                    i64::MAX,
                )?)
            })
            .await?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let bad = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
        out.write_record(["row", "line", "outcome", "id", "key", "errors"])
            .map_err(bad)?;
        for r in rows.into_iter().map(stored_row) {
            let errors = r
                .errors
                .iter()
                .map(|e| match &e.column {
                    Some(c) => format!("{c}: {}", e.message),
                    None => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            out.write_record([
                r.row.to_string(),
                r.line.to_string(),
                r.outcome.as_str().to_owned(),
                r.id.unwrap_or_default(),
                tabular::text_cell(r.key.unwrap_or_default()),
                tabular::text_cell(errors),
            ])
            .map_err(bad)?;
        }
        let body = out
            .into_inner()
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{id}.csv\""),
            ))
            .body(body));
    }
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor.clone(),
    }
    .parse_as::<i64>()?;
    let limit = page.limit;
    let rows = state
        .db
        .read(move |conn| {
            Ok::<_, ApiError>(svc::outcomes(
                conn,
                &scope,
                id,
                page.after,
                failed_only,
                limit + 1,
            )?)
        })
        .await?;
    let page = Page::from_rows(rows, limit, |r| r.row_number, stored_row);
    Ok(HttpResponse::Ok().json(page))
}
