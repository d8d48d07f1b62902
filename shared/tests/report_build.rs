//! compliance-reporter's pure core: the report built from plain data, its
//! text and JSON against golden files (`UPDATE_GOLDEN=1` rewrites them), and
//! fitting into SNS's limits for any fleet size.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fleetops::report::build::NO_GROUP;
use fleetops::report::render::{more_line, SUBJECT_MAX_CHARS};
use fleetops::report::snapshot::{
    AssociationCompliance, DataGap, Ec2Instance, FleetSnapshot, ManagedInstance,
    PatchGroupBaseline, PatchState,
};
use fleetops::report::{
    build_report, fit_message, render_html, render_json, render_text, subject, ComplianceReport,
    Previous, Standing, Trend, SNS_MAX_BYTES,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn now() -> Timestamp {
    "2026-11-26T02:00:00Z".parse().expect("time")
}

fn days_ago(days: i64) -> Option<Timestamp> {
    Some(now() - SignedDuration::from_hours(days * 24))
}

fn instance(id: &str, name: Option<&str>, state: &str, group: Option<&str>) -> Ec2Instance {
    Ec2Instance {
        instance_id: id.into(),
        name: name.map(Into::into),
        state: state.into(),
        patch_group: group.map(Into::into),
    }
}

fn agent(id: &str, ping: &str) -> ManagedInstance {
    ManagedInstance {
        instance_id: id.into(),
        ping_status: ping.into(),
        platform: Some("Amazon Linux".into()),
    }
}

fn patched(id: &str, group: &str, scanned_days_ago: i64) -> PatchState {
    PatchState {
        instance_id: id.into(),
        patch_group: Some(group.into()),
        baseline_id: Some("pb-0123456789abcdef0".into()),
        operation: "Scan".into(),
        operation_end_time: days_ago(scanned_days_ago),
        installed: 40,
        ..PatchState::default()
    }
}

/// A mixed fleet: compliant, critical missing, pending reboot, failed, offline
/// and stale, never scanned, unmanaged, stopped, terminated, not-applicable only.
fn mixed_fleet() -> FleetSnapshot {
    FleetSnapshot {
        region: "us-east-1".into(),
        instances: vec![
            instance("i-0000000000000001", Some("web-1"), "running", Some("web")),
            instance("i-0000000000000002", Some("web-2"), "running", Some("web")),
            instance("i-0000000000000003", Some("web-3"), "running", Some("web")),
            instance("i-0000000000000004", Some("db-1"), "running", Some("db")),
            instance("i-0000000000000005", Some("db-2"), "running", Some("db")),
            instance("i-0000000000000006", Some("db-3"), "running", Some("db")),
            instance("i-0000000000000007", Some("legacy"), "running", None),
            instance("i-0000000000000008", Some("batch"), "stopped", Some("web")),
            instance(
                "i-0000000000000009",
                Some("gone"),
                "terminated",
                Some("web"),
            ),
            instance("i-000000000000000a", None, "running", Some("web")),
        ],
        managed: vec![
            agent("i-0000000000000001", "Online"),
            agent("i-0000000000000002", "Online"),
            agent("i-0000000000000003", "Online"),
            agent("i-0000000000000004", "Online"),
            agent("i-0000000000000005", "ConnectionLost"),
            agent("i-0000000000000006", "Online"),
            agent("i-000000000000000a", "Online"),
        ],
        patch_states: vec![
            patched("i-0000000000000001", "web", 1),
            PatchState {
                missing: 3,
                critical_noncompliant: 2,
                security_noncompliant: 1,
                ..patched("i-0000000000000002", "web", 1)
            },
            PatchState {
                installed_pending_reboot: 1,
                ..patched("i-0000000000000003", "web", 1)
            },
            PatchState {
                failed: 1,
                ..patched("i-0000000000000004", "db", 2)
            },
            patched("i-0000000000000005", "db", 10),
            PatchState {
                not_applicable: 5,
                ..patched("i-000000000000000a", "web", 1)
            },
        ],
        patch_groups: vec![PatchGroupBaseline {
            patch_group: "web".into(),
            baseline_id: "pb-0123456789abcdef0".into(),
        }],
        associations: vec![
            AssociationCompliance {
                resource_id: "i-0000000000000001".into(),
                compliant: true,
                noncompliant_count: 0,
            },
            AssociationCompliance {
                resource_id: "i-0000000000000004".into(),
                compliant: false,
                noncompliant_count: 1,
            },
        ],
        gaps: vec![],
    }
}

fn previous() -> Previous {
    Previous {
        at: Some("2026-11-25T02:00:00Z".into()),
        // A summary from before `stopped_stale` existed: that one is not compared.
        totals: [
            ("noncompliant", 2),
            ("missing_critical", 1),
            ("running", 8),
            ("stopped", 0),
            ("unmanaged", 0),
            ("connection_lost", 0),
            ("compliant", 0),
            ("missing_security", 0),
            ("failed", 0),
            ("pending_reboot", 0),
            ("stale", 0),
            ("not_scanned", 0),
            ("association_noncompliant", 0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        groups: BTreeMap::new(),
        noncompliant: Some(vec![
            "i-0000000000000002".into(),
            "i-00000000000000ff".into(),
        ]),
    }
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs (UPDATE_GOLDEN=1 to accept):\n--- actual ---\n{actual}",
        path.display()
    );
}

fn line_of<'a>(
    report: &'a ComplianceReport,
    id: &str,
) -> Option<&'a fleetops::report::build::InstanceLine> {
    report.worst_instances.iter().find(|l| l.instance_id == id)
}

