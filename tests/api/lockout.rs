//! Lock-out under concurrency, per-account and per-address limits, trusted proxies, the
//! hashing queue, and refresh limits (issue 12, points 1 and 6).

use chrono::TimeDelta;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stageflow::auth::admission::HashLane;
use stageflow::config::{Argon2Params, Config};
use stageflow::domain::ids::TenantId;
use stageflow::domain::network::TrustedProxies;

use crate::helpers::{
    ADMIN_PASSWORD, OPERATOR_PASSWORD, OPERATOR_USERNAME, Reply, TestApp, USER_PASSWORD,
    spawn_app_with,
};

/// Hashing slow enough (a few milliseconds) that a burst is still being checked when the
/// first answers come back.
fn slow_hashing(config: &mut Config) {
    config.argon2 = Argon2Params {
        memory_kib: 4_096,
        iterations: 2,
        parallelism: 1,
    };
}

fn token_request(tenant: Option<&str>, username: &str, password: &str) -> Value {
    let mut body = json!({"username": username, "password": password});
    if let Some(tenant) = tenant {
        body["tenant"] = tenant.into();
    }
    body
}

/// 40 wrong passwords at once and, while they are being checked, the right one: the statuses
/// of all 41 answers.
async fn burst(app: &TestApp, tenant: Option<&str>, username: &str, right: &str) -> Vec<u16> {
    let wrong = token_request(tenant, username, "wrong password");
    let mut pending: FuturesUnordered<_> = (0..40)
        .map(|_| app.post_json("/api/v1/auth/token", None, &wrong))
        .collect();
    // The right password goes out once the first wrong one is answered: the other 39 are
    // queued at the hashing pool ahead of it, and the account was not yet locked when its
    // request was read.
    let first = pending.next().await.unwrap();
    let right = token_request(tenant, username, right);
    let (right_reply, rest) = futures_util::future::join(
        app.post_json("/api/v1/auth/token", None, &right),
        pending.collect::<Vec<Reply>>(),
    )
    .await;
    let mut statuses: Vec<u16> = rest.iter().map(|r| r.status.as_u16()).collect();
    statuses.push(first.status.as_u16());
    statuses.push(right_reply.status.as_u16());
    statuses
}

async fn count(app: &TestApp, token: &str, action: &str) -> usize {
    app.audit_entries(token, action).await.len()
}

#[actix_web::test]
async fn a_burst_of_wrong_passwords_locks_at_the_threshold_and_the_right_one_is_refused() {
    let app = spawn_app_with(slow_hashing).await;
    let tenant = app.tenant("acme").await;
    let user_id = app.user(&tenant, "yamada", &["agent"]).await;

    let statuses = burst(&app, Some("acme"), "yamada", USER_PASSWORD).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // Exactly the threshold of failures was counted; everything after met the lock.
    assert_eq!(count(&app, &tenant.admin_token, "login.failed").await, 5);
    assert_eq!(count(&app, &tenant.admin_token, "user.locked").await, 1);
    assert_eq!(
        count(&app, &tenant.admin_token, "login.refused_locked").await,
        36
    );
    assert_eq!(count(&app, &tenant.admin_token, "login.succeeded").await, 1); // the admin
    let user = app
        .get(
            &format!("/api/v1/users/{user_id}"),
            Some(&tenant.admin_token),
        )
        .await
        .json();
    assert!(user["locked_until"].is_string(), "{user}");

    // Still locked for the right password, until an admin unlocks.
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        401
    );
    let unlocked = app
        .post_json(
            &format!("/api/v1/users/{user_id}/unlock"),
            Some(&tenant.admin_token),
            &json!({}),
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.text);
    assert_eq!(
        app.login_status(Some("acme"), "yamada", USER_PASSWORD)
            .await,
        200
    );
}

#[actix_web::test]
async fn the_operator_is_locked_out_the_same_way_until_the_lock_expires() {
    let app = spawn_app_with(slow_hashing).await;
    let operator = app.operator_token().await;

    let statuses = burst(&app, None, OPERATOR_USERNAME, OPERATOR_PASSWORD).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(count(&app, &operator, "login.failed").await, 5);
    let locked = app.audit_entries(&operator, "operator.locked").await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0]["target_kind"], "operator");
    assert_eq!(count(&app, &operator, "login.refused_locked").await, 36);

    assert_eq!(
        app.login_status(None, OPERATOR_USERNAME, OPERATOR_PASSWORD)
            .await,
        401
    );
    app.clock.advance(TimeDelta::minutes(14));
    assert_eq!(
        app.login_status(None, OPERATOR_USERNAME, OPERATOR_PASSWORD)
            .await,
        401
    );
    app.clock.advance(TimeDelta::minutes(1));
    assert_eq!(
        app.login_status(None, OPERATOR_USERNAME, OPERATOR_PASSWORD)
            .await,
        200
    );
}

