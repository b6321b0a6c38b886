//! A version's states, transitions and fields as resources: read on any version, changed one
//! at a time on a draft, each change linted; removing what is still used is 409.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::tickets::desk_tenant;

const V1: &str = "/api/v1/templates/desk/versions/1";
const V2: &str = "/api/v1/templates/desk/versions/2";

fn label(ja: &str, en: &str) -> Value {
    json!({"ja": ja, "en": en})
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> crate::helpers::Reply {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    app.send(request).await
}

#[actix_web::test]
async fn a_drafts_items_are_edited_one_at_a_time() {
    let app = crate::helpers::spawn_app().await;
    let (tenant, pm) = desk_tenant(&app, "acme").await;
    // Every version reads; version 1 is published and cannot change.
    let states = app.get(&format!("{V1}/states"), Some(&pm)).await;
    assert_eq!(states.status, StatusCode::OK, "{}", states.text);
    let items = states.json()["items"].clone();
    assert_eq!(items[0]["key"], "new");
    assert_eq!(items[0]["stage"], "open");
    assert_eq!(items.as_array().unwrap().len(), 5);
    let hold = json!({"key": "on_hold", "label": label("保留", "On hold"), "stage": "open"});
    send(
        &app,
        Method::POST,
        &format!("{V1}/states"),
        &pm,
        None,
        Some(hold.clone()),
    )
    .await
    .assert_problem(409, "/problems/version-published");
    app.create("/api/v1/templates/desk/versions", &pm, json!({}))
        .await;

    // Add a state: 201 with its location, the new ETag and the draft's lint result.
    let added = send(
        &app,
        Method::POST,
        &format!("{V2}/states"),
        &pm,
        None,
        Some(hold.clone()),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(
        added.header("location"),
        Some(format!("{V2}/states/on_hold").as_str())
    );
    let etag = added.header("etag").unwrap().to_owned();
    let body = added.json();
    assert_eq!(body["item"], hold);
    assert!(
        body["lint"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "unreachable_state"),
        "{body}"
    );
    send(
        &app,
        Method::POST,
        &format!("{V2}/states"),
        &pm,
        None,
        Some(hold.clone()),
    )
    .await
    .assert_problem(409, "/problems/duplicate");
    let lost = json!({"key": "lost", "label": label("迷子", "Lost"), "stage": "nowhere"});
    let refused = send(
        &app,
        Method::POST,
        &format!("{V2}/states"),
        &pm,
        None,
        Some(lost),
    )
    .await;
    assert_eq!(
        refused.assert_problem(422, "/problems/validation")["errors"][0]["field"],
        "stage"
    );

    // Change it under If-Match: a stale tag is 412, the current one succeeds.
    let relabel = json!({"label": label("保留中", "On hold")});
    send(
        &app,
        Method::PATCH,
        &format!("{V2}/states/on_hold"),
        &pm,
        Some("\"1\""),
        Some(relabel.clone()),
    )
    .await
    .assert_problem(412, "/problems/precondition-failed");
    let changed = send(
        &app,
        Method::PATCH,
        &format!("{V2}/states/on_hold"),
        &pm,
        Some(&etag),
        Some(relabel),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["item"]["label"]["ja"], "保留中");
    send(
        &app,
        Method::PATCH,
        &format!("{V2}/states/on_hold"),
        &pm,
        None,
        Some(json!({"key": "held"})),
    )
    .await
    .assert_problem(422, "/problems/validation");

    // A transition into it makes it reachable; removing the state now is 409 naming the place.
    let into_hold = json!({"key": "hold", "label": label("保留する", "Hold"), "from": ["in_progress"],
        "to": "on_hold", "allowed": {"roles": ["agent"]}});
    let out_of_hold = json!({"key": "resume", "label": label("再開", "Resume"), "from": ["on_hold"],
        "to": "in_progress", "allowed": {"roles": ["agent"]}});
    for transition in [into_hold, out_of_hold] {
        let reply = send(
            &app,
            Method::POST,
            &format!("{V2}/transitions"),
            &pm,
            None,
            Some(transition),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    let in_use = send(
        &app,
        Method::DELETE,
        &format!("{V2}/states/on_hold"),
        &pm,
        None,
        None,
    )
    .await;
    let problem = in_use.assert_problem(409, "/problems/definition-item-in-use");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("/transitions/6/to") && detail.contains("/transitions/7/from/0"),
        "{detail}"
    );
    let listed = app
        .get(&format!("{V2}/transitions"), Some(&pm))
        .await
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 8);
    let version = app.get(V2, Some(&pm)).await.json();
    assert_eq!(version["lint"]["valid"], true, "{}", version["lint"]);

    // Fields: add, patch, read; a field a guard uses cannot go.
    let urgency = json!({"key": "urgency", "type": "integer", "label": label("緊急度", "Urgency")});
    let reply = send(
        &app,
        Method::POST,
        &format!("{V2}/fields"),
        &pm,
        None,
        Some(urgency),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let reply = send(
        &app,
        Method::PATCH,
        &format!("{V2}/fields/urgency"),
        &pm,
        None,
        Some(json!({"min": 1, "max": 5})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let field = app.get(&format!("{V2}/fields/urgency"), Some(&pm)).await;
    assert_eq!(field.status, StatusCode::OK);
    assert!(field.header("etag").is_some());
    assert_eq!(field.json()["max"], 5);
    let guarded = send(
        &app,
        Method::DELETE,
        &format!("{V2}/fields/impact"),
        &pm,
        None,
        None,
    )
    .await;
    let detail = guarded.assert_problem(409, "/problems/definition-item-in-use")["detail"].clone();
    assert!(
        detail.as_str().unwrap().contains("/transitions/1/guard"),
        "{detail}"
    );
    let removed = send(
        &app,
        Method::DELETE,
        &format!("{V2}/fields/urgency"),
        &pm,
        None,
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(removed.json()["item"], Value::Null);
    app.get(&format!("{V2}/fields/urgency"), Some(&pm))
        .await
        .assert_problem(404, "/problems/not-found");

    // Remove the transitions, then the state goes; the draft publishes.
    for key in ["resume", "hold"] {
        let reply = send(
            &app,
            Method::DELETE,
            &format!("{V2}/transitions/{key}"),
            &pm,
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let reply = send(
        &app,
        Method::DELETE,
        &format!("{V2}/states/on_hold"),
        &pm,
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["lint"]["valid"], true);
    let published = app
        .post_json(&format!("{V2}/publish"), Some(&pm), &json!({}))
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);

    // Agents read items but cannot change them; another tenant sees nothing.
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    assert_eq!(
        app.get(&format!("{V1}/fields"), Some(&agent)).await.status,
        StatusCode::OK
    );
    send(
        &app,
        Method::DELETE,
        &format!("{V2}/fields/note"),
        &agent,
        None,
        None,
    )
    .await
    .assert_problem(403, "/problems/forbidden");
    let other = app.tenant("other").await;
    app.get(&format!("{V1}/states"), Some(&other.admin_token))
        .await
        .assert_problem(404, "/problems/not-found");
    app.get(&format!("{V1}/states/new"), Some(&other.admin_token))
        .await
        .assert_problem(404, "/problems/not-found");
}