#[test]
fn given_a_mixed_fleet_then_each_instance_is_counted_where_it_belongs() {
    let report = build_report(&mixed_fleet(), &previous(), now(), 7);
    let t = &report.totals;
    assert_eq!(
        (t.instances, t.patch.running, t.patch.stopped),
        (Some(9), Some(8), Some(1)),
        "terminated ones are left out"
    );
    assert_eq!(
        (t.managed, t.online, t.connection_lost, t.unmanaged),
        (Some(7), Some(6), Some(1), Some(1))
    );
    let p = &t.patch;
    assert_eq!(
        p.compliant,
        Some(2),
        "web-1 and the not-applicable-only instance"
    );
    assert_eq!(p.noncompliant, Some(3), "critical, pending reboot, failed");
    assert_eq!(
        (
            p.missing_critical,
            p.missing_security,
            p.failed,
            p.pending_reboot
        ),
        (Some(1), Some(1), Some(1), Some(1))
    );
    assert_eq!((p.stale, p.not_scanned), (Some(1), Some(1)));
    assert_eq!(
        (t.association_compliant, t.association_noncompliant),
        (Some(1), Some(1))
    );
    assert_eq!(
        p.stopped_stale,
        Some(1),
        "the stopped one has no scan: patch debt"
    );
    assert_eq!(
        report.worst_instances[0].instance_id, "i-0000000000000002",
        "critical first"
    );
    assert_eq!(
        line_of(&report, "i-0000000000000008"),
        None,
        "stopped is never non-compliant"
    );
    assert_eq!(report.stopped.len(), 1);
    assert_eq!(
        line_of(&report, "i-000000000000000a"),
        None,
        "not-applicable never counts as missing"
    );
    assert_eq!(
        line_of(&report, "i-0000000000000007").map(|l| l.standing),
        Some(Standing::Unmanaged)
    );
    let groups: Vec<(&str, Option<&str>, Option<bool>)> = report
        .groups
        .iter()
        .map(|g| {
            (
                g.patch_group.as_str(),
                g.baseline_id.as_deref(),
                g.group_compliant,
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (NO_GROUP, None, Some(false)),
            ("db", None, Some(false)),
            ("web", Some("pb-0123456789abcdef0"), Some(false))
        ]
    );
    assert_eq!(report.changes.fixed, ["i-00000000000000ff"]);
    assert_eq!(
        report.changes.newly_noncompliant,
        ["i-0000000000000003", "i-0000000000000004"]
    );
}

#[test]
fn given_the_mixed_fleet_then_text_and_json_match_the_golden_files() {
    let report = build_report(&mixed_fleet(), &previous(), now(), 7);
    let links =
        vec!["s3://reports/fleetops/reports/2026-11-26/compliance-020000Z.json".to_string()];
    let message = fit_message(&report, &links, SNS_MAX_BYTES);
    assert_eq!(message.kept_per_list, None, "a small fleet fits whole");
    golden("mixed-fleet.txt", &message.text);
    let json: serde_json::Value = serde_json::from_str(&message.json).expect("json");
    golden(
        "mixed-fleet.json",
        &(serde_json::to_string_pretty(&json).expect("json") + "\n"),
    );
    golden("mixed-fleet.subject", &(message.subject.clone() + "\n"));
}

#[test]
fn given_unreadable_patch_states_then_the_report_says_so_and_counts_them_as_unknown() {
    let mut fleet = mixed_fleet();
    fleet
        .patch_states
        .retain(|s| s.instance_id != "i-0000000000000002");
    fleet.gaps.push(DataGap {
        source: "ssm:DescribeInstancePatchStates".into(),
        instance_ids: vec!["i-0000000000000002".into()],
        error: "ThrottlingException: Rate exceeded".into(),
    });
    let report = build_report(&fleet, &Previous::default(), now(), 7);
    assert!(!report.complete);
    assert_eq!(
        report.totals.patch.noncompliant, None,
        "unknown: web-2's standing is missing"
    );
    assert_eq!(
        report
            .worst_instances
            .iter()
            .filter(|l| l.standing == Standing::NonCompliant)
            .count(),
        2,
        "the ones read are still listed"
    );
    assert_eq!(
        report.totals.patch.unknown,
        Some(2),
        "the unreadable one and the unmanaged one"
    );
    assert_eq!(
        line_of(&report, "i-0000000000000002").map(|l| l.standing),
        Some(Standing::Unknown)
    );
    let text = render_text(&report, &[]);
    assert!(text.contains("INCOMPLETE"), "{text}");
    assert!(
        text.contains("ssm:DescribeInstancePatchStates (1 instances): ThrottlingException"),
        "{text}"
    );
    assert!(subject(&report).starts_with("INCOMPLETE"));
}

#[test]
fn given_the_previous_summary_then_it_stays_under_4_kb_even_for_a_big_fleet() {
    let report = build_report(&big_fleet(20_000), &Previous::default(), now(), 7);
    let text = Previous::from_report(&report);
    assert!(text.len() <= 4000, "{}", text.len());
    let back: Previous = serde_json::from_str(&text).expect("round trip");
    assert_eq!(
        back.totals.get("noncompliant").copied(),
        report.totals.patch.noncompliant
    );
    let small = build_report(&mixed_fleet(), &Previous::default(), now(), 7);
    let back: Previous = serde_json::from_str(&Previous::from_report(&small)).expect("round trip");
    assert_eq!(back.noncompliant.map(|n| n.len()), Some(3));
}

/// `n` instances in 300 patch groups, with every kind of problem and long
/// non-ASCII names.
fn big_fleet(n: usize) -> FleetSnapshot {
    let mut fleet = FleetSnapshot {
        region: "eu-central-1".into(),
        ..FleetSnapshot::default()
    };
    for i in 0..n {
        let id = format!("i-{i:017x}");
        let group = format!("group-{:03}", i % 300);
        let state = if i % 50 == 0 { "stopped" } else { "running" };
        fleet.instances.push(instance(
            &id,
            Some(&format!("ünïcødé-server-with-a-long-name-{i}")),
            state,
            Some(&group),
        ));
        if i % 17 != 0 {
            fleet.managed.push(agent(
                &id,
                if i % 23 == 0 {
                    "ConnectionLost"
                } else {
                    "Online"
                },
            ));
            fleet.patch_states.push(PatchState {
                missing: (i % 3) as u32,
                critical_noncompliant: (i % 5 == 0) as u32,
                failed: (i % 7 == 0) as u32,
                installed_pending_reboot: (i % 11 == 0) as u32,
                ..patched(&id, &group, (i % 12) as i64)
            });
        }
        if i % 13 == 0 {
            fleet.associations.push(AssociationCompliance {
                resource_id: id.clone(),
                compliant: false,
                noncompliant_count: 2,
            });
        }
    }
    fleet
}

fn assert_whole_lines(full: &str, fitted: &str) {
    let full_lines: std::collections::HashSet<&str> = full.lines().collect();
    for line in fitted.lines() {
        let summary = line.trim_start().starts_with("... and ") && line.ends_with(" more");
        assert!(
            full_lines.contains(line) || summary,
            "line not in the full rendering: {line:?}"
        );
    }
}

#[test]
fn given_20000_instances_then_the_message_fits_sns_and_summarises_the_rest() {
    let report = build_report(&big_fleet(20_000), &Previous::default(), now(), 7);
    let links = vec!["s3://b/fleetops/reports/2026-11-26/compliance-020000Z.json".to_string()];
    let message = fit_message(&report, &links, SNS_MAX_BYTES);
    assert!(message.bytes() <= SNS_MAX_BYTES, "{}", message.bytes());
    assert!(message.kept_per_list.is_some());
    assert!(message.text.contains(&more_line(
        report.worst_instances.len() - message.kept_per_list.unwrap_or(0)
    )));
    assert!(
        message.text.contains("s3://b/fleetops/reports/"),
        "links survive fitting"
    );
    let envelope: serde_json::Value =
        serde_json::from_str(&message.message).expect("envelope is JSON");
    assert!(envelope["default"] == message.json.as_str(), "machine JSON");
    assert!(envelope["email"] == message.text.as_str(), "e-mail text");
    let machine: serde_json::Value = serde_json::from_str(&message.json).expect("machine JSON");
    assert!(machine["omitted"]["worst_instances"].as_u64().unwrap_or(0) > 0);
    assert_whole_lines(&render_text(&report, &links), &message.text);
    println!(
        "20000 instances: message {} bytes, {} items per list, text {} bytes, json {} bytes",
        message.bytes(),
        message.kept_per_list.unwrap_or(0),
        message.text.len(),
        message.json.len()
    );
}

#[test]
fn given_any_region_or_counts_then_the_subject_is_one_ascii_line_under_100_characters() {
    let mut report = build_report(&big_fleet(3_000), &Previous::default(), now(), 7);
    for region in [
        "us-east-1",
        "régiön\nwith-newline-and-a-very-long-name-that-goes-on-and-on-and-on-forever-and-ever",
    ] {
        report.region = region.into();
        report.complete = false;
        let s = subject(&report);
        assert!(s.chars().count() <= SUBJECT_MAX_CHARS, "{s}");
        assert!(
            s.is_ascii() && !s.contains('\n') && !s.chars().any(|c| c.is_control()),
            "{s:?}"
        );
    }
}

#[test]
fn given_a_report_then_the_html_page_has_one_inline_chart_per_group_and_no_external_assets() {
    let report = build_report(&mixed_fleet(), &previous(), now(), 7);
    let html = render_html(&report, &Trend::default());
    assert_eq!(
        html.matches("<svg class=\"group-bar\"").count(),
        report.groups.len()
    );
    // Links to the EC2 console only; nothing is loaded from anywhere.
    assert!(
        !html.contains("src=") && !html.contains("<link") && !html.contains("<script"),
        "no external assets"
    );
    assert!(html
        .split("href=\"")
        .skip(1)
        .all(|link| link.starts_with("https://us-east-1.console.aws.amazon.com/ec2/")));
    let json = render_json(&report, "s", &[]);
    assert_eq!(json["totals"]["noncompliant"], 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn fitting_any_fleet_into_any_limit_keeps_whole_lines_and_the_limit(
        n in 0usize..1500,
        limit in 12_000usize..SNS_MAX_BYTES,
    ) {
        let report = build_report(&big_fleet(n), &previous(), now(), 7);
        let message = fit_message(&report, &[], limit);
        // The fixed part (summary, headers) always goes out; lists shrink to fit.
        prop_assert!(message.bytes() <= limit || message.kept_per_list == Some(0), "{} > {limit}", message.bytes());
        assert_whole_lines(&render_text(&report, &[]), &message.text);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&message.message).is_ok());
    }
}

