//! Tickets as they were (#16 point 6): `GET /tickets/{id}?as_of=` rebuilt from the history
//! (fields, state, assignee, version, SLA clocks), with today's visibility, and
//! `GET /tickets/{id}/history?format=timeline`. Time moves by the test clock.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::sla::{app, desk, file, fire};

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

async fn as_of(
    app: &TestApp,
    token: &str,
    ticket: &str,
    at: DateTime<Utc>,
) -> crate::helpers::Reply {
    let at = stamp(at).replace('+', "%2B");
    app.get(&format!("/api/v1/tickets/{ticket}?as_of={at}"), Some(token))
        .await
}

#[actix_web::test]
async fn a_ticket_reads_as_it_was_at_any_instant_with_todays_visibility() {
    let app = app().await;
    let d = desk(&app, "asof").await;
    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "24h", "resolution_minutes": 600}),
    )
    .await;
    let agent_id = app.get("/api/v1/me", Some(&d.agent)).await.json()["id"].clone();
    let t0 = app.clock_now();
    let ticket = file(&app, &d.requester, "p2").await;
    app.clock.set(t0 + TimeDelta::hours(1));
    let patched = app
        .patch_json(
            &format!("/api/v1/tickets/{ticket}"),
            Some(&d.agent),
            &json!({"fields": {"priority": "p1", "note": "VIP"}, "assignee": agent_id}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    app.clock.set(t0 + TimeDelta::hours(2));
    fire(&app, &d.agent, &ticket, "start").await;
    app.clock.set(t0 + TimeDelta::hours(3));
    fire(&app, &d.agent, &ticket, "hold").await;
    app.clock.set(t0 + TimeDelta::hours(5));

    let first = as_of(&app, &d.agent, &ticket, t0 + TimeDelta::minutes(30)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.header("etag"), Some("\"1\""));
    let first = first.json();
    assert_eq!(first["state"], "new");
    assert_eq!(first["stage"], "open");
    assert_eq!(first["version"], 1);
    assert_eq!(first["fields"]["priority"], "p2");
    assert!(first["fields"].get("note").is_none());
    assert_eq!(first["assignee"], Value::Null);
    assert_eq!(first["updated_at"], stamp(t0));
    assert_eq!(first["sla"][0]["elapsed_seconds"], 1_800);
    assert_eq!(first["sla"][0]["status"], "running");

    let edited = as_of(&app, &d.agent, &ticket, t0 + TimeDelta::minutes(90))
        .await
        .json();
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["fields"]["priority"], "p1");
    assert_eq!(edited["fields"]["note"], "VIP");
    assert_eq!(edited["assignee"], agent_id);
    assert_eq!(edited["state"], "new");

    let working = as_of(&app, &d.agent, &ticket, t0 + TimeDelta::minutes(150))
        .await
        .json();
    assert_eq!(working["state"], "working");
    assert_eq!(working["version"], 3);
    assert_eq!(working["sla"][0]["elapsed_seconds"], 9_000);

    // Today it is on hold: the clock stopped counting at 3 hours.
    let now = app
        .get(&format!("/api/v1/tickets/{ticket}"), Some(&d.agent))
        .await
        .json();
    assert_eq!(now["state"], "waiting");
    assert_eq!(now["sla"][0]["elapsed_seconds"], 10_800);
    assert_eq!(now["sla"][0]["status"], "paused");
    // A future instant reads the ticket as it is.
    let later = as_of(&app, &d.agent, &ticket, t0 + TimeDelta::days(30))
        .await
        .json();
    assert_eq!(later["version"], now["version"]);
    assert_eq!(later["state"], "waiting");

    // The requester sees the past without the internal field, and no clocks.
    let theirs = as_of(&app, &d.requester, &ticket, t0 + TimeDelta::minutes(90))
        .await
        .json();
    assert_eq!(theirs["fields"]["priority"], "p1");
    assert!(theirs["fields"].get("note").is_none(), "{theirs}");
    assert!(theirs.get("sla").is_none());

    let before = as_of(&app, &d.agent, &ticket, t0 - TimeDelta::minutes(1)).await;
    let body = before.assert_problem(422, "/problems/validation");
    assert_eq!(body["errors"][0]["field"], "as_of");
    let malformed = app
        .get(
            &format!("/api/v1/tickets/{ticket}?as_of=yesterday"),
            Some(&d.agent),
        )
        .await;
    assert!(malformed.status.is_client_error(), "{}", malformed.text);

    // Another tenant's agent: the same 404 as a missing ticket.
    let other = desk(&app, "asof-other").await;
    let refused = as_of(&app, &other.agent, &ticket, t0 + TimeDelta::minutes(90)).await;
    refused.assert_problem(404, "/problems/not-found");
}

#[actix_web::test]
async fn the_timeline_lists_each_stay_with_its_times() {
    let app = app().await;
    let d = desk(&app, "timeline").await;
    let t0 = app.clock_now();
    let ticket = file(&app, &d.requester, "p2").await;
    app.clock.set(t0 + TimeDelta::hours(2));
    fire(&app, &d.agent, &ticket, "start").await;
    app.clock.set(t0 + TimeDelta::hours(3));
    fire(&app, &d.agent, &ticket, "hold").await;
    app.clock.set(t0 + TimeDelta::hours(7));
    let reply = app
        .get(
            &format!("/api/v1/tickets/{ticket}/history?format=timeline"),
            Some(&d.requester),
        )
        .await;
    // `history?format=timeline` is a redirect to the timeline (followed here).
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let direct = app
        .get(
            &format!("/api/v1/tickets/{ticket}/timeline"),
            Some(&d.requester),
        )
        .await;
    assert_eq!(direct.json(), reply.json());
    let timeline = reply.json();
    assert_eq!(timeline["ticket_id"], ticket.as_str());
    let items = timeline["items"].as_array().unwrap();
    let summary: Vec<(&str, Option<&str>, i64)> = items
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap(),
                s["transition"].as_str(),
                s["duration_seconds"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("new", None, 7_200),
            ("working", Some("start"), 3_600),
            ("waiting", Some("hold"), 14_400)
        ]
    );
    assert_eq!(items[0]["entered_at"], stamp(t0));
    assert_eq!(items[0]["left_at"], stamp(t0 + TimeDelta::hours(2)));
    assert_eq!(items[2]["left_at"], Value::Null);
    assert_eq!(items[1]["actor"]["name"], "agent");
    assert_eq!(items[1]["stage"], "open");
    // The default is still the paged entries.
    let entries = app
        .get(&format!("/api/v1/tickets/{ticket}/history"), Some(&d.agent))
        .await
        .json();
    assert_eq!(entries["items"].as_array().unwrap().len(), 3);
    assert!(entries.get("next_cursor").is_some());
    let bad = app
        .get(
            &format!("/api/v1/tickets/{ticket}/history?format=gantt"),
            Some(&d.agent),
        )
        .await;
    assert!(bad.status.is_client_error(), "{}", bad.text);
}
