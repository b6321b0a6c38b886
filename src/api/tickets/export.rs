//! The ticket export: CSV (UTF-8, UTF-8 with a BOM, or CP932) or JSON Lines, through the
//! export mechanism of `api::exports`.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde_json::Value;

use super::list::{TicketQuery, parse_query};
use super::{Ticket, caller};
use crate::api::common::query_pairs;
use crate::api::error::ApiError;
use crate::api::exports::{
    self, EXPORT_PAGE, ExportParams, Pages, csv_cell, optional_cell, time_cell,
};
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::replica::ReadRoute;
use crate::db::tickets::{After, SortKey, TicketFilter};
use crate::domain::ids::RecordId;
use crate::domain::tabular::text_cell;
use crate::service::tickets::{self as svc, TicketCaller};

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

/// The tickets of one export, walked a page at a time in the list's order.
struct TicketPages {
    state: web::Data<AppState>,
    caller: TicketCaller,
    filter: TicketFilter,
    /// The field columns (with `template=`); empty: the fields are one JSON column.
    columns: Vec<String>,
    after: Option<After>,
    route: ReadRoute,
    done: bool,
}

impl Pages for TicketPages {
    type Item = Ticket;

    async fn next_page(&mut self) -> Result<Vec<Ticket>, ApiError> {
        if self.done {
            return Ok(Vec::new());
        }
        let (s, c, f, after) = (
            self.state.clone(),
            self.caller.clone(),
            self.filter.clone(),
            self.after.clone(),
        );
        let rows = self
            .state
            .db
            .read_routed(self.route, move |conn| {
                svc::page(conn, &s.definitions, &c, &f, after.as_ref(), EXPORT_PAGE)
            })
            .await?;
        self.done = (rows.len() as i64) < EXPORT_PAGE;
        if let Some(last) = rows.last() {
            self.after = Some(match self.filter.sort {
                SortKey::Created => After::Created(last.row.id),
                SortKey::Updated => After::Updated(last.row.updated_at, last.row.id),
                SortKey::Key => {
                    After::Key(last.row.key_prefix.clone(), last.row.number, last.row.id)
                }
            });
        }
        Ok(rows.iter().map(|t| Ticket::of(t, &self.caller)).collect())
    }

    fn header(&self) -> Vec<String> {
        let mut header: Vec<String> = EXPORT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        if self.columns.is_empty() {
            header.push("fields".to_owned());
        } else {
            header.extend(self.columns.iter().map(|c| format!("field.{c}")));
        }
        header
    }

    fn cells(&self, shown: &Ticket) -> Vec<String> {
        let id = |v: Option<uuid::Uuid>| optional_cell(v, |u| u.to_string());
        let mut record = vec![
            shown.id.to_string(),
            shown.key.clone(),
            shown.template.clone(),
            shown.template_version.to_string(),
            text_cell(shown.title.clone()),
            shown.stage.clone(),
            shown.state.clone(),
            shown.closed.to_string(),
            id(shown.requester.map(|u| u.0)),
            id(shown.assignee.map(|u| u.0)),
            id(shown.group.map(|g| g.0)),
            id(shown.organization.map(|o| o.0)),
            time_cell(shown.created_at),
            time_cell(shown.updated_at),
        ];
        if self.columns.is_empty() {
            // A JSON object starts with `{`: no spreadsheet reads it as a formula.
            record.push(Value::Object(shown.fields.clone()).to_string());
        } else {
            for key in &self.columns {
                record.push(shown.fields.get(key).map(csv_cell).unwrap_or_default());
            }
        }
        record
    }
}

/// Exports the ticket list as CSV (UTF-8 or CP932) or JSON Lines.
///
/// The same filters (including `field.<key>=` and `q`) and order as `GET /tickets`, every
/// matching ticket (`limit` and `cursor` are refused with 422). CSV columns: `id`, `key`, `template`, `template_version`, `title`,
/// `stage`, `state`, `closed`, `requester`, `assignee`, `group`, `organization`,
/// `created_at`, `updated_at`; then, with `template=`, `field.<key>` for each field the
/// caller may see (multi-select items joined by `;`), otherwise one `fields` column holding
/// the fields as JSON. Text cells starting with `=`, `+`, `-`, `@`, tab or carriage return
/// get a leading `'` so that no spreadsheet evaluates them as formulas. JSON Lines: one
/// `Ticket` per line, exactly as the list returns it. UTF-8 is streamed; `encoding=cp932` is
/// written whole first, holds at most 200,000 tickets, and a character CP932 cannot hold
/// (`❤`, `𠮷`, …) refuses the export with 422 naming each (row, column).
#[utoipa::path(
    tag = "tickets", operation_id = "export_tickets", security(("bearer" = [])),
    params(ExportParams, TicketQuery, ("field" = Option<std::collections::HashMap<String, String>>, Query, style = DeepObject, explode, description = "Custom-field filters: `field[<key>]=<value>` (also written `field.<key>=<value>`), up to 8, all must match; a multi-select matches when it holds the value.")),
    responses(
        (status = 200, description = "The tickets: CSV (a header row, then one row per ticket; `charset=utf-8` or `charset=Shift_JIS` for cp932) or JSON Lines (one `Ticket` object per line)",
         content(
            (String = "text/csv", example = "id,key,template,template_version,title,stage,state,closed,requester,assignee,group,organization,created_at,updated_at,field.impact\n019ac0d2-4a00-7000-8000-0000000000a1,SD-1,desk,1,メールサーバ障害,open,new,false,,,,,2026-11-26T09:00:00Z,2026-11-26T09:00:00Z,high\n"),
            (String = "application/x-ndjson", example = "{\"id\":\"019ac0d2-4a00-7000-8000-0000000000a1\",\"key\":\"SD-1\",\"template\":\"desk\",\"template_version\":1,\"title\":\"メールサーバ障害\",\"stage\":\"open\",\"state\":\"new\",\"closed\":false,\"requester\":null,\"assignee\":null,\"group\":null,\"organization\":null,\"fields\":{\"title\":\"メールサーバ障害\",\"impact\":\"high\"},\"version\":1,\"created_at\":\"2026-11-26T09:00:00Z\",\"updated_at\":\"2026-11-26T09:00:00Z\"}\n")
         ),
         headers(("Content-Disposition" = String, description = "`attachment` with the file name `tickets.csv` or `tickets.jsonl`"))),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::exports::ExportUnprocessable),
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
    let shape = params.shape()?;
    let pairs = query_pairs(&req)?;
    let (query, filter) = parse_query(
        &pairs,
        caller.audience,
        state.config.list_probe_threshold,
        state.clock.now(),
    )?;
    exports::refuse_paging(query.limit, query.cursor.as_deref())?;
    // Resolve the template (and its columns) first, so that its errors are still problems.
    let target = svc::ListTarget {
        record: None,
        library_record: query.library_record.map(RecordId),
        template: query.template,
    };
    let (s, c) = (state.clone(), caller.clone());
    let route = crate::api::extract::read_route(&req);
    let plan = state
        .db
        .read_routed(route, move |conn| {
            svc::plan_export(conn, &s.definitions, &c, target.clone(), filter.clone())
        })
        .await?;
    let pages = TicketPages {
        state: state.clone(),
        caller,
        filter: plan.filter,
        columns: plan.columns,
        after: None,
        route,
        done: !plan.matches,
    };
    exports::respond(shape, "tickets", pages).await
}
