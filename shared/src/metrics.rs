//! Metrics without an API call: after each invocation a function prints one
//! CloudWatch Embedded Metric Format (EMF) document as its own stdout line,
//! and CloudWatch Logs turns it into metrics (namespace [`NAMESPACE`],
//! dimensions [`DIM_FUNCTION`] and [`DIM_REGION`]).
//!
//! The format, as specified in "Specification: Embedded metric format"
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
//! the root object has an `_aws` member holding `Timestamp` (milliseconds
//! since the epoch) and `CloudWatchMetrics`, an array of metric directives
//! `{"Namespace", "Dimensions": [[dimension names]], "Metrics": [{"Name", "Unit"}]}`
//! (at most 100 metrics per directive, 30 dimensions per set); every
//! dimension and metric a directive names MUST be a member of the root
//! object, a metric's value a number. Pure functions here; the mains print.
//!
//! A dry run emits nothing: its counts are of actions that did not happen.
//! A count that is unknown (its data could not be read) is left out of the
//! document, never sent as 0.

use serde_json::{json, Map, Value};

use crate::patch::{LifecycleResult, Summary as PatchSummary};
use crate::report::ReportOutput;
use crate::scheduler::{TickSummary, OVERRIDE_TAG};

pub const NAMESPACE: &str = "fleetops";
pub const DIM_FUNCTION: &str = "function";
pub const DIM_REGION: &str = "region";
/// Over several accounts, each account-region also gets its own line with
/// this dimension (the invocation's line keeps function and region only, so
/// the dashboard's totals see every unit).
pub const DIM_ACCOUNT: &str = "account";

pub const SCHEDULER: &str = "instance-scheduler";
pub const DISPATCHER: &str = "patch-dispatcher";
pub const REPORTER: &str = "compliance-reporter";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Percent,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Percent => "Percent",
        }
    }
}

/// One metric value of an invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
}

fn count(name: &'static str, n: usize) -> Metric {
    Metric {
        name,
        unit: Unit::Count,
        value: n as f64,
    }
}

/// Metric names, one place for the code and the template's dashboard and alarms.
pub mod names {
    pub const INSTANCES_STARTED: &str = "InstancesStarted";
    pub const INSTANCES_STOPPED: &str = "InstancesStopped";
    pub const INSTANCES_FAILED: &str = "InstancesFailed";
    pub const SKIPPED_PATCHING: &str = "SkippedPatching";
    pub const SKIPPED_SCHEDULE: &str = "SkippedSchedule";
    pub const SKIPPED_OVERRIDE: &str = "SkippedOverride";
    pub const SKIPPED_TRANSITIONAL: &str = "SkippedTransitional";
    pub const SKIPPED_AUTO_SCALING: &str = "SkippedAutoScaling";
    pub const SKIPPED_SPOT: &str = "SkippedSpot";
    pub const SKIPPED_OTHER: &str = "SkippedOther";
    pub const REGIONS_FAILED: &str = "RegionsFailed";

    pub const COMMANDS_SENT: &str = "PatchCommandsSent";
    pub const LIFECYCLE_CONTINUE: &str = "LifecycleContinue";
    pub const LIFECYCLE_ABANDON: &str = "LifecycleAbandon";
    pub const LIFECYCLE_NOT_APPLIED: &str = "LifecycleNotApplied";
    pub const INSTANCES_WOKEN: &str = "InstancesWoken";
    pub const PATCH_SKIPPED: &str = "PatchSkipped";
    pub const PATCH_ERRORS: &str = "PatchErrors";

    pub const REPORT_COMPLETE: &str = "ReportComplete";
    pub const REPORT_RUNNING: &str = "ReportRunning";
    pub const REPORT_COMPLIANT: &str = "ReportCompliant";
    pub const COMPLIANT_PERCENT: &str = "CompliantPercent";
    pub const NON_COMPLIANT: &str = "NonCompliant";
    pub const MISSING_CRITICAL: &str = "MissingCritical";
    pub const UNMANAGED: &str = "Unmanaged";
    pub const STALE: &str = "Stale";
    pub const STOPPED_STALE: &str = "StoppedStale";
}

use names::*;

