//! Platform operator login and the caller's identity.

use std::time::Duration;

use base64::Engine;
use chrono::TimeDelta;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::json;
use stageflow::auth::token::{SubjectKind, TokenKeys};
use stageflow::clock::Clock;
use stageflow::db::DatabaseUrl;

use crate::helpers::{OPERATOR_PASSWORD, OPERATOR_USERNAME, TestApp, spawn_app};

#[actix_web::test]
async fn operator_logs_in_and_reads_me() {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &json!({"username": OPERATOR_USERNAME, "password": OPERATOR_PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);

    let me = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let me = me.json();
    assert_eq!(me["kind"], "operator");
    assert_eq!(me["username"], OPERATOR_USERNAME);
    assert_eq!(me["tenant"], serde_json::Value::Null);
    assert_eq!(me["roles"], json!(["platform_operator"]));
    assert!(uuid::Uuid::parse_str(me["id"].as_str().unwrap()).is_ok());
}

async fn refused_login(app: &TestApp, body: serde_json::Value) -> String {
    let reply = app.post_json("/api/v1/auth/token", None, &body).await;
    reply.assert_problem(401, "/problems/unauthorized");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    reply.sans_instance()
}

#[actix_web::test]
async fn failed_logins_do_not_reveal_whether_the_account_exists() {
    let app = spawn_app().await;
    let wrong_password = refused_login(
        &app,
        json!({"username": OPERATOR_USERNAME, "password": "not the password"}),
    )
    .await;
    let unknown_user = refused_login(
        &app,
        json!({"username": "nobody", "password": "not the password"}),
    )
    .await;
    let unknown_tenant = refused_login(
        &app,
        json!({"tenant": "acme", "username": OPERATOR_USERNAME, "password": OPERATOR_PASSWORD}),
    )
    .await;
    let impossible_name = refused_login(
        &app,
        json!({"username": "no spaces allowed", "password": "x"}),
    )
    .await;
    assert_eq!(wrong_password, unknown_user);
    assert_eq!(wrong_password, unknown_tenant);
    assert_eq!(wrong_password, impossible_name);
}

#[actix_web::test]
async fn me_needs_a_valid_bearer_token() {
    let app = spawn_app().await;
    app.get("/api/v1/me", None)
        .await
        .assert_problem(401, "/problems/unauthorized");
    app.get("/api/v1/me", Some("not-a-jwt"))
        .await
        .assert_problem(401, "/problems/unauthorized");
    let request = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic b3BlcmF0b3I6eA==");
    app.send(request)
        .await
        .assert_problem(401, "/problems/unauthorized");
}

#[actix_web::test]
async fn access_token_expires_after_its_lifetime() {
    let app = spawn_app().await;
    let token = app.operator_token().await;
    app.clock.advance(TimeDelta::seconds(899));
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
    app.clock.advance(TimeDelta::seconds(1));
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "/problems/unauthorized");
}

#[actix_web::test]
async fn forged_tokens_are_refused() {
    let app = spawn_app().await;
    let token = app.operator_token().await;
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    // alg: none, no signature.
    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // Payload changed after signing.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    // Well-formed, but signed with a key of another installation.
    let foreign_master = stageflow::auth::keys::MasterKey::from_bytes(&[7; 32]);
    let foreign_key =
        stageflow::auth::keys::new_key_pair(&foreign_master, app.clock.now()).unwrap();
    let foreign = TokenKeys::new(
        foreign_master,
        Duration::from_secs(900),
        &[foreign_key],
        app.clock.now(),
    )
    .unwrap()
    .issue(
        SubjectKind::Operator,
        uuid::Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap(),
        None,
        vec![],
        app.clock.now(),
    )
    .unwrap()
    .token;

    for forged in [alg_none, tampered, foreign] {
        app.get("/api/v1/me", Some(&forged))
            .await
            .assert_problem(401, "/problems/unauthorized");
    }
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn deactivated_operator_token_stops_working() {
    let app = spawn_app().await;
    let token = app.operator_token().await;
    let sql = "UPDATE operators SET active = FALSE";
    match app.db.url() {
        DatabaseUrl::Postgres(url) => diesel::PgConnection::establish(&url)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
        DatabaseUrl::Sqlite(path) => diesel::SqliteConnection::establish(&path.to_string_lossy())
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "/problems/unauthorized");
    refused_login(
        &app,
        json!({"username": OPERATOR_USERNAME, "password": OPERATOR_PASSWORD}),
    )
    .await;
}
