//! Tenant logins: refresh rotation, logout, password change, lock-out, rate limiting,
//! token validity.

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, USER_PASSWORD, spawn_app, spawn_app_with};

#[actix_web::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_the_family() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let first = app.login_pair(Some("acme"), "admin", ADMIN_PASSWORD).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let second = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": first_refresh}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let second = second.json();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(first_refresh, second_refresh);
    let me = app
        .get("/api/v1/me", Some(second["access_token"].as_str().unwrap()))
        .await;
    assert_eq!(me.json()["username"], "admin");

    // The spent token comes back: refused, and the whole family with it.
    app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": first_refresh}),
    )
    .await
    .assert_problem(401, "/problems/unauthorized");
    app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": second_refresh}),
    )
    .await
    .assert_problem(401, "/problems/unauthorized");
    assert_eq!(
        app.audit_entries(&tenant.admin_token, "refresh_token.reused")
            .await
            .len(),
        1
    );

    // Garbage is a plain 401.
    app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": "garbage"}),
    )
    .await
    .assert_problem(401, "/problems/unauthorized");
}

#[actix_web::test]
async fn refresh_tokens_expire_and_logout_revokes() {
    let app = spawn_app_with(|c| c.refresh_token_ttl = std::time::Duration::from_secs(3_600)).await;
    app.tenant("acme").await;
    let pair = app.login_pair(Some("acme"), "admin", ADMIN_PASSWORD).await;
    let refresh = pair["refresh_token"].as_str().unwrap();
    let logout = app
        .post_json(
            "/api/v1/auth/logout",
            None,
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": refresh}),
    )
    .await
    .assert_problem(401, "/problems/unauthorized");

    let pair = app.login_pair(Some("acme"), "admin", ADMIN_PASSWORD).await;
    app.clock.advance(TimeDelta::hours(1));
    app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
    .assert_problem(401, "/problems/unauthorized");
}

#[actix_web::test]
async fn operator_sessions_refresh_too() {
    let app = spawn_app().await;
    let pair = app
        .login_pair(
            None,
            crate::helpers::OPERATOR_USERNAME,
            crate::helpers::OPERATOR_PASSWORD,
        )
        .await;
    let renewed = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    let me = app
        .get(
            "/api/v1/me",
            Some(renewed.json()["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(me.json()["kind"], "operator");
}

#[actix_web::test]
async fn password_change_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    app.user(&tenant, "yamada", &["agent"]).await;
    let pair = app.login_pair(Some("acme"), "yamada", USER_PASSWORD).await;
    let token = pair["access_token"].as_str().unwrap();

    let wrong = app
        .post_json(
            "/api/v1/me/password",
            Some(token),
            &json!({"current_password": "not it", "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(
        wrong.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "current_password"
    );
    for weak in ["short", "yamada-is-my-name-forever"] {
        let reply = app
            .post_json(
                "/api/v1/me/password",
                Some(token),
                &json!({"current_password": USER_PASSWORD, "new_password": weak}),
            )
            .await;
        assert_eq!(
            reply.assert_problem(422, "/problems/validation")["errors"][0]["field"],
            "new_password"
        );
    }
    let changed = app
        .post_json(
            "/api/v1/me/password",
            Some(token),
            &json!({"current_password": USER_PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text);
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        401
    );
    assert_eq!(
        app.login_status(Some("acme"), "yamada", "a brand new passphrase")
            .await,
        200
    );
    app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
    .assert_problem(401, "/problems/unauthorized");
}

#[actix_web::test]
async fn five_failures_lock_the_account_for_fifteen_minutes() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let user_id = app.user(&tenant, "yamada", &["agent"]).await;
    for _ in 0..5 {
        assert_eq!(
            app.login_status(Some("acme"), "yamada", "wrong password")
                .await,
            401
        );
    }
    // Locked: even the right password is refused, with the same answer.
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        401
    );
    let locked = app.audit_entries(&tenant.admin_token, "user.locked").await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0]["target_id"], user_id.as_str());
    let user = app
        .get(
            &format!("/api/v1/users/{user_id}"),
            Some(&tenant.admin_token),
        )
        .await
        .json();
    assert!(user["locked_until"].is_string());

    app.clock.advance(TimeDelta::minutes(14));
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        401
    );
    app.clock.advance(TimeDelta::minutes(1));
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        200
    );
}

#[actix_web::test]
async fn an_admin_can_unlock_at_once() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let user_id = app.user(&tenant, "yamada", &["agent"]).await;
    for _ in 0..5 {
        app.login_status(Some("acme"), "yamada", "wrong password")
            .await;
    }
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        401
    );
    let agent = app.user_token(&tenant, "other", &["agent"]).await;
    app.post_json(
        &format!("/api/v1/users/{user_id}/unlock"),
        Some(&agent),
        &json!({}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
    let unlocked = app
        .post_json(
            &format!("/api/v1/users/{user_id}/unlock"),
            Some(&tenant.admin_token),
            &json!({}),
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.text);
    assert!(unlocked.json()["locked_until"].is_null());
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        200
    );
    assert_eq!(
        app.audit_entries(&tenant.admin_token, "user.unlocked")
            .await
            .len(),
        1
    );
}

#[actix_web::test]
async fn token_requests_are_rate_limited_per_client() {
    let app = spawn_app_with(|c| c.login_rate_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(app.login_status(None, "nobody", "x").await, 401);
    }
    let reply = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &json!({"username": "nobody", "password": "x"}),
        )
        .await;
    reply.assert_problem(429, "/problems/rate-limited");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
}

