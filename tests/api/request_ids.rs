//! Request ids on every response and in every problem; CORS for configured browser origins.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};
use crate::tickets::desk_tenant;

#[actix_web::test]
async fn every_response_carries_a_request_id_and_problems_name_it() {
    let app = spawn_app().await;
    let health = app.get("/healthz", None).await;
    let generated = health.header("x-request-id").unwrap().to_owned();
    assert!(uuid::Uuid::try_parse(&generated).is_ok(), "{generated}");
    let missing = app.get("/api/v1/no-such-thing", None).await;
    let problem = missing.assert_problem(404, "/problems/not-found");
    assert_eq!(problem["instance"], missing.header("x-request-id").unwrap());
    assert_ne!(missing.header("x-request-id").unwrap(), generated);

    // A client's well-formed id is kept, in the header and the problem.
    let mine = "adapter-7:0190f3c2.retry_2";
    let reply = app
        .send(
            app.client
                .get(app.url("/api/v1/tickets"))
                .header("x-request-id", mine),
        )
        .await;
    assert_eq!(reply.header("x-request-id"), Some(mine));
    assert_eq!(
        reply.assert_problem(401, "/problems/unauthorized")["instance"],
        mine
    );
}

#[actix_web::test]
async fn a_malformed_request_id_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (_tenant, pm) = desk_tenant(&app, "acme").await;
    for bad in ["has spaces", &"x".repeat(129), "quote\"d"] {
        let reply = app
            .send(
                app.client
                    .post(app.url("/api/v1/tickets"))
                    .bearer_auth(&pm)
                    .header("x-request-id", bad)
                    .json(&json!({"template": "desk", "fields": {"title": "x"}})),
            )
            .await;
        let problem = reply.assert_problem(400, "/problems/malformed-request");
        assert!(problem["detail"].as_str().unwrap().contains("X-Request-Id"));
        // The refusal has an id of its own, never the client's bytes.
        let id = reply.header("x-request-id").unwrap();
        assert!(uuid::Uuid::try_parse(id).is_ok());
        assert_eq!(problem["instance"], id);
    }
    let tickets = app.get("/api/v1/tickets", Some(&pm)).await.json();
    assert!(tickets["items"].as_array().unwrap().is_empty());
}

const DESK: &str = "https://desk.example.jp";

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> crate::helpers::Reply {
    app.send(
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/tickets"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            ),
    )
    .await
}

#[actix_web::test]
async fn cors_serves_configured_origins_only() {
    let app = spawn_app_with(|c| c.cors_origins = vec![DESK.to_owned()]).await;
    let allowed = preflight(&app, DESK).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(DESK));
    let methods = allowed.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("PATCH") && methods.contains("POST"),
        "{methods}"
    );
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("idempotency-key") && headers.contains("if-match"),
        "{headers}"
    );

    // Another origin's preflight is a clear 400 problem and grants nothing.
    let refused = preflight(&app, "https://evil.example").await;
    let problem = refused.assert_problem(400, "/problems/http-400");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("origin")
    );
    assert!(refused.header("access-control-allow-origin").is_none());

    // Actual requests: the allowed origin may read the response and its headers.
    let reply = app
        .send(app.client.get(app.url("/healthz")).header("origin", DESK))
        .await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(DESK));
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    let other = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.header("access-control-allow-origin").is_none());

    // Off by default: no CORS headers, whoever asks.
    let plain = spawn_app().await;
    let reply = preflight(&plain, DESK).await;
    assert!(reply.header("access-control-allow-origin").is_none());
}
