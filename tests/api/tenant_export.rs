//! Tenant export, import and erasure (issue #17 point 6): an export archive holds every row
//! and attachment of the tenant; imported into another instance it recreates the tenant, and
//! exporting that again gives the same document; a tenant is deleted only after an export,
//! and then nothing of it is left.

use std::collections::BTreeMap;
use std::io::Read;

use reqwest::StatusCode;
use serde_json::Value;
use stageflow::db::tenant_data;
use stageflow::domain::ids::TenantId;

use crate::backup::attach;
use crate::helpers::{ADMIN_PASSWORD, TestApp};
use crate::sla::{app, desk, file, fire};

/// Asks for an export, runs the job and downloads the archive; returns the export and the
/// archive's bytes.
async fn export(app: &TestApp, operator: &str, tenant: &str) -> (Value, Vec<u8>) {
    let requested = app
        .post_json(
            &format!("/api/v1/tenants/{tenant}/exports"),
            Some(operator),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.text);
    assert_eq!(requested.json()["status"], "pending");
    let location = requested.header("location").unwrap().to_owned();
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let done = app.get(&location, Some(operator)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let done = done.json();
    assert_eq!(done["status"], "done", "{done}");
    let archive = app
        .send(
            app.client
                .get(app.url(done["archive"].as_str().unwrap()))
                .bearer_auth(operator),
        )
        .await;
    assert_eq!(archive.status, StatusCode::OK);
    assert_eq!(
        archive.header("content-type"),
        Some("application/octet-stream")
    );
    let bytes = archive.bytes.clone();
    assert_eq!(bytes.len() as i64, done["size_bytes"].as_i64().unwrap());
    (done, bytes)
}

/// The archive's entries by path (tables with `txid`, an instance's own transaction ids,
/// left out of event rows).
fn entries(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut found = BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let text = if path == "tables/events.jsonl" {
            String::from_utf8(data)
                .unwrap()
                .lines()
                .map(|l| {
                    // Feed positions belong to a database: an import keeps the events'
                    // order and renumbers them (txid and seq), so the rows compare without.
                    let mut row: Value = serde_json::from_str(l).unwrap();
                    row.as_object_mut().unwrap().remove("txid");
                    row.as_object_mut().unwrap().remove("seq");
                    row.to_string()
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            String::from_utf8_lossy(&data).into_owned()
        };
        found.insert(path, text);
    }
    found
}

/// The tenant's rows per tenant table, straight from the database.
async fn rows_of(app: &TestApp, tenant: TenantId) -> BTreeMap<String, i64> {
    app.state
        .db
        .read(move |conn| {
            let mut counts = BTreeMap::new();
            for table in tenant_data::tenant_tables(conn)? {
                counts.insert(
                    table.name.clone(),
                    tenant_data::count(conn, &table, tenant)?,
                );
            }
            Ok::<_, stageflow::db::DbError>(counts)
        })
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_tenant_is_deleted_only_after_an_export_and_then_nothing_of_it_is_left() {
    let app = app().await;
    let d = desk(&app, "owari").await;
    let keep = desk(&app, "nokoru").await;
    let ticket = file(&app, &d.requester, "p1").await;
    attach(
        &app,
        &d.agent,
        &ticket,
        b"only this tenant has this content",
    )
    .await;
    let shared = b"both tenants attached the same bytes".to_vec();
    attach(&app, &d.agent, &ticket, &shared).await;
    let other = file(&app, &keep.requester, "p2").await;
    attach(&app, &keep.agent, &other, &shared).await;
    let operator = app.operator_token().await;
    let tenant = d.tenant.id.clone();
    let path = format!("/api/v1/tenants/{tenant}");

    app.delete(&path, Some(&operator))
        .await
        .assert_problem(409, "/problems/export-required");
    let (done, _) = export(&app, &operator, &tenant).await;
    assert!(done["row_count"].as_i64().unwrap() > 10);
    assert_eq!(done["attachments"], 2);

    let id: TenantId = tenant.parse().unwrap();
    let before = rows_of(&app, id).await;
    assert!(before["tickets"] >= 1 && before["ticket_attachments"] == 2);
    let stale = app
        .send(
            app.client
                .delete(app.url(&path))
                .bearer_auth(&operator)
                .header("if-match", "\"99\""),
        )
        .await;
    stale.assert_problem(412, "/problems/precondition-failed");
    assert_eq!(
        app.delete(&path, Some(&operator)).await.status,
        StatusCode::NO_CONTENT
    );
    let after = rows_of(&app, id).await;
    assert!(after.values().all(|n| *n == 0), "{after:?}");
    assert_eq!(
        app.get(&path, Some(&operator)).await.status,
        StatusCode::NOT_FOUND
    );
    // Its people are gone; the other tenant and the content it shares stay.
    app.get("/api/v1/me", Some(&d.agent))
        .await
        .assert_problem(401, "/problems/unauthorized");
    let kept = app
        .get(
            &format!("/api/v1/tickets/{other}/attachments"),
            Some(&keep.agent),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
    let attachment = kept.json()["items"][0]["id"].as_str().unwrap().to_owned();
    let content = app
        .get(
            &format!("/api/v1/attachments/{attachment}/content"),
            Some(&keep.agent),
        )
        .await;
    assert_eq!(content.bytes, shared);
    let erased = app.audit_entries(&operator, "tenant.deleted").await;
    assert_eq!(erased.len(), 1);
    assert_eq!(
        erased[0]["details"]["attachments"], 1,
        "the unshared content"
    );
    // The export outlives the tenant.
    let exports = app.get(&format!("{path}/exports"), Some(&operator)).await;
    assert_eq!(exports.json()["items"][0]["status"], "done");
}

#[actix_web::test]
async fn an_export_imports_into_another_instance_and_exports_the_same_again() {
    let source = app().await;
    let d = desk(&source, "hikkoshi").await;
    let ticket = file(&source, &d.requester, "p1").await;
    attach(&source, &d.agent, &ticket, b"the log the requester sent").await;
    fire(&source, &d.agent, &ticket, "start").await;
    let operator = source.operator_token().await;
    let (_, first) = export(&source, &operator, &d.tenant.id).await;

    let target = app().await;
    let archive_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(archive_file.path(), &first).unwrap();
    // `stageflow tenant import` against the target's database and store.
    let import = || {
        crate::cli::stageflow(archive_file.path().parent().unwrap())
            .env("DATABASE_URL", target.db.url_string())
            .env("STAGEFLOW_DATA_DIR", target.db.data_dir())
            .args(["tenant", "import"])
            .arg(archive_file.path())
            .output()
            .unwrap()
    };
    let imported = import();
    let said = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(
        said.contains("tenant hikkoshi") && said.contains("1 attachments"),
        "{said}"
    );
    // A second import of the same tenant is refused, and writes nothing.
    let again = import();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let target_operator = target.operator_token().await;
    let (_, second) = export(&target, &target_operator, &d.tenant.id).await;
    let (a, b) = (entries(&first), entries(&second));
    // The process travels on its own too, in the catalog format.
    let catalog: Value = serde_json::from_str(&a["catalog/sla_desk.json"]).unwrap();
    assert_eq!(catalog["key"], "sla_desk", "{catalog}");
    assert!(
        catalog["masters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["key"] == "priority")
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, text) in &a {
        if path == "manifest.json" {
            let (mut x, mut y): (Value, Value) = (
                serde_json::from_str(text).unwrap(),
                serde_json::from_str(&b[path]).unwrap(),
            );
            x.as_object_mut().unwrap().remove("exported_at");
            y.as_object_mut().unwrap().remove("exported_at");
            assert_eq!(x, y);
        } else {
            assert_eq!(text, &b[path], "{path} differs after the round trip");
        }
    }

    // The tenant works in its new home: its people sign in, its ticket and attachment are
    // there.
    let agent = target
        .login(Some("hikkoshi"), "agent", crate::helpers::USER_PASSWORD)
        .await;
    let read = target
        .get(&format!("/api/v1/tickets/{ticket}"), Some(&agent))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.json()["state"], "working");
    let files = target
        .get(
            &format!("/api/v1/tickets/{ticket}/attachments"),
            Some(&agent),
        )
        .await;
    let attachment = files.json()["items"][0]["id"].as_str().unwrap().to_owned();
    let content = target
        .get(
            &format!("/api/v1/attachments/{attachment}/content"),
            Some(&agent),
        )
        .await;
    assert_eq!(content.bytes, b"the log the requester sent");
    let admin = target
        .login(Some("hikkoshi"), "admin", ADMIN_PASSWORD)
        .await;
    let events = target.get("/api/v1/events?limit=500", Some(&admin)).await;
    assert_eq!(events.status, StatusCode::OK);
    assert!(!events.json()["items"].as_array().unwrap().is_empty());
}
