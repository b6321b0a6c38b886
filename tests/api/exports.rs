//! Exports of tickets, library records, users and master items: CSV in UTF-8, UTF-8 with a
//! BOM or CP932 (whole, or a 422 naming each character CP932 cannot hold), JSON Lines equal to
//! the list DTOs, formula neutralisation, the documented columns, who sees what, and tenant
//! isolation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, USER_PASSWORD, spawn_app};
use crate::tickets::desk_tenant;

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

/// The rows of a CSV export (header first) from its text.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// A CP932 body decoded strictly: any byte that is not CP932 fails the test.
fn decode_cp932(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/csv; charset=Shift_JIS")
    );
    encoding_rs::SHIFT_JIS
        .decode_without_bom_handling_and_without_replacement(&reply.bytes)
        .unwrap_or_else(|| panic!("the body is not CP932"))
        .into_owned()
}

/// The JSON objects of a JSON Lines export.
fn jsonl(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    assert!(reply.text.ends_with('\n') || reply.text.is_empty());
    reply
        .text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn column<'a>(rows: &'a [Vec<String>], row: usize, name: &str) -> &'a str {
    let at = rows[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}: {:?}", rows[0]));
    &rows[row][at]
}

async fn ticket(app: &TestApp, token: &str, fields: Value) -> Value {
    app.create(
        "/api/v1/tickets",
        token,
        json!({"template": "desk", "fields": fields}),
    )
    .await
}

#[actix_web::test]
async fn a_cp932_ticket_export_decodes_back_to_the_japanese_text() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let title = "メールサーバ障害 ﾃｽﾄ ①";
    ticket(
        &app,
        &agent,
        json!({"title": title, "description": "～全角チルダと－記号", "impact": "high"}),
    )
    .await;
    ticket(&app, &agent, json!({"title": "=cmd|' /C calc'!A0"})).await;

    let reply = app
        .get(
            "/api/v1/tickets/export?template=desk&sort=key&encoding=cp932",
            Some(&agent),
        )
        .await;
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"tickets.csv\"")
    );
    // Half-width katakana is one byte in CP932, and ① is the NEC extension 0x8740.
    assert!(reply.bytes.windows(2).any(|w| w == [0x87, 0x40]));
    let rows = csv_rows(&decode_cp932(&reply));
    assert_eq!(rows.len(), 3);
    assert_eq!(column(&rows, 1, "title"), title);
    assert_eq!(
        column(&rows, 1, "field.description"),
        "～全角チルダと－記号"
    );
    assert_eq!(column(&rows, 1, "field.impact"), "high");
    assert_eq!(column(&rows, 2, "title"), "'=cmd|' /C calc'!A0");

    // `bom=true` is utf-8-bom; with another encoding it is refused, and JSON Lines is UTF-8.
    for query in [
        "encoding=cp932&bom=true",
        "encoding=utf-8&bom=true",
        "format=jsonl&encoding=cp932",
        "format=jsonl&bom=true",
    ] {
        let body = app
            .get(&format!("/api/v1/tickets/export?{query}"), Some(&agent))
            .await
            .assert_problem(422, "/problems/validation");
        assert_eq!(body["errors"][0]["field"], "encoding", "{query}");
    }
    app.get("/api/v1/tickets/export?encoding=latin1", Some(&agent))
        .await
        .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn a_character_cp932_cannot_hold_refuses_the_export_with_its_place() {
    let app = spawn_app().await;
    let (tenant, _) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    ticket(&app, &agent, json!({"title": "普通の件名"})).await;
    ticket(
        &app,
        &agent,
        json!({"title": "愛❤の件", "description": "𠮷野家の❤"}),
    )
    .await;

    let reply = app
        .get(
            "/api/v1/tickets/export?template=desk&sort=key&encoding=cp932",
            Some(&agent),
        )
        .await;
    let body = reply.assert_problem(422, "/problems/validation");
    assert_eq!(
        body["errors"],
        json!([
            {"field": "row 3, column title", "code": "unencodable",
             "message": "U+2764 '❤' has no CP932 form"},
            {"field": "row 3, column field.title", "code": "unencodable",
             "message": "U+2764 '❤' has no CP932 form"},
            {"field": "row 3, column field.description", "code": "unencodable",
             "message": "U+20BB7 '𠮷' has no CP932 form"},
            {"field": "row 3, column field.description", "code": "unencodable",
             "message": "U+2764 '❤' has no CP932 form"},
        ]),
        "{}",
        reply.text
    );
    // The same export in UTF-8 holds them.
    let utf8 = app
        .get(
            "/api/v1/tickets/export?template=desk&sort=key",
            Some(&agent),
        )
        .await;
    assert_eq!(utf8.status, StatusCode::OK);
    assert!(utf8.text.contains("愛❤の件") && utf8.text.contains("𠮷野家の❤"));
}

