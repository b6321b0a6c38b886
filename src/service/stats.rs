//! Statistics of one template's tickets (#16 point 3): where they are now, how long they
//! stay in each state, what came in and went out per day, the cumulative flow, and SLA
//! compliance — computed from the tickets, their state timelines and their SLA clocks, in
//! the tenant's time zone. docs/sla.md, "Statistics".

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::auth::TenantScope;
use crate::db::tickets::StatsFilter;
use crate::db::types::Timestamp;
use crate::db::{self, DbConnection};
use crate::domain::ids::TicketId;
use crate::domain::sla::Target;
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;

/// Longest range of days, inclusive.
pub const MAX_DAYS: i64 = 366;

/// What to count.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub template: String,
    /// Local dates, inclusive; `None`: the 30 days up to today.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub filter: StatsFilter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub count: usize,
    pub p50_seconds: i64,
    pub p90_seconds: i64,
    pub max_seconds: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    pub created: usize,
    pub closed: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Compliance {
    pub target: Target,
    pub met: usize,
    pub breached: usize,
}

impl Compliance {
    /// `met / (met + breached)`; `None` when no clock stopped.
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    pub fn rate(&self) -> Option<f64> {
        let measured = self.met + self.breached;
        (measured > 0).then(|| self.met as f64 / measured as f64)
    }
}

/// The statistics.
#[derive(Debug, Clone)]
pub struct Stats {
    pub time_zone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total: usize,
    pub open: usize,
    /// `(stage, state)` → tickets there now.
    pub by_state: Vec<(String, String, usize)>,
    /// The open tickets' time in their current state, per state.
    pub ageing: Vec<(String, Spread)>,
    /// Stays that ended in the range, per state.
    pub time_in_state: Vec<(String, Spread)>,
    pub days: Vec<Day>,
    /// Per day (its end), tickets in each state.
    pub flow: Vec<(NaiveDate, BTreeMap<String, usize>)>,
    pub sla: Vec<Compliance>,
}

/// Nearest-rank percentile of sorted values (0 for none).
pub(crate) fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    // Rank = ceil(p × n), 1-based (p ≤ 1, so the cast is within range).
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn spread(mut values: Vec<i64>) -> Spread {
    values.sort_unstable();
    Spread {
        count: values.len(),
        p50_seconds: percentile(&values, 0.5),
        p90_seconds: percentile(&values, 0.9),
        max_seconds: values.last().copied().unwrap_or(0),
    }
}

