//! The database half of a backup: a consistent copy taken while the server runs, its
//! inventory (row counts per table, schema version, referenced attachment content), and the
//! restore of a copy into a database — per backend.
//!
//! - SQLite: `VACUUM INTO` writes a consistent, compacted copy from one read transaction
//!   (writers go on meanwhile); the inventory is read from the copy itself.
//! - PostgreSQL: a repeatable-read transaction exports its snapshot, `pg_dump --snapshot`
//!   dumps exactly that snapshot in the custom format, and the inventory is read in the same
//!   transaction — so the counts are those of the dump, whatever commits meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{PgConnection, SqliteConnection};

use super::schema::ticket_attachments;

/// Why a backup, a check or a restore failed. The text is for the operator.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Database(String),
    #[error("{0}")]
    Tool(String),
    /// The backup does not hold what its manifest says (a corrupted or incomplete copy).
    #[error("the backup is not valid: {0}")]
    Invalid(String),
    #[error("no backup generation {0}")]
    NoSuchGeneration(String),
    #[error("no backup generation yet in {0}")]
    NoGeneration(String),
}

impl From<diesel::result::Error> for BackupError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Database(e.to_string())
    }
}

/// What a database copy holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The newest migration applied.
    pub schema_version: String,
    /// Rows per table.
    pub tables: BTreeMap<String, i64>,
    /// The attachment content its rows reference (SHA-256 hex).
    pub attachments: BTreeSet<String>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Nullable<Text>)]
    v: Option<String>,
}

/// A table name as an SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

macro_rules! inventory_of {
    ($conn:expr, $tables_sql:expr) => {{
        let conn = $conn;
        let names: Vec<Name> = diesel::sql_query($tables_sql).load(conn)?;
        let mut tables = BTreeMap::new();
        for Name { name } in names {
            let count: Count =
                diesel::sql_query(format!("SELECT count(*) AS n FROM {}", quoted(&name)))
                    .get_result(conn)?;
            tables.insert(name, count.n);
        }
        let version: Version =
            diesel::sql_query("SELECT max(version) AS v FROM __diesel_schema_migrations")
                .get_result(conn)?;
        let attachments: Vec<String> = ticket_attachments::table
            .select(ticket_attachments::sha256)
            .distinct()
            .load(conn)?;
        Ok::<_, BackupError>(Inventory {
            schema_version: version.v.unwrap_or_default(),
            tables,
            attachments: attachments.into_iter().collect(),
        })
    }};
}

const SQLITE_TABLES: &str = "SELECT name FROM sqlite_master WHERE type = 'table' \
     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
const POSTGRES_TABLES: &str = "SELECT tablename::text AS name FROM pg_tables \
     WHERE schemaname = current_schema() ORDER BY tablename";

pub fn sqlite_inventory(conn: &mut SqliteConnection) -> Result<Inventory, BackupError> {
    inventory_of!(conn, SQLITE_TABLES)
}

pub fn postgres_inventory(conn: &mut PgConnection) -> Result<Inventory, BackupError> {
    inventory_of!(conn, POSTGRES_TABLES)
}

fn sqlite_open(path: &Path) -> Result<SqliteConnection, BackupError> {
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| BackupError::Database(e.to_string()))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
    Ok(conn)
}

fn postgres_open(url: &str) -> Result<PgConnection, BackupError> {
    PgConnection::establish(url).map_err(|e| BackupError::Database(e.to_string()))
}

/// A consistent copy of the SQLite database at `live` written to `copy` (which must not
/// exist), and its inventory.
pub fn sqlite_snapshot(live: &Path, copy: &Path) -> Result<Inventory, BackupError> {
    let mut conn = sqlite_open(live)?;
    let target = copy.to_string_lossy().replace('\'', "''");
    conn.batch_execute(&format!("VACUUM INTO '{target}'"))?;
    drop(conn);
    sqlite_inventory(&mut sqlite_open(copy)?)
}

/// `PRAGMA integrity_check` of a SQLite file, then its inventory.
pub fn sqlite_check(path: &Path) -> Result<Inventory, BackupError> {
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let mut conn = sqlite_open(path)?;
    let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check").load(&mut conn)?;
    let problems: Vec<String> = rows
        .into_iter()
        .map(|r| r.integrity_check)
        .filter(|r| r != "ok")
        .collect();
    if !problems.is_empty() {
        return Err(BackupError::Invalid(format!(
            "the database copy fails SQLite's integrity check: {}",
            problems.join("; ")
        )));
    }
    sqlite_inventory(&mut conn)
}

/// The PostgreSQL client tools.
#[derive(Debug, Clone)]
pub struct PgTools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
}

