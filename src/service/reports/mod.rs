//! The monthly report of a tenant (#16 point 4): usage and inquiry figures of one month in
//! the tenant's time zone. Once the month has ended the report is made once (by the
//! `reports.monthly` job, or by the first read) and stored; every later read returns that
//! same document. The current month is made on demand and not stored. docs/reports.md.

pub mod page;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::TenantScope;
use crate::db::types::Json;
use crate::db::{self, DbConnection};
use crate::domain::ids::{TemplateId, TenantId, TicketId};
use crate::domain::sla::Target;
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;

/// The job that stores last month's report of every tenant.
pub const MONTHLY: &str = "reports.monthly";
/// Most categories listed.
pub const TOP_CATEGORIES: usize = 10;

/// Usage of the month (the billing meter's figures; API calls by UTC month).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportUsage {
    /// Active users now (when the report was made).
    pub active_ids: i64,
    /// Templates with a published version.
    pub processes: i64,
    pub api_calls: i64,
    /// Tickets filed in the month.
    pub tickets: i64,
    /// Bytes of stored attachments when the report was made.
    pub stored_bytes: i64,
}

/// Opened, closed and open-at-month-end tickets of one group (template, priority, channel).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Flow {
    /// The template key, priority code or channel (`mail`, `api`).
    pub key: String,
    pub opened: usize,
    pub closed: usize,
    pub backlog: usize,
}

/// Tickets of a template open in one state at the month's end.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BacklogState {
    pub template: String,
    pub state: String,
    pub count: usize,
}

/// A category and the tickets filed in it in the month.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Category {
    pub value: Value,
    pub opened: usize,
}

/// SLA clocks of one target that stopped in the month.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportCompliance {
    pub target: Target,
    pub met: usize,
    pub breached: usize,
    /// `met / (met + breached)`; null when none stopped.
    pub rate: Option<f64>,
}

/// One local day of the month (the cumulative flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportDay {
    /// The local date.
    pub date: NaiveDate,
    /// Tickets filed that day.
    pub opened: usize,
    /// Transitions into a terminal state that day (a ticket closed, reopened and closed
    /// again counts twice).
    pub closed: usize,
    /// Tickets open at the day's end (today: now).
    pub backlog: usize,
}

/// The inquiry figures of the month.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inquiries {
    /// Tickets filed in the month.
    pub opened: usize,
    /// Tickets that entered a terminal state in the month (and stayed closed at its end).
    pub closed: usize,
    /// Tickets open at the month's end.
    pub backlog: usize,
    /// Filing to closing of the tickets closed in the month, in seconds (null: none closed).
    pub resolution_mean_seconds: Option<i64>,
    pub resolution_p90_seconds: Option<i64>,
    pub by_template: Vec<Flow>,
    /// Per priority (the `priority` field's value; `none` without one).
    pub by_priority: Vec<Flow>,
    /// `mail` (filed by a mail channel) or `api`.
    pub by_channel: Vec<Flow>,
    pub backlog_by_state: Vec<BacklogState>,
    /// The most frequent values of the `category` field among tickets filed in the month.
    pub top_categories: Vec<Category>,
    pub sla: Vec<ReportCompliance>,
    /// Each day of the month that has begun. Absent from reports stored before it was added.
    #[serde(default)]
    pub daily: Vec<ReportDay>,
}

/// A tenant's monthly report.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"tenant": {"id": "019ac0d2-4a00-7000-8000-000000000001", "slug": "acme", "name": "ACME"},
    "month": "2026-05", "time_zone": "Asia/Tokyo", "final": true, "generated_at": "2026-06-01T00:00:05Z",
    "usage": {"active_ids": 12, "processes": 3, "api_calls": 5310, "tickets": 42, "stored_bytes": 10485760},
    "inquiries": {"opened": 42, "closed": 38, "backlog": 9, "resolution_mean_seconds": 86400, "resolution_p90_seconds": 259200,
        "by_template": [{"key": "inquiry", "opened": 42, "closed": 38, "backlog": 9}],
        "by_priority": [{"key": "p1", "opened": 5, "closed": 5, "backlog": 0}, {"key": "p2", "opened": 37, "closed": 33, "backlog": 9}],
        "by_channel": [{"key": "api", "opened": 30, "closed": 27, "backlog": 6}, {"key": "mail", "opened": 12, "closed": 11, "backlog": 3}],
        "backlog_by_state": [{"template": "inquiry", "state": "answering", "count": 9}],
        "top_categories": [{"value": "billing", "opened": 20}],
        "sla": [{"target": "first_response", "met": 40, "breached": 2, "rate": 0.952}, {"target": "resolution", "met": 36, "breached": 2, "rate": 0.947}],
        "daily": [{"date": "2026-05-01", "opened": 2, "closed": 1, "backlog": 6}, {"date": "2026-05-02", "opened": 0, "closed": 0, "backlog": 6}]}}))]
