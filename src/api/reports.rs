//! The monthly report: a tenant admin reads their tenant's, the platform operator any
//! tenant's. docs/reports.md.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::domain::identity::Role;
use crate::domain::ids::TenantId;
use crate::service::reports::{self as svc, MonthlyReport};

/// The report's path, for the security headers.
pub const PATH: &str = "/api/v1/reports/monthly";
/// The HTML page's own policy (`service::reports::page`), plus no framing: inline styles and
/// nothing else, for every form of the report.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

crate::domain::closed_set::closed_set! {
    /// The form of the monthly report.
    pub enum ReportFormat {
        Json = "json",
        /// Flat rows `month,section,template,key,metric,value` for dashboard tools.
        Csv = "csv",
        /// A self-contained page with the figures and charts drawn as inline SVG.
        Html = "html",
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// `YYYY-MM` in the tenant's time zone: an ended month (the stored report) or the
    /// current one (made on demand, `final: false`).
    #[param(example = "2026-05", pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
    /// `json` (default), `csv` or `html`.
    #[param(inline)]
    pub format: Option<ReportFormat>,
    /// CSV only: start with a UTF-8 byte order mark, so that Excel (Japanese Windows) reads it.
    #[serde(default)]
    pub bom: bool,
    /// The platform operator: the tenant reported on (required). Tenant admins: omit (or
    /// their own tenant).
    pub tenant: Option<TenantId>,
}

/// The monthly usage and inquiry report of a tenant: usage (active IDs, processes, API
/// calls, tickets, storage) and inquiries (opened, closed, backlog by template, state,
/// priority and channel; SLA compliance; top categories; mean and p90 resolution time). An
/// ended month's report is made once and stored: every later read returns the same document.
#[utoipa::path(
    tag = "sla", operation_id = "get_monthly_report", security(("bearer" = [])),
    params(ReportParams),
    responses(
        (status = 200, description = "The report (JSON; CSV with `format=csv`; a self-contained HTML page with charts with `format=html`)",
         content((MonthlyReport = "application/json"),
                 (String = "text/csv", example = "month,section,template,key,metric,value\r\n2026-05,inquiries,,,opened,42\r\n"),
                 (String = "text/html", example = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Monthly report 2026-05 — ACME</title>…"))),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/reports/monthly")]
pub async fn get_monthly_report(
    state: web::Data<AppState>,
    principal: Principal,
    req: actix_web::HttpRequest,
    params: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let scope = match principal.operator() {
        Ok(operator) => {
            let tenant = p.tenant.ok_or_else(|| {
                ApiError::validation("tenant", "required", "the operator names the tenant")
            })?;
            // The report's use case answers 404 for no such tenant.
            crate::auth::for_operator(operator, tenant)
        }
        Err(_) => {
            let scope = principal.require(&[Role::TenantAdmin])?;
            if p.tenant.is_some_and(|t| t != scope.tenant_id()) {
                return Err(ApiError::NotFound);
            }
            scope
        }
    };
    let (now, s, month) = (state.clock.now(), state.clone(), p.month.clone());
    let route = crate::api::extract::read_route(&req);
    let read = state
        .db
        .read_routed(route, move |conn| {
            svc::monthly_without_writing(conn, &s.definitions, &scope, &month, now)
        })
        .await?;
    let document = match read {
        Some(document) => document,
        None => {
            // An ended month seen for the first time: made and stored on the primary.
            let (s, month) = (state.clone(), p.month.clone());
            state
                .db
                .write(move |conn| svc::monthly(conn, &s.definitions, &scope, &month, now))
                .await?
        }
    };
    let format = p.format.unwrap_or(ReportFormat::Json);
    if format == ReportFormat::Json {
        return Ok(HttpResponse::Ok().json(document));
    }
    let report: MonthlyReport = serde_json::from_value(document).map_err(ApiError::internal)?;
    if format == ReportFormat::Html {
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(svc::page::render(&report)?));
    }
    let mut out = Vec::new();
    if p.bom {
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let write = |w: &mut csv::Writer<&mut Vec<u8>>, row: &[String]| {
            w.write_record(row).map_err(ApiError::internal)
        };
        write(
            &mut w,
            &["month", "section", "template", "key", "metric", "value"].map(str::to_owned),
        )?;
        for row in svc::csv_rows(&report) {
            write(&mut w, &row)?;
        }
        w.flush().map_err(ApiError::internal)?;
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"report-{}.csv\"", report.month),
        ))
        .body(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_policy_is_the_page_policy_without_framing() {
        assert_eq!(
            super::CONTENT_SECURITY_POLICY,
            format!(
                "{}; frame-ancestors 'none'",
                crate::service::reports::page::CONTENT_SECURITY_POLICY
            )
        );
    }
}
