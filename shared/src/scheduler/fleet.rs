//! The scheduler over accounts and regions: one unit per account-region, each
//! run as its own tick, in-process (bounded concurrency) or fanned out through
//! the work queue (`WORK_QUEUE_URL`) that the same function consumes.

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::{Failed, Skipped, Warning};
use super::settings::{SchedulerSettings, TickRequest};
use super::tick::{run_tick_with_schedules, RegionClient, TickError, TickSummary};
use crate::accounts::{AccountConfigs, Unhandled, Unit};
use crate::input::EventError;
use crate::schedule::Schedules;
pub use crate::sqs::BatchItemFailure;
use crate::sqs::{send_messages, sqs_records, Outgoing};

/// Units handled at once in-process (each reads and acts on one region).
const UNIT_CONCURRENCY: usize = 8;

/// An entry of the output with the account and region it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Located<T> {
    #[serde(flatten)]
    pub entry: T,
    pub account: String,
    pub region: String,
}

/// What one account-region's tick did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitDone {
    pub account: String,
    pub region: String,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
}

/// The invocation's output over every unit it handled (or queued).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FleetTickSummary {
    pub time: String,
    pub dry_run: bool,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub skipped: Vec<Located<Skipped>>,
    pub failed: Vec<Located<Failed>>,
    pub expired_overrides: Vec<String>,
    pub warnings: Vec<Located<Warning>>,
    /// Each account-region handled, with what it started and stopped.
    pub units: Vec<UnitDone>,
    /// Account-regions that could not be handled, with the reason.
    pub unhandled: Vec<Unhandled>,
    /// With `WORK_QUEUE_URL`: the units sent to the queue by this tick.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queued: Vec<Unit>,
    /// For a batch from the work queue: its messages that failed (retried).
    #[serde(rename = "batchItemFailures", skip_serializing_if = "Option::is_none")]
    pub batch_item_failures: Option<Vec<BatchItemFailure>>,
}

impl FleetTickSummary {
    fn add(&mut self, unit: &Unit, summary: TickSummary) {
        self.units.push(UnitDone {
            account: unit.account.clone(),
            region: unit.region.clone(),
            started: summary.started.clone(),
            stopped: summary.stopped.clone(),
        });
        self.started.extend(summary.started);
        self.stopped.extend(summary.stopped);
        self.skipped
            .extend(summary.skipped.into_iter().map(|e| locate(unit, e)));
        self.failed
            .extend(summary.failed.into_iter().map(|e| locate(unit, e)));
        self.warnings
            .extend(summary.warnings.into_iter().map(|e| locate(unit, e)));
        self.expired_overrides.extend(summary.expired_overrides);
    }

    fn sort(&mut self) {
        self.started.sort();
        self.stopped.sort();
        self.expired_overrides.sort();
        self.units
            .sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        self.unhandled
            .sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    }

    /// One account-region's part, as a plain tick summary (for its metrics).
    pub fn unit_summary(&self, unit: &UnitDone) -> TickSummary {
        let here = |account: &str, region: &str| account == unit.account && region == unit.region;
        TickSummary {
            time: self.time.clone(),
            dry_run: self.dry_run,
            started: unit.started.clone(),
            stopped: unit.stopped.clone(),
            skipped: self
                .skipped
                .iter()
                .filter(|l| here(&l.account, &l.region))
                .map(|l| l.entry.clone())
                .collect(),
            failed: self
                .failed
                .iter()
                .filter(|l| here(&l.account, &l.region))
                .map(|l| l.entry.clone())
                .collect(),
            expired_overrides: Vec::new(),
            warnings: self
                .warnings
                .iter()
                .filter(|l| here(&l.account, &l.region))
                .map(|l| l.entry.clone())
                .collect(),
        }
    }

    /// The same counts as one plain tick summary (for metrics).
    pub fn flattened(&self) -> TickSummary {
        TickSummary {
            time: self.time.clone(),
            dry_run: self.dry_run,
            started: self.started.clone(),
            stopped: self.stopped.clone(),
            skipped: self.skipped.iter().map(|l| l.entry.clone()).collect(),
            failed: self.failed.iter().map(|l| l.entry.clone()).collect(),
            expired_overrides: self.expired_overrides.clone(),
            warnings: self.warnings.iter().map(|l| l.entry.clone()).collect(),
        }
    }
}

fn locate<T>(unit: &Unit, entry: T) -> Located<T> {
    Located {
        entry,
        account: unit.account.clone(),
        region: unit.region.clone(),
    }
}

