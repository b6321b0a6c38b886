//! Storage: one code path over PostgreSQL and SQLite through diesel's `MultiConnection`.
//!
//! Queries are written once against [`DbConnection`]; where the backends differ, code matches on
//! the enum and runs backend-specific SQL on the inner connection (the escape hatch). See
//! docs/ARCHITECTURE.md, "Two databases", for the rules and the known limits.

// Defined before the modules that use it.
/// Runs the same diesel statement on whichever backend connection this is, for statements
/// `MultiConnection` cannot express (multi-row inserts, `ON CONFLICT DO NOTHING`).
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Postgres($c) => $body,
            DbConnection::Sqlite($c) => $body,
        }
    };
}

pub mod announcements;
pub mod audit;
pub mod backup;
pub mod caller_check;
pub mod credentials;
pub mod events;
pub mod group_commit;
pub mod groups;
pub mod imports;
pub mod index;
pub mod jobs;
pub mod libraries;
pub mod mail;
pub mod masters;
pub mod migrations;
pub mod notifications;
pub mod operators;
pub mod platform;
pub mod replica;
pub mod reports;
pub mod retention;
mod schema;
pub mod settings;
pub mod signing_keys;
pub mod sla;
pub mod template_migrations;
pub mod templates;
pub mod tenant_data;
pub mod tenant_exports;
mod ticket_parts;
pub mod tickets;
pub mod types;
pub mod usage;
pub mod users;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};

/// A connection to whichever backend the server runs on.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database engine a [`DatabaseUrl`] selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A parsed `DATABASE_URL`: `postgres://…`/`postgresql://…`, `sqlite://path` or a plain path.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DatabaseUrl {
    /// Never prints a password that the URL may carry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("DatabaseUrl::Postgres(..)"),
            Self::Sqlite(path) => write!(f, "DatabaseUrl::Sqlite({})", path.display()),
        }
    }
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        let path = raw.strip_prefix("sqlite://").unwrap_or(raw);
        if path.contains("://") {
            return Err(
                "unsupported scheme; use postgres://…, sqlite://path or a file path".into(),
            );
        }
        if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
            return Err("needs a SQLite file path (in-memory databases are not supported)".into());
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Why the database could not serve a call.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] ConnectionError),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("cannot prepare the database file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the database task was cancelled")]
    Cancelled,
    /// The transaction that held this write (with others: `group_commit`) did not commit.
    #[error("the write's group did not commit: {0}")]
    Commit(String),
    /// The request's caller is no longer what its cached principal said (`caller_check`).
    #[error("the caller's account changed while the request was answered")]
    CallerChanged,
}

