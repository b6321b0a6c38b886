//! The shipped binary, as an operator runs it: first start with nothing configured, bad
//! configuration, `migrate` repeated, graceful stop, `--help` and `config` against the
//! documented settings, `operator reset-password`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::io::Write as _;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{OPERATOR_PASSWORD, OPERATOR_USERNAME, TestDb, postgres_admin_url, spawn_app};

const BINARY: &str = env!("CARGO_BIN_EXE_stageflow");

/// The binary with an empty environment, run in `dir`.
pub(crate) fn stageflow(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.env_clear().current_dir(dir);
    command
}

pub(crate) fn free_port() -> u16 {
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
pub(crate) async fn wait_until_ready(client: &reqwest::Client, base: &str) {
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

/// `stageflow serve` in `dir` on `port`, stderr piped for [`capture_stderr`].
fn serve(dir: &Path, port: u16) -> Command {
    let mut command = stageflow(dir);
    command
        .arg("serve")
        .env("STAGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    command
}

/// SIGTERM: a graceful shutdown with exit status 0.
fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_for_exit(child).success());
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
    let mut child = serve(dir.path(), port).spawn().unwrap();
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
    terminate(&mut child);
    let log = log.lock().unwrap();
    assert!(log.iter().any(|l| l.contains("applied migration")));
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("generated password"))
            .count(),
        1
    );
}

