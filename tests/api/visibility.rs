//! Visibility: what requesters and partners see is decided by the audience rules and applied
//! to every output. Two leak tests (a dry run's plan, a title taken from an internal field)
//! and the sentinel test: internal values of every field type, internal comments and
//! attachments, an internal library reference — none of it in any response a requester or
//! a partner gets, from any endpoint they may call (`restricted_calls`: add new endpoints
//! there).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Reply, Tenant, TestApp, USER_PASSWORD, spawn_app};

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// One stage holding `states` and a terminal `closed`.
fn one_stage(mut states: Value) -> Value {
    states
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "closed", "label": label("完了", "Closed"), "terminal": true}));
    json!([{"key": "all", "label": label("全体", "All"), "states": states}])
}

/// Creates and publishes a template, adding a `close` transition (agents, from any state)
/// into the terminal state `one_stage` adds.
async fn publish(app: &TestApp, pm: &str, key: &str, mut definition: Value) {
    definition["transitions"]
        .as_array_mut()
        .unwrap()
        .push(json!({
        "key": "close", "label": label("完了", "Close"), "from": "*", "to": "closed",
        "allowed": {"roles": ["agent"]}}));
    app.create(
        "/api/v1/templates",
        pm,
        json!({"key": key, "definition": definition}),
    )
    .await;
    let published = app
        .post_json(
            &format!("/api/v1/templates/{key}/versions/1/publish"),
            Some(pm),
            &json!({}),
        )
        .await;
    assert_eq!(
        published.status,
        StatusCode::OK,
        "{key}: {}",
        published.text
    );
}

/// A child template whose `memo` is internal.
fn sub() -> Value {
    json!({
        "name": label("子", "Sub"), "key_prefix": "SUB",
        "fields": [
            {"key": "title", "type": "text", "label": label("件名", "Title")},
            {"key": "memo", "type": "text", "internal": true, "label": label("メモ", "Memo")}
        ],
        "stages": one_stage(json!([{"key": "new", "label": label("新規", "New"), "initial": true}])),
        "transitions": []
    })
}

/// `escalate` (requesters may take it) creates a child whose internal `memo` is copied from
/// the internal `note`.
fn escalating() -> Value {
    json!({
        "name": label("エスカレーション", "Escalating"), "key_prefix": "ESC",
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("件名", "Title")},
            {"key": "note", "type": "text", "internal": true, "label": label("社内メモ", "Internal note")}
        ],
        "stages": one_stage(json!([
            {"key": "new", "label": label("新規", "New"), "initial": true},
            {"key": "escalated", "label": label("エスカレ済", "Escalated")}])),
        "transitions": [
            {"key": "escalate", "label": label("エスカレ", "Escalate"), "from": ["new"], "to": "escalated",
             "allowed": {"roles": ["agent"], "requester": true},
             "actions": [{"type": "create_child_ticket", "template": "sub",
                          "mapping": {"title": "title", "memo": "note"}}]}
        ]
    })
}

