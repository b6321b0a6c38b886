//! Readiness of the node: the database answers and its schema is the one this binary expects;
//! and the state of the virus scanner, which is reported but never makes the node unready
//! (mail it cannot scan waits as `pending`, nothing is lost; docs/mail.md, "Scanner health").

use chrono::{DateTime, TimeDelta, Utc};

use crate::db::{self, Database, DbConnection, DbError};
use crate::scanner::{ScanCounts, Scanner, ScannerAddress};

/// Whether migrations this binary knows are still pending; an error when the database does not
/// answer.
pub fn schema_pending(conn: &mut DbConnection) -> Result<bool, DbError> {
    use diesel::r2d2::R2D2Connection;
    conn.ping().map_err(DbError::from)?;
    db::migrations::has_pending(conn)
}

/// The deadline of one health ping: far below a load balancer's probe timeout.
pub const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a ping's answer is reused: probes and scrapes never reach clamd more often.
pub const PING_TTL: TimeDelta = TimeDelta::seconds(5);

/// What the node knows of its virus scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerHealth {
    /// No `STAGEFLOW_CLAMD`: every message waits as `pending`.
    NotConfigured,
    Up,
    /// The reason is [`crate::scanner::ScanError`]'s text: no paths, no addresses.
    Down {
        reason: String,
    },
}

/// The node's last scanner ping, reused for [`PING_TTL`]. One ping runs at a time: callers
/// arriving meanwhile wait for its answer instead of starting their own.
#[derive(Debug, Default)]
pub struct ScannerProbe {
    last: tokio::sync::Mutex<Option<(DateTime<Utc>, ScannerHealth)>>,
}

impl ScannerProbe {
    /// The scanner at `address` (`None`: not configured) as of `now`, pinging it when the
    /// last answer is older than [`PING_TTL`].
    pub async fn check(
        &self,
        address: Option<&ScannerAddress>,
        now: DateTime<Utc>,
    ) -> ScannerHealth {
        let Some(address) = address else {
            return ScannerHealth::NotConfigured;
        };
        let mut last = self.last.lock().await;
        if let Some((at, health)) = last.as_ref()
            && now >= *at
            && now - *at < PING_TTL
        {
            return health.clone();
        }
        let scanner = Scanner::new(address.clone(), PING_TIMEOUT, 0);
        let health = match tokio::task::spawn_blocking(move || scanner.ping()).await {
            Ok(Ok(())) => ScannerHealth::Up,
            Ok(Err(error)) => ScannerHealth::Down {
                reason: error.to_string(),
            },
            Err(_) => ScannerHealth::Down {
                reason: "the health ping did not finish".to_owned(),
            },
        };
        *last = Some((now, health.clone()));
        health
    }
}

/// What `/metrics` shows: node-wide figures only, no tenant's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub scanner: ScannerHealth,
    /// Scans this process ran, by verdict.
    pub scans: ScanCounts,
    /// Incoming mail waiting for a scan, every tenant together.
    pub mail_pending: i64,
    /// The newest successful backup run; `None`: none recorded.
    pub last_backup: Option<crate::db::backup::BackupRunRow>,
}

/// Gathers the metrics: the (cached) scanner state, the scan counters and one count query.
pub async fn metrics(
    db: &Database,
    probe: &ScannerProbe,
    address: Option<&ScannerAddress>,
    now: DateTime<Utc>,
) -> Result<Metrics, DbError> {
    let scanner = probe.check(address, now).await;
    let (mail_pending, last_backup) = db
        .read(|conn| {
            let pending = db::mail::count_pending(conn)?;
            let backup = db::backup::last_success(conn)?;
            Ok::<_, DbError>((pending, backup))
        })
        .await?;
    Ok(Metrics {
        scanner,
        scans: crate::scanner::scan_counts(),
        mail_pending,
        last_backup,
    })
}
