//! The nightly report through the work queue (`WORK_QUEUE_URL`, with
//! `REPORT_BUCKET`): the nightly run sends one message per account-region and
//! one assembly message; each unit reads its snapshot and stores it in the
//! bucket (`fleetops/report-units/<night>/<account>-<region>.json`); the
//! assembly waits (by being delivered again) until every unit is stored or
//! its deadline has passed, then builds and publishes one report. No counter
//! and no extra table: what is in the bucket is the state.

use std::collections::BTreeMap;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::org::UnitSnapshot;
use super::snapshot::FleetSnapshot;
use crate::accounts::{AccountConfigs, Unhandled, Unit};
use crate::sqs::{send_messages, sqs_records, Outgoing};

/// Where the units' snapshots are kept (expire them with a lifecycle rule).
pub const UNITS_PREFIX: &str = "fleetops/report-units/";
/// How long the assembly waits for the units before it reports without the
/// missing ones (each named, with the reason "not read in time").
pub const ASSEMBLY_DEADLINE: SignedDuration = SignedDuration::from_mins(30);
/// The assembly's first delivery comes this much later (SQS `DelaySeconds`),
/// unless `REPORT_ASSEMBLY_DELAY_SECONDS` says otherwise (0 to 900, SQS's range).
pub const ASSEMBLY_DELAY_SECONDS: i32 = 60;

/// `REPORT_ASSEMBLY_DELAY_SECONDS`, default [`ASSEMBLY_DELAY_SECONDS`].
pub fn assembly_delay(value: Option<&str>) -> Result<i32, crate::input::EnvError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(ASSEMBLY_DELAY_SECONDS),
        Some(text) => match text.parse::<i32>() {
            Ok(n) if (0..=900).contains(&n) => Ok(n),
            _ => Err(crate::input::EnvError {
                name: "REPORT_ASSEMBLY_DELAY_SECONDS",
                problem: format!("\"{text}\" is not a number of seconds from 0 to 900"),
            }),
        },
    }
}

/// One message of the report's work queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportMessage {
    /// Read one account-region and store its snapshot.
    ReportUnit {
        account: String,
        region: String,
        night: String,
    },
    /// Build the report once every unit is stored or `deadline` has passed.
    ReportAssembly {
        night: String,
        units: Vec<Unit>,
        deadline: Timestamp,
        /// The night's "now" (the report's `generated_at`).
        time: Timestamp,
        #[serde(default)]
        dry_run: bool,
    },
}

/// What a unit leaves in the bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredUnit {
    pub account: String,
    pub region: String,
    pub snapshot: Option<FleetSnapshot>,
    /// Why it could not be read (then no snapshot).
    pub unhandled: Option<String>,
}

/// The night's name: its UTC date and time, safe in a key.
pub fn night_of(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H%M%SZ").to_string()
}

pub fn unit_key(night: &str, account: &str, region: &str) -> String {
    format!("{UNITS_PREFIX}{night}/{account}-{region}.json")
}

/// The messages of one night: the units, then the assembly.
pub fn night_messages(units: &[Unit], now: Timestamp, dry_run: bool) -> Vec<ReportMessage> {
    let night = night_of(now);
    let mut messages: Vec<ReportMessage> = units
        .iter()
        .map(|u| ReportMessage::ReportUnit {
            account: u.account.clone(),
            region: u.region.clone(),
            night: night.clone(),
        })
        .collect();
    messages.push(ReportMessage::ReportAssembly {
        night,
        units: units.to_vec(),
        deadline: now + ASSEMBLY_DEADLINE,
        time: now,
        dry_run,
    });
    messages
}

/// What the assembly does with what is stored so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssemblyStep {
    /// Units are still missing and there is time: be delivered again.
    Wait { missing: usize },
    /// Build the report; these units were not stored in time.
    Build { late: Vec<Unit> },
}

pub fn assembly_step(
    units: &[Unit],
    stored: &std::collections::BTreeSet<String>,
    night: &str,
    deadline: Timestamp,
    now: Timestamp,
) -> AssemblyStep {
    let late: Vec<Unit> = units
        .iter()
        .filter(|u| !stored.contains(&unit_key(night, &u.account, &u.region)))
        .cloned()
        .collect();
    if !late.is_empty() && now < deadline {
        AssemblyStep::Wait {
            missing: late.len(),
        }
    } else {
        AssemblyStep::Build { late }
    }
}

/// Sends the night's messages (10 per call); the assembly is delayed.
pub async fn queue_night(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[ReportMessage],
    assembly_delay: i32,
) -> Result<usize, String> {
    let outgoing: Vec<Outgoing> = messages
        .iter()
        .map(|message| Outgoing {
            body: serde_json::json!(message).to_string(),
            delay_seconds: matches!(message, ReportMessage::ReportAssembly { .. })
                .then_some(assembly_delay),
        })
        .collect();
    let results = send_messages(sqs, queue_url, &outgoing).await;
    if let Some((i, error)) = results
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.as_ref().map(|e| (i, e)))
    {
        return Err(format!("message {i} not queued: {error}"));
    }
    Ok(results.len())
}

