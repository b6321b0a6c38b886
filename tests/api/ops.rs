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
