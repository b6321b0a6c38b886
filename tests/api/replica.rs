//! A read replica for real (#20 point 2): a second PostgreSQL cluster on this machine streams
//! from the first (`scripts/local-replica.sh`), and servers with `DATABASE_READ_URL` send their
//! lists, exports and statistics there — unless the caller wrote recently, asked for fresh
//! data, or the replica lags or is gone.
//!
//! Needs `STAGEFLOW_TEST_POSTGRES_URL` and `STAGEFLOW_TEST_REPLICA_URL` (the replica's admin
//! URL, as the script prints it); skipped otherwise. `.ci/run` runs it as its own step. The
//! test pauses the replica's replay and kills the replica, so it must be the only user of
//! that replica; it starts it again at the end, also when it fails.

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stageflow::api::server::Application;
use stageflow::clock::ManualClock;
use stageflow::config::Config;
use stageflow::db::DatabaseUrl;
use stageflow::db::replica::ReplicaSettings;

use crate::helpers::{TestApp, postgres_admin_url, spawn_app_with, start_time, test_config};
use crate::tickets::desk_tenant;

pub const REPLICA_ENV: &str = "STAGEFLOW_TEST_REPLICA_URL";

/// How long the test waits for replication or a check to catch up before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn replica_admin_url() -> Option<String> {
    std::env::var(REPLICA_ENV).ok().filter(|v| !v.is_empty())
}

/// The replica's URL of the database `config` uses on the primary.
fn replica_of(config: &Config, replica_admin: &str) -> DatabaseUrl {
    let DatabaseUrl::Postgres(primary) = &config.database_url else {
        panic!("the replica test runs on PostgreSQL");
    };
    let path = url::Url::parse(primary).unwrap().path().to_owned();
    let mut url = url::Url::parse(replica_admin).unwrap();
    url.set_path(&path);
    DatabaseUrl::Postgres(url.to_string())
}

fn settings(config: &Config, replica_admin: &str, max_lag: Duration) -> ReplicaSettings {
    ReplicaSettings {
        url: replica_of(config, replica_admin),
        max_lag,
        read_your_writes: Duration::from_secs(60),
        check_every: Duration::from_millis(100),
    }
}

#[derive(QueryableByName)]
struct Answer {
    #[diesel(sql_type = Text)]
    answer: String,
}

/// One statement on the replica's admin database, its one text answer.
fn on_replica(replica_admin: &str, sql: &str) -> String {
    let mut conn = PgConnection::establish(replica_admin).unwrap();
    diesel::sql_query(format!("SELECT ({sql})::text AS answer"))
        .get_result::<Answer>(&mut conn)
        .unwrap()
        .answer
}

fn replica_script(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/local-replica.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(action)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "local-replica.sh {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Leaves the replica streaming and replaying when the test ends, however it ends (later runs
/// need it).
struct Restart(String);

impl Drop for Restart {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/local-replica.sh");
        let _ = std::process::Command::new("bash").arg(script).output();
        if let Ok(mut conn) = PgConnection::establish(&self.0) {
            let _ = diesel::sql_query("SELECT pg_wal_replay_resume()").execute(&mut conn);
        }
    }
}

/// A second server on `app`'s database (own settings, same master key and data).
struct Node {
    address: String,
    client: reqwest::Client,
}

