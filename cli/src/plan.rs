//! `fleetops plan`: the scheduler's own tick, dry run, against the fleet of
//! the current credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fleetops::accounts::{read_identity, resolve_accounts, units, AccountConfigs, AccountSettings};
use fleetops::aws::{error_text, load_sdk_config};
use fleetops::scheduler::read::describe_scheduled_instances;
use fleetops::scheduler::{
    read_schedules, run_units, RegionClient, SchedulerSettings, TickRequest, TickSummary,
};

/// The role session name in spoke accounts' CloudTrail.
const SESSION_NAME: &str = "fleetops-cli-plan";
use jiff::Timestamp;

use crate::output::{judge, plural, print, read_document, report, Verdict};
use crate::{Failure, EXIT_OK, EXIT_PROBLEM};

pub async fn run(
    file: Option<&Path>,
    at: Option<Timestamp>,
    regions: &[String],
    json: bool,
) -> Result<u8, Failure> {
    // The document first: a broken FILE fails before any AWS call.
    let local = match file {
        None => None,
        Some(path) => {
            let document = read_document(path)?;
            let verdict = judge(&document);
            match verdict {
                Verdict::Broken(_) => {
                    eprint!("{}", report(&document, &verdict));
                    return Ok(EXIT_PROBLEM);
                }
                Verdict::Invalid { schedules, errors } => {
                    for error in &errors {
                        eprintln!(
                            "fleetops: {}: {error} (its instances are skipped)",
                            document.label
                        );
                    }
                    Some((document.label, schedules))
                }
                Verdict::Valid(schedules) => Some((document.label, schedules)),
            }
        }
    };

    let sdk_config = load_sdk_config().await;
    let settings = settings(&sdk_config, regions)?;
    let region_clients = region_clients(&sdk_config, &settings.regions);
    let request = TickRequest {
        now: at.unwrap_or_else(Timestamp::now),
        dry_run: true,
        act_until: None,
        memory: None,
    };
    let ssm = aws_sdk_ssm::Client::new(&sdk_config);
    let (source, read) = match &local {
        Some((label, _)) => (format!("file {label}"), None),
        None => (
            format!("Parameter Store {}", settings.schedules_parameter),
            Some(
                read_schedules(&ssm, &settings)
                    .await
                    .map_err(|error| Failure::problem(error_text(&error)))?,
            ),
        ),
    };
    let schedules = match (&local, &read) {
        (Some((_, schedules)), _) => schedules,
        (None, Some(schedules)) => schedules,
        (None, None) => return Err(Failure::problem("no schedules")),
    };
    // Every account and region the Lambda would handle (ACCOUNTS, REGIONS).
    let accounts = AccountSettings::from_env(|name| std::env::var(name).ok())
        .map_err(|error| Failure::problem(error.to_string()))?;
    let identity = read_identity(&sdk_config)
        .await
        .map_err(|error| Failure::problem(error_text(&error)))?;
    let configs = AccountConfigs::new(
        sdk_config.clone(),
        &identity,
        &accounts.spoke_role_name,
        SESSION_NAME,
    );
    let organizations = aws_sdk_organizations::Client::new(&sdk_config);
    let ids = resolve_accounts(&accounts.accounts, configs.own_account(), &organizations)
        .await
        .map_err(|error| Failure::problem(error_text(&error)))?;
    let fleet_summary = run_units(
        schedules,
        &units(&ids, &settings.regions),
        &configs,
        &settings,
        request,
    )
    .await;
    for unhandled in &fleet_summary.unhandled {
        eprintln!(
            "fleetops: {}/{}: {}",
            unhandled.account, unhandled.region, unhandled.reason
        );
    }
    let code = if fleet_summary.unhandled.is_empty() {
        EXIT_OK
    } else {
        EXIT_PROBLEM
    };
    let summary = fleet_summary.flattened();
    let text = if json {
        let mut text = serde_json::to_string_pretty(&fleet_summary)
            .map_err(|e| Failure::problem(format!("cannot write JSON: {e}")))?;
        text.push('\n');
        text
    } else {
        let seen = fleet(&region_clients, &settings.schedule_tag).await;
        table(&summary, &source, &settings, &seen)
    };
    print(&text)?;
    Ok(code)
}

