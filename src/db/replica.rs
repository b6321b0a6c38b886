//! A read replica: a PostgreSQL streaming standby of the primary that serves the heavy reads
//! (lists, searches, exports, statistics, reports) when it can do so without showing a caller
//! older data than it may see (docs/DEPLOYMENT.md, "Primary and read replicas"; ADR-31).
//!
//! A read goes to the replica only when all of these hold, and to the primary otherwise:
//! - the caller did not ask for fresh data (`Cache-Control: no-cache`);
//! - the replica's last check (every `STAGEFLOW_REPLICA_CHECK_MILLIS`) found it streaming and
//!   at most `STAGEFLOW_REPLICA_MAX_LAG_MS` behind;
//! - the caller wrote nothing in the last `STAGEFLOW_READ_YOUR_WRITES_SECONDS`, or the replica
//!   has replayed the primary's WAL past the position recorded right after that write (the
//!   caller's *write mark*, kept on the primary so every node sees it).
//!
//! Writes, reads inside a write, and everything not routed here explicitly (events, jobs,
//! single-resource reads) stay on the primary. A replica that cannot be reached is marked down
//! at once and the read is served by the primary, without an error.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::r2d2::R2D2Connection as _;
use diesel::sql_types::{BigInt, Bool, Double, Uuid as SqlUuid};
use diesel::{QueryableByName, RunQueryDsl};

use super::{ConnectionManager, DatabaseUrl, DbConnection, DbError, Pool, PooledConnection};
use crate::auth::TenantScope;

/// How long a read waits for a replica connection before the primary serves it: short, since
/// the primary is always there.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// The replica's settings (`DATABASE_READ_URL` and the three that tune it).
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    pub url: DatabaseUrl,
    /// A replica further behind than this is bypassed.
    pub max_lag: Duration,
    /// How long after a caller's write its reads check that the replica has replayed it.
    pub read_your_writes: Duration,
    /// How often the replica's lag is measured.
    pub check_every: Duration,
}

/// The replica as its last check found it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaState {
    /// Not checked yet (just started): reads stay on the primary.
    Unchecked,
    /// Streaming and at most the bound behind.
    Up { lag: Duration },
    /// Streaming, but further behind than the bound: bypassed.
    Lagging { lag: Duration },
    /// Unreachable, not a standby, or not streaming: bypassed. The reason names no address.
    Down { reason: String },
}

/// What a read may accept, from its request: whether the caller asked for fresh data, and who
/// reads (a caller's own recent writes must be visible to it).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadRoute {
    pub fresh: bool,
    pub reader: Option<(TenantScope, uuid::Uuid)>,
}

/// Why a routed read was served where it was (`stageflow_db_routed_reads_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Replica,
    /// `Cache-Control: no-cache`.
    Fresh,
    /// The replica had not yet replayed the caller's own recent write.
    OwnWrite,
    Lagging,
    Down,
    Unchecked,
}

impl Routed {
    pub fn label(self) -> &'static str {
        match self {
            Self::Replica => "replica",
            Self::Fresh => "fresh",
            Self::OwnWrite => "own_write",
            Self::Lagging => "lagging",
            Self::Down => "down",
            Self::Unchecked => "unchecked",
        }
    }

    pub fn served_by(self) -> &'static str {
        match self {
            Self::Replica => "replica",
            _ => "primary",
        }
    }

    pub const ALL: [Routed; 6] = [
        Self::Replica,
        Self::Fresh,
        Self::OwnWrite,
        Self::Lagging,
        Self::Down,
        Self::Unchecked,
    ];
}