pub const SCHEDULER_METRICS: &[&str] = &[
    INSTANCES_STARTED,
    INSTANCES_STOPPED,
    INSTANCES_FAILED,
    SKIPPED_PATCHING,
    SKIPPED_SCHEDULE,
    SKIPPED_OVERRIDE,
    SKIPPED_TRANSITIONAL,
    SKIPPED_AUTO_SCALING,
    SKIPPED_SPOT,
    SKIPPED_OTHER,
    REGIONS_FAILED,
];
pub const DISPATCHER_METRICS: &[&str] = &[
    COMMANDS_SENT,
    LIFECYCLE_CONTINUE,
    LIFECYCLE_ABANDON,
    LIFECYCLE_NOT_APPLIED,
    INSTANCES_WOKEN,
    PATCH_SKIPPED,
    PATCH_ERRORS,
];
pub const REPORTER_METRICS: &[&str] = &[
    REPORT_COMPLETE,
    REPORT_RUNNING,
    REPORT_COMPLIANT,
    COMPLIANT_PERCENT,
    NON_COMPLIANT,
    MISSING_CRITICAL,
    UNMANAGED,
    STALE,
    STOPPED_STALE,
];

/// Every metric a function may emit, with the function that emits it.
pub fn all_metrics() -> impl Iterator<Item = (&'static str, &'static str)> {
    let of = |function: &'static str, list: &'static [&'static str]| {
        list.iter().map(move |name| (function, *name))
    };
    of(SCHEDULER, SCHEDULER_METRICS)
        .chain(of(DISPATCHER, DISPATCHER_METRICS))
        .chain(of(REPORTER, REPORTER_METRICS))
}

/// The class of a scheduler skip, from its reason (see `scheduler::plan`).
pub fn skip_class(reason: &str) -> &'static str {
    if reason.contains("patching") {
        SKIPPED_PATCHING
    } else if reason.starts_with("unknown schedule") || reason.starts_with("invalid schedule") {
        SKIPPED_SCHEDULE
    } else if reason.contains(OVERRIDE_TAG) {
        SKIPPED_OVERRIDE
    } else if reason.contains("transitional state") {
        SKIPPED_TRANSITIONAL
    } else if reason.starts_with("member of Auto Scaling group") {
        SKIPPED_AUTO_SCALING
    } else if reason.starts_with("spot instance") {
        SKIPPED_SPOT
    } else {
        SKIPPED_OTHER
    }
}

/// The scheduler's metrics of one tick (`regions_failed`: regions whose
/// fleet could not be read); none in a dry run.
pub fn scheduler_metrics(summary: &TickSummary, regions_failed: usize) -> Option<Vec<Metric>> {
    if summary.dry_run {
        return None;
    }
    let mut metrics = vec![
        count(INSTANCES_STARTED, summary.started.len()),
        count(INSTANCES_STOPPED, summary.stopped.len()),
        count(INSTANCES_FAILED, summary.failed.len()),
    ];
    for class in &SCHEDULER_METRICS[3..10] {
        let n = summary
            .skipped
            .iter()
            .filter(|s| skip_class(&s.reason) == *class)
            .count();
        metrics.push(count(class, n));
    }
    metrics.push(count(REGIONS_FAILED, regions_failed));
    Some(metrics)
}

/// The dispatcher's metrics of one invocation; none in a dry run.
pub fn dispatcher_metrics(summary: &PatchSummary) -> Option<Vec<Metric>> {
    if summary.dry_run {
        return None;
    }
    let applied = |result: LifecycleResult| {
        summary
            .lifecycle_actions
            .iter()
            .filter(|a| a.applied && a.result == result)
            .count()
    };
    Some(vec![
        count(COMMANDS_SENT, summary.commands.len()),
        count(LIFECYCLE_CONTINUE, applied(LifecycleResult::Continue)),
        count(LIFECYCLE_ABANDON, applied(LifecycleResult::Abandon)),
        count(
            LIFECYCLE_NOT_APPLIED,
            summary
                .lifecycle_actions
                .iter()
                .filter(|a| !a.applied)
                .count(),
        ),
        count(INSTANCES_WOKEN, summary.woken.len()),
        count(PATCH_SKIPPED, summary.skipped.len()),
        count(PATCH_ERRORS, summary.errors.len()),
    ])
}

