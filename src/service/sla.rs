//! SLA (#16): business calendars, policies per template, and each ticket's clocks.
//!
//! A ticket's clocks are replayed from its history ([`refresh`]) in the transaction of every
//! write that can move them (filing, a transition, a field change, a public comment), and
//! the replay is stored: the due and at-risk instants are what the `sla.watch` job and the
//! `?sla=` filter read. A policy or calendar change enqueues `sla.replay`, which replays the
//! template's tickets again, so the stored clocks always follow the current rules.
//! docs/sla.md.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::TenantScope;
use crate::db::audit::Actor;
use crate::db::jobs::NewJob;
use crate::db::sla::{self as rows, Announcement, CalendarRow, ClockRow, PolicyRow};
use crate::db::types::Json;
use crate::db::{self, DbConnection};
use crate::domain::calendar::{self, Calendar, Closure, Exception, Rules, Week};
use crate::domain::event::EventType;
use crate::domain::ids::{CalendarId, SlaPolicyId, TenantId, TicketId};
use crate::domain::sla::{self as clocks, Clock, ClockStatus, Goal, Phase, Target};
use crate::domain::template::TemplateDefinition;
use crate::service::definitions::DefinitionCache;
use crate::service::error::{ConflictKind, ServiceError, check_version};

/// Most calendars and policies per tenant.
pub const MAX_CALENDARS: i64 = 50;
pub const MAX_POLICIES: i64 = 200;
/// Longest target: a year of business minutes.
pub const MAX_TARGET_MINUTES: i32 = 525_600;
/// The job that announces at-risk and breached clocks.
pub const WATCH: &str = "sla.watch";
/// The job that replays a template's clocks after a policy or calendar change.
pub const REPLAY: &str = "sla.replay";
/// Clocks one `sla.watch` pass announces at most (the next pass takes the rest).
pub const WATCH_BATCH: i64 = 200;
/// Tickets one replay transaction takes.
pub const REPLAY_BATCH: i64 = 200;

fn corrupt(what: &str) -> ServiceError {
    ServiceError::internal(format!("stored SLA data: bad {what}"))
}

fn invalid(field: &str, code: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::validation(field, code, message)
}

// ---------------------------------------------------------------- calendars

/// A calendar as an admin writes it.
#[derive(Debug, Clone)]
pub struct CalendarInput {
    pub name: String,
    /// `None`: the tenant's time zone.
    pub time_zone: Option<String>,
    pub rules: Rules,
}

/// A partial change of a calendar.
#[derive(Debug, Clone, Default)]
pub struct CalendarPatch {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub working_hours: Option<Week>,
    pub japanese_holidays: Option<bool>,
    pub closures: Option<Vec<Closure>>,
    pub exceptions: Option<Vec<Exception>>,
}

/// A stored calendar, parsed.
#[derive(Debug, Clone)]
pub struct CalendarView {
    pub row: CalendarRow,
    pub rules: Rules,
}

impl CalendarView {
    pub fn of(row: CalendarRow) -> Result<Self, ServiceError> {
        let rules = serde_json::from_value(row.rules.0.clone()).map_err(|_| corrupt("calendar"))?;
        Ok(Self { row, rules })
    }

    pub fn calendar(&self) -> Result<Calendar, ServiceError> {
        Calendar::new(&self.row.time_zone, &self.rules).map_err(|_| corrupt("calendar"))
    }
}

fn check_name(name: &str) -> Result<(), ServiceError> {
    let length = name.chars().count();
    if length == 0 || length > 200 || name.trim() != name {
        return Err(invalid(
            "name",
            "invalid",
            "1 to 200 characters, without leading or trailing spaces",
        ));
    }
    Ok(())
}

fn check_calendar(time_zone: &str, name: &str, rules: &Rules) -> Result<(), ServiceError> {
    check_name(name)?;
    Calendar::new(time_zone, rules)
        .map(|_| ())
        .map_err(|e| invalid(&e.field, e.code, e.message))
}

