//! One invocation: read the previous summary and the fleet, build, render,
//! store, publish, remember.

use serde::Serialize;

use futures::StreamExt;

use super::build::{build_report, Previous};
use super::fit::{fit_message, SNS_MAX_BYTES};
use super::gather::gather;
use super::headline::Headline;
use super::history::read_trend;
use super::html::render_html;
use super::org::{build_fleet_report, UnitSnapshot};
use super::publish::{
    publish, read_previous, report_keys, save_previous, store_objects, PublishFailure,
};
use super::render::{render_json, subject};
use super::settings::ReporterSettings;
use super::snapshot::FleetSnapshot;
use super::snapshot::{DataGap, SOURCE_PREVIOUS};
use super::trend::{night_of, TrendPoint};
use crate::accounts::{AccountConfigs, Unhandled, Unit};
use crate::error_text;
use crate::input::TickRequest;

/// The clients of the function's own region.
pub struct Clients {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sns: aws_sdk_sns::Client,
    pub s3: aws_sdk_s3::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Publish(#[from] PublishFailure),
}

/// The invocation's result (also logged).
#[derive(Clone, Debug, Serialize)]
pub struct ReportOutput {
    pub dry_run: bool,
    pub subject: String,
    pub message_id: Option<String>,
    /// Size of the SNS message in bytes.
    pub bytes: usize,
    /// Instances that are not terminated; null when EC2 could not be read.
    pub instances: Option<u64>,
    /// Non-compliant running instances; null when unknown (data missing).
    pub noncompliant: Option<u64>,
    pub complete: bool,
    /// What could not be read (source names).
    pub missing_data: Vec<String>,
    pub report_objects: Vec<String>,
    /// Items kept per list when the message had to be shortened.
    pub kept_per_list: Option<usize>,
    pub previous_saved: bool,
    /// The report's headline (the page's and the e-mail's first numbers).
    pub headline: Headline,
    /// Previous nights drawn in the page's trend; none when no page was stored.
    pub trend_nights: Option<usize>,
    /// Previous reports left out of the trend (`key: reason`).
    pub trend_skipped: Vec<String>,
    /// Accounts in the report's table (0: the function's own account only).
    pub accounts: usize,
    /// Account-regions that could not be read, with the reason.
    pub unhandled: Vec<Unhandled>,
}

/// Where the report reads: the function's own account and region, or every
/// account-region of `ACCOUNTS` × `REGIONS` (one report, a row per account).
pub enum Scope<'a> {
    Own,
    Units {
        configs: &'a AccountConfigs,
        units: Vec<Unit>,
    },
    /// Read already, one unit at a time through the work queue.
    Assembled {
        units: Vec<UnitSnapshot>,
        unhandled: Vec<Unhandled>,
    },
}

/// Account-regions read at once.
const UNIT_CONCURRENCY: usize = 4;

/// One account-region's snapshot, read with its account's credentials, or
/// why it could not be read.
pub async fn read_unit(configs: &AccountConfigs, unit: &Unit) -> Result<FleetSnapshot, String> {
    let config = configs
        .config(&unit.account)
        .await
        .map_err(|error| error_text(&error))?;
    let clients = crate::scheduler::RegionClient::new(&config, &unit.region);
    Ok(gather(&clients.ec2, &clients.ssm, &unit.region).await)
}

/// Every unit's snapshot, or why it could not be read.
async fn gather_units(
    configs: &AccountConfigs,
    units: &[Unit],
) -> (Vec<UnitSnapshot>, Vec<Unhandled>) {
    let results: Vec<(Unit, Result<FleetSnapshot, String>)> = futures::stream::iter(units)
        .map(|unit| async move { (unit.clone(), read_unit(configs, unit).await) })
        .buffer_unordered(UNIT_CONCURRENCY)
        .collect()
        .await;
    let mut read = Vec::new();
    let mut unhandled = Vec::new();
    for (unit, result) in results {
        match result {
            Ok(snapshot) => read.push(UnitSnapshot {
                account: unit.account,
                region: unit.region,
                snapshot,
            }),
            Err(reason) => unhandled.push(Unhandled {
                account: unit.account,
                region: unit.region,
                reason,
            }),
        }
    }
    read.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    unhandled.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    (read, unhandled)
}

