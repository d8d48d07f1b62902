//! One invocation: a launch, a command status, a schedule or the sweep.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::autoscaling::{self, ActionRef, Reached, Waiting};
use super::decide::{
    decide_launch, is_final, patch_group, snapshot_id, status_matches, verdict, Completion,
    LaunchDecision, LaunchRecord,
};
use super::error::PatchError;
use super::events::{
    CommandStatusDetail, LaunchDetail, Operation, PatchRequest, ScheduledPatch, Trigger,
    PATCH_DOCUMENT,
};
use super::settings::{LifecycleResult, PatchSettings};
use super::ssm::{self, Sent};

/// The clients the dispatcher needs.
pub struct Clients {
    pub ssm: aws_sdk_ssm::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ec2: aws_sdk_ec2::Client,
}

/// Time left for waiting before the Lambda deadline.
const DEADLINE_MARGIN: SignedDuration = SignedDuration::from_secs(5);
/// A heartbeat at least this often while waiting for an agent.
const HEARTBEAT_EVERY: SignedDuration = SignedDuration::from_secs(60);
/// A second scheduled delivery within this window is a duplicate.
const SCHEDULE_DEDUP_WINDOW: SignedDuration = SignedDuration::from_secs(15 * 60);
/// Instances the sweep works on at once.
const SWEEP_CONCURRENCY: usize = 4;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub commands: Vec<CommandSent>,
    pub lifecycle_actions: Vec<LifecycleAction>,
    pub heartbeats: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<Failure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommandSent {
    /// `None` in a dry run.
    pub command_id: Option<String>,
    pub patch_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    pub operation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LifecycleAction {
    pub instance_id: String,
    pub group: String,
    pub hook: String,
    pub result: LifecycleResult,
    pub reason: String,
    /// False when the action was no longer active (completed before or timed out).
    pub applied: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub error: String,
}

impl Summary {
    fn skip(
        &mut self,
        instance_id: Option<&str>,
        command_id: Option<&str>,
        reason: impl Into<String>,
    ) {
        let reason = reason.into();
        tracing::info!(instance_id, command_id, action = "skip", result = "skipped", reason = %reason, "skipped");
        self.skipped.push(Skipped {
            instance_id: instance_id.map(str::to_string),
            command_id: command_id.map(str::to_string),
            reason,
        });
    }

    fn merge(&mut self, other: Summary) {
        self.commands.extend(other.commands);
        self.lifecycle_actions.extend(other.lifecycle_actions);
        self.heartbeats.extend(other.heartbeats);
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
    }
}

/// The state record of a scheduled command, `<prefix>schedule/<group>/<operation>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ScheduleRecord {
    command_id: String,
    #[serde(with = "super::decide::rfc3339")]
    sent_at: Timestamp,
    snapshot_id: Option<String>,
}

struct Run<'a> {
    clients: &'a Clients,
    settings: &'a PatchSettings,
    dry_run: bool,
    /// The Lambda deadline (the invocation must be done by then).
    deadline: Timestamp,
}

/// Handles one event. Errors of a single-event trigger are returned (so the
/// event is retried); the sweep reports per-instance errors in `errors`.
pub async fn dispatch(
    clients: &Clients,
    settings: &PatchSettings,
    request: PatchRequest,
    deadline: Timestamp,
) -> Result<Summary, PatchError> {
    let run = Run {
        clients,
        settings,
        dry_run: request.dry_run || settings.dry_run,
        deadline,
    };
    let mut summary = Summary {
        dry_run: run.dry_run,
        ..Summary::default()
    };
    match request.trigger {
        Trigger::Launch(detail) => run.launch(&detail, &mut summary).await?,
        Trigger::CommandStatus(detail) => run.command_status(&detail, &mut summary).await?,
        Trigger::Scheduled(patch) => run.scheduled(&patch, &mut summary).await?,
        Trigger::Sweep => run.sweep(&mut summary).await?,
    }
    tracing::info!(
        dry_run = summary.dry_run,
        commands = summary.commands.len(),
        lifecycle_actions = summary.lifecycle_actions.len(),
        heartbeats = summary.heartbeats.len(),
        skipped = summary.skipped.len(),
        errors = summary.errors.len(),
        summary = %serde_json::to_string(&summary).unwrap_or_default(),
        "patch-dispatcher summary"
    );
    Ok(summary)
}

