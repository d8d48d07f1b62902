//! EMF documents from each function's output: valid by the specification's
//! rules, every declared metric present, counts equal to the output's.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::patch::{CommandSent, Failure, LifecycleAction, Skipped as PatchSkipped};
use crate::report::Headline;
use crate::scheduler::{Failed, Skipped};

fn at() -> jiff::Timestamp {
    "2026-11-26T18:05:00Z".parse().expect("time")
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("i-{prefix}{i:04}")).collect()
}

fn document(function: &str, metrics: Option<Vec<Metric>>) -> Value {
    let line = emf_line(function, "eu-west-1", at(), metrics).expect("a line");
    assert!(!line.contains('\n'), "one line: {line}");
    serde_json::from_str(&line).expect("JSON")
}

fn declared(doc: &Value) -> BTreeSet<String> {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["Name"].as_str().map(str::to_string))
        .collect()
}

/// Reasons as the scheduler writes them (`scheduler::plan`, `scheduler::patching`).
const REASONS: &[(&str, &str)] = &[
    ("patching: AWS-RunPatchBaseline command c-1 is in progress; stopped at the first tick after it ends", names::SKIPPED_PATCHING),
    ("unknown schedule \"ofice-hours\"", names::SKIPPED_SCHEDULE),
    ("invalid schedule: office-hours: periods[0].begin: expected HH:MM", names::SKIPPED_SCHEDULE),
    ("ScheduleOverride=skip", names::SKIPPED_OVERRIDE),
    ("invalid ScheduleOverride value \"maybe\"; expected running, stopped or skip", names::SKIPPED_OVERRIDE),
    ("instance is pending (transitional state)", names::SKIPPED_TRANSITIONAL),
    ("member of Auto Scaling group \"web\" (the group manages its capacity)", names::SKIPPED_AUTO_SCALING),
    ("spot instance (cannot be stopped and started by a schedule)", names::SKIPPED_SPOT),
    ("late tick: evaluated for 2026-11-26T18:05:00Z, but a newer tick already applied the transition of 2026-11-26T18:10:00Z", names::SKIPPED_OTHER),
];

#[test]
fn given_a_tick_then_its_emf_document_is_valid_and_counts_what_the_tick_did() {
    let summary = TickSummary {
        started: ids("s", 2),
        stopped: ids("t", 3),
        failed: vec![Failed {
            instance_id: "i-f".into(),
            error: "start did not hold".into(),
        }],
        skipped: REASONS
            .iter()
            .enumerate()
            .map(|(i, (reason, _))| Skipped {
                instance_id: format!("i-k{i}"),
                reason: (*reason).into(),
            })
            .collect(),
        ..TickSummary::default()
    };
    let doc = document(SCHEDULER, scheduler_metrics(&summary, 1));
    check_emf(&doc).expect("valid EMF");
    assert_eq!(doc["_aws"]["Timestamp"], at().as_millisecond());
    assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "fleetops");
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["function", "region"]])
    );
    assert_eq!(doc["function"], "instance-scheduler");
    assert_eq!(doc["region"], "eu-west-1");
    let expected: BTreeSet<String> = SCHEDULER_METRICS.iter().map(|s| s.to_string()).collect();
    assert_eq!(declared(&doc), expected);
    assert_eq!(doc[names::INSTANCES_STARTED], 2.0);
    assert_eq!(doc[names::INSTANCES_STOPPED], 3.0);
    assert_eq!(doc[names::INSTANCES_FAILED], 1.0);
    assert_eq!(doc[names::REGIONS_FAILED], 1.0);
    for class in &SCHEDULER_METRICS[3..10] {
        let expected = REASONS.iter().filter(|(_, c)| c == class).count();
        assert_eq!(doc[*class], expected as f64, "{class}");
    }
}

#[test]
fn given_each_reason_then_its_class_is_the_one_written_next_to_it() {
    for (reason, class) in REASONS {
        assert_eq!(skip_class(reason), *class, "{reason}");
    }
}

#[test]
fn given_a_dry_run_then_no_function_emits_anything() {
    let tick = TickSummary {
        dry_run: true,
        stopped: ids("t", 3),
        ..TickSummary::default()
    };
    assert!(scheduler_metrics(&tick, 0).is_none());
    let patch = PatchSummary {
        dry_run: true,
        ..PatchSummary::default()
    };
    assert!(dispatcher_metrics(&patch).is_none());
    let mut report = report_output();
    report.dry_run = true;
    assert!(reporter_metrics(&report).is_none());
    assert!(emf_line(SCHEDULER, "eu-west-1", at(), None).is_none());
}

fn action(id: &str, result: LifecycleResult, applied: bool) -> LifecycleAction {
    LifecycleAction {
        instance_id: id.into(),
        group: "web".into(),
        hook: "fleetops-patch-on-launch".into(),
        result,
        reason: "patched".into(),
        applied,
    }
}

