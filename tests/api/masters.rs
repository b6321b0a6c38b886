//! Masters: code lists with bilingual, ordered, hierarchical items.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

fn impact() -> serde_json::Value {
    json!({"key": "impact", "name": {"ja": "影響度", "en": "Impact"},
    "items": [
        {"code": "high", "label": {"ja": "高", "en": "High"}},
        {"code": "medium", "label": {"ja": "中", "en": "Medium"}},
        {"code": "low", "label": {"ja": "低", "en": "Low"}, "order": 5}
    ]})
}

#[actix_web::test]
async fn a_master_is_created_with_ordered_items_and_read_by_everyone() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let reply = app.post_json("/api/v1/masters", Some(&pm), &impact()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.header("location"), Some("/api/v1/masters/impact"));
    let master = reply.json();
    let codes: Vec<&str> = master["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["low", "high", "medium"],
        "explicit order 5 first, then 10, 20"
    );
    assert_eq!(master["items"][1]["label"]["ja"], "高");

    // Requesters and partners read masters (forms need the labels) but cannot change them.
    let requester = app.user_token(&tenant, "req", &["requester"]).await;
    let got = app.get("/api/v1/masters/impact", Some(&requester)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("etag"), Some("\"1\""));
    let partner = app.user_token(&tenant, "partner", &["partner"]).await;
    for token in [&requester, &partner] {
        let mut other = impact();
        other["key"] = json!("other");
        app.post_json("/api/v1/masters", Some(token), &other)
            .await
            .assert_problem(403, "/problems/forbidden");
        app.patch_json(
            "/api/v1/masters/impact/items/high",
            Some(token),
            &json!({"active": false}),
        )
        .await
        .assert_problem(403, "/problems/forbidden");
    }
    app.post_json("/api/v1/masters", Some(&pm), &impact())
        .await
        .assert_problem(409, "/problems/duplicate");
    let listed = app.get("/api/v1/masters", Some(&requester)).await.json();
    assert_eq!(listed["items"][0]["key"], "impact");
    assert!(listed["items"][0].get("items").is_none());
}

#[actix_web::test]
async fn invalid_masters_are_refused_with_located_errors() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let bad = json!({"key": "Bad Key", "name": {"ja": "", "en": "x"},
        "items": [{"code": "-x", "label": {"ja": "a", "en": "b"}}]});
    let problem = app
        .post_json("/api/v1/masters", Some(admin), &bad)
        .await
        .assert_problem(422, "/problems/validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["key", "name.ja", "items.0.code"]);

    for items in [
        json!([{"code": "a", "label": {"ja": "a", "en": "a"}}, {"code": "a", "label": {"ja": "a", "en": "a"}}]),
        json!([{"code": "a", "label": {"ja": "a", "en": "a"}, "parent": "zz"}]),
        json!([{"code": "a", "label": {"ja": "a", "en": "a"}, "parent": "b"}, {"code": "b", "label": {"ja": "b", "en": "b"}, "parent": "a"}]),
    ] {
        let body = json!({"key": "cat", "name": {"ja": "分類", "en": "Category"}, "items": items});
        let problem = app
            .post_json("/api/v1/masters", Some(admin), &body)
            .await
            .assert_problem(422, "/problems/validation");
        assert_eq!(problem["errors"][0]["field"], "items");
        assert_eq!(problem["errors"][0]["code"], "hierarchy");
    }
    app.get("/api/v1/masters/cat", Some(admin))
        .await
        .assert_problem(404, "/problems/not-found");
}