impl Node {
    async fn start(app: &TestApp, customize: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(&app.db);
        customize(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let clock = Arc::new(ManualClock::new(start_time()));
        let server = Application::build_with_listener(config, clock, listener)
            .await
            .unwrap();
        let address = format!("http://127.0.0.1:{}", server.port());
        actix_web::rt::spawn(server.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::new(),
        }
    }
}

/// Where requests go: the test's app or a second node.
#[derive(Clone, Copy)]
enum At<'a> {
    App(&'a TestApp),
    Node(&'a Node),
}

impl At<'_> {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        match self {
            At::App(app) => app.client.get(app.url(path)),
            At::Node(node) => node.client.get(format!("{}{path}", node.address)),
        }
    }

    async fn json(&self, path: &str, token: Option<&str>, fresh: bool) -> Value {
        let mut request = self.get(path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if fresh {
            request = request.header("cache-control", "no-cache");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The ids on the first page of the desk's ticket list.
    async fn ticket_ids(&self, token: &str, fresh: bool) -> Vec<String> {
        self.json(
            "/api/v1/tickets?template=desk&limit=500",
            Some(token),
            fresh,
        )
        .await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn replica_check(&self) -> Value {
        let ready = self.json("/readyz", None, false).await;
        ready["checks"]["replica"].clone()
    }

    async fn metrics(&self) -> String {
        self.get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Polls `probe` until it holds; fails after [`PATIENCE`] naming `what`.
async fn until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !probe().await {
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A routed-read counter of a scrape: `served_by` and `reason` labels.
fn routed(metrics: &str, served_by: &str, reason: &str) -> u64 {
    let series = format!(
        "stageflow_db_routed_reads_total{{reason=\"{reason}\",served_by=\"{served_by}\"}} "
    );
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

async fn file(app: &TestApp, token: &str, title: &str) -> String {
    let ticket = app
        .create(
            "/api/v1/tickets",
            token,
            json!({"template": "desk", "fields": {"title": title}}),
        )
        .await;
    ticket["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn lists_come_from_the_replica_unless_stale_for_the_caller_and_survive_its_loss() {
    let (Some(_), Some(replica_admin)) = (postgres_admin_url(), replica_admin_url()) else {
        let _ = writeln!(
            std::io::stderr(),
            "note: the replica test needs {} and {REPLICA_ENV} (scripts/local-replica.sh); skipped",
            crate::helpers::POSTGRES_ENV
        );
        return;
    };
    let _restart = Restart(replica_admin.clone());
    // A bound this test never reaches: reads stay on the replica while its replay is paused.
    let patient = Duration::from_secs(600);
    let app = spawn_app_with(|c| c.replica = Some(settings(c, &replica_admin, patient))).await;
    let at = At::App(&app);
    until("the replica to be up", || async {
        at.replica_check().await["state"] == "up"
    })
    .await;

    let (tenant, _pm) = desk_tenant(&app, "replica").await;
    let writer = app.user_token(&tenant, "writer", &["agent"]).await;
    let reader = app.user_token(&tenant, "reader", &["agent"]).await;
    let first = file(&app, &writer, "first").await;
    until("the replica to replay the first ticket", || async {
        at.ticket_ids(&reader, false).await.contains(&first)
    })
    .await;
    assert!(routed(&at.metrics().await, "replica", "replica") > 0);

    // 1. With replay paused, the reader's list is the replica's: without the new ticket.
    on_replica(&replica_admin, "pg_wal_replay_pause()");
    until("replay to pause", || async {
        on_replica(&replica_admin, "pg_get_wal_replay_pause_state()") == "paused"
    })
    .await;
    let second = file(&app, &writer, "second").await;
    let seen = at.ticket_ids(&reader, false).await;
    assert!(seen.contains(&first) && !seen.contains(&second), "{seen:?}");
    let export = app
        .send(
            app.client
                .get(app.url("/api/v1/tickets/export?template=desk"))
                .bearer_auth(&reader),
        )
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert!(export.text.contains("first") && !export.text.contains("second"));
    let stats = at
        .json(
            "/api/v1/stats/templates/desk?from=2026-04-01&to=2026-04-01",
            Some(&reader),
            false,
        )
        .await;
    assert_eq!(stats["total"], 1, "{stats}");
    // 2. The writer reads its own write (the replica has not replayed it: the primary answers).
    assert!(at.ticket_ids(&writer, false).await.contains(&second));
    // 3. Cache-Control: no-cache asks for the primary.
    assert!(at.ticket_ids(&reader, true).await.contains(&second));
    let metrics = at.metrics().await;
    assert!(routed(&metrics, "primary", "own_write") > 0, "{metrics}");
    assert!(routed(&metrics, "primary", "fresh") > 0);

    // 4. A replica behind the bound is bypassed: a node with a bound of 0 ms sees it lagging
    // while replay stays paused, and answers from the primary.
    let strict = Node::start(&app, |c| {
        c.replica = Some(settings(c, &replica_admin, Duration::ZERO));
    })
    .await;
    let node = At::Node(&strict);
    until("the strict node to see the replica lagging", || async {
        node.replica_check().await["lag_seconds"].as_f64() > Some(0.0)
    })
    .await;
    let check = node.replica_check().await;
    assert_eq!(check["state"], "degraded", "{check}");
    assert!(
        check["reason"].as_str().unwrap().contains("behind"),
        "{check}"
    );
    assert_eq!(
        node.json("/readyz", None, false).await["status"],
        "degraded"
    );
    assert!(node.ticket_ids(&reader, false).await.contains(&second));
    assert!(routed(&node.metrics().await, "primary", "lagging") > 0);
    // The patient node still reads the paused replica.
    assert!(!at.ticket_ids(&reader, false).await.contains(&second));
    on_replica(&replica_admin, "pg_wal_replay_resume()");
    until("the replica to replay the second ticket", || async {
        at.ticket_ids(&reader, false).await.contains(&second)
    })
    .await;
    until("the strict node to see the replica up again", || async {
        node.replica_check().await["state"] == "up"
    })
    .await;

    // 5. Killing the replica sends reads to the primary, with no error.
    replica_script("kill");
    let third = file(&app, &writer, "third").await;
    let seen = at.ticket_ids(&reader, false).await;
    assert!(seen.contains(&third), "{seen:?}");
    until("the node to see the replica down", || async {
        at.replica_check().await["state"] == "down"
    })
    .await;
    let ready = at.json("/readyz", None, false).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(at.ticket_ids(&reader, false).await.contains(&third));
    assert!(routed(&at.metrics().await, "primary", "down") > 0);

    // Started again, the replica serves reads once more.
    replica_script("start");
    until("the replica to be up again", || async {
        at.replica_check().await["state"] == "up"
    })
    .await;
    let before = routed(&at.metrics().await, "replica", "replica");
    assert!(at.ticket_ids(&reader, false).await.contains(&third));
    assert!(routed(&at.metrics().await, "replica", "replica") > before);
}