pub async fn run_report(
    clients: &Clients,
    settings: &ReporterSettings,
    request: TickRequest,
    scope: Scope<'_>,
) -> Result<ReportOutput, ReportError> {
    let dry_run = settings.dry_run || request.dry_run;
    let previous = read_previous(&clients.ssm, &settings.state_parameter).await;
    let previous_gap = |error: String| DataGap {
        source: format!("{SOURCE_PREVIOUS} {}", settings.state_parameter),
        instance_ids: Vec::new(),
        error,
    };
    let (mut report, unhandled) = match scope {
        Scope::Own => {
            let mut snapshot = gather(&clients.ec2, &clients.ssm, &clients.region).await;
            let previous = previous.unwrap_or_else(|error| {
                snapshot.gaps.push(previous_gap(error_text(&error)));
                Previous::default()
            });
            let report = build_report(&snapshot, &previous, request.now, settings.stale_after_days);
            (report, Vec::new())
        }
        Scope::Units { .. } | Scope::Assembled { .. } => {
            let (mut read, unhandled) = match scope {
                Scope::Units { configs, units } => gather_units(configs, &units).await,
                Scope::Assembled { units, unhandled } => (units, unhandled),
                Scope::Own => (Vec::new(), Vec::new()),
            };
            let previous = previous.unwrap_or_else(|error| {
                if let Some(first) = read.first_mut() {
                    first.snapshot.gaps.push(previous_gap(error_text(&error)));
                }
                Previous::default()
            });
            let report = build_fleet_report(
                &read,
                &unhandled,
                &previous,
                request.now,
                settings.stale_after_days,
            );
            (report, unhandled)
        }
    };
    let data_complete = report.complete;

    let mut objects = Vec::new();
    let mut links = Vec::new();
    let mut trend_nights = None;
    let mut trend_skipped = Vec::new();
    if let (Some(bucket), false) = (&settings.bucket, dry_run) {
        let (json_key, html_key) = report_keys(request.now);
        let full_json = render_json(&report, &subject(&report), &[]).to_string();
        let tonight = TrendPoint::of(&report, &night_of(request.now));
        let trend = read_trend(&clients.s3, bucket, request.now, tonight).await;
        trend_nights = Some(trend.previous_nights());
        trend_skipped = trend
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.key, s.reason))
            .chain(
                trend
                    .listing_error
                    .iter()
                    .map(|e| format!("(listing): {e}")),
            )
            .collect();
        let html = render_html(&report, &trend);
        let stored = store_objects(
            &clients.s3,
            bucket,
            &[
                (json_key, full_json, "application/json"),
                (html_key.clone(), html, "text/html; charset=utf-8"),
            ],
        )
        .await;
        match stored {
            Ok(uris) => {
                tracing::info!(action = "store", result = "ok", objects = ?uris, "full report stored");
                links.extend(uris.iter().cloned());
                links.push(format!(
                    "https://console.aws.amazon.com/s3/object/{bucket}?region={}&prefix={html_key}",
                    clients.region
                ));
                objects = uris;
            }
            Err(error) => {
                tracing::error!(action = "store", result = "failed", error = %error_text(&error), "full report not stored");
                report.gaps.push(DataGap {
                    source: "s3:PutObject (full report not stored)".into(),
                    instance_ids: Vec::new(),
                    error: error_text(&error),
                });
            }
        }
    }

    let message = fit_message(&report, &links, SNS_MAX_BYTES);
    let mut output = ReportOutput {
        dry_run,
        subject: message.subject.clone(),
        message_id: None,
        bytes: message.bytes(),
        instances: report.totals.instances,
        noncompliant: report.totals.patch.noncompliant,
        complete: report.complete,
        missing_data: report.gaps.iter().map(|g| g.source.clone()).collect(),
        report_objects: objects,
        kept_per_list: message.kept_per_list,
        previous_saved: false,
        headline: Headline::of(&report),
        accounts: report.accounts.len(),
        unhandled,
        trend_nights,
        trend_skipped,
    };
    if dry_run {
        tracing::info!(action = "publish", result = "dry-run", subject = %output.subject, bytes = output.bytes, "report built, nothing published");
        return Ok(output);
    }
    let message_id = publish(&clients.sns, &settings.topic_arn, &message).await?;
    tracing::info!(action = "publish", result = "ok", message_id = %message_id, bytes = output.bytes, "report published");
    output.message_id = Some(message_id);

    // An incomplete snapshot would make tomorrow's comparison wrong: keep the old one.
    if data_complete {
        match save_previous(
            &clients.ssm,
            &settings.state_parameter,
            &Previous::from_report(&report),
        )
        .await
        {
            Ok(()) => output.previous_saved = true,
            Err(error) => {
                // The report is out; failing now would only publish it twice on retry.
                tracing::error!(action = "save-previous", result = "failed", error = %error_text(&error), "previous summary not saved");
            }
        }
    }
    Ok(output)
}
