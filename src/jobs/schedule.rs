//! The runner's decisions, as plain functions of their inputs (no clock, no randomness: `now`
//! and the jitter come in): back-off, lease expiry, and what a handler's outcome does to the
//! row.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::JobOutcome;

/// The first retry waits about this long; each further one twice as long as the one before.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// No retry waits longer than this (unless the handler asks for it).
pub const BACKOFF_CAP: Duration = Duration::from_secs(3_600);
/// The shortest wait before a retry, also when a handler asks for none: a job retried within
/// one `run_due` call would otherwise be run again by it.
pub const MIN_RETRY: Duration = Duration::from_secs(1);
/// `last_error` is cut to this many characters.
pub const MAX_ERROR_CHARS: usize = 500;

/// The wait before the retry that follows failed attempt number `attempt` (1 = the first
/// run): exponential from [`BACKOFF_BASE`], capped at [`BACKOFF_CAP`], with "equal jitter" —
/// half of it fixed, half spread by `jitter` in `[0, 1)` — so retries of jobs that failed
/// together spread out, and below the cap each wait is still longer than the one before.
pub fn backoff(attempt: i32, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = BACKOFF_BASE
        .checked_mul(1u32 << exponent)
        .unwrap_or(BACKOFF_CAP)
        .min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// Until when a claim made at `now` holds its job.
pub fn lease_until(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    later(now, lease)
}

/// `now` moved on by `by` (saturating).
pub fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    now.checked_add_signed(to_delta(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether a job with this lease may be claimed at `now`: never leased, or the lease is over
/// (the claim query says the same in SQL).
pub fn lease_expired(lease_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    lease_until.is_none_or(|until| until < now)
}

/// What becomes of a job's row after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A one-off job that is done: the row goes.
    Delete,
    /// Run again at `run_at`: a retry (attempts kept), or a recurring job's next turn
    /// (attempts start again).
    Reschedule {
        run_at: DateTime<Utc>,
        reset_attempts: bool,
        error: Option<String>,
    },
    /// Given up: kept with `failed_at` and the error.
    Fail { error: String },
    /// Nothing to write: the handler deleted its row itself ([`JobOutcome::Closed`]).
    Nothing,
}

/// The row's next state after attempt `attempt` of `max_attempts` ended with `outcome` at
/// `now`. A recurring job (`every`) is never given up: after success, a refusal or its last
/// attempt it comes back `every` later.
pub fn next_step(
    outcome: &JobOutcome,
    attempt: i32,
    max_attempts: i32,
    every: Option<Duration>,
    now: DateTime<Utc>,
    jitter: f64,
) -> Next {
    let next_turn = |error: Option<String>| {
        every.map(|every| Next::Reschedule {
            run_at: later(now, every),
            reset_attempts: true,
            error,
        })
    };
    match outcome {
        JobOutcome::Done => next_turn(None).unwrap_or(Next::Delete),
        JobOutcome::Retry { after, error } if attempt < max_attempts => {
            let wait = after
                .unwrap_or_else(|| backoff(attempt, jitter))
                .max(MIN_RETRY);
            Next::Reschedule {
                run_at: later(now, wait),
                reset_attempts: false,
                error: Some(bounded_error(error)),
            }
        }
        JobOutcome::Again { after } => Next::Reschedule {
            run_at: later(now, (*after).max(MIN_RETRY)),
            reset_attempts: true,
            error: None,
        },
        JobOutcome::Closed => Next::Nothing,
        JobOutcome::Continue => Next::Reschedule {
            run_at: now,
            reset_attempts: true,
            error: None,
        },
        JobOutcome::Retry { error, .. } | JobOutcome::Failed { reason: error } => {
            let error = bounded_error(error);
            next_turn(Some(error.clone())).unwrap_or(Next::Fail { error })
        }
    }
}

/// An error cut to [`MAX_ERROR_CHARS`] characters (on a character boundary).
pub fn bounded_error(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((at, _)) => format!("{}…", &error[..at]),
        None => error.to_owned(),
    }
}

fn to_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(2_500));
        assert!(backoff(1, 0.999_999) < Duration::from_secs(5));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(3, 0.5), Duration::from_millis(15_000));
        assert_eq!(backoff(30, 0.0), BACKOFF_CAP / 2);
        assert_eq!(backoff(i32::MAX, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(0, 0.0), backoff(1, 0.0));
        // Below the cap, whatever the jitter, a later retry never waits less than an earlier one.
        for attempt in 1..10 {
            assert!(
                backoff(attempt, 0.999) <= backoff(attempt + 1, 0.0),
                "{attempt}"
            );
        }
    }

    #[test]
    fn a_lease_expires_only_after_its_end() {
        let until = lease_until(at(0), Duration::from_secs(60));
        assert_eq!(until, at(60));
        assert!(lease_expired(None, at(0)));
        assert!(!lease_expired(Some(until), at(59)));
        assert!(!lease_expired(Some(until), at(60)));
        assert!(lease_expired(Some(until), at(61)));
    }

    #[test]
    fn outcomes_of_one_off_jobs() {
        assert_eq!(
            next_step(&JobOutcome::Done, 1, 3, None, at(0), 0.5),
            Next::Delete
        );
        let retry = JobOutcome::Retry {
            after: None,
            error: "502 from receiver".into(),
        };
        assert_eq!(
            next_step(&retry, 1, 3, None, at(0), 0.0),
            Next::Reschedule {
                run_at: at(0) + TimeDelta::milliseconds(2_500),
                reset_attempts: false,
                error: Some("502 from receiver".into()),
            }
        );
        assert_eq!(
            next_step(&retry, 3, 3, None, at(0), 0.0),
            Next::Fail {
                error: "502 from receiver".into()
            }
        );
        let refused = JobOutcome::Failed {
            reason: "gone".into(),
        };
        assert_eq!(
            next_step(&refused, 1, 3, None, at(0), 0.0),
            Next::Fail {
                error: "gone".into()
            }
        );
    }

    #[test]
    fn a_handler_may_set_the_wait_but_not_below_the_minimum() {
        let after = |seconds| JobOutcome::Retry {
            after: Some(Duration::from_secs(seconds)),
            error: "429".into(),
        };
        let run_at = |next| match next {
            Next::Reschedule { run_at, .. } => run_at,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            run_at(next_step(&after(120), 1, 5, None, at(0), 0.9)),
            at(120)
        );
        assert_eq!(run_at(next_step(&after(0), 1, 5, None, at(0), 0.9)), at(1));
    }

    #[test]
    fn again_runs_later_without_counting_an_attempt() {
        let again = |seconds| JobOutcome::Again {
            after: Duration::from_secs(seconds),
        };
        // Continue: due at once, attempts reset.
        assert_eq!(
            next_step(&JobOutcome::Continue, 8, 8, None, at(0), 0.5),
            Next::Reschedule {
                run_at: at(0),
                reset_attempts: true,
                error: None
            }
        );
        // Even at its last attempt, and with the attempts reset: not a failure.
        assert_eq!(
            next_step(&again(60), 8, 8, None, at(0), 0.5),
            Next::Reschedule {
                run_at: at(60),
                reset_attempts: true,
                error: None
            }
        );
        assert_eq!(
            next_step(&again(0), 1, 8, None, at(0), 0.5),
            Next::Reschedule {
                run_at: at(1),
                reset_attempts: true,
                error: None
            }
        );
    }

    #[test]
    fn recurring_jobs_come_back_whatever_happened() {
        let every = Some(Duration::from_secs(60));
        assert_eq!(
            next_step(&JobOutcome::Done, 4, 5, every, at(0), 0.0),
            Next::Reschedule {
                run_at: at(60),
                reset_attempts: true,
                error: None
            }
        );
        let retry = JobOutcome::Retry {
            after: None,
            error: "db".into(),
        };
        assert!(matches!(
            next_step(&retry, 1, 5, every, at(0), 0.0),
            Next::Reschedule {
                reset_attempts: false,
                ..
            }
        ));
        assert_eq!(
            next_step(&retry, 5, 5, every, at(0), 0.0),
            Next::Reschedule {
                run_at: at(60),
                reset_attempts: true,
                error: Some("db".into())
            }
        );
    }

    #[test]
    fn errors_are_bounded_on_a_character_boundary() {
        assert_eq!(bounded_error("short"), "short");
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let cut = bounded_error(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
