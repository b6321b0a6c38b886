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

#[actix_web::test]
async fn a_query_value_of_the_wrong_type_is_422_like_a_body() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    for query in ["limit=abc", "limit=10.0", "limit=0", "cursor=nonsense!"] {
        let problem = app
            .get(&format!("/api/v1/plans?{query}"), Some(&op))
            .await
            .assert_problem(422, "/problems/validation");
        assert!(
            problem["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{query}"
        );
    }
    let reply = app.get("/api/v1/plans?limit=2", Some(&op)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[actix_web::test]
async fn if_match_compares_strongly_and_rejects_malformed_tags() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let plan = app.create_plan(&op, 5, 5).await;
    let patch = |tag: &'static str| {
        app.client
            .patch(app.url(&format!("/api/v1/plans/{plan}")))
            .bearer_auth(&op)
            .header("if-match", tag)
            .json(&serde_json::json!({"max_users": 50}))
    };
    // A weak tag never matches under If-Match (RFC 9110), even of the current version.
    app.send(patch("W/\"1\""))
        .await
        .assert_problem(412, "/problems/precondition-failed");
    for malformed in ["\"1", "1", "\"\"", "\"a\"", "W/1"] {
        app.send(patch(malformed))
            .await
            .assert_problem(400, "/problems/malformed-request");
    }
    // None of them changed anything: the plan is still at version 1.
    let current = app.get(&format!("/api/v1/plans/{plan}"), Some(&op)).await;
    assert_eq!(current.header("etag"), Some("\"1\""));
    let reply = app.send(patch("\"1\"")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("etag"), Some("\"2\""));
}