#[actix_web::test]
async fn a_requesters_dry_run_shows_no_value_copied_from_an_internal_field() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    publish(&app, &pm, "sub", sub()).await;
    publish(&app, &pm, "escalating", escalating()).await;
    let ticket = app
        .create(
            "/api/v1/tickets",
            &requester,
            json!({"template": "escalating", "fields": {"title": "困っています"}}),
        )
        .await;
    let path = format!("/api/v1/tickets/{}", id(&ticket));
    let patched = app
        .patch_json(
            &path,
            Some(&agent),
            &json!({"fields": {"note": "社内限定 leakword"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let dry_run = |token: String| {
        let path = format!("{path}/transitions?dry_run=true");
        let app = &app;
        async move {
            let reply = app
                .post_json(&path, Some(&token), &json!({"transition": "escalate"}))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply
        }
    };
    // Staff see the copied value in the plan; the requester sees the plan without it.
    let staff = dry_run(agent.clone()).await;
    assert_eq!(
        staff.json()["plan"]["actions"][0]["fields"]["memo"]["value"],
        "社内限定 leakword"
    );
    let seen = dry_run(requester.clone()).await;
    let body = seen.json();
    assert_eq!(body["plan"]["actions"][0]["type"], "create_child_ticket");
    assert_eq!(
        body["plan"]["actions"][0]["fields"]["title"]["value"],
        "困っています"
    );
    assert!(body["plan"]["actions"][0]["fields"].get("memo").is_none());
    assert!(!seen.text.contains("leakword"), "{}", seen.text);
}

/// `file_away` (requesters may take it) writes a record into a library only agents read.
fn filing() -> Value {
    json!({
        "name": label("記録", "Filing"), "key_prefix": "FIL",
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("件名", "Title")},
            {"key": "summary", "type": "long_text", "label": label("概要", "Summary")}
        ],
        "stages": one_stage(json!([
            {"key": "new", "label": label("新規", "New"), "initial": true},
            {"key": "filed", "label": label("記録済", "Filed")}])),
        "transitions": [
            {"key": "file_away", "label": label("記録", "File"), "from": ["new"], "to": "filed",
             "allowed": {"roles": ["agent"], "requester": true},
             "actions": [{"type": "library_upsert", "library": "agent_notes",
                          "mapping": {"title": "=hiddentitle record", "steps": "summary"}}]}
        ]
    })
}

#[actix_web::test]
async fn a_transition_result_names_no_record_of_a_library_the_caller_may_not_read() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let mut library = manual("00000000-0000-0000-0000-000000000000");
    library["access"] = json!({"read": ["agent"], "write": ["agent"]});
    app.create(
        "/api/v1/libraries",
        &pm,
        json!({"key": "agent_notes", "definition": library}),
    )
    .await;
    publish(&app, &pm, "filing", filing()).await;
    let ticket = app
        .create(
            "/api/v1/tickets",
            &requester,
            json!({"template": "filing", "fields": {"title": "記録して", "summary": "公開の概要"}}),
        )
        .await;
    let path = format!("/api/v1/tickets/{}/transitions?dry_run=true", id(&ticket));
    let body = json!({"transition": "file_away"});
    let staff = app.post_json(&path, Some(&agent), &body).await;
    assert_eq!(staff.status, StatusCode::OK, "{}", staff.text);
    assert_eq!(
        staff.json()["library_changes"][0]["title"],
        "hiddentitle record"
    );
    let seen = app.post_json(&path, Some(&requester), &body).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    let seen_body = seen.json();
    let change = &seen_body["library_changes"][0];
    assert_eq!(change["library"], "agent_notes");
    assert_eq!(change["operation"], "created");
    assert!(change.get("title").is_none() && change.get("fields").is_none());
    assert_eq!(seen_body["plan"]["actions"][0]["fields"], json!({}));
    assert!(!seen.text.contains("hiddentitle"), "{}", seen.text);
}

/// No `title` field: the title comes from a text field, and `secret` comes first.
fn untitled() -> Value {
    json!({
        "name": label("無題", "Untitled"), "key_prefix": "UNT",
        "fields": [
            {"key": "secret", "type": "text", "internal": true, "label": label("社内メモ", "Secret")},
            {"key": "subject", "type": "text", "label": label("用件", "Subject")}
        ],
        "stages": one_stage(json!([{"key": "new", "label": label("新規", "New"), "initial": true}])),
        "transitions": []
    })
}