fn name_free(
    conn: &mut DbConnection,
    scope: &TenantScope,
    name: &str,
    own: Option<CalendarId>,
) -> Result<(), ServiceError> {
    match rows::calendar_named(conn, scope, name)? {
        Some(id) if Some(id) != own => Err(ServiceError::conflict(
            ConflictKind::Duplicate,
            format!("A calendar named \"{name}\" exists."),
        )),
        _ => Ok(()),
    }
}

pub fn create_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    input: CalendarInput,
    now: DateTime<Utc>,
) -> Result<CalendarView, ServiceError> {
    let time_zone = match input.time_zone {
        Some(tz) => tz,
        None => {
            db::platform::find_tenant(conn, scope.tenant_id())?
                .ok_or(ServiceError::NotFound)?
                .time_zone
        }
    };
    check_calendar(&time_zone, &input.name, &input.rules)?;
    name_free(conn, scope, &input.name, None)?;
    if rows::count_calendars(conn, scope)? >= MAX_CALENDARS {
        return Err(ServiceError::conflict(
            ConflictKind::Duplicate,
            format!("A tenant has at most {MAX_CALENDARS} calendars."),
        ));
    }
    let row = CalendarRow {
        tenant_id: scope.tenant_id(),
        id: CalendarId::new_at(now),
        name: input.name,
        time_zone,
        rules: Json(json!(input.rules)),
        version: 1,
        created_at: now.into(),
        updated_at: now.into(),
    };
    rows::insert_calendar(conn, &row)?;
    audit_calendar(conn, scope, actor, "calendar.created", &row, now)?;
    Ok(CalendarView {
        row,
        rules: input.rules,
    })
}

fn audit_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    action: &str,
    row: &CalendarRow,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    super::audit(
        conn,
        scope,
        actor,
        action,
        ("calendar", row.id),
        json!({"name": row.name, "time_zone": row.time_zone}),
        now.into(),
    )
}

pub fn get_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: CalendarId,
) -> Result<CalendarView, ServiceError> {
    CalendarView::of(rows::find_calendar(conn, scope, id)?.ok_or(ServiceError::NotFound)?)
}

pub fn list_calendars(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<CalendarId>,
    limit: i64,
) -> Result<Vec<CalendarView>, ServiceError> {
    rows::list_calendars(conn, scope, after, limit)?
        .into_iter()
        .map(CalendarView::of)
        .collect()
}

/// Changes a calendar; the clocks of every template whose policies use it are replayed.
pub fn update_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    (id, expected_version): (CalendarId, Option<i64>),
    patch: CalendarPatch,
    now: DateTime<Utc>,
) -> Result<CalendarView, ServiceError> {
    let mut view = get_calendar(conn, scope, id)?;
    check_version(expected_version, view.row.version)?;
    let p = patch;
    let name = p.name.unwrap_or(view.row.name.clone());
    let time_zone = p.time_zone.unwrap_or(view.row.time_zone.clone());
    let r = &mut view.rules;
    r.working_hours = p.working_hours.unwrap_or(r.working_hours.clone());
    r.japanese_holidays = p.japanese_holidays.unwrap_or(r.japanese_holidays);
    r.closures = p.closures.unwrap_or(r.closures.clone());
    r.exceptions = p.exceptions.unwrap_or(r.exceptions.clone());
    check_calendar(&time_zone, &name, &view.rules)?;
    name_free(conn, scope, &name, Some(id))?;
    let row = &mut view.row;
    row.name = name;
    row.time_zone = time_zone;
    row.rules = Json(json!(view.rules));
    row.version += 1;
    row.updated_at = now.into();
    rows::update_calendar(conn, scope, &view.row)?;
    audit_calendar(conn, scope, actor, "calendar.updated", &view.row, now)?;
    for template in rows::templates_using(conn, scope, id)? {
        schedule_replay(conn, scope, &template, now)?;
    }
    Ok(view)
}

