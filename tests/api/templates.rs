//! Templates: drafts, linting, publishing, the process cap, states and diagrams.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

/// A small but complete process: new → in_progress → resolved → closed, with a reopen.
pub fn incident() -> Value {
    json!({
        "name": label("インシデント", "Incident"),
        "key_prefix": "INC",
        "fields": [
            {"key": "title", "type": "text", "label": label("件名", "Title"), "required": true, "max_length": 200},
            {"key": "impact", "type": "select", "master": "impact", "label": label("影響度", "Impact")},
            {"key": "resolution", "type": "long_text", "label": label("解決内容", "Resolution")}
        ],
        "stages": [
            {"key": "open", "label": label("受付", "Open"), "states": [
                {"key": "new", "label": label("新規", "New"), "initial": true},
                {"key": "in_progress", "label": label("対応中", "In progress")}]},
            {"key": "done", "label": label("完了", "Done"), "states": [
                {"key": "resolved", "label": label("解決済", "Resolved"), "sla": "stopped"},
                {"key": "closed", "label": label("クローズ", "Closed"), "terminal": true, "sla": "stopped"}]}
        ],
        "transitions": [
            {"key": "start", "label": label("対応開始", "Start"), "from": ["new"], "to": "in_progress", "allowed": {"roles": ["agent"]}},
            {"key": "resolve", "label": label("解決", "Resolve"), "from": ["in_progress"], "to": "resolved",
             "allowed": {"roles": ["agent"]}, "requires": ["resolution"]},
            {"key": "reopen", "label": label("再開", "Reopen"), "from": ["resolved"], "to": "in_progress", "allowed": {"requester": true}},
            {"key": "close", "label": label("クローズ", "Close"), "from": ["resolved"], "to": "closed", "allowed": {"roles": ["agent"], "requester": true}}
        ],
        "field_rules": {"closed": {"resolution": "read_only"}},
        "layout": {"sections": [{"key": "main", "label": label("基本", "Main"), "fields": ["title", "impact", "resolution"]}]}
    })
}

async fn with_impact_master(app: &TestApp, token: &str) {
    app.create(
        "/api/v1/masters",
        token,
        json!({"key": "impact", "name": label("影響度", "Impact"),
            "items": [{"code": "high", "label": label("高", "High")}, {"code": "low", "label": label("低", "Low")}]}),
    )
    .await;
}

#[actix_web::test]
async fn a_template_goes_from_draft_to_published_and_then_is_immutable() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    with_impact_master(&app, &pm).await;

    let created = app
        .create(
            "/api/v1/templates",
            &pm,
            json!({"key": "incident", "definition": incident()}),
        )
        .await;
    assert_eq!(created["template"]["key"], "incident");
    assert!(created["template"]["published_version"].is_null());
    assert_eq!(created["draft"]["number"], 1);
    assert_eq!(created["draft"]["status"], "draft");
    assert_eq!(
        created["draft"]["lint"]["valid"], true,
        "{}",
        created["draft"]["lint"]
    );

    let published = app
        .post_json(
            "/api/v1/templates/incident/versions/1/publish",
            Some(&pm),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    assert_eq!(published.json()["status"], "published");
    let template = app
        .get("/api/v1/templates/incident", Some(&pm))
        .await
        .json();
    assert_eq!(template["published_version"], 1);
    assert_eq!(template["name"]["ja"], "インシデント");

    // Published means frozen.
    let put = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/templates/incident/versions/1",
            Some(&pm),
            Some(&json!({"definition": incident()})),
        )
        .await;
    put.assert_problem(409, "/problems/version-published");
    app.post_json(
        "/api/v1/templates/incident/versions/1/publish",
        Some(&pm),
        &json!({}),
    )
    .await
    .assert_problem(409, "/problems/version-published");

    // A new draft starts from the latest version; only one draft at a time.
    let draft = app
        .post_json("/api/v1/templates/incident/versions", Some(&pm), &json!({}))
        .await;
    assert_eq!(draft.status, StatusCode::CREATED, "{}", draft.text);
    assert_eq!(draft.json()["number"], 2);
    assert_eq!(draft.json()["definition"], incident());
    app.post_json("/api/v1/templates/incident/versions", Some(&pm), &json!({}))
        .await
        .assert_problem(409, "/problems/draft-exists");

    // Editing the draft with If-Match.
    let mut changed = incident();
    changed["name"]["en"] = json!("Incident v2");
    let stale = app
        .client
        .put(app.url("/api/v1/templates/incident/versions/2"))
        .bearer_auth(&pm)
        .header("if-match", "\"9\"")
        .json(&json!({"definition": changed}));
    app.send(stale)
        .await
        .assert_problem(412, "/problems/precondition-failed");
    let ok = app
        .client
        .put(app.url("/api/v1/templates/incident/versions/2"))
        .bearer_auth(&pm)
        .header("if-match", "\"1\"")
        .json(&json!({"definition": changed}));
    let ok = app.send(ok).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json()["definition"]["name"]["en"], "Incident v2");

    let versions = app
        .get("/api/v1/templates/incident/versions", Some(&pm))
        .await
        .json();
    let statuses: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["published", "draft"]);
    // A published template cannot be deleted, only archived.
    app.delete("/api/v1/templates/incident", Some(&pm))
        .await
        .assert_problem(409, "/problems/template-published");
    let archived = app
        .patch_json(
            "/api/v1/templates/incident",
            Some(&pm),
            &json!({"archived": true}),
        )
        .await;
    assert_eq!(archived.json()["archived"], true);
    assert_eq!(
        app.audit_entries(&tenant.admin_token, "template.published")
            .await
            .len(),
        1
    );
}

