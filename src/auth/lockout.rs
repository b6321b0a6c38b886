//! The lock-out rule: `threshold` failed logins within `window` lock an account for
//! `duration`. Pure: the caller reads the account's [`LoginState`] under a row lock, asks the
//! rule, and writes the answer back in the same transaction, so concurrent failures are all
//! counted and the lock engages at exactly the threshold.

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::Config;
use crate::db::users::LoginState;

fn to_delta(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    pub threshold: i32,
    pub window: TimeDelta,
    pub duration: TimeDelta,
}

impl LockoutRule {
    pub fn from_config(config: &Config) -> Self {
        Self {
            threshold: config.lockout_threshold,
            window: to_delta(config.lockout_window),
            duration: to_delta(config.lockout_duration),
        }
    }

    /// Whether the account is locked at `now`.
    pub fn is_locked(state: &LoginState, now: DateTime<Utc>) -> bool {
        state.locked_until.is_some_and(|until| until.0 > now)
    }

    /// The state after one more failed password at `now`. Reaching the threshold locks the
    /// account and starts the count over.
    pub fn register_failure(&self, state: &LoginState, now: DateTime<Utc>) -> LoginState {
        let (count, start) = match state.failure_window_at {
            Some(start) if now - start.0 < self.window => (state.failed_logins + 1, start.0),
            _ => (1, now),
        };
        if count >= self.threshold {
            LoginState {
                failed_logins: 0,
                failure_window_at: Some(now.into()),
                locked_until: Some((now + self.duration).into()),
            }
        } else {
            LoginState {
                failed_logins: count,
                failure_window_at: Some(start.into()),
                locked_until: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minutes)
    }

    fn rule() -> LockoutRule {
        LockoutRule {
            threshold: 5,
            window: TimeDelta::minutes(15),
            duration: TimeDelta::minutes(15),
        }
    }

    #[test]
    fn five_failures_in_the_window_lock() {
        let mut state = LoginState::default();
        for minute in 0..4 {
            state = rule().register_failure(&state, at(minute));
            assert!(state.locked_until.is_none());
        }
        assert_eq!(state.failed_logins, 4);
        let locked = rule().register_failure(&state, at(5));
        assert_eq!(locked.locked_until, Some(at(20).into()));
        assert_eq!(locked.failed_logins, 0);
        assert!(LockoutRule::is_locked(&locked, at(19)));
        assert!(!LockoutRule::is_locked(&locked, at(20)));
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let state = LoginState {
            failed_logins: 4,
            failure_window_at: Some(at(0).into()),
            locked_until: None,
        };
        let next = rule().register_failure(&state, at(15));
        assert_eq!(next.failed_logins, 1);
        assert!(next.locked_until.is_none());
    }
}