pub struct MonthlyReport {
    pub tenant: ReportTenant,
    /// `YYYY-MM` in `time_zone`.
    pub month: String,
    pub time_zone: String,
    /// True once the month has ended: the stored document, never changed.
    #[serde(rename = "final")]
    pub is_final: bool,
    pub generated_at: DateTime<Utc>,
    pub usage: ReportUsage,
    pub inquiries: Inquiries,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportTenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
}

/// The local bounds of a month `YYYY-MM` in a time zone.
fn bounds(tz: Tz, month: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if month.len() != 7 {
        return None;
    }
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let next = first.checked_add_months(Months::new(1))?;
    let at = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    Some((at(first)?, at(next)?))
}

/// The month before the one `now` is in, in a time zone.
pub fn previous_month(tz: Tz, now: DateTime<Utc>) -> String {
    let today = now.with_timezone(&tz).date_naive();
    let first = today.with_day0(0).unwrap_or(today);
    first
        .checked_sub_months(Months::new(1))
        .unwrap_or(first)
        .format("%Y-%m")
        .to_string()
}

use chrono::Datelike;

/// The report of `month`: stored once the month has ended (made and stored now if it is not
/// yet), made afresh for the current month; 422 for a malformed or future month.
pub fn monthly(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    month: &str,
    now: DateTime<Utc>,
) -> Result<Value, ServiceError> {
    if let Some(document) = monthly_without_writing(conn, defs, scope, month, now)? {
        return Ok(document);
    }
    store(conn, defs, scope, month, now)?;
    let (document, _) = db::reports::find(conn, scope, month)?
        .ok_or_else(|| ServiceError::internal("a stored report went missing"))?;
    Ok(document.0)
}

/// The report when it takes no write (so a read replica may answer): the running month's,
/// built now, or an ended month's stored one. `None` for an ended month not stored yet: then
/// [`monthly`] makes and stores it.
pub fn monthly_without_writing(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    month: &str,
    now: DateTime<Utc>,
) -> Result<Option<Value>, ServiceError> {
    let tenant =
        db::platform::find_tenant(conn, scope.tenant_id())?.ok_or(ServiceError::NotFound)?;
    let tz: Tz = tenant.time_zone.parse().unwrap_or(Tz::UTC);
    let (start, end) = bounds(tz, month)
        .ok_or_else(|| ServiceError::validation("month", "format", "a month, YYYY-MM"))?;
    if start > now {
        return Err(ServiceError::validation(
            "month",
            "future",
            "the month has not begun",
        ));
    }
    if end > now {
        let report = build(conn, defs, scope, &tenant, month, (start, end), now, false)?;
        return serde_json::to_value(report)
            .map(Some)
            .map_err(ServiceError::internal);
    }
    Ok(db::reports::find(conn, scope, month)?.map(|(document, _)| document.0))
}

/// Makes and stores the report of an ended month unless it is stored; true when stored now.
pub fn store(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    month: &str,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    if db::reports::find(conn, scope, month)?.is_some() {
        return Ok(false);
    }
    let tenant =
        db::platform::find_tenant(conn, scope.tenant_id())?.ok_or(ServiceError::NotFound)?;
    let tz: Tz = tenant.time_zone.parse().unwrap_or(Tz::UTC);
    let (start, end) = bounds(tz, month)
        .ok_or_else(|| ServiceError::validation("month", "format", "a month, YYYY-MM"))?;
    let report = build(conn, defs, scope, &tenant, month, (start, end), now, true)?;
    let document = serde_json::to_value(report).map_err(ServiceError::internal)?;
    Ok(db::reports::insert(
        conn,
        scope,
        month,
        &Json(document),
        now.into(),
    )?)
}

