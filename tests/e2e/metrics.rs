//! Metrics end to end: the EMF lines the real binaries print after each
//! invocation, parsed from their stdout. Each must be a valid Embedded Metric
//! Format document (the `_aws.CloudWatchMetrics` block, every declared metric
//! and dimension present), and its counts must equal the invocation's output.
//! The checks here are written from the EMF specification, not from the
//! code that writes the lines.

use std::collections::BTreeSet;

use fleetops_e2e::LambdaFunction;
use serde_json::{json, Value};

/// The EMF documents among the function's stdout lines so far.
fn emf_lines(function: &LambdaFunction) -> Vec<Value> {
    function
        .logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// Checks `doc` against the EMF specification; returns the declared metric names.
fn valid_emf(doc: &Value, function: &str) -> BTreeSet<String> {
    let aws = &doc["_aws"];
    assert!(aws["Timestamp"].is_u64(), "Timestamp in ms: {doc}");
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let at = aws["Timestamp"].as_i64().unwrap_or_default();
    assert!(
        (now_ms - at).abs() < 600_000,
        "Timestamp is milliseconds of now: {at}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
    assert_eq!(directives.len(), 1, "{doc}");
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], json!("fleetops"));
    assert_eq!(directive["Dimensions"], json!([["function", "region"]]));
    assert_eq!(doc["function"], json!(function));
    assert_eq!(doc["region"], json!("us-east-1"));
    let mut names = BTreeSet::new();
    for metric in directive["Metrics"].as_array().expect("metrics") {
        let name = metric["Name"].as_str().expect("Name").to_string();
        assert!(
            matches!(metric["Unit"].as_str(), Some("Count" | "Percent")),
            "{metric}"
        );
        assert!(doc[&name].is_number(), "{name} declared but absent: {doc}");
        names.insert(name);
    }
    names
}

