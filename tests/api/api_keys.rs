//! API keys act for the user who created them: never more roles than that user holds, no
//! access once the user is deactivated, and an optional expiry.

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, spawn_app};

/// An administrator who is also an agent, and the token it signs in with.
async fn integrator(app: &TestApp, tenant: &Tenant) -> (String, String) {
    let id = app
        .user(tenant, "integrator", &["tenant_admin", "agent"])
        .await;
    let token = app
        .login(
            Some(&tenant.slug),
            "integrator",
            crate::helpers::USER_PASSWORD,
        )
        .await;
    (id, token)
}

async fn create_key(app: &TestApp, token: &str, body: Value) -> Value {
    app.create("/api/v1/api-keys", token, body).await
}

fn secret(key: &Value) -> &str {
    key["secret"].as_str().unwrap()
}

#[actix_web::test]
async fn deactivating_the_creator_suspends_the_key_until_reactivation() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let (creator_id, creator) = integrator(&app, &tenant).await;
    let key = create_key(&app, &creator, json!({"name": "ESB", "roles": ["agent"]})).await;
    assert_eq!(key["created_by"], creator_id.as_str());
    assert_eq!(key["expires_at"], Value::Null);
    assert_eq!(
        app.get("/api/v1/me", Some(secret(&key))).await.status,
        StatusCode::OK
    );
    let listed = app.get("/api/v1/api-keys", Some(&tenant.admin_token)).await;
    let listed = &listed.json()["items"][0];
    assert_eq!(listed["created_by"], creator_id.as_str());
    assert!(listed["last_used_at"].is_string(), "{listed}");

    let deactivated = app
        .delete(
            &format!("/api/v1/users/{creator_id}"),
            Some(&tenant.admin_token),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/me", Some(secret(&key)))
        .await
        .assert_problem(401, "/problems/unauthorized");
    app.get("/api/v1/users", Some(secret(&key)))
        .await
        .assert_problem(401, "/problems/unauthorized");

    let reactivated = app
        .patch_json(
            &format!("/api/v1/users/{creator_id}"),
            Some(&tenant.admin_token),
            &json!({"active": true}),
        )
        .await;
    assert_eq!(reactivated.status, StatusCode::OK, "{}", reactivated.text);
    assert_eq!(
        app.get("/api/v1/me", Some(secret(&key))).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn demoting_the_creator_takes_the_role_from_the_key() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let (creator_id, creator) = integrator(&app, &tenant).await;
    let key = create_key(
        &app,
        &creator,
        json!({"name": "sync", "roles": ["tenant_admin", "agent"]}),
    )
    .await;
    let group = app
        .post_json(
            "/api/v1/groups",
            Some(secret(&key)),
            &json!({"name": "made by key"}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.text);

    let demoted = app
        .patch_json(
            &format!("/api/v1/users/{creator_id}"),
            Some(&tenant.admin_token),
            &json!({"roles": ["agent"]}),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    // The key keeps the role its creator still holds and loses the other.
    let me = app.get("/api/v1/me", Some(secret(&key))).await;
    assert_eq!(me.json()["roles"], json!(["agent"]), "{}", me.text);
    app.post_json(
        "/api/v1/groups",
        Some(secret(&key)),
        &json!({"name": "second"}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
    assert_eq!(
        app.get("/api/v1/users", Some(secret(&key))).await.status,
        StatusCode::OK
    );
    // The key still shows the roles it was given.
    let listed = app.get("/api/v1/api-keys", Some(&tenant.admin_token)).await;
    assert_eq!(
        listed.json()["items"][0]["roles"],
        json!(["tenant_admin", "agent"])
    );

    // With no role of the key left to its creator, the key acts for nobody.
    app.patch_json(
        &format!("/api/v1/users/{creator_id}"),
        Some(&tenant.admin_token),
        &json!({"roles": ["requester"]}),
    )
    .await;
    app.get("/api/v1/me", Some(secret(&key)))
        .await
        .assert_problem(401, "/problems/unauthorized");
}

#[actix_web::test]
async fn a_key_cannot_hold_a_role_its_creator_lacks() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    // The first administrator holds tenant_admin only.
    let refused = app
        .post_json(
            "/api/v1/api-keys",
            Some(&tenant.admin_token),
            &json!({"name": "too much", "roles": ["tenant_admin", "auditor"]}),
        )
        .await
        .assert_problem(403, "/problems/forbidden");
    assert!(
        refused["detail"].as_str().unwrap().contains("auditor"),
        "{refused}"
    );
    // Nothing was created.
    let listed = app.get("/api/v1/api-keys", Some(&tenant.admin_token)).await;
    assert_eq!(listed.json()["items"], json!([]));
    // A key cannot make keys, even with the administrator role.
    let key = create_key(
        &app,
        &tenant.admin_token,
        json!({"name": "admin key", "roles": ["tenant_admin"]}),
    )
    .await;
    app.post_json(
        "/api/v1/api-keys",
        Some(secret(&key)),
        &json!({"name": "child", "roles": ["tenant_admin"]}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
}

#[actix_web::test]
async fn keys_expire_at_their_expiry_and_the_expiry_is_bounded() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let now = app.clock_now();
    let expires = now + TimeDelta::hours(1);
    let key = create_key(
        &app,
        &tenant.admin_token,
        json!({"name": "temp", "roles": ["tenant_admin"], "expires_at": expires}),
    )
    .await;
    let shown: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(key["expires_at"].clone()).unwrap();
    assert_eq!(shown, expires);
    assert_eq!(
        app.get("/api/v1/me", Some(secret(&key))).await.status,
        StatusCode::OK
    );
    app.clock.advance(TimeDelta::minutes(59));
    assert_eq!(
        app.get("/api/v1/me", Some(secret(&key))).await.status,
        StatusCode::OK
    );
    app.clock.advance(TimeDelta::minutes(1));
    app.get("/api/v1/me", Some(secret(&key)))
        .await
        .assert_problem(401, "/problems/unauthorized");

    let now = app.clock_now();
    let admin = app
        .login(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    for bad in [now - TimeDelta::seconds(1), now + TimeDelta::days(731)] {
        let refused = app
            .post_json(
                "/api/v1/api-keys",
                Some(&admin),
                &json!({"name": "bad", "roles": ["tenant_admin"], "expires_at": bad}),
            )
            .await
            .assert_problem(422, "/problems/validation");
        assert_eq!(refused["errors"][0]["field"], "expires_at", "{refused}");
    }
}