#[actix_web::test]
async fn a_broken_draft_is_saved_but_never_published() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    // No impact master, and a state nobody can reach.
    let mut broken = incident();
    broken["stages"][0]["states"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "orphan", "label": label("孤立", "Orphan")}));
    let created = app
        .create(
            "/api/v1/templates",
            admin,
            json!({"key": "incident", "definition": broken}),
        )
        .await;
    let lint = &created["draft"]["lint"];
    assert_eq!(lint["valid"], false);
    let codes: Vec<&str> = lint["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"unknown_master"), "{lint}");
    assert!(codes.contains(&"unreachable_state"), "{lint}");

    let refused = app
        .post_json(
            "/api/v1/templates/incident/versions/1/publish",
            Some(admin),
            &json!({}),
        )
        .await;
    let problem = refused.assert_problem(422, "/problems/validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.iter().all(|f| f.starts_with("definition/")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"definition/stages/0/states/2"),
        "{fields:?}"
    );
    let template = app
        .get("/api/v1/templates/incident", Some(admin))
        .await
        .json();
    assert!(template["published_version"].is_null());

    // A definition of the wrong shape is not saved at all.
    let shapeless = app
        .post_json(
            "/api/v1/templates",
            Some(admin),
            &json!({"key": "other", "definition": {"name": "not labels"}}),
        )
        .await;
    shapeless.assert_problem(422, "/problems/validation");
    app.get("/api/v1/templates/other", Some(admin))
        .await
        .assert_problem(404, "/problems/not-found");
    // And the key must be a key.
    app.post_json(
        "/api/v1/templates",
        Some(admin),
        &json!({"key": "Not A Key", "definition": incident()}),
    )
    .await
    .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn lint_endpoint_reports_without_saving() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    with_impact_master(&app, admin).await;
    let ok = app
        .post_json(
            "/api/v1/template-lint",
            Some(admin),
            &json!({"definition": incident()}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json()["valid"], true);
    let mut broken = incident();
    broken["transitions"][0]["to"] = json!("nowhere");
    let report = app
        .post_json(
            "/api/v1/template-lint",
            Some(admin),
            &json!({"definition": broken}),
        )
        .await
        .json();
    assert_eq!(report["valid"], false);
    assert!(
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["pointer"] == "/transitions/0/to"),
        "{report}"
    );
    let listed = app.get("/api/v1/templates", Some(admin)).await.json();
    assert!(listed["items"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn publishing_counts_against_the_process_cap() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let plan = app
        .create(
            "/api/v1/plans",
            &op,
            json!({"name": "tiny", "max_tenants": 1, "max_processes": 1, "max_users": 10}),
        )
        .await;
    let account = app.create_account(&op, plan["id"].as_str().unwrap()).await;
    app.create_tenant_in(&op, &account, "tiny").await;
    let admin = app
        .login(Some("tiny"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    with_impact_master(&app, &admin).await;
    for key in ["first", "second"] {
        app.create(
            "/api/v1/templates",
            &admin,
            json!({"key": key, "definition": incident()}),
        )
        .await;
    }
    let first = app
        .post_json(
            "/api/v1/templates/first/versions/1/publish",
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second = app
        .post_json(
            "/api/v1/templates/second/versions/1/publish",
            Some(&admin),
            &json!({}),
        )
        .await;
    let problem = second.assert_problem(409, "/problems/quota-exceeded");
    assert_eq!(problem["cap"], "max_processes");
    let usage = app
        .get(&format!("/api/v1/accounts/{account}/usage"), Some(&op))
        .await
        .json();
    assert_eq!(usage["total"]["processes"], 1);
    // A new version of an already published template is not a new process.
    app.post_json("/api/v1/templates/first/versions", Some(&admin), &json!({}))
        .await;
    let again = app
        .post_json(
            "/api/v1/templates/first/versions/2/publish",
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
}

#[actix_web::test]
async fn only_process_managers_and_admins_edit_templates() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    with_impact_master(&app, &tenant.admin_token).await;
    app.create(
        "/api/v1/templates",
        &tenant.admin_token,
        json!({"key": "incident", "definition": incident()}),
    )
    .await;
    app.post_json(
        "/api/v1/templates/incident/versions/1/publish",
        Some(&tenant.admin_token),
        &json!({}),
    )
    .await;
    let requester = app.user_token(&tenant, "req", &["requester"]).await;
    let partner = app.user_token(&tenant, "partner", &["partner"]).await;
    let agent = app.user_token(&tenant, "agent", &["agent"]).await;
    for token in [&requester, &partner, &agent] {
        app.post_json(
            "/api/v1/templates",
            Some(token),
            &json!({"key": "x", "definition": incident()}),
        )
        .await
        .assert_problem(403, "/problems/forbidden");
        app.post_json(
            "/api/v1/templates/incident/versions",
            Some(token),
            &json!({}),
        )
        .await
        .assert_problem(403, "/problems/forbidden");
        app.post_json(
            "/api/v1/template-lint",
            Some(token),
            &json!({"definition": incident()}),
        )
        .await
        .assert_problem(403, "/problems/forbidden");
    }
    assert_eq!(
        app.get("/api/v1/templates/incident", Some(&agent))
            .await
            .status,
        StatusCode::OK
    );
    app.get("/api/v1/templates/incident", Some(&partner))
        .await
        .assert_problem(403, "/problems/forbidden");
    // Everyone sees the states (where their tickets stand).
    for token in [&requester, &partner] {
        let states = app
            .get("/api/v1/templates/incident/states", Some(token))
            .await;
        assert_eq!(states.status, StatusCode::OK, "{}", states.text);
        let states = states.json();
        assert_eq!(states["version"], 1);
        assert_eq!(states["stages"][0]["states"][0]["key"], "new");
        assert_eq!(states["stages"][0]["states"][0]["initial"], true);
        assert_eq!(states["stages"][1]["states"][1]["terminal"], true);
    }
}

#[actix_web::test]
async fn diagrams_come_as_mermaid_and_dot() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    with_impact_master(&app, admin).await;
    app.create(
        "/api/v1/templates",
        admin,
        json!({"key": "incident", "definition": incident()}),
    )
    .await;
    // Before publication only an explicit version has a diagram.
    app.get("/api/v1/templates/incident/diagram?format=dot", Some(admin))
        .await
        .assert_problem(409, "/problems/not-published");
    let draft = app
        .get(
            "/api/v1/templates/incident/diagram?format=dot&version=1",
            Some(admin),
        )
        .await;
    assert_eq!(draft.status, StatusCode::OK);
    app.post_json(
        "/api/v1/templates/incident/versions/1/publish",
        Some(admin),
        &json!({}),
    )
    .await;

    let mermaid = app
        .get(
            "/api/v1/templates/incident/diagram?format=mermaid",
            Some(admin),
        )
        .await;
    assert_eq!(mermaid.status, StatusCode::OK, "{}", mermaid.text);
    assert!(
        mermaid
            .header("content-type")
            .unwrap()
            .starts_with("text/vnd.mermaid")
    );
    assert!(mermaid.text.starts_with("stateDiagram-v2\n"));
    assert!(mermaid.text.contains("state \"受付\" as stage_open {"));
    assert!(mermaid.text.contains("new --> in_progress : 対応開始"));
    assert!(mermaid.text.contains("[*] --> new"));

    let dot = app
        .get(
            "/api/v1/templates/incident/diagram?format=dot&lang=en",
            Some(admin),
        )
        .await;
    assert!(
        dot.header("content-type")
            .unwrap()
            .starts_with("text/vnd.graphviz")
    );
    assert!(dot.text.contains("subgraph \"cluster_open\""));
    assert!(
        dot.text
            .contains("\"resolved\" -> \"closed\" [label=\"Close\"]")
    );
    crate::diagrams::assert_renders_with_dot(&dot.text);

    app.get("/api/v1/templates/incident/diagram?format=png", Some(admin))
        .await
        .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn a_master_in_use_by_a_template_cannot_be_deleted() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    with_impact_master(&app, admin).await;
    app.create(
        "/api/v1/templates",
        admin,
        json!({"key": "incident", "definition": incident()}),
    )
    .await;
    let reply = app.delete("/api/v1/masters/impact", Some(admin)).await;
    let problem = reply.assert_problem(409, "/problems/master-in-use");
    assert!(problem["detail"].as_str().unwrap().contains("incident"));
    // Deactivating its items stays possible.
    let deactivated = app
        .patch_json(
            "/api/v1/masters/impact/items/low",
            Some(admin),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);
}
