//! Plans, accounts, tenants, caps and usage: the platform operator's side.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, spawn_app};

#[actix_web::test]
async fn plans_are_created_read_listed_and_updated_with_if_match() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let reply = app
        .post_json(
            "/api/v1/plans",
            Some(&op),
            &json!({"name": "Standard", "max_tenants": 3, "max_processes": 20, "max_users": 100}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let plan = reply.json();
    let id = plan["id"].as_str().unwrap();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/plans/{id}").as_str())
    );
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(plan["max_users"], 100);

    let got = app.get(&format!("/api/v1/plans/{id}"), Some(&op)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("etag"), Some("\"1\""));

    // Same name again: conflict.
    app.post_json(
        "/api/v1/plans",
        Some(&op),
        &json!({"name": "Standard", "max_tenants": 1, "max_processes": 1, "max_users": 1}),
    )
    .await
    .assert_problem(409, "/problems/duplicate");

    // Stale If-Match: 412; current: 200 and version 2.
    let stale = app
        .client
        .patch(app.url(&format!("/api/v1/plans/{id}")))
        .bearer_auth(&op)
        .header("if-match", "\"7\"")
        .json(&json!({"max_users": 50}));
    app.send(stale)
        .await
        .assert_problem(412, "/problems/precondition-failed");
    let fresh = app
        .client
        .patch(app.url(&format!("/api/v1/plans/{id}")))
        .bearer_auth(&op)
        .header("if-match", "\"1\"")
        .json(&json!({"max_users": 50}));
    let updated = app.send(fresh).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json()["max_users"], 50);
    assert_eq!(updated.json()["version"], 2);
    assert_eq!(updated.header("etag"), Some("\"2\""));

    // Validation names the field.
    let bad = app
        .post_json(
            "/api/v1/plans",
            Some(&op),
            &json!({"name": "", "max_tenants": -1, "max_processes": 1, "max_users": 1}),
        )
        .await;
    let problem = bad.assert_problem(422, "/problems/validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["max_tenants", "name"]);
}

#[actix_web::test]
async fn lists_page_with_a_cursor_in_creation_order() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.create_plan(&op, 1, 1).await);
    }
    let first = app.get("/api/v1/plans?limit=2", Some(&op)).await.json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/api/v1/plans?limit=2&cursor={cursor}"), Some(&op))
        .await
        .json();
    let third = app
        .get(
            &format!(
                "/api/v1/plans?limit=2&cursor={}",
                second["next_cursor"].as_str().unwrap()
            ),
            Some(&op),
        )
        .await
        .json();
    assert!(third["next_cursor"].is_null());
    let seen: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap().clone())
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids);
    app.get("/api/v1/plans?limit=0", Some(&op))
        .await
        .assert_problem(422, "/problems/validation");
    app.get("/api/v1/plans?cursor=not-a-cursor", Some(&op))
        .await
        .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn creating_a_tenant_creates_its_admin() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let me = app
        .get("/api/v1/me", Some(&tenant.admin_token))
        .await
        .json();
    assert_eq!(me["kind"], "user");
    assert_eq!(me["tenant"], tenant.id.as_str());
    assert_eq!(me["roles"], json!(["tenant_admin"]));
    // The operator sees it; the slug is taken for good.
    let op = app.operator_token().await;
    let got = app
        .get(&format!("/api/v1/tenants/{}", tenant.id), Some(&op))
        .await;
    assert_eq!(got.json()["time_zone"], "Asia/Tokyo");
    let again = app
        .post_json(
            "/api/v1/tenants",
            Some(&op),
            &json!({"account_id": tenant.account_id, "slug": "acme", "name": "x", "time_zone": "UTC",
                "admin": {"username": "admin", "password": ADMIN_PASSWORD}}),
        )
        .await;
    again.assert_problem(409, "/problems/duplicate");
}