/// Deletes a calendar no policy uses (409 otherwise).
pub fn delete_calendar(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    id: CalendarId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let view = get_calendar(conn, scope, id)?;
    if rows::calendar_in_use(conn, scope, id)? {
        return Err(ServiceError::conflict(
            ConflictKind::CalendarInUse,
            "An SLA policy uses this calendar; change or delete the policy first.",
        ));
    }
    rows::delete_calendar(conn, scope, id)?;
    audit_calendar(conn, scope, actor, "calendar.deleted", &view.row, now)
}

/// The Japanese public holidays of a year (what `japanese_holidays: true` closes).
pub fn japanese_holidays(year: i32) -> Result<Vec<(chrono::NaiveDate, String)>, ServiceError> {
    if !(1955..=2099).contains(&year) {
        return Err(invalid("year", "out_of_range", "a year from 1955 to 2099"));
    }
    Ok(calendar::japanese_holidays(year)
        .iter()
        .map(|(d, n)| (*d, n.clone()))
        .collect())
}

// ---------------------------------------------------------------- policies

/// Which tickets a policy applies to: those whose field holds one of the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"field": "priority", "in": ["p1", "p2"]}))]
pub struct Condition {
    /// A field of the template (a master or choice field, usually the priority).
    pub field: String,
    /// The stored values (master item codes, choice keys, text) any of which matches.
    #[serde(rename = "in")]
    #[schema(min_items = 1, max_items = 50)]
    pub values: Vec<Value>,
}

/// A policy as an admin writes it.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub template: String,
    pub name: String,
    pub rank: i32,
    pub condition: Option<Condition>,
    pub calendar: Option<CalendarId>,
    pub first_response_minutes: Option<i32>,
    pub resolution_minutes: Option<i32>,
    pub at_risk_percent: i32,
    pub enabled: bool,
}

/// A partial change of a policy (`Some(None)` clears a nullable member).
#[derive(Debug, Clone, Default)]
pub struct PolicyPatch {
    pub name: Option<String>,
    pub rank: Option<i32>,
    pub condition: Option<Option<Condition>>,
    pub calendar: Option<Option<CalendarId>>,
    pub first_response_minutes: Option<Option<i32>>,
    pub resolution_minutes: Option<Option<i32>>,
    pub at_risk_percent: Option<i32>,
    pub enabled: Option<bool>,
}

/// A stored policy, parsed.
#[derive(Debug, Clone)]
pub struct Policy {
    pub row: PolicyRow,
    pub input: PolicyInput,
}

impl Policy {
    pub fn of(row: PolicyRow) -> Result<Self, ServiceError> {
        let condition = match &row.condition {
            None => None,
            Some(c) => Some(serde_json::from_value(c.0.clone()).map_err(|_| corrupt("policy"))?),
        };
        let input = PolicyInput {
            template: row.template.clone(),
            name: row.name.clone(),
            rank: row.rank,
            condition,
            calendar: row.calendar_id,
            first_response_minutes: row.first_response_minutes,
            resolution_minutes: row.resolution_minutes,
            at_risk_percent: row.at_risk_percent,
            enabled: row.enabled,
        };
        Ok(Self { row, input })
    }

    /// Whether the policy applies to a ticket with these fields.
    fn applies(&self, fields: &serde_json::Map<String, Value>) -> bool {
        match &self.input.condition {
            None => true,
            Some(c) => fields.get(&c.field).is_some_and(|v| c.values.contains(v)),
        }
    }

    fn targets(&self) -> Vec<(Target, i32)> {
        let mut targets = Vec::with_capacity(2);
        if let Some(m) = self.input.first_response_minutes {
            targets.push((Target::FirstResponse, m));
        }
        if let Some(m) = self.input.resolution_minutes {
            targets.push((Target::Resolution, m));
        }
        targets
    }
}

