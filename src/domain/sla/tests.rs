use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::domain::calendar::{Calendar, Rules, Week, always};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn tokyo() -> Calendar {
    let rules = Rules {
        working_hours: Week::office(),
        japanese_holidays: true,
        closures: Vec::new(),
        exceptions: Vec::new(),
    };
    Calendar::new("Asia/Tokyo", &rules).unwrap()
}

fn phase(text: &str, sla: SlaCategory) -> Phase {
    Phase { at: at(text), sla }
}

fn goal(calendar: &Calendar, hours: i64) -> Goal<'_> {
    Goal {
        target: TimeDelta::hours(hours),
        at_risk_percent: 75,
        calendar,
    }
}

#[test]
fn a_running_clock_projects_its_due_time_over_nights_and_holidays() {
    let cal = tokyo();
    // Filed Friday 1 May 2026 at 16:00 JST with a 4-business-hour target: 2 hours on
    // Friday, then Golden Week and the substitute holiday (6 May), due Thursday 11:00 JST.
    let phases = [phase("2026-05-01T07:00:00Z", SlaCategory::Running)];
    let now = at("2026-05-02T00:00:00Z");
    let clock = replay(goal(&cal, 4), &phases, None, now).unwrap();
    assert_eq!(clock.elapsed, TimeDelta::hours(2));
    assert!(clock.running);
    assert_eq!(clock.status(), ClockStatus::Running);
    assert_eq!(clock.due_at(), Some(at("2026-05-07T02:00:00Z")));
    // At risk at 75 %: 3 hours, Thursday 10:00 JST.
    assert_eq!(clock.at_risk_at, Some(at("2026-05-07T01:00:00Z")));
    assert!(!clock.breached());
    // Thursday noon JST: breached, and the stored projection says so without a write.
    let later = clock.at(&cal, at("2026-05-07T03:00:00Z"));
    assert!(later.breached());
    assert_eq!(later.elapsed, TimeDelta::hours(5));
}

#[test]
fn a_pause_holds_the_clock_and_the_rest_counts_on_resume() {
    let cal = always();
    let phases = [
        phase("2026-04-01T00:00:00Z", SlaCategory::Running),
        phase("2026-04-01T01:00:00Z", SlaCategory::Paused),
        phase("2026-04-03T00:00:00Z", SlaCategory::Running),
    ];
    let paused = replay(
        goal(&cal, 4),
        &phases[..2],
        None,
        at("2026-04-02T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(paused.status(), ClockStatus::Paused);
    assert_eq!(paused.elapsed, TimeDelta::hours(1));
    assert_eq!(paused.due_at(), None);
    assert_eq!(
        paused.at(&cal, at("2026-04-05T00:00:00Z")).elapsed,
        TimeDelta::hours(1)
    );
    let resumed = replay(goal(&cal, 4), &phases, None, at("2026-04-03T01:00:00Z")).unwrap();
    assert_eq!(resumed.elapsed, TimeDelta::hours(2));
    assert_eq!(resumed.due_at(), Some(at("2026-04-03T03:00:00Z")));
    assert_eq!(resumed.at_risk_at, Some(at("2026-04-03T02:00:00Z")));
}

#[test]
fn stopping_in_time_is_met_and_late_is_breached() {
    let cal = always();
    let filed = phase("2026-04-01T00:00:00Z", SlaCategory::Running);
    let met = [filed, phase("2026-04-01T03:00:00Z", SlaCategory::Stopped)];
    let clock = replay(goal(&cal, 4), &met, None, at("2026-04-09T00:00:00Z")).unwrap();
    assert_eq!(clock.status(), ClockStatus::Met);
    assert_eq!(clock.stopped_at, Some(at("2026-04-01T03:00:00Z")));
    assert_eq!(clock.elapsed, TimeDelta::hours(3));
    assert_eq!(clock.at_risk_at, Some(at("2026-04-01T03:00:00Z")));
    assert_eq!(clock.breach_at, None);
    let late = [filed, phase("2026-04-01T05:00:00Z", SlaCategory::Stopped)];
    let clock = replay(goal(&cal, 4), &late, None, at("2026-04-09T00:00:00Z")).unwrap();
    assert_eq!(clock.status(), ClockStatus::Breached);
    assert_eq!(clock.breach_at, Some(at("2026-04-01T04:00:00Z")));
}

#[test]
fn the_first_response_stops_its_clock() {
    let cal = always();
    let phases = [phase("2026-04-01T00:00:00Z", SlaCategory::Running)];
    let response = Some(at("2026-04-01T00:30:00Z"));
    let clock = replay(goal(&cal, 1), &phases, response, at("2026-04-02T00:00:00Z")).unwrap();
    assert_eq!(clock.status(), ClockStatus::Met);
    assert_eq!(clock.elapsed, TimeDelta::minutes(30));
    // Before the response happened, the clock still ran.
    let before = replay(goal(&cal, 1), &phases, response, at("2026-04-01T00:10:00Z")).unwrap();
    assert_eq!(before.status(), ClockStatus::Running);
}

#[test]
fn reopening_lets_the_clock_count_on() {
    let cal = always();
    let phases = [
        phase("2026-04-01T00:00:00Z", SlaCategory::Running),
        phase("2026-04-01T01:00:00Z", SlaCategory::Stopped),
        phase("2026-04-02T00:00:00Z", SlaCategory::Running),
    ];
    let clock = replay(goal(&cal, 2), &phases, None, at("2026-04-02T00:30:00Z")).unwrap();
    assert_eq!(clock.status(), ClockStatus::Running);
    assert_eq!(clock.elapsed, TimeDelta::minutes(90));
    assert_eq!(clock.due_at(), Some(at("2026-04-02T01:00:00Z")));
}

#[test]
fn no_phases_no_clock() {
    let cal = always();
    assert_eq!(
        replay(goal(&cal, 1), &[], None, at("2026-04-01T00:00:00Z")),
        None
    );
}

#[test]
fn stopping_exactly_at_the_target_is_in_time() {
    let cal = always();
    let phases = [
        phase("2026-04-01T00:00:00Z", SlaCategory::Running),
        phase("2026-04-01T04:00:00Z", SlaCategory::Stopped),
    ];
    let clock = replay(goal(&cal, 4), &phases, None, at("2026-04-02T00:00:00Z")).unwrap();
    assert_eq!(clock.status(), ClockStatus::Met);
    assert_eq!(clock.breach_at, None);
}
