//! Attachments are checked before a byte is stored: refused uploads leave no file in the data
//! directory (temp files included), the plan's storage cap holds under parallel uploads, the
//! usage report counts tickets and stored bytes, and the collector removes only content no
//! row references.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Reply, Tenant, TestApp, spawn_app, spawn_app_with};
use crate::tickets::desk_tenant;

/// Where and how an upload says `internal`.
#[derive(Clone, Copy)]
enum Internal {
    Absent,
    Query(bool),
    PartBefore(bool),
    PartAfter(bool),
}

async fn upload(
    app: &TestApp,
    token: &str,
    ticket: &str,
    content: Vec<u8>,
    internal: Internal,
) -> Reply {
    let part = || {
        reqwest::multipart::Part::bytes(content.clone())
            .file_name("data.bin")
            .mime_str("application/octet-stream")
            .unwrap()
    };
    let form = reqwest::multipart::Form::new();
    let form = match internal {
        Internal::PartBefore(flag) => form.text("internal", flag.to_string()).part("file", part()),
        Internal::PartAfter(flag) => form.part("file", part()).text("internal", flag.to_string()),
        Internal::Absent | Internal::Query(_) => form.part("file", part()),
    };
    let mut path = format!("/api/v1/tickets/{ticket}/attachments");
    if let Internal::Query(flag) = internal {
        path.push_str(&format!("?internal={flag}"));
    }
    app.send(
        app.client
            .post(app.url(&path))
            .bearer_auth(token)
            .multipart(form),
    )
    .await
}

/// Distinct content of `len` bytes (so that deduplication cannot hide a stored copy).
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// Every file under `dir`, temp uploads included.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn data_files(app: &TestApp) -> Vec<PathBuf> {
    files_under(&app.db.data_dir())
}

async fn ticket(app: &TestApp, token: &str) -> String {
    let created = app
        .create(
            "/api/v1/tickets",
            token,
            json!({"template": "desk", "fields": {"title": "添付"}}),
        )
        .await;
    created["id"].as_str().unwrap().to_owned()
}

async fn set_storage_cap(app: &TestApp, tenant: &Tenant, cap: Value) {
    let op = app.operator_token().await;
    let reply = app
        .patch_json(
            &format!("/api/v1/plans/{}", tenant.plan_id),
            Some(&op),
            &json!({"max_stored_bytes": cap}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["max_stored_bytes"], cap);
}

async fn usage(app: &TestApp, tenant: &Tenant, month: &str) -> Value {
    let op = app.operator_token().await;
    let reply = app
        .get(
            &format!("/api/v1/accounts/{}/usage?month={month}", tenant.account_id),
            Some(&op),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

#[actix_web::test]
async fn refused_uploads_leave_no_file_in_the_data_dir() {
    let app = spawn_app_with(|c| c.max_attachment_bytes = 16 * 1024).await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let stranger = app.user_token(&tenant, "req2", &["requester"]).await;
    let auditor = app.user_token(&tenant, "audit1", &["auditor"]).await;
    let tid = ticket(&app, &requester).await;
    let before = data_files(&app);

    let refusals: Vec<(&str, &str, Internal, u16, &str)> = vec![
        (
            &stranger,
            tid.as_str(),
            Internal::Absent,
            404,
            "/problems/not-found",
        ),
        (
            &agent,
            "019ac0d2-4a00-7000-8000-000000000001",
            Internal::Absent,
            404,
            "/problems/not-found",
        ),
        (
            &auditor,
            tid.as_str(),
            Internal::Absent,
            403,
            "/problems/forbidden",
        ),
        (
            &requester,
            tid.as_str(),
            Internal::Query(true),
            403,
            "/problems/forbidden",
        ),
        (
            &requester,
            tid.as_str(),
            Internal::PartBefore(true),
            403,
            "/problems/forbidden",
        ),
        (
            &requester,
            tid.as_str(),
            Internal::PartAfter(true),
            403,
            "/problems/forbidden",
        ),
    ];
    for (seed, (token, target, internal, status, kind)) in refusals.into_iter().enumerate() {
        upload(&app, token, target, content(seed as u8, 8192), internal)
            .await
            .assert_problem(status, kind);
        assert_eq!(data_files(&app), before, "case {seed} left a file");
    }
    // The query parameter and the form part disagree: 422, nothing left.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(content(99, 8192)))
        .text("internal", "true");
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/tickets/{tid}/attachments?internal=false")))
            .bearer_auth(&agent)
            .multipart(form),
    )
    .await
    .assert_problem(422, "/problems/validation");
    assert_eq!(data_files(&app), before);
    // Over the size limit: 413, nothing left.
    upload(
        &app,
        &requester,
        &tid,
        content(50, 16 * 1024 + 1),
        Internal::Absent,
    )
    .await
    .assert_problem(413, "/problems/payload-too-large");
    assert_eq!(data_files(&app), before);

    // What is allowed stores exactly one file each.
    let stored = upload(
        &app,
        &requester,
        &tid,
        content(60, 8192),
        Internal::PartBefore(false),
    )
    .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    let memo = upload(&app, &agent, &tid, content(61, 100), Internal::Query(true)).await;
    assert_eq!(memo.status, StatusCode::CREATED, "{}", memo.text);
    assert_eq!(memo.json()["internal"], true);
    let after = upload(
        &app,
        &agent,
        &tid,
        content(62, 100),
        Internal::PartAfter(true),
    )
    .await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.text);
    assert_eq!(after.json()["internal"], true);
    assert_eq!(data_files(&app).len(), before.len() + 3);
}

#[actix_web::test]
async fn uploads_stop_at_the_plans_storage_cap() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let tid = ticket(&app, &agent).await;
    set_storage_cap(&app, &tenant, json!(100)).await;

    let first = upload(&app, &agent, &tid, content(1, 60), Internal::Absent).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let files = data_files(&app);
    // 50 more would pass 100: refused while reading (the upload is bounded by the room left).
    let over = upload(&app, &agent, &tid, content(2, 50), Internal::Absent)
        .await
        .assert_problem(409, "/problems/quota-exceeded");
    assert_eq!(over["cap"], "max_stored_bytes");
    assert_eq!(over["limit"], 100);
    assert_eq!(data_files(&app), files);
    // Exactly up to the cap is fine; then even one byte is refused before the body is read.
    let last = upload(&app, &agent, &tid, content(3, 40), Internal::Absent).await;
    assert_eq!(last.status, StatusCode::CREATED, "{}", last.text);
    let files = data_files(&app);
    upload(&app, &agent, &tid, content(4, 1), Internal::Absent)
        .await
        .assert_problem(409, "/problems/quota-exceeded");
    assert_eq!(data_files(&app), files);
    assert_eq!(
        usage(&app, &tenant, "2026-04").await["total"]["stored_bytes"],
        100
    );

    // No cap: unlimited again.
    set_storage_cap(&app, &tenant, Value::Null).await;
    let more = upload(&app, &agent, &tid, content(5, 500), Internal::Absent).await;
    assert_eq!(more.status, StatusCode::CREATED, "{}", more.text);
    assert_eq!(
        usage(&app, &tenant, "2026-04").await["total"]["stored_bytes"],
        600
    );
}