fn check_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    input: &PolicyInput,
) -> Result<(), ServiceError> {
    check_name(&input.name)?;
    let def = super::templates::definition(conn, scope, &input.template, None)?;
    if let Some(c) = &input.condition {
        if def.field(&c.field).is_none() {
            return Err(invalid(
                "condition/field",
                "unknown",
                "the template has no such field",
            ));
        }
        if c.values.is_empty() || c.values.len() > 50 {
            return Err(invalid("condition/in", "invalid", "1 to 50 values"));
        }
    }
    if let Some(id) = input.calendar
        && rows::find_calendar(conn, scope, id)?.is_none()
    {
        return Err(invalid("calendar_id", "unknown", "no such calendar"));
    }
    for (field, minutes) in [
        ("first_response_minutes", input.first_response_minutes),
        ("resolution_minutes", input.resolution_minutes),
    ] {
        if minutes.is_some_and(|m| !(1..=MAX_TARGET_MINUTES).contains(&m)) {
            return Err(invalid(
                field,
                "out_of_range",
                format!("1 to {MAX_TARGET_MINUTES} minutes"),
            ));
        }
    }
    if input.first_response_minutes.is_none() && input.resolution_minutes.is_none() {
        return Err(invalid(
            "resolution_minutes",
            "required",
            "a policy sets a first-response or a resolution target, or both",
        ));
    }
    if !(1..=99).contains(&input.at_risk_percent) {
        return Err(invalid("at_risk_percent", "out_of_range", "1 to 99"));
    }
    if !(0..=1_000_000).contains(&input.rank) {
        return Err(invalid("rank", "out_of_range", "0 to 1000000"));
    }
    Ok(())
}

impl PolicyInput {
    fn into_row(self, base: PolicyRow) -> PolicyRow {
        PolicyRow {
            template: self.template,
            name: self.name,
            rank: self.rank,
            condition: self.condition.map(|c| Json(json!(c))),
            calendar_id: self.calendar,
            first_response_minutes: self.first_response_minutes,
            resolution_minutes: self.resolution_minutes,
            at_risk_percent: self.at_risk_percent,
            enabled: self.enabled,
            ..base
        }
    }

    fn apply(mut self, patch: PolicyPatch) -> Self {
        let p = patch;
        self.name = p.name.unwrap_or(self.name);
        self.rank = p.rank.unwrap_or(self.rank);
        self.condition = p.condition.unwrap_or(self.condition);
        self.calendar = p.calendar.unwrap_or(self.calendar);
        self.first_response_minutes = p
            .first_response_minutes
            .unwrap_or(self.first_response_minutes);
        self.resolution_minutes = p.resolution_minutes.unwrap_or(self.resolution_minutes);
        self.at_risk_percent = p.at_risk_percent.unwrap_or(self.at_risk_percent);
        self.enabled = p.enabled.unwrap_or(self.enabled);
        self
    }
}

fn audit_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    action: &str,
    row: &PolicyRow,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    super::audit(
        conn,
        scope,
        actor,
        action,
        ("sla_policy", row.id),
        json!({"template": row.template, "name": row.name, "enabled": row.enabled}),
        now.into(),
    )
}

/// Creates a policy; the template's tickets are replayed under it.
pub fn create_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    input: PolicyInput,
    now: DateTime<Utc>,
) -> Result<Policy, ServiceError> {
    check_policy(conn, scope, &input)?;
    if rows::count_policies(conn, scope)? >= MAX_POLICIES {
        return Err(ServiceError::conflict(
            ConflictKind::Duplicate,
            format!("A tenant has at most {MAX_POLICIES} SLA policies."),
        ));
    }
    let base = PolicyRow {
        tenant_id: scope.tenant_id(),
        id: SlaPolicyId::new_at(now),
        template: String::new(),
        name: String::new(),
        rank: 0,
        condition: None,
        calendar_id: None,
        first_response_minutes: None,
        resolution_minutes: None,
        at_risk_percent: 0,
        enabled: true,
        version: 1,
        created_at: now.into(),
        updated_at: now.into(),
    };
    let row = input.clone().into_row(base);
    rows::insert_policy(conn, &row)?;
    audit_policy(conn, scope, actor, "sla_policy.created", &row, now)?;
    schedule_replay(conn, scope, &row.template, now)?;
    Ok(Policy { row, input })
}

