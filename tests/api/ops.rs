//! Liveness, readiness and the served OpenAPI document.

use diesel::Connection;
use diesel::connection::SimpleConnection;
use reqwest::StatusCode;

use crate::helpers::{TestDb, spawn_app};
use stageflow::db::{Backend, DatabaseUrl};

#[actix_web::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let reply = app.get("/healthz", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ok");
}

#[actix_web::test]
async fn readyz_names_the_backend() {
    let app = spawn_app().await;
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let expected = match app.db.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    assert_eq!(reply.json()["database"], expected);
    assert_eq!(reply.json()["status"], "ready");
}

/// Forgets the latest applied migration, as if the binary were newer than the database.
fn forget_latest_migration(db: &TestDb) {
    let sql = "DELETE FROM __diesel_schema_migrations WHERE version = \
               (SELECT MAX(version) FROM __diesel_schema_migrations)";
    match db.url() {
        DatabaseUrl::Postgres(url) => diesel::PgConnection::establish(&url)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
        DatabaseUrl::Sqlite(path) => diesel::SqliteConnection::establish(&path.to_string_lossy())
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

#[actix_web::test]
async fn readyz_is_503_while_migrations_are_pending() {
    let app = spawn_app().await;
    forget_latest_migration(&app.db);
    let reply = app.get("/readyz", None).await;
    let body = reply.assert_problem(503, "/problems/unavailable");
    // The reason is logged; the body does not describe the server's internals.
    assert!(!body["detail"].as_str().unwrap().contains("migrat"));
    // Liveness is unaffected: the process is fine, the database is not.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn openapi_document_is_served() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let served = reply.json();
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served, stageflow::api::openapi_document().unwrap());
}

/// The API reference page embeds the served document and loads nothing from elsewhere; its
/// rendering in a real browser is checked by `scripts/check-docs-page.sh` in CI.
#[actix_web::test]
async fn the_reference_page_is_served_with_its_assets_and_no_cdn() {
    let app = spawn_app().await;
    let page = app.get("/api/docs", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let start = page.text.find(r#"id="redoc-spec">"#).unwrap() + r#"id="redoc-spec">"#.len();
    let end = start + page.text[start..].find("</script>").unwrap();
    let embedded: serde_json::Value = serde_json::from_str(&page.text[start..end]).unwrap();
    let served = app.get("/api/v1/openapi.json", None).await.json();
    assert_eq!(embedded, served);
    for src in ["/api/docs/redoc.standalone.js", "/api/docs/init.js"] {
        assert!(page.text.contains(&format!(r#"src="{src}""#)), "{src}");
        let script = app.get(src, None).await;
        assert_eq!(script.status, StatusCode::OK, "{src}");
        assert!(
            script
                .header("content-type")
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(script.text.len() > 100, "{src}");
    }
    assert!(!page.text.contains(r#"src="http"#) && !page.text.contains(r#"href="http"#));
    // JSON endpoints keep the strict policy.
    let json = app.get("/healthz", None).await;
    assert_eq!(
        json.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
}

/// A pooled connection is handed out without a ping while it was back in the pool less than
/// `db::TRUSTED_FOR` ago (a round trip saved per checkout under load); one idle for longer
/// is pinged, and one the server dropped meanwhile is replaced rather than failing a
/// request. PostgreSQL only: its server can drop a session (SQLite has none).
#[actix_web::test]
async fn connections_the_server_dropped_while_idle_are_replaced() {
    let app = spawn_app().await;
    if app.db.backend() != Backend::Postgres {
        return;
    }
    let (tenant, _) = crate::tickets::desk_tenant(&app, "acme").await;
    let token = tenant.admin_token.clone();
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
    // Every session of this test's database but the one doing it, as a server restart or an
    // idle timeout in a proxy would.
    let DatabaseUrl::Postgres(url) = app.db.url() else {
        unreachable!()
    };
    let mut admin = diesel::PgConnection::establish(&url).unwrap();
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .unwrap();
    // The pool's window is measured on its own monotonic clock, not the app's test clock.
    std::thread::sleep(stageflow::db::TRUSTED_FOR + std::time::Duration::from_millis(100));
    // More requests than the pool has connections (8), each two checkouts: none fails.
    for _ in 0..12 {
        let reply = app.get("/api/v1/me", Some(&token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
}
