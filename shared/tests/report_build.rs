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
    Previous, Standing, SNS_MAX_BYTES,
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
        totals: [("noncompliant", 2), ("missing_critical", 1), ("running", 8)]
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
        (9, 8, 1),
        "terminated ones are left out"
    );
    assert_eq!(
        (t.managed, t.online, t.connection_lost, t.unmanaged),
        (7, 6, 1, 1)
    );
    let p = &t.patch;
    assert_eq!(p.compliant, 2, "web-1 and the not-applicable-only instance");
    assert_eq!(p.noncompliant, 3, "critical, pending reboot, failed");
    assert_eq!(
        (
            p.missing_critical,
            p.missing_security,
            p.failed,
            p.pending_reboot
        ),
        (1, 1, 1, 1)
    );
    assert_eq!((p.stale, p.not_scanned), (1, 1));
    assert_eq!(
        (t.association_compliant, t.association_noncompliant),
        (1, 1)
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
    let groups: Vec<(&str, Option<&str>, bool)> = report
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
            (NO_GROUP, None, false),
            ("db", None, false),
            ("web", Some("pb-0123456789abcdef0"), false)
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
    assert_eq!(report.totals.patch.noncompliant, 2);
    assert_eq!(
        report.totals.patch.unknown, 2,
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
        Some(report.totals.patch.noncompliant)
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
    for key in ["default", "email", "sqs", "lambda", "https"] {
        assert!(envelope[key].is_string(), "{key}");
    }
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
    let html = render_html(&report);
    assert_eq!(html.matches("<svg").count(), report.groups.len());
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external assets"
    );
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
    assert_eq!(report.totals.unmanaged, 0);
    assert!(report.unmanaged.is_empty());
    assert_eq!(report.totals.patch.unknown, 8);
    assert_eq!(report.totals.patch.noncompliant, 0);
    assert!(!report.complete);
}