#[actix_web::test]
async fn tenant_input_is_validated_field_by_field() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let plan = app.create_plan(&op, 5, 5).await;
    let account = app.create_account(&op, &plan).await;
    for (body_change, field) in [
        (json!({"slug": "Not A Slug"}), "slug"),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (
            json!({"admin": {"username": "admin", "password": "short"}}),
            "admin.password",
        ),
        (json!({"account_id": uuid::Uuid::now_v7()}), "account_id"),
    ] {
        let mut body = json!({"account_id": account, "slug": "good-slug", "name": "Tenant",
            "time_zone": "Asia/Tokyo", "admin": {"username": "admin", "password": ADMIN_PASSWORD}});
        for (k, v) in body_change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let reply = app.post_json("/api/v1/tenants", Some(&op), &body).await;
        let problem = reply.assert_problem(422, "/problems/validation");
        assert_eq!(problem["errors"][0]["field"], field, "{}", reply.text);
    }
}

#[actix_web::test]
async fn tenant_cap_refuses_and_writes_nothing() {
    let app = spawn_app().await;
    let first = app.tenant_with_caps("first", 1, 10).await;
    let op = app.operator_token().await;
    let reply = app
        .post_json(
            "/api/v1/tenants",
            Some(&op),
            &json!({"account_id": first.account_id, "slug": "second", "name": "Second",
                "time_zone": "UTC", "admin": {"username": "admin", "password": ADMIN_PASSWORD}}),
        )
        .await;
    let problem = reply.assert_problem(409, "/problems/quota-exceeded");
    assert_eq!(problem["cap"], "max_tenants");
    assert_eq!(problem["limit"], 1);
    let tenants = app
        .get(
            &format!("/api/v1/tenants?account_id={}", first.account_id),
            Some(&op),
        )
        .await
        .json();
    assert_eq!(tenants["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.login_status(Some("second"), "admin", ADMIN_PASSWORD)
            .await,
        401
    );
}

#[actix_web::test]
async fn user_cap_counts_active_ids_across_the_account() {
    let app = spawn_app().await;
    // The admin is one of the two IDs.
    let tenant = app.tenant_with_caps("capped", 2, 2).await;
    let second = app.user(&tenant, "second", &["agent"]).await;
    let reply = app
        .post_json(
            "/api/v1/users",
            Some(&tenant.admin_token),
            &json!({"username": "third", "password": "a long enough password", "display_name": "T", "roles": ["agent"]}),
        )
        .await;
    let problem = reply.assert_problem(409, "/problems/quota-exceeded");
    assert_eq!(problem["cap"], "max_users");
    let users = app
        .get("/api/v1/users", Some(&tenant.admin_token))
        .await
        .json();
    assert_eq!(
        users["items"].as_array().unwrap().len(),
        2,
        "nothing written"
    );
    // A second tenant of the same account shares the cap (its admin would be a third ID).
    let op = app.operator_token().await;
    app.post_json(
        "/api/v1/tenants",
        Some(&op),
        &json!({"account_id": tenant.account_id, "slug": "capped-two", "name": "Two", "time_zone": "UTC",
            "admin": {"username": "admin", "password": ADMIN_PASSWORD}}),
    )
    .await
    .assert_problem(409, "/problems/quota-exceeded");

    // Deactivating frees the ID.
    let deleted = app
        .delete(
            &format!("/api/v1/users/{second}"),
            Some(&tenant.admin_token),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    app.user(&tenant, "third", &["agent"]).await;

    // Lowering the plan below usage is allowed; it blocks growth only.
    let lowered = app
        .patch_json(
            &format!("/api/v1/plans/{}", tenant.plan_id),
            Some(&op),
            &json!({"max_users": 1}),
        )
        .await;
    assert_eq!(lowered.status, StatusCode::OK);
    let reactivate = app
        .patch_json(
            &format!("/api/v1/users/{second}"),
            Some(&tenant.admin_token),
            &json!({"active": true}),
        )
        .await;
    reactivate.assert_problem(409, "/problems/quota-exceeded");
}

#[actix_web::test]
async fn usage_counts_ids_and_api_calls_without_losing_unflushed_calls() {
    let app = spawn_app().await;
    let tenant = app.tenant("metered").await;
    let agent = app.user_token(&tenant, "agent", &["agent"]).await;
    for _ in 0..7 {
        assert_eq!(
            app.get("/api/v1/me", Some(&agent)).await.status,
            StatusCode::OK
        );
    }
    let op = app.operator_token().await;
    let path = format!("/api/v1/accounts/{}/usage?month=2026-04", tenant.account_id);
    let before = app.get(&path, Some(&op)).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    let before = before.json();
    assert_eq!(before["tenants"][0]["active_ids"], 2);
    let calls = before["total"]["api_calls"].as_i64().unwrap();
    assert!(calls >= 7, "{before}");

    // After a flush the same figure comes from the database.
    stageflow::api::server::flush_usage(&app.state).await;
    let id: uuid::Uuid = tenant.id.parse().unwrap();
    assert_eq!(
        app.state
            .usage
            .pending(stageflow::domain::ids::TenantId(id), "2026-04"),
        0
    );
    let after = app.get(&path, Some(&op)).await.json();
    assert_eq!(after["total"]["api_calls"].as_i64().unwrap(), calls);
    app.get(
        &format!("/api/v1/accounts/{}/usage?month=2026-4", tenant.account_id),
        Some(&op),
    )
    .await
    .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn deleting_a_tenant_ends_its_sessions() {
    let app = spawn_app().await;
    let tenant = app.tenant("doomed").await;
    let op = app.operator_token().await;
    // Deleting needs a finished export first (tests/api/tenant_export.rs).
    let export = app
        .post_json(
            &format!("/api/v1/tenants/{}/exports", tenant.id),
            Some(&op),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(export.status, StatusCode::ACCEPTED, "{}", export.text);
    stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
    let reply = app
        .delete(&format!("/api/v1/tenants/{}", tenant.id), Some(&op))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.get("/api/v1/me", Some(&tenant.admin_token))
        .await
        .assert_problem(401, "/problems/unauthorized");
    app.get(&format!("/api/v1/tenants/{}", tenant.id), Some(&op))
        .await
        .assert_problem(404, "/problems/not-found");
    assert_eq!(
        app.login_status(Some("doomed"), "admin", ADMIN_PASSWORD)
            .await,
        401
    );
    let audit = app.audit_entries(&op, "tenant.deleted").await;
    assert_eq!(audit.len(), 1);
}

#[actix_web::test]
async fn platform_endpoints_are_for_the_operator_only() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    for path in ["/api/v1/plans", "/api/v1/accounts", "/api/v1/tenants"] {
        app.get(path, Some(&tenant.admin_token))
            .await
            .assert_problem(403, "/problems/forbidden");
        app.get(path, None)
            .await
            .assert_problem(401, "/problems/unauthorized");
    }
    // And the operator cannot act inside a tenant.
    let op = app.operator_token().await;
    app.get("/api/v1/users", Some(&op))
        .await
        .assert_problem(403, "/problems/forbidden");
}

#[actix_web::test]
async fn concurrent_creations_cannot_overshoot_the_user_cap() {
    let app = spawn_app().await;
    // Room for exactly one more user besides the admin.
    let tenant = app.tenant_with_caps("racy", 1, 2).await;
    let attempts = (0..8).map(|i| {
        let body = json!({"username": format!("racer{i}"), "password": "a long enough password",
            "display_name": "r", "roles": ["agent"]});
        let request = app
            .client
            .post(app.url("/api/v1/users"))
            .bearer_auth(&tenant.admin_token)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures_util::future::join_all(attempts).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    let users = app
        .get("/api/v1/users?active=true", Some(&tenant.admin_token))
        .await
        .json();
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
}