#[actix_web::test]
async fn utf8_bom_exports_start_with_the_byte_order_mark() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    ticket(&app, &agent, json!({"title": "件名"})).await;
    for (path, token) in [
        ("/api/v1/tickets/export?encoding=utf-8-bom", &agent),
        ("/api/v1/tickets/export?bom=true&encoding=utf-8-bom", &agent),
        ("/api/v1/tickets/export?bom=true", &agent),
        (
            "/api/v1/masters/impact/items/export?encoding=utf-8-bom",
            &pm,
        ),
        (
            "/api/v1/users/export?encoding=utf-8-bom",
            &tenant.admin_token,
        ),
    ] {
        let reply = app.get(path, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_eq!(&reply.bytes[..3], [0xEF, 0xBB, 0xBF], "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some("text/csv; charset=utf-8")
        );
    }
    let plain = app.get("/api/v1/tickets/export", Some(&agent)).await;
    assert!(plain.text.starts_with("id,key,"), "{}", plain.text);
}

#[actix_web::test]
async fn json_lines_are_the_list_dtos() {
    let app = spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester_id = app.user(&tenant, "req1", &["requester"]).await;
    let requester = app.login(Some("acme"), "req1", USER_PASSWORD).await;
    for i in 0..3 {
        ticket(
            &app,
            &agent,
            json!({"title": format!("障害 {i}"), "note": "社外秘", "impact": "low"}),
        )
        .await;
    }
    app.create(
        "/api/v1/tickets",
        &agent,
        json!({"template": "desk", "requester": requester_id,
            "fields": {"title": "依頼", "note": "社外秘"}}),
    )
    .await;
    for (token, query) in [
        (&agent, "template=desk&sort=key"),
        (&agent, "sort=-updated"),
        (&requester, "template=desk"),
    ] {
        let list = app
            .get(&format!("/api/v1/tickets?{query}&limit=500"), Some(token))
            .await;
        let export = app
            .get(
                &format!("/api/v1/tickets/export?format=jsonl&{query}"),
                Some(token),
            )
            .await;
        assert_eq!(
            export.header("content-disposition"),
            Some("attachment; filename=\"tickets.jsonl\"")
        );
        assert_eq!(
            Value::Array(jsonl(&export)),
            list.json()["items"],
            "{query}"
        );
    }
    let theirs = app
        .get("/api/v1/tickets/export?format=jsonl", Some(&requester))
        .await;
    assert_eq!(jsonl(&theirs).len(), 1);
    assert!(!theirs.text.contains("社外秘"));

    let items = app.get("/api/v1/masters/impact/items", Some(&pm)).await;
    let export = app
        .get(
            "/api/v1/masters/impact/items/export?format=jsonl",
            Some(&pm),
        )
        .await;
    assert_eq!(Value::Array(jsonl(&export)), items.json()["items"]);
    let users = app
        .get("/api/v1/users?limit=500", Some(&tenant.admin_token))
        .await;
    let export = app
        .get(
            "/api/v1/users/export?format=jsonl",
            Some(&tenant.admin_token),
        )
        .await;
    assert_eq!(Value::Array(jsonl(&export)), users.json()["items"]);
}