#[test]
fn given_the_agent_list_could_not_be_read_then_nobody_is_called_unmanaged() {
    let mut fleet = mixed_fleet();
    fleet.managed.clear();
    fleet.patch_states.clear();
    fleet.gaps.push(DataGap {
        source: fleetops::report::snapshot::SOURCE_INSTANCE_INFORMATION.into(),
        instance_ids: vec![],
        error: "ThrottlingException".into(),
    });
    let report = build_report(&fleet, &Previous::default(), now(), 7);
    assert_eq!(report.totals.unmanaged, None, "unknown, not 0");
    assert!(report.unmanaged.is_empty());
    assert_eq!(report.totals.patch.unknown, Some(8));
    assert_eq!(report.totals.patch.noncompliant, None, "unknown, not 0");
    assert!(!report.complete);
}

// ---- Missing data: changes only over what was read this time -------------

/// The summary a complete report of the mixed fleet leaves for tomorrow:
/// web-2, web-3 and db-1 non-compliant, every metric recorded.
fn previous_of_the_mixed_fleet() -> Previous {
    let complete = build_report(&mixed_fleet(), &Previous::default(), now(), 7);
    serde_json::from_str(&Previous::from_report(&complete)).expect("previous summary")
}

fn json_of(report: &ComplianceReport) -> serde_json::Value {
    render_json(report, "s", &[])
}