/// The replica's pool and its last known state.
pub struct Replica {
    pool: Pool,
    settings: ReplicaSettings,
    state: RwLock<ReplicaState>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

#[derive(QueryableByName)]
struct Health {
    #[diesel(sql_type = Bool)]
    standby: bool,
    #[diesel(sql_type = Bool)]
    receiving: bool,
    #[diesel(sql_type = Double)]
    lag_seconds: f64,
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
}

impl Replica {
    /// A pool for the replica that opens no connection yet: a replica that is down at start
    /// does not stop the node (the first check marks it down).
    pub fn new(settings: ReplicaSettings, pool_size: u32) -> Arc<Self> {
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .build_unchecked(ConnectionManager::new(settings.url.clone()));
        Arc::new(Self {
            pool,
            settings,
            state: RwLock::new(ReplicaState::Unchecked),
        })
    }

    pub fn settings(&self) -> &ReplicaSettings {
        &self.settings
    }

    pub fn state(&self) -> ReplicaState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_state(&self, state: ReplicaState) {
        let mut current = self.state.write().unwrap_or_else(|p| p.into_inner());
        if *current != state {
            match &state {
                ReplicaState::Down { reason } => log::warn!("read replica down: {reason}"),
                ReplicaState::Lagging { lag } => {
                    log::warn!("read replica {:.1} s behind: bypassed", lag.as_secs_f64())
                }
                ReplicaState::Up { .. } if !matches!(*current, ReplicaState::Up { .. }) => {
                    log::info!("read replica up")
                }
                _ => {}
            }
        }
        *current = state;
    }

    /// Measures the replica now (blocking) and keeps the result. The lag is the age of the last
    /// replayed transaction while WAL waits to be replayed, 0 when everything received is
    /// replayed; a standby whose WAL receiver is gone cannot tell how far behind it is, so it
    /// counts as down.
    pub fn check(&self) -> ReplicaState {
        let state = match self.pool.get() {
            Err(_) => ReplicaState::Down {
                reason: "cannot connect to the replica".to_owned(),
            },
            Ok(mut conn) => match measure(&mut conn) {
                Err(_) => ReplicaState::Down {
                    reason: "the replica did not answer its check".to_owned(),
                },
                Ok(health) if !health.standby => ReplicaState::Down {
                    reason: "the replica is not a standby (promoted, or the primary itself?)"
                        .to_owned(),
                },
                Ok(health) if !health.receiving => ReplicaState::Down {
                    reason: "the replica is not streaming from the primary".to_owned(),
                },
                Ok(health) => {
                    let lag = Duration::from_secs_f64(health.lag_seconds.max(0.0));
                    if lag > self.settings.max_lag {
                        ReplicaState::Lagging { lag }
                    } else {
                        ReplicaState::Up { lag }
                    }
                }
            },
        };
        self.set_state(state.clone());
        state
    }

    fn mark_down(&self, reason: &str) {
        self.set_state(ReplicaState::Down {
            reason: reason.to_owned(),
        });
    }

    /// Runs a routed read (blocking): on the replica when [`Replica::choose`] allows it, else
    /// on the primary. A replica connection lost during the read sends it to the primary.
    pub(super) fn run<T, E, F>(&self, primary: &Pool, route: ReadRoute, f: F) -> Result<T, E>
    where
        F: Fn(&mut DbConnection) -> Result<T, E>,
        E: From<DbError>,
    {
        let routed = match self.choose(primary, route) {
            Ok(mut conn) => {
                let read = f(&mut conn);
                match read {
                    Ok(value) => {
                        crate::metrics::routed_read("replica", "replica");
                        return Ok(value);
                    }
                    Err(error) if conn.ping().is_ok() => {
                        crate::metrics::routed_read("replica", "replica");
                        return Err(error);
                    }
                    Err(_) => {
                        self.mark_down("the connection to the replica was lost");
                        Routed::Down
                    }
                }
            }
            Err(routed) => routed,
        };
        crate::metrics::routed_read(routed.served_by(), routed.label());
        let mut conn = super::checkout(primary)?;
        f(&mut conn)
    }