pub fn get_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: SlaPolicyId,
) -> Result<Policy, ServiceError> {
    Policy::of(rows::find_policy(conn, scope, id)?.ok_or(ServiceError::NotFound)?)
}

pub fn list_policies(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: Option<&str>,
    after: Option<SlaPolicyId>,
    limit: i64,
) -> Result<Vec<Policy>, ServiceError> {
    rows::list_policies(conn, scope, template, after, limit)?
        .into_iter()
        .map(Policy::of)
        .collect()
}

/// Changes a policy; the template's tickets are replayed under the change.
pub fn update_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    (id, expected_version): (SlaPolicyId, Option<i64>),
    patch: PolicyPatch,
    now: DateTime<Utc>,
) -> Result<Policy, ServiceError> {
    let policy = get_policy(conn, scope, id)?;
    check_version(expected_version, policy.row.version)?;
    let input = policy.input.apply(patch);
    check_policy(conn, scope, &input)?;
    let mut row = input.clone().into_row(policy.row);
    row.version += 1;
    row.updated_at = now.into();
    rows::update_policy(conn, scope, &row)?;
    audit_policy(conn, scope, actor, "sla_policy.updated", &row, now)?;
    schedule_replay(conn, scope, &row.template, now)?;
    Ok(Policy { row, input })
}

/// Deletes a policy; the template's tickets are replayed without it.
pub fn delete_policy(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    id: SlaPolicyId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let policy = get_policy(conn, scope, id)?;
    rows::delete_policy(conn, scope, id)?;
    audit_policy(conn, scope, actor, "sla_policy.deleted", &policy.row, now)?;
    schedule_replay(conn, scope, &policy.row.template, now)
}

// ---------------------------------------------------------------- clocks

/// Calendars by id, parsed once per use case.
#[derive(Default)]
struct Calendars(HashMap<Option<CalendarId>, Calendar>);

impl Calendars {
    fn get(
        &mut self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        id: Option<CalendarId>,
    ) -> Result<&Calendar, ServiceError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(id) {
            let calendar = match id {
                None => calendar::always(),
                Some(id) => match rows::find_calendar(conn, scope, id)? {
                    Some(row) => CalendarView::of(row)?.calendar()?,
                    // Deleted under a clock (a policy cannot name a deleted calendar, but a
                    // stored clock may outlive the policy): around the clock.
                    None => calendar::always(),
                },
            };
            slot.insert(calendar);
        }
        Ok(&self.0[&id])
    }
}

/// What a refresh needs of the ticket.
pub(crate) struct TicketClockInput<'a> {
    pub id: TicketId,
    pub template: &'a str,
    pub def: &'a TemplateDefinition,
    pub fields: &'a serde_json::Map<String, Value>,
    pub requester: Option<crate::domain::ids::UserId>,
}

/// Replays a ticket's clocks from its history and stores them (in the caller's transaction:
/// the write that moved them). Without an applying policy, the ticket has no clocks.
pub(crate) fn refresh(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: &TicketClockInput<'_>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let policies = rows::policies_of(conn, scope, ticket.template)?;
    if policies.is_empty() {
        // The common case, one indexed look-up; clocks of a deleted policy go in its replay.
        return Ok(());
    }
    let mut calendars = Calendars::default();
    let replayed = replay_ticket(
        conn,
        scope,
        &policies,
        ticket,
        &mut calendars,
        Until::AtLeast(now),
    )?;
    store(conn, scope, ticket.id, &replayed, now)
}