/// What the launch handling knows about the instance.
struct Launch<'a> {
    instance_id: &'a str,
    group: &'a str,
    hook: &'a str,
    token: Option<&'a str>,
}

impl Launch<'_> {
    fn action(&self) -> ActionRef<'_> {
        ActionRef {
            group: self.group,
            hook: self.hook,
            instance_id: self.instance_id,
            token: self.token,
        }
    }
}

impl Run<'_> {
    fn record_name(&self, instance_id: &str) -> String {
        format!("{}launch/{instance_id}", self.settings.state_prefix)
    }

    async fn launch(&self, detail: &LaunchDetail, summary: &mut Summary) -> Result<(), PatchError> {
        let launch = Launch {
            instance_id: &detail.instance_id,
            group: &detail.group,
            hook: &detail.hook,
            token: Some(&detail.token),
        };
        match decide_launch(detail, &self.settings.hook_name) {
            LaunchDecision::Ignore(reason) => {
                summary.skip(Some(&detail.instance_id), None, reason);
                Ok(())
            }
            LaunchDecision::Complete(result, reason) => {
                self.complete(&launch, None, result, reason, summary).await
            }
            // The event's moment is "now": the registration budget starts here.
            LaunchDecision::Patch => self.patch_launch(&launch, summary, self.deadline).await,
        }
    }

    /// Patches a waiting instance: finds its group, claims its record, waits
    /// for its agent until `wait_until` (or the registration budget), sends.
    async fn patch_launch(
        &self,
        launch: &Launch<'_>,
        summary: &mut Summary,
        wait_until: Timestamp,
    ) -> Result<(), PatchError> {
        let id = launch.instance_id;
        let name = self.record_name(id);
        let existing: Option<LaunchRecord> = ssm::read_record(&self.clients.ssm, &name).await?;
        let now = Timestamp::now();
        let fresh = existing.is_none();
        let mut record = match existing {
            Some(record) => {
                if let Some(done) = &record.completion {
                    summary.skip(
                        Some(id),
                        record.command_id.as_deref(),
                        format!("duplicate: already completed {}", done.result.as_str()),
                    );
                    return Ok(());
                }
                if let Some(command) = &record.command_id {
                    summary.skip(
                        Some(id),
                        Some(command),
                        "duplicate: patch command already sent",
                    );
                    return Ok(());
                }
                if record.owner_deadline > now {
                    summary.skip(
                        Some(id),
                        None,
                        "duplicate: another invocation is waiting for its agent",
                    );
                    return Ok(());
                }
                record
            }
            None => {
                let tags = autoscaling::instance_tags(&self.clients.ec2, id)
                    .await?
                    .ok_or_else(|| PatchError::NoSuchInstance {
                        instance_id: id.to_string(),
                    })?;
                let Some(group) = patch_group(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                else {
                    return self
                        .complete(
                            launch,
                            None,
                            LifecycleResult::Continue,
                            "no patch group tag".into(),
                            summary,
                        )
                        .await;
                };
                LaunchRecord {
                    instance_id: id.to_string(),
                    group: launch.group.to_string(),
                    hook: launch.hook.to_string(),
                    token: launch.token.map(str::to_string),
                    patch_group: Some(group),
                    first_seen: now,
                    owner_deadline: self.deadline,
                    command_id: None,
                    sent_at: None,
                    completion: None,
                }
            }
        };
        if self.dry_run {
            summary.commands.push(launch_command(None, &record));
            return Ok(());
        }
        // Claim the record (a new one only if nobody else created it meanwhile).
        record.owner_deadline = self.deadline;
        if !ssm::write_record(&self.clients.ssm, &name, &record, fresh).await? {
            summary.skip(
                Some(id),
                None,
                "duplicate: another invocation claimed this launch",
            );
            return Ok(());
        }
        let budget_end = record.first_seen + duration(self.settings.agent_registration_timeout);
        let wait_end = wait_until.min(self.deadline - DEADLINE_MARGIN);
        let mut last_beat = Timestamp::now();
        loop {
            if ssm::agent_online(&self.clients.ssm, id).await? {
                let comment = format!("fleetops launch {}/{}", launch.group, launch.hook);
                // A lower bound of the command's requested time: the Install it
                // runs must end after it.
                let sending_at = Timestamp::now();
                match ssm::send_launch_command(&self.clients.ssm, id, &comment).await? {
                    Sent::Command(command_id) => {
                        record.command_id = Some(command_id.clone());
                        record.sent_at = Some(sending_at);
                        ssm::write_record(&self.clients.ssm, &name, &record, false).await?;
                        tracing::info!(instance_id = id, action = "send_command", result = "sent", command_id = %command_id, patch_group = record.patch_group.as_deref(), "patch command sent");
                        summary
                            .commands
                            .push(launch_command(Some(command_id), &record));
                        return Ok(());
                    }
                    Sent::NotRegistered => {}
                }
            }
            let now = Timestamp::now();
            if now >= budget_end {
                let reason = format!(
                    "SSM agent did not come online within {} s",
                    self.settings.agent_registration_timeout.as_secs()
                );
                let result = self.settings.on_failure.result();
                return self
                    .complete(
                        launch,
                        Some((name.as_str(), &mut record)),
                        result,
                        reason,
                        summary,
                    )
                    .await;
            }
            if now >= wait_end {
                summary.skip(
                    Some(id),
                    None,
                    "SSM agent not online yet; the sweep continues",
                );
                return Ok(());
            }
            if now.duration_since(last_beat) >= HEARTBEAT_EVERY {
                self.heartbeat(launch, summary).await?;
                last_beat = now;
            }
            let pause = duration(self.settings.agent_poll_interval)
                .min(budget_end.min(wait_end).duration_since(now));
            tokio::time::sleep(Duration::try_from(pause).unwrap_or(Duration::ZERO)).await;
        }
    }

    async fn heartbeat(
        &self,
        launch: &Launch<'_>,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        if self.dry_run {
            return Ok(());
        }
        let reached = autoscaling::heartbeat(&self.clients.autoscaling, &launch.action()).await?;
        tracing::info!(instance_id = launch.instance_id, action = "heartbeat", result = ?reached, "lifecycle heartbeat");
        if reached == Reached::Done {
            summary.heartbeats.push(launch.instance_id.to_string());
        }
        Ok(())
    }

    /// Completes the lifecycle action and notes it in the record.
    async fn complete(
        &self,
        launch: &Launch<'_>,
        record: Option<(&str, &mut LaunchRecord)>,
        result: LifecycleResult,
        reason: String,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let applied = if self.dry_run {
            false
        } else {
            autoscaling::complete(&self.clients.autoscaling, &launch.action(), result).await?
                == Reached::Done
        };
        if !self.dry_run {
            if let Some((name, record)) = record {
                record.completion = Some(Completion {
                    result,
                    reason: reason.clone(),
                    at: Timestamp::now(),
                });
                ssm::write_record(&self.clients.ssm, name, record, false).await?;
            }
        }
        if !self.dry_run && !applied {
            summary.skip(
                Some(launch.instance_id),
                None,
                format!(
                    "duplicate: no active lifecycle action (would be {})",
                    result.as_str()
                ),
            );
            return Ok(());
        }
        tracing::info!(instance_id = launch.instance_id, group = launch.group, action = "complete_lifecycle_action", result = result.as_str(), reason = %reason, dry_run = self.dry_run, "lifecycle action");
        summary.lifecycle_actions.push(LifecycleAction {
            instance_id: launch.instance_id.to_string(),
            group: launch.group.to_string(),
            hook: launch.hook.to_string(),
            result,
            reason,
            applied,
        });
        Ok(())
    }

    async fn command_status(
        &self,
        detail: &CommandStatusDetail,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let (id, command) = (detail.instance_id.as_str(), detail.command_id.as_str());
        if detail.document_name != PATCH_DOCUMENT {
            summary.skip(
                Some(id),
                Some(command),
                format!("document {} is not {PATCH_DOCUMENT}", detail.document_name),
            );
            return Ok(());
        }
        if !is_final(&detail.status) {
            summary.skip(
                Some(id),
                Some(command),
                format!("status {} is not final", detail.status),
            );
            return Ok(());
        }
        let name = self.record_name(id);
        let Some(mut record) = ssm::read_record::<LaunchRecord>(&self.clients.ssm, &name).await?
        else {
            summary.skip(
                Some(id),
                Some(command),
                "not a launch command fleetops is waiting for",
            );
            return Ok(());
        };
        if !status_matches(&record, detail) {
            summary.skip(
                Some(id),
                Some(command),
                "not the launch command of this instance",
            );
            return Ok(());
        }
        if let Some(done) = &record.completion {
            summary.skip(
                Some(id),
                Some(command),
                format!("duplicate: already completed {}", done.result.as_str()),
            );
            return Ok(());
        }
        self.finish(&name, &mut record, &detail.status, summary)
            .await
    }

    /// Checks the result of a final command and completes the action.
    async fn finish(
        &self,
        name: &str,
        record: &mut LaunchRecord,
        status: &str,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let id = record.instance_id.clone();
        let sent_at = record.sent_at.unwrap_or(record.first_seen);
        let state = if status == "Success" {
            ssm::patch_state(&self.clients.ssm, &id).await?
        } else {
            None
        };
        let (result, reason) = match verdict(status, sent_at, state.as_ref()) {
            Ok(reason) => (LifecycleResult::Continue, reason),
            Err(reason) => (self.settings.on_failure.result(), reason),
        };
        let (group, hook, token) = (
            record.group.clone(),
            record.hook.clone(),
            record.token.clone(),
        );
        let launch = Launch {
            instance_id: &id,
            group: &group,
            hook: &hook,
            token: token.as_deref(),
        };
        self.complete(&launch, Some((name, record)), result, reason, summary)
            .await
    }

    async fn scheduled(
        &self,
        patch: &ScheduledPatch,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let now = Timestamp::now();
        let name = format!(
            "{}schedule/{}/{}",
            self.settings.state_prefix,
            ssm::name_part(&patch.patch_group),
            patch.operation.as_str()
        );
        if let Some(previous) = ssm::read_record::<ScheduleRecord>(&self.clients.ssm, &name).await?
        {
            if now.duration_since(previous.sent_at) < SCHEDULE_DEDUP_WINDOW {
                summary.skip(
                    None,
                    Some(&previous.command_id),
                    format!(
                        "duplicate: {} of {} sent at {}",
                        patch.operation.as_str(),
                        patch.patch_group,
                        previous.sent_at
                    ),
                );
                return Ok(());
            }
        }
        let snapshot =
            (patch.operation == Operation::Install).then(|| snapshot_id(&patch.patch_group, now));
        let command_id = if self.dry_run {
            None
        } else {
            let id = ssm::send_group_command(&self.clients.ssm, patch, snapshot.as_deref()).await?;
            let record = ScheduleRecord {
                command_id: id.clone(),
                sent_at: now,
                snapshot_id: snapshot.clone(),
            };
            ssm::write_record(&self.clients.ssm, &name, &record, false).await?;
            Some(id)
        };
        tracing::info!(patch_group = %patch.patch_group, action = "send_command", result = if self.dry_run { "dry_run" } else { "sent" }, command_id = command_id.as_deref(), operation = patch.operation.as_str(), "scheduled patch command");
        summary.commands.push(CommandSent {
            command_id,
            patch_group: Some(patch.patch_group.clone()),
            instance_ids: None,
            targets: Some(vec![format!("tag:Patch Group={}", patch.patch_group)]),
            operation: patch.operation.as_str(),
            snapshot_id: snapshot,
        });
        Ok(())
    }

    async fn sweep(&self, summary: &mut Summary) -> Result<(), PatchError> {
        use futures::StreamExt;
        let waiting = autoscaling::waiting_instances(&self.clients.autoscaling).await?;
        let groups: BTreeSet<String> = waiting.iter().map(|w| w.group.clone()).collect();
        let ours = autoscaling::groups_with_hook(
            &self.clients.autoscaling,
            &groups,
            &self.settings.hook_name,
        )
        .await?;
        let work: Vec<&Waiting> = waiting.iter().filter(|w| ours.contains(&w.group)).collect();
        let results: Vec<(String, Summary, Result<(), PatchError>)> = futures::stream::iter(work)
            .map(|w| async move {
                let mut part = Summary::default();
                let outcome = self.sweep_one(w, &mut part).await;
                (w.instance_id.clone(), part, outcome)
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect()
            .await;
        for (instance_id, part, outcome) in results {
            summary.merge(part);
            if let Err(error) = outcome {
                let text = crate::error_text(&error);
                tracing::error!(instance_id = %instance_id, action = "sweep", result = "error", error = %text, "sweep failed for an instance");
                summary.errors.push(Failure {
                    instance_id: Some(instance_id),
                    error: text,
                });
            }
        }
        Ok(())
    }

    async fn sweep_one(&self, waiting: &Waiting, summary: &mut Summary) -> Result<(), PatchError> {
        let id = waiting.instance_id.as_str();
        let hook = self.settings.hook_name.as_str();
        let name = self.record_name(id);
        let record: Option<LaunchRecord> = ssm::read_record(&self.clients.ssm, &name).await?;
        let launch = Launch {
            instance_id: id,
            group: &waiting.group,
            hook,
            token: None,
        };
        let Some(mut record) = record else {
            // The launch event was lost: handle it now, without waiting for the agent.
            return self.patch_launch(&launch, summary, Timestamp::now()).await;
        };
        if record.completion.is_some() {
            summary.skip(
                Some(id),
                record.command_id.as_deref(),
                "already completed; waiting for Auto Scaling",
            );
            return Ok(());
        }
        let Some(command_id) = record.command_id.clone() else {
            if record.owner_deadline > Timestamp::now() {
                summary.skip(
                    Some(id),
                    None,
                    "another invocation is waiting for its agent",
                );
                return self.heartbeat(&launch, summary).await;
            }
            return self.patch_launch(&launch, summary, Timestamp::now()).await;
        };
        match ssm::invocation_status(&self.clients.ssm, &command_id, id).await? {
            Some(status) if is_final(&status) => {
                if self.dry_run {
                    summary.skip(
                        Some(id),
                        Some(&command_id),
                        format!("would finish: command ended {status}"),
                    );
                    return Ok(());
                }
                self.finish(&name, &mut record, &status, summary).await
            }
            None if Timestamp::now()
                .duration_since(record.sent_at.unwrap_or(record.first_seen))
                >= duration(self.settings.agent_registration_timeout) =>
            {
                if self.dry_run {
                    return Ok(());
                }
                let reason = "patch invocation never appeared in SSM".to_string();
                let result = self.settings.on_failure.result();
                let token = record.token.clone();
                let launch = Launch {
                    token: token.as_deref(),
                    ..launch
                };
                self.complete(
                    &launch,
                    Some((name.as_str(), &mut record)),
                    result,
                    reason,
                    summary,
                )
                .await
            }
            _ => {
                summary.skip(Some(id), Some(&command_id), "still patching");
                self.heartbeat(&launch, summary).await
            }
        }
    }
}

fn launch_command(command_id: Option<String>, record: &LaunchRecord) -> CommandSent {
    CommandSent {
        command_id,
        patch_group: record.patch_group.clone(),
        instance_ids: Some(vec![record.instance_id.clone()]),
        targets: None,
        operation: "Install",
        snapshot_id: None,
    }
}

fn duration(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}