#[actix_web::test]
async fn token_requests_are_limited_per_account_whatever_the_address() {
    let app = spawn_app_with(|c| c.account_rate_per_minute = 3).await;
    let tenant = app.tenant("acme").await;
    app.user(&tenant, "yamada", &["agent"]).await;
    for _ in 0..3 {
        assert_eq!(app.login_status(Some("acme"), "yamada", "wrong").await, 401);
    }
    // Another spelling of the same account shares the bucket.
    let reply = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &token_request(Some("ACME"), "Yamada", USER_PASSWORD),
        )
        .await;
    reply.assert_problem(429, "/problems/rate-limited");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    // Other accounts are not affected.
    assert_eq!(
        app.login_status(Some("acme"), "admin", ADMIN_PASSWORD)
            .await,
        200
    );
}

/// The address the audit log recorded for the latest failed login of `username`.
async fn audited_address(app: &TestApp, admin: &str, username: &str) -> Value {
    let failed = app.audit_entries(admin, "login.failed").await;
    let entry = failed
        .iter()
        .rev()
        .find(|e| e["actor"]["name"] == username)
        .unwrap();
    entry["client_addr"].clone()
}

async fn forwarded_login(app: &TestApp, forwarded_for: &str, username: &str) -> Reply {
    let request = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("X-Forwarded-For", forwarded_for)
        .json(&token_request(Some("acme"), username, "wrong"));
    app.send(request).await
}

#[actix_web::test]
async fn a_forwarded_address_from_an_untrusted_peer_changes_nothing() {
    let app = spawn_app_with(|c| c.login_rate_per_minute = 3).await;
    // Two token requests from this address: the operator's and the admin's.
    let tenant = app.tenant("acme").await;
    let first = forwarded_login(&app, "198.51.100.1", "spoof-1").await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        audited_address(&app, &tenant.admin_token, "spoof-1").await,
        "127.0.0.1"
    );
    // A new forged address per request does not buy a new bucket.
    forwarded_login(&app, "198.51.100.2", "spoof-2")
        .await
        .assert_problem(429, "/problems/rate-limited");
}

