//! The monthly report as a self-contained HTML page (`format=html`): the figures as tables,
//! and three charts drawn here as inline SVG (plotters) — the backlog by state, the
//! cumulative flow of the month, SLA compliance. No script, no outside resource: the page
//! carries its own content security policy, so it stays self-contained when saved and
//! opened from disk. docs/reports.md.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::{Flow, MonthlyReport};
use crate::service::error::ServiceError;

/// The page's own policy: inline styles (its stylesheet, the charts' attributes), nothing
/// else — no script, image, font or connection.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

const STYLE: &str = "body{font-family:system-ui,'Noto Sans CJK JP','Hiragino Sans',sans-serif;\
margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1f2328}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}\
.meta{color:#59636e;margin-top:0}table{border-collapse:collapse;margin:.5rem 0}\
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1rem 0}figcaption{color:#59636e;font-size:.9rem}svg{max-width:100%;height:auto}\
.charts{display:grid;gap:1rem}.empty{color:#59636e;font-style:italic}";

const WIDTH: u32 = 760;
const BLUE: RGBColor = RGBColor(9, 105, 218);
const GREEN: RGBColor = RGBColor(26, 127, 55);
const RED: RGBColor = RGBColor(207, 34, 46);
const GREY: RGBColor = RGBColor(140, 149, 159);

fn chart_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("drawing a report chart: {e}"))
}

