//! The HTML page people forward: its structure against a golden skeleton
//! (`UPDATE_GOLDEN=1` rewrites it), the headline, group bars on one scale
//! (a property), the trend with 0, 1 and 30 previous reports and with one
//! that cannot be read, and the e-mail's headline lines.

use std::path::PathBuf;

use fleetops::report::html::{console_url, BAR_FULL};
use fleetops::report::snapshot::{Ec2Instance, FleetSnapshot, ManagedInstance, PatchState};
use fleetops::report::trend::{assemble, Pick, TrendPoint};
use fleetops::report::{build_report, render_html, render_text, ComplianceReport, Previous, Trend};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn now() -> Timestamp {
    "2026-11-26T02:00:00Z".parse().expect("time")
}

/// Per group: (name, compliant running, non-compliant running, stopped).
fn fleet(groups: &[(&str, u64, u64, u64)]) -> FleetSnapshot {
    let mut snapshot = FleetSnapshot {
        region: "eu-west-1".into(),
        ..FleetSnapshot::default()
    };
    let mut n = 0u64;
    for (group, ok, bad, stopped) in groups {
        for i in 0..(ok + bad + stopped) {
            n += 1;
            let id = format!("i-{n:017x}");
            let state = if i < ok + bad { "running" } else { "stopped" };
            snapshot.instances.push(Ec2Instance {
                instance_id: id.clone(),
                name: Some(format!("{group}-{i}")),
                state: state.into(),
                patch_group: Some((*group).into()),
            });
            snapshot.managed.push(ManagedInstance {
                instance_id: id.clone(),
                ping_status: "Online".into(),
                platform: None,
            });
            let missing = u32::from(i >= *ok && i < ok + bad);
            snapshot.patch_states.push(PatchState {
                instance_id: id,
                patch_group: Some((*group).into()),
                operation: "Scan".into(),
                operation_end_time: Some(now() - SignedDuration::from_hours(24)),
                installed: 10,
                missing,
                critical_noncompliant: missing,
                ..PatchState::default()
            });
        }
    }
    snapshot
}

fn report_of(groups: &[(&str, u64, u64, u64)]) -> ComplianceReport {
    build_report(&fleet(groups), &Previous::default(), now(), 7)
}

fn tonight(report: &ComplianceReport) -> TrendPoint {
    TrendPoint::of(report, "2026-11-26")
}

fn stored(compliant: u64, running: u64) -> String {
    serde_json::json!({
        "type": "fleetops.compliance-report", "generated_at": "2026-11-01T02:00:00Z", "complete": true,
        "totals": {"running": running, "compliant": compliant, "noncompliant": running - compliant,
                   "missing_critical": 0, "unmanaged": 0, "stale": 0, "stopped_stale": 0}
    })
    .to_string()
}

/// `n` previous nights before 2026-11-26, each readable.
fn previous_nights(n: i64) -> Vec<(Pick, Result<String, String>)> {
    let today: jiff::civil::Date = "2026-11-26".parse().expect("date");
    (1..=n)
        .rev()
        .map(|back| {
            let night = (today - jiff::Span::new().days(back)).to_string();
            let pick = Pick {
                key: format!("fleetops/reports/{night}/compliance-020000Z.json"),
                night,
                size: Some(300),
            };
            (pick, Ok(stored(back as u64 % 10, 10)))
        })
        .collect()
}

/// The page's element skeleton: one line per element (name, id, class), indented by depth.
fn skeleton(html: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let void = ["meta", "br"];
    for piece in html.split('<').skip(1) {
        let tag = piece.split('>').next().unwrap_or_default();
        if tag.starts_with('/') {
            depth = depth.saturating_sub(1);
            continue;
        }
        if tag.starts_with('!') {
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or_default();
        let attribute = |key: &str| {
            tag.split(&format!(" {key}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(|v| format!(" {key}={v}"))
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "{}{name}{}{}\n",
            "  ".repeat(depth),
            attribute("id"),
            attribute("class")
        ));
        let self_closing = tag.ends_with('/') || void.contains(&name);
        if !self_closing {
            depth += 1;
        }
    }
    out
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it):\n{actual}"
    );
}