#[actix_web::test]
async fn master_items_export_in_cp932_with_the_documented_columns() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    app.create(
        "/api/v1/masters",
        &pm,
        json!({"key": "area", "name": label("地域", "Area"), "items": [
            {"code": "kanto", "label": label("関東①", "Kanto"), "order": 10},
            {"code": "tokyo", "label": label("東京ﾄｳｷｮｳ", "Tokyo"), "order": 20, "parent": "kanto"},
            {"code": "old", "label": label("=旧", "-old"), "order": 30, "active": false}
        ]}),
    )
    .await;
    let reply = app
        .get(
            "/api/v1/masters/area/items/export?encoding=cp932",
            Some(&requester),
        )
        .await;
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"area-items.csv\"")
    );
    let rows = csv_rows(&decode_cp932(&reply));
    assert_eq!(
        rows,
        vec![
            vec!["code", "label_ja", "label_en", "order", "active", "parent"],
            vec!["kanto", "関東①", "Kanto", "10", "true", ""],
            vec!["tokyo", "東京ﾄｳｷｮｳ", "Tokyo", "20", "true", "kanto"],
            vec!["old", "'=旧", "'-old", "30", "false", ""],
        ]
    );
    let active = app
        .get("/api/v1/masters/area/items/export?active=true", Some(&pm))
        .await;
    assert_eq!(csv_rows(&active.text).len(), 3);
    // A label CP932 cannot hold is located like a ticket's.
    let patched = app
        .patch_json(
            "/api/v1/masters/area/items/tokyo",
            Some(&pm),
            &json!({"label": label("東京❤", "Tokyo")}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let body = app
        .get(
            "/api/v1/masters/area/items/export?encoding=cp932",
            Some(&pm),
        )
        .await
        .assert_problem(422, "/problems/validation");
    assert_eq!(
        body["errors"],
        json!([{"field": "row 3, column label_ja", "code": "unencodable",
            "message": "U+2764 '❤' has no CP932 form"}])
    );
}

#[actix_web::test]
async fn the_users_export_has_the_documented_columns_for_tenant_admins() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let admin = &tenant.admin_token;
    let org = app
        .create(
            "/api/v1/organizations",
            admin,
            json!({"name": "取引先", "kind": "partner"}),
        )
        .await;
    let yamada = app
        .create(
            "/api/v1/users",
            admin,
            json!({"username": "yamada", "password": USER_PASSWORD, "display_name": "=山田 太郎",
                "email": "yamada@example.jp", "roles": ["agent", "process_manager"],
                "organization_id": org["id"]}),
        )
        .await;
    let gone = app.user(&tenant, "gone", &["requester"]).await;
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/{gone}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);

    let reply = app.get("/api/v1/users/export", Some(admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"users.csv\"")
    );
    let rows = csv_rows(&reply.text);
    assert_eq!(
        rows[0],
        [
            "id",
            "username",
            "display_name",
            "email",
            "roles",
            "organization",
            "active"
        ]
    );
    assert_eq!(rows.len(), 4, "{}", reply.text);
    assert_eq!(rows[1][1], "admin");
    assert_eq!(
        rows[2],
        [
            yamada["id"].as_str().unwrap(),
            "yamada",
            "'=山田 太郎",
            "yamada@example.jp",
            // In the order the user DTO lists them.
            "process_manager;agent",
            org["id"].as_str().unwrap(),
            "true"
        ]
    );
    assert_eq!(rows[3][0], gone);
    assert_eq!(rows[3][3], "");
    assert_eq!(rows[3][6], "false");
    // The list's filters apply.
    let active = app
        .get("/api/v1/users/export?active=true&role=agent", Some(admin))
        .await;
    assert_eq!(csv_rows(&active.text).len(), 2, "{}", active.text);

    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    app.get("/api/v1/users/export", Some(&agent))
        .await
        .assert_problem(403, "/problems/forbidden");
    app.get("/api/v1/users/export", None)
        .await
        .assert_problem(401, "/problems/unauthorized");
}

/// An asset register: a title, a multi-select from a master, a number, a flag, an internal
/// note; agents write, requesters read.
fn assets() -> Value {
    json!({
        "name": label("資産", "Assets"),
        "fields": [
            {"key": "name", "type": "text", "required": true, "label": label("名称", "Name")},
            {"key": "tags", "type": "multi_select", "master": "asset_tag", "label": label("タグ", "Tags")},
            {"key": "count", "type": "integer", "label": label("台数", "Count")},
            {"key": "leased", "type": "boolean", "label": label("リース", "Leased")},
            {"key": "secret", "type": "text", "internal": true, "label": label("社内メモ", "Internal note")}
        ],
        "title_field": "name",
        "layout": {"sections": [{"key": "main", "label": label("本体", "Main"),
            "fields": ["name", "tags", "count", "leased", "secret"]}]},
        "review_interval_days": 365,
        "access": {"read": ["agent", "requester"], "write": ["agent"]}
    })
}