    /// A replica connection when this read may use the replica, else why not.
    fn choose(&self, primary: &Pool, route: ReadRoute) -> Result<PooledConnection, Routed> {
        if route.fresh {
            return Err(Routed::Fresh);
        }
        match self.state() {
            ReplicaState::Up { .. } => {}
            ReplicaState::Lagging { .. } => return Err(Routed::Lagging),
            ReplicaState::Down { .. } => return Err(Routed::Down),
            ReplicaState::Unchecked => return Err(Routed::Unchecked),
        }
        let mark = match route.reader {
            None => None,
            Some((scope, principal)) => {
                let mut conn = super::checkout(primary).map_err(|_| Routed::OwnWrite)?;
                write_mark(&mut conn, &scope, principal, self.settings.read_your_writes)
                    .map_err(|_| Routed::OwnWrite)?
            }
        };
        let Ok(mut conn) = self.pool.get() else {
            self.mark_down("cannot connect to the replica");
            return Err(Routed::Down);
        };
        if let Some(mark) = mark {
            match replayed(&mut conn) {
                Ok(lsn) if lsn >= mark => {}
                Ok(_) => return Err(Routed::OwnWrite),
                Err(_) => {
                    self.mark_down("the replica did not answer");
                    return Err(Routed::Down);
                }
            }
        }
        Ok(conn)
    }
}

fn measure(conn: &mut DbConnection) -> Result<Health, diesel::result::Error> {
    // Without pg_read_all_stats (pg_monitor) the WAL receiver's row shows its pid only, its
    // status as NULL: a row at all then counts as receiving.
    diesel::sql_query(
        "SELECT pg_is_in_recovery() AS standby, \
                EXISTS (SELECT 1 FROM pg_stat_wal_receiver \
                        WHERE COALESCE(status, 'streaming') = 'streaming') AS receiving, \
                COALESCE(CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                    ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) \
                END, 0)::float8 AS lag_seconds",
    )
    .get_result(conn)
}

/// How far the replica has replayed the primary's WAL, in bytes from 0/0.
fn replayed(conn: &mut DbConnection) -> Result<i64, diesel::result::Error> {
    diesel::sql_query(
        "SELECT COALESCE((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0) AS lsn",
    )
    .get_result::<Position>(conn)
    .map(|p| p.lsn)
}

/// Records on the primary, after `principal`'s write has committed, how far the primary's WAL
/// has come: its reads wait for the replica to replay that far.
pub fn record_write(
    conn: &mut DbConnection,
    scope: &TenantScope,
    principal: uuid::Uuid,
) -> Result<(), diesel::result::Error> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(());
    };
    diesel::sql_query(
        "INSERT INTO write_marks (tenant_id, principal, lsn, written_at) \
         VALUES ($1, $2, (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, now()) \
         ON CONFLICT (tenant_id, principal) \
         DO UPDATE SET lsn = excluded.lsn, written_at = excluded.written_at",
    )
    .bind::<SqlUuid, _>(scope.tenant_id().0)
    .bind::<SqlUuid, _>(principal)
    .execute(pg)
    .map(drop)
}

/// `principal`'s write mark, if it wrote within `window`.
fn write_mark(
    conn: &mut DbConnection,
    scope: &TenantScope,
    principal: uuid::Uuid,
    window: Duration,
) -> Result<Option<i64>, diesel::result::Error> {
    use diesel::OptionalExtension as _;
    let DbConnection::Postgres(pg) = conn else {
        return Ok(None);
    };
    diesel::sql_query(
        "SELECT lsn FROM write_marks WHERE tenant_id = $1 AND principal = $2 \
         AND written_at > now() - make_interval(secs => $3)",
    )
    .bind::<SqlUuid, _>(scope.tenant_id().0)
    .bind::<SqlUuid, _>(principal)
    .bind::<Double, _>(window.as_secs_f64())
    .get_result::<Position>(pg)
    .optional()
    .map(|p| p.map(|p| p.lsn))
}