/// The page.
pub fn render(report: &MonthlyReport) -> Result<String, ServiceError> {
    let r = report;
    let i = &r.inquiries;
    let state = state_chart(r)?;
    let flow = flow_chart(r)?;
    let sla = sla_chart(r)?;
    let status = if r.is_final {
        "final: this month has ended and the report is stored as it is"
    } else {
        "provisional: the month has not ended"
    };
    let seconds = |s: Option<i64>| s.map_or_else(|| "–".to_owned(), duration);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CONTENT_SECURITY_POLICY);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Monthly report " (r.month) " — " (r.tenant.name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Monthly report " (r.month) " — " (r.tenant.name) }
                    p.meta {
                        "Tenant " (r.tenant.slug) " · time zone " (r.time_zone)
                        " · generated " (r.generated_at.format("%Y-%m-%d %H:%M UTC")) " · " (status)
                    }
                }
                section id="usage" {
                    h2 { "Usage" }
                    table {
                        tbody {
                            tr { th { "Active IDs" } td.n { (r.usage.active_ids) } }
                            tr { th { "Processes (published templates)" } td.n { (r.usage.processes) } }
                            tr { th { "API calls" } td.n { (r.usage.api_calls) } }
                            tr { th { "Tickets filed" } td.n { (r.usage.tickets) } }
                            tr { th { "Stored attachments" } td.n { (bytes(r.usage.stored_bytes)) } }
                        }
                    }
                }
                section id="inquiries" {
                    h2 { "Inquiries" }
                    table {
                        tbody {
                            tr { th { "Opened" } td.n { (i.opened) } }
                            tr { th { "Closed" } td.n { (i.closed) } }
                            tr { th { "Open at the month's end" } td.n { (i.backlog) } }
                            tr { th { "Mean resolution time" } td.n { (seconds(i.resolution_mean_seconds)) } }
                            tr { th { "p90 resolution time" } td.n { (seconds(i.resolution_p90_seconds)) } }
                        }
                    }
                    div.charts {
                        (figure("cumulative-flow", &flow,
                            "Cumulative flow: tickets filed and closed since the month began, and the tickets open at each day's end."))
                        (figure("state-distribution", &state,
                            "Open tickets at the month's end, by template and state."))
                        (figure("sla-compliance", &sla,
                            "SLA compliance: clocks that stopped in the month, met and breached, per target."))
                    }
                    (flows("By template", &i.by_template))
                    (flows("By priority", &i.by_priority))
                    (flows("By channel", &i.by_channel))
                    h3 { "Top categories" }
                    @if i.top_categories.is_empty() {
                        p.empty { "No ticket filed in the month has a category." }
                    } @else {
                        table {
                            thead { tr { th { "Category" } th { "Opened" } } }
                            tbody {
                                @for c in &i.top_categories {
                                    tr {
                                        td { (c.value.as_str().map_or_else(|| c.value.to_string(), str::to_owned)) }
                                        td.n { (c.opened) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page.into_string())
}

fn figure(id: &str, svg: &Option<String>, caption: &str) -> Markup {
    html! {
        figure id=(id) {
            @match svg {
                Some(svg) => (PreEscaped(svg)),
                None => p.empty { "Nothing to draw for this month." },
            }
            figcaption { (caption) }
        }
    }
}

fn flows(title: &str, flows: &[Flow]) -> Markup {
    html! {
        h3 { (title) }
        table {
            thead { tr { th { "" } th { "Opened" } th { "Closed" } th { "Open at the end" } } }
            tbody {
                @for f in flows {
                    tr { th { (f.key) } td.n { (f.opened) } td.n { (f.closed) } td.n { (f.backlog) } }
                }
            }
        }
    }
}

/// Seconds as days, hours and minutes.
fn duration(seconds: i64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
    );
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[expect(clippy::cast_precision_loss, reason = "a display figure")]
fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Horizontal bars, one per label; `None` without bars.
fn bar_chart(
    labels: &[String],
    bars: &[Vec<(usize, RGBColor)>],
    x_max: u32,
    x_desc: &str,
) -> Result<Option<String>, ServiceError> {
    if labels.is_empty() {
        return Ok(None);
    }
    let rows = count(labels.len());
    let height = 60 + 28 * rows;
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_width = count(longest).saturating_mul(8).clamp(60, 320);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0..x_max.max(1), (0..rows).into_segmented())
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .y_labels(labels.len())
            .y_label_formatter(&|v| match v {
                // The first label on top.
                SegmentValue::CenterOf(i) => (rows - 1)
                    .checked_sub(*i)
                    .and_then(|i| labels.get(i as usize).cloned())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc(x_desc)
            .draw()
            .map_err(chart_error)?;
        for (row, parts) in bars.iter().enumerate() {
            let row = rows - 1 - count(row);
            let mut from = 0;
            for (value, color) in parts {
                let to = from + count(*value);
                let mut bar = Rectangle::new(
                    [
                        (from, SegmentValue::Exact(row)),
                        (to, SegmentValue::Exact(row + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                chart.draw_series([bar]).map_err(chart_error)?;
                from = to;
            }
        }
        root.present().map_err(chart_error)?;
    }
    Ok(Some(svg))
}

fn state_chart(r: &MonthlyReport) -> Result<Option<String>, ServiceError> {
    let states = &r.inquiries.backlog_by_state;
    let labels: Vec<String> = states
        .iter()
        .map(|s| format!("{} / {}", s.template, s.state))
        .collect();
    let bars: Vec<Vec<(usize, RGBColor)>> = states.iter().map(|s| vec![(s.count, BLUE)]).collect();
    let max = states.iter().map(|s| count(s.count)).max().unwrap_or(0);
    bar_chart(&labels, &bars, max + 1, "open tickets")
}

fn sla_chart(r: &MonthlyReport) -> Result<Option<String>, ServiceError> {
    let targets: Vec<_> = r
        .inquiries
        .sla
        .iter()
        .filter(|c| c.met + c.breached > 0)
        .collect();
    let labels: Vec<String> = targets
        .iter()
        .map(|c| {
            let rate = c
                .rate
                .map_or_else(String::new, |r| format!(" {:.1} %", r * 100.0));
            format!("{}{rate}", c.target.as_str().replace('_', " "))
        })
        .collect();
    let bars: Vec<Vec<(usize, RGBColor)>> = targets
        .iter()
        .map(|c| vec![(c.met, GREEN), (c.breached, RED)])
        .collect();
    let max = targets
        .iter()
        .map(|c| count(c.met + c.breached))
        .max()
        .unwrap_or(0);
    bar_chart(
        &labels,
        &bars,
        max + 1,
        "clocks: met (green), breached (red)",
    )
}

fn flow_chart(r: &MonthlyReport) -> Result<Option<String>, ServiceError> {
    let days = &r.inquiries.daily;
    if days.is_empty() {
        return Ok(None);
    }
    let mut filed = Vec::with_capacity(days.len());
    let mut closed = Vec::with_capacity(days.len());
    let (mut f, mut c) = (0, 0);
    for (x, d) in days.iter().enumerate() {
        f += count(d.opened);
        c += count(d.closed);
        filed.push((count(x), f));
        closed.push((count(x), c));
    }
    let open: Vec<(u32, u32)> = days
        .iter()
        .enumerate()
        .map(|(x, d)| (count(x), count(d.backlog)))
        .collect();
    let y_max = [f, c]
        .into_iter()
        .chain(open.iter().map(|p| p.1))
        .max()
        .unwrap_or(0)
        + 1;
    let last = count(days.len() - 1).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(30)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0..last, 0..y_max)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .x_labels(days.len().min(16))
            .x_label_formatter(&|x| {
                days.get(*x as usize)
                    .map(|d| d.date.format("%m-%d").to_string())
                    .unwrap_or_default()
            })
            .y_desc("tickets")
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(AreaSeries::new(open, 0, GREY.mix(0.3)).border_style(GREY))
            .map_err(chart_error)?
            .label("open at day end")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], GREY.mix(0.5).filled()));
        for (points, color, label) in [
            (filed, BLUE, "filed (cumulative)"),
            (closed, GREEN, "closed (cumulative)"),
        ] {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(chart_error)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(GREY)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_text_not_markup() {
        let mut report: MonthlyReport = serde_json::from_value(serde_json::json!({
            "tenant": {"id": "019ac0d2-4a00-7000-8000-000000000001", "slug": "acme", "name": "ACME"},
            "month": "2026-05", "time_zone": "Asia/Tokyo", "final": true,
            "generated_at": "2026-06-01T00:00:05Z",
            "usage": {"active_ids": 1, "processes": 1, "api_calls": 0, "tickets": 1, "stored_bytes": 0},
            "inquiries": {"opened": 1, "closed": 0, "backlog": 1,
                "resolution_mean_seconds": null, "resolution_p90_seconds": null,
                "by_template": [], "by_priority": [], "by_channel": [],
                "backlog_by_state": [{"template": "inquiry", "state": "new", "count": 1}],
                "top_categories": [{"value": "billing", "opened": 1}], "sla": [],
                "daily": [{"date": "2026-05-01", "opened": 1, "closed": 0, "backlog": 1}]}
        }))
        .unwrap();
        report.tenant.name = "<script>alert(1)</script>".to_owned();
        report.inquiries.backlog_by_state[0].state = "<b>state</b>".to_owned();
        report.inquiries.top_categories[0].value = serde_json::json!("<i>cat</i>");
        let page = render(&report).unwrap();
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<b>") && !page.contains("<i>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;b&gt;state&lt;/b&gt;"), "the chart label");
        assert!(page.contains("&lt;i&gt;cat&lt;/i&gt;"));
    }

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(duration(59), "0 min");
        assert_eq!(duration(3_660), "1 h 1 min");
        assert_eq!(duration(90_000), "1 d 1 h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(10_485_760), "10.0 MiB");
    }
}