#[actix_web::test]
async fn parallel_uploads_cannot_both_take_the_last_room() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let tid = ticket(&app, &agent).await;
    set_storage_cap(&app, &tenant, json!(100)).await;
    let files = data_files(&app);

    // Each fits the room seen before reading; together they do not.
    let replies = join_all(
        (0..6u8).map(|seed| upload(&app, &agent, &tid, content(seed, 60), Internal::Absent)),
    )
    .await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_problem(409, "/problems/quota-exceeded");
    }
    assert_eq!(data_files(&app).len(), files.len() + 1);
    let report = usage(&app, &tenant, "2026-04").await;
    assert_eq!(report["total"]["stored_bytes"], 60);
}

#[actix_web::test]
async fn the_usage_report_shows_tickets_and_stored_bytes() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let a = ticket(&app, &agent).await;
    let b = ticket(&app, &agent).await;
    ticket(&app, &agent).await;
    // The same content on two tickets counts twice: the tenant's view.
    for (target, bytes) in [
        (&a, content(1, 10)),
        (&b, content(1, 10)),
        (&b, content(2, 5)),
    ] {
        let reply = upload(&app, &agent, target, bytes, Internal::Absent).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    let report = usage(&app, &tenant, "2026-04").await;
    assert_eq!(report["tenants"][0]["tickets"], 3, "{report}");
    assert_eq!(report["tenants"][0]["stored_bytes"], 25, "{report}");
    assert_eq!(report["total"]["tickets"], 3);
    assert_eq!(report["total"]["stored_bytes"], 25);
    // Tickets are counted in the month they were created; stored bytes are a figure of now.
    let earlier = usage(&app, &tenant, "2026-03").await;
    assert_eq!(earlier["total"]["tickets"], 0, "{earlier}");
    assert_eq!(earlier["total"]["stored_bytes"], 25);
}

#[actix_web::test]
async fn the_collector_removes_unreferenced_content_and_keeps_referenced() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let tid = ticket(&app, &agent).await;
    let kept = upload(&app, &agent, &tid, b"referenced".to_vec(), Internal::Absent).await;
    assert_eq!(kept.status, StatusCode::CREATED, "{}", kept.text);
    let kept = kept.json();
    let kept_hash = kept["sha256"].as_str().unwrap().to_owned();

    // Content no row references (a transaction that failed after placing it), and an upload
    // a crash left in tmp/.
    let mut writer = app.state.blobs.writer(1024).unwrap();
    writer.write(b"orphan").unwrap();
    let orphan = writer.finish().unwrap();
    let crashed = app
        .db
        .data_dir()
        .join("attachments")
        .join("tmp")
        .join("crash.part");
    std::fs::write(&crashed, b"half an upload").unwrap();

    // Within the grace period nothing goes.
    let grace_ago = SystemTime::now() - Duration::from_secs(3600);
    let removed = stageflow::api::server::collect_blobs_before(&app.state, grace_ago)
        .await
        .unwrap();
    assert_eq!((removed.contents, removed.uploads), (0, 0));
    assert!(app.state.blobs.exists(&orphan.sha256));
    assert!(crashed.exists());

    // Past it, the orphan and the temp file go; referenced content stays and downloads.
    let later = SystemTime::now() + Duration::from_secs(60);
    let removed = stageflow::api::server::collect_blobs_before(&app.state, later)
        .await
        .unwrap();
    assert_eq!((removed.contents, removed.uploads), (1, 1));
    assert!(!app.state.blobs.exists(&orphan.sha256));
    assert!(!crashed.exists());
    assert!(app.state.blobs.exists(&kept_hash));
    let download = app
        .get(kept["content_url"].as_str().unwrap(), Some(&agent))
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.text, "referenced");

    // Collected content uploaded again is stored again.
    let again = upload(&app, &agent, &tid, b"orphan".to_vec(), Internal::Absent).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert!(app.state.blobs.exists(&orphan.sha256));
}
