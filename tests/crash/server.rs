//! The server under test: a database of its own, the release binary started on it, killed with
//! SIGKILL, and started again on the same database and data directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, SqliteConnection, connection::SimpleConnection};
use tokio::process::{Child, Command};

use crate::Res;

pub const OPERATOR_PASSWORD: &str = "crash-harness-platform-passphrase";

/// The database of one run: a SQLite file in a temp dir, or a PostgreSQL database created on
/// the admin URL's server and dropped at the end.
pub enum Store {
    Sqlite,
    Postgres { admin_url: String, name: String },
}

pub struct Server {
    binary: PathBuf,
    dir: tempfile::TempDir,
    store: Store,
    database_url: String,
    port: u16,
    child: Option<Child>,
    /// Server starts so far (each writes its own log file).
    starts: u32,
}

impl Server {
    pub fn new(binary: PathBuf, postgres_admin: Option<String>) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let (store, database_url) = match postgres_admin {
            Some(admin_url) => {
                let name = format!("sf_crash_{}", uuid::Uuid::now_v7().simple());
                PgConnection::establish(&admin_url)?
                    .batch_execute(&format!("CREATE DATABASE {name}"))?;
                let mut url = url::Url::parse(&admin_url)?;
                url.set_path(&format!("/{name}"));
                (Store::Postgres { admin_url, name }, url.to_string())
            }
            None => (
                Store::Sqlite,
                dir.path().join("stageflow.db").display().to_string(),
            ),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(Self {
            binary,
            dir,
            store,
            database_url,
            port,
            child: None,
            starts: 0,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("server-{start}.log"))
    }

    /// Starts the binary and waits until `/readyz` answers 200.
    pub async fn start(&mut self, client: &reqwest::Client) -> Res<()> {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts))?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .env_clear()
            .current_dir(self.dir.path())
            .env("DATABASE_URL", &self.database_url)
            .env("STAGEFLOW_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("STAGEFLOW_DATA_DIR", self.dir.path().join("data"))
            .env("STAGEFLOW_OPERATOR_PASSWORD", OPERATOR_PASSWORD)
            // Cheap hashing and no login limit: the harness is about writes, not logins.
            .env("STAGEFLOW_ARGON2_MEMORY_KIB", "64")
            .env("STAGEFLOW_ARGON2_ITERATIONS", "1")
            .env("STAGEFLOW_LOGIN_RATE_PER_MINUTE", "1000000")
            .env("STAGEFLOW_WORKERS", "2")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let ready = format!("{}/readyz", self.base_url());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(reply) = client.get(&ready).send().await
                && reply.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(format!(
                    "the server exited at start ({status}):\n{}",
                    self.log_tail()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(
                    format!("the server did not become ready:\n{}", self.log_tail()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no flush, no graceful end of in-flight requests.
    pub async fn kill(&mut self) -> Res<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    fn sqlite_file(&self) -> Res<&str> {
        match self.store {
            Store::Sqlite => Ok(&self.database_url),
            Store::Postgres { .. } => Err("the rollback sabotage needs SQLite".into()),
        }
    }

    /// Self-test of the checks (`STAGEFLOW_CRASH_SABOTAGE=rollback`): a consistent copy of the
    /// database taken now (`VACUUM INTO`, while the server runs) ...
    pub fn snapshot(&self) -> Res<()> {
        let file = self.sqlite_file()?;
        let copy = format!("{file}.snapshot");
        let _ = std::fs::remove_file(&copy);
        SqliteConnection::establish(file)?.batch_execute(&format!("VACUUM INTO '{copy}'"))?;
        Ok(())
    }

    /// ... replaces the database after the kill, as if the round's acknowledged writes had
    /// never reached the disk. The harness must then report them lost.
    pub fn restore_snapshot(&self) -> Res<()> {
        let file = self.sqlite_file()?;
        std::fs::rename(format!("{file}.snapshot"), file)?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{file}{suffix}"));
        }
        Ok(())
    }

    /// The last lines of the latest server log, for error reports.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if let Store::Postgres { admin_url, name } = &self.store
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