/// Runs every unit in-process, `UNIT_CONCURRENCY` at a time. A unit that
/// fails (a role that cannot be assumed, a region that cannot be read) is
/// listed under `unhandled`; the others are done.
pub async fn run_units(
    schedules: &Schedules,
    units: &[Unit],
    configs: &AccountConfigs,
    settings: &SchedulerSettings,
    request: TickRequest,
) -> FleetTickSummary {
    let results: Vec<(Unit, Result<TickSummary, String>)> = futures::stream::iter(units)
        .map(|unit| async move {
            let result = run_unit(schedules, unit, configs, settings, request).await;
            (unit.clone(), result)
        })
        .buffer_unordered(UNIT_CONCURRENCY)
        .collect()
        .await;
    let mut fleet = FleetTickSummary {
        time: request.now.to_string(),
        dry_run: request.dry_run || settings.dry_run,
        ..FleetTickSummary::default()
    };
    for (unit, result) in results {
        match result {
            Ok(summary) => fleet.add(&unit, summary),
            Err(reason) => {
                tracing::error!(account = %unit.account, region = %unit.region, reason = %reason, "account-region not handled");
                fleet.unhandled.push(Unhandled {
                    account: unit.account,
                    region: unit.region,
                    reason,
                });
            }
        }
    }
    fleet.sort();
    fleet
}

async fn run_unit(
    schedules: &Schedules,
    unit: &Unit,
    configs: &AccountConfigs,
    settings: &SchedulerSettings,
    request: TickRequest,
) -> Result<TickSummary, String> {
    let config = configs
        .config(&unit.account)
        .await
        .map_err(|e| crate::error_text(&e))?;
    let region = RegionClient::new(&config, &unit.region);
    match run_tick_with_schedules(schedules, &[region], settings, request).await {
        Ok(summary) => Ok(summary),
        Err(TickError::Regions { failures, .. }) => Err(failures
            .iter()
            .map(|f| crate::error_text(f))
            .collect::<Vec<_>>()
            .join("; ")),
        Err(other) => Err(crate::error_text(&other)),
    }
}

/// One queued unit of a tick: the moment it was meant for travels with it,
/// so a late message evaluates that moment, not the moment it is handled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitMessage {
    pub account: String,
    pub region: String,
    pub time: String,
    #[serde(default)]
    pub dry_run: bool,
}

/// Sends one message per unit to the work queue and returns; what could not
/// be sent is `unhandled`.
pub async fn queue_units(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    units: &[Unit],
    settings: &SchedulerSettings,
    request: TickRequest,
) -> FleetTickSummary {
    let mut fleet = FleetTickSummary {
        time: request.now.to_string(),
        dry_run: request.dry_run || settings.dry_run,
        ..FleetTickSummary::default()
    };
    let messages: Vec<Outgoing> = units
        .iter()
        .map(|unit| Outgoing {
            body: serde_json::json!(UnitMessage {
                account: unit.account.clone(),
                region: unit.region.clone(),
                time: request.now.to_string(),
                dry_run: request.dry_run,
            })
            .to_string(),
            delay_seconds: None,
        })
        .collect();
    let results = send_messages(sqs, queue_url, &messages).await;
    for (unit, result) in units.iter().zip(results) {
        match result {
            None => fleet.queued.push(unit.clone()),
            Some(error) => fleet.unhandled.push(Unhandled {
                account: unit.account.clone(),
                region: unit.region.clone(),
                reason: format!("could not be queued: {error}"),
            }),
        }
    }
    fleet.queued.sort();
    fleet.sort();
    fleet
}

/// One message of a batch from the work queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkItem {
    pub message_id: String,
    /// The unit and its tick, or why the message is unreadable.
    pub work: Result<(Unit, TickRequest), String>,
}

/// The messages of an SQS event (`Records` with `eventSource: aws:sqs`);
/// `None` for any other event.
pub fn parse_work_batch(event: &Value) -> Option<Result<Vec<WorkItem>, EventError>> {
    let records = sqs_records(event)?;
    if records.iter().any(|(id, _)| id.is_empty()) {
        return Some(Err(EventError {
            field: "Records[].messageId",
            problem: "missing".into(),
        }));
    }
    let items = records
        .into_iter()
        .map(|(message_id, body)| {
            let work = serde_json::from_str::<UnitMessage>(&body)
                .map_err(|e| format!("message body is not a fleetops unit: {e}"))
                .and_then(|m| {
                    let now = m
                        .time
                        .parse()
                        .map_err(|e| format!("message time \"{}\": {e}", m.time))?;
                    Ok((
                        Unit {
                            account: m.account,
                            region: m.region,
                        },
                        TickRequest {
                            now,
                            dry_run: m.dry_run,
                            act_until: None,
                            memory: None,
                        },
                    ))
                });
            WorkItem { message_id, work }
        })
        .collect();
    Some(Ok(items))
}