/// The reporter's metrics of one report; none in a dry run. Unknown counts
/// are left out.
pub fn reporter_metrics(output: &ReportOutput) -> Option<Vec<Metric>> {
    if output.dry_run {
        return None;
    }
    let h = &output.headline;
    let mut metrics = vec![count(REPORT_COMPLETE, usize::from(output.complete))];
    for (name, value) in [
        (REPORT_RUNNING, h.running),
        (REPORT_COMPLIANT, h.compliant),
        (NON_COMPLIANT, h.noncompliant),
        (MISSING_CRITICAL, h.critical),
        (UNMANAGED, h.unmanaged),
        (STALE, h.stale),
        (STOPPED_STALE, h.stopped_stale),
    ] {
        if let Some(n) = value {
            metrics.push(Metric {
                name,
                unit: Unit::Count,
                value: n as f64,
            });
        }
    }
    if let Some(pct) = h.compliant_percent {
        metrics.push(Metric {
            name: COMPLIANT_PERCENT,
            unit: Unit::Percent,
            value: pct as f64,
        });
    }
    Some(metrics)
}

/// The EMF document of `metrics` for `function` in `region` at `at`.
pub fn emf_document(
    function: &str,
    region: &str,
    at: jiff::Timestamp,
    metrics: &[Metric],
) -> Value {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIM_FUNCTION, DIM_REGION]],
                "Metrics": metrics
                    .iter()
                    .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert(DIM_FUNCTION.into(), json!(function));
    root.insert(DIM_REGION.into(), json!(region));
    for m in metrics {
        root.insert(m.name.into(), json!(m.value));
    }
    Value::Object(root)
}

/// The line of one account-region's metrics (dimensions function, region and
/// account), or none (dry run).
pub fn emf_unit_line(
    function: &str,
    account: &str,
    region: &str,
    at: jiff::Timestamp,
    metrics: Option<Vec<Metric>>,
) -> Option<String> {
    metrics.map(|m| {
        let mut doc = emf_document(function, region, at, &m);
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
            json!([[DIM_FUNCTION, DIM_REGION, DIM_ACCOUNT]]);
        doc[DIM_ACCOUNT] = json!(account);
        doc.to_string()
    })
}

/// The stdout line of `metrics`, or none (dry run: nothing to print).
pub fn emf_line(
    function: &str,
    region: &str,
    at: jiff::Timestamp,
    metrics: Option<Vec<Metric>>,
) -> Option<String> {
    metrics.map(|m| emf_document(function, region, at, &m).to_string())
}

/// What is wrong with `document` as an EMF document of fleetops, by the
/// specification's rules (for tests, and for anyone checking a log line).
pub fn check_emf(document: &Value) -> Result<(), String> {
    let root = document.as_object().ok_or("not a JSON object")?;
    let aws = root.get("_aws").ok_or("no _aws member")?;
    if !aws.get("Timestamp").is_some_and(Value::is_i64) {
        return Err("_aws.Timestamp is not a whole number of milliseconds".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("_aws.CloudWatchMetrics is not a non-empty array")?;
    for directive in directives {
        if directive.get("Namespace").and_then(Value::as_str) != Some(NAMESPACE) {
            return Err(format!("Namespace is not {NAMESPACE}: {directive}"));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions is not an array")?;
        for set in sets {
            let names = set.as_array().ok_or("a dimension set is not an array")?;
            if names.len() > 30 {
                return Err("more than 30 dimensions in a set".into());
            }
            for name in names {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                if !root.get(name).is_some_and(Value::is_string) {
                    return Err(format!(
                        "dimension {name} is not a string member of the root"
                    ));
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics is not an array")?;
        if metrics.len() > 100 {
            return Err("more than 100 metrics in a directive".into());
        }
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric without Name")?;
            if !matches!(
                metric.get("Unit").and_then(Value::as_str),
                Some("Count" | "Percent")
            ) {
                return Err(format!("metric {name} has no known Unit"));
            }
            if !root.get(name).is_some_and(Value::is_number) {
                return Err(format!(
                    "metric {name} is declared but not a number member of the root"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