/// Each active tenant with the month before `now` in its own time zone: the reports the job
/// makes sure are stored, one tenant per transaction ([`store`]), so one tenant's failure
/// does not hold back the others and no transaction spans tenants.
pub fn last_months(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> Result<Vec<(TenantScope, String)>, ServiceError> {
    Ok(db::platform::list_tenants(conn, None, None, i64::MAX)?
        .into_iter()
        .filter(|tenant| tenant.active && tenant.deleted_at.is_none())
        .map(|tenant| {
            let tz: Tz = tenant.time_zone.parse().unwrap_or(Tz::UTC);
            (crate::auth::job_scope(tenant.id), previous_month(tz, now))
        })
        .collect())
}

#[expect(clippy::too_many_arguments, reason = "the tenant, the month and when")]
fn build(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    tenant: &db::platform::TenantRow,
    month: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
    is_final: bool,
) -> Result<MonthlyReport, ServiceError> {
    let usage = ReportUsage {
        active_ids: db::platform::count_active_users_of_tenant(conn, tenant.id)?,
        processes: db::templates::count_processes_of_tenant(conn, tenant.id)?,
        api_calls: db::usage::api_calls(conn, tenant.id, month)?,
        tickets: db::usage::tickets_created(conn, tenant.id, start.into(), end.into())?,
        stored_bytes: db::usage::stored_bytes(conn, tenant.id)?,
    };
    // Nothing is written after `now`, so the month's end is the cut for the current month too.
    let cut = end;
    let tickets = db::reports::tickets_before(conn, scope, cut.into())?;
    let changes = db::reports::state_changes_before(conn, scope, cut.into())?;
    let by_mail: HashSet<TicketId> = db::reports::filed_by_mail(conn, scope)?
        .into_iter()
        .collect();
    let keys: HashMap<TemplateId, String> = db::templates::keys_by_id(conn, scope)?
        .into_iter()
        .collect();
    let mut terminal = TerminalStates::default();
    // Per ticket: the states it entered before the cut, in order, and when.
    let mut timelines: HashMap<TicketId, Vec<(DateTime<Utc>, String)>> = HashMap::new();
    for (ticket, at, state) in changes {
        timelines
            .entry(ticket)
            .or_default()
            .push((at.0, state.unwrap_or_default()));
    }
    let tz: Tz = tenant.time_zone.parse().unwrap_or(Tz::UTC);
    let mut days = Days::new(tz, (start, end), now);
    let mut inq = Inquiries {
        opened: 0,
        closed: 0,
        backlog: 0,
        resolution_mean_seconds: None,
        resolution_p90_seconds: None,
        by_template: Vec::new(),
        by_priority: Vec::new(),
        by_channel: Vec::new(),
        backlog_by_state: Vec::new(),
        top_categories: Vec::new(),
        sla: Vec::new(),
        daily: Vec::new(),
    };
    let mut by_template: BTreeMap<String, Flow> = BTreeMap::new();
    let mut by_priority: BTreeMap<String, Flow> = BTreeMap::new();
    let mut by_channel: BTreeMap<String, Flow> = BTreeMap::new();
    let mut backlog_states: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut categories: Vec<(Value, usize)> = Vec::new();
    let mut resolutions: Vec<i64> = Vec::new();
    for (id, template, version, created_at, fields) in &tickets {
        let key = keys.get(template).cloned().unwrap_or_default();
        let Some(timeline) = timelines.get(id) else {
            continue;
        };
        // Whether the ticket was closed after each entry.
        let mut closed_after = Vec::with_capacity(timeline.len());
        for (_, state) in timeline {
            closed_after.push(terminal.of(conn, defs, scope, (*template, *version), state)?);
        }
        days.add(created_at.0, timeline, &closed_after);
        let Some(((entered, state), &is_terminal)) = timeline.last().zip(closed_after.last())
        else {
            continue;
        };
        let (entered, state) = (*entered, state.clone());
        let opened = created_at.0 >= start;
        let closed = is_terminal && entered >= start;
        let open = !is_terminal;
        let priority = match fields.0.get("priority") {
            Some(Value::String(p)) => p.clone(),
            _ => "none".to_owned(),
        };
        let channel = if by_mail.contains(id) { "mail" } else { "api" };
        for (map, k) in [
            (&mut by_template, key.clone()),
            (&mut by_priority, priority),
            (&mut by_channel, channel.to_owned()),
        ] {
            let flow = map.entry(k.clone()).or_insert_with(|| Flow {
                key: k,
                ..Flow::default()
            });
            flow.opened += usize::from(opened);
            flow.closed += usize::from(closed);
            flow.backlog += usize::from(open);
        }
        inq.opened += usize::from(opened);
        inq.closed += usize::from(closed);
        inq.backlog += usize::from(open);
        if open {
            *backlog_states.entry((key, state)).or_default() += 1;
        }
        if closed {
            resolutions.push((entered - created_at.0).num_seconds());
        }
        if opened && let Some(category) = fields.0.get("category").filter(|v| !v.is_null()) {
            match categories.iter_mut().find(|(v, _)| v == category) {
                Some((_, n)) => *n += 1,
                None => categories.push((category.clone(), 1)),
            }
        }
    }
    resolutions.sort_unstable();
    if !resolutions.is_empty() {
        let sum: i64 = resolutions.iter().sum();
        inq.resolution_mean_seconds = Some(sum / resolutions.len() as i64);
        inq.resolution_p90_seconds = Some(super::stats::percentile(&resolutions, 0.9));
    }
    categories.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    categories.truncate(TOP_CATEGORIES);
    inq.top_categories = categories
        .into_iter()
        .map(|(value, opened)| Category { value, opened })
        .collect();
    inq.daily = days.finish();
    inq.by_template = by_template.into_values().collect();
    inq.by_priority = by_priority.into_values().collect();
    inq.by_channel = by_channel.into_values().collect();
    inq.backlog_by_state = backlog_states
        .into_iter()
        .map(|((template, state), count)| BacklogState {
            template,
            state,
            count,
        })
        .collect();
    let clocks = db::reports::clocks_stopped(conn, scope, (start.into(), cut.into()))?;
    inq.sla = super::stats::compliance(&clocks)
        .into_iter()
        .map(|c| ReportCompliance {
            rate: c.rate(),
            target: c.target,
            met: c.met,
            breached: c.breached,
        })
        .collect();
    Ok(MonthlyReport {
        tenant: ReportTenant {
            id: tenant.id,
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
        },
        month: month.to_owned(),
        time_zone: tenant.time_zone.clone(),
        is_final,
        generated_at: now,
        usage,
        inquiries: inq,
    })
}

/// Whether a state of a template version is terminal, each looked up once.
#[derive(Default)]
struct TerminalStates(HashMap<(TemplateId, i32, String), bool>);

impl TerminalStates {
    fn of(
        &mut self,
        conn: &mut DbConnection,
        defs: &DefinitionCache,
        scope: &TenantScope,
        (template, version): (TemplateId, i32),
        state: &str,
    ) -> Result<bool, ServiceError> {
        if let Some(t) = self.0.get(&(template, version, state.to_owned())) {
            return Ok(*t);
        }
        let def = defs.get(conn, scope, template, version)?;
        let t = def.state(state).is_some_and(|s| s.terminal);
        self.0.insert((template, version, state.to_owned()), t);
        Ok(t)
    }
}

/// The daily series of a month: the local days that have begun by `now`.
struct Days {
    /// The start of each begun day.
    starts: Vec<DateTime<Utc>>,
    /// Each day's backlog counts the entries before its cut: the day's end, or for today
    /// just after `now` (what happened at `now` has happened).
    cuts: Vec<DateTime<Utc>>,
    end: DateTime<Utc>,
    dates: Vec<NaiveDate>,
    opened: Vec<usize>,
    closed: Vec<usize>,
    backlog: Vec<usize>,
}

impl Days {
    fn new(tz: Tz, (start, end): (DateTime<Utc>, DateTime<Utc>), now: DateTime<Utc>) -> Self {
        let mut days = Self {
            starts: Vec::new(),
            cuts: Vec::new(),
            end,
            dates: Vec::new(),
            opened: Vec::new(),
            closed: Vec::new(),
            backlog: Vec::new(),
        };
        let mut date = start.with_timezone(&tz).date_naive();
        let mut at = start;
        while at < end && at <= now {
            let next = date
                .succ_opt()
                .map_or(end, |d| super::stats::start_of(tz, d).min(end));
            days.starts.push(at);
            days.cuts
                .push(next.min(now + chrono::Duration::microseconds(1)));
            days.dates.push(date);
            (date, at) = (date.succ_opt().unwrap_or(date), next);
        }
        let n = days.starts.len();
        (days.opened, days.closed, days.backlog) = (vec![0; n], vec![0; n], vec![0; n]);
        days
    }

    /// The day an instant of the month falls on.
    fn index(&self, at: DateTime<Utc>) -> Option<usize> {
        let begun = self.starts.partition_point(|s| *s <= at);
        (begun > 0 && at < self.end).then(|| begun - 1)
    }

    /// Counts a ticket: filed at `created`, then its timeline (before the month's end) and
    /// whether it was closed after each entry.
    fn add(
        &mut self,
        created: DateTime<Utc>,
        timeline: &[(DateTime<Utc>, String)],
        closed_after: &[bool],
    ) {
        if let Some(i) = self.index(created) {
            self.opened[i] += 1;
        }
        let mut since: Option<DateTime<Utc>> = None;
        for ((at, _), &closed) in timeline.iter().zip(closed_after) {
            match (since, closed) {
                (None, false) => since = Some(*at),
                (Some(from), true) => {
                    self.count_open(from, Some(*at));
                    since = None;
                    if let Some(i) = self.index(*at) {
                        self.closed[i] += 1;
                    }
                }
                _ => {}
            }
        }
        if let Some(from) = since {
            self.count_open(from, None);
        }
    }

    /// A ticket open from `from` (exclusive) to `to` (inclusive; `None`: still open): a
    /// day's backlog counts it when its cut falls in between.
    fn count_open(&mut self, from: DateTime<Utc>, to: Option<DateTime<Utc>>) {
        for (i, cut) in self.cuts.iter().enumerate() {
            if from < *cut && to.is_none_or(|to| *cut <= to) {
                self.backlog[i] += 1;
            }
        }
    }

    fn finish(self) -> Vec<ReportDay> {
        (0..self.dates.len())
            .map(|i| ReportDay {
                date: self.dates[i],
                opened: self.opened[i],
                closed: self.closed[i],
                backlog: self.backlog[i],
            })
            .collect()
    }
}

/// The CSV form: one row per figure, columns `month,section,template,key,metric,value`
/// (docs/reports.md lists the sections).
pub fn csv_rows(report: &MonthlyReport) -> Vec<[String; 6]> {
    let m = || report.month.clone();
    let row = |section: &str, template: &str, key: &str, metric: &str, value: String| {
        [
            m(),
            section.to_owned(),
            template.to_owned(),
            key.to_owned(),
            metric.to_owned(),
            value,
        ]
    };
    let u = &report.usage;
    let i = &report.inquiries;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut rows = vec![
        row("usage", "", "", "active_ids", u.active_ids.to_string()),
        row("usage", "", "", "processes", u.processes.to_string()),
        row("usage", "", "", "api_calls", u.api_calls.to_string()),
        row("usage", "", "", "tickets", u.tickets.to_string()),
        row("usage", "", "", "stored_bytes", u.stored_bytes.to_string()),
        row("inquiries", "", "", "opened", i.opened.to_string()),
        row("inquiries", "", "", "closed", i.closed.to_string()),
        row("inquiries", "", "", "backlog", i.backlog.to_string()),
        row(
            "inquiries",
            "",
            "",
            "resolution_mean_seconds",
            opt(i.resolution_mean_seconds),
        ),
        row(
            "inquiries",
            "",
            "",
            "resolution_p90_seconds",
            opt(i.resolution_p90_seconds),
        ),
    ];
    for (section, flows) in [
        ("template", &i.by_template),
        ("priority", &i.by_priority),
        ("channel", &i.by_channel),
    ] {
        for f in flows {
            let template = if section == "template" {
                f.key.as_str()
            } else {
                ""
            };
            let key = if section == "template" {
                ""
            } else {
                f.key.as_str()
            };
            rows.push(row(section, template, key, "opened", f.opened.to_string()));
            rows.push(row(section, template, key, "closed", f.closed.to_string()));
            rows.push(row(
                section,
                template,
                key,
                "backlog",
                f.backlog.to_string(),
            ));
        }
    }
    for b in &i.backlog_by_state {
        rows.push(row(
            "backlog_state",
            &b.template,
            &b.state,
            "backlog",
            b.count.to_string(),
        ));
    }
    for c in &i.top_categories {
        let value = match &c.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        rows.push(row("category", "", &value, "opened", c.opened.to_string()));
    }
    for s in &i.sla {
        let target = s.target.as_str();
        rows.push(row("sla", "", target, "met", s.met.to_string()));
        rows.push(row("sla", "", target, "breached", s.breached.to_string()));
        let rate = s.rate.map(|r| format!("{r:.4}")).unwrap_or_default();
        rows.push(row("sla", "", target, "rate", rate));
    }
    for d in &i.daily {
        let date = d.date.to_string();
        rows.push(row("day", "", &date, "opened", d.opened.to_string()));
        rows.push(row("day", "", &date, "closed", d.closed.to_string()));
        rows.push(row("day", "", &date, "backlog", d.backlog.to_string()));
    }
    rows
}
