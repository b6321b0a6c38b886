//! The cluster under test: a fresh PostgreSQL database and `stageflow serve` processes (the
//! release binary) on it, each with its own node id, port and data directory, all with the
//! same master key. A node is stopped with SIGKILL.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use diesel::{Connection, PgConnection, connection::SimpleConnection};
use tokio::process::{Child, Command};

use crate::Res;

pub const OPERATOR_PASSWORD: &str = "multinode-harness-platform-passphrase";

/// The job lease of the nodes (the smallest the server accepts), so a killed node's work is
/// taken over within seconds.
pub const LEASE_SECONDS: u64 = 5;

pub struct Node {
    pub name: String,
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no graceful shutdown, the leases it holds stay until they expire.
    pub async fn kill(&mut self) -> Res<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// The last lines of the node's log, for error reports.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

pub struct Cluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    admin_url: String,
    database: String,
    database_url: String,
    master_key: String,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Creates the database (dropped again when the cluster is dropped).
    pub fn new(binary: PathBuf, admin_url: String) -> Res<Self> {
        let database = format!("sf_multinode_{}", uuid::Uuid::now_v7().simple());
        PgConnection::establish(&admin_url)?
            .batch_execute(&format!("CREATE DATABASE {database}"))?;
        let mut url = url::Url::parse(&admin_url)?;
        url.set_path(&format!("/{database}"));
        let key: [u8; 32] = rand::random();
        Ok(Self {
            binary,
            dir: tempfile::tempdir()?,
            admin_url,
            database,
            database_url: url.to_string(),
            master_key: base64::engine::general_purpose::STANDARD.encode(key),
            nodes: Vec::new(),
        })
    }

    /// Starts a node named `name` and waits until `/readyz` answers 200.
    pub async fn start(&mut self, client: &reqwest::Client, name: &str) -> Res<()> {
        self.start_with(client, name, &[]).await
    }

    /// Starts a node with extra environment settings.
    pub async fn start_with(
        &mut self,
        client: &reqwest::Client,
        name: &str,
        extra: &[(&str, String)],
    ) -> Res<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = self.dir.path().join(name);
        std::fs::create_dir_all(&data)?;
        let log = data.join("server.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .env_clear()
            .current_dir(&data)
            .env("DATABASE_URL", &self.database_url)
            .env("STAGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("STAGEFLOW_DATA_DIR", &data)
            .env("STAGEFLOW_MASTER_KEY", &self.master_key)
            .env("STAGEFLOW_OPERATOR_PASSWORD", OPERATOR_PASSWORD)
            .env("STAGEFLOW_JOBS_NODE_ID", name)
            .env("STAGEFLOW_JOBS_TICK_MILLIS", "100")
            .env("STAGEFLOW_JOBS_LEASE_SECONDS", LEASE_SECONDS.to_string())
            .env("STAGEFLOW_WEBHOOK_ALLOW_PRIVATE", "true")
            // Cheap hashing and no login limit: the harness is about deliveries.
            .env("STAGEFLOW_ARGON2_MEMORY_KIB", "64")
            .env("STAGEFLOW_ARGON2_ITERATIONS", "1")
            .env("STAGEFLOW_LOGIN_RATE_PER_MINUTE", "1000000")
            .env("STAGEFLOW_WORKERS", "2")
            .env("RUST_LOG", "warn")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let mut node = Node {
            name: name.to_owned(),
            port,
            child: Some(child),
            log,
        };
        wait_ready(client, &mut node).await?;
        self.nodes.push(node);
        Ok(())
    }

    pub fn base_urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::base_url).collect()
    }

    /// The log tails of every node.
    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.name, n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn wait_ready(client: &reqwest::Client, node: &mut Node) -> Res<()> {
    let ready = format!("{}/readyz", node.base_url());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(reply) = client.get(&ready).send().await
            && reply.status().is_success()
        {
            return Ok(());
        }
        if let Some(child) = node.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            let tail = node.log_tail();
            return Err(format!("node {} exited at start ({status}):\n{tail}", node.name).into());
        }
        if Instant::now() > deadline {
            let tail = node.log_tail();
            return Err(format!("node {} did not become ready:\n{tail}", node.name).into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let name = &self.database;
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