#[actix_web::test]
async fn a_title_never_comes_from_an_internal_field() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    publish(&app, &pm, "untitled", untitled()).await;
    let ticket = app
        .create(
            "/api/v1/tickets",
            &requester,
            json!({"template": "untitled", "fields": {"subject": "プリンタ故障 printer"}}),
        )
        .await;
    assert_eq!(ticket["title"], "プリンタ故障 printer");
    let path = format!("/api/v1/tickets/{}", id(&ticket));
    let patched = app
        .patch_json(
            &path,
            Some(&agent),
            &json!({"fields": {"secret": "titleleak"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["title"], "プリンタ故障 printer");
    let got = app.get(&path, Some(&requester)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(!got.text.contains("titleleak"), "{}", got.text);
    let found = |token: String| {
        let app = &app;
        async move {
            let reply = app.get("/api/v1/tickets?q=titleleak", Some(&token)).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply.json()["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(found(requester.clone()).await, 0);
    // Staff still find it by the internal field's words.
    assert_eq!(found(agent.clone()).await, 1);
    // With only the internal field set, the title is empty.
    let bare = app
        .create(
            "/api/v1/tickets",
            &agent,
            json!({"template": "untitled", "fields": {"secret": "titleleak2"}}),
        )
        .await;
    assert_eq!(bare["title"], "");
}

/// The string planted in every internal value that can hold one.
const SENTINEL: &str = "zqxsentinel";

/// A template with an internal field of every type, a requester-permitted transition whose
/// actions copy internal values (`set_field`, `create_child_ticket`, `library_upsert`,
/// `notify`), and one whose guard and required fields name internal fields.
fn vault() -> Value {
    let secret = |key: &str, kind: &str| json!({"key": key, "type": kind, "internal": true, "label": label(key, key)});
    let mut fields = vec![
        json!({"key": "title", "type": "text", "required": true, "label": label("件名", "Title")}),
        json!({"key": "summary", "type": "long_text", "label": label("概要", "Summary")}),
        json!({"key": "manual", "type": "library_ref", "library": "manual", "label": label("手順書", "Manual")}),
    ];
    for (key, kind) in [
        ("secret_text", "text"),
        ("secret_long", "long_text"),
        ("secret_int", "integer"),
        ("secret_dec", "decimal"),
        ("secret_date", "date"),
        ("secret_at", "datetime"),
        ("secret_flag", "boolean"),
        ("secret_user", "user"),
        ("secret_group", "group"),
        ("secret_org", "organization"),
        ("secret_file", "attachment"),
        ("secret_extra", "text"),
    ] {
        fields.push(secret(key, kind));
    }
    let mut kind = secret("secret_kind", "select");
    kind["master"] = json!("secret_kinds");
    let mut kinds = secret("secret_kinds", "multi_select");
    kinds["master"] = json!("secret_kinds");
    let mut reference = secret("secret_ref", "library_ref");
    reference["library"] = json!("manual");
    fields.extend([kind, kinds, reference]);
    let allowed = json!({"roles": ["agent", "partner"], "requester": true});
    json!({
        "name": label("金庫", "Vault"), "key_prefix": "VLT",
        "fields": fields,
        "stages": one_stage(json!([
            {"key": "new", "label": label("新規", "New"), "initial": true},
            {"key": "escalated", "label": label("エスカレ済", "Escalated")},
            {"key": "checked", "label": label("確認済", "Checked")}])),
        "transitions": [
            {"key": "escalate", "label": label("エスカレ", "Escalate"), "from": ["new"], "to": "escalated",
             "allowed": allowed, "guard": {"field": "secret_text", "op": "is_set"},
             "actions": [
                {"type": "set_field", "field": "secret_long", "value": format!("{SENTINEL} set by escalate")},
                {"type": "create_child_ticket", "template": "vault_child",
                 "mapping": {"title": "title", "secret_memo": "secret_text", "secret_count": "secret_int"}},
                {"type": "library_upsert", "library": "manual", "record_field": "secret_ref",
                 "mapping": {"title": "title", "secret_note": "secret_text"}},
                {"type": "notify", "event": "escalated"}]},
            {"key": "check", "label": label("確認", "Check"), "from": ["new"], "to": "checked",
             "allowed": allowed, "guard": {"field": "secret_int", "op": "gt", "value": 999_999_999_999_i64}}
        ],
        "field_rules": {"checked": {"secret_extra": "required"}}
    })
}

fn vault_child() -> Value {
    json!({
        "name": label("金庫の子", "Vault child"), "key_prefix": "VLC",
        "fields": [
            {"key": "title", "type": "text", "label": label("件名", "Title")},
            {"key": "secret_memo", "type": "text", "internal": true, "label": label("メモ", "Memo")},
            {"key": "secret_count", "type": "integer", "internal": true, "label": label("数", "Count")}
        ],
        "stages": one_stage(json!([{"key": "new", "label": label("新規", "New"), "initial": true}])),
        "transitions": []
    })
}

/// A library requesters and the partner's organization read, with an internal note.
fn manual(partner_org: &str) -> Value {
    json!({
        "name": label("手順書", "Manual"),
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("件名", "Title")},
            {"key": "steps", "type": "long_text", "label": label("手順", "Steps")},
            {"key": "secret_note", "type": "text", "internal": true, "label": label("社内メモ", "Internal note")}
        ],
        "title_field": "title",
        "layout": {"sections": [{"key": "main", "label": label("本文", "Main"),
                                 "fields": ["title", "steps", "secret_note"]}]},
        "access": {"read": ["agent", "requester"], "write": ["agent"],
                   "partner_organizations": [partner_org]}
    })
}

/// Everything the sentinel test set up.
struct Vault {
    staff: String,
    requester: String,
    partner: String,
    ticket: String,
    record: String,
    internal_attachment: String,
    /// Strings no restricted response may contain.
    forbidden: Vec<String>,
}

async fn directory_entry(app: &TestApp, admin: &str, path: &str, body: Value) -> String {
    id(&app.create(path, admin, body).await)
}

async fn upload(app: &TestApp, token: &str, ticket: &str, name: &str, internal: bool) -> String {
    let content = if internal { SENTINEL } else { "public content" };
    let part = reqwest::multipart::Part::bytes(content.as_bytes().to_vec())
        .file_name(name.to_owned())
        .mime_str("text/plain")
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .part("file", part)
        .text("internal", internal.to_string());
    let reply = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/tickets/{ticket}/attachments")))
                .bearer_auth(token)
                .multipart(form),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    id(&reply.json())
}

/// Users, directory entries, master, library, templates.
async fn vault_tenant(app: &TestApp) -> (Tenant, Vault) {
    let tenant = app.tenant("acme").await;
    let admin = tenant.admin_token.clone();
    let pm = app.user_token(&tenant, "pm", &["process_manager"]).await;
    let staff = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester_id = app.user(&tenant, "req1", &["requester"]).await;
    let requester = app.login(Some("acme"), "req1", USER_PASSWORD).await;
    let org = |name: String| json!({"name": name, "kind": "partner"});
    let partner_org = directory_entry(
        app,
        &admin,
        "/api/v1/organizations",
        org("Partner A".into()),
    )
    .await;
    let hidden_org = directory_entry(
        app,
        &admin,
        "/api/v1/organizations",
        org(format!("{SENTINEL} org")),
    )
    .await;
    let group = directory_entry(
        app,
        &admin,
        "/api/v1/groups",
        json!({"name": format!("{SENTINEL} group")}),
    )
    .await;
    let person = directory_entry(
        app,
        &admin,
        "/api/v1/users",
        json!({"username": "hidden1", "password": USER_PASSWORD,
            "display_name": format!("{SENTINEL} person"), "roles": ["requester"]}),
    )
    .await;
    directory_entry(
        app,
        &admin,
        "/api/v1/users",
        json!({"username": "pa", "password": USER_PASSWORD, "display_name": "PA",
            "roles": ["partner"], "organization_id": partner_org}),
    )
    .await;
    let partner = app.login(Some("acme"), "pa", USER_PASSWORD).await;
    app.create(
        "/api/v1/masters",
        &pm,
        json!({"key": "secret_kinds", "name": label("秘密の種別", "Secret kinds"),
            "items": [{"code": SENTINEL, "label": label(&format!("{SENTINEL} 秘"), SENTINEL)},
                      {"code": "other", "label": label("他", "Other")}]}),
    )
    .await;
    app.create(
        "/api/v1/libraries",
        &pm,
        json!({"key": "manual", "definition": manual(&partner_org)}),
    )
    .await;
    publish(app, &pm, "vault_child", vault_child()).await;
    publish(app, &pm, "vault", vault()).await;
    let record = app
        .create(
            "/api/v1/libraries/manual/records",
            &staff,
            json!({"fields": {"title": "手順書 manualpage", "steps": "再起動する",
                "secret_note": format!("{SENTINEL} record note")}}),
        )
        .await;
    let ticket = app
        .create(
            "/api/v1/tickets",
            &staff,
            json!({"template": "vault", "requester": requester_id, "organization": partner_org,
                "fields": {"title": "金庫の件 vaultcase", "summary": "公開の概要",
                    "manual": id(&record), "secret_text": format!("{SENTINEL} text"),
                    "secret_int": 987_654_321, "secret_kind": SENTINEL}}),
        )
        .await;
    let vault = Vault {
        staff,
        requester,
        partner,
        ticket: id(&ticket),
        record: id(&record),
        internal_attachment: String::new(),
        forbidden: [SENTINEL, "987654321", "31415.9265", "2031-07-19", "secret_"]
            .into_iter()
            .map(str::to_owned)
            .chain([hidden_org, group, person])
            .collect(),
    };
    (tenant, vault)
}

/// An agent fills every internal field after creation (so history has entries about them),
/// and adds internal and public comments and attachments.
async fn fill(app: &TestApp, vault: &mut Vault) {
    let ticket = vault.ticket.clone();
    let staff = vault.staff.clone();
    let hidden = upload(app, &staff, &ticket, &format!("{SENTINEL}.txt"), true).await;
    upload(app, &vault.requester, &ticket, "public.txt", false).await;
    let ids = &vault.forbidden[vault.forbidden.len() - 3..];
    let fields = json!({
        "secret_text": format!("{SENTINEL} text, changed"),
        "secret_long": format!("{SENTINEL} long text"),
        "secret_int": 987_654_321_i64 + 1,
        "secret_dec": 31415.9265,
        "secret_date": "2031-07-19",
        "secret_at": "2031-07-19T01:02:03Z",
        "secret_flag": true,
        "secret_kinds": [SENTINEL, "other"],
        "secret_org": ids[0], "secret_group": ids[1], "secret_user": ids[2],
        "secret_ref": vault.record, "secret_file": hidden,
    });
    let patched = app
        .patch_json(
            &format!("/api/v1/tickets/{ticket}"),
            Some(&staff),
            &json!({"fields": fields}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert!(patched.text.contains(SENTINEL));
    for (body, internal) in [
        (format!("{SENTINEL} comment"), true),
        ("公開の返信".into(), false),
    ] {
        let reply = app
            .post_json(
                &format!("/api/v1/tickets/{ticket}/comments"),
                Some(&staff),
                &json!({"body": body, "internal": internal}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    vault.forbidden.push(hidden.clone());
    vault.internal_attachment = hidden;
}

/// One call a restricted caller may make, and the status it must get.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    status: StatusCode,
}

fn get(path: String) -> Call {
    Call {
        method: Method::GET,
        path,
        body: None,
        status: StatusCode::OK,
    }
}

/// Every endpoint a requester or partner may call that carries ticket, record or event
/// data. Later outputs join this list.
fn restricted_calls(v: &Vault) -> Vec<Call> {
    let t = format!("/api/v1/tickets/{}", v.ticket);
    let r = format!("/api/v1/libraries/manual/records/{}", v.record);
    let mut calls: Vec<Call> = [
        t.clone(),
        format!("{t}?expand=references"),
        "/api/v1/tickets".to_owned(),
        format!("/api/v1/tickets?q={SENTINEL}"),
        "/api/v1/tickets?q=987654321".to_owned(),
        format!("/api/v1/tickets?field.secret_text={SENTINEL}%20text"),
        format!("/api/v1/tickets?field.secret_kind={SENTINEL}"),
        "/api/v1/tickets?field.secret_int=987654322".to_owned(),
        "/api/v1/tickets/export".to_owned(),
        "/api/v1/tickets/export?format=jsonl".to_owned(),
        "/api/v1/tickets/export?template=vault&encoding=cp932".to_owned(),
        format!("{t}/history"),
        format!("{t}/timeline"),
        // Tickets as they were: a future instant reads as now.
        format!("{t}?as_of=2999-01-01T00:00:00Z"),
        format!("{t}/comments"),
        format!("{t}/attachments"),
        format!("{t}/links"),
        format!("{t}/watchers"),
        format!("{t}/transitions"),
        format!("{t}/transitions?explain=true"),
        "/api/v1/libraries".to_owned(),
        "/api/v1/libraries/manual".to_owned(),
        "/api/v1/libraries/manual/records".to_owned(),
        format!("/api/v1/libraries/manual/records?q={SENTINEL}"),
        "/api/v1/libraries/manual/records/export".to_owned(),
        "/api/v1/libraries/manual/records/export?format=jsonl".to_owned(),
        r.clone(),
        format!("{r}/history"),
        format!("{r}/tickets"),
        "/api/v1/events?limit=500".to_owned(),
        format!("/api/v1/events?limit=500&subject={}", v.ticket),
    ]
    .into_iter()
    .map(get)
    .collect();
    calls.push(Call {
        status: StatusCode::NOT_FOUND,
        ..get(format!(
            "/api/v1/attachments/{}/content",
            v.internal_attachment
        ))
    });
    // Figures over tickets are for staff.
    for path in [
        "/api/v1/stats/templates/vault".to_owned(),
        "/api/v1/reports/monthly?month=2026-04".to_owned(),
        "/api/v1/tickets?sla=breached".to_owned(),
    ] {
        calls.push(Call {
            status: StatusCode::FORBIDDEN,
            ..get(path)
        });
    }
    // Writes answer with ticket data too.
    calls.push(Call {
        method: Method::PATCH,
        path: t.clone(),
        body: Some(json!({"fields": {"summary": "概要を更新"}})),
        status: StatusCode::OK,
    });
    calls.push(Call {
        method: Method::POST,
        path: format!("{t}/comments"),
        body: Some(json!({"body": "確認しました", "internal": false})),
        status: StatusCode::CREATED,
    });
    // A refused transition: its guard compares an internal field and its target state
    // requires one; the 409 names neither.
    calls.push(Call {
        method: Method::POST,
        path: format!("{t}/transitions?dry_run=true"),
        body: Some(json!({"transition": "check"})),
        status: StatusCode::CONFLICT,
    });
    // Last: the sentinel test also sends it as staff.
    calls.push(Call {
        method: Method::POST,
        path: format!("{t}/transitions?dry_run=true"),
        body: Some(json!({"transition": "escalate"})),
        status: StatusCode::OK,
    });
    calls
}

async fn call(app: &TestApp, token: &str, c: &Call) -> Reply {
    app.request(c.method.clone(), &c.path, Some(token), c.body.as_ref())
        .await
}

#[actix_web::test]
async fn no_internal_value_reaches_a_requester_or_a_partner() {
    let app = spawn_app().await;
    let (_tenant, mut vault) = vault_tenant(&app).await;
    fill(&app, &mut vault).await;

    // Not vacuous: staff get the planted values from the same endpoints.
    let staff = &vault.staff;
    let t = format!("/api/v1/tickets/{}", vault.ticket);
    for path in [
        format!("{t}?expand=references"),
        format!("{t}/history"),
        format!("{t}?as_of=2999-01-01T00:00:00Z"),
        format!("{t}/comments"),
        format!("/api/v1/tickets?q={SENTINEL}"),
        "/api/v1/events?limit=500".to_owned(),
    ] {
        let reply = app.get(&path, Some(staff)).await;
        assert!(
            reply.text.contains(SENTINEL),
            "staff {path}: {}",
            reply.text
        );
    }
    let dry_run = call(&app, staff, restricted_calls(&vault).last().unwrap()).await;
    assert!(dry_run.text.contains(SENTINEL), "{}", dry_run.text);

    let calls = restricted_calls(&vault);
    for (who, token) in [("requester", &vault.requester), ("partner", &vault.partner)] {
        for c in &calls {
            let reply = call(&app, token, c).await;
            assert_eq!(
                reply.status, c.status,
                "{who} {} {}: {}",
                c.method, c.path, reply.text
            );
            for word in &vault.forbidden {
                assert!(
                    !reply.text.contains(word.as_str()),
                    "{who} {} {} shows {word}: {}",
                    c.method,
                    c.path,
                    reply.text
                );
            }
        }
        // And they do see the ticket, its public comment and attachment, and the record.
        let seen = |path: String, what: &'static str| {
            let app = &app;
            async move {
                let reply = app.get(&path, Some(token)).await;
                assert!(reply.text.contains(what), "{who} {path}: {}", reply.text);
            }
        };
        seen(t.clone(), "vaultcase").await;
        seen("/api/v1/events?limit=500".to_owned(), "vaultcase").await;
        seen("/api/v1/events?limit=500".to_owned(), "公開の返信").await;
        seen("/api/v1/tickets".to_owned(), "vaultcase").await;
        seen(format!("{t}/comments"), "公開の返信").await;
        seen(format!("{t}/attachments"), "public.txt").await;
        seen(format!("{t}/transitions?explain=true"), "condition not met").await;
        seen(
            format!("/api/v1/libraries/manual/records/{}", vault.record),
            "manualpage",
        )
        .await;
    }
}
