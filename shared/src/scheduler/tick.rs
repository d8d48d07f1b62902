//! One scheduler tick against AWS: read the schedules and the tagged fleet,
//! plan, act (unless dry run), and summarise.

use std::collections::BTreeMap;

use futures::future::join_all;
use futures::StreamExt;
use serde::Serialize;

use super::ec2::{change_state_until, record_applied, remove_tag, StateChange};
use super::patching::{hold_for_patching, instances_patching, stops_in};
use super::plan::{
    plan_tick, Action, Failed, PlannedAction, Skipped, TickPlan, Warning, APPLIED_TAG,
};
use super::read::{read_fleet, DescribeError};
use super::settings::{SchedulerSettings, TickRequest};
use crate::schedule::{parse_schedules, ConfigError, Schedules};
use crate::ssm::{get_parameter, ParameterError};
use crate::tags::WOKEN_TAG;

/// An EC2 client for one of the regions the scheduler acts on.
#[derive(Clone, Debug)]
pub struct RegionClient {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    /// For the patch commands in progress in the region.
    pub ssm: aws_sdk_ssm::Client,
}

impl RegionClient {
    /// The clients of `region`, from the default chain's configuration.
    pub fn new(sdk_config: &aws_config::SdkConfig, region: &str) -> Self {
        let region_name = aws_config::Region::new(region.to_string());
        Self {
            region: region.to_string(),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(sdk_config)
                    .region(region_name.clone())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(sdk_config)
                    .region(region_name)
                    .build(),
            ),
        }
    }
}

/// The invocation's result, as the contract spells it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickSummary {
    pub time: String,
    pub dry_run: bool,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
    /// `ScheduleOverride` tags whose `until` has passed (remove them at leisure).
    pub expired_overrides: Vec<String>,
    /// What the user should know that is not a failed action: for example a
    /// transition marker that could not be written.
    pub warnings: Vec<Warning>,
}

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Parameter(#[from] ParameterError),
    #[error("schedules parameter {parameter}: {source}")]
    Config {
        parameter: String,
        #[source]
        source: ConfigError,
    },
    /// Regions whose fleet could not be read; the others were handled.
    #[error("{} region(s) could not be read, the rest was handled: {}", .failures.len(), .failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Regions {
        failures: Vec<DescribeError>,
        summary: Box<TickSummary>,
    },
}

/// Runs one tick with the schedules document of `SCHEDULES_PARAMETER`. A
/// missing or unreadable schedules document fails before anything is read
/// from or done to EC2.
pub async fn run_tick(
    ssm: &aws_sdk_ssm::Client,
    regions: &[RegionClient],
    settings: &SchedulerSettings,
    request: TickRequest,
) -> Result<TickSummary, TickError> {
    let schedules = read_schedules(ssm, settings).await?;
    run_tick_with_schedules(&schedules, regions, settings, request).await
}

/// The schedules document of `SCHEDULES_PARAMETER`, parsed: a missing or
/// unreadable document is an error, and nothing is read from or done to EC2.
pub async fn read_schedules(
    ssm: &aws_sdk_ssm::Client,
    settings: &SchedulerSettings,
) -> Result<Schedules, TickError> {
    let document = get_parameter(ssm, &settings.schedules_parameter).await?;
    parse_schedules(&document).map_err(|source| TickError::Config {
        parameter: settings.schedules_parameter.clone(),
        source,
    })
}