#[test]
fn given_a_fleet_and_a_trend_then_the_page_has_the_golden_structure() {
    let report = report_of(&[("web", 3, 1, 1), ("db", 1, 1, 0)]);
    let mut previous = previous_nights(2);
    previous.push((
        Pick {
            night: "2026-11-20".into(),
            key: "fleetops/reports/2026-11-20/compliance-020000Z.json".into(),
            size: Some(10),
        },
        Ok("{not json".into()),
    ));
    let trend = assemble(tonight(&report), previous, None);
    let html = render_html(&report, &trend);
    golden("page.structure", &skeleton(&html));
    assert!(
        html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    assert!(html.contains("@media"), "responsive CSS");
}

#[test]
fn given_a_fleet_then_the_headline_shows_compliance_of_running_instances_and_the_counts() {
    // 4 + 2 running, 2 + 1 of them missing critical patches, 1 stopped.
    let report = report_of(&[("web", 2, 2, 1), ("db", 1, 1, 0)]);
    let html = render_html(&report, &Trend::default());
    let headline = html
        .split("<section id=\"headline\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("headline section");
    assert!(headline.contains(">50%<"), "{headline}");
    assert!(headline.contains("(3 of 6)"), "{headline}");
    let tile = |label: &str| {
        headline
            .split("<div class=\"tile")
            .find(|t| t.contains(label))
            .unwrap_or_else(|| panic!("no tile {label} in {headline}"))
            .to_string()
    };
    assert!(tile(">non-compliant<").contains(">3<"));
    assert!(tile("missing critical").contains(">3<"));
    assert!(tile("not managed").contains(">0<"));
    // The stopped instance was scanned a day ago: no patch debt.
    assert!(tile("patch debt").contains(">0<"));

    let text = render_text(&report, &[]);
    let first: Vec<&str> = text.lines().take(3).collect();
    assert!(
        first[1].starts_with("Headline: 50% of running instances compliant (3 of 6)"),
        "{first:?}"
    );
    assert!(
        first[2].contains("3 non-compliant, 3 missing critical"),
        "{first:?}"
    );
}

#[test]
fn given_problem_instances_then_each_links_to_its_ec2_console_page() {
    let report = report_of(&[("web", 1, 2, 0)]);
    let html = render_html(&report, &Trend::default());
    assert!(!report.worst_instances.is_empty());
    for line in &report.worst_instances {
        let link = format!(
            "<a href=\"{}\">{}</a>",
            console_url("eu-west-1", &line.instance_id),
            line.instance_id
        );
        assert!(html.contains(&link), "{link}");
    }
}

/// Each group's running count and the summed width of its bar segments.
fn bars(html: &str) -> Vec<(u64, f64)> {
    html.split("<svg class=\"group-bar\" data-running=\"")
        .skip(1)
        .map(|rest| {
            let running = rest
                .split('"')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("data-running");
            let svg = rest.split("</svg>").next().unwrap_or_default();
            let width = svg
                .split("class=\"seg\"")
                .skip(1)
                .map(|seg| {
                    seg.split("width=\"")
                        .nth(1)
                        .and_then(|w| w.split('"').next())
                        .and_then(|w| w.parse::<f64>().ok())
                        .expect("segment width")
                })
                .sum();
            (running, width)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn given_any_groups_then_every_bar_is_drawn_to_one_scale(
        sizes in proptest::collection::vec((0u64..120, 0u64..40, 0u64..4), 1..6)
    ) {
        let names = ["a", "b", "c", "d", "e", "f"];
        let groups: Vec<(&str, u64, u64, u64)> = sizes
            .iter()
            .zip(names)
            .map(|((ok, bad, stopped), name)| (name, *ok, *bad, *stopped))
            .collect();
        let report = report_of(&groups);
        let html = render_html(&report, &Trend::default());
        let bars = bars(&html);
        prop_assert_eq!(bars.len(), report.groups.len());
        let most = bars.iter().map(|b| b.0).max().unwrap_or(0);
        for (running, width) in &bars {
            let expected = if most == 0 { 0.0 } else { BAR_FULL * *running as f64 / most as f64 };
            // Segments are written to 3 decimals.
            prop_assert!((width - expected).abs() < 0.01, "running {} of max {}: width {} != {}", running, most, width, expected);
        }
        // The biggest group fills the scale; sizes compare across groups.
        if most > 0 {
            prop_assert!(bars.iter().any(|(r, w)| *r == most && (w - BAR_FULL).abs() < 0.01));
        }
    }
}

fn nights_drawn(html: &str) -> usize {
    html.matches("<rect class=\"night").count()
}

#[test]
fn given_no_previous_report_then_the_trend_is_tonight_and_says_it_starts_tonight() {
    let report = report_of(&[("web", 3, 1, 0)]);
    let trend = assemble(tonight(&report), Vec::new(), None);
    let html = render_html(&report, &trend);
    assert_eq!(nights_drawn(&html), 1);
    assert!(html.contains("the trend starts tonight"));
}

#[test]
fn given_one_previous_report_then_the_trend_draws_it_and_tonight() {
    let report = report_of(&[("web", 3, 1, 0)]);
    let trend = assemble(tonight(&report), previous_nights(1), None);
    let html = render_html(&report, &trend);
    assert_eq!(nights_drawn(&html), 2);
    assert!(html.contains("data-night=\"2026-11-25\""));
    assert!(!html.contains("the trend starts tonight"));
    // Tonight: 3 of 4 compliant.
    assert!(html.contains("2026-11-26: 75% compliant"), "{html}");
}

#[test]
fn given_30_previous_reports_then_the_trend_draws_31_nights_oldest_first() {
    let report = report_of(&[("web", 3, 1, 0)]);
    let trend = assemble(tonight(&report), previous_nights(30), None);
    let html = render_html(&report, &trend);
    assert_eq!(nights_drawn(&html), 31);
    let nights: Vec<&str> = html
        .split("data-night=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    let mut sorted = nights.clone();
    sorted.sort_unstable();
    assert_eq!(nights, sorted);
    assert_eq!(nights.first(), Some(&"2026-10-27"));
    assert_eq!(nights.last(), Some(&"2026-11-26"));
}

#[test]
fn given_a_previous_report_that_cannot_be_read_then_it_is_skipped_and_the_page_says_so() {
    let report = report_of(&[("web", 3, 1, 0)]);
    let mut previous = previous_nights(2);
    previous[0].1 = Err("AccessDenied: not allowed".into());
    let trend = assemble(tonight(&report), previous, None);
    let html = render_html(&report, &trend);
    assert_eq!(nights_drawn(&html), 2);
    assert!(
        html.contains("1 previous report(s) could not be read"),
        "{html}"
    );
    assert!(html.contains("fleetops/reports/2026-11-24/compliance-020000Z.json: AccessDenied"));

    let listing = assemble(tonight(&report), Vec::new(), Some("AccessDenied".into()));
    let html = render_html(&report, &listing);
    assert!(html.contains("could not be listed (AccessDenied)"));
    assert!(!html.contains("the trend starts tonight"));
}
