//! The shipped catalog: listing, installing in dependency order, twice is 409, diagrams.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

/// Installation order: a template's child-ticket templates first.
const ORDER: &[&str] = &[
    "itil_change",
    "itil_problem",
    "itil_incident",
    "itil_service_request",
    "isms_risk_treatment",
    "isms_security_incident",
    "bpo_intake",
    "customer_inquiry",
];

#[actix_web::test]
async fn every_catalog_template_installs_publishes_and_draws() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let catalog = app.get("/api/v1/catalog", Some(&pm)).await.json();
    let keys: Vec<&str> = catalog["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    for key in ORDER {
        assert!(keys.contains(key), "{key} missing from {keys:?}");
    }
    assert!(
        catalog["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["installed"] == false)
    );

    for key in ORDER {
        let reply = app
            .post_json(
                &format!("/api/v1/catalog/{key}/install"),
                Some(&pm),
                &json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{key}: {}", reply.text);
        let installed = reply.json();
        assert_eq!(
            installed["version"]["status"], "published",
            "{key}: {}",
            installed["version"]["lint"]
        );
        assert_eq!(installed["template"]["catalog_key"], *key);
        for format in ["dot", "mermaid"] {
            let diagram = app
                .get(
                    &format!("/api/v1/templates/{key}/diagram?format={format}"),
                    Some(&pm),
                )
                .await;
            assert_eq!(diagram.status, StatusCode::OK, "{key} {format}");
            if format == "dot" {
                crate::diagrams::assert_renders_with_dot(&diagram.text);
            }
        }
    }
    let catalog = app.get("/api/v1/catalog", Some(&pm)).await.json();
    assert!(
        catalog["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["installed"] == true)
    );

    app.post_json(
        "/api/v1/catalog/itil_incident/install",
        Some(&pm),
        &json!({}),
    )
    .await
    .assert_problem(409, "/problems/already-installed");
    app.post_json(
        "/api/v1/catalog/no_such_entry/install",
        Some(&pm),
        &json!({}),
    )
    .await
    .assert_problem(404, "/problems/not-found");
}

/// Installing an entry brings the templates it files child tickets into (and theirs), all
/// published, so the README's quick start can file a ticket right after one install.
#[actix_web::test]
async fn installing_an_entry_installs_the_templates_it_requires() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let catalog = app.get("/api/v1/catalog", Some(admin)).await.json();
    let requires = |key: &str| {
        catalog["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .unwrap()["requires"]
            .clone()
    };
    assert_eq!(requires("itil_incident"), json!(["itil_problem"]));
    assert_eq!(requires("itil_problem"), json!(["itil_change"]));
    assert_eq!(requires("bpo_intake"), json!([]));

    let installed = app
        .create("/api/v1/catalog/itil_incident/install", admin, json!({}))
        .await;
    assert_eq!(installed["version"]["status"], "published", "{installed}");
    assert_eq!(
        installed["templates_created"],
        json!(["itil_change", "itil_problem"])
    );
    for key in ["itil_change", "itil_problem", "itil_incident"] {
        let template = app
            .get(&format!("/api/v1/templates/{key}"), Some(admin))
            .await
            .json();
        assert_eq!(template["published_version"], 1, "{key}: {template}");
    }
    // A ticket can be filed at once.
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let ticket = app
        .post_json(
            "/api/v1/tickets",
            Some(&agent),
            &json!({"template": "itil_incident",
                "fields": {"title": "VPN に接続できない", "description": "接続エラー"}}),
        )
        .await;
    assert_eq!(ticket.status, StatusCode::CREATED, "{}", ticket.text);
    // The next entry that needs them reuses them.
    let inquiry = app
        .create("/api/v1/catalog/customer_inquiry/install", admin, json!({}))
        .await;
    assert_eq!(inquiry["templates_created"], json!([]));
    assert_eq!(inquiry["version"]["status"], "published");

    // Masters came along; a second entry reuses the shared ones.
    assert!(!installed["masters_created"].as_array().unwrap().is_empty());
    let masters = app
        .get("/api/v1/masters?limit=500", Some(admin))
        .await
        .json();
    assert!(!masters["items"].as_array().unwrap().is_empty());
    let partner = app.user_token(&tenant, "partner", &["partner"]).await;
    app.get("/api/v1/catalog", Some(&partner))
        .await
        .assert_problem(403, "/problems/forbidden");
    app.post_json(
        "/api/v1/catalog/itil_problem/install",
        Some(&partner),
        &json!({}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
}

#[actix_web::test]
async fn a_template_exports_as_a_catalog_file_and_imports_back_unchanged() {
    let app = spawn_app().await;
    let a = app.tenant("tenant-a").await;
    let b = app.tenant("tenant-b").await;
    for key in ["itil_change", "itil_problem", "itil_incident"] {
        app.create(
            &format!("/api/v1/catalog/{key}/install"),
            &a.admin_token,
            json!({}),
        )
        .await;
    }
    let exported = app
        .get(
            "/api/v1/templates/itil_incident/export",
            Some(&a.admin_token),
        )
        .await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text);
    let exported = exported.json();
    // The definition is the catalog file's, unchanged.
    let source: serde_json::Value =
        serde_json::from_str(include_str!("../../catalog/itil_incident.json")).unwrap();
    assert_eq!(exported["template"], source["template"]);
    assert_eq!(exported["key"], "itil_incident");
    let master_keys: Vec<&str> = exported["masters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert!(!master_keys.is_empty());

    // Into another tenant (its child templates first), and out again: the same document.
    for key in ["itil_change", "itil_problem"] {
        let doc = app
            .get(
                &format!("/api/v1/templates/{key}/export"),
                Some(&a.admin_token),
            )
            .await
            .json();
        app.create("/api/v1/templates/import", &b.admin_token, doc)
            .await;
    }
    let imported = app
        .create("/api/v1/templates/import", &b.admin_token, exported.clone())
        .await;
    assert_eq!(
        imported["version"]["status"], "published",
        "{}",
        imported["version"]["lint"]
    );
    let again = app
        .get(
            "/api/v1/templates/itil_incident/export",
            Some(&b.admin_token),
        )
        .await
        .json();
    assert_eq!(again, exported);

    // Importing it twice is a conflict; a malformed document is located.
    app.post_json("/api/v1/templates/import", Some(&b.admin_token), &exported)
        .await
        .assert_problem(409, "/problems/already-installed");
    let mut bad = exported.clone();
    bad["key"] = json!("Bad Key");
    bad["masters"][0]["items"][0]["code"] = json!("-bad");
    let problem = app
        .post_json("/api/v1/templates/import", Some(&b.admin_token), &bad)
        .await
        .assert_problem(422, "/problems/validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["key", "masters.0.items.0.code"]);
}

/// The catalog's practice checks are the server's: a tenant gets the length warning from
/// `POST /template-lint` (warnings do not block), and an internal title is an error that
/// blocks publication. The example is the catalog's own: the inquiry body once allowed
/// 50,000 characters into the incident description's 20,000.
#[actix_web::test]
async fn every_tenant_gets_the_practice_checks_from_lint_and_publication() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    for key in ["itil_incident", "customer_inquiry"] {
        app.create(&format!("/api/v1/catalog/{key}/install"), &pm, json!({}))
            .await;
    }
    let entry: serde_json::Value =
        serde_json::from_str(include_str!("../../catalog/customer_inquiry.json")).unwrap();
    let template = &entry["template"];
    let field_index = |key: &str| {
        template["fields"]
            .as_array()
            .unwrap()
            .iter()
            .position(|f| f["key"] == key)
            .unwrap()
    };
    let lint = |definition: serde_json::Value| {
        let app = &app;
        let pm = pm.clone();
        async move {
            let body = json!({"key": "customer_inquiry", "definition": definition});
            let reply = app
                .post_json("/api/v1/template-lint", Some(&pm), &body)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply.json()
        }
    };
    let codes = |report: &serde_json::Value, list: &str| -> Vec<(String, String)> {
        report[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let text = |k: &str| i[k].as_str().unwrap().to_owned();
                (text("code"), text("pointer"))
            })
            .collect()
    };

    let clean = lint(template.clone()).await;
    assert_eq!(clean["valid"], true, "{clean}");
    assert!(codes(&clean, "warnings").is_empty(), "{clean}");

    let body = field_index("inquiry_body");
    let mut long = template.clone();
    long["fields"][body]["max_length"] = json!(50_000);
    let report = lint(long).await;
    assert_eq!(report["valid"], true, "{report}");
    let (_, pointer) = codes(&report, "warnings")
        .into_iter()
        .find(|(code, _)| code == "mapped_value_too_long")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(pointer.ends_with("/mapping/description"), "{pointer}");

    let title = field_index("title");
    let mut internal = template.clone();
    internal["fields"][title]["internal"] = json!(true);
    let report = lint(internal.clone()).await;
    assert_eq!(report["valid"], false, "{report}");
    let expected = (
        "internal_title".to_owned(),
        format!("/fields/{title}/internal"),
    );
    assert!(codes(&report, "errors").contains(&expected), "{report}");

    app.create(
        "/api/v1/templates",
        &pm,
        json!({"key": "inquiry_copy", "definition": internal}),
    )
    .await;
    let refused = app
        .post_json(
            "/api/v1/templates/inquiry_copy/versions/1/publish",
            Some(&pm),
            &json!({}),
        )
        .await
        .assert_problem(422, "/problems/validation");
    assert!(refused.to_string().contains("internal_title"), "{refused}");
}
