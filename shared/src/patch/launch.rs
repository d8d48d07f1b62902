//! A scale-out: claim the launch, wait for the agent, send the patch command;
//! then the command's final status, checked against the patch state.

use std::time::Duration;

use jiff::Timestamp;

use super::autoscaling;
use super::decide::{
    decide_launch, is_final, patch_group, status_matches, verdict, LaunchDecision, LaunchRecord,
};
use super::dispatch::{duration, Launch, Run, DEADLINE_MARGIN, HEARTBEAT_EVERY};
use super::error::PatchError;
use super::events::{CommandStatusDetail, LaunchDetail, PATCH_DOCUMENT};
use super::settings::LifecycleResult;
use super::ssm::{self, Sent};
use super::summary::{CommandSent, Summary};

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
    pub(super) async fn patch_launch(
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
                    warm_pool: launch.warm_pool,
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
    pub(super) async fn finish(
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
            warm_pool: record.warm_pool,
        };
        self.complete(&launch, Some((name, record)), result, reason, summary)
            .await
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