impl PgTools {
    /// `dir` if configured; else `PATH`; else the newest `/usr/lib/postgresql/<n>/bin`.
    pub fn locate(dir: Option<&Path>) -> Result<Self, BackupError> {
        let in_dir = |dir: &Path| Self {
            pg_dump: dir.join("pg_dump"),
            pg_restore: dir.join("pg_restore"),
        };
        let found = |tools: &Self| tools.pg_dump.is_file() && tools.pg_restore.is_file();
        if let Some(dir) = dir {
            let tools = in_dir(dir);
            return if found(&tools) {
                Ok(tools)
            } else {
                Err(BackupError::Tool(format!(
                    "no pg_dump and pg_restore in STAGEFLOW_PG_BIN_DIR ({})",
                    dir.display()
                )))
            };
        }
        let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                        Some((n, e.path().join("bin")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versions.into_iter().map(|(_, dir)| dir));
        candidates
            .iter()
            .map(|dir| in_dir(dir))
            .find(found)
            .ok_or_else(|| {
                BackupError::Tool(
                    "pg_dump and pg_restore not found on PATH or in /usr/lib/postgresql/*/bin; \
                     install the PostgreSQL client or set STAGEFLOW_PG_BIN_DIR"
                        .to_owned(),
                )
            })
    }
}

/// Runs a client tool; its stderr becomes the error.
fn run(mut command: Command, what: &str) -> Result<(), BackupError> {
    let output = command
        .output()
        .map_err(|e| BackupError::Tool(format!("cannot run {what}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BackupError::Tool(format!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Dumps the PostgreSQL database at `url` to `dump` (custom format) from one exported
/// snapshot, and returns the inventory of that snapshot.
pub fn postgres_snapshot(
    url: &str,
    tools: &PgTools,
    dump: &Path,
) -> Result<Inventory, BackupError> {
    #[derive(QueryableByName)]
    struct Snapshot {
        #[diesel(sql_type = Text)]
        id: String,
    }
    let mut conn = postgres_open(url)?;
    conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    let snapshot: Snapshot =
        diesel::sql_query("SELECT pg_export_snapshot() AS id").get_result(&mut conn)?;
    let mut command = Command::new(&tools.pg_dump);
    command
        .arg("--format=custom")
        .arg(format!("--snapshot={}", snapshot.id))
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--file")
        .arg(dump)
        .arg("--dbname")
        .arg(url);
    let dumped = run(command, "pg_dump");
    let inventory = dumped.and_then(|()| postgres_inventory(&mut conn));
    conn.batch_execute("COMMIT")?;
    inventory
}

/// Replaces the contents of the PostgreSQL database at `url` with the dump: its schema is
/// dropped and recreated, then `pg_restore` loads the dump in one transaction.
pub fn postgres_restore(url: &str, tools: &PgTools, dump: &Path) -> Result<(), BackupError> {
    let mut conn = postgres_open(url)?;
    conn.batch_execute(
        "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public; \
         DROP TABLE IF EXISTS __diesel_schema_migrations",
    )?;
    drop(conn);
    let mut command = Command::new(&tools.pg_restore);
    command
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--single-transaction")
        .arg("--exit-on-error")
        .arg("--dbname")
        .arg(url)
        .arg(dump);
    run(command, "pg_restore")
}

/// Restores the dump into a scratch database beside the one at `url` (created and dropped
/// here) and returns the inventory read back from it.
pub fn postgres_check(url: &str, tools: &PgTools, dump: &Path) -> Result<Inventory, BackupError> {
    let name = format!("stageflow_verify_{}", uuid::Uuid::now_v7().simple());
    let mut scratch = url::Url::parse(url)
        .map_err(|e| BackupError::Database(format!("DATABASE_URL is not a URL: {e}")))?;
    scratch.set_path(&format!("/{name}"));
    let scratch = scratch.to_string();
    let mut admin = postgres_open(url)?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let checked = postgres_restore(&scratch, tools, dump)
        .and_then(|()| postgres_inventory(&mut postgres_open(&scratch)?));
    let dropped = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    let inventory = checked?;
    dropped?;
    Ok(inventory)
}

/// A recorded backup run.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = super::schema::backup_runs)]
pub struct BackupRunRow {
    pub id: crate::domain::ids::BackupRunId,
    pub generation: Option<String>,
    pub started_at: super::types::Timestamp,
    pub finished_at: super::types::Timestamp,
    pub status: String,
    pub error: Option<String>,
    pub database_bytes: i64,
    pub row_count: i64,
    pub attachments: i64,
    pub attachment_bytes: i64,
    pub copied: bool,
    pub verified_at: Option<super::types::Timestamp>,
    pub verified: Option<bool>,
    pub verify_error: Option<String>,
    pub made_by: String,
}

pub fn insert_run(conn: &mut super::DbConnection, row: &BackupRunRow) -> QueryResult<()> {
    use super::schema::backup_runs;
    diesel::insert_into(backup_runs::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Records the check of a run's generation.
pub fn record_verify(
    conn: &mut super::DbConnection,
    id: crate::domain::ids::BackupRunId,
    at: super::types::Timestamp,
    error: Option<&str>,
) -> QueryResult<()> {
    use super::schema::backup_runs;
    diesel::update(backup_runs::table.find(id))
        .set((
            backup_runs::verified_at.eq(Some(at)),
            backup_runs::verified.eq(Some(error.is_none())),
            backup_runs::verify_error.eq(error),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Runs newest first, before `before` (id order within an instant).
pub fn list_runs(
    conn: &mut super::DbConnection,
    before: Option<crate::domain::ids::BackupRunId>,
    limit: i64,
) -> QueryResult<Vec<BackupRunRow>> {
    use super::schema::backup_runs;
    let mut query = backup_runs::table.into_boxed();
    if let Some(before) = before {
        query = query.filter(backup_runs::id.lt(before));
    }
    query.order(backup_runs::id.desc()).limit(limit).load(conn)
}

/// The newest successful run.
pub fn last_success(conn: &mut super::DbConnection) -> QueryResult<Option<BackupRunRow>> {
    use super::schema::backup_runs;
    backup_runs::table
        .filter(backup_runs::status.eq("ok"))
        .order(backup_runs::finished_at.desc())
        .first(conn)
        .optional()
}