/// Reads one account-region and stores what it read (or why it could not).
pub async fn store_unit(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    configs: &AccountConfigs,
    account: &str,
    region: &str,
    night: &str,
) -> Result<(), String> {
    let unit = Unit {
        account: account.into(),
        region: region.into(),
    };
    let (snapshot, unhandled) = match super::run::read_unit(configs, &unit).await {
        Ok(snapshot) => (Some(snapshot), None),
        Err(reason) => (None, Some(reason)),
    };
    let stored = StoredUnit {
        account: unit.account,
        region: unit.region,
        snapshot,
        unhandled,
    };
    let body = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
    s3.put_object()
        .bucket(bucket)
        .key(unit_key(night, account, region))
        .content_type("application/json")
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .send()
        .await
        .map_err(|e| crate::error_text(&e))?;
    Ok(())
}

/// The keys stored under the night's prefix (every page).
pub async fn stored_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    night: &str,
) -> Result<std::collections::BTreeSet<String>, String> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("{UNITS_PREFIX}{night}/"))
        .into_paginator()
        .send();
    let mut keys = std::collections::BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::error_text(&e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(keys)
}

/// Every stored unit of the night, plus the late ones as unhandled.
pub async fn read_units(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    night: &str,
    units: &[Unit],
    late: &[Unit],
) -> (Vec<UnitSnapshot>, Vec<Unhandled>) {
    let present: Vec<&Unit> = units.iter().filter(|u| !late.contains(u)).collect();
    let reads: Vec<(Unit, Result<StoredUnit, String>)> = futures::stream::iter(present)
        .map(|unit| async move {
            let key = unit_key(night, &unit.account, &unit.region);
            let read = async {
                let object = s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| crate::error_text(&e))?;
                let bytes = object.body.collect().await.map_err(|e| e.to_string())?;
                serde_json::from_slice::<StoredUnit>(&bytes.into_bytes())
                    .map_err(|e| format!("{key}: {e}"))
            };
            (unit.clone(), read.await)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut read = Vec::new();
    let mut unhandled: Vec<Unhandled> = late
        .iter()
        .map(|u| Unhandled {
            account: u.account.clone(),
            region: u.region.clone(),
            reason: "not read in time (its unit was not stored before the assembly's deadline)"
                .into(),
        })
        .collect();
    for (unit, result) in reads {
        match result {
            Ok(StoredUnit {
                snapshot: Some(snapshot),
                ..
            }) => read.push(UnitSnapshot {
                account: unit.account,
                region: unit.region,
                snapshot,
            }),
            Ok(StoredUnit {
                unhandled: reason, ..
            }) => unhandled.push(Unhandled {
                account: unit.account,
                region: unit.region,
                reason: reason.unwrap_or_else(|| "no snapshot stored".into()),
            }),
            Err(reason) => unhandled.push(Unhandled {
                account: unit.account,
                region: unit.region,
                reason: format!("its stored snapshot could not be read: {reason}"),
            }),
        }
    }
    read.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    unhandled.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    (read, unhandled)
}

/// The messages of an SQS event for the reporter, by message id; `None` for
/// any other event. A body that is not a report message is an error there.
pub fn parse_report_batch(
    event: &Value,
) -> Option<BTreeMap<String, Result<ReportMessage, String>>> {
    Some(
        sqs_records(event)?
            .into_iter()
            .map(|(id, body)| {
                (
                    id,
                    serde_json::from_str(&body)
                        .map_err(|e| format!("not a fleetops report message: {e}")),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(account: &str) -> Unit {
        Unit {
            account: account.into(),
            region: "eu-west-1".into(),
        }
    }

    #[test]
    fn the_assembly_waits_for_every_unit_until_its_deadline() {
        let now: Timestamp = "2026-12-02T02:00:00Z".parse().unwrap();
        let night = night_of(now);
        assert_eq!(night, "2026-12-02T020000Z");
        let units = [unit("111111111111"), unit("222222222222")];
        let deadline = now + ASSEMBLY_DEADLINE;
        let mut stored = std::collections::BTreeSet::new();
        stored.insert(unit_key(&night, "111111111111", "eu-west-1"));
        assert_eq!(
            assembly_step(&units, &stored, &night, deadline, now),
            AssemblyStep::Wait { missing: 1 }
        );
        assert_eq!(
            assembly_step(&units, &stored, &night, deadline, deadline),
            AssemblyStep::Build {
                late: vec![unit("222222222222")]
            }
        );
        stored.insert(unit_key(&night, "222222222222", "eu-west-1"));
        assert_eq!(
            assembly_step(&units, &stored, &night, deadline, now),
            AssemblyStep::Build { late: Vec::new() }
        );
    }

    #[test]
    fn a_night_is_its_units_then_the_assembly_and_reads_back() {
        let now: Timestamp = "2026-12-02T02:00:00Z".parse().unwrap();
        let messages = night_messages(&[unit("111111111111")], now, false);
        assert_eq!(messages.len(), 2);
        let body = serde_json::to_string(&messages[1]).unwrap();
        assert!(body.contains("\"kind\":\"report_assembly\""), "{body}");
        let event = serde_json::json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": serde_json::to_string(&messages[0]).unwrap()},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": "{}"}]});
        let batch = parse_report_batch(&event).expect("sqs");
        assert_eq!(batch["m1"].as_ref().unwrap(), &messages[0]);
        assert!(batch["m2"].is_err());
        let sample: Value = serde_json::from_str(include_str!(
            "../../../events/compliance-reporter-work-batch.json"
        ))
        .expect("sample");
        let sample = parse_report_batch(&sample).expect("sqs");
        assert!(matches!(
            sample.values().next(),
            Some(Ok(ReportMessage::ReportUnit { .. }))
        ));
    }
}

/// What a batch of the report's work queue did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BatchOutput {
    /// Units read and stored.
    pub stored: Vec<Unit>,
    /// The report, when this batch assembled it.
    pub report: Option<super::run::ReportOutput>,
    /// Assemblies still waiting for units (delivered again later).
    pub waiting: Vec<String>,
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<crate::sqs::BatchItemFailure>,
}

