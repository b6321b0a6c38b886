//! Bulk import (#19): CP932 CSV with Japanese headers, dry runs, per-row outcomes, re-runs,
//! export → import round trips, formula cells, large files as jobs, tenant isolation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, spawn_app};

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

/// A CMDB library and an inquiry template with a required field, a master select and a date.
async fn setup(app: &TestApp, slug: &str) -> (Tenant, String) {
    let tenant = app.tenant(slug).await;
    let admin = app
        .user_token(&tenant, "admin1", &["tenant_admin", "agent"])
        .await;
    app.create(
        "/api/v1/masters",
        &admin,
        json!({"key": "impact", "name": label("影響度", "Impact"),
            "items": [{"code": "high", "label": label("高", "High")},
                      {"code": "low", "label": label("低", "Low")}]}),
    )
    .await;
    app.create(
        "/api/v1/libraries",
        &admin,
        json!({"key": "cmdb", "definition": {
            "name": label("構成管理", "CMDB"),
            "fields": [
                {"key": "name", "type": "text", "required": true, "label": label("名称", "Name")},
                {"key": "asset_tag", "type": "text", "label": label("資産番号", "Asset tag")},
                {"key": "impact", "type": "select", "master": "impact", "label": label("影響度", "Impact")},
                {"key": "bought", "type": "date", "label": label("購入日", "Bought")}
            ],
            "title_field": "name",
            "access": {"read": ["agent"], "write": ["agent"]}
        }}),
    )
    .await;
    app.create(
        "/api/v1/templates",
        &admin,
        json!({"key": "inquiry", "definition": {
            "name": label("問い合わせ", "Inquiry"), "key_prefix": "INQ",
            "fields": [
                {"key": "title", "type": "text", "required": true, "label": label("件名", "Title")},
                {"key": "impact", "type": "select", "master": "impact", "label": label("影響度", "Impact")},
                {"key": "due", "type": "date", "label": label("期限", "Due")}
            ],
            "stages": [{"key": "all", "label": label("全体", "All"), "states": [
                {"key": "open", "label": label("受付", "Open"), "initial": true},
                {"key": "closed", "label": label("完了", "Closed"), "terminal": true}]}],
            "transitions": [{"key": "close", "label": label("完了", "Close"), "from": ["open"],
                "to": "closed", "allowed": {"roles": ["agent"]}}]
        }}),
    )
    .await;
    let published = app
        .post_json(
            "/api/v1/templates/inquiry/versions/1/publish",
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    (tenant, admin)
}

async fn post_csv(
    app: &TestApp,
    token: &str,
    query: &str,
    body: Vec<u8>,
    charset: &str,
) -> crate::helpers::Reply {
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/imports?{query}")))
            .bearer_auth(token)
            .header("content-type", format!("text/csv; charset={charset}"))
            .body(body),
    )
    .await
}

/// The bytes of a download (an export).
async fn download(app: &TestApp, token: &str, path: &str) -> Vec<u8> {
    let reply = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK, "{path}");
    reply.bytes().await.unwrap().to_vec()
}