type Replayed = Vec<(Target, SlaPolicyId, Option<CalendarId>, i32, Clock)>;

/// Up to when a replay counts.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// This instant, even if the history goes on (a ticket as it was).
    Exactly(DateTime<Utc>),
    /// This instant or the ticket's latest change, whichever is later (a stored clock).
    AtLeast(DateTime<Utc>),
}

fn replay_ticket(
    conn: &mut DbConnection,
    scope: &TenantScope,
    policies: &[PolicyRow],
    ticket: &TicketClockInput<'_>,
    calendars: &mut Calendars,
    until: Until,
) -> Result<Replayed, ServiceError> {
    let mut applying = None;
    for row in policies {
        let policy = Policy::of(row.clone())?;
        if policy.applies(ticket.fields) {
            applying = Some(policy);
            break;
        }
    }
    let Some(policy) = applying else {
        return Ok(Vec::new());
    };
    let timeline = db::tickets::state_timeline(conn, scope, ticket.id)?;
    let phases: Vec<Phase> = timeline
        .iter()
        .map(|(at, state)| Phase {
            at: at.0,
            sla: state
                .as_deref()
                .and_then(|s| ticket.def.state(s))
                .map(|s| s.sla)
                .unwrap_or_default(),
        })
        .collect();
    let first_transition = timeline.get(1).map(|(at, _)| at.0);
    let first_comment =
        db::tickets::first_public_comment_by_other(conn, scope, ticket.id, ticket.requester)?
            .map(|at| at.0);
    let response = match (first_transition, first_comment) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let now = match until {
        Until::Exactly(at) => at,
        // A replay that began before the ticket's latest change (a job's `now` is when it
        // started; another node's clock may run ahead) counts up to that change.
        Until::AtLeast(now) => phases
            .iter()
            .map(|p| p.at)
            .chain(response)
            .fold(now, DateTime::max),
    };
    let calendar_id = policy.input.calendar;
    let calendar = calendars.get(conn, scope, calendar_id)?;
    let mut replayed = Vec::new();
    for (target, minutes) in policy.targets() {
        let goal = Goal {
            target: TimeDelta::minutes(i64::from(minutes)),
            at_risk_percent: u8::try_from(policy.input.at_risk_percent).unwrap_or(80),
            calendar,
        };
        let stop = (target == Target::FirstResponse)
            .then_some(response)
            .flatten();
        if let Some(clock) = clocks::replay(goal, &phases, stop, now) {
            replayed.push((target, policy.row.id, calendar_id, minutes, clock));
        }
    }
    Ok(replayed)
}

fn store(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    replayed: &Replayed,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let keep: Vec<&str> = replayed.iter().map(|(t, ..)| t.as_str()).collect();
    rows::drop_clocks_except(conn, scope, ticket, &keep)?;
    for (target, policy, calendar, minutes, clock) in replayed {
        let row = ClockRow {
            tenant_id: scope.tenant_id(),
            ticket_id: ticket,
            target: target.as_str().to_owned(),
            policy_id: *policy,
            calendar_id: *calendar,
            target_seconds: i64::from(*minutes) * 60,
            started_at: clock.started_at.into(),
            elapsed_ms: clock.elapsed.num_milliseconds(),
            as_of: clock.as_of.into(),
            running: clock.running,
            stopped_at: clock.stopped_at.map(Into::into),
            at_risk_at: clock.at_risk_at.map(Into::into),
            breach_at: clock.breach_at.map(Into::into),
            at_risk_notified: false,
            breach_notified: false,
        };
        rows::store_clock(conn, &row, now.into())?;
    }
    Ok(())
}

/// One SLA target of a ticket as a read shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"target": "resolution", "policy_id": "019ac0d2-7200-7000-8000-0000000000a1",
    "calendar_id": "019ac0d2-7100-7000-8000-0000000000c1", "status": "running",
    "target_seconds": 28800, "started_at": "2026-05-01T07:00:00Z", "due_at": "2026-05-07T06:00:00Z",
    "at_risk_at": "2026-05-07T04:24:00Z", "stopped_at": null, "elapsed_seconds": 7200,
    "remaining_seconds": 21600, "paused": false, "at_risk": false, "breached": false}))]
