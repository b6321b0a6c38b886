//! The shipped binary, as an operator runs it: first start with nothing configured, bad
//! configuration, `migrate` repeated, graceful stop.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{TestDb, postgres_admin_url};

const BINARY: &str = env!("CARGO_BIN_EXE_stageflow");

/// The binary with an empty environment, run in `dir`.
fn stageflow(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.env_clear().current_dir(dir);
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Collects a child's stderr lines as they come.
fn capture_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Polls `/readyz` until it answers 200; the process needs a moment to start.
async fn wait_until_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(reply) = client.get(format!("{base}/readyz")).send().await
            && reply.status() == reqwest::StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn first_start_without_configuration_serves_on_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Only the port is set, so that parallel tests do not collide on 8080.
    let mut child = stageflow(dir.path())
        .arg("serve")
        .env("STAGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = capture_stderr(&mut child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until_ready(&client, &base).await;
    assert!(dir.path().join("data/stageflow.db").is_file());

    // The generated operator password is printed once and works.
    let password = log
        .lock()
        .unwrap()
        .iter()
        .find_map(|line| {
            line.split("generated password '")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .map(str::to_owned)
        })
        .expect("the generated operator password is logged");
    let reply = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&serde_json::json!({"username": "operator", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), reqwest::StatusCode::OK);

    // SIGTERM: graceful shutdown, exit status 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_for_exit(&mut child).success());
    let log = log.lock().unwrap();
    assert!(log.iter().any(|l| l.contains("applied migration")));
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("generated password"))
            .count(),
        1
    );
}

#[test]
fn bad_configuration_stops_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("STAGEFLOW_LISTEN", "not-an-address"),
        ("DATABASE_URL", "mysql://localhost/x"),
        ("STAGEFLOW_ACCESS_TOKEN_TTL_SECONDS", "forever"),
    ] {
        let output: Output = stageflow(dir.path())
            .arg("serve")
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created on bad configuration"
    );
}

fn migrate(db: &TestDb) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = stageflow(dir.path())
        .arg("migrate")
        .env("DATABASE_URL", db.url_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn migrate_applies_once_and_is_then_a_no_op() {
    let mut databases = vec![TestDb::create_sqlite()];
    if let Some(admin_url) = postgres_admin_url() {
        databases.push(TestDb::create_postgres(&admin_url));
    }
    for db in &databases {
        assert!(migrate(db).contains("applied"), "{:?}", db.backend());
        assert_eq!(migrate(db).trim(), "database is up to date");
    }
}

#[test]
fn unreachable_postgres_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = stageflow(dir.path())
        .arg("migrate")
        .env(
            "DATABASE_URL",
            format!("postgres://nobody:wrong@127.0.0.1:{}/x", free_port()),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong"),
        "the password is not echoed: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