#[actix_web::test]
async fn a_trusted_proxy_names_the_client() {
    let app = spawn_app_with(|c| {
        c.login_rate_per_minute = 3;
        c.trusted_proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
    })
    .await;
    // Two token requests without the header: the proxy's own address counts them.
    let tenant = app.tenant("acme").await;
    // The client forged the left entry; the proxy chain appended the real one.
    for _ in 0..3 {
        let reply = forwarded_login(&app, "1.2.3.4, 198.51.100.7, 10.1.1.1", "via-proxy").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    assert_eq!(
        audited_address(&app, &tenant.admin_token, "via-proxy").await,
        "198.51.100.7"
    );
    forwarded_login(&app, "198.51.100.7", "via-proxy")
        .await
        .assert_problem(429, "/problems/rate-limited");
    // Each client behind the proxy has its own bucket.
    assert_eq!(
        forwarded_login(&app, "198.51.100.8", "other-client")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A malformed header counts as the proxy itself: its third request, then its limit.
    assert_eq!(
        forwarded_login(&app, "not-an-address", "garbled")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        audited_address(&app, &tenant.admin_token, "garbled").await,
        "127.0.0.1"
    );
    forwarded_login(&app, "198.51.100.9, junk", "garbled")
        .await
        .assert_problem(429, "/problems/rate-limited");
}

#[actix_web::test]
async fn a_full_hashing_lane_answers_503_and_leaves_other_tenants_alone() {
    let app = spawn_app_with(|c| c.hash_queue_size = 2).await;
    let acme = app.tenant("acme").await;
    app.tenant("globex").await;
    // Everything acme may hold of the queue is taken (a tenant gets half of it).
    let acme_id = TenantId(acme.id.parse().unwrap());
    let held = app
        .state
        .passwords
        .admission()
        .try_admit(HashLane::Tenant(acme_id))
        .unwrap();
    let reply = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &token_request(Some("acme"), "admin", ADMIN_PASSWORD),
        )
        .await;
    reply.assert_problem(503, "/problems/unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
    let changed = app
        .post_json(
            "/api/v1/me/password",
            Some(&acme.admin_token),
            &json!({"current_password": ADMIN_PASSWORD, "new_password": "another long passphrase"}),
        )
        .await;
    changed.assert_problem(503, "/problems/unavailable");
    assert_eq!(
        app.login_status(Some("globex"), "admin", ADMIN_PASSWORD)
            .await,
        200
    );
    drop(held);
    assert_eq!(
        app.login_status(Some("acme"), "admin", ADMIN_PASSWORD)
            .await,
        200
    );
}

async fn refresh(app: &TestApp, token: &Value) -> Reply {
    app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": token}),
    )
    .await
}

#[actix_web::test]
async fn session_requests_are_limited_per_principal_and_per_address() {
    let app = spawn_app_with(|c| c.account_rate_per_minute = 2).await;
    let tenant = app.tenant("acme").await;
    let pair = app.login_pair(Some("acme"), "admin", ADMIN_PASSWORD).await;
    let second = refresh(&app, &pair["refresh_token"]).await.json();
    let third = refresh(&app, &second["refresh_token"]).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text);
    let limited = refresh(&app, &third.json()["refresh_token"]).await;
    limited.assert_problem(429, "/problems/rate-limited");
    assert!(limited.header("retry-after").is_some());

    // Password changes count per principal too (the admin's bucket is spent).
    app.post_json(
        "/api/v1/me/password",
        Some(&tenant.admin_token),
        &json!({"current_password": "not it", "new_password": "another long passphrase"}),
    )
    .await
    .assert_problem(429, "/problems/rate-limited");

    let app = spawn_app_with(|c| c.session_rate_per_minute = 2).await;
    for _ in 0..2 {
        let reply = app
            .post_json(
                "/api/v1/auth/logout",
                None,
                &json!({"refresh_token": "garbage"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    app.post_json(
        "/api/v1/auth/logout",
        None,
        &json!({"refresh_token": "garbage"}),
    )
    .await
    .assert_problem(429, "/problems/rate-limited");
    refresh(&app, &json!("garbage"))
        .await
        .assert_problem(429, "/problems/rate-limited");
}

#[actix_web::test]
async fn locked_and_deactivated_accounts_cannot_refresh() {
    let app = spawn_app_with(|_| {}).await;
    let tenant = app.tenant("acme").await;
    let user_id = app.user(&tenant, "yamada", &["agent"]).await;
    let pair = app.login_pair(Some("acme"), "yamada", USER_PASSWORD).await;
    for _ in 0..5 {
        app.login_status(Some("acme"), "yamada", "wrong").await;
    }
    refresh(&app, &pair["refresh_token"])
        .await
        .assert_problem(401, "/problems/unauthorized");
    // The refused token was not spent: it works once the account is unlocked.
    app.post_json(
        &format!("/api/v1/users/{user_id}/unlock"),
        Some(&tenant.admin_token),
        &json!({}),
    )
    .await;
    let renewed = refresh(&app, &pair["refresh_token"]).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    assert_eq!(
        count(&app, &tenant.admin_token, "refresh_token.reused").await,
        0
    );

    let deleted = app
        .delete(
            &format!("/api/v1/users/{user_id}"),
            Some(&tenant.admin_token),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    refresh(&app, &renewed.json()["refresh_token"])
        .await
        .assert_problem(401, "/problems/unauthorized");

    // The operator: locked means no refresh either.
    let operator = app
        .login_pair(None, OPERATOR_USERNAME, OPERATOR_PASSWORD)
        .await;
    for _ in 0..5 {
        app.login_status(None, OPERATOR_USERNAME, "wrong").await;
    }
    refresh(&app, &operator["refresh_token"])
        .await
        .assert_problem(401, "/problems/unauthorized");
}

#[actix_web::test]
async fn a_refresh_family_ends_at_its_absolute_lifetime() {
    let app = spawn_app_with(|c| {
        c.refresh_token_ttl = std::time::Duration::from_secs(3_600);
        c.refresh_family_max_age = std::time::Duration::from_secs(7_200);
    })
    .await;
    app.tenant("acme").await;
    let mut token =
        app.login_pair(Some("acme"), "admin", ADMIN_PASSWORD).await["refresh_token"].clone();
    for _ in 0..2 {
        app.clock.advance(TimeDelta::minutes(50));
        let renewed = refresh(&app, &token).await;
        assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
        token = renewed.json()["refresh_token"].clone();
    }
    // 150 minutes after the login: the latest token is 50 minutes old, but the family is over.
    app.clock.advance(TimeDelta::minutes(50));
    refresh(&app, &token)
        .await
        .assert_problem(401, "/problems/unauthorized");
    // A new login starts a new family.
    let fresh = app.login_pair(Some("acme"), "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        refresh(&app, &fresh["refresh_token"]).await.status,
        StatusCode::OK
    );
}