pub struct SlaClock {
    pub target: Target,
    pub policy_id: SlaPolicyId,
    /// `null`: the policy measures around the clock (UTC).
    pub calendar_id: Option<CalendarId>,
    pub status: ClockStatus,
    pub target_seconds: i64,
    pub started_at: DateTime<Utc>,
    /// When the target is (or was) reached while counting; `null` while paused before it,
    /// or when it stopped in time.
    pub due_at: Option<DateTime<Utc>>,
    /// When the at-risk share of the target is (or was) reached, as `due_at`.
    pub at_risk_at: Option<DateTime<Utc>>,
    /// When the clock stopped (the response, or a state that stops it).
    pub stopped_at: Option<DateTime<Utc>>,
    /// Business seconds counted so far.
    pub elapsed_seconds: i64,
    /// Business seconds left before the target (negative once breached).
    pub remaining_seconds: i64,
    pub paused: bool,
    /// Past the at-risk share and not stopped.
    pub at_risk: bool,
    pub breached: bool,
}

fn clock_of(row: &ClockRow) -> Clock {
    Clock {
        started_at: row.started_at.0,
        elapsed: TimeDelta::milliseconds(row.elapsed_ms),
        as_of: row.as_of.0,
        running: row.running,
        stopped_at: row.stopped_at.map(|t| t.0),
        at_risk_at: row.at_risk_at.map(|t| t.0),
        breach_at: row.breach_at.map(|t| t.0),
    }
}

/// What a clock's view names besides the clock: (target, policy, calendar, target seconds).
type ClockOf = (Target, SlaPolicyId, Option<CalendarId>, i64);

fn view((target, policy, calendar, target_seconds): ClockOf, clock: &Clock) -> SlaClock {
    let status = clock.status();
    let elapsed = clock.elapsed.num_seconds();
    SlaClock {
        target,
        policy_id: policy,
        calendar_id: calendar,
        status,
        target_seconds,
        started_at: clock.started_at,
        due_at: clock.due_at(),
        at_risk_at: clock.at_risk_at,
        stopped_at: clock.stopped_at,
        elapsed_seconds: elapsed,
        remaining_seconds: target_seconds - elapsed,
        paused: status == ClockStatus::Paused,
        at_risk: clock.stopped_at.is_none() && clock.at_risk_at.is_some_and(|a| a <= clock.as_of),
        breached: clock.breached(),
    }
}

/// A ticket's clocks as they stand at `now` (the stored replay, counted on to `now`).
pub fn ticket_clocks(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: TicketId,
    now: DateTime<Utc>,
) -> Result<Vec<SlaClock>, ServiceError> {
    let stored = rows::clocks_of(conn, scope, ticket)?;
    let mut calendars = Calendars::default();
    let mut out = Vec::with_capacity(stored.len());
    for row in &stored {
        let calendar = calendars.get(conn, scope, row.calendar_id)?;
        let target = Target::from_storage(&row.target).map_err(|_| corrupt("clock target"))?;
        let of = (target, row.policy_id, row.calendar_id, row.target_seconds);
        out.push(view(of, &clock_of(row).at(calendar, now)));
    }
    Ok(out)
}

/// A ticket's clocks as they stood at `at` (its fields then; the policies and calendars as
/// they are now), replayed from its history — for `GET /tickets/{id}?as_of=`.
pub(crate) fn clocks_at(
    conn: &mut DbConnection,
    scope: &TenantScope,
    ticket: &TicketClockInput<'_>,
    at: DateTime<Utc>,
) -> Result<Vec<SlaClock>, ServiceError> {
    let policies = rows::policies_of(conn, scope, ticket.template)?;
    if policies.is_empty() {
        return Ok(Vec::new());
    }
    let mut calendars = Calendars::default();
    let replayed = replay_ticket(
        conn,
        scope,
        &policies,
        ticket,
        &mut calendars,
        Until::Exactly(at),
    )?;
    Ok(replayed
        .iter()
        .map(|(target, policy, calendar, minutes, clock)| {
            view(
                (*target, *policy, *calendar, i64::from(*minutes) * 60),
                clock,
            )
        })
        .collect())
}

