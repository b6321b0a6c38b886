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

/// The 1-based nearest rank of percentile `p` among `n` values: `ceil(p × n)`, at least 1.
fn rank_of(n: i64, p: f64) -> i64 {
    #[expect(clippy::cast_possible_truncation, reason = "p ≤ 1, so within n")]
    let rank = (p * n as f64).ceil() as i64;
    rank.clamp(1, n.max(1))
}

/// The tickets per state at the end of each day of `[from, to]` (or at `now`, whichever is
/// earlier), walked back from the counts now: a state change at or after a day's end is
/// undone (`moves`: `(at, state, +1 entered / -1 left)`). Only states with tickets appear.
fn flow_back(
    now_per_state: BTreeMap<String, i64>,
    mut moves: Vec<(DateTime<Utc>, &str, i64)>,
    tz: Tz,
    (from, to): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) -> Vec<(NaiveDate, BTreeMap<String, usize>)> {
    moves.sort_unstable_by_key(|m| std::cmp::Reverse(m.0));
    let mut counts = now_per_state;
    let mut moves = moves.into_iter().peekable();
    let mut flow = Vec::new();
    let mut date = to;
    while date >= from {
        let end = start_of(tz, date + Days::new(1)).min(now);
        while let Some((_, state, delta)) = moves.next_if(|m| m.0 >= end) {
            *counts.entry(state.to_owned()).or_default() -= delta;
        }
        let at_end = counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(state, n)| (state.clone(), usize::try_from(*n).unwrap_or(0)))
            .collect();
        flow.push((date, at_end));
        let Some(previous) = date.pred_opt() else {
            break;
        };
        date = previous;
    }
    flow.reverse();
    flow
}

