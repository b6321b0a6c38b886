//! Backups (#17 point 1) through the shipped binary, on the backend of the run: a backup
//! taken while tickets are being filed verifies and restores every acknowledged ticket and
//! its attachment; a corrupted generation is refused by `verify` and `restore`; generations
//! rotate in both places; the operator sees each run through the API and the metrics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::stageflow;
use crate::helpers::{TestApp, TestDb};
use crate::sla::{app, desk, file};

/// The binary with the test app's database, attachment store and backup places.
fn command(db: &TestDb, places: &Path, args: &[&str]) -> Command {
    let mut command = stageflow(places);
    command
        .env("DATABASE_URL", db.url_string())
        .env("STAGEFLOW_DATA_DIR", db.data_dir())
        .env("STAGEFLOW_BACKUP_DIR", places.join("local"))
        .env("STAGEFLOW_BACKUP_COPY_DIR", places.join("copy"))
        .env("STAGEFLOW_BACKUP_KEEP", "2")
        .env("STAGEFLOW_BACKUP_COPY_KEEP", "3")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args);
    command
}

fn run(db: &TestDb, places: &Path, args: &[&str]) -> Output {
    command(db, places, args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The newest generation's directory in a place.
fn newest(place: &Path) -> PathBuf {
    let mut all: Vec<PathBuf> = std::fs::read_dir(place.join("generations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    all.pop().unwrap()
}

fn manifest(generation: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(generation.join("manifest.json")).unwrap())
        .unwrap()
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

pub(crate) async fn attach(app: &TestApp, token: &str, ticket: &str, content: &[u8]) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(content.to_vec())
            .file_name("log.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let reply = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/tickets/{ticket}/attachments")))
                .bearer_auth(token)
                .multipart(form),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

/// Ticket ids in a database.
fn ticket_ids(db: &TestDb) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let query = diesel::sql_query("SELECT CAST(id AS TEXT) AS id FROM tickets");
    let ids: Vec<Id> = match db {
        TestDb::Sqlite { path, .. } => query
            .load(&mut diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap())
            .unwrap(),
        TestDb::Postgres { url, .. } => query
            .load(&mut diesel::PgConnection::establish(url).unwrap())
            .unwrap(),
    };
    ids.into_iter().map(|i| i.id).collect()
}

#[actix_web::test]
async fn a_backup_taken_while_tickets_are_filed_verifies_and_restores_every_acknowledged_one() {
    let app = app().await;
    let d = desk(&app, "backup").await;
    let first = file(&app, &d.requester, "p1").await;
    let content = b"2026-11-29 03:00 mail queue stuck\n".repeat(100);
    attach(&app, &d.agent, &first, &content).await;
    let places = tempfile::tempdir().unwrap();

    // A writer files tickets until the backup has finished.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writer = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/tickets"),
            d.requester.clone(),
        );
        let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
        actix_web::rt::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let reply = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"template": "sla_desk",
                        "fields": {"title": "バックアップ中の起票", "priority": "p2"}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status(), StatusCode::CREATED);
                let body: Value = reply.json().await.unwrap();
                acknowledged
                    .lock()
                    .unwrap()
                    .push(body["id"].as_str().unwrap().to_owned());
            }
        })
    };
    // Let some writes land first.
    while acknowledged.lock().unwrap().len() < 5 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let mut backup = command(&app.db, places.path(), &["backup"]);
    let backup = actix_web::rt::task::spawn_blocking(move || backup.output().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(backup.status.success(), "{}", text(&backup));
    assert!(
        String::from_utf8_lossy(&backup.stdout).contains("verified"),
        "{}",
        text(&backup)
    );
    let filed_during = acknowledged.lock().unwrap().len() - before.len();
    assert!(filed_during > 0, "no ticket was filed while the backup ran");

    let generation = newest(&places.path().join("local"));
    let m = manifest(&generation);
    assert_eq!(m["format"], 1);
    assert_eq!(m["attachments"].as_array().unwrap().len(), 1);
    let listed_tickets = m["tables"]["tickets"].as_i64().unwrap();
    assert!(listed_tickets > before.len() as i64, "{m}");
    // The copy holds the same generation.
    assert_eq!(
        name(&newest(&places.path().join("copy"))),
        name(&generation)
    );

    let verify = run(&app.db, places.path(), &["backup", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let verify_copy = run(&app.db, places.path(), &["backup", "verify", "--copy"]);
    assert!(verify_copy.status.success(), "{}", text(&verify_copy));

    // Restore into another database and attachment store of the same backend.
    let target = match &app.db {
        TestDb::Sqlite { .. } => TestDb::create_sqlite(),
        TestDb::Postgres { admin_url, .. } => TestDb::create_postgres(admin_url),
    };
    let id = name(&generation);
    let dry = run(&target, places.path(), &["restore", &id, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("would replace"),
        "{}",
        text(&dry)
    );
    assert!(
        !target.data_dir().join("attachments").exists(),
        "a dry run copies nothing"
    );
    let restored = run(&target, places.path(), &["restore", &id]);
    assert!(restored.status.success(), "{}", text(&restored));
    let ids = ticket_ids(&target);
    assert_eq!(ids.len() as i64, listed_tickets);
    for id in before.iter().chain([&first]) {
        assert!(
            ids.contains(id),
            "ticket {id}, acknowledged before the backup, is missing"
        );
    }
    let hash = m["attachments"][0]["sha256"].as_str().unwrap();
    let stored = target
        .data_dir()
        .join("attachments")
        .join(&hash[..2])
        .join(&hash[2..4])
        .join(hash);
    assert_eq!(std::fs::read(stored).unwrap(), content);
    // The restored database is current and serves.
    let migrate = run(&target, places.path(), &["migrate"]);
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("up to date"));

    // The operator sees the run; nobody else does.
    let operator = app.operator_token().await;
    let runs = app.get("/api/v1/backups", Some(&operator)).await;
    assert_eq!(runs.status, StatusCode::OK, "{}", runs.text);
    let runs = runs.json();
    let item = &runs["items"][0];
    assert_eq!(item["generation"], id.as_str());
    assert_eq!(
        (item["status"].as_str(), item["verified"].as_bool()),
        (Some("ok"), Some(true))
    );
    assert_eq!(item["made_by"], "cli");
    assert_eq!(item["copied"], true);
    assert_eq!(
        item["row_count"],
        m["tables"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>()
    );
    app.get("/api/v1/backups", Some(&d.pm))
        .await
        .assert_problem(403, "/problems/forbidden");
    app.get("/api/v1/backups", None)
        .await
        .assert_problem(401, "/problems/unauthorized");
    let metrics = app.get("/metrics", None).await.text;
    for family in [
        "stageflow_backup_last_success_timestamp_seconds ",
        "stageflow_backup_age_seconds ",
        "stageflow_backup_size_bytes ",
        "stageflow_backup_verified 1",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
}

#[actix_web::test]
async fn a_corrupted_backup_is_refused_by_verify_and_restore() {
    let app = app().await;
    let d = desk(&app, "corrupt").await;
    let ticket = file(&app, &d.requester, "p1").await;
    attach(&app, &d.agent, &ticket, b"evidence").await;
    let places = tempfile::tempdir().unwrap();
    let made = run(&app.db, places.path(), &["backup"]);
    assert!(made.status.success(), "{}", text(&made));
    // Not a terminal: the progress is a plain log line (a bar on a terminal).
    let said = String::from_utf8_lossy(&made.stderr);
    assert!(said.contains("backup: attachments: 1 of 1 done"), "{said}");
    let generation = newest(&places.path().join("local"));
    let m = manifest(&generation);
    let database = generation.join(m["database"]["name"].as_str().unwrap());
    let original = std::fs::read(&database).unwrap();

    // One byte of the database copy changed.
    let mut bytes = original.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&database, &bytes).unwrap();
    let verify = run(&app.db, places.path(), &["backup", "verify"]);
    assert_eq!(verify.status.code(), Some(3), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("checksum"),
        "{}",
        text(&verify)
    );
    let id = name(&generation);
    let target = match &app.db {
        TestDb::Sqlite { .. } => TestDb::create_sqlite(),
        TestDb::Postgres { admin_url, .. } => TestDb::create_postgres(admin_url),
    };
    let migrated = run(&target, places.path(), &["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    let restore = run(&target, places.path(), &["restore", &id]);
    assert_eq!(restore.status.code(), Some(3), "{}", text(&restore));
    std::fs::write(&database, &original).unwrap();

    // An attachment's content changed.
    let hash = m["attachments"][0]["sha256"].as_str().unwrap();
    let blob = places
        .path()
        .join("local/blobs")
        .join(&hash[..2])
        .join(&hash[2..4])
        .join(hash);
    std::fs::write(&blob, b"tampered").unwrap();
    let verify = run(&app.db, places.path(), &["backup", "verify"]);
    assert_eq!(verify.status.code(), Some(3), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains(hash),
        "{}",
        text(&verify)
    );
    std::fs::write(&blob, b"evidence").unwrap();

    // The manifest's counts disagree with what the copy restores to.
    let mut edited = m.clone();
    let tickets = edited["tables"]["tickets"].as_i64().unwrap();
    edited["tables"]["tickets"] = json!(tickets + 1);
    std::fs::write(generation.join("manifest.json"), edited.to_string()).unwrap();
    let verify = run(&app.db, places.path(), &["backup", "verify"]);
    assert_eq!(verify.status.code(), Some(3), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("row counts differ"),
        "{}",
        text(&verify)
    );
    std::fs::write(generation.join("manifest.json"), m.to_string()).unwrap();
    let verify = run(&app.db, places.path(), &["backup", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        ticket_ids(&target).is_empty(),
        "a refused restore changed nothing"
    );

    let missing = run(&app.db, places.path(), &["restore", "19700101T000000.000Z"]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
}

#[actix_web::test]
async fn generations_rotate_in_both_places_and_the_job_records_its_runs() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.jobs.tick = std::time::Duration::from_secs(3_600);
        c.backup.interval = Some(std::time::Duration::from_secs(3_600));
    })
    .await;
    let places = tempfile::tempdir().unwrap();
    for _ in 0..4 {
        let made = run(&app.db, places.path(), &["backup"]);
        assert!(made.status.success(), "{}", text(&made));
    }
    let count = |place: &str| {
        std::fs::read_dir(places.path().join(place).join("generations"))
            .unwrap()
            .count()
    };
    assert_eq!((count("local"), count("copy")), (2, 3));
    let listed = run(&app.db, places.path(), &["backup", "list", "--copy"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        3,
        "{}",
        text(&listed)
    );

    // The scheduled job (its backup dir is the test's data dir default).
    app.clock
        .set(app.clock_now() + chrono::TimeDelta::seconds(3_601));
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let operator = app.operator_token().await;
    let runs = app
        .get("/api/v1/backups?limit=2", Some(&operator))
        .await
        .json();
    let newest = &runs["items"][0];
    assert_ne!(newest["made_by"], "cli", "{runs}");
    assert_eq!(newest["verified"], true, "{runs}");
    assert!(runs["next_cursor"].is_string(), "{runs}");
    let rest = app
        .get(
            &format!(
                "/api/v1/backups?cursor={}",
                runs["next_cursor"].as_str().unwrap()
            ),
            Some(&operator),
        )
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 3, "{rest}");
    assert!(app.db.data_dir().join("backups/generations").is_dir());
}
