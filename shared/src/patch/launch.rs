//! A scale-out: claim the launch, wait for the agent, record "sending", send
//! the patch command, record its id; then the command's final status, checked
//! against the patch state. Every step is decided by `state.rs` and written
//! with a condition, so duplicates, retries and crashes never send twice.

use std::time::Duration;

use jiff::Timestamp;

use super::autoscaling;
use super::decide::{decide_launch, is_final, patch_group, verdict, LaunchDecision};
use super::dispatch::{duration, Launch, Run, DEADLINE_MARGIN, HEARTBEAT_EVERY, MAX_ROUNDS};
use super::error::PatchError;
use super::events::{CommandFinishedDetail, CommandStatusDetail, LaunchDetail, PATCH_DOCUMENT};
use super::settings::LifecycleResult;
use super::ssm::{self, Sent};
use super::state::{
    command_comment, launch_step, new_fence, resolve_sending, status_step, LaunchPhase,
    LaunchRecord, LaunchStep, LaunchTrigger, Resolution, StatusStep, LOOKUP_SLACK,
};
use super::store::{launch_key, Item, Stored};
use super::summary::{CommandSent, Summary};

/// The comment of a launch command after its fence: how `command_finished`
/// tells fleetops' launch commands from every other patch command.
const LAUNCH_COMMENT: &str = "launch";
const TAKEN_OVER: &str = "duplicate: another invocation took this launch over";

