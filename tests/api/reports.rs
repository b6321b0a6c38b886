//! The monthly report (#16 point 4) against a hand-computed fixture: a month in Tokyo time,
//! made by the job once the month has ended and stored (a later read returns the same
//! document), JSON and CSV, the current month on demand, and who may read which tenant's.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sla::{app, desk, fire, run_jobs};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

async fn ticket(
    app: &crate::helpers::TestApp,
    token: &str,
    priority: &str,
    category: &str,
) -> String {
    let t = app
        .create(
            "/api/v1/tickets",
            token,
            json!({"template": "sla_desk", "fields": {"title": "問い合わせ", "priority": priority, "category": category}}),
        )
        .await;
    t["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn the_monthly_report_is_made_once_the_month_ends_and_never_changes() {
    let app = app().await;
    let d = desk(&app, "report").await;
    app.create(
        "/api/v1/sla-policies",
        &d.pm,
        json!({"template": "sla_desk", "name": "24h", "resolution_minutes": 180}),
    )
    .await;
    // 30 April 23:00 JST: April's.
    app.clock.set(at("2026-04-30T14:00:00Z"));
    ticket(&app, &d.requester, "p2", "mail").await;
    // 1 May 01:00 JST: filed, started, resolved and closed in May (3 hours).
    app.clock.set(at("2026-04-30T16:00:00Z"));
    let x = ticket(&app, &d.requester, "p1", "mail").await;
    for (time, transition) in [("17", "start"), ("18", "resolve"), ("19", "close")] {
        app.clock.set(at(&format!("2026-04-30T{time}:00:00Z")));
        fire(&app, &d.agent, &x, transition).await;
    }
    app.clock.set(at("2026-05-10T00:00:00Z"));
    ticket(&app, &d.requester, "p2", "mail").await;
    app.clock.set(at("2026-05-20T00:00:00Z"));
    let z = ticket(&app, &d.requester, "p2", "vpn").await;
    app.clock.set(at("2026-05-20T01:00:00Z"));
    fire(&app, &d.agent, &z, "start").await;

    // 1 June 09:00 JST: the job stores May's report.
    app.clock.set(at("2026-06-01T00:00:00Z"));
    run_jobs(&app).await;
    app.clock.set(at("2026-06-01T01:00:00Z"));
    let admin = &d.tenant.admin_token;
    let reply = app
        .get("/api/v1/reports/monthly?month=2026-05", Some(admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let report = reply.json();
    assert_eq!(report["month"], "2026-05");
    assert_eq!(report["time_zone"], "Asia/Tokyo");
    assert_eq!(report["final"], true);
    assert_eq!(report["generated_at"], "2026-06-01T00:00:00Z");
    assert_eq!(report["tenant"]["slug"], "report");
    assert_eq!(report["usage"]["tickets"], 3);
    assert_eq!(report["usage"]["processes"], 1);
    let i = &report["inquiries"];
    assert_eq!(
        (
            i["opened"].as_i64(),
            i["closed"].as_i64(),
            i["backlog"].as_i64()
        ),
        (Some(3), Some(1), Some(3))
    );
    assert_eq!(i["resolution_mean_seconds"], 10_800);
    assert_eq!(i["resolution_p90_seconds"], 10_800);
    assert_eq!(
        i["by_template"],
        json!([{"key": "sla_desk", "opened": 3, "closed": 1, "backlog": 3}])
    );
    assert_eq!(
        i["by_priority"],
        json!([
            {"key": "p1", "opened": 1, "closed": 1, "backlog": 0},
            {"key": "p2", "opened": 2, "closed": 0, "backlog": 3}
        ])
    );
    assert_eq!(
        i["by_channel"],
        json!([{"key": "api", "opened": 3, "closed": 1, "backlog": 3}])
    );
    assert_eq!(
        i["backlog_by_state"],
        json!([
            {"template": "sla_desk", "state": "new", "count": 2},
            {"template": "sla_desk", "state": "working", "count": 1}
        ])
    );
    assert_eq!(
        i["top_categories"],
        json!([{"value": "mail", "opened": 2}, {"value": "vpn", "opened": 1}])
    );
    assert_eq!(
        i["sla"],
        json!([
            {"target": "first_response", "met": 0, "breached": 0, "rate": null},
            {"target": "resolution", "met": 1, "breached": 0, "rate": 1.0}
        ])
    );

    // The cumulative flow, per local day: X filed and closed on 1 May, Y filed on the 10th,
    // Z on the 20th; the April ticket is open all month.
    let daily = i["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 31);
    let day = |n: usize, opened: i64, closed: i64, backlog: i64| json!({"date": format!("2026-05-{n:02}"), "opened": opened, "closed": closed, "backlog": backlog});
    assert_eq!(daily[0], day(1, 1, 1, 1));
    assert_eq!(daily[8], day(9, 0, 0, 1));
    assert_eq!(daily[9], day(10, 1, 0, 2));
    assert_eq!(daily[19], day(20, 1, 0, 3));
    assert_eq!(daily[30], day(31, 0, 0, 3));
    let total = |k: &str| daily.iter().map(|d| d[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!((total("opened"), total("closed")), (3, 1));

    // Later changes do not touch May's stored report.
    fire(&app, &d.agent, &z, "resolve").await;
    ticket(&app, &d.requester, "p1", "vpn").await;
    let again = app
        .get("/api/v1/reports/monthly?month=2026-05", Some(admin))
        .await
        .json();
    assert_eq!(again, report);

    let csv = app
        .get(
            "/api/v1/reports/monthly?month=2026-05&format=csv&bom=true",
            Some(admin),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        csv.text
            .starts_with("\u{feff}month,section,template,key,metric,value\n"),
        "{}",
        csv.text
    );
    for line in [
        "2026-05,inquiries,,,opened,3",
        "2026-05,template,sla_desk,,backlog,3",
        "2026-05,priority,,p1,closed,1",
        "2026-05,backlog_state,sla_desk,working,backlog,1",
        "2026-05,category,,mail,opened,2",
        "2026-05,sla,,resolution,rate,1.0000",
        "2026-05,day,,2026-05-01,closed,1",
        "2026-05,day,,2026-05-20,backlog,3",
    ] {
        assert!(
            csv.text.lines().any(|l| l == line),
            "{line} in {}",
            csv.text
        );
    }

    // The current month on demand; a future or malformed month is refused.
    let june = app
        .get("/api/v1/reports/monthly?month=2026-06", Some(admin))
        .await
        .json();
    assert_eq!(june["final"], false);
    assert_eq!(june["inquiries"]["opened"], 1);
    // 1 June has begun (10:00 JST): the April ticket, Y, Z (resolved, not closed) and the new
    // one are open now.
    assert_eq!(
        june["inquiries"]["daily"],
        json!([{"date": "2026-06-01", "opened": 1, "closed": 0, "backlog": 4}])
    );

    // The page: self-contained HTML with the three charts as inline SVG, its own policy.
    let page = app
        .get(
            "/api/v1/reports/monthly?month=2026-05&format=html",
            Some(admin),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(
        page.header("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    assert_eq!(
        page.header("content-security-policy").unwrap(),
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    );
    let html = &page.text;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    for id in ["cumulative-flow", "state-distribution", "sla-compliance"] {
        let at = html.find(&format!("<figure id=\"{id}\">")).unwrap();
        assert!(
            html[at..].starts_with(&format!("<figure id=\"{id}\"><svg")),
            "{id}"
        );
    }
    assert!(html.contains("sla_desk / working"), "{html}");
    assert!(html.contains("resolution 100.0 %"), "{html}");
    for outside in ["<script", "src=", "href=", "url("] {
        assert!(!html.contains(outside), "{outside} in the page");
    }
    // A state or tenant name cannot inject markup.
    assert!(!html.contains("<b>"));
    for bad in ["2026-07", "2026-5", "May"] {
        app.get(&format!("/api/v1/reports/monthly?month={bad}"), Some(admin))
            .await
            .assert_problem(422, "/problems/validation");
    }

    // The operator reads any tenant's, naming it; agents read none; another tenant's admin
    // cannot point at this one.
    let operator = app.operator_token().await;
    let theirs = app
        .get(
            &format!(
                "/api/v1/reports/monthly?month=2026-05&tenant={}",
                d.tenant.id
            ),
            Some(&operator),
        )
        .await
        .json();
    assert_eq!(theirs, report);
    app.get("/api/v1/reports/monthly?month=2026-05", Some(&operator))
        .await
        .assert_problem(422, "/problems/validation");
    app.get(
        "/api/v1/reports/monthly?month=2026-05&tenant=019ac0d2-4a00-7000-8000-000000000999",
        Some(&operator),
    )
    .await
    .assert_problem(404, "/problems/not-found");
    app.get("/api/v1/reports/monthly?month=2026-05", Some(&d.agent))
        .await
        .assert_problem(403, "/problems/forbidden");
    let other = app.tenant("report-other").await;
    let refused = app
        .get(
            &format!(
                "/api/v1/reports/monthly?month=2026-05&tenant={}",
                d.tenant.id
            ),
            Some(&other.admin_token),
        )
        .await;
    refused.assert_problem(404, "/problems/not-found");
    let own: Value = app
        .get(
            "/api/v1/reports/monthly?month=2026-05",
            Some(&other.admin_token),
        )
        .await
        .json();
    assert_eq!(own["inquiries"]["opened"], 0);
}
