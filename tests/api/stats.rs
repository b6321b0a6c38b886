//! Statistics (#16 point 3) checked against a hand-computed fixture: three tickets over two
//! days in Tokyo time, with known stays, closings and SLA outcomes.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sla::{app, desk, file, fire};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[actix_web::test]
async fn template_statistics_match_a_hand_computed_fixture() {
    let app = app().await;
    let d = desk(&app, "stats").await;
    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "24h", "first_response_minutes": 90,
            "resolution_minutes": 180}),
    )
    .await;
    // Friday 1 May 2026, 09:00 JST.
    let t0 = at("2026-05-01T00:00:00Z");
    let h = |minutes: i64| t0 + TimeDelta::minutes(minutes);
    app.clock.set(t0);
    let a = file(&app, &d.requester, "p1").await;
    app.clock.set(h(30));
    let b = file(&app, &d.requester, "p2").await;
    app.clock.set(h(60));
    fire(&app, &d.agent, &a, "start").await;
    app.clock.set(h(120));
    fire(&app, &d.agent, &a, "resolve").await;
    app.clock.set(h(150));
    fire(&app, &d.agent, &b, "start").await;
    app.clock.set(h(180));
    fire(&app, &d.agent, &a, "close").await;
    // Saturday 2 May, 10:00 JST.
    app.clock.set(h(25 * 60));
    let _c = file(&app, &d.requester, "p2").await;
    app.clock.set(h(26 * 60));

    let reply = app
        .get(
            "/api/v1/stats/templates/sla_desk?from=2026-05-01&to=2026-05-02",
            Some(&d.agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let s = reply.json();
    assert_eq!(s["time_zone"], "Asia/Tokyo");
    assert_eq!(
        (s["total"].as_i64(), s["open"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        s["by_state"],
        json!([
            {"stage": "done", "state": "closed", "count": 1},
            {"stage": "open", "state": "new", "count": 1},
            {"stage": "open", "state": "working", "count": 1}
        ])
    );
    assert_eq!(
        s["daily"],
        json!([
            {"date": "2026-05-01", "created": 2, "closed": 1},
            {"date": "2026-05-02", "created": 1, "closed": 0}
        ])
    );
    // Stays that ended: A new 1 h, working 1 h, resolved 1 h; B new 2 h.
    assert_eq!(
        s["time_in_state"],
        json!([
            {"state": "new", "count": 2, "p50_seconds": 3600, "p90_seconds": 7200, "max_seconds": 7200},
            {"state": "resolved", "count": 1, "p50_seconds": 3600, "p90_seconds": 3600, "max_seconds": 3600},
            {"state": "working", "count": 1, "p50_seconds": 3600, "p90_seconds": 3600, "max_seconds": 3600}
        ])
    );
    // Open now: C new for 1 h, B working for 23.5 h.
    assert_eq!(
        s["ageing"],
        json!([
            {"state": "new", "count": 1, "p50_seconds": 3600, "p90_seconds": 3600, "max_seconds": 3600},
            {"state": "working", "count": 1, "p50_seconds": 84600, "p90_seconds": 84600, "max_seconds": 84600}
        ])
    );
    assert_eq!(
        s["cumulative_flow"],
        json!([
            {"date": "2026-05-01", "states": {"closed": 1, "working": 1}},
            {"date": "2026-05-02", "states": {"closed": 1, "new": 1, "working": 1}}
        ])
    );
    // First response: A in 1 h (met), B in 2.5 h (late); resolution: A in 2 h (met).
    assert_eq!(
        s["sla"],
        json!([
            {"target": "first_response", "met": 1, "breached": 1, "rate": 0.5},
            {"target": "resolution", "met": 1, "breached": 0, "rate": 1.0}
        ])
    );

    // The diagram draws the same figures on its states.
    let picture = app
        .get(
            "/api/v1/templates/sla_desk/diagram?format=svg&overlay=true",
            Some(&d.agent),
        )
        .await;
    assert_eq!(picture.status, StatusCode::OK, "{}", picture.text);
    assert_eq!(picture.header("content-type"), Some("image/svg+xml"));
    assert!(picture.text.contains("対応中"), "{}", picture.text);
    assert!(picture.text.contains("1 · p90 1.0h"), "{}", picture.text);
    let plain = app
        .get(
            "/api/v1/templates/sla_desk/diagram?format=svg&lang=en",
            Some(&d.agent),
        )
        .await;
    assert!(plain.text.contains("Working") && !plain.text.contains("p90"));

    let p1 = app
        .get(
            "/api/v1/stats/templates/sla_desk?from=2026-05-01&to=2026-05-02&priority=p1",
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(p1["total"], 1);
    assert_eq!(
        p1["by_state"],
        json!([{"stage": "done", "state": "closed", "count": 1}])
    );
    // A range that ended before now: the flow walks back over the later changes (C filed on
    // 2 May), and only the stays that ended on 1 May count.
    let first_day = app
        .get(
            "/api/v1/stats/templates/sla_desk?from=2026-05-01&to=2026-05-01",
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(
        first_day["cumulative_flow"],
        json!([{"date": "2026-05-01", "states": {"closed": 1, "working": 1}}])
    );
    assert_eq!(
        first_day["daily"],
        json!([{"date": "2026-05-01", "created": 2, "closed": 1}])
    );
    assert_eq!(first_day["time_in_state"], s["time_in_state"]);
    assert_eq!(first_day["total"], 3, "counts are of now");
    // Before anything was filed: nothing anywhere.
    let before = app
        .get(
            "/api/v1/stats/templates/sla_desk?from=2026-04-29&to=2026-04-30",
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(
        before["cumulative_flow"],
        json!([{"date": "2026-04-29", "states": {}}, {"date": "2026-04-30", "states": {}}])
    );
    assert_eq!(before["time_in_state"], json!([]));
    // Default range: the 30 days up to today.
    let default = app
        .get("/api/v1/stats/templates/sla_desk", Some(&d.agent))
        .await
        .json();
    assert_eq!(default["to"], "2026-05-02");
    assert_eq!(default["from"], "2026-04-03");
    assert_eq!(default["daily"].as_array().unwrap().len(), 30);

    let backwards = app
        .get(
            "/api/v1/stats/templates/sla_desk?from=2026-05-02&to=2026-05-01",
            Some(&d.agent),
        )
        .await;
    backwards.assert_problem(422, "/problems/validation");
    let long = app
        .get(
            "/api/v1/stats/templates/sla_desk?from=2025-01-01&to=2026-05-01",
            Some(&d.agent),
        )
        .await;
    long.assert_problem(422, "/problems/validation");
    app.get("/api/v1/stats/templates/nope", Some(&d.agent))
        .await
        .assert_problem(404, "/problems/not-found");
    app.get("/api/v1/stats/templates/sla_desk", Some(&d.requester))
        .await
        .assert_problem(403, "/problems/forbidden");
    let other = desk(&app, "stats-other").await;
    let theirs: Value = app
        .get("/api/v1/stats/templates/sla_desk", Some(&other.agent))
        .await
        .json();
    assert_eq!(theirs["total"], 0);
}

/// The open tickets' ages are exact nearest-rank percentiles, whichever end of the queue the
/// rank is nearer (ten tickets filed a minute apart: ages 1 to 10 minutes), filtered or not.
#[actix_web::test]
async fn ageing_percentiles_are_exact_ranks_from_either_end() {
    let app = app().await;
    let d = desk(&app, "ageing").await;
    let t0 = at("2026-05-01T00:00:00Z");
    for i in 0..10 {
        app.clock.set(t0 + TimeDelta::minutes(i));
        file(&app, &d.requester, if i < 4 { "p1" } else { "p2" }).await;
    }
    app.clock.set(t0 + TimeDelta::minutes(10));
    let s = app
        .get("/api/v1/stats/templates/sla_desk", Some(&d.agent))
        .await
        .json();
    assert_eq!(
        s["ageing"],
        json!([{"state": "new", "count": 10, "p50_seconds": 300, "p90_seconds": 540,
            "max_seconds": 600}])
    );
    assert_eq!(
        s["daily"].as_array().unwrap().last().unwrap()["created"],
        10
    );
    // p1: the first four filed (ages 10, 9, 8, 7 minutes).
    let p1 = app
        .get(
            "/api/v1/stats/templates/sla_desk?priority=p1",
            Some(&d.agent),
        )
        .await
        .json();
    assert_eq!(
        p1["ageing"],
        json!([{"state": "new", "count": 4, "p50_seconds": 480, "p90_seconds": 600,
            "max_seconds": 600}])
    );
    assert_eq!(
        p1["cumulative_flow"].as_array().unwrap().last().unwrap()["states"],
        json!({"new": 4})
    );
}

/// Versions that disagree: version 2 moves `working` to the `done` stage and makes `resolved`
/// terminal (no way out, no `closed`). Tickets keep the stage and the terminal states of their own version:
/// the counts group the stored stages, and only a move into a state terminal in the ticket's
/// version closes it.
#[actix_web::test]
async fn versions_that_disagree_are_counted_by_each_tickets_own_version() {
    let app = app().await;
    let d = desk(&app, "stats-versions").await;
    let t0 = at("2026-05-01T00:00:00Z");
    app.clock.set(t0);
    let a = file(&app, &d.requester, "p1").await;
    fire(&app, &d.agent, &a, "start").await;
    fire(&app, &d.agent, &a, "resolve").await;
    let c = file(&app, &d.requester, "p2").await;
    fire(&app, &d.agent, &c, "start").await;

    let draft = app
        .post_json(
            "/api/v1/templates/sla_desk/versions",
            Some(&d.pm),
            &json!({}),
        )
        .await;
    assert_eq!(draft.status, StatusCode::CREATED, "{}", draft.text);
    let mut v2 = crate::sla::sla_desk();
    let stages = v2["stages"].as_array_mut().unwrap();
    let working = stages[0]["states"].as_array_mut().unwrap().remove(1);
    stages[1]["states"]
        .as_array_mut()
        .unwrap()
        .insert(0, working);
    stages[1]["states"][1]["terminal"] = json!(true);
    stages[1]["states"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["key"] != "closed");
    v2["transitions"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["from"] != json!(["resolved"]));
    let put = app
        .send(
            app.client
                .put(app.url("/api/v1/templates/sla_desk/versions/2"))
                .bearer_auth(&d.pm)
                .json(&json!({"definition": v2})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let published = app
        .post_json(
            "/api/v1/templates/sla_desk/versions/2/publish",
            Some(&d.pm),
            &json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);

    app.clock.set(t0 + TimeDelta::hours(1));
    let b = file(&app, &d.requester, "p1").await;
    fire(&app, &d.agent, &b, "start").await;
    fire(&app, &d.agent, &b, "resolve").await;
    app.clock.set(t0 + TimeDelta::hours(2));

    for filter in ["", "&priority=p1"] {
        let s = app
            .get(
                &format!("/api/v1/stats/templates/sla_desk?from=2026-05-01&to=2026-05-01{filter}"),
                Some(&d.agent),
            )
            .await
            .json();
        let p1 = !filter.is_empty();
        // A (v1): resolved, open. B (v2): resolved, closed. C (v1, p2): working in `open`.
        let mut expected = vec![json!({"stage": "done", "state": "resolved", "count": 2})];
        if !p1 {
            expected.push(json!({"stage": "open", "state": "working", "count": 1}));
        }
        assert_eq!(s["by_state"], json!(expected), "{filter}");
        assert_eq!(s["open"], if p1 { 1 } else { 2 }, "{filter}");
        assert_eq!(
            s["daily"],
            json!([{"date": "2026-05-01", "created": if p1 { 2 } else { 3 }, "closed": 1}]),
            "{filter}: only B's move closed a ticket"
        );
    }
}