/// Runs one tick with schedules already read (`fleetops plan --file` passes
/// a local document; with `dry_run` nothing is changed). `settings`'
/// `schedules_parameter` is not read.
pub async fn run_tick_with_schedules(
    schedules: &Schedules,
    regions: &[RegionClient],
    settings: &SchedulerSettings,
    request: TickRequest,
) -> Result<TickSummary, TickError> {
    for invalid in schedules.errors() {
        tracing::warn!(schedule = %invalid.schedule, field = %invalid.field, problem = %invalid.problem, "invalid schedule; its instances are skipped");
    }

    let reads = join_all(regions.iter().map(|r| {
        read_fleet(
            &r.ec2,
            &r.region,
            &settings.schedule_tag,
            schedules,
            request.now,
            request.memory,
        )
    }))
    .await;
    let mut instances = Vec::new();
    let mut failures = Vec::new();
    for read in reads {
        match read {
            Ok(found) => {
                tracing::info!(
                    tagged = found.plan.tagged,
                    read_in_full = found.instances.len(),
                    by_id = found.plan.by_id,
                    queries = found.plan.early.len() + found.plan.reads.len(),
                    "fleet read"
                );
                instances.extend(found.instances);
            }
            Err(error) => {
                tracing::error!(region = %error.region, error = %error, "could not read the fleet of a region");
                failures.push(error);
            }
        }
    }

    let mut plan = plan_tick(&instances, schedules, &settings.schedule_tag, request.now);
    // Patching comes first: read only where the tick would stop something.
    let holding = regions.iter().filter(|r| stops_in(&plan, &r.region));
    let patching = join_all(holding.map(|r| async move {
        (
            r.region.clone(),
            instances_patching(&r.ssm, &r.region).await,
        )
    }))
    .await;
    for (region, read) in &patching {
        if let Err(error) = read {
            tracing::warn!(region = %region, error = %error, "patch commands could not be read; no stop in this region");
        }
        hold_for_patching(&mut plan, region, read.as_ref());
    }
    let dry_run = request.dry_run || settings.dry_run;
    let mut summary = TickSummary {
        time: request.now.to_string(),
        dry_run,
        skipped: plan.skipped.clone(),
        failed: plan.failed.clone(),
        expired_overrides: plan.expired_overrides.clone(),
        warnings: plan.warnings.clone(),
        ..TickSummary::default()
    };
    for warning in &plan.warnings {
        tracing::warn!(instance_id = %warning.instance_id, action = "mark", result = "warning", reason = %warning.reason);
    }
    for skipped in &plan.skipped {
        tracing::info!(instance_id = %skipped.instance_id, action = "skip", result = "skipped", reason = %skipped.reason);
    }
    for failed in &plan.failed {
        tracing::warn!(instance_id = %failed.instance_id, action = "start", result = "failed", error = %failed.error);
    }

    if dry_run {
        for action in &plan.actions {
            let (name, list) = match action.action {
                Action::Start => ("start", &mut summary.started),
                Action::Stop { .. } => ("stop", &mut summary.stopped),
            };
            tracing::info!(instance_id = %action.instance_id, action = name, result = "dry-run");
            list.push(action.instance_id.clone());
        }
    } else {
        let outcomes = join_all(
            regions
                .iter()
                .map(|r| apply_in_region(r, &plan, request.act_until)),
        )
        .await;
        for outcome in outcomes {
            summary.started.extend(outcome.started);
            summary.stopped.extend(outcome.stopped);
            summary.failed.extend(outcome.failed);
            summary.warnings.extend(outcome.warnings);
        }
    }
    summary.started.sort();
    summary.stopped.sort();
    summary
        .skipped
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    summary
        .failed
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    summary
        .warnings
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    summary.expired_overrides.sort();
    tracing::info!(
        time = %summary.time,
        dry_run,
        started = summary.started.len(),
        stopped = summary.stopped.len(),
        skipped = summary.skipped.len(),
        failed = summary.failed.len(),
        warnings = summary.warnings.len(),
        expired_overrides = summary.expired_overrides.len(),
        "tick done"
    );
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(TickError::Regions {
            failures,
            summary: Box::new(summary),
        })
    }
}

#[derive(Default)]
struct RegionOutcome {
    started: Vec<String>,
    stopped: Vec<String>,
    failed: Vec<Failed>,
    warnings: Vec<Warning>,
}

