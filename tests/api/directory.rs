//! Users, groups, organizations, roles and the audit log inside a tenant.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, spawn_app};

#[actix_web::test]
async fn roles_decide_who_may_read_and_who_may_change() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let requester = app.user_token(&tenant, "req", &["requester"]).await;
    let partner = app.user_token(&tenant, "partner", &["partner"]).await;
    let agent = app.user_token(&tenant, "agent", &["agent"]).await;
    let auditor = app.user_token(&tenant, "auditor", &["auditor"]).await;

    for token in [&requester, &partner] {
        for path in [
            "/api/v1/users",
            "/api/v1/groups",
            "/api/v1/organizations",
            "/api/v1/audit-log",
            "/api/v1/api-keys",
        ] {
            app.get(path, Some(token))
                .await
                .assert_problem(403, "/problems/forbidden");
        }
        let body = json!({"username": "x", "password": "a long enough password",
            "display_name": "x", "roles": ["tenant_admin"]});
        app.post_json("/api/v1/users", Some(token), &body)
            .await
            .assert_problem(403, "/problems/forbidden");
    }
    assert_eq!(
        app.get("/api/v1/users", Some(&agent)).await.status,
        StatusCode::OK
    );
    app.get("/api/v1/audit-log", Some(&agent))
        .await
        .assert_problem(403, "/problems/forbidden");
    assert_eq!(
        app.get("/api/v1/audit-log", Some(&auditor)).await.status,
        StatusCode::OK
    );
    for token in [&agent, &auditor] {
        app.post_json(
            "/api/v1/organizations",
            Some(token),
            &json!({"name": "x", "kind": "internal"}),
        )
        .await
        .assert_problem(403, "/problems/forbidden");
    }
}

#[actix_web::test]
async fn users_are_managed_with_validation_if_match_and_audited_role_changes() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let org = app
        .create(
            "/api/v1/organizations",
            admin,
            json!({"name": "Partner K.K.", "kind": "partner"}),
        )
        .await;
    let user = app
        .create(
            "/api/v1/users",
            admin,
            json!({"username": "sato", "password": "a long enough password", "display_name": "佐藤",
                "email": "sato@example.jp", "roles": ["partner"], "organization_id": org["id"]}),
        )
        .await;
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["organization_id"], org["id"]);
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));

    // Duplicate username, unknown role, weak password, unknown organization.
    app.post_json("/api/v1/users", Some(admin), &json!({"username": "sato", "password": "a long enough password", "display_name": "x", "roles": ["agent"]}))
        .await
        .assert_problem(409, "/problems/duplicate");
    app.post_json("/api/v1/users", Some(admin), &json!({"username": "kato", "password": "a long enough password", "display_name": "x", "roles": ["wizard"]}))
        .await
        .assert_problem(422, "/problems/validation");
    let weak = app
        .post_json("/api/v1/users", Some(admin), &json!({"username": "kato", "password": "short", "display_name": "x", "roles": ["agent"]}))
        .await;
    assert_eq!(
        weak.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "password"
    );
    let unknown_org = app
        .post_json("/api/v1/users", Some(admin), &json!({"username": "kato", "password": "a long enough password", "display_name": "x", "roles": ["agent"], "organization_id": uuid::Uuid::now_v7()}))
        .await;
    assert_eq!(
        unknown_org.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "organization_id"
    );

    // Grant tenant_admin with If-Match; the grant is audited with what changed.
    let stale = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(admin)
        .header("if-match", "\"9\"")
        .json(&json!({"roles": ["partner", "tenant_admin"]}));
    app.send(stale)
        .await
        .assert_problem(412, "/problems/precondition-failed");
    let granted = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(admin)
        .header("if-match", "\"1\"")
        .json(&json!({"roles": ["partner", "tenant_admin"], "email": null}));
    let granted = app.send(granted).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
    assert_eq!(granted.json()["roles"], json!(["tenant_admin", "partner"]));
    assert!(granted.json()["email"].is_null());
    let changes = app.audit_entries(admin, "user.roles_changed").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["details"]["added"], json!(["tenant_admin"]));
    assert_eq!(changes[0]["details"]["removed"], json!([]));
    assert_eq!(changes[0]["actor"]["name"], "admin");

    let revoked = app
        .patch_json(
            &format!("/api/v1/users/{id}"),
            Some(admin),
            &json!({"roles": ["partner"]}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let changes = app.audit_entries(admin, "user.roles_changed").await;
    assert_eq!(changes[1]["details"]["removed"], json!(["tenant_admin"]));

    // Filters.
    let partners = app
        .get("/api/v1/users?role=partner", Some(admin))
        .await
        .json();
    assert_eq!(partners["items"].as_array().unwrap().len(), 1);
    let of_org = app
        .get(
            &format!(
                "/api/v1/users?organization_id={}",
                org["id"].as_str().unwrap()
            ),
            Some(admin),
        )
        .await
        .json();
    assert_eq!(of_org["items"][0]["username"], "sato");
}

#[actix_web::test]
async fn groups_have_members_and_me_shows_them() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let user_id = app.user(&tenant, "yamada", &["agent"]).await;
    let group = app
        .create(
            "/api/v1/groups",
            admin,
            json!({"name": "Service Desk", "description": "1st line"}),
        )
        .await;
    let gid = group["id"].as_str().unwrap();
    let members = format!("/api/v1/groups/{gid}/members");
    let added = app
        .post_json(&members, Some(admin), &json!({"user_id": user_id}))
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let again = app
        .post_json(&members, Some(admin), &json!({"user_id": user_id}))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    app.post_json(
        &members,
        Some(admin),
        &json!({"user_id": uuid::Uuid::now_v7()}),
    )
    .await
    .assert_problem(422, "/problems/validation");
    let listed = app.get(&members, Some(admin)).await.json();
    assert_eq!(listed["items"], json!([{"user_id": user_id}]));

    let token = app
        .login(Some("acme"), "yamada", crate::helpers::USER_PASSWORD)
        .await;
    let me = app.get("/api/v1/me", Some(&token)).await.json();
    assert_eq!(me["groups"], json!([gid]));

    let removed = app
        .delete(&format!("{members}/{user_id}"), Some(admin))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    app.delete(&format!("{members}/{user_id}"), Some(admin))
        .await
        .assert_problem(404, "/problems/not-found");
    app.post_json(
        "/api/v1/groups",
        Some(admin),
        &json!({"name": "Service Desk"}),
    )
    .await
    .assert_problem(409, "/problems/duplicate");
}