fn outcomes(reply: &Value) -> Vec<(i64, String)> {
    reply["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["row"].as_i64().unwrap(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn a_cp932_cmdb_file_is_dry_run_then_imported_and_a_rerun_changes_nothing() {
    let app = spawn_app().await;
    let (_, admin) = setup(&app, "acme").await;
    let mut text = String::from("名称,資産番号,影響度,購入日\r\n");
    for i in 1..=1000 {
        let impact = if i % 2 == 0 { "高" } else { "低" };
        text.push_str(&format!(
            "サーバー{i},PC-{i:05},{impact},2025/4/{}\r\n",
            i % 28 + 1
        ));
    }
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!unmappable);
    let query = "target=library_records&library=cmdb&mode=upsert&key=資産番号";

    let dry = post_csv(
        &app,
        &admin,
        &format!("{query}&dry_run=true"),
        bytes.to_vec(),
        "shift_jis",
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    let dry = dry.json();
    assert_eq!(dry["status"], "dry_run");
    assert_eq!(dry["encoding"], "cp932");
    assert_eq!(dry["counts"]["created"], 1000);
    assert_eq!(dry["counts"]["failed"], 0);
    assert_eq!(dry["rows"][0]["outcome"], "ok");
    assert_eq!(dry["rows"][0]["action"], "created");
    let listed = app
        .get("/api/v1/libraries/cmdb/records?limit=1", Some(&admin))
        .await;
    assert_eq!(
        listed.json()["items"],
        json!([]),
        "a dry run writes nothing"
    );

    // Declared nothing: the bytes are detected as CP932.
    let real = post_csv(&app, &admin, query, bytes.to_vec(), "").await;
    let real = if real.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        post_csv(
            &app,
            &admin,
            &format!("{query}&encoding=cp932"),
            bytes.to_vec(),
            "shift_jis",
        )
        .await
    } else {
        real
    };
    assert_eq!(real.status, StatusCode::CREATED, "{}", real.text);
    let real = real.json();
    assert_eq!(real["counts"]["created"], 1000, "{real}");
    assert_eq!(real["status"], "done");
    let record = &real["rows"][41];
    let got = app
        .get(
            &format!(
                "/api/v1/libraries/cmdb/records/{}",
                record["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(got["fields"]["name"], "サーバー42");
    assert_eq!(
        got["fields"]["impact"], "high",
        "the label 高 is stored as its code"
    );
    assert_eq!(
        got["fields"]["bought"], "2025-04-15",
        "2025/4/15 becomes ISO"
    );

    let again = post_csv(
        &app,
        &admin,
        &format!("{query}&encoding=cp932"),
        bytes.to_vec(),
        "shift_jis",
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    let again = again.json();
    assert_eq!(
        again["counts"]["unchanged"], 1000,
        "re-running the same file is a no-op"
    );
    // The records exported in CP932 import back unchanged, matched by id.
    let exported = download(
        &app,
        &admin,
        "/api/v1/libraries/cmdb/records/export?encoding=cp932",
    )
    .await;
    let back = post_csv(
        &app,
        &admin,
        "target=library_records&library=cmdb&mode=upsert",
        exported,
        "shift_jis",
    )
    .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.text);
    let back = back.json();
    assert_eq!(back["counts"]["unchanged"], 1000, "{}", back["counts"]);
    let status = app
        .get(
            &format!("/api/v1/imports/{}", real["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.json()["counts"]["created"], 1000);
}

#[actix_web::test]
async fn a_ticket_file_reports_exactly_its_bad_rows_and_imports_the_rest() {
    let app = spawn_app().await;
    let (_, admin) = setup(&app, "acme").await;
    let csv = "件名,影響度,期限\r\n\
        プリンタ故障,高,2026/12/01\r\n\
        メール不達,特大,2026/12/02\r\n\
        ,低,2026/12/03\r\n\
        VPN接続不可,低,来週\r\n\
        =cmd|' /C calc'!A0,低,\r\n";
    let query = "target=tickets&template=inquiry";
    let reply = post_csv(&app, &admin, query, csv.as_bytes().to_vec(), "utf-8").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let body = reply.json();
    assert_eq!(
        outcomes(&body),
        [
            (1, "created".to_owned()),
            (2, "failed".to_owned()),
            (3, "failed".to_owned()),
            (4, "failed".to_owned()),
            (5, "created".to_owned())
        ]
    );
    let errors = |row: usize| body["rows"][row]["errors"].as_array().unwrap().clone();
    assert_eq!(errors(1)[0]["column"], "影響度");
    assert_eq!(errors(1)[0]["code"], "unknown_item");
    assert_eq!(
        errors(1)[0]["message"],
        "row 2, column 影響度: unknown item \"特大\""
    );
    assert_eq!(errors(2)[0]["field"], "fields.title");
    assert_eq!(errors(2)[0]["code"], "required");
    assert_eq!(errors(3)[0]["column"], "期限");
    assert_eq!(errors(3)[0]["code"], "invalid_type");

    // The formula cell is plain text, and the history says the ticket was imported.
    let formula = app
        .get(
            &format!(
                "/api/v1/tickets/{}",
                body["rows"][4]["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(formula["fields"]["title"], "=cmd|' /C calc'!A0");
    let history = app
        .get(
            &format!(
                "/api/v1/tickets/{}/history",
                body["rows"][0]["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await
        .json();
    let created = &history["items"][0];
    assert_eq!(created["kind"], "created");
    assert_eq!(created["imported"]["row"], 1);
    assert_eq!(created["imported"]["import_id"], body["id"]);

    // Exported, the formula is neutralised; imported back by key, every row is unchanged.
    let export = app
        .get("/api/v1/tickets/export?template=inquiry", Some(&admin))
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert!(export.text.contains("'=cmd"), "{}", export.text);
    let back = post_csv(
        &app,
        &admin,
        "target=tickets&template=inquiry&mode=upsert",
        export.text.as_bytes().to_vec(),
        "utf-8",
    )
    .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.text);
    let back = back.json();
    assert_eq!(back["counts"]["unchanged"], 2, "{back}");
    assert_eq!(back["counts"]["total"], 2);

    // Failed rows are kept and downloadable.
    let failed = app
        .get(
            &format!(
                "/api/v1/imports/{}/rows?outcome=failed",
                body["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(failed["items"].as_array().unwrap().len(), 3);
    let download = app
        .get(
            &format!(
                "/api/v1/imports/{}/rows?format=csv",
                body["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await;
    assert!(download.text.starts_with("row,line,outcome,id,key,errors"));
    assert_eq!(download.text.lines().count(), 6);
}

#[actix_web::test]
async fn tickets_are_placed_in_a_state_mapped_and_kept_idempotent() {
    let app = spawn_app().await;
    let (_, admin) = setup(&app, "acme").await;
    let request = json!({
        "target": "tickets", "template": "inquiry",
        "mapping": {"Subject": "title", "Severity": {"to": "impact", "translate": {"S1": "高"}},
                    "Status": "state", "Opened": "created_at", "Due date": {"to": "due", "date_format": "%d.%m.%Y"},
                    "Tracker": null},
        "defaults": {"impact": "low"},
        "content": "Subject,Severity,Status,Opened,Due date,Tracker\nOld one,S1,closed,2025-01-02T03:04:05Z,31.01.2025,Bug\nNew one,,open,,,Bug\n"
    });
    let post = |key: &'static str| {
        let request = request.clone();
        let app = &app;
        let admin = admin.clone();
        async move {
            app.send(
                app.client
                    .post(app.url("/api/v1/imports"))
                    .bearer_auth(admin)
                    .header("Idempotency-Key", key)
                    .json(&request),
            )
            .await
        }
    };
    let first = post("import-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let body = first.json();
    assert_eq!(body["ignored_columns"], json!(["Tracker"]));
    let old = app
        .get(
            &format!(
                "/api/v1/tickets/{}",
                body["rows"][0]["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(old["state"], "closed");
    assert_eq!(old["closed"], true);
    assert_eq!(old["fields"]["impact"], "high");
    assert_eq!(old["fields"]["due"], "2025-01-31");
    assert_eq!(old["created_at"], "2025-01-02T03:04:05Z");
    let new = app
        .get(
            &format!(
                "/api/v1/tickets/{}",
                body["rows"][1]["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(
        new["fields"]["impact"], "low",
        "the default fills an empty cell"
    );

    let replay = post("import-1").await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["id"], body["id"]);
    let list = app
        .get("/api/v1/tickets?template=inquiry", Some(&admin))
        .await
        .json();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "the replay imported nothing"
    );
}

#[actix_web::test]
async fn malformed_files_are_refused_whole() {
    let app = spawn_app().await;
    let (_, admin) = setup(&app, "acme").await;
    let query = "target=master_items&master=impact";
    let ragged = post_csv(
        &app,
        &admin,
        query,
        b"code,label_ja\nx,y,z\n".to_vec(),
        "utf-8",
    )
    .await;
    let problem = ragged.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["code"], "ragged", "{problem}");
    let bad_utf8 = post_csv(
        &app,
        &admin,
        query,
        b"code,label_ja\nx,\xff\xfe\n".to_vec(),
        "utf-8",
    )
    .await;
    let problem = bad_utf8.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["code"], "encoding");
    let unknown = app
        .post_json(
            "/api/v1/imports",
            Some(&admin),
            &json!({"target": "master_items", "master": "impact", "mapping": {"nope": "code"},
                    "content": "code\nx\n"}),
        )
        .await;
    let problem = unknown.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["field"], "mapping.nope");
    let items = app.get("/api/v1/masters/impact", Some(&admin)).await.json();
    assert_eq!(
        items["items"].as_array().unwrap().len(),
        2,
        "nothing was written"
    );
    let wrong_type = app
        .send(
            app.client
                .post(app.url("/api/v1/imports"))
                .bearer_auth(&admin)
                .header("content-type", "application/pdf")
                .body("x"),
        )
        .await;
    wrong_type.assert_problem(415, "/problems/unsupported-media-type");
}

#[actix_web::test]
async fn master_items_and_users_round_trip_and_other_tenants_see_nothing() {
    let app = spawn_app().await;
    let (_, admin) = setup(&app, "acme").await;
    let items = app
        .post_json(
            "/api/v1/imports",
            Some(&admin),
            &json!({"target": "master_items", "master": "impact", "mode": "upsert",
                    "rows": [{"code": "high", "label": {"ja": "高", "en": "High"}},
                             {"code": "xl", "label_ja": "特大", "label_en": "Extra large", "order": 1}]}),
        )
        .await;
    assert_eq!(items.status, StatusCode::CREATED, "{}", items.text);
    assert_eq!(
        outcomes(&items.json()),
        [(1, "unchanged".to_owned()), (2, "created".to_owned())]
    );
    let users = app
        .post_json(
            "/api/v1/imports",
            Some(&admin),
            &json!({"target": "users", "mode": "upsert",
                    "content": "username,display_name,email,roles\nsato,佐藤,sato@example.com,agent;requester\nadmin1,,,\n"}),
        )
        .await;
    assert_eq!(users.status, StatusCode::CREATED, "{}", users.text);
    assert_eq!(
        outcomes(&users.json()),
        [(1, "created".to_owned()), (2, "unchanged".to_owned())]
    );
    let id = items.json()["id"].as_str().unwrap().to_owned();
    // The users export imports back unchanged.
    let exported = app.get("/api/v1/users/export", Some(&admin)).await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text);
    let back = post_csv(
        &app,
        &admin,
        "target=users&mode=upsert",
        exported.text.into_bytes(),
        "utf-8",
    )
    .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.text);
    let back = back.json();
    assert_eq!(
        back["counts"]["unchanged"], back["counts"]["total"],
        "{back}"
    );
    assert_eq!(back["counts"]["total"], 3);

    let other = app.tenant("other").await;
    let stranger = app.user_token(&other, "root", &["tenant_admin"]).await;
    app.get(&format!("/api/v1/imports/{id}"), Some(&stranger))
        .await
        .assert_problem(404, "/problems/not-found");
    app.get(&format!("/api/v1/imports/{id}/rows"), Some(&stranger))
        .await
        .assert_problem(404, "/problems/not-found");
    let theirs = app.get("/api/v1/imports", Some(&stranger)).await.json();
    assert_eq!(theirs["items"], json!([]));
    let requester = app.user_token(&other, "req", &["requester"]).await;
    app.post_json(
        "/api/v1/imports",
        Some(&requester),
        &json!({"target": "users", "content": "username\nx\n"}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
}

#[actix_web::test]
async fn a_large_file_runs_as_a_job_with_progress() {
    let app = spawn_app().await;
    let (_, admin) = setup(&app, "acme").await;
    let rows: Vec<Value> = (1..=2100)
        .map(|i| json!({"名称": format!("端末{i}"), "資産番号": format!("T-{i}")}))
        .collect();
    let reply = app
        .post_json(
            "/api/v1/imports",
            Some(&admin),
            &json!({"target": "library_records", "library": "cmdb", "rows": rows}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["total_rows"], 2100);
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/imports/{id}").as_str())
    );
    for _ in 0..20 {
        stageflow::jobs::run_due(&app.state.jobs, app.clock_now()).await;
        let status = app
            .get(&format!("/api/v1/imports/{id}"), Some(&admin))
            .await
            .json();
        if status["status"] == "done" {
            break;
        }
    }
    let status = app
        .get(&format!("/api/v1/imports/{id}"), Some(&admin))
        .await
        .json();
    assert_eq!(status["status"], "done", "{status}");
    assert_eq!(status["counts"]["created"], 2100);
    assert_eq!(status["rows_done"], 2100);
    assert!(status["rows_per_second"].as_f64().is_some());
    let page = app
        .get(
            &format!("/api/v1/imports/{id}/rows?limit=500"),
            Some(&admin),
        )
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 500);
    assert!(page["next_cursor"].is_string());
}

#[actix_web::test]
async fn a_form_carries_the_options_and_a_cp932_file() {
    let app = spawn_app().await;
    let (_, admin) = setup(&app, "acme").await;
    let (file, _, _) = encoding_rs::SHIFT_JIS.encode("コード,名称,Name\r\nxl,特大,Extra large\r\n");
    let form = reqwest::multipart::Form::new()
        .part(
            "options",
            reqwest::multipart::Part::text(
                json!({"target": "master_items", "master": "impact", "encoding": "cp932",
                       "mapping": {"コード": "code", "名称": "label_ja", "Name": "label_en"}})
                .to_string(),
            )
            .mime_str("application/json")
            .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(file.to_vec()).file_name("items.csv"),
        );
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/imports"))
                .bearer_auth(&admin)
                .multipart(form),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json()["encoding"], "cp932");
    let item = app.get("/api/v1/masters/impact", Some(&admin)).await.json();
    let xl = item["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "xl")
        .cloned()
        .unwrap();
    assert_eq!(xl["label"]["ja"], "特大");
    assert_eq!(xl["label"]["en"], "Extra large");

    // The export of the items, imported back unchanged, in CP932 both ways.
    let bytes = download(
        &app,
        &admin,
        "/api/v1/masters/impact/items/export?encoding=cp932",
    )
    .await;
    let back = post_csv(
        &app,
        &admin,
        "target=master_items&master=impact&mode=upsert",
        bytes,
        "shift_jis",
    )
    .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.text);
    let back = back.json();
    assert_eq!(back["counts"]["unchanged"], 3, "{back}");
    assert_eq!(back["counts"]["total"], 3);
}

#[actix_web::test]
async fn the_plan_caps_rows_and_bytes_of_one_import() {
    let app = spawn_app().await;
    let (tenant, admin) = setup(&app, "acme").await;
    let operator = app.operator_token().await;
    let plan = format!("/api/v1/plans/{}", tenant.plan_id);
    let shown = app.get(&plan, Some(&operator)).await.json();
    assert_eq!(shown["max_import_rows"], Value::Null, "null: the default");
    app.patch_json(&plan, Some(&operator), &json!({"max_import_rows": 0}))
        .await
        .assert_problem(422, "/problems/validation");
    let capped = app
        .patch_json(
            &plan,
            Some(&operator),
            &json!({"max_import_rows": 2, "max_import_bytes": 64}),
        )
        .await;
    assert_eq!(capped.status, StatusCode::OK, "{}", capped.text);
    assert_eq!(capped.json()["max_import_rows"], 2);

    let query = "target=master_items&master=impact";
    let three = post_csv(&app, &admin, query, b"code\na\nb\nc\n".to_vec(), "utf-8").await;
    let problem = three.assert_problem(422, "/problems/validation");
    assert_eq!(problem["errors"][0]["code"], "too_many_rows", "{problem}");
    let big = post_csv(&app, &admin, query, vec![b'a'; 65], "utf-8").await;
    big.assert_problem(413, "/problems/payload-too-large");
    let two = post_csv(&app, &admin, query, b"code\na\nb\n".to_vec(), "utf-8").await;
    assert_eq!(two.status, StatusCode::CREATED, "{}", two.text);

    // Back to the defaults.
    let reset = app
        .patch_json(
            &plan,
            Some(&operator),
            &json!({"max_import_rows": null, "max_import_bytes": null}),
        )
        .await;
    assert_eq!(reset.json()["max_import_bytes"], Value::Null);
    let three = post_csv(&app, &admin, query, b"code\nd\ne\nf\n".to_vec(), "utf-8").await;
    assert_eq!(three.status, StatusCode::CREATED, "{}", three.text);
}