const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// The pool's connection factory. It picks the backend from the URL scheme itself (instead of
/// `MultiConnection::establish` trying each backend in turn), so a refused PostgreSQL login is
/// reported as such at once rather than as an unspecific error after the pool's timeout.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }

    pub fn connect(&self) -> Result<DbConnection, DbError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                // Sessions talk UTC; timestamptz values are converted by diesel anyway, this
                // only keeps ad-hoc SQL and logs unambiguous.
                conn.batch_execute("SET TIME ZONE 'UTC'")?;
                Ok(DbConnection::Postgres(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                // synchronous = FULL: every commit syncs the WAL before it returns, so an
                // acknowledged write survives a power loss or OS crash, not only a killed
                // process (NORMAL would keep it through a kill only). It costs one fsync per
                // write transaction, ~0.2 ms on the reference machine (docs/ARCHITECTURE.md,
                // ADR "Durability"; tests/crash proves the kill case).
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA synchronous = FULL;"
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// A pooled connection and when it last went back to the pool in good order.
pub struct Tracked {
    conn: DbConnection,
    returned: std::time::Instant,
}

impl std::ops::Deref for Tracked {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Tracked {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// A connection back in the pool for less than this is handed out again without a ping:
/// under load every checkout would otherwise cost a round trip (`SELECT 1`) on PostgreSQL —
/// two of a ticket create's nineteen. One idle for longer (the server may have restarted
/// or dropped it meanwhile) is pinged as before, and a broken one is replaced.
pub const TRUSTED_FOR: Duration = Duration::from_secs(1);

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = Tracked;
    type Error = DbError;

    fn connect(&self) -> Result<Tracked, DbError> {
        Ok(Tracked {
            conn: ConnectionManager::connect(self)?,
            returned: std::time::Instant::now(),
        })
    }

    fn is_valid(&self, conn: &mut Tracked) -> Result<(), DbError> {
        if conn.returned.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        conn.conn.ping().map_err(DbError::Query)
    }

    fn has_broken(&self, conn: &mut Tracked) -> bool {
        let broken = std::thread::panicking() || conn.conn.is_broken();
        if !broken {
            conn.returned = std::time::Instant::now();
        }
        broken
    }
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// The application's handle on its database: a pool plus the rules for using it.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    backend: Backend,
    /// SQLite admits one writer at a time. Writers of this process queue here, in order, rather
    /// than polling SQLite's busy handler, and write on the writer's own connection;
    /// `BEGIN IMMEDIATE` plus the busy timeout still guard against writers in other processes.
    sqlite_writer: Arc<Mutex<group_commit::Writer>>,
    /// SQLite: request writes waiting for the writer, run and committed together by whichever
    /// of their threads takes it next (`group_commit`).
    sqlite_group: Arc<group_commit::Queue>,
    /// Woken after every committed write of this process: readers waiting for new rows (the
    /// event feed's long poll) look again at once instead of at their next poll.
    committed: Arc<tokio::sync::Notify>,
    /// Notified (one permit) when a write that enqueued a due job commits: the runner of
    /// this process claims it at once instead of at its next tick (`crate::jobs`).
    jobs_enqueued: Arc<tokio::sync::Notify>,
    /// The read replica (`DATABASE_READ_URL`), if one is configured.
    replica: Option<Arc<replica::Replica>>,
}

impl Database {
    /// Opens the database and applies pending migrations; returns the versions applied.
    pub fn open_and_migrate(
        config: &crate::config::Config,
    ) -> Result<(Database, Vec<String>), DbError> {
        let mut db = Database::open(
            &config.database_url,
            config.db_pool_size,
            config.db_connect_timeout,
        )?;
        if let Some(settings) = &config.replica {
            db.replica = Some(replica::Replica::new(settings.clone(), config.db_pool_size));
        }
        let mut conn = db.get()?;
        let applied = migrations::run_pending(&mut conn)?;
        drop(conn);
        Ok((db, applied))
    }

    /// Opens the database (blocking): prepares a SQLite file, checks that a first connection
    /// can be made — reporting the real error if not — and builds the pool.
    pub fn open(url: &DatabaseUrl, pool_size: u32, timeout: Duration) -> Result<Self, DbError> {
        let manager = ConnectionManager::new(url.clone());
        let writer = group_commit::Writer::new(manager.clone());
        let mut first = match url {
            DatabaseUrl::Sqlite(path) => {
                prepare_sqlite_file(path)?;
                let mut conn = manager.connect()?;
                // Journal mode is a property of the file: set it once, before the pool opens
                // further connections (setting it from each one at once collides).
                conn.batch_execute("PRAGMA journal_mode = WAL;")?;
                conn
            }
            DatabaseUrl::Postgres(_) => manager.connect()?,
        };
        first.ping()?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .build(manager)?;
        Ok(Self {
            pool,
            backend: url.backend(),
            sqlite_writer: Arc::new(Mutex::new(writer)),
            sqlite_group: Default::default(),
            committed: Arc::new(tokio::sync::Notify::new()),
            jobs_enqueued: Arc::new(tokio::sync::Notify::new()),
            replica: None,
        })
    }

    /// The read replica, if one is configured.
    pub fn replica(&self) -> Option<&Arc<replica::Replica>> {
        self.replica.as_ref()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection, for blocking callers (start-up, CLI, jobs).
    pub fn get(&self) -> Result<PooledConnection, DbError> {
        checkout(&self.pool)
    }

    /// The pool as it is now: `(open connections, idle ones, the most it opens)`.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    /// Runs `f` on a pooled connection on the blocking thread pool. For reads: no transaction
    /// is opened (use [`Database::write`] for anything that writes).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let check = caller_check::pending();
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = checkout(&pool)?;
            caller_check::run(check.as_ref(), &mut conn)?;
            f(&mut conn)
        })
        .await
        .map_err(|_| E::from(DbError::Cancelled))?
    }

    /// [`Database::read`] for callers that are already off the async threads (jobs).
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<DbError>,
    {
        let mut conn = checkout(&self.pool)?;
        f(&mut conn)
    }

    /// A heavy read (a list, search, export, statistic or report) that the read replica may
    /// serve, if there is one and `route` allows it (`db::replica`); otherwise as
    /// [`Database::read`]. `f` may run twice: on the replica, and on the primary when the
    /// replica's connection is lost during the read.
    pub async fn read_routed<T, E, F>(&self, route: replica::ReadRoute, f: F) -> Result<T, E>
    where
        F: Fn(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let Some(replica) = self.replica.clone() else {
            return self.read(f).await;
        };
        let pool = self.pool.clone();
        let check = caller_check::pending();
        actix_web::rt::task::spawn_blocking(move || {
            // The caller is checked on the primary: the replica may not have replayed a change.
            if check.is_some() {
                let mut conn = checkout(&pool)?;
                caller_check::run(check.as_ref(), &mut conn)?;
            }
            replica.run(&pool, route, f)
        })
        .await
        .map_err(|_| E::from(DbError::Cancelled))?
    }

    /// After a principal's write has committed, with a replica configured: records how far the
    /// primary's WAL has come, so that principal's routed reads on every node wait for the
    /// replica to have replayed its write (or go to the primary). Without a replica, nothing.
    pub async fn mark_write(&self, scope: crate::auth::TenantScope, principal: uuid::Uuid) {
        if self.replica.is_none() {
            return;
        }
        let pool = self.pool.clone();
        let marked = actix_web::rt::task::spawn_blocking(move || {
            let mut conn = checkout(&pool)?;
            replica::record_write(&mut conn, &scope, principal).map_err(DbError::Query)
        })
        .await;
        match marked {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("could not record a write mark: {e}"),
            Err(_) => log::warn!("could not record a write mark: the task was cancelled"),
        }
    }

    /// Runs `f` inside one write transaction on the blocking thread pool: committed when `f`
    /// returns `Ok`, rolled back otherwise. On SQLite the transaction may hold other requests'
    /// writes too, each in its own savepoint (`group_commit`); the result comes back only
    /// after that transaction has committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        let db = self.clone();
        let check = caller_check::pending();
        actix_web::rt::task::spawn_blocking(move || match db.backend {
            Backend::Sqlite => db.write_grouped(check, f),
            Backend::Postgres => db.write_checked(check.as_ref(), f),
        })
        .await
        .map_err(|_| E::from(DbError::Cancelled))?
    }

    /// SQLite: queues the write, then takes the writer; runs the group unless an earlier one
    /// has run this write already.
    fn write_grouped<T, E, F>(&self, check: Option<caller_check::CallerCheck>, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        let (unit, slot) = group_commit::Pending::new(f, check);
        self.sqlite_group.push(Box::new(unit));
        let mut writer = self.sqlite_writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = group_commit::finished(&slot) {
            return done;
        }
        writer.with(|conn| self.commit_group(conn));
        group_commit::finished(&slot).unwrap_or_else(|| Err(E::from(DbError::Cancelled)))
    }

    /// Runs every queued write in one transaction, each in its own savepoint, and commits
    /// once, on the writer's connection (the writer held); if that could not be opened, every
    /// queued write fails.
    fn commit_group(&self, conn: Result<&mut DbConnection, DbError>) {
        let mut units = self.sqlite_group.take();
        let fail = |units: &mut Vec<Box<dyn group_commit::Unit>>, error: DbError| {
            let error = error.to_string();
            units.iter_mut().for_each(|unit| unit.fail(&error));
        };
        let conn = match conn {
            Ok(conn) => conn,
            Err(error) => return fail(&mut units, error),
        };
        let outer = jobs::take_enqueued_due();
        let mut succeeded = false;
        let committed = write_transaction(conn, |conn| {
            for unit in units.iter_mut() {
                succeeded |= unit.run(conn);
            }
            Ok::<_, DbError>(())
        });
        let enqueued = jobs::take_enqueued_due();
        jobs::restore_enqueued_due(outer);
        crate::metrics::group_commit(units.len());
        match committed {
            Ok(()) if succeeded => {
                self.committed.notify_waiters();
                if enqueued {
                    self.jobs_enqueued.notify_one();
                }
            }
            Ok(()) => {}
            Err(error) => fail(&mut units, error),
        }
    }

    /// [`Database::write`] for callers that are already off the async threads.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<DbError> + From<diesel::result::Error>,
    {
        self.write_checked(None, f)
    }

    /// A write transaction, after the request's deferred caller check (if any) has passed on
    /// the same connection.
    fn write_checked<T, E, F>(
        &self,
        check: Option<&caller_check::CallerCheck>,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<DbError> + From<diesel::result::Error>,
    {
        let outer = jobs::take_enqueued_due();
        let written = match self.backend {
            Backend::Sqlite => {
                let mut writer = self.sqlite_writer.lock().unwrap_or_else(|p| p.into_inner());
                writer.with(|conn| {
                    let conn = conn?;
                    caller_check::run(check, conn)?;
                    write_transaction(conn, f)
                })
            }
            Backend::Postgres => {
                let mut conn = checkout(&self.pool)?;
                caller_check::run(check, &mut conn)?;
                write_transaction(&mut conn, f)
            }
        };
        let enqueued = jobs::take_enqueued_due();
        jobs::restore_enqueued_due(outer);
        if written.is_ok() {
            self.committed.notify_waiters();
            if enqueued {
                self.jobs_enqueued.notify_one();
            }
        }
        written
    }

    /// Completes once a write of this process that enqueued a due job has committed (one
    /// permit is kept, so a commit while nobody waits is not missed; commits of other nodes
    /// are not seen here: their jobs are found at the tick).
    pub async fn job_enqueued(&self) {
        self.jobs_enqueued.notified().await;
    }

    /// Completes after the next write of this process commits (writes of other nodes are not
    /// seen here: callers still poll). Create it before looking, so a commit in between is
    /// not missed.
    pub fn next_commit(&self) -> tokio::sync::futures::OwnedNotified {
        self.committed.clone().notified_owned()
    }
}

/// A pooled connection, its wait measured (`stageflow_db_pool_wait_seconds`).
fn checkout(pool: &Pool) -> Result<PooledConnection, DbError> {
    let started = std::time::Instant::now();
    let conn = pool.get();
    crate::metrics::pool_wait(started.elapsed());
    Ok(conn?)
}

/// One write transaction on `conn`. On SQLite it begins with `BEGIN IMMEDIATE`, taking the write
/// lock up front: a deferred transaction that reads first and writes later fails at once with
/// "database is locked" under concurrency, whatever the busy timeout. Nested calls inside `f`
/// (`conn.transaction(..)`) become savepoints as usual.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgres(_) => {
            <DbConnection as Connection>::TransactionManager::begin_transaction(conn)?
        }
    }
    let outer = events::begin_transaction_numbering();
    let done = f(conn);
    events::end_transaction_numbering(outer);
    match done {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <DbConnection as Connection>::TransactionManager::rollback_transaction(conn) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                Err(rollback_error) => Err(rollback_error.into()),
            }
        }
    }
}