#[actix_web::test]
async fn organizations_are_renamed_with_if_match() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let org = app
        .create(
            "/api/v1/organizations",
            admin,
            json!({"name": "情報システム部", "kind": "internal"}),
        )
        .await;
    let path = format!("/api/v1/organizations/{}", org["id"].as_str().unwrap());
    let got = app.get(&path, Some(admin)).await;
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.json()["kind"], "internal");
    let renamed = app
        .client
        .patch(app.url(&path))
        .bearer_auth(admin)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "IT部"}));
    let renamed = app.send(renamed).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.json()["name"], "IT部");
    app.post_json(
        "/api/v1/organizations",
        Some(admin),
        &json!({"name": "x", "kind": "alien"}),
    )
    .await
    .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn the_audit_log_records_logins_and_is_filtered_and_append_only() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    app.user(&tenant, "yamada", &["agent"]).await;
    assert_eq!(app.login_status(Some("acme"), "yamada", "wrong").await, 401);
    assert_eq!(app.login_status(Some("acme"), "ghost", "wrong").await, 401);

    let failed = app.audit_entries(admin, "login.failed").await;
    let names: Vec<&str> = failed
        .iter()
        .map(|e| e["actor"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["yamada", "ghost"]);
    assert_eq!(failed[0]["client_addr"], "127.0.0.1");
    assert!(!app.audit_entries(admin, "login.succeeded").await.is_empty());
    assert_eq!(app.audit_entries(admin, "user.created").await.len(), 2);

    // Time filter: nothing in the future.
    let later = (app.clock_now() + chrono::TimeDelta::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let none = app
        .get(&format!("/api/v1/audit-log?from={later}"), Some(admin))
        .await
        .json();
    assert!(none["items"].as_array().unwrap().is_empty());

    // The operator's log is the platform's, not the tenant's.
    let op = app.operator_token().await;
    assert_eq!(app.audit_entries(&op, "tenant.created").await.len(), 1);
    assert!(app.audit_entries(&op, "user.created").await.is_empty());

    // No method changes the log.
    for method in [
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let reply = app
            .request(method, "/api/v1/audit-log", Some(admin), Some(&json!({})))
            .await;
        reply.assert_problem(405, "/problems/method-not-allowed");
    }
}

/// Names people compare by eye are one name whatever their width or case: `ａｄｍｉｎ` beside
/// `admin` is a 409, and the canonical form is what is stored, shown and signed in with.
#[actix_web::test]
async fn look_alike_usernames_and_slugs_are_duplicates() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let body = |username: &str| {
        json!({"username": username, "password": "a long enough password",
            "display_name": "x", "roles": ["agent"]})
    };
    for look_alike in ["ａｄｍｉｎ", "ADMIN", "Ａｄｍｉｎ"] {
        app.post_json("/api/v1/users", Some(admin), &body(look_alike))
            .await
            .assert_problem(409, "/problems/duplicate");
    }
    let sato = app.create("/api/v1/users", admin, body("Ｓａｔｏ")).await;
    assert_eq!(sato["username"], "sato");
    app.post_json("/api/v1/users", Some(admin), &body("SATO"))
        .await
        .assert_problem(409, "/problems/duplicate");
    // Signing in takes any form of the tenant slug and the username.
    let token = app
        .login(Some("ＡＣＭＥ"), "ｓａｔｏ", "a long enough password")
        .await;
    let me = app.get("/api/v1/me", Some(&token)).await.json();
    assert_eq!(me["username"], "sato");

    let op = app.operator_token().await;
    for look_alike in ["ａｃｍｅ", "ACME"] {
        app.post_json(
            "/api/v1/tenants",
            Some(&op),
            &json!({"account_id": tenant.account_id, "slug": look_alike, "name": "x",
                "time_zone": "UTC", "admin": {"username": "admin", "password": ADMIN_PASSWORD}}),
        )
        .await
        .assert_problem(409, "/problems/duplicate");
    }
}
