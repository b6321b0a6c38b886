//! The ticket export as streamed CSV.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::list::{TicketQuery, parse_query};
use super::{Ticket, caller};
use crate::api::common::query_pairs;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tickets::{After, SortKey, TicketFilter};
use crate::domain::ids::RecordId;
use crate::service::tickets::{self as svc, LoadedTicket, TicketCaller};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// The only format, and the default.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// Start with a UTF-8 byte order mark, so that Excel (Japanese Windows) reads UTF-8.
    #[serde(default)]
    pub bom: bool,
}

crate::domain::closed_set::closed_set! {
    /// The file format of an export.
    pub enum ExportFormat {
        Csv = "csv",
    }
}

/// Rows fetched per database round trip while exporting.
const EXPORT_PAGE: i64 = 500;

const EXPORT_COLUMNS: [&str; 14] = [
    "id",
    "key",
    "template",
    "template_version",
    "title",
    "stage",
    "state",
    "closed",
    "requester",
    "assignee",
    "group",
    "organization",
    "created_at",
    "updated_at",
];

/// First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Text as a cell no spreadsheet evaluates: a leading formula character gets an apostrophe,
/// which Excel and LibreOffice show as a text marker rather than part of the value.
fn text_cell(text: String) -> String {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text
    }
}

/// A field value as a cell. Numbers and booleans are written as they are (they cannot carry a
/// formula); text, and the `;`-joined items of a multi-select, are neutralised.
fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => text_cell(s.clone()),
        Value::Array(items) => text_cell(
            items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(";"),
        ),
        other => other.to_string(),
    }
}

fn export_rows(
    tickets: &[LoadedTicket],
    caller: &TicketCaller,
    field_columns: &[String],
) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for t in tickets {
        let shown = Ticket::of(t, caller);
        let id = |v: Option<uuid::Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
        let mut record = vec![
            shown.id.to_string(),
            shown.key,
            shown.template,
            shown.template_version.to_string(),
            text_cell(shown.title),
            shown.stage,
            shown.state,
            shown.closed.to_string(),
            id(shown.requester.map(|u| u.0)),
            id(shown.assignee.map(|u| u.0)),
            id(shown.group.map(|g| g.0)),
            id(shown.organization.map(|o| o.0)),
            shown
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            shown
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ];
        if field_columns.is_empty() {
            // A JSON object starts with `{`: no spreadsheet reads it as a formula.
            record.push(Value::Object(shown.fields).to_string());
        } else {
            for key in field_columns {
                record.push(shown.fields.get(key).map(csv_cell).unwrap_or_default());
            }
        }
        out.write_record(&record)
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    }
    out.into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))
}

/// The ticket list as CSV (UTF-8, optionally with a BOM), streamed.
///
/// The same filters (including `field.<key>=` and `q`) and order as `GET /tickets`, every
/// matching ticket. With `template=`, each field the caller
/// may see is a column (multi-select items joined by `;`); otherwise the fields are one JSON
/// column. Text cells starting with `=`, `+`, `-`, `@`, tab or carriage return get a leading
/// `'` so that no spreadsheet evaluates them as formulas.
#[utoipa::path(
    tag = "tickets", operation_id = "export_tickets", security(("bearer" = [])),
    params(ExportParams, TicketQuery, ("field" = Option<std::collections::HashMap<String, String>>, Query, style = DeepObject, explode, description = "Custom-field filters: `field[<key>]=<value>` (also written `field.<key>=<value>`), up to 8, all must match; a multi-select matches when it holds the value.")),
    responses(
        (status = 200, description = "The tickets as CSV (UTF-8), one row per ticket after a header row",
         content((String = "text/csv", example = "key,title,state\r\nSD-1,Mail server down,new\r\n")),
         headers(("Content-Disposition" = String, description = "`attachment` with a file name"))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/tickets/export")]
pub async fn export_tickets(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&principal)?;
    let ExportFormat::Csv = params.format.unwrap_or(ExportFormat::Csv);
    let pairs = query_pairs(&req)?;
    let (query, filter) = parse_query(
        &pairs,
        caller.audience,
        state.config.list_probe_threshold,
        state.clock.now(),
    )?;
    if query.cursor.is_some() || query.limit.is_some() {
        return Err(ApiError::validation(
            "cursor",
            "invalid",
            "an export has every matching ticket; it takes no cursor or limit",
        ));
    }
    // Resolve the template (and its columns) before streaming, so errors are still problems.
    let target = svc::ListTarget {
        record: None,
        library_record: query.library_record.map(RecordId),
        template: query.template,
    };
    let (s, c) = (state.clone(), caller.clone());
    let route = crate::api::extract::read_route(&req);
    let svc::ExportPlan {
        filter,
        columns,
        matches,
    } = state
        .db
        .read_routed(route, move |conn| {
            svc::plan_export(conn, &s.definitions, &c, target.clone(), filter.clone())
        })
        .await?;
    let mut header_row: Vec<String> = EXPORT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    if columns.is_empty() {
        header_row.push("fields".to_owned());
    } else {
        header_row.extend(columns.iter().map(|c| format!("field.{c}")));
    }
    let mut head = Vec::new();
    if params.bom {
        head.extend_from_slice("\u{feff}".as_bytes());
    }
    {
        let mut w = csv::Writer::from_writer(&mut head);
        w.write_record(&header_row)
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
        w.flush()
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    }
    struct Cursor {
        state: web::Data<AppState>,
        caller: TicketCaller,
        filter: TicketFilter,
        columns: Vec<String>,
        after: Option<After>,
        route: crate::db::replica::ReadRoute,
        done: bool,
    }
    let start = Cursor {
        state: state.clone(),
        caller,
        filter,
        columns,
        after: None,
        route,
        done: !matches,
    };
    let pages = futures_util::stream::unfold(start, |mut cur| async move {
        if cur.done {
            return None;
        }
        let (s, c, f, after) = (
            cur.state.clone(),
            cur.caller.clone(),
            cur.filter.clone(),
            cur.after.clone(),
        );
        let page = cur
            .state
            .db
            .read_routed(cur.route, move |conn| {
                svc::page(conn, &s.definitions, &c, &f, after.as_ref(), EXPORT_PAGE)
            })
            .await;
        match page {
            Err(e) => {
                cur.done = true;
                Some((
                    Err(actix_web::error::ErrorInternalServerError(e.to_string())),
                    cur,
                ))
            }
            Ok(rows) => {
                if (rows.len() as i64) < EXPORT_PAGE {
                    cur.done = true;
                }
                if let Some(last) = rows.last() {
                    cur.after = Some(match cur.filter.sort {
                        SortKey::Created => After::Created(last.row.id),
                        SortKey::Updated => After::Updated(last.row.updated_at, last.row.id),
                        SortKey::Key => {
                            After::Key(last.row.key_prefix.clone(), last.row.number, last.row.id)
                        }
                    });
                } else {
                    cur.done = true;
                }
                match export_rows(&rows, &cur.caller, &cur.columns) {
                    Ok(bytes) => Some((Ok(web::Bytes::from(bytes)), cur)),
                    Err(e) => {
                        cur.done = true;
                        Some((
                            Err(actix_web::error::ErrorInternalServerError(e.to_string())),
                            cur,
                        ))
                    }
                }
            }
        }
    });
    use futures_util::StreamExt;
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        )
        .chain(pages);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"tickets.csv\"",
        ))
        .streaming(body))
}
