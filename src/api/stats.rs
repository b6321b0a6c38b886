//! Statistics of a template's tickets for dashboards (staff). docs/sla.md, "Statistics".

use std::collections::BTreeMap;

use actix_web::{get, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tickets::StatsFilter;
use crate::domain::ids::{GroupId, OrganizationId};
use crate::domain::index;
use crate::domain::sla::Target;
use crate::domain::ticket::STAFF_ROLES;
use crate::service::stats::{self as svc, Spread, StatsQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// First local date counted (the tenant's time zone); default 29 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last local date counted, inclusive; default today. At most 366 days in all.
    pub to: Option<NaiveDate>,
    /// Only tickets assigned to this group.
    pub group: Option<GroupId>,
    /// Only tickets of this organization.
    pub organization: Option<OrganizationId>,
    /// Only tickets whose `priority` field holds this value (a master item code).
    pub priority: Option<String>,
}

/// Tickets in one state now.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateCount {
    pub stage: String,
    pub state: String,
    pub count: usize,
}

/// Durations in one state: how many, the median, the 90th percentile (nearest rank) and the
/// longest, in seconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateDurations {
    pub state: String,
    pub count: usize,
    pub p50_seconds: i64,
    pub p90_seconds: i64,
    pub max_seconds: i64,
}

impl StateDurations {
    fn of((state, s): (String, Spread)) -> Self {
        Self {
            state,
            count: s.count,
            p50_seconds: s.p50_seconds,
            p90_seconds: s.p90_seconds,
            max_seconds: s.max_seconds,
        }
    }
}

/// One day: tickets filed and tickets closed (entered a terminal state).
#[derive(Debug, Serialize, ToSchema)]
pub struct DayCount {
    pub date: NaiveDate,
    pub created: usize,
    pub closed: usize,
}

/// Tickets in each state at the end of a day (or now, for today).
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowDay {
    pub date: NaiveDate,
    #[schema(additional_properties = true, value_type = Object)]
    pub states: BTreeMap<String, usize>,
}

/// SLA clocks of one target that stopped in the range: in time or late.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaCompliance {
    pub target: Target,
    pub met: usize,
    pub breached: usize,
    /// `met / (met + breached)`; null when none stopped.
    pub rate: Option<f64>,
}

/// The statistics of one template's tickets.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"template": "itil_incident", "time_zone": "Asia/Tokyo",
    "from": "2026-05-01", "to": "2026-05-02", "total": 3, "open": 2,
    "by_state": [{"stage": "open", "state": "new", "count": 1}, {"stage": "open", "state": "in_progress", "count": 1},
        {"stage": "done", "state": "closed", "count": 1}],
    "ageing": [{"state": "new", "count": 1, "p50_seconds": 3600, "p90_seconds": 3600, "max_seconds": 3600}],
    "time_in_state": [{"state": "new", "count": 2, "p50_seconds": 1800, "p90_seconds": 7200, "max_seconds": 7200}],
    "daily": [{"date": "2026-05-01", "created": 2, "closed": 0}, {"date": "2026-05-02", "created": 1, "closed": 1}],
    "cumulative_flow": [{"date": "2026-05-01", "states": {"new": 1, "in_progress": 1}},
        {"date": "2026-05-02", "states": {"new": 1, "in_progress": 1, "closed": 1}}],
    "sla": [{"target": "first_response", "met": 2, "breached": 0, "rate": 1.0},
        {"target": "resolution", "met": 0, "breached": 1, "rate": 0.0}]}))]
pub struct TemplateStats {
    pub template: String,
    /// The time zone dates are counted in (the tenant's).
    pub time_zone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Tickets counted (every version of the template, after the filters).
    pub total: usize,
    /// Of those, not in a terminal state.
    pub open: usize,
    /// Where the tickets are now, in stage then state order of their keys.
    pub by_state: Vec<StateCount>,
    /// Open tickets: time so far in their current state.
    pub ageing: Vec<StateDurations>,
    /// Stays that ended within the range, per state.
    pub time_in_state: Vec<StateDurations>,
    /// Per day of the range: created and closed (throughput).
    pub daily: Vec<DayCount>,
    /// Per day of the range: tickets in each state at its end.
    pub cumulative_flow: Vec<FlowDay>,
    /// First-response and resolution compliance of the clocks that stopped in the range.
    pub sla: Vec<SlaCompliance>,
}

/// Statistics of a template's tickets: where they are now, how long they stay in each state
/// (p50/p90), created and closed per day, the cumulative flow, and SLA compliance, over a
/// range of local dates, optionally for one group, organization or priority.
#[utoipa::path(
    tag = "sla", operation_id = "get_template_stats", security(("bearer" = [])),
    params(("key" = String, Path, description = "The template key"), StatsParams),
    responses(
        (status = 200, description = "The statistics", body = TemplateStats),
        (status = 400, response = crate::api::problems::BadRequest),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 404, response = crate::api::problems::NotFound),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/stats/templates/{key}")]
pub async fn get_template_stats(
    state: web::Data<AppState>,
    principal: Principal,
    req: actix_web::HttpRequest,
    key: web::Path<String>,
    params: web::Query<StatsParams>,
) -> Result<web::Json<TemplateStats>, ApiError> {
    let scope = principal.require(&STAFF_ROLES)?;
    let p = params.into_inner();
    let query = StatsQuery {
        template: key.into_inner(),
        from: p.from,
        to: p.to,
        filter: StatsFilter {
            group: p.group,
            organization: p.organization,
            field: p
                .priority
                .map(|v| ("priority".to_owned(), index::filter_candidates(&v))),
        },
    };
    let (now, s) = (state.clock.now(), state.clone());
    let template = query.template.clone();
    let route = crate::api::extract::read_route(&req);
    let stats = state
        .db
        .read_routed(route, move |conn| {
            svc::template_stats(conn, &s.definitions, &scope, &query, now)
        })
        .await?;
    Ok(web::Json(TemplateStats {
        template,
        time_zone: stats.time_zone,
        from: stats.from,
        to: stats.to,
        total: stats.total,
        open: stats.open,
        by_state: stats
            .by_state
            .into_iter()
            .map(|(stage, state, count)| StateCount {
                stage,
                state,
                count,
            })
            .collect(),
        ageing: stats.ageing.into_iter().map(StateDurations::of).collect(),
        time_in_state: stats
            .time_in_state
            .into_iter()
            .map(StateDurations::of)
            .collect(),
        daily: stats
            .days
            .into_iter()
            .map(|d| DayCount {
                date: d.date,
                created: d.created,
                closed: d.closed,
            })
            .collect(),
        cumulative_flow: stats
            .flow
            .into_iter()
            .map(|(date, states)| FlowDay { date, states })
            .collect(),
        sla: stats
            .sla
            .into_iter()
            .map(|c| SlaCompliance {
                rate: c.rate(),
                target: c.target,
                met: c.met,
                breached: c.breached,
            })
            .collect(),
    }))
}
