//! Readiness of the node: the database answers and its schema is the one this binary expects;
//! and the state of the virus scanner, which is reported but never makes the node unready
//! (mail it cannot scan waits as `pending`, nothing is lost; docs/mail.md, "Scanner health").

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::DiskLimits;
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

/// A blocking ping's last answer, reused for a while. One ping runs at a time: callers
/// arriving meanwhile wait for its answer instead of starting their own.
#[derive(Debug)]
pub struct CachedPing<T> {
    last: tokio::sync::Mutex<Option<(DateTime<Utc>, T)>>,
}

impl<T> Default for CachedPing<T> {
    fn default() -> Self {
        Self {
            last: tokio::sync::Mutex::new(None),
        }
    }
}

impl<T: Clone + Send + 'static> CachedPing<T> {
    /// The answer as of `now`: the last one while younger than `ttl`, else `ping`'s (run on
    /// the blocking pool; `lost` stands in when it does not finish).
    pub async fn get(
        &self,
        now: DateTime<Utc>,
        ttl: TimeDelta,
        ping: impl FnOnce() -> T + Send + 'static,
        lost: T,
    ) -> T {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && now >= *at
            && now - *at < ttl
        {
            return answer.clone();
        }
        let answer = tokio::task::spawn_blocking(ping).await.unwrap_or(lost);
        *last = Some((now, answer.clone()));
        answer
    }
}

/// The node's last scanner ping, reused for [`PING_TTL`].
#[derive(Debug, Default)]
pub struct ScannerProbe {
    ping: CachedPing<ScannerHealth>,
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
        let scanner = Scanner::new(address.clone(), PING_TIMEOUT, 0);
        let ping = move || match scanner.ping() {
            Ok(()) => ScannerHealth::Up,
            Err(error) => ScannerHealth::Down {
                reason: error.to_string(),
            },
        };
        let lost = ScannerHealth::Down {
            reason: "the health ping did not finish".to_owned(),
        };
        self.ping.get(now, PING_TTL, ping, lost).await
    }
}

/// How long an SMTP ping's answer is reused: a connection and EHLO cost the server more than
/// a clamd PING.
pub const SMTP_PING_TTL: TimeDelta = TimeDelta::seconds(30);

/// One dependency of the node as its last check found it (`/readyz`, the operator's alerts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    Up,
    /// Working, but needing attention soon (disk space running low).
    Degraded(String),
    /// Not working; the reason names no address or path.
    Down(String),
    /// Not set up on this node.
    NotConfigured,
}

impl From<&ScannerHealth> for Dependency {
    fn from(health: &ScannerHealth) -> Self {
        match health {
            ScannerHealth::Up => Self::Up,
            ScannerHealth::NotConfigured => Self::NotConfigured,
            ScannerHealth::Down { reason } => Self::Down(reason.clone()),
        }
    }
}

/// The node's last SMTP ping (a connection, EHLO, NOOP), reused for [`SMTP_PING_TTL`].
#[derive(Debug, Default)]
pub struct SmtpProbe {
    ping: CachedPing<Dependency>,
}

impl SmtpProbe {
    /// The SMTP server of `mailer` (`None`: not configured) as of `now`.
    pub async fn check(
        &self,
        mailer: Option<&std::sync::Arc<crate::mailer::Mailer>>,
        now: DateTime<Utc>,
    ) -> Dependency {
        let Some(mailer) = mailer.cloned() else {
            return Dependency::NotConfigured;
        };
        let ping = move || match mailer.ping() {
            Ok(()) => Dependency::Up,
            Err(error) => {
                log::warn!("SMTP health ping failed: {error}");
                Dependency::Down("the SMTP server did not accept a connection".to_owned())
            }
        };
        let lost = Dependency::Down("the SMTP health ping did not finish".to_owned());
        self.ping.get(now, SMTP_PING_TTL, ping, lost).await
    }
}

/// The free space of the file system holding `path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Free for this process (blocks available to unprivileged users).
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// The attachment disk (`STAGEFLOW_DATA_DIR`) against `limits`; blocking (one `statvfs`).
pub fn disk(path: &std::path::Path, limits: DiskLimits) -> (Dependency, Option<DiskSpace>) {
    let stat = match rustix::fs::statvfs(path) {
        Ok(stat) => stat,
        Err(error) => {
            log::warn!("disk check of the data directory failed: {error}");
            return (
                Dependency::Down("the data directory cannot be examined".to_owned()),
                None,
            );
        }
    };
    let space = DiskSpace {
        free_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
    };
    let state = if space.free_bytes < limits.min_free_bytes {
        Dependency::Down(format!(
            "{} MiB free for attachments, below the {} MiB minimum",
            space.free_bytes >> 20,
            limits.min_free_bytes >> 20
        ))
    } else if space.free_bytes < limits.low_free_bytes {
        Dependency::Degraded(format!(
            "{} MiB free for attachments, below the {} MiB warning level",
            space.free_bytes >> 20,
            limits.low_free_bytes >> 20
        ))
    } else {
        Dependency::Up
    };
    (state, Some(space))
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
    /// The job queue per kind.
    pub jobs: Vec<db::jobs::KindQueue>,
    /// The connection pool: open, idle, most.
    pub pool: (u32, u32, u32),
}

/// Gathers the metrics read at scrape time: the (cached) scanner state, the scan counters,
/// the pool, and a few grouped counts.
pub async fn metrics(
    db: &Database,
    probe: &ScannerProbe,
    address: Option<&ScannerAddress>,
    now: DateTime<Utc>,
) -> Result<Metrics, DbError> {
    let scanner = probe.check(address, now).await;
    let (mail_pending, last_backup, jobs) = db
        .read(move |conn| {
            let pending = db::mail::count_pending(conn)?;
            let backup = db::backup::last_success(conn)?;
            let jobs = db::jobs::queue_by_kind(conn, now.into())?;
            Ok::<_, DbError>((pending, backup, jobs))
        })
        .await?;
    Ok(Metrics {
        scanner,
        scans: crate::scanner::scan_counts(),
        mail_pending,
        last_backup,
        jobs,
        pool: db.pool_state(),
    })
}
