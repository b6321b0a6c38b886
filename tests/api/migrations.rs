//! Moving running tickets to a new template version (#16 point 5): the dry run's counts and
//! blocked tickets, the run with state and field mappings, history and `as_of` across it,
//! tickets filed afterwards left alone, a second run finding nothing, and the refusals.

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::sla::{app, desk, fire, sla_desk};

async fn ticket(app: &TestApp, token: &str) -> String {
    app.create(
        "/api/v1/tickets",
        token,
        json!({"template": "sla_desk", "fields": {"title": "移行", "priority": "p2", "category": "mail"}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Version 2: `waiting` becomes `on_hold`, `category` becomes `topic`, `note` goes.
async fn publish_v2(app: &TestApp, pm: &str) {
    let draft = app
        .post_json("/api/v1/templates/sla_desk/versions", Some(pm), &json!({}))
        .await;
    assert_eq!(draft.status, StatusCode::CREATED, "{}", draft.text);
    let text = sla_desk()
        .to_string()
        .replace("\"waiting\"", "\"on_hold\"")
        .replace("\"category\"", "\"topic\"");
    let mut v2: Value = serde_json::from_str(&text).unwrap();
    v2["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["key"] != "note");
    let put = app
        .send(
            app.client
                .put(app.url("/api/v1/templates/sla_desk/versions/2"))
                .bearer_auth(pm)
                .json(&json!({"definition": v2})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let published = app
        .post_json(
            "/api/v1/templates/sla_desk/versions/2/publish",
            Some(pm),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
}

#[actix_web::test]
async fn running_tickets_move_to_a_new_version_with_mappings() {
    let app = app().await;
    let d = desk(&app, "migrate").await;
    let a = ticket(&app, &d.requester).await;
    let noted = app
        .patch_json(
            &format!("/api/v1/tickets/{a}"),
            Some(&d.agent),
            &json!({"fields": {"note": "社内"}}),
        )
        .await;
    assert_eq!(noted.status, StatusCode::OK, "{}", noted.text);
    let b = ticket(&app, &d.requester).await;
    fire(&app, &d.agent, &b, "start").await;
    fire(&app, &d.agent, &b, "hold").await;
    publish_v2(&app, &d.pm).await;
    app.clock.advance(TimeDelta::hours(1));
    let before = app.clock_now();
    app.clock.advance(TimeDelta::hours(1));

    let post = |query: &'static str, body: Value| {
        let (app, pm) = (&app, d.pm.clone());
        async move {
            app.post_json(
                &format!("/api/v1/templates/sla_desk/migrations{query}"),
                Some(&pm),
                &body,
            )
            .await
        }
    };
    // Without a state mapping, the ticket on hold cannot move.
    let dry = post("?dry_run=true", json!({"from_version": 1})).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["to_version"], 2);
    assert_eq!(
        (dry["tickets"].as_i64(), dry["moved"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(dry["blocked_count"], 1);
    assert_eq!(dry["blocked"][0]["ticket_id"], b.as_str());
    assert!(
        dry["blocked"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("waiting")
    );
    assert_eq!(dry["fields_dropped"], json!(["category", "note"]));

    let mapping = json!({"from_version": 1, "states": {"waiting": "on_hold"}, "fields": {"category": "topic"}});
    let dry = post("?dry_run=true", mapping.clone()).await.json();
    assert_eq!(dry["moved"], 2);
    assert_eq!(
        dry["moves"],
        json!([{"from_state": "new", "to_state": "new", "count": 1},
               {"from_state": "waiting", "to_state": "on_hold", "count": 1}])
    );
    assert_eq!(dry["fields_dropped"], json!(["note"]));
    let unmoved = app
        .get(&format!("/api/v1/tickets/{a}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(unmoved["template_version"], 1);

    let run = post("", mapping.clone()).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    let run = run.json();
    assert_eq!(
        (run["dry_run"].as_bool(), run["moved"].as_i64()),
        (Some(false), Some(2))
    );
    let moved = app
        .get(&format!("/api/v1/tickets/{a}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(moved["template_version"], 2);
    assert_eq!(
        moved["fields"],
        json!({"title": "移行", "priority": "p2", "topic": "mail"})
    );
    assert_eq!(moved["version"], 3);
    let held = app
        .get(&format!("/api/v1/tickets/{b}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(held["state"], "on_hold");
    // It carries on in the new version.
    fire(&app, &d.agent, &b, "resume").await;
    let history = app
        .get(&format!("/api/v1/tickets/{a}/history"), Some(&d.agent))
        .await
        .json();
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "migrated");
    assert_eq!(last["old_value"]["template_version"], 1);
    assert_eq!(last["new_value"]["template_version"], 2);
    // As it was before the run: version 1's fields.
    let at = before.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let then = app
        .get(&format!("/api/v1/tickets/{a}?as_of={at}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(then["fields"]["category"], "mail");
    assert_eq!(then["fields"]["note"], "社内");
    assert_eq!(
        app.audit_entries(&d.tenant.admin_token, "template.migrated")
            .await
            .len(),
        1
    );

    // A ticket filed now is on version 2 already; a second run finds nothing on version 1.
    let c = ticket_v2(&app, &d.requester).await;
    let again = post("", mapping).await.json();
    assert_eq!(
        (again["tickets"].as_i64(), again["moved"].as_i64()),
        (Some(0), Some(0))
    );
    let fresh = app
        .get(&format!("/api/v1/tickets/{c}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(fresh["version"], 1);

    for (body, field) in [
        (json!({"from_version": 9}), "from_version"),
        (json!({"from_version": 2}), "to_version"),
        (
            json!({"from_version": 1, "states": {"nope": "new"}}),
            "states/nope",
        ),
        (
            json!({"from_version": 1, "fields": {"category": "nope"}}),
            "fields/category",
        ),
    ] {
        let refused = post("?dry_run=true", body).await;
        assert_eq!(
            refused.assert_problem(422, "/problems/validation")["errors"][0]["field"],
            field
        );
    }
    app.post_json(
        "/api/v1/templates/sla_desk/migrations",
        Some(&d.agent),
        &json!({"from_version": 1}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");
    app.post_json(
        "/api/v1/templates/nope/migrations",
        Some(&d.pm),
        &json!({"from_version": 1}),
    )
    .await
    .assert_problem(404, "/problems/not-found");
}

async fn ticket_v2(app: &TestApp, token: &str) -> String {
    app.create(
        "/api/v1/tickets",
        token,
        json!({"template": "sla_desk", "fields": {"title": "新版", "topic": "vpn"}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// With no time to work in the request (`migration_inline` 0), the run is the job's: 202 with
/// its `Location`, progress there, the job moves the tickets, the run is listed, and only
/// staff who manage templates see it.
#[actix_web::test]
async fn a_run_the_request_leaves_is_carried_on_by_the_job() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.jobs.tick = std::time::Duration::from_secs(3_600);
        c.access_token_ttl = std::time::Duration::from_secs(86_400);
        c.migration_inline = std::time::Duration::ZERO;
    })
    .await;
    let d = desk(&app, "migrate-job").await;
    let mut old = Vec::new();
    for _ in 0..3 {
        old.push(ticket(&app, &d.requester).await);
    }
    publish_v2(&app, &d.pm).await;
    app.clock.advance(TimeDelta::minutes(5));
    let started = app
        .post_json(
            "/api/v1/templates/sla_desk/migrations",
            Some(&d.pm),
            &json!({"from_version": 1, "fields": {"category": "topic"}}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    let location = started.header("location").unwrap().to_owned();
    let run = started.json();
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/api/v1/templates/sla_desk/migrations/{id}")
    );
    assert_eq!(run["status"], "running");
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["moved"], 0);
    assert_eq!(run["finished_at"], Value::Null);
    let progress = app.get(&location, Some(&d.pm)).await;
    assert_eq!(progress.status, StatusCode::OK, "{}", progress.text);
    assert_eq!(progress.json()["status"], "running");
    app.clock.advance(TimeDelta::minutes(1));
    crate::sla::run_jobs(&app).await;
    let done = app.get(&location, Some(&d.pm)).await.json();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        (done["tickets"].as_i64(), done["moved"].as_i64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        done["moves"],
        json!([{"from_state": "new", "to_state": "new", "count": 3}])
    );
    assert_eq!(done["fields_dropped"], json!(["note"]));
    assert!(done["finished_at"].is_string(), "{done}");
    for t in &old {
        let body = app
            .get(&format!("/api/v1/tickets/{t}"), Some(&d.agent))
            .await
            .json();
        assert_eq!(body["template_version"], 2, "{body}");
        assert_eq!(body["fields"]["topic"], "mail", "{body}");
    }
    let runs = app
        .get("/api/v1/templates/sla_desk/migrations", Some(&d.pm))
        .await;
    assert_eq!(runs.status, StatusCode::OK, "{}", runs.text);
    let runs = runs.json();
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    assert_eq!(runs["items"][0]["id"], id.as_str());
    assert_eq!(runs["next_cursor"], Value::Null);

    app.get(&location, Some(&d.agent))
        .await
        .assert_problem(403, "/problems/forbidden");
    let other = app.tenant("migrate-job-other").await;
    app.get(&location, Some(&other.admin_token))
        .await
        .assert_problem(404, "/problems/not-found");
    app.get(
        "/api/v1/templates/sla_desk/migrations/019ac0d2-4a00-7000-8000-000000000999",
        Some(&d.pm),
    )
    .await
    .assert_problem(404, "/problems/not-found");
}