fn len(output: &Value, key: &str) -> f64 {
    output[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {output}"))
        .len() as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_evening_tick_then_the_scheduler_prints_one_emf_line_counting_what_it_did() {
    let fleet = crate::scheduler::Fleet::new().await;
    fleet
        .put_schedules(
            r#"{"schedules": {
              "office": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}], "enforced": true},
              "evening": {"timezone": "UTC", "periods": [{"begin": "18:00", "end": "23:00"}], "enforced": true}
            }}"#,
        )
        .await;
    let office_1 = fleet.launch(&[("Schedule", "office")]).await;
    let office_2 = fleet.launch(&[("Schedule", "office")]).await;
    let evening = fleet.launch(&[("Schedule", "evening")]).await;
    fleet.set_state(&evening, "stopped");
    fleet.launch(&[("Schedule", "ofice")]).await;
    fleet
        .launch(&[("Schedule", "office"), ("ScheduleOverride", "skip")])
        .await;
    fleet
        .launch(&[("Schedule", "office"), ("aws:autoscaling:groupName", "web")])
        .await;
    let function = fleet.start_function(&[]);

    // Thursday 18:05 UTC.
    let output = function
        .invoke(&crate::scheduler::tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    let lines = emf_lines(&function);
    assert_eq!(lines.len(), 1, "one EMF line per invocation: {lines:?}");
    let doc = &lines[0];
    let declared = valid_emf(doc, "instance-scheduler");
    for name in [
        "InstancesStarted",
        "InstancesStopped",
        "InstancesFailed",
        "SkippedSchedule",
        "SkippedOverride",
        "SkippedAutoScaling",
        "SkippedPatching",
    ] {
        assert!(declared.contains(name), "{name} in {declared:?}");
    }
    assert_eq!(doc["InstancesStarted"], json!(len(&output, "started")));
    assert_eq!(doc["InstancesStopped"], json!(len(&output, "stopped")));
    assert_eq!(doc["InstancesFailed"], json!(len(&output, "failed")));
    let skipped: f64 = declared
        .iter()
        .filter(|n| n.starts_with("Skipped"))
        .map(|n| doc[n].as_f64().unwrap_or_default())
        .sum();
    assert_eq!(skipped, len(&output, "skipped"), "{output}");
    // And the fleet: what the output says happened.
    let stopped = crate::scheduler::ids(&output, "stopped");
    assert!(
        stopped.contains(&office_1) && stopped.contains(&office_2),
        "{output}"
    );
    assert_eq!(crate::scheduler::ids(&output, "started"), [evening]);
    for name in ["SkippedSchedule", "SkippedOverride", "SkippedAutoScaling"] {
        assert_eq!(doc[name], json!(1.0), "{name}: {doc}");
    }

    // A dry run changes nothing and counts nothing.
    let mut dry = crate::scheduler::tick_at("2026-11-26T18:10:00Z");
    dry["dry_run"] = json!(true);
    function.invoke(&dry).output();
    assert_eq!(emf_lines(&function).len(), 1, "no line for a dry run");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_scale_out_then_the_dispatcher_counts_the_command_and_the_lifecycle_result() {
    let fleet = crate::patch::Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));

    let launched = function.invoke(&fleet.launch_event(&id)).output().clone();
    let command = crate::patch::command_id(&launched);
    let finished = function
        .invoke(&fleet.status_event(&command))
        .output()
        .clone();

    let lines = emf_lines(&function);
    assert_eq!(lines.len(), 2, "one EMF line per invocation: {lines:?}");
    for (doc, output) in lines.iter().zip([&launched, &finished]) {
        let declared = valid_emf(doc, "patch-dispatcher");
        for name in [
            "PatchCommandsSent",
            "LifecycleContinue",
            "LifecycleAbandon",
            "InstancesWoken",
        ] {
            assert!(declared.contains(name), "{name} in {declared:?}");
        }
        assert_eq!(doc["PatchCommandsSent"], json!(len(output, "commands")));
        assert_eq!(doc["InstancesWoken"], json!(len(output, "woken")));
        let result = |r: &str| {
            output["lifecycle_actions"].as_array().map_or(0, |a| {
                a.iter()
                    .filter(|x| x["result"] == json!(r) && x["applied"] == json!(true))
                    .count()
            }) as f64
        };
        assert_eq!(doc["LifecycleContinue"], json!(result("CONTINUE")));
        assert_eq!(doc["LifecycleAbandon"], json!(result("ABANDON")));
    }
    assert_eq!(lines[0]["PatchCommandsSent"], json!(1.0));
    assert_eq!(lines[1]["LifecycleContinue"], json!(1.0), "{finished}");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_the_nightly_report_then_the_reporter_emits_its_totals_and_completeness() {
    let fleet = crate::report::Fleet::new().await;
    fleet.seed().await;
    let (topic_arn, _queue) = fleet.topic_with_queue().await;
    let function = fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn)]);
    let output = function
        .invoke(&crate::report::nightly_now())
        .output()
        .clone();

    let lines = emf_lines(&function);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let doc = &lines[0];
    let declared = valid_emf(doc, "compliance-reporter");
    let headline = &output["headline"];
    for (metric, field) in [
        ("NonCompliant", "noncompliant"),
        ("Unmanaged", "unmanaged"),
        ("Stale", "stale"),
        ("StoppedStale", "stopped_stale"),
        ("MissingCritical", "critical"),
        ("ReportRunning", "running"),
        ("ReportCompliant", "compliant"),
        ("CompliantPercent", "compliant_percent"),
    ] {
        assert!(declared.contains(metric), "{metric} in {declared:?}");
        assert_eq!(
            doc[metric].as_f64(),
            headline[field].as_u64().map(|n| n as f64),
            "{metric}: {doc}\n{output}"
        );
    }
    assert_eq!(
        doc["NonCompliant"].as_f64(),
        output["noncompliant"].as_u64().map(|n| n as f64)
    );
    assert_eq!(
        doc["ReportComplete"],
        json!(if output["complete"] == json!(true) {
            1.0
        } else {
            0.0
        })
    );
    // The seeded fleet: 3 non-compliant, 1 unmanaged, 1 stale, 1 stopped with a stale scan.
    assert_eq!(
        (
            doc["NonCompliant"].clone(),
            doc["Unmanaged"].clone(),
            doc["Stale"].clone(),
            doc["StoppedStale"].clone()
        ),
        (json!(3.0), json!(1.0), json!(1.0), json!(1.0)),
        "{doc}"
    );
}