impl Run<'_> {
    pub(super) async fn launch(
        &self,
        detail: &LaunchDetail,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let launch = Launch {
            instance_id: &detail.instance_id,
            group: &detail.group,
            hook: &detail.hook,
            token: Some(&detail.token),
            warm_pool: detail.destination.as_deref() == Some("WarmPool"),
        };
        let decision = decide_launch(detail, &self.settings.hook_name);
        // Before anything else: a group that did not opt in is never patched
        // nor completed (IAM would refuse its completion after the patch).
        if !matches!(decision, LaunchDecision::Ignore(_)) && !self.opted_in(&detail.group).await? {
            summary.skip(
                Some(&detail.instance_id),
                None,
                self.not_opted_in_reason(&detail.group),
            );
            return Ok(());
        }
        match decision {
            LaunchDecision::Ignore(reason) => {
                summary.skip(Some(&detail.instance_id), None, reason);
                Ok(())
            }
            LaunchDecision::Complete(result, reason) => {
                self.complete(&launch, result, reason, summary).await
            }
            LaunchDecision::Patch => {
                // The event's moment is "now": the registration budget starts here.
                self.patch_launch(&launch, LaunchTrigger::Event, summary, self.deadline)
                    .await
            }
        }
    }

    /// Works a waiting instance one step further, as `launch_step` decides,
    /// waiting for its agent until `wait_until` if it must be sent now.
    pub(super) async fn patch_launch(
        &self,
        launch: &Launch<'_>,
        trigger: LaunchTrigger,
        summary: &mut Summary,
        wait_until: Timestamp,
    ) -> Result<(), PatchError> {
        let id = launch.instance_id;
        let key = launch_key(id);
        for _ in 0..MAX_ROUNDS {
            let stored: Option<Stored<LaunchRecord>> = self.store.get(&key).await?;
            let now = Timestamp::now();
            let step = launch_step(stored.as_ref().map(|s| &s.record), trigger, now);
            tracing::info!(instance_id = id, action = "launch_step", step = ?step, "launch step");
            let owned = match (step, stored) {
                (LaunchStep::Skip(reason), stored) => {
                    let command = stored
                        .as_ref()
                        .and_then(|s| s.record.phase.command_id().map(str::to_string));
                    summary.skip(Some(id), command.as_deref(), reason);
                    if matches!(trigger, LaunchTrigger::Sweep { .. }) {
                        self.heartbeat(launch, summary).await?;
                    }
                    return Ok(());
                }
                (LaunchStep::Complete { result, reason }, _) => {
                    return self.complete(launch, result, reason, summary).await
                }
                (LaunchStep::Check { command_id }, Some(stored)) => {
                    return self.check_sent(launch, stored, &command_id, summary).await
                }
                (LaunchStep::Claim, _) => {
                    let tags = autoscaling::instance_tags(&self.clients.ec2, id)
                        .await?
                        .ok_or_else(|| PatchError::NoSuchInstance {
                            instance_id: id.to_string(),
                        })?;
                    let Some(group) =
                        patch_group(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    else {
                        return self
                            .complete(
                                launch,
                                LifecycleResult::Continue,
                                "no patch group tag".into(),
                                summary,
                            )
                            .await;
                    };
                    let record = LaunchRecord {
                        instance_id: id.to_string(),
                        group: launch.group.to_string(),
                        hook: launch.hook.to_string(),
                        token: launch.token.map(str::to_string),
                        warm_pool: launch.warm_pool,
                        patch_group: group,
                        first_seen: now,
                        phase: LaunchPhase::Claimed {
                            owner_deadline: self.deadline,
                        },
                    };
                    if self.dry_run {
                        summary.commands.push(launch_command(None, &record));
                        return Ok(());
                    }
                    self.write_launch(&key, &record, None)
                        .await?
                        .map(|version| Stored { version, record })
                }
                (LaunchStep::TakeOver, Some(mut stored)) => {
                    if self.dry_run {
                        summary.commands.push(launch_command(None, &stored.record));
                        return Ok(());
                    }
                    let claimed = LaunchPhase::Claimed {
                        owner_deadline: self.deadline,
                    };
                    self.advance(&key, &mut stored, claimed)
                        .await?
                        .then_some(stored)
                }
                (LaunchStep::LookUp { fence, since }, Some(mut stored)) => {
                    let LaunchPhase::Sending { owner_deadline, .. } = stored.record.phase else {
                        continue;
                    };
                    let found = ssm::find_command(
                        &self.clients.ssm,
                        Some(id),
                        &fence,
                        since - LOOKUP_SLACK,
                    )
                    .await?;
                    match resolve_sending(found.as_deref(), owner_deadline, now) {
                        Resolution::Skip(reason) => {
                            summary.skip(Some(id), None, reason);
                            return Ok(());
                        }
                        Resolution::Adopt(command_id) => {
                            if self.dry_run {
                                summary.skip(
                                    Some(id),
                                    Some(&command_id),
                                    "would adopt the command sent before a crash",
                                );
                                return Ok(());
                            }
                            let sent = LaunchPhase::Sent {
                                command_id: command_id.clone(),
                                sent_at: since,
                            };
                            if self.advance(&key, &mut stored, sent).await? {
                                tracing::info!(instance_id = id, action = "adopt_command", result = "adopted", command_id = %command_id, "adopted the command of a crashed invocation");
                                summary.skip(Some(id), Some(&command_id), "adopted: the patch command was sent before a crash; not sent again");
                                return Ok(());
                            }
                            None
                        }
                        Resolution::TakeOver => {
                            if self.dry_run {
                                summary.commands.push(launch_command(None, &stored.record));
                                return Ok(());
                            }
                            let claimed = LaunchPhase::Claimed {
                                owner_deadline: self.deadline,
                            };
                            self.advance(&key, &mut stored, claimed)
                                .await?
                                .then_some(stored)
                        }
                    }
                }
                // A step that needs a record always comes with one.
                (_, None) => None,
            };
            if let Some(owned) = owned {
                return self
                    .wait_and_send(launch, &key, owned, summary, wait_until)
                    .await;
            }
            // Another invocation changed the record first: read it again.
        }
        Err(PatchError::StateContended { key })
    }

    async fn write_launch(
        &self,
        key: &str,
        record: &LaunchRecord,
        version: Option<u64>,
    ) -> Result<Option<u64>, PatchError> {
        let item = Item {
            key,
            kind: "launch",
            state: record.phase.name(),
            record,
            expires_at: record.expires_at(Timestamp::now()),
        };
        self.store.write(&item, version).await
    }

    /// Moves an owned record to `phase` (only if nobody changed it since);
    /// `false` when another invocation took it over.
    async fn advance(
        &self,
        key: &str,
        owned: &mut Stored<LaunchRecord>,
        phase: LaunchPhase,
    ) -> Result<bool, PatchError> {
        owned.record.phase = phase;
        match self
            .write_launch(key, &owned.record, Some(owned.version))
            .await?
        {
            Some(version) => {
                owned.version = version;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// This invocation holds the claim: wait for the agent, then send.
    async fn wait_and_send(
        &self,
        launch: &Launch<'_>,
        key: &str,
        mut owned: Stored<LaunchRecord>,
        summary: &mut Summary,
        wait_until: Timestamp,
    ) -> Result<(), PatchError> {
        let id = launch.instance_id;
        let budget_end =
            owned.record.first_seen + duration(self.settings.agent_registration_timeout);
        let wait_end = wait_until.min(self.deadline - DEADLINE_MARGIN);
        let mut last_beat = Timestamp::now();
        loop {
            if ssm::agent_online(&self.clients.ssm, id).await? {
                let since = Timestamp::now();
                let fence = new_fence(key, since);
                let sending = LaunchPhase::Sending {
                    fence: fence.clone(),
                    since,
                    owner_deadline: self.deadline,
                };
                if !self.advance(key, &mut owned, sending).await? {
                    summary.skip(Some(id), None, TAKEN_OVER);
                    return Ok(());
                }
                let comment = command_comment(
                    &fence,
                    &format!("{LAUNCH_COMMENT} {}/{}", launch.group, launch.hook),
                );
                let sent = match ssm::send_launch_command(&self.clients.ssm, id, &comment).await {
                    Ok(sent) => sent,
                    Err(error) => {
                        // The call may or may not have reached SSM: stay
                        // "sending" (a retry looks the command up first), but
                        // give the claim up so the retry need not wait.
                        owned.record.phase = LaunchPhase::Sending {
                            fence,
                            since,
                            owner_deadline: Timestamp::now(),
                        };
                        let _ = self
                            .write_launch(key, &owned.record, Some(owned.version))
                            .await;
                        return Err(error);
                    }
                };
                match sent {
                    Sent::Command(command_id) => {
                        owned.record.phase = LaunchPhase::Sent {
                            command_id: command_id.clone(),
                            sent_at: since,
                        };
                        tracing::info!(instance_id = id, action = "send_command", result = "sent", command_id = %command_id, patch_group = %owned.record.patch_group, "patch command sent");
                        summary
                            .commands
                            .push(launch_command(Some(command_id.clone()), &owned.record));
                        if self
                            .write_launch(key, &owned.record, Some(owned.version))
                            .await?
                            .is_none()
                        {
                            // Only an adoption of this very command can come
                            // between: anything else is worth a retry.
                            let now: Option<Stored<LaunchRecord>> = self.store.get(key).await?;
                            if now.as_ref().and_then(|s| s.record.phase.command_id())
                                != Some(command_id.as_str())
                            {
                                return Err(PatchError::StateContended {
                                    key: key.to_string(),
                                });
                            }
                        }
                        return Ok(());
                    }
                    Sent::NotRegistered => {
                        let claimed = LaunchPhase::Claimed {
                            owner_deadline: self.deadline,
                        };
                        if !self.advance(key, &mut owned, claimed).await? {
                            summary.skip(Some(id), None, TAKEN_OVER);
                            return Ok(());
                        }
                    }
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
                    .record_and_complete(launch, key, owned, None, result, reason, summary)
                    .await;
            }
            if now >= wait_end {
                summary.skip(
                    Some(id),
                    None,
                    format!(
                        "SSM agent not online by {wait_end} (this invocation's time is up); the sweep continues"
                    ),
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

    /// Records the completion (only one invocation wins), then completes.
    #[allow(clippy::too_many_arguments)]
    async fn record_and_complete(
        &self,
        launch: &Launch<'_>,
        key: &str,
        mut stored: Stored<LaunchRecord>,
        command_id: Option<String>,
        result: LifecycleResult,
        reason: String,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        if !self.dry_run {
            stored.record.phase = LaunchPhase::Completed {
                command_id: command_id.clone(),
                result,
                reason: reason.clone(),
                at: Timestamp::now(),
            };
            if self
                .write_launch(key, &stored.record, Some(stored.version))
                .await?
                .is_none()
            {
                summary.skip(
                    Some(launch.instance_id),
                    command_id.as_deref(),
                    "duplicate: another invocation is completing this launch",
                );
                return Ok(());
            }
        }
        self.complete(launch, result, reason, summary).await
    }

    pub(super) async fn command_status(
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
        let key = launch_key(id);
        for _ in 0..MAX_ROUNDS {
            let stored: Option<Stored<LaunchRecord>> = self.store.get(&key).await?;
            match status_step(stored.as_ref().map(|s| &s.record), command) {
                StatusStep::Ignore(reason) => {
                    summary.skip(Some(id), Some(command), reason);
                    return Ok(());
                }
                StatusStep::Finish => {
                    let Some(stored) = stored else { continue };
                    return self.finish(stored, &detail.status, summary).await;
                }
                StatusStep::LookUp { fence, since } => {
                    let Some(mut stored) = stored else { continue };
                    let found = ssm::find_command(
                        &self.clients.ssm,
                        Some(id),
                        &fence,
                        since - LOOKUP_SLACK,
                    )
                    .await?;
                    if found.as_deref() != Some(command) || self.dry_run {
                        return Err(PatchError::StatusTooEarly {
                            command_id: command.to_string(),
                            instance_id: id.to_string(),
                        });
                    }
                    stored.record.phase = LaunchPhase::Sent {
                        command_id: command.to_string(),
                        sent_at: since,
                    };
                    if let Some(version) = self
                        .write_launch(&key, &stored.record, Some(stored.version))
                        .await?
                    {
                        stored.version = version;
                        return self.finish(stored, &detail.status, summary).await;
                    }
                }
            }
        }
        Err(PatchError::StateContended { key })
    }

    /// The command-level event: one per command. Only fleetops' launch
    /// commands (told by their comment, one `ListCommands`) go on to the
    /// launch-completion path; every other patch command costs no state read.
    pub(super) async fn command_finished(
        &self,
        detail: &CommandFinishedDetail,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let command = detail.command_id.as_str();
        if detail.document_name != PATCH_DOCUMENT || !is_final(&detail.status) {
            summary.skip(
                None,
                Some(command),
                format!(
                    "{} {} is not a final {PATCH_DOCUMENT} status",
                    detail.document_name, detail.status
                ),
            );
            return Ok(());
        }
        let Some((comment, instance_ids)) =
            ssm::command_comment(&self.clients.ssm, command).await?
        else {
            summary.skip(None, Some(command), "SSM does not know this command");
            return Ok(());
        };
        let ours = comment.starts_with("fleetops ");
        let kind = comment.split_whitespace().nth(2);
        if ours && kind == Some(super::scheduled::WAKE_COMMENT) {
            // A wake run's command ended: hand its woken instances back.
            let woken = self.wakes_of_command(command).await?;
            if woken.is_empty() {
                summary.skip(None, Some(command), "a wake run's command that woke nobody");
                return Ok(());
            }
            return self.return_woken(&woken, summary).await;
        }
        let is_launch = ours && kind == Some(LAUNCH_COMMENT);
        let [instance_id] = instance_ids.as_slice() else {
            summary.skip(None, Some(command), "not a fleetops launch command");
            return Ok(());
        };
        if !is_launch {
            summary.skip(
                Some(instance_id),
                Some(command),
                "not a fleetops launch command",
            );
            return Ok(());
        }
        let per_instance = CommandStatusDetail {
            command_id: command.to_string(),
            document_name: detail.document_name.clone(),
            instance_id: instance_id.clone(),
            requested_date_time: detail.requested_date_time.clone(),
            status: detail.status.clone(),
            status_details: None,
        };
        self.command_status(&per_instance, summary).await
    }

    /// The sweep found a sent command: finish it if it ended, give up on it
    /// if SSM never knew it, or keep the action alive while it runs.
    async fn check_sent(
        &self,
        launch: &Launch<'_>,
        stored: Stored<LaunchRecord>,
        command_id: &str,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let id = launch.instance_id;
        let sent_at = match stored.record.phase {
            LaunchPhase::Sent { sent_at, .. } => sent_at,
            _ => stored.record.first_seen,
        };
        match ssm::invocation_status(&self.clients.ssm, command_id, id).await? {
            Some(status) if is_final(&status) => {
                if self.dry_run {
                    summary.skip(
                        Some(id),
                        Some(command_id),
                        format!("would finish: command ended {status}"),
                    );
                    return Ok(());
                }
                self.finish(stored, &status, summary).await
            }
            None if Timestamp::now().duration_since(sent_at)
                >= duration(self.settings.agent_registration_timeout) =>
            {
                let key = launch_key(id);
                let reason = "patch invocation never appeared in SSM".to_string();
                let result = self.settings.on_failure.result();
                let token = stored.record.token.clone();
                let launch = Launch {
                    token: token.as_deref(),
                    ..*launch
                };
                self.record_and_complete(
                    &launch,
                    &key,
                    stored,
                    Some(command_id.to_string()),
                    result,
                    reason,
                    summary,
                )
                .await
            }
            _ => {
                summary.skip(Some(id), Some(command_id), "still patching");
                self.heartbeat(launch, summary).await
            }
        }
    }

    /// Checks the result of a final command and completes the action.
    async fn finish(
        &self,
        stored: Stored<LaunchRecord>,
        status: &str,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let record = stored.record.clone();
        let (command_id, sent_at) = match &record.phase {
            LaunchPhase::Sent {
                command_id,
                sent_at,
            } => (Some(command_id.clone()), *sent_at),
            _ => (None, record.first_seen),
        };
        let state = if status == "Success" {
            ssm::patch_state(&self.clients.ssm, &record.instance_id).await?
        } else {
            None
        };
        let (result, reason) = match verdict(status, sent_at, state.as_ref()) {
            Ok(reason) => (LifecycleResult::Continue, reason),
            Err(reason) => (self.settings.on_failure.result(), reason),
        };
        let launch = Launch {
            instance_id: &record.instance_id,
            group: &record.group,
            hook: &record.hook,
            token: record.token.as_deref(),
            warm_pool: record.warm_pool,
        };
        let key = launch_key(&record.instance_id);
        self.record_and_complete(&launch, &key, stored, command_id, result, reason, summary)
            .await
    }
}

fn launch_command(command_id: Option<String>, record: &LaunchRecord) -> CommandSent {
    CommandSent {
        command_id,
        patch_group: Some(record.patch_group.clone()),
        instance_ids: Some(vec![record.instance_id.clone()]),
        targets: None,
        operation: "Install",
        snapshot_id: None,
    }
}