#[actix_web::test]
async fn user_tokens_stop_at_expiry_and_at_deactivation() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let user_id = app.user(&tenant, "yamada", &["agent"]).await;
    let token = app.login(Some("acme"), "yamada", USER_PASSWORD).await;
    app.clock.advance(TimeDelta::minutes(15));
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "/problems/unauthorized");

    let token = app.login(Some("acme"), "yamada", USER_PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
    let admin = app
        .login(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let deleted = app
        .delete(&format!("/api/v1/users/{user_id}"), Some(&admin))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "/problems/unauthorized");
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        401
    );
    // History keeps the user.
    let user = app
        .get(&format!("/api/v1/users/{user_id}"), Some(&admin))
        .await
        .json();
    assert_eq!(user["active"], false);
    assert_eq!(app.audit_entries(&admin, "user.deactivated").await.len(), 1);
}

/// A read by a caller this node remembers starts without a trip for the credential; the read's
/// own database work checks the caller, and a changed caller gets the read answered again with
/// the caller read fresh (ADR-34). So a role given or taken counts from the next read, and a
/// deactivated user is refused at once, as when every request read the caller first.
#[actix_web::test]
async fn reads_by_a_remembered_caller_follow_role_changes_and_deactivation_at_once() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let user_id = app.user(&tenant, "yamada", &["agent"]).await;
    let token = app.login(Some("acme"), "yamada", USER_PASSWORD).await;
    let admin = &tenant.admin_token;
    let user = format!("/api/v1/users/{user_id}");
    let set_roles = |roles: serde_json::Value| {
        let app = &app;
        let user = user.clone();
        async move {
            let reply = app
                .patch_json(&user, Some(admin), &json!({ "roles": roles }))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        }
    };
    let metrics = crate::metrics::scrape(&app, None).await;
    let count = |all: &[(String, f64)], verdict: &str| {
        let series = format!(r#"stageflow_auth_deferred_checks_total{{verdict="{verdict}"}}"#);
        crate::metrics::value(all, &series).unwrap_or(0.0)
    };

    // An agent may not list the API keys; remembered, it still may read its own account.
    app.get("/api/v1/api-keys", Some(&token))
        .await
        .assert_problem(403, "/problems/forbidden");
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.json()["roles"], json!(["agent"]), "{}", me.text);

    // Made an administrator: the remembered agent would be refused, the fresh one is not.
    set_roles(json!(["tenant_admin", "agent"])).await;
    let keys = app.get("/api/v1/api-keys", Some(&token)).await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.text);
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(
        me.json()["roles"],
        json!(["tenant_admin", "agent"]),
        "{}",
        me.text
    );

    // The role taken away again: the remembered administrator would be let in, and is not.
    set_roles(json!(["agent"])).await;
    app.get("/api/v1/api-keys", Some(&token))
        .await
        .assert_problem(403, "/problems/forbidden");

    // Deactivated: refused at once, on a read that touches the database and on one that
    // would not have.
    let deleted = app.delete(&user, Some(admin)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/tickets", Some(&token))
        .await
        .assert_problem(401, "/problems/unauthorized");
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "/problems/unauthorized");

    // The cached path was taken and its checks both passed and failed.
    let after = crate::metrics::scrape(&app, None).await;
    assert!(count(&after, "passed") >= count(&metrics, "passed") + 2.0);
    assert!(count(&after, "changed") >= count(&metrics, "changed") + 3.0);
}

#[actix_web::test]
async fn api_keys_authenticate_until_revoked_and_never_show_their_secret_again() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    // A key holds only roles its creator holds: an administrator who is also an agent.
    let integrator = app
        .user_token(&tenant, "integrator", &["tenant_admin", "agent"])
        .await;
    let created = app
        .create(
            "/api/v1/api-keys",
            &integrator,
            json!({"name": "ESB", "roles": ["agent"]}),
        )
        .await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("sfk_"));
    let id = created["id"].as_str().unwrap();

    let me = app.get("/api/v1/me", Some(secret)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["kind"], "api_key");
    assert_eq!(me.json()["roles"], json!(["agent"]));
    // An agent key may read the directory but not administer it.
    assert_eq!(
        app.get("/api/v1/users", Some(secret)).await.status,
        StatusCode::OK
    );
    app.post_json("/api/v1/groups", Some(secret), &json!({"name": "x"}))
        .await
        .assert_problem(403, "/problems/forbidden");

    let listed = app.get("/api/v1/api-keys", Some(&tenant.admin_token)).await;
    assert!(!listed.text.contains(secret));
    let listed = listed.json();
    assert_eq!(listed["items"][0]["id"], id);
    assert!(listed["items"][0]["last_used_at"].is_string());
    assert!(listed["items"][0].get("secret").is_none());

    // A tampered secret fails; so does the key once revoked.
    let tampered = format!("{}x", &secret[..secret.len() - 1]);
    app.get("/api/v1/me", Some(&tampered))
        .await
        .assert_problem(401, "/problems/unauthorized");
    let revoked = app
        .delete(&format!("/api/v1/api-keys/{id}"), Some(&tenant.admin_token))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/me", Some(secret))
        .await
        .assert_problem(401, "/problems/unauthorized");
    assert_eq!(
        app.audit_entries(&tenant.admin_token, "api_key.created")
            .await
            .len(),
        1
    );
    assert_eq!(
        app.audit_entries(&tenant.admin_token, "api_key.revoked")
            .await
            .len(),
        1
    );
}