#[actix_web::test]
async fn items_are_added_deactivated_and_reparented_with_if_match() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let category = json!({"key": "category", "name": {"ja": "分類", "en": "Category"},
        "items": [{"code": "hw", "label": {"ja": "ハードウェア", "en": "Hardware"}},
                  {"code": "sw", "label": {"ja": "ソフトウェア", "en": "Software"}}]});
    app.create("/api/v1/masters", admin, category).await;
    let added = app
        .post_json(
            "/api/v1/masters/category/items",
            Some(admin),
            &json!({"code": "server", "label": {"ja": "サーバ", "en": "Server"}, "parent": "hw"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.json()["order"], 30);
    app.post_json(
        "/api/v1/masters/category/items",
        Some(admin),
        &json!({"code": "server", "label": {"ja": "x", "en": "x"}}),
    )
    .await
    .assert_problem(409, "/problems/duplicate");
    app.post_json(
        "/api/v1/masters/category/items",
        Some(admin),
        &json!({"code": "x", "label": {"ja": "x", "en": "x"}, "parent": "nope"}),
    )
    .await
    .assert_problem(422, "/problems/validation");

    // Adding an item changed the master's version (and ETag).
    let master = app.get("/api/v1/masters/category", Some(admin)).await;
    assert_eq!(master.header("etag"), Some("\"2\""));

    // Deactivate with a stale, then the current, If-Match.
    let stale = app
        .client
        .patch(app.url("/api/v1/masters/category/items/sw"))
        .bearer_auth(admin)
        .header("if-match", "\"5\"")
        .json(&json!({"active": false}));
    app.send(stale)
        .await
        .assert_problem(412, "/problems/precondition-failed");
    let current = app
        .client
        .patch(app.url("/api/v1/masters/category/items/sw"))
        .bearer_auth(admin)
        .header("if-match", "\"1\"")
        .json(&json!({"active": false}));
    let updated = app.send(current).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json()["active"], false);

    let active = app
        .get("/api/v1/masters/category/items?active=true", Some(admin))
        .await
        .json();
    let codes: Vec<&str> = active["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["hw", "server"]);
    let all = app
        .get("/api/v1/masters/category/items", Some(admin))
        .await
        .json();
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        3,
        "inactive items are kept"
    );
    assert!(all["next_cursor"].is_null());

    // A cycle through a parent change is refused; moving to top level is fine.
    app.patch_json(
        "/api/v1/masters/category/items/hw",
        Some(admin),
        &json!({"parent": "server"}),
    )
    .await
    .assert_problem(422, "/problems/validation");
    let top = app
        .patch_json(
            "/api/v1/masters/category/items/server",
            Some(admin),
            &json!({"parent": null}),
        )
        .await;
    assert_eq!(top.json()["parent"], serde_json::Value::Null);
    app.patch_json(
        "/api/v1/masters/category/items/nope",
        Some(admin),
        &json!({"active": false}),
    )
    .await
    .assert_problem(404, "/problems/not-found");
    assert_eq!(
        app.audit_entries(admin, "master.item_updated").await.len(),
        2
    );
}

#[actix_web::test]
async fn masters_are_renamed_and_deleted() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    app.create("/api/v1/masters", admin, impact()).await;
    let renamed = app
        .patch_json(
            "/api/v1/masters/impact",
            Some(admin),
            &json!({"name": {"ja": "影響", "en": "Effect"}}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.json()["name"]["en"], "Effect");
    assert_eq!(renamed.json()["items"].as_array().unwrap().len(), 3);
    let deleted = app.delete("/api/v1/masters/impact", Some(admin)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/masters/impact", Some(admin))
        .await
        .assert_problem(404, "/problems/not-found");
    // The key is free again.
    app.create("/api/v1/masters", admin, impact()).await;
}

/// Keys of masters, templates and libraries are taken in their canonical form (NFKC,
/// lowercase): `ＩＭＰＡＣＴ` beside `impact` is a 409, and alone it is created as `impact`.
#[actix_web::test]
async fn look_alike_keys_are_duplicates() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let mut wide = impact();
    wide["key"] = json!("ＩＭＰＡＣＴ");
    let created = app.create("/api/v1/masters", &pm, wide.clone()).await;
    assert_eq!(created["key"], "impact");
    for look_alike in ["ＩＭＰＡＣＴ", "Impact", "ｉｍｐａｃｔ"] {
        wide["key"] = json!(look_alike);
        app.post_json("/api/v1/masters", Some(&pm), &wide)
            .await
            .assert_problem(409, "/problems/duplicate");
    }
    let definition = json!({
        "name": {"ja": "依頼", "en": "Request"}, "key_prefix": "REQ",
        "fields": [{"key": "title", "type": "text", "label": {"ja": "件名", "en": "Title"}, "required": true}],
        "stages": [{"key": "all", "label": {"ja": "全体", "en": "All"}, "states": [
            {"key": "open", "label": {"ja": "受付", "en": "Open"}, "initial": true},
            {"key": "done", "label": {"ja": "完了", "en": "Done"}, "terminal": true}]}],
        "transitions": [{"key": "finish", "label": {"ja": "完了", "en": "Finish"},
            "from": ["open"], "to": "done", "allowed": {"roles": ["agent"]}}]
    });
    let template = app
        .create(
            "/api/v1/templates",
            &pm,
            json!({"key": "Ｒｅｑｕｅｓｔ", "definition": definition}),
        )
        .await;
    assert_eq!(template["template"]["key"], "request");
    let again = app
        .post_json(
            "/api/v1/templates",
            Some(&pm),
            &json!({"key": "REQUEST", "definition": definition}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    let admin = &tenant.admin_token;
    let notes = json!({
        "name": {"ja": "メモ", "en": "Notes"},
        "fields": [{"key": "title", "type": "text", "required": true, "label": {"ja": "件名", "en": "Title"}}],
        "title_field": "title"
    });
    let library = app
        .create(
            "/api/v1/libraries",
            admin,
            json!({"key": "ＮＯＴＥＳ", "definition": notes}),
        )
        .await;
    assert_eq!(library["key"], "notes");
    app.post_json(
        "/api/v1/libraries",
        Some(admin),
        &json!({"key": "Notes", "definition": notes}),
    )
    .await
    .assert_problem(409, "/problems/duplicate");
}