/// Key of the marker that says a night's report was published (a
/// redelivered assembly then publishes nothing twice).
fn published_key(night: &str) -> String {
    format!("{UNITS_PREFIX}{night}/_published")
}

/// Handles a batch from the report's work queue, each message on its own.
pub async fn run_report_batch(
    clients: &super::run::Clients,
    settings: &super::settings::ReporterSettings,
    configs: &AccountConfigs,
    batch: BTreeMap<String, Result<ReportMessage, String>>,
) -> BatchOutput {
    let mut out = BatchOutput::default();
    let Some(bucket) = settings.bucket.as_deref() else {
        // Without a bucket there is nowhere to keep the units: every message fails.
        out.batch_item_failures = batch
            .into_keys()
            .map(|id| crate::sqs::BatchItemFailure {
                item_identifier: id,
            })
            .collect();
        tracing::error!("a report work batch arrived but REPORT_BUCKET is not set");
        return out;
    };
    for (message_id, message) in batch {
        let failed = |reason: String| {
            tracing::error!(message_id = %message_id, reason = %reason, "report work item failed; SQS delivers it again");
            crate::sqs::BatchItemFailure {
                item_identifier: message_id.clone(),
            }
        };
        match message {
            Err(reason) => out.batch_item_failures.push(failed(reason)),
            Ok(ReportMessage::ReportUnit {
                account,
                region,
                night,
            }) => match store_unit(&clients.s3, bucket, configs, &account, &region, &night).await {
                Ok(()) => out.stored.push(Unit { account, region }),
                Err(reason) => out.batch_item_failures.push(failed(reason)),
            },
            Ok(ReportMessage::ReportAssembly {
                night,
                units,
                deadline,
                time,
                dry_run,
            }) => {
                let stored = match stored_keys(&clients.s3, bucket, &night).await {
                    Ok(keys) => keys,
                    Err(reason) => {
                        out.batch_item_failures.push(failed(reason));
                        continue;
                    }
                };
                if stored.contains(&published_key(&night)) {
                    tracing::info!(night = %night, "duplicate assembly: the night's report is out");
                    continue;
                }
                match assembly_step(&units, &stored, &night, deadline, Timestamp::now()) {
                    AssemblyStep::Wait { missing } => {
                        out.waiting.push(format!(
                            "{night}: {missing} of {} units not stored yet",
                            units.len()
                        ));
                        out.batch_item_failures.push(failed(format!(
                            "{missing} unit(s) not stored yet; waiting until {deadline}"
                        )));
                    }
                    AssemblyStep::Build { late } => {
                        let (read, unhandled) =
                            read_units(&clients.s3, bucket, &night, &units, &late).await;
                        let request = crate::input::TickRequest {
                            now: time,
                            dry_run,
                            act_until: None,
                            memory: None,
                        };
                        let scope = super::run::Scope::Assembled {
                            units: read,
                            unhandled,
                        };
                        match super::run::run_report(clients, settings, request, scope).await {
                            Ok(report) => {
                                if !report.dry_run {
                                    let marker = super::publish::store_objects(
                                        &clients.s3,
                                        bucket,
                                        &[(published_key(&night), String::new(), "text/plain")],
                                    )
                                    .await;
                                    if let Err(error) = marker {
                                        tracing::warn!(error = %crate::error_text(&error), "published marker not stored; a redelivery would publish again");
                                    }
                                }
                                out.report = Some(report);
                            }
                            Err(error) => out
                                .batch_item_failures
                                .push(failed(crate::error_text(&error))),
                        }
                    }
                }
            }
        }
    }
    out
}