/// Handles a batch from the work queue, each message on its own: a message
/// whose unit could not be handled is reported back as a batch item failure,
/// so that SQS delivers it again (and to the dead-letter queue in the end).
pub async fn run_work_batch(
    schedules: &Schedules,
    items: &[WorkItem],
    configs: &AccountConfigs,
    settings: &SchedulerSettings,
) -> FleetTickSummary {
    let mut fleet = FleetTickSummary {
        dry_run: settings.dry_run,
        batch_item_failures: Some(Vec::new()),
        ..FleetTickSummary::default()
    };
    let results: Vec<(&WorkItem, Result<TickSummary, String>)> = futures::stream::iter(items)
        .map(|item| async move {
            let result = match &item.work {
                Ok((unit, request)) => run_unit(schedules, unit, configs, settings, *request).await,
                Err(problem) => Err(problem.clone()),
            };
            (item, result)
        })
        .buffer_unordered(UNIT_CONCURRENCY)
        .collect()
        .await;
    for (item, result) in results {
        if let Ok((_, request)) = &item.work {
            fleet.time = fleet.time.max(request.now.to_string());
            fleet.dry_run |= request.dry_run;
        }
        match (result, &item.work) {
            (Ok(summary), Ok((unit, _))) => fleet.add(unit, summary),
            (result, work) => {
                let reason = result.err().unwrap_or_default();
                let (account, region) = match work {
                    Ok((unit, _)) => (unit.account.clone(), unit.region.clone()),
                    Err(_) => (String::new(), String::new()),
                };
                tracing::error!(message_id = %item.message_id, account = %account, region = %region, reason = %reason, "work item failed; SQS delivers it again");
                fleet.unhandled.push(Unhandled {
                    account,
                    region,
                    reason,
                });
                if let Some(failures) = fleet.batch_item_failures.as_mut() {
                    failures.push(BatchItemFailure {
                        item_identifier: item.message_id.clone(),
                    });
                }
            }
        }
    }
    fleet.sort();
    fleet
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_sqs_batch_is_read_message_by_message() {
        let event = json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs",
             "body": "{\"account\":\"111111111111\",\"region\":\"eu-west-1\",\"time\":\"2026-12-01T18:05:00Z\"}"},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": "not json"}
        ]});
        let items = parse_work_batch(&event).expect("sqs").expect("valid");
        assert_eq!(items.len(), 2);
        let (unit, request) = items[0].work.clone().expect("unit");
        assert_eq!(unit.account, "111111111111");
        assert_eq!(request.now, "2026-12-01T18:05:00Z".parse().unwrap());
        assert!(items[1].work.is_err());
        let sample: Value = serde_json::from_str(include_str!(
            "../../../events/instance-scheduler-work-batch.json"
        ))
        .expect("sample");
        let sample = parse_work_batch(&sample).expect("sqs").expect("valid");
        assert!(sample[0].work.as_ref().is_ok_and(|(_, r)| r.dry_run));
        assert!(parse_work_batch(&json!({"time": "2026-12-01T18:05:00Z"})).is_none());
        assert!(parse_work_batch(&json!({"Records": [{"eventSource": "aws:s3"}]})).is_none());
    }

    #[test]
    fn entries_carry_their_account_and_region() {
        let mut fleet = FleetTickSummary::default();
        let unit = Unit {
            account: "111111111111".into(),
            region: "eu-west-1".into(),
        };
        fleet.add(
            &unit,
            TickSummary {
                started: vec!["i-1".into()],
                skipped: vec![Skipped {
                    instance_id: "i-2".into(),
                    reason: "unknown schedule \"x\"".into(),
                }],
                ..TickSummary::default()
            },
        );
        let out = serde_json::to_value(&fleet).expect("json");
        assert_eq!(out["skipped"][0]["account"], json!("111111111111"));
        assert_eq!(out["skipped"][0]["region"], json!("eu-west-1"));
        assert_eq!(out["skipped"][0]["instance_id"], json!("i-2"));
        assert_eq!(out["units"][0]["started"], json!(["i-1"]));
        assert!(out.get("batchItemFailures").is_none());
    }
}
