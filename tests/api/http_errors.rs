//! Errors produced by the framework itself answer with problem documents too.

use reqwest::{Method, StatusCode};

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn unknown_route_is_404_problem() {
    let app = spawn_app().await;
    for path in ["/nope", "/api/v1/nope", "/api/v2/me", "/healthz/extra"] {
        app.get(path, None)
            .await
            .assert_problem(404, "/problems/not-found");
    }
}

#[actix_web::test]
async fn wrong_method_is_405_problem_with_allow() {
    let app = spawn_app().await;
    let reply = app.request(Method::DELETE, "/healthz", None, None).await;
    reply.assert_problem(405, "/problems/method-not-allowed");
    assert_eq!(reply.header("allow"), Some("GET"));

    let reply = app
        .request(Method::GET, "/api/v1/auth/token", None, None)
        .await;
    reply.assert_problem(405, "/problems/method-not-allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
}

#[actix_web::test]
async fn malformed_json_is_400_problem() {
    let app = spawn_app().await;
    let request = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body("{\"username\": ");
    app.send(request)
        .await
        .assert_problem(400, "/problems/malformed-request");
}

#[actix_web::test]
async fn wrong_content_type_is_415_problem() {
    let app = spawn_app().await;
    let request = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "text/plain")
        .body("username=operator");
    app.send(request)
        .await
        .assert_problem(415, "/problems/unsupported-media-type");
    // No content type at all is the same mistake.
    let request = app.client.post(app.url("/api/v1/auth/token")).body("{}");
    app.send(request)
        .await
        .assert_problem(415, "/problems/unsupported-media-type");
}

#[actix_web::test]
async fn body_over_the_limit_is_413_problem() {
    let app = spawn_app_with(|config| config.max_body_bytes = 1_024).await;
    let body = serde_json::json!({"username": "operator", "password": "x".repeat(2_000)});
    let reply = app.post_json("/api/v1/auth/token", None, &body).await;
    let problem = reply.assert_problem(413, "/problems/payload-too-large");
    assert!(problem["detail"].as_str().unwrap().contains("1024"));
}

#[actix_web::test]
async fn well_formed_but_wrong_shape_is_422_with_field_errors() {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &serde_json::json!({"username": "operator"}),
        )
        .await;
    let problem = reply.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "password");
    assert_eq!(problem["errors"][0]["code"], "required");

    let reply = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &serde_json::json!({"username": "", "password": "x"}),
        )
        .await;
    let problem = reply.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "username");
    assert_eq!(problem["errors"][0]["code"], "length");

    let reply = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &serde_json::json!({"username": "a", "password": "b", "pasword": "c"}),
        )
        .await;
    let problem = reply.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "pasword");
    assert_eq!(problem["errors"][0]["code"], "unknown_field");
}

#[actix_web::test]
async fn successful_responses_are_not_rewritten() {
    let app = spawn_app().await;
    let reply = app.get("/healthz", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
}
