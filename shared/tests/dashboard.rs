//! The dashboard and alarms in `template.yaml` show only metrics the
//! functions emit: the dashboard body is valid JSON, and every `fleetops`
//! metric it or an alarm names is in `fleetops::metrics`, with the
//! `function` dimension of the function that emits it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use fleetops::metrics::{all_metrics, DIM_FUNCTION, DIM_REGION, NAMESPACE};
use serde_json::Value;

fn template() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `DashboardBody: !Sub |` block scalar, de-indented, with every `${...}`
/// placeholder replaced by a plain string.
fn dashboard_body(template: &str) -> String {
    let mut lines = template
        .lines()
        .skip_while(|l| l.trim() != "DashboardBody: !Sub |");
    let header = lines
        .next()
        .expect("a DashboardBody: !Sub | block in template.yaml");
    let header_indent = header.len() - header.trim_start().len();
    let block: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > header_indent)
        .collect();
    let indent = block
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let text: Vec<&str> = block
        .iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    let mut out = String::new();
    let mut rest = text.join("\n");
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed placeholder") + start;
        out.push('x');
        rest = rest[end + 1..].to_string();
    }
    out + &rest
}

/// (metric name, function dimension) of every `fleetops` metric in the dashboard.
fn dashboard_metrics(body: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        let Some(metrics) = widget["properties"]["metrics"].as_array() else {
            continue;
        };
        for row in metrics {
            let row = row.as_array().expect("a metric row is an array");
            let strings: Vec<&str> = row.iter().filter_map(Value::as_str).collect();
            assert!(!strings.contains(&"."), "no \".\" shorthand: {row:?}");
            if strings.first() != Some(&NAMESPACE) {
                assert!(
                    strings.is_empty() || strings[0] == "AWS/Lambda",
                    "only fleetops and AWS/Lambda metrics: {row:?}"
                );
                continue;
            }
            let dims: Vec<(&str, &str)> = strings[2..]
                .chunks(2)
                .map(|c| (c[0], c.get(1).copied().unwrap_or("")))
                .collect();
            let names: BTreeSet<&str> = dims.iter().map(|d| d.0).collect();
            assert_eq!(names, BTreeSet::from([DIM_FUNCTION, DIM_REGION]), "{row:?}");
            let function = dims.iter().find(|d| d.0 == DIM_FUNCTION).map(|d| d.1);
            found.push((strings[1].to_string(), function.unwrap_or("").to_string()));
        }
    }
    found
}

/// (metric name, function dimension) of every `fleetops` metric the alarms name.
fn alarm_metrics(template: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = template.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim().strip_prefix("MetricName: ") else {
            continue;
        };
        if !lines[i.saturating_sub(1)]
            .trim()
            .ends_with(&format!("Namespace: {NAMESPACE}"))
        {
            continue;
        }
        let function = lines[i..]
            .iter()
            .take(8)
            .position(|l| l.trim() == format!("- Name: {DIM_FUNCTION}"))
            .and_then(|at| lines.get(i + at + 1))
            .and_then(|l| l.trim().strip_prefix("Value: "))
            .expect("a function dimension");
        found.push((name.to_string(), function.to_string()));
    }
    found
}

#[test]
fn given_the_template_then_the_dashboard_is_json_and_shows_only_metrics_the_functions_emit() {
    let template = template();
    let body: Value = serde_json::from_str(&dashboard_body(&template))
        .unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}"));
    let emitted: BTreeSet<(String, String)> = all_metrics()
        .map(|(function, name)| (name.to_string(), function.to_string()))
        .collect();
    let shown = dashboard_metrics(&body);
    assert!(shown.len() >= 20, "{shown:?}");
    for metric in &shown {
        assert!(
            emitted.contains(metric),
            "the dashboard shows {metric:?}, which no function emits"
        );
    }
    let functions: BTreeSet<&str> = shown.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(
        functions.len(),
        3,
        "every function has a widget: {functions:?}"
    );
    let alarms = alarm_metrics(&template);
    for metric in [
        "InstancesFailed",
        "PatchErrors",
        "LifecycleAbandon",
        "ReportComplete",
    ] {
        assert!(
            alarms.iter().any(|a| a.0 == metric),
            "an alarm on {metric}: {alarms:?}"
        );
    }
    for metric in &alarms {
        assert!(
            emitted.contains(metric),
            "an alarm watches {metric:?}, which no function emits"
        );
    }
}

#[test]
fn given_a_dashboard_naming_an_unknown_metric_then_the_check_finds_it() {
    let body: Value = serde_json::from_str(
        r#"{"widgets": [{"properties": {"metrics": [["fleetops", "InstancesStoped", "function", "instance-scheduler", "region", "x"]]}}]}"#,
    )
    .expect("json");
    let emitted: BTreeSet<(String, String)> = all_metrics()
        .map(|(function, name)| (name.to_string(), function.to_string()))
        .collect();
    let shown = dashboard_metrics(&body);
    assert_eq!(shown.len(), 1);
    assert!(!emitted.contains(&shown[0]));
}