async fn apply_in_region(
    region: &RegionClient,
    plan: &TickPlan,
    act_until: Option<std::time::Instant>,
) -> RegionOutcome {
    let mut outcome = RegionOutcome::default();
    // Instances that reached their transition's state, by marker value.
    let mut to_mark: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mark in plan.marks.iter().filter(|m| m.region == region.region) {
        to_mark
            .entry(mark.applied.tag_value())
            .or_default()
            .push(mark.instance_id.clone());
    }

    let changes = [
        (StateChange::Start, "start"),
        (StateChange::Stop { hibernate: false }, "stop"),
        (StateChange::Stop { hibernate: true }, "hibernate"),
    ];
    let jobs: Vec<(StateChange, &str, Vec<&PlannedAction>)> = changes
        .into_iter()
        .map(|(change, name)| {
            let wanted = |a: &Action| match (a, change) {
                (Action::Start, StateChange::Start) => true,
                (Action::Stop { hibernate }, StateChange::Stop { hibernate: h }) => *hibernate == h,
                _ => false,
            };
            let actions = plan
                .actions
                .iter()
                .filter(|a| a.region == region.region && wanted(&a.action))
                .collect();
            (change, name, actions)
        })
        .filter(|(_, _, actions): &(_, _, Vec<_>)| !actions.is_empty())
        .collect();
    tracing::info!(
        region = %region.region,
        act_for_ms = act_until.map(|t| t.saturating_duration_since(std::time::Instant::now()).as_millis()),
        "acting"
    );
    // Starts and stops are independent: sent concurrently.
    let results = join_all(jobs.iter().map(|(change, _, actions)| {
        let ids: Vec<String> = actions.iter().map(|a| a.instance_id.clone()).collect();
        async move { change_state_until(&region.ec2, *change, &ids, act_until).await }
    }))
    .await;
    for ((change, name, actions), result) in jobs.into_iter().zip(results) {
        for id in &result.done {
            tracing::info!(instance_id = %id, region = %region.region, action = name, result = "ok");
        }
        for (id, error) in &result.failed {
            tracing::warn!(instance_id = %id, region = %region.region, action = name, result = "failed", error = %error);
            outcome.failed.push(Failed {
                instance_id: id.clone(),
                error: format!("{name} failed: {error}"),
            });
        }
        let done: std::collections::HashSet<&String> = result.done.iter().collect();
        for action in actions.iter().filter(|a| done.contains(&a.instance_id)) {
            if let Some(applied) = &action.applied {
                to_mark
                    .entry(applied.tag_value())
                    .or_default()
                    .push(action.instance_id.clone());
            }
        }
        match change {
            StateChange::Start => outcome.started.extend(result.done),
            StateChange::Stop { .. } => outcome.stopped.extend(result.done),
        }
    }

    // A closed patch window's tag goes once the instance is in its schedule's
    // state (not when its stop was held back or failed: the next tick again).
    let unsettled: std::collections::HashSet<&str> = plan
        .skipped
        .iter()
        .map(|s| s.instance_id.as_str())
        .chain(outcome.failed.iter().map(|f| f.instance_id.as_str()))
        .collect();
    let settled: Vec<String> = plan
        .wake_ends
        .iter()
        .filter(|w| w.region == region.region && !unsettled.contains(w.instance_id.as_str()))
        .map(|w| w.instance_id.clone())
        .collect();
    let mut tag_failures = remove_tag(&region.ec2, WOKEN_TAG, &settled).await;
    // One CreateTags per marker value (per schedule and transition), a few at a time.
    let mark_failures: Vec<Vec<(String, String)>> = futures::stream::iter(to_mark)
        .map(|(applied, ids)| async move {
            record_applied(&region.ec2, APPLIED_TAG, &applied, &ids).await
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for failures in mark_failures {
        for (id, error) in failures {
            // The instance is in its state; only the marker is missing. In
            // transition-only mode that means the next tick applies the same
            // transition again (a hand start undone): the user must know.
            tracing::warn!(instance_id = %id, action = "mark", result = "failed", error = %error);
            outcome.warnings.push(Warning {
                instance_id: id,
                reason: format!("the transition marker {APPLIED_TAG} could not be written ({error}); a transition-only schedule applies the same transition again at the next tick"),
            });
        }
    }
    for (id, error) in tag_failures.drain(..) {
        tracing::warn!(instance_id = %id, action = "untag", result = "failed", error = %error);
        outcome.warnings.push(Warning {
            instance_id: id,
            reason: format!("its patch window has closed, but the tag {WOKEN_TAG} could not be removed ({error}); the next tick tries again"),
        });
    }
    outcome
}