/// Several reads that must agree (statistics): one read-only transaction on `conn`, so every
/// query sees the same snapshot (PostgreSQL: repeatable read; SQLite: a deferred transaction,
/// whose snapshot is taken at its first read). On PostgreSQL it also runs without parallel
/// workers: these are short index walks served side by side, where a worker per query costs
/// more than it saves (docs/PERFORMANCE.md, "Process insight").
pub fn read_snapshot<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        if let DbConnection::Postgres(pg) = conn {
            pg.batch_execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
                 SET LOCAL max_parallel_workers_per_gather = 0",
            )?;
        }
        f(conn)
    })
}

fn prepare_sqlite_file(path: &Path) -> Result<(), DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// Refuses to write a row built for another tenant than the scope's (in release builds too):
/// the row inserts that take a whole row struct call it first, so a row can only land in the
/// scope's tenant.
pub(crate) fn of_scope(
    scope: &crate::auth::TenantScope,
    tenant: crate::domain::ids::TenantId,
) -> diesel::QueryResult<()> {
    if tenant == scope.tenant_id() {
        Ok(())
    } else {
        Err(diesel::result::Error::QueryBuilderError(
            "a row of another tenant than the scope's".into(),
        ))
    }
}

/// Whether a diesel error is a unique-constraint violation (portable across backends).
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Which backend a connection talks to.
pub fn backend_of(conn: &DbConnection) -> Backend {
    match conn {
        DbConnection::Postgres(_) => Backend::Postgres,
        DbConnection::Sqlite(_) => Backend::Sqlite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("/var/lib/stageflow.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("/var/lib/stageflow.db"))
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse(":memory:").is_err());
        assert!(
            !format!(
                "{:?}",
                DatabaseUrl::parse("postgres://u:secret@h/db").unwrap()
            )
            .contains("secret")
        );
    }

    /// A group of SQLite writes commits together; the one that fails (a duplicate key) or
    /// panics is rolled back to its own savepoint, and the others are kept.
    #[test]
    fn a_group_commits_its_writes_and_rolls_back_only_the_failing_ones() {
        use diesel::RunQueryDsl;
        let path = std::env::temp_dir().join(format!(
            "stageflow-group-commit-{}-{}.db",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        let db = Database::open(
            &DatabaseUrl::Sqlite(path.clone()),
            2,
            Duration::from_secs(5),
        )
        .unwrap();
        db.get()
            .unwrap()
            .batch_execute("CREATE TABLE probe (x INTEGER PRIMARY KEY)")
            .unwrap();
        let insert = |x: i64| {
            move |conn: &mut DbConnection| {
                diesel::sql_query(format!("INSERT INTO probe VALUES ({x})"))
                    .execute(conn)
                    .map_err(DbError::from)
            }
        };
        let (first, first_slot) = group_commit::Pending::new(insert(1), None);
        let (duplicate, duplicate_slot) = group_commit::Pending::new(insert(1), None);
        let (panics, panics_slot) = group_commit::Pending::new(
            move |conn: &mut DbConnection| -> Result<usize, DbError> {
                insert(3)(conn)?;
                panic!("a bug in one write")
            },
            None,
        );
        let (last, last_slot) = group_commit::Pending::new(insert(2), None);
        db.sqlite_group.push(Box::new(first));
        db.sqlite_group.push(Box::new(duplicate));
        db.sqlite_group.push(Box::new(panics));
        db.sqlite_group.push(Box::new(last));
        db.sqlite_writer
            .lock()
            .unwrap()
            .with(|conn| db.commit_group(conn));
        assert_eq!(group_commit::finished(&first_slot).unwrap().unwrap(), 1);
        match group_commit::finished(&duplicate_slot).unwrap() {
            Err(DbError::Query(error)) => assert!(is_unique_violation(&error), "{error}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            group_commit::finished(&panics_slot).unwrap(),
            Err(DbError::Cancelled)
        ));
        assert_eq!(group_commit::finished(&last_slot).unwrap().unwrap(), 1);
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            x: i64,
        }
        let mut conn = db.get().unwrap();
        let rows: Vec<Row> = diesel::sql_query("SELECT x FROM probe ORDER BY x")
            .load::<Row>(&mut **conn)
            .unwrap();
        drop(conn);
        assert_eq!(rows.iter().map(|r| r.x).collect::<Vec<_>>(), [1, 2]);
        drop(db);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