#[actix_web::test]
async fn a_server_with_a_log_directory_writes_the_access_and_application_logs_there_too() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let logs = dir.path().join("logs");
    let mut child = serve(dir.path(), port)
        .env("STAGEFLOW_LOG_DIR", &logs)
        .env("STAGEFLOW_ACCESS_LOG_RETENTION_DAYS", "7")
        .spawn()
        .unwrap();
    let stderr = capture_stderr(&mut child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until_ready(&client, &base).await;
    let reply = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(reply.status(), reqwest::StatusCode::OK);
    terminate(&mut child);

    let access = std::fs::read_to_string(logs.join("access.log")).unwrap();
    assert!(access.contains("\"GET /healthz HTTP/1.1\" 200"), "{access}");
    assert!(
        !access.contains("listening on"),
        "the access log holds requests only"
    );
    let app = std::fs::read_to_string(logs.join("stageflow.log")).unwrap();
    assert!(app.contains("listening on"), "{app}");
    assert!(
        !app.contains("GET /healthz"),
        "requests go to the access log"
    );
    // stderr still gets every line.
    let stderr = stderr.lock().unwrap();
    assert!(stderr.iter().any(|l| l.contains("GET /healthz")));
    assert!(stderr.iter().any(|l| l.contains("listening on")));
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

/// The variables of the settings table in docs/configuration.md, except removed ones.
fn documented_variables() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    let rows: Vec<&str> = doc
        .lines()
        .skip_while(|line| !line.starts_with("| variable | default | meaning |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .collect();
    let variables: Vec<String> = rows
        .iter()
        .filter(|row| !row.contains("**removed.**"))
        .map(|row| {
            row.split('|')
                .nth(1)
                .unwrap()
                .trim()
                .trim_matches('`')
                .to_owned()
        })
        .collect();
    assert!(
        variables.len() >= 30,
        "the table was not found: {variables:?}"
    );
    variables
}

fn run_ok(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_lists_every_documented_setting_with_its_variable_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let help = run_ok(stageflow(dir.path()).arg("--help"));
    let documented = documented_variables();
    for variable in &documented {
        assert!(
            help.contains(&format!("[env: {variable}]")),
            "{variable} missing:\n{help}"
        );
    }
    let listed: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split([']', '=']).next().unwrap())
        .collect();
    assert_eq!(listed.len(), documented.len(), "{listed:?}");
    for variable in listed {
        assert!(
            documented.iter().any(|d| d == variable),
            "{variable} is undocumented"
        );
    }
    // Subcommands take the same settings.
    let help = run_ok(stageflow(dir.path()).args(["operator", "reset-password", "--help"]));
    assert!(help.contains("[env: DATABASE_URL]"), "{help}");
}

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `stageflow config` as variable -> (source, value).
fn config_lines(stdout: &str) -> BTreeMap<String, (String, String)> {
    stdout
        .lines()
        .map(|line| {
            let mut parts = line.split_whitespace();
            let variable = parts.next().unwrap().to_owned();
            let source = parts.next().unwrap().to_owned();
            let value = parts.collect::<Vec<_>>().join(" ");
            (variable, (source, value))
        })
        .collect()
}

#[test]
fn config_prints_every_setting_with_its_source_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = ["db-secret-7f3a", MASTER_KEY, "platform-secret-passphrase"];
    let configured = |command: &mut Command| {
        command
            .env(
                "DATABASE_URL",
                "postgres://sf:db-secret-7f3a@db.example/sf?sslmode=require",
            )
            .env("STAGEFLOW_MASTER_KEY", MASTER_KEY)
            .env("STAGEFLOW_OPERATOR_PASSWORD", "platform-secret-passphrase")
            .env("STAGEFLOW_LISTEN", "127.0.0.1:1111")
            .env("STAGEFLOW_WORKERS", "3")
            .env("STAGEFLOW_TRUSTED_PROXIES", "");
    };
    let mut command = stageflow(dir.path());
    configured(&mut command);
    let stdout = run_ok(command.args(["--listen", "127.0.0.1:9999", "config"]));
    for secret in secrets {
        assert!(!stdout.contains(secret), "{secret} shown:\n{stdout}");
    }
    let lines = config_lines(&stdout);
    let expect = |variable: &str, source: &str, value: &str| {
        assert_eq!(
            lines[variable],
            (source.to_owned(), value.to_owned()),
            "{variable}"
        );
    };
    expect("STAGEFLOW_LISTEN", "flag", "127.0.0.1:9999");
    expect("STAGEFLOW_WORKERS", "env", "3");
    expect(
        "DATABASE_URL",
        "env",
        "postgres://sf:********@db.example/sf?sslmode=require",
    );
    expect("STAGEFLOW_MASTER_KEY", "env", "********");
    expect("STAGEFLOW_OPERATOR_PASSWORD", "env", "********");
    expect("STAGEFLOW_TRUSTED_PROXIES", "default", "(unset)");
    expect("STAGEFLOW_LOCKOUT_THRESHOLD", "default", "5");
    let documented = documented_variables();
    assert_eq!(
        lines.keys().collect::<Vec<_>>(),
        documented
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );

    // --help does not show the secret variables' values either.
    let mut command = stageflow(dir.path());
    configured(&mut command);
    let help = run_ok(command.arg("--help"));
    for secret in secrets {
        assert!(!help.contains(secret), "{secret} shown in --help");
    }
    assert!(help.contains("[env: STAGEFLOW_WORKERS]"), "{help}");

    // A bad flag is reported like a bad variable, naming both; nothing is created.
    let output = stageflow(dir.path())
        .args(["--workers", "0", "config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--workers") && stderr.contains("STAGEFLOW_WORKERS"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists());
}

/// `stageflow operator reset-password` against `db`, `input` on standard input.
fn reset_password(db: &TestDb, args: &[&str], input: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = stageflow(dir.path())
        .args(["operator", "reset-password"])
        .args(args)
        .env("DATABASE_URL", db.url_string())
        .env("STAGEFLOW_ARGON2_MEMORY_KIB", "64")
        .env("STAGEFLOW_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[actix_web::test]
async fn reset_password_recovers_the_operator_ends_its_sessions_and_unlocks_it() {
    let app = spawn_app().await;
    let session = app
        .login_pair(None, OPERATOR_USERNAME, OPERATOR_PASSWORD)
        .await;
    for _ in 0..5 {
        app.login_status(None, OPERATOR_USERNAME, "not-the-password-123")
            .await;
    }
    let locked = app
        .login_status(None, OPERATOR_USERNAME, OPERATOR_PASSWORD)
        .await;
    assert_ne!(locked, 200, "the operator is locked out");

    // Refused input changes nothing.
    let weak = reset_password(&app.db, &[], "short\n");
    assert_eq!(weak.status.code(), Some(2), "{weak:?}");
    assert!(String::from_utf8_lossy(&weak.stderr).contains("new password must be at least"));
    let contains_name = reset_password(&app.db, &[], "operator-and-more-text\n");
    assert_eq!(contains_name.status.code(), Some(2), "{contains_name:?}");
    let unknown = reset_password(
        &app.db,
        &["--username", "nobody"],
        "a-new-platform-secret\n",
    );
    assert_eq!(unknown.status.code(), Some(3), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no platform operator named 'nobody'")
    );

    let reset = reset_password(
        &app.db,
        &["--username", "OPERATOR"],
        "a-new-platform-secret\n",
    );
    assert!(reset.status.success(), "{reset:?}");
    assert!(reset.stdout.is_empty(), "a given password is not echoed");
    assert_eq!(
        app.login_status(None, OPERATOR_USERNAME, OPERATOR_PASSWORD)
            .await,
        401
    );
    let token = app
        .login(None, OPERATOR_USERNAME, "a-new-platform-secret")
        .await;
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED, "{}", refresh.text);
    let audit = app.audit_entries(&token, "operator.password_reset").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["target_kind"], "operator");
    assert!(
        audit[0]["details"]["revoked_refresh_tokens"]
            .as_i64()
            .unwrap()
            >= 1
    );

    // --generate prints a new password once; it works and the previous one no longer does.
    let generated = reset_password(&app.db, &["--generate"], "");
    assert!(generated.status.success(), "{generated:?}");
    let password = String::from_utf8(generated.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert!(password.chars().count() >= 12, "{password}");
    app.login(None, OPERATOR_USERNAME, &password).await;
    assert_eq!(
        app.login_status(None, OPERATOR_USERNAME, "a-new-platform-secret")
            .await,
        401
    );
}
