//! Request-rate limits of the session endpoints, per client address and per account.
//!
//! Logins, refreshes, logouts and password changes cost a password hash or a database write
//! each, and they are reachable without (or with little) proof of identity. Each request is
//! checked against a limit per client address (one host cannot flood) and one per account or
//! principal (many hosts together cannot hammer one account). Limits are token buckets
//! (governor's GCRA) allowing a burst of the per-minute figure.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AuthError;
use crate::config::Config;
use crate::domain::ids::EntityId;

/// Which per-address limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressLimit {
    /// `POST /auth/token` (`STAGEFLOW_LOGIN_RATE_PER_MINUTE`).
    Login,
    /// Refresh, logout and password change (`STAGEFLOW_SESSION_RATE_PER_MINUTE`).
    Session,
}

/// The limiters of the running server, shared by all workers (cloning shares them).
#[derive(Clone)]
pub struct RateLimits(Arc<Limiters>);

struct Limiters {
    login_by_address: DefaultKeyedRateLimiter<String>,
    session_by_address: DefaultKeyedRateLimiter<String>,
    /// Keyed `login:<tenant>:<username>` for token requests and `session:<subject id>` for the
    /// other session requests, so the two do not share a bucket.
    by_account: DefaultKeyedRateLimiter<String>,
}

fn per_minute(variable: &str, value: u32) -> Result<Quota, String> {
    NonZeroU32::new(value)
        .map(Quota::per_minute)
        .ok_or_else(|| format!("{variable} must be positive"))
}

impl RateLimits {
    pub fn new(config: &Config) -> Result<Self, String> {
        Ok(Self(Arc::new(Limiters {
            login_by_address: RateLimiter::keyed(per_minute(
                "STAGEFLOW_LOGIN_RATE_PER_MINUTE",
                config.login_rate_per_minute,
            )?),
            session_by_address: RateLimiter::keyed(per_minute(
                "STAGEFLOW_SESSION_RATE_PER_MINUTE",
                config.session_rate_per_minute,
            )?),
            by_account: RateLimiter::keyed(per_minute(
                "STAGEFLOW_ACCOUNT_RATE_PER_MINUTE",
                config.account_rate_per_minute,
            )?),
        })))
    }

    /// Counts a request from `client_addr` (an unknown address shares one bucket).
    pub fn check_address(
        &self,
        limit: AddressLimit,
        client_addr: Option<&str>,
    ) -> Result<(), AuthError> {
        let limiter = match limit {
            AddressLimit::Login => &self.0.login_by_address,
            AddressLimit::Session => &self.0.session_by_address,
        };
        check(limiter, client_addr.unwrap_or_default().to_owned())
    }

    /// Counts a token request for `username` in the tenant `tenant` (the slug; none for the
    /// operator). Both are taken in their canonical form (NFKC, lowercase), as accounts are,
    /// so a guesser varying case or width still hits one bucket.
    pub fn check_login(&self, tenant: Option<&str>, username: &str) -> Result<(), AuthError> {
        use crate::domain::credentials::canonical_name;
        let tenant = canonical_name(tenant.unwrap_or_default());
        let key = format!("login:{tenant}:{}", canonical_name(username));
        check(&self.0.by_account, key)
    }

    /// Counts a session request (refresh, logout, password change) of the account `subject`.
    pub fn check_subject(&self, subject: EntityId) -> Result<(), AuthError> {
        check(
            &self.0.by_account,
            format!("session:{}", subject.0.simple()),
        )
    }

    /// Forgets buckets that are full again, so memory stays bounded by recent callers.
    pub fn retain_recent(&self) {
        self.0.login_by_address.retain_recent();
        self.0.session_by_address.retain_recent();
        self.0.by_account.retain_recent();
    }
}

fn check(limiter: &DefaultKeyedRateLimiter<String>, key: String) -> Result<(), AuthError> {
    limiter.check_key(&key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        AuthError::RateLimited {
            retry_after_seconds: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32) -> RateLimits {
        let mut config = Config::from_lookup(|_| None).unwrap();
        config.login_rate_per_minute = per_minute;
        config.session_rate_per_minute = per_minute;
        config.account_rate_per_minute = per_minute;
        RateLimits::new(&config).unwrap()
    }

    #[test]
    fn accounts_are_limited_apart_and_case_insensitively() {
        let limits = limits(2);
        assert!(limits.check_login(Some("acme"), "Yamada").is_ok());
        assert!(limits.check_login(Some("ACME"), "yamada").is_ok());
        let refused = limits.check_login(Some("acme"), "YAMADA");
        assert!(matches!(
            refused,
            Err(AuthError::RateLimited { retry_after_seconds }) if (1..=60).contains(&retry_after_seconds)
        ));
        assert!(limits.check_login(Some("other"), "yamada").is_ok());
        assert!(limits.check_login(None, "yamada").is_ok());
    }

    #[test]
    fn sessions_and_logins_have_their_own_buckets() {
        let limits = limits(1);
        let subject = EntityId(uuid::Uuid::nil());
        assert!(limits.check_subject(subject).is_ok());
        assert!(limits.check_subject(subject).is_err());
        assert!(
            limits
                .check_address(AddressLimit::Login, Some("192.0.2.1"))
                .is_ok()
        );
        assert!(
            limits
                .check_address(AddressLimit::Session, Some("192.0.2.1"))
                .is_ok()
        );
        assert!(
            limits
                .check_address(AddressLimit::Session, Some("192.0.2.1"))
                .is_err()
        );
    }
}