#[actix_web::test]
async fn the_records_export_has_the_documented_columns_and_no_internal_field_for_requesters() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    app.create(
        "/api/v1/masters",
        &pm,
        json!({"key": "asset_tag", "name": label("タグ", "Tag"), "items": [
            {"code": "pc", "label": label("PC", "PC")},
            {"code": "spare", "label": label("予備", "Spare")}]}),
    )
    .await;
    app.create(
        "/api/v1/libraries",
        &pm,
        json!({"key": "assets", "definition": assets()}),
    )
    .await;
    let first = app
        .create(
            "/api/v1/libraries/assets/records",
            &agent,
            json!({"fields": {"name": "ノートPC", "tags": ["pc", "spare"], "count": 12,
                "leased": true, "secret": "極秘メモ"}}),
        )
        .await;
    app.create(
        "/api/v1/libraries/assets/records",
        &agent,
        json!({"fields": {"name": "=HYPERLINK(\"x\")"}}),
    )
    .await;

    let reply = app
        .get(
            "/api/v1/libraries/assets/records/export?sort=created",
            Some(&agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"assets-records.csv\"")
    );
    let rows = csv_rows(&reply.text);
    let fixed = [
        "id",
        "title",
        "version",
        "reviewed_at",
        "review_due_at",
        "created_at",
        "updated_at",
    ];
    let staff_header: Vec<&str> = fixed
        .iter()
        .copied()
        .chain([
            "field.name",
            "field.tags",
            "field.count",
            "field.leased",
            "field.secret",
        ])
        .collect();
    assert_eq!(rows[0], staff_header);
    assert_eq!(
        rows[1],
        [
            first["id"].as_str().unwrap(),
            "ノートPC",
            "1",
            "2026-04-01T09:00:00Z",
            "2027-04-01T09:00:00Z",
            "2026-04-01T09:00:00Z",
            "2026-04-01T09:00:00Z",
            "ノートPC",
            "pc;spare",
            "12",
            "true",
            "極秘メモ"
        ]
    );
    assert_eq!(column(&rows, 2, "title"), "'=HYPERLINK(\"x\")");
    assert_eq!(column(&rows, 2, "field.tags"), "");

    // The requester's export has neither the internal column nor its value.
    let theirs = app
        .get("/api/v1/libraries/assets/records/export", Some(&requester))
        .await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    let their_rows = csv_rows(&theirs.text);
    assert_eq!(their_rows[0], staff_header[..11]);
    assert!(!theirs.text.contains("secret") && !theirs.text.contains("極秘メモ"));
    let list = app
        .get("/api/v1/libraries/assets/records", Some(&requester))
        .await;
    let lines = app
        .get(
            "/api/v1/libraries/assets/records/export?format=jsonl",
            Some(&requester),
        )
        .await;
    assert_eq!(Value::Array(jsonl(&lines)), list.json()["items"]);
    assert!(!lines.text.contains("極秘メモ"));

    // The list's filters apply; paging does not.
    let filtered = app
        .get(
            "/api/v1/libraries/assets/records/export?field.tags=spare&encoding=cp932",
            Some(&agent),
        )
        .await;
    assert_eq!(csv_rows(&decode_cp932(&filtered)).len(), 2);
    app.get(
        "/api/v1/libraries/assets/records/export?limit=5",
        Some(&agent),
    )
    .await
    .assert_problem(422, "/problems/validation");
}