#[test]
fn given_a_dispatch_then_commands_lifecycle_results_and_wakes_are_counted() {
    let summary = PatchSummary {
        commands: vec![
            CommandSent {
                command_id: Some("c-1".into()),
                patch_group: Some("web".into()),
                instance_ids: None,
                targets: None,
                operation: "Install",
                snapshot_id: None,
            };
            2
        ],
        lifecycle_actions: vec![
            action("i-1", LifecycleResult::Continue, true),
            action("i-2", LifecycleResult::Continue, true),
            action("i-3", LifecycleResult::Abandon, true),
            action("i-4", LifecycleResult::Continue, false),
        ],
        woken: ids("w", 3),
        skipped: vec![PatchSkipped {
            instance_id: Some("i-5".into()),
            command_id: None,
            reason: "not managed by SSM".into(),
        }],
        errors: vec![Failure {
            instance_id: None,
            error: "throttled".into(),
        }],
        ..PatchSummary::default()
    };
    let doc = document(DISPATCHER, dispatcher_metrics(&summary));
    check_emf(&doc).expect("valid EMF");
    let expected: BTreeSet<String> = DISPATCHER_METRICS.iter().map(|s| s.to_string()).collect();
    assert_eq!(declared(&doc), expected);
    for (name, value) in [
        (names::COMMANDS_SENT, 2.0),
        (names::LIFECYCLE_CONTINUE, 2.0),
        (names::LIFECYCLE_ABANDON, 1.0),
        (names::LIFECYCLE_NOT_APPLIED, 1.0),
        (names::INSTANCES_WOKEN, 3.0),
        (names::PATCH_SKIPPED, 1.0),
        (names::PATCH_ERRORS, 1.0),
    ] {
        assert_eq!(doc[name], value, "{name}");
    }
}

fn report_output() -> ReportOutput {
    ReportOutput {
        dry_run: false,
        subject: "s".into(),
        message_id: Some("m".into()),
        bytes: 10,
        instances: Some(9),
        noncompliant: Some(3),
        complete: true,
        missing_data: Vec::new(),
        report_objects: Vec::new(),
        kept_per_list: None,
        previous_saved: true,
        headline: Headline {
            running: Some(8),
            compliant: Some(3),
            compliant_percent: Some(37),
            noncompliant: Some(3),
            critical: Some(1),
            unmanaged: Some(1),
            stale: Some(1),
            stopped_stale: Some(1),
        },
        trend_nights: None,
        trend_skipped: Vec::new(),
        accounts: 0,
        unhandled: Vec::new(),
    }
}

#[test]
fn given_a_report_then_its_totals_and_completeness_are_emitted() {
    let doc = document(REPORTER, reporter_metrics(&report_output()));
    check_emf(&doc).expect("valid EMF");
    let expected: BTreeSet<String> = REPORTER_METRICS.iter().map(|s| s.to_string()).collect();
    assert_eq!(declared(&doc), expected);
    assert_eq!(doc[names::REPORT_COMPLETE], 1.0);
    assert_eq!(doc[names::NON_COMPLIANT], 3.0);
    assert_eq!(doc[names::COMPLIANT_PERCENT], 37.0);
    assert_eq!(doc[names::STOPPED_STALE], 1.0);
    let percent = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["Name"] == names::COMPLIANT_PERCENT)
        .cloned();
    assert_eq!(percent.expect("declared")["Unit"], "Percent");
}

#[test]
fn given_an_incomplete_report_then_unknown_counts_are_left_out_not_sent_as_0() {
    let mut output = report_output();
    output.complete = false;
    output.headline.noncompliant = None;
    output.headline.compliant = None;
    output.headline.compliant_percent = None;
    let doc = document(REPORTER, reporter_metrics(&output));
    check_emf(&doc).expect("valid EMF");
    assert_eq!(doc[names::REPORT_COMPLETE], 0.0);
    for name in [
        names::NON_COMPLIANT,
        names::REPORT_COMPLIANT,
        names::COMPLIANT_PERCENT,
    ] {
        assert!(doc.get(name).is_none(), "{name} is unknown: {doc}");
        assert!(!declared(&doc).contains(name));
    }
    assert_eq!(doc[names::UNMANAGED], 1.0);
}

#[test]
fn given_broken_documents_then_the_check_names_what_is_wrong() {
    let good = document(REPORTER, reporter_metrics(&report_output()));
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove(names::STALE);
    assert!(check_emf(&missing).expect_err("missing").contains("Stale"));
    let mut no_region = good.clone();
    no_region.as_object_mut().expect("object").remove("region");
    assert!(check_emf(&no_region)
        .expect_err("dimension")
        .contains("region"));
    let mut seconds = good;
    seconds["_aws"]["Timestamp"] = serde_json::json!(1.5);
    assert!(check_emf(&seconds).is_err());
}

#[test]
fn given_every_metric_name_then_names_are_unique_and_each_function_fits_one_directive() {
    let all: Vec<&str> = all_metrics().map(|(_, name)| name).collect();
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len());
    for list in [SCHEDULER_METRICS, DISPATCHER_METRICS, REPORTER_METRICS] {
        assert!(list.len() <= 100);
    }
}