fn spreads(by_state: HashMap<String, Vec<i64>>) -> Vec<(String, Spread)> {
    let mut out: Vec<(String, Spread)> = by_state
        .into_iter()
        .map(|(state, values)| (state, spread(values)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Local midnight at the start of a date, as an instant.
pub(crate) fn start_of(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// The statistics of a template's tickets at `now`.
pub fn template_stats(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    query: &StatsQuery,
    now: DateTime<Utc>,
) -> Result<Stats, ServiceError> {
    let template = db::templates::find_template(conn, scope, &query.template)?
        .ok_or(ServiceError::NotFound)?;
    let time_zone = db::platform::find_tenant(conn, scope.tenant_id())?
        .ok_or(ServiceError::NotFound)?
        .time_zone;
    let tz: Tz = time_zone.parse().unwrap_or(Tz::UTC);
    for (field, date) in [("from", query.from), ("to", query.to)] {
        if date.is_some_and(|d| !(1970..=9999).contains(&d.year())) {
            return Err(ServiceError::validation(
                field,
                "out_of_range",
                "a date from 1970 to 9999",
            ));
        }
    }
    let today = now.with_timezone(&tz).date_naive();
    let to = query.to.unwrap_or(today);
    let from = query.from.unwrap_or(to - Days::new(29));
    if from > to {
        return Err(ServiceError::validation(
            "from",
            "after_to",
            "`from` is on or before `to`",
        ));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ServiceError::validation(
            "to",
            "range_too_long",
            format!("at most {MAX_DAYS} days"),
        ));
    }
    let (range_start, range_end) = (start_of(tz, from), start_of(tz, to + Days::new(1)));

    let tickets = db::tickets::stats_ticket_rows(conn, scope, template.id, &query.filter)?;
    let changes = db::tickets::stats_state_changes(conn, scope, template.id, &query.filter)?;
    let mut terminal: HashMap<(i32, String), bool> = HashMap::new();
    let mut versions: HashMap<TicketId, i32> = HashMap::new();
    let mut by_state: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut open = 0;
    let mut created_per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for (id, version, stage, state, closed, created_at) in &tickets {
        versions.insert(*id, *version);
        *by_state.entry((stage.clone(), state.clone())).or_default() += 1;
        open += usize::from(!closed);
        if created_at.0 >= range_start && created_at.0 < range_end {
            *created_per_day
                .entry(created_at.0.with_timezone(&tz).date_naive())
                .or_default() += 1;
        }
    }

    // Stays per ticket: (state, entered, left).
    let mut closed_per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    let mut ageing: HashMap<String, Vec<i64>> = HashMap::new();
    let mut time_in_state: HashMap<String, Vec<i64>> = HashMap::new();
    let mut stays: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let ticket = changes[i].0;
        let mut j = i;
        while j < changes.len() && changes[j].0 == ticket {
            j += 1;
        }
        let version = versions.get(&ticket).copied().unwrap_or(1);
        for k in i..j {
            let state = changes[k].2.clone().unwrap_or_default();
            let entered = changes[k].1.0;
            let left = changes.get(k + 1).filter(|_| k + 1 < j).map(|c| c.1.0);
            let is_terminal = match terminal.get(&(version, state.clone())) {
                Some(t) => *t,
                None => {
                    let def = defs.get(conn, scope, template.id, version)?;
                    let t = def.state(&state).is_some_and(|s| s.terminal);
                    terminal.insert((version, state.clone()), t);
                    t
                }
            };
            // A transition into a terminal state closes the ticket that day.
            if k > i && is_terminal && entered >= range_start && entered < range_end {
                *closed_per_day
                    .entry(entered.with_timezone(&tz).date_naive())
                    .or_default() += 1;
            }
            match left {
                Some(left) if left >= range_start && left < range_end => {
                    time_in_state
                        .entry(state.clone())
                        .or_default()
                        .push((left - entered).num_seconds());
                }
                None if !is_terminal => {
                    ageing
                        .entry(state.clone())
                        .or_default()
                        .push((now - entered).num_seconds().max(0));
                }
                _ => {}
            }
            stays.push((state, entered, left));
        }
        i = j;
    }

    let mut days = Vec::new();
    let mut flow = Vec::new();
    let mut date = from;
    while date <= to {
        days.push(Day {
            date,
            created: created_per_day.get(&date).copied().unwrap_or(0),
            closed: closed_per_day.get(&date).copied().unwrap_or(0),
        });
        let end = start_of(tz, date + Days::new(1)).min(now);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (state, entered, left) in &stays {
            if *entered < end && left.is_none_or(|l| l >= end) {
                *counts.entry(state.clone()).or_default() += 1;
            }
        }
        flow.push((date, counts));
        date = date + Days::new(1);
    }

    let clocks = db::tickets::stats_stopped_clocks(
        conn,
        scope,
        template.id,
        &query.filter,
        (range_start.into(), range_end.into()),
    )?;
    let sla = compliance(&clocks);

    Ok(Stats {
        time_zone,
        from,
        to,
        total: tickets.len(),
        open,
        by_state: by_state
            .into_iter()
            .map(|((stage, state), n)| (stage, state, n))
            .collect(),
        ageing: spreads(ageing),
        time_in_state: spreads(time_in_state),
        days,
        flow,
        sla,
    })
}

/// Each state's tickets now and the p90 of its stays that ended in the last 30 days (the
/// figures an SVG diagram draws on its states).
pub fn state_figures(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    template: &str,
    now: DateTime<Utc>,
) -> Result<HashMap<String, crate::domain::diagram::StateFigures>, ServiceError> {
    let query = StatsQuery {
        template: template.to_owned(),
        from: None,
        to: None,
        filter: StatsFilter::default(),
    };
    let stats = template_stats(conn, defs, scope, &query, now)?;
    let mut out: HashMap<String, crate::domain::diagram::StateFigures> = HashMap::new();
    for (_, state, count) in stats.by_state {
        out.entry(state).or_default().count += count;
    }
    for (state, spread) in stats.time_in_state {
        out.entry(state).or_default().p90_seconds = Some(spread.p90_seconds);
    }
    Ok(out)
}

/// Met and breached per target of stopped clocks `(target, stopped at, breach instant)`: a
/// clock is breached when its breach instant is not after its stop.
pub(crate) fn compliance(clocks: &[(String, Timestamp, Option<Timestamp>)]) -> Vec<Compliance> {
    Target::ALL
        .iter()
        .map(|target| {
            let mine = clocks.iter().filter(|(t, ..)| t == target.as_str());
            let breached = mine
                .clone()
                .filter(|(_, stopped, breach)| breach.is_some_and(|b| b <= *stopped))
                .count();
            Compliance {
                target: *target,
                met: mine.count() - breached,
                breached,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&values, 0.5), 5);
        assert_eq!(percentile(&values, 0.9), 9);
        assert_eq!(percentile(&[7], 0.9), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        let s = spread(vec![30, 10, 20]);
        assert_eq!(
            (s.count, s.p50_seconds, s.p90_seconds, s.max_seconds),
            (3, 20, 30, 30)
        );
    }
}
