//! SLA clocks, replayed from a ticket's history: which states ran the clock, paused it or
//! stopped it (each state's `sla` in the template version), measured in business time on a
//! calendar. The same replay serves writes (the stored projection the breach job reads),
//! reads, and a policy or calendar change. docs/sla.md.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::calendar::Calendar;
use super::closed_set::closed_set;
use super::template::SlaCategory;

closed_set! {
    /// What an SLA target measures.
    pub enum Target {
        /// From filing to the first response (the first transition, or the first public
        /// comment by someone other than the requester).
        FirstResponse = "first_response",
        /// From filing to a state whose `sla` is `stopped`.
        Resolution = "resolution",
    }
}

closed_set! {
    /// Where a clock is.
    pub enum ClockStatus {
        /// Counting business time.
        Running = "running",
        /// In a state that pauses the clock.
        Paused = "paused",
        /// Stopped within the target.
        Met = "met",
        /// Stopped after the target (or still open past it: see `breached`).
        Breached = "breached",
    }
}

/// From the history: from `at` on, the ticket was in a state of this category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub at: DateTime<Utc>,
    pub sla: SlaCategory,
}

/// One clock, replayed up to an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clock {
    pub started_at: DateTime<Utc>,
    /// Business time counted up to `as_of`.
    pub elapsed: TimeDelta,
    pub as_of: DateTime<Utc>,
    /// Counting at `as_of`.
    pub running: bool,
    /// When it stopped (the response, or a stopping state); `None` while open.
    pub stopped_at: Option<DateTime<Utc>>,
    /// When elapsed time reached the at-risk share of the target: past, or projected while
    /// running; `None` if it has not and (paused or stopped) will not.
    pub at_risk_at: Option<DateTime<Utc>>,
    /// When elapsed time reached the target: past, or projected while running.
    pub breach_at: Option<DateTime<Utc>>,
}

impl Clock {
    /// The status at `as_of`.
    pub fn status(&self) -> ClockStatus {
        let breached = self.breach_at.is_some_and(|b| b <= self.as_of);
        match (self.stopped_at, self.running) {
            (Some(_), _) if breached => ClockStatus::Breached,
            (Some(_), _) => ClockStatus::Met,
            (None, true) => ClockStatus::Running,
            (None, false) => ClockStatus::Paused,
        }
    }

    /// Whether the target is missed (open past it, or stopped after it).
    pub fn breached(&self) -> bool {
        self.breach_at.is_some_and(|b| b <= self.as_of)
    }

    /// The due time: when the target is reached if the clock keeps running (the breach
    /// instant, past or projected); `None` while paused before the target or once met.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        self.breach_at
    }

    /// The clock as it is at a later instant, without a write in between (the history did
    /// not change): a running clock keeps counting.
    pub fn at(&self, calendar: &Calendar, now: DateTime<Utc>) -> Clock {
        let mut later = self.clone();
        if self.running && now > self.as_of {
            later.elapsed += calendar.between(self.as_of, now);
        }
        later.as_of = now.max(self.as_of);
        later
    }
}

/// What a replay needs besides the phases.
#[derive(Debug, Clone, Copy)]
pub struct Goal<'a> {
    pub target: TimeDelta,
    /// The share of the target (1–99 %) after which the clock is at risk.
    pub at_risk_percent: u8,
    pub calendar: &'a Calendar,
}

/// Replays a clock over the phases (in time order, the first one the filing) up to `now`;
/// `stop` ends it early (the first response). A stopping state ends it; leaving one again
/// (reopening) lets it count on.
pub fn replay(
    goal: Goal<'_>,
    phases: &[Phase],
    stop: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Clock> {
    let first = phases.first()?;
    let risk = goal.target * i32::from(goal.at_risk_percent.clamp(1, 99)) / 100;
    let end = stop.map_or(now, |s| s.min(now));
    let mut clock = Clock {
        started_at: first.at,
        elapsed: TimeDelta::zero(),
        as_of: now,
        running: false,
        stopped_at: None,
        at_risk_at: None,
        breach_at: None,
    };
    let crossing = |from: DateTime<Utc>, to: DateTime<Utc>, clock: &mut Clock| {
        let span = goal.calendar.between(from, to);
        for (threshold, slot) in [
            (risk, &mut clock.at_risk_at),
            (goal.target, &mut clock.breach_at),
        ] {
            if slot.is_none() && clock.elapsed < threshold && clock.elapsed + span >= threshold {
                *slot = goal.calendar.add(from, threshold - clock.elapsed);
            }
        }
        clock.elapsed += span;
    };
    for (i, phase) in phases.iter().enumerate() {
        if phase.at > end {
            break;
        }
        let until = phases.get(i + 1).map_or(end, |next| next.at.min(end));
        clock.running = phase.sla == SlaCategory::Running;
        clock.stopped_at = (phase.sla == SlaCategory::Stopped).then_some(phase.at);
        if clock.running {
            crossing(phase.at, until, &mut clock);
        }
    }
    if let Some(s) = stop.filter(|s| *s <= now)
        && clock.stopped_at.is_none()
    {
        clock.stopped_at = Some(s);
    }
    if let Some(stopped) = clock.stopped_at {
        clock.running = false;
        // Stopping at the very instant the target is reached is in time.
        if clock.breach_at == Some(stopped) {
            clock.breach_at = None;
        }
    }
    if clock.running {
        // Projected: when the thresholds are reached if it keeps running.
        for (threshold, slot) in [
            (risk, &mut clock.at_risk_at),
            (goal.target, &mut clock.breach_at),
        ] {
            if slot.is_none() {
                *slot = goal.calendar.add(now, threshold - clock.elapsed);
            }
        }
    }
    Some(clock)
}

#[cfg(test)]
mod tests;