// ---------------------------------------------------------------- jobs

/// Enqueues a replay of a template's clocks (each change its own job: a replay is idempotent,
/// and one that started before the change must not stand for it).
fn schedule_replay(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let mut job = NewJob::new(
        REPLAY,
        json!({"tenant_id": scope.tenant_id(), "template": template}),
        now,
    );
    job.tenant = Some(scope.tenant_id());
    db::jobs::enqueue(conn, &job)?;
    Ok(())
}

/// Replays the next batch of a template's tickets after `after` (id order); returns the
/// last ticket replayed, `None` when none was left.
pub fn replay_batch(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    tenant: TenantId,
    template: &str,
    after: Option<TicketId>,
    now: DateTime<Utc>,
) -> Result<Option<TicketId>, ServiceError> {
    let scope = crate::auth::job_scope(tenant);
    let Some(template_row) = db::templates::find_template(conn, &scope, template)? else {
        return Ok(None);
    };
    let batch =
        db::tickets::tickets_of_template(conn, &scope, template_row.id, after, REPLAY_BATCH)?;
    let policies = rows::policies_of(conn, &scope, template)?;
    let mut calendars = Calendars::default();
    let mut last = None;
    for row in &batch {
        let def = defs.get(conn, &scope, row.template_id, row.template_version)?;
        let fields = row.fields();
        let input = TicketClockInput {
            id: row.id,
            template,
            def: &def,
            fields: &fields,
            requester: row.requester_id,
        };
        let replayed = replay_ticket(
            conn,
            &scope,
            &policies,
            &input,
            &mut calendars,
            Until::AtLeast(now),
        )?;
        store(conn, &scope, row.id, &replayed, now)?;
        last = Some(row.id);
    }
    Ok(last)
}

/// Announces the at-risk and breached clocks due at `now` (every tenant), each exactly once
/// across nodes: the claim is a conditional update, and the event is written in its
/// transaction. Returns how many were announced.
pub fn announce_due(
    conn: &mut DbConnection,
    kind: Announcement,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let due = rows::due(conn, kind, now.into(), WATCH_BATCH)?;
    let mut announced = 0;
    for row in due {
        let key = (row.tenant_id, row.ticket_id, row.target.as_str());
        if !rows::claim_announcement(conn, key, kind, now.into())? {
            continue;
        }
        let scope = crate::auth::job_scope(row.tenant_id);
        let Some((ticket, template)) = db::tickets::find_ticket(conn, &scope, row.ticket_id)?
        else {
            continue;
        };
        let summary = super::events::TicketSummary {
            id: ticket.id,
            key: ticket.key(),
            template: &template,
            title: &ticket.title,
            stage: &ticket.stage,
            state: &ticket.state,
            closed: ticket.closed,
            version: ticket.version,
        };
        let (event_type, at) = match kind {
            Announcement::AtRisk => (EventType::TicketSlaAtRisk, row.at_risk_at),
            Announcement::Breach => (EventType::TicketSlaBreached, row.breach_at),
        };
        let detail = json!({
            "target": row.target,
            "policy_id": row.policy_id,
            "target_seconds": row.target_seconds,
            "at": at.map(|t| t.0),
        });
        let actor = Actor::system("SLA");
        super::events::ticket_activity(
            conn,
            &scope,
            &actor,
            now,
            &summary,
            event_type,
            ("sla", detail),
            false,
        )?;
        announced += 1;
    }
    Ok(announced)
}