/// The scheduler's settings from the environment, as the Lambda reads them,
/// with `--region` in place of `REGIONS`.
fn settings(
    sdk_config: &aws_config::SdkConfig,
    regions: &[String],
) -> Result<SchedulerSettings, Failure> {
    let own_region = sdk_config.region().map(ToString::to_string);
    let from_flag = regions.join(",");
    SchedulerSettings::from_env(
        |name| {
            if name == "REGIONS" && !regions.is_empty() {
                Some(from_flag.clone())
            } else {
                std::env::var(name).ok()
            }
        },
        own_region.as_deref(),
    )
    .map_err(|error| {
        if error.name == "REGIONS" && !regions.is_empty() {
            Failure::usage(format!("--region: {}", error.problem))
        } else if error.name == "REGIONS" {
            Failure::usage(
                error
                    .to_string()
                    .replace("no region: set", "no region: pass --region, or set"),
            )
        } else {
            Failure::usage(error.to_string())
        }
    })
}

/// One EC2 client per region, as the instance-scheduler builds them.
fn region_clients(sdk_config: &aws_config::SdkConfig, regions: &[String]) -> Vec<RegionClient> {
    regions
        .iter()
        .map(|region| RegionClient::new(sdk_config, region))
        .collect()
}

/// What the table shows of each instance, read after the tick (the summary
/// has ids only): region, `Name` tag, schedule tag, state.
struct Seen {
    region: String,
    name: String,
    schedule: String,
    state: String,
}

/// The tagged fleet, for the table's columns; a region that cannot be read
/// leaves its instances' columns empty (the tick already reported it).
async fn fleet(regions: &[RegionClient], tag: &str) -> BTreeMap<String, Seen> {
    let mut seen = BTreeMap::new();
    for region in regions {
        let Ok(instances) = describe_scheduled_instances(&region.ec2, &region.region, tag).await
        else {
            continue;
        };
        for instance in instances {
            let tag_value = |key: &str| instance.tags.get(key).cloned().unwrap_or_default();
            seen.insert(
                instance.instance_id.clone(),
                Seen {
                    region: instance.region.clone(),
                    name: tag_value("Name"),
                    schedule: tag_value(tag),
                    state: instance.state.name().to_string(),
                },
            );
        }
    }
    seen
}

/// The summary as a table: one row per instance the tick would act on or
/// report, then the counts.
fn table(
    summary: &TickSummary,
    source: &str,
    settings: &SchedulerSettings,
    fleet: &BTreeMap<String, Seen>,
) -> String {
    let mut rows: Vec<(&str, &str, &str)> = Vec::new();
    rows.extend(summary.started.iter().map(|id| (id.as_str(), "start", "")));
    rows.extend(summary.stopped.iter().map(|id| (id.as_str(), "stop", "")));
    rows.extend(
        summary
            .failed
            .iter()
            .map(|f| (f.instance_id.as_str(), "failed", f.error.as_str())),
    );
    rows.extend(
        summary
            .skipped
            .iter()
            .map(|s| (s.instance_id.as_str(), "skip", s.reason.as_str())),
    );
    rows.extend(summary.expired_overrides.iter().map(|id| {
        (
            id.as_str(),
            "expired",
            "its ScheduleOverride has expired: the schedule governs again (remove the tag at leisure)",
        )
    }));
    rows.extend(
        summary
            .warnings
            .iter()
            .map(|w| (w.instance_id.as_str(), "warning", w.reason.as_str())),
    );

    let mut out = format!(
        "Plan for a tick at {} (dry run: nothing is changed)\n  schedules: {source}\n  regions:   {}\n  tag:       {}\n\n",
        summary.time,
        settings.regions.join(", "),
        settings.schedule_tag,
    );
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.0).collect();
    let others = fleet
        .keys()
        .filter(|id| !listed.contains(id.as_str()))
        .count();
    if rows.is_empty() {
        out.push_str(&format!(
            "Nothing to do: no instance tagged {} would be started, stopped or skipped ({} left as they are).\n",
            settings.schedule_tag,
            plural(others, "instance", "instances"),
        ));
        return out;
    }
    let header = [
        "INSTANCE", "REGION", "NAME", "SCHEDULE", "STATE", "ACTION", "WHY",
    ];
    let mut cells: Vec<[String; 7]> = vec![header.map(String::from)];
    for (id, action, why) in &rows {
        let seen = fleet.get(*id);
        let column = |f: fn(&Seen) -> &str| {
            seen.map(f)
                .filter(|v| !v.is_empty())
                .unwrap_or("-")
                .to_string()
        };
        cells.push([
            id.to_string(),
            column(|s| &s.region),
            column(|s| &s.name),
            column(|s| &s.schedule),
            column(|s| &s.state),
            action.to_string(),
            why.to_string(),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &cells {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} to start, {} to stop, {} skipped, {} failed, {} expired overrides, {}; {}: nothing to do\n",
        summary.started.len(),
        summary.stopped.len(),
        summary.skipped.len(),
        summary.failed.len(),
        summary.expired_overrides.len(),
        plural(summary.warnings.len(), "warning", "warnings"),
        plural(others, "other tagged instance", "other tagged instances"),
    ));
    out
}