/// Nearest-rank percentile of sorted values (0 for none).
pub(crate) fn percentile(sorted: &[i64], p: f64) -> i64 {
    let n = i64::try_from(sorted.len()).unwrap_or(i64::MAX);
    usize::try_from(rank_of(n, p) - 1)
        .ok()
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or(0)
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

/// What the template's published versions say of each state: its stage and whether it is
/// terminal, `None` where versions disagree.
#[derive(Debug, Default)]
struct StateFacts {
    stage: HashMap<String, Option<String>>,
    terminal: HashMap<String, Option<bool>>,
}

impl StateFacts {
    fn of(
        conn: &mut DbConnection,
        defs: &DefinitionCache,
        scope: &TenantScope,
        template: crate::domain::ids::TemplateId,
    ) -> Result<Self, ServiceError> {
        fn agree<T: PartialEq + Clone>(map: &mut HashMap<String, Option<T>>, key: &str, value: T) {
            map.entry(key.to_owned())
                .and_modify(|known| {
                    if known.as_ref() != Some(&value) {
                        *known = None;
                    }
                })
                .or_insert_with(|| Some(value.clone()));
        }
        let mut facts = Self::default();
        for number in db::templates::published_numbers(conn, scope, template)? {
            let def = defs.get(conn, scope, template, number)?;
            for (stage, state) in def.states() {
                agree(&mut facts.stage, &state.key, stage.key.clone());
                agree(&mut facts.terminal, &state.key, state.terminal);
            }
        }
        Ok(facts)
    }

    /// Whether every version agrees on which states are terminal.
    fn terminal_is_settled(&self) -> bool {
        self.terminal.values().all(Option::is_some)
    }
}

/// Tickets per `(stage, state, closed)`. The stage of a state comes from the template's
/// published versions when they all agree (then the count needs no sort by stage); otherwise
/// the stored stages are counted.
fn counts_by_stage(
    conn: &mut DbConnection,
    facts: &StateFacts,
    scope: &TenantScope,
    template: crate::domain::ids::TemplateId,
    filter: &StatsFilter,
) -> Result<Vec<db::tickets::StatsCount>, ServiceError> {
    let counts = db::tickets::stats_counts(conn, scope, template, filter)?;
    let mut out = Vec::with_capacity(counts.len());
    for (state, closed, n) in counts {
        match facts.stage.get(&state) {
            Some(Some(stage)) => out.push((stage.clone(), state, closed, n)),
            _ => {
                return Ok(db::tickets::stats_counts_by_stage(
                    conn, scope, template, filter,
                )?);
            }
        }
    }
    Ok(out)
}

/// The statistics of a template's tickets at `now`, from one snapshot.
pub fn template_stats(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    query: &StatsQuery,
    now: DateTime<Utc>,
) -> Result<Stats, ServiceError> {
    db::read_snapshot(conn, |conn| compute(conn, defs, scope, query, now))
}

fn compute(
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

    // Where the tickets are now (index-only over `tickets_stats_idx`).
    let facts = StateFacts::of(conn, defs, scope, template.id)?;
    let counts = counts_by_stage(conn, &facts, scope, template.id, &query.filter)?;
    let mut by_state: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut open_per_state: BTreeMap<String, i64> = BTreeMap::new();
    let mut now_per_state: BTreeMap<String, i64> = BTreeMap::new();
    let (mut total, mut open) = (0, 0);
    for (stage, state, closed, n) in counts {
        let count = usize::try_from(n).unwrap_or(0);
        total += count;
        if !closed {
            open += count;
            *open_per_state.entry(state.clone()).or_default() += n;
        }
        *now_per_state.entry(state.clone()).or_default() += n;
        *by_state.entry((stage, state)).or_default() += count;
    }

    // The open tickets' ages per state, by rank from whichever end of the queue is nearer.
    let mut ageing = Vec::new();
    for (state, n) in &open_per_state {
        let age_at = |conn: &mut DbConnection, rank: i64| -> Result<i64, ServiceError> {
            // Rank 1 is the youngest, i.e. the latest entry.
            let (from, offset) = if rank - 1 <= n - rank {
                (db::tickets::Entered::Latest, rank - 1)
            } else {
                (db::tickets::Entered::Earliest, n - rank)
            };
            let key = (template.id, state.as_str());
            let entered =
                db::tickets::stats_open_entered(conn, scope, key, &query.filter, from, offset)?;
            Ok(entered.map_or(0, |at| (now - at.0).num_seconds().max(0)))
        };
        ageing.push((
            state.clone(),
            Spread {
                count: usize::try_from(*n).unwrap_or(0),
                p50_seconds: age_at(conn, rank_of(*n, 0.5))?,
                p90_seconds: age_at(conn, rank_of(*n, 0.9))?,
                max_seconds: age_at(conn, *n)?,
            },
        ));
    }

    // Every state change since the range began: what the days counted, the stays that ended
    // in the range, and — walking back from now — the tickets per state at each day's end.
    // Unfiltered, with terminal states the same in every version, the history alone will do.
    let unfiltered = query.filter == StatsFilter::default() && facts.terminal_is_settled();
    let changes = if unfiltered {
        db::tickets::template_state_changes_since(conn, scope, template.id, range_start.into())?
    } else {
        db::tickets::stats_state_changes_since(
            conn,
            scope,
            template.id,
            &query.filter,
            range_start.into(),
        )?
    };
    let mut terminal: HashMap<(i32, String), bool> = HashMap::new();
    let mut created_per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    let mut closed_per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    let mut time_in_state: HashMap<String, Vec<i64>> = HashMap::new();
    // (at, state, +1 entered / -1 left)
    let mut moves: Vec<(DateTime<Utc>, &str, i64)> = Vec::with_capacity(changes.len() * 2);
    for (version, created, at, left, entered, since) in &changes {
        let at = at.0;
        let entered = entered.as_deref().unwrap_or_default();
        moves.push((at, entered, 1));
        let in_range = at >= range_start && at < range_end;
        if *created {
            if in_range {
                *created_per_day
                    .entry(at.with_timezone(&tz).date_naive())
                    .or_default() += 1;
            }
            continue;
        }
        let left = left.as_deref().unwrap_or_default();
        moves.push((at, left, -1));
        if !in_range {
            continue;
        }
        // Settled by every published version, or else by the ticket's own version (0 when
        // the history alone was read: a state no published version knows is not terminal).
        let settled = facts.terminal.get(entered).copied().flatten();
        let known = settled.or_else(|| terminal.get(&(*version, entered.to_owned())).copied());
        let is_terminal = match known {
            Some(t) => t,
            None if *version == 0 => false,
            None => {
                let def = defs.get(conn, scope, template.id, *version)?;
                let t = def.state(entered).is_some_and(|s| s.terminal);
                terminal.insert((*version, entered.to_owned()), t);
                t
            }
        };
        // A transition into a terminal state closes the ticket that day.
        if is_terminal {
            *closed_per_day
                .entry(at.with_timezone(&tz).date_naive())
                .or_default() += 1;
        }
        if let Some(since) = since {
            time_in_state
                .entry(left.to_owned())
                .or_default()
                .push((at - since.0).num_seconds());
        }
    }

    let mut days = Vec::new();
    let mut date = from;
    while date <= to {
        days.push(Day {
            date,
            created: created_per_day.get(&date).copied().unwrap_or(0),
            closed: closed_per_day.get(&date).copied().unwrap_or(0),
        });
        date = date + Days::new(1);
    }
    let flow = flow_back(now_per_state, moves, tz, (from, to), now);
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
        total,
        open,
        by_state: by_state
            .into_iter()
            .map(|((stage, state), n)| (stage, state, n))
            .collect(),
        ageing,
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