/// The lines of the text section whose title starts with `title`, up to the
/// next blank line.
fn section<'a>(text: &'a str, title: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(title));
    let mut out: Vec<&'a str> = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        out.push(line);
    }
    assert!(!out.is_empty(), "no section {title:?} in:\n{text}");
    out.join("\n")
}

/// Change lines that show a metric falling to 0.
fn drops_to_zero(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains(" -> 0 (")).collect()
}

#[test]
fn given_a_failed_patch_state_batch_then_its_instances_are_neither_fixed_nor_newly_noncompliant() {
    // Given yesterday's report: web-2 (critical), web-3 (reboot) and db-1 (failed)
    // non-compliant. Today db-1 is really fixed, and the patch-state batch with
    // web-2 and web-3 could not be read.
    let previous = previous_of_the_mixed_fleet();
    assert_eq!(
        previous.noncompliant.as_deref().map(<[String]>::len),
        Some(3)
    );
    let mut fleet = mixed_fleet();
    let unread = ["i-0000000000000002", "i-0000000000000003"];
    fleet
        .patch_states
        .retain(|s| !unread.contains(&s.instance_id.as_str()));
    for state in &mut fleet.patch_states {
        if state.instance_id == "i-0000000000000004" {
            state.failed = 0;
        }
    }
    fleet.gaps.push(DataGap {
        source: "ssm:DescribeInstancePatchStates".into(),
        instance_ids: unread.iter().map(|s| (*s).to_string()).collect(),
        error: "ThrottlingException: Rate exceeded".into(),
    });

    // When the report is built.
    let report = build_report(&fleet, &previous, now(), 7);

    // Then only db-1, whose data was read, is fixed; the unread ones are neither.
    assert_eq!(report.changes.fixed, ["i-0000000000000004"]);
    assert!(
        report.changes.newly_noncompliant.is_empty(),
        "{:?}",
        report.changes.newly_noncompliant
    );
    // The patch metrics are unknown, not a drop.
    let json = json_of(&report);
    let change = |metric: &str| {
        json["changes"]["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|c| c["metric"] == metric).cloned())
            .unwrap_or_else(|| panic!("no change of {metric}: {}", json["changes"]))
    };
    assert_eq!(change("noncompliant")["before"], 3);
    assert!(
        change("noncompliant")["after"].is_null(),
        "{}",
        json["changes"]
    );
    assert!(change("missing_critical")["after"].is_null());
    assert!(
        json["totals"]["noncompliant"].is_null(),
        "{}",
        json["totals"]
    );
    let text = render_text(&report, &[]);
    assert!(text.contains("  noncompliant: 3 -> unknown"), "{text}");
    assert_eq!(drops_to_zero(&text), Vec::<&str>::new(), "{text}");
    // The sections built from patch states say that they are incomplete.
    assert!(
        section(&text, "Patch groups").contains("could not read ssm:DescribeInstancePatchStates"),
        "{text}"
    );
    assert!(
        section(&text, "Changes since").contains("neither fixed nor newly non-compliant"),
        "{text}"
    );
    assert_eq!(json["incomplete_sections"]["groups"]["status"], "partial");
    assert_eq!(json["incomplete_sections"]["groups"]["instances"], 2);
    // The web group (where the unread ones are) is unknown, db is known.
    let group = |name: &str| {
        json["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["patch_group"] == name).cloned())
            .unwrap_or_else(|| panic!("no group {name}"))
    };
    assert!(group("web")["noncompliant"].is_null(), "{}", group("web"));
    assert_eq!(group("db")["noncompliant"], 0, "{}", group("db"));
}

#[test]
fn given_the_ec2_read_failed_then_no_metric_drops_to_0_and_every_section_says_unknown() {
    let previous = previous_of_the_mixed_fleet();
    let mut fleet = mixed_fleet();
    // What gather has when DescribeInstances fails: no instances, so no patch
    // states were asked for; the other reads worked.
    fleet.instances.clear();
    fleet.patch_states.clear();
    fleet.gaps.push(DataGap {
        source: "ec2:DescribeInstances".into(),
        instance_ids: vec![],
        error: "RequestLimitExceeded: Request limit exceeded.".into(),
    });

    let report = build_report(&fleet, &previous, now(), 7);

    let json = json_of(&report);
    for metric in [
        "instances",
        "running",
        "stopped",
        "stopped_stale",
        "managed",
        "online",
        "connection_lost",
        "unmanaged",
        "compliant",
        "noncompliant",
        "missing_critical",
        "missing_security",
        "failed",
        "pending_reboot",
        "stale",
        "not_scanned",
        "association_compliant",
        "association_noncompliant",
    ] {
        assert!(
            json["totals"][metric].is_null(),
            "{metric} is unknown, not a count: {}",
            json["totals"]
        );
    }
    let metrics = json["changes"]["metrics"].as_array().expect("metrics");
    assert!(
        metrics
            .iter()
            .any(|c| c["metric"] == "running" && c["before"] == 8),
        "{metrics:?}"
    );
    for change in metrics {
        assert!(change["after"].is_null(), "{change}");
    }
    assert!(
        report.changes.fixed.is_empty(),
        "{:?}",
        report.changes.fixed
    );
    assert!(report.changes.newly_noncompliant.is_empty());
    assert!(
        report.groups.is_empty(),
        "no group of zeros: {:?}",
        report.groups
    );
    for section_name in [
        "totals",
        "groups",
        "worst_instances",
        "unmanaged",
        "connection_lost",
        "stopped",
        "association_noncompliant",
        "changes",
    ] {
        assert_eq!(
            json["incomplete_sections"][section_name]["status"], "unknown",
            "{section_name}: {}",
            json["incomplete_sections"]
        );
    }

    let text = render_text(&report, &[]);
    assert!(text.contains("  running: 8 -> unknown"), "{text}");
    assert!(text.contains("  noncompliant: 3 -> unknown"), "{text}");
    assert_eq!(drops_to_zero(&text), Vec::<&str>::new(), "{text}");
    let unknown = "unknown: could not read ec2:DescribeInstances";
    for title in [
        "Summary",
        "Changes since",
        "Patch groups",
        "Worst instances",
        "Not managed by SSM",
        "SSM connection lost",
        "Stopped",
        "Association non-compliant",
    ] {
        assert!(section(&text, title).contains(unknown), "{title}:\n{text}");
    }
    assert!(
        !section(&text, "Worst instances").contains("none"),
        "{text}"
    );
    let html = render_html(&report, &Trend::default());
    let (page, _embedded_text) = html.split_once("<h2>Text report</h2>").expect("html");
    assert!(page.contains(unknown), "{page}");
    assert!(
        subject(&report).starts_with("INCOMPLETE"),
        "{}",
        subject(&report)
    );
    assert!(
        !subject(&report).contains(" 0 non-compliant"),
        "{}",
        subject(&report)
    );
}

#[test]
fn given_association_compliance_could_not_be_read_then_its_counts_are_unknown_not_0() {
    let previous = previous_of_the_mixed_fleet();
    let mut fleet = mixed_fleet();
    fleet.associations.clear();
    fleet.gaps.push(DataGap {
        source: "ssm:ListResourceComplianceSummaries".into(),
        instance_ids: vec![],
        error: "ThrottlingException: Rate exceeded".into(),
    });
    let report = build_report(&fleet, &previous, now(), 7);
    let json = json_of(&report);
    assert!(json["totals"]["association_noncompliant"].is_null());
    assert!(json["totals"]["association_compliant"].is_null());
    assert_eq!(json["totals"]["noncompliant"], 3, "patching was read");
    let text = render_text(&report, &[]);
    assert!(
        text.contains("  association_noncompliant: 1 -> unknown"),
        "{text}"
    );
    assert_eq!(drops_to_zero(&text), Vec::<&str>::new(), "{text}");
    assert!(
        section(&text, "Association non-compliant")
            .contains("unknown: could not read ssm:ListResourceComplianceSummaries"),
        "{text}"
    );
    assert!(
        section(&text, "Summary").contains("Associations: unknown"),
        "{text}"
    );
}

#[test]
fn given_the_previous_summary_could_not_be_read_then_changes_are_unknown_not_a_first_report() {
    let mut fleet = mixed_fleet();
    fleet.gaps.push(DataGap {
        source: "ssm:GetParameter /fleetops/compliance-reporter/previous".into(),
        instance_ids: vec![],
        error: "ThrottlingException: Rate exceeded".into(),
    });
    let report = build_report(&fleet, &Previous::default(), now(), 7);
    let text = render_text(&report, &[]);
    assert!(!text.contains("first report"), "{text}");
    assert!(
        text.contains("Changes: unknown: could not read ssm:GetParameter"),
        "{text}"
    );
    assert_eq!(
        json_of(&report)["incomplete_sections"]["changes"]["status"],
        "unknown"
    );
}

/// A fleet with stopped instances: web-stopped-1 never scanned, web-stopped-2
/// scanned 30 days ago with critical patches missing, db-stopped scanned
/// yesterday, and one stopped instance that is not managed by SSM.
fn fleet_with_stopped_instances() -> FleetSnapshot {
    let mut fleet = mixed_fleet();
    fleet.instances.extend([
        instance(
            "i-00000000000000b1",
            Some("web-stopped-1"),
            "stopped",
            Some("web"),
        ),
        instance(
            "i-00000000000000b2",
            Some("web-stopped-2"),
            "stopped",
            Some("web"),
        ),
        instance(
            "i-00000000000000b3",
            Some("db-stopped"),
            "stopped",
            Some("db"),
        ),
        instance(
            "i-00000000000000b4",
            Some("db-stopped-unmanaged"),
            "stopped",
            Some("db"),
        ),
    ]);
    fleet.managed.extend([
        agent("i-00000000000000b1", "ConnectionLost"),
        agent("i-00000000000000b2", "ConnectionLost"),
        agent("i-00000000000000b3", "ConnectionLost"),
    ]);
    fleet.patch_states.extend([
        PatchState {
            missing: 4,
            critical_noncompliant: 4,
            ..patched("i-00000000000000b2", "web", 30)
        },
        patched("i-00000000000000b3", "db", 1),
    ]);
    fleet
}

#[test]
fn given_stopped_instances_then_a_missing_or_stale_scan_is_counted_per_group_and_never_noncompliant(
) {
    let report = build_report(
        &fleet_with_stopped_instances(),
        &Previous::default(),
        now(),
        7,
    );
    let json = json_of(&report);
    let group = |name: &str| {
        json["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["patch_group"] == name).cloned())
            .unwrap_or_else(|| panic!("no group {name}"))
    };
    // web: the mixed fleet's batch (never scanned) + web-stopped-1 + web-stopped-2.
    assert_eq!(group("web")["stopped"], 3, "{}", group("web"));
    assert_eq!(group("web")["stopped_stale"], 3, "{}", group("web"));
    // db: db-stopped is fresh, the unmanaged one has no scan at all.
    assert_eq!(group("db")["stopped"], 2, "{}", group("db"));
    assert_eq!(group("db")["stopped_stale"], 1, "{}", group("db"));
    assert_eq!(json["totals"]["stopped_stale"], 4, "{}", json["totals"]);
    // Still never non-compliant.
    assert_eq!(json["totals"]["noncompliant"], 3, "{}", json["totals"]);
    for id in [
        "i-00000000000000b1",
        "i-00000000000000b2",
        "i-00000000000000b4",
    ] {
        assert_eq!(line_of(&report, id), None, "{id} is not a problem instance");
    }
    let text = render_text(&report, &[]);
    assert!(
        text.contains("4 stopped with no scan or a scan older than 7 days"),
        "{text}"
    );
    assert!(
        section(&text, "Patch groups").contains("STOP-STALE"),
        "{text}"
    );
    let html = render_html(&report, &Trend::default());
    let (page, _) = html.split_once("<h2>Text report</h2>").expect("html");
    assert!(page.contains("(patch debt 3)"), "{page}");
    // Kept for tomorrow's comparison.
    let kept: Previous = serde_json::from_str(&Previous::from_report(&report)).expect("json");
    assert_eq!(kept.totals.get("stopped_stale"), Some(&4));
}

#[test]
fn given_a_stopped_instance_whose_patch_state_could_not_be_read_then_stopped_stale_is_unknown() {
    let mut fleet = fleet_with_stopped_instances();
    fleet
        .patch_states
        .retain(|s| s.instance_id != "i-00000000000000b3");
    fleet.gaps.push(DataGap {
        source: "ssm:DescribeInstancePatchStates".into(),
        instance_ids: vec!["i-00000000000000b3".into()],
        error: "ThrottlingException: Rate exceeded".into(),
    });
    let report = build_report(&fleet, &Previous::default(), now(), 7);
    let json = json_of(&report);
    let db = json["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["patch_group"] == "db").cloned())
        .expect("db");
    assert!(db["stopped_stale"].is_null(), "{db}");
    assert_eq!(db["stopped"], 2);
    assert_eq!(
        db["noncompliant"], 1,
        "running db instances were all read: {db}"
    );
    assert!(json["totals"]["stopped_stale"].is_null());
}

#[test]
fn given_a_metric_the_previous_summary_does_not_have_then_it_is_not_shown_as_a_change_from_0() {
    // A summary written before `stopped_stale` existed.
    let mut previous = previous_of_the_mixed_fleet();
    previous.totals.remove("stopped_stale");
    let report = build_report(&fleet_with_stopped_instances(), &previous, now(), 7);
    assert!(
        !report
            .changes
            .metrics
            .iter()
            .any(|c| c.metric == "stopped_stale"),
        "{:?}",
        report.changes.metrics
    );
}

#[test]
fn given_any_report_then_the_sns_message_holds_one_text_and_one_json_copy() {
    let report = build_report(&mixed_fleet(), &previous(), now(), 7);
    let message = fit_message(&report, &[], SNS_MAX_BYTES);
    let envelope: serde_json::Value = serde_json::from_str(&message.message).expect("envelope");
    let keys: Vec<&str> = envelope
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["default", "email", "sms"], "{envelope}");
    // Machine protocols (SQS, Lambda, HTTP/S, ...) get `default`: the JSON.
    assert_eq!(envelope["default"], message.json.as_str());
    assert_eq!(envelope["email"], message.text.as_str());
    assert_eq!(envelope["sms"], message.subject.as_str());
    let one_copy_each = serde_json::to_string(&message.text).expect("text").len()
        + serde_json::to_string(&message.json).expect("json").len();
    assert!(
        message.bytes() < one_copy_each + 200 + message.subject.len(),
        "{} bytes for {one_copy_each} of report",
        message.bytes()
    );
}