#[actix_web::test]
async fn another_tenants_library_or_master_is_not_found() {
    let app = spawn_app().await;
    let (_a, pm_a) = desk_tenant(&app, "tenant-a").await;
    app.create(
        "/api/v1/libraries",
        &pm_a,
        json!({"key": "assets", "definition": json!({
            "name": label("資産", "Assets"),
            "fields": [{"key": "name", "type": "text", "required": true, "label": label("名称", "Name")}],
            "title_field": "name",
            "access": {"read": ["agent"], "write": ["agent"]}
        })}),
    )
    .await;
    let b = app.tenant("tenant-b").await;
    for (theirs, missing) in [
        (
            "/api/v1/libraries/assets/records/export",
            "/api/v1/libraries/no_such_library/records/export",
        ),
        (
            "/api/v1/masters/impact/items/export",
            "/api/v1/masters/no_such_master/items/export",
        ),
        (
            "/api/v1/masters/impact/items/export?encoding=cp932",
            "/api/v1/masters/no_such_master/items/export?encoding=cp932",
        ),
    ] {
        let on_a = app.get(theirs, Some(&b.admin_token)).await;
        on_a.assert_problem(404, "/problems/not-found");
        let on_missing = app.get(missing, Some(&b.admin_token)).await;
        assert_eq!(on_a.sans_instance(), on_missing.sans_instance(), "{theirs}");
    }
    // B's own exports show nothing of A.
    let users = app
        .get("/api/v1/users/export?format=jsonl", Some(&b.admin_token))
        .await;
    let users = jsonl(&users);
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["username"], "admin");
    let tickets = app
        .get("/api/v1/tickets/export", Some(&b.admin_token))
        .await;
    assert_eq!(csv_rows(&tickets.text).len(), 1);
}

#[actix_web::test]
async fn a_records_export_walks_every_page() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    app.create(
        "/api/v1/libraries",
        &pm,
        json!({"key": "parts", "definition": json!({
            "name": label("部品", "Parts"),
            "fields": [{"key": "name", "type": "text", "required": true, "label": label("名称", "Name")}],
            "title_field": "name",
            "access": {"read": ["agent"], "write": ["agent"]}
        })}),
    )
    .await;
    // More than one export page (500 rows).
    let total = 503;
    for chunk in (0..total).collect::<Vec<_>>().chunks(25) {
        let creates = chunk.iter().map(|i| {
            let name = if *i == 501 {
                "部品❤".to_owned()
            } else {
                format!("部品 {i}")
            };
            app.create(
                "/api/v1/libraries/parts/records",
                &agent,
                json!({"fields": {"name": name}}),
            )
        });
        futures_util::future::join_all(creates).await;
    }
    for query in ["sort=created", "sort=-updated"] {
        let export = app
            .get(
                &format!("/api/v1/libraries/parts/records/export?format=jsonl&{query}"),
                Some(&agent),
            )
            .await;
        let lines = jsonl(&export);
        let first = app
            .get(
                &format!("/api/v1/libraries/parts/records?{query}&limit=500"),
                Some(&agent),
            )
            .await
            .json();
        let cursor = first["next_cursor"].as_str().unwrap();
        let second = app
            .get(
                &format!("/api/v1/libraries/parts/records?{query}&limit=500&cursor={cursor}"),
                Some(&agent),
            )
            .await
            .json();
        let mut listed = first["items"].as_array().unwrap().clone();
        listed.extend(second["items"].as_array().unwrap().iter().cloned());
        assert_eq!(lines.len(), total, "{query}");
        assert_eq!(lines, listed, "{query}");
    }
    let rows = csv_rows(
        &app.get(
            "/api/v1/libraries/parts/records/export?sort=created",
            Some(&agent),
        )
        .await
        .text,
    );
    assert_eq!(rows.len(), total + 1);
    let heart = rows.iter().position(|r| r[1] == "部品❤").unwrap();
    let body = app
        .get(
            "/api/v1/libraries/parts/records/export?sort=created&encoding=cp932",
            Some(&agent),
        )
        .await
        .assert_problem(422, "/problems/validation");
    // Rows count as a spreadsheet shows them: the header is row 1.
    let place = format!("row {}", heart + 1);
    assert_eq!(
        body["errors"],
        json!([
            {"field": format!("{place}, column title"), "code": "unencodable",
             "message": "U+2764 '❤' has no CP932 form"},
            {"field": format!("{place}, column field.name"), "code": "unencodable",
             "message": "U+2764 '❤' has no CP932 form"},
        ])
    );
}
