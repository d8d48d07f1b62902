//! A scheduled run: one command to `tag:Patch Group=<group>` and one per chunk
//! of up to 50 instances tagged only `PatchGroup` (SSM ANDs targets of
//! different keys, so the fallback needs instance ids), all with the rule's
//! rate controls and the day's snapshot id for Install.
//!
//! The run is claimed once (conditional create of its record) before anything
//! is sent; each target records "sending" before its command and the command id
//! after, so a retry resumes where the run stopped and never sends twice.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::autoscaling;
use super::decide::snapshot_id;
use super::dispatch::{Run, DEADLINE_MARGIN, MAX_ROUNDS};
use super::error::PatchError;
use super::events::{Operation, ScheduledPatch};
use super::ssm::{self, CommandTarget, SEND_COMMAND_MAX_INSTANCES};
use super::state::{
    command_comment, new_fence, run_step, target_step, RunRecord, RunStep, TargetPhase, TargetStep,
    LOOKUP_SLACK, RUN_KEEP,
};
use super::store::{run_instance_key, run_key, Item, Stored};
use super::summary::{CommandSent, Failure, Summary};

/// The word after the fence in the comment of a wake run's commands: how a
/// command's status event tells them from the others.
pub(super) const WAKE_COMMENT: &str = "wake";
/// `SendCommand`'s `TimeoutSeconds` range.
const SEND_TIMEOUT_MIN: i64 = 30;
const SEND_TIMEOUT_MAX: i64 = 172_800;

/// How often a duplicate looks at a run another invocation holds.
const RUN_POLL: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);

/// A fallback instance's record within a run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct FallbackRecord {
    pub(super) instance_id: String,
    pub(super) phase: TargetPhase,
}

/// The run as this invocation owns it.
pub(super) struct Owned<'a> {
    pub(super) patch: &'a ScheduledPatch,
    pub(super) key: String,
    pub(super) stored: Stored<RunRecord>,
    /// Targets that failed in a way a retry can mend.
    failed: Vec<String>,
}

impl Run<'_> {
    pub(super) async fn scheduled(
        &self,
        patch: &ScheduledPatch,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let now = Timestamp::now();
        let run = match patch.time {
            Some(time) => time.to_string(),
            None => format!(
                "day:{}",
                now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
            ),
        };
        let key = run_key(&patch.patch_group, patch.operation.as_str(), &run);
        let snapshot = (patch.operation == Operation::Install)
            .then(|| snapshot_id(&patch.patch_group, patch.time.unwrap_or(now)));
        let mut rounds = 0;
        while rounds < MAX_ROUNDS {
            let stored: Option<Stored<RunRecord>> = self.store.get(&key).await?;
            let now = Timestamp::now();
            let owned = match run_step(stored.as_ref().map(|s| &s.record), now) {
                // Another invocation holds the run: wait for it to finish or
                // for its time to run out (a crash), then look again. Never
                // give up silently: a retry that skipped here would lose the
                // rest of a crashed run.
                RunStep::Skip(reason)
                    if stored.as_ref().is_some_and(|s| s.record.done_at.is_none()) =>
                {
                    if now + RUN_POLL + DEADLINE_MARGIN >= self.deadline {
                        return Err(PatchError::RunInProgress { run: key, reason });
                    }
                    tokio::time::sleep(std::time::Duration::try_from(RUN_POLL).unwrap_or_default())
                        .await;
                    continue;
                }
                RunStep::Skip(reason) => {
                    let command = stored.as_ref().and_then(|s| match &s.record.primary {
                        Some(TargetPhase::Sent { command_id, .. }) => Some(command_id.clone()),
                        _ => None,
                    });
                    summary.skip(None, command.as_deref(), reason);
                    return Ok(());
                }
                RunStep::Claim => {
                    let record = RunRecord {
                        patch_group: patch.patch_group.clone(),
                        operation: patch.operation.as_str().to_string(),
                        run: run.clone(),
                        snapshot_id: snapshot.clone(),
                        owner_deadline: self.deadline,
                        primary: None,
                        done_at: None,
                        window_end: None,
                        woken: Vec::new(),
                    };
                    if self.dry_run {
                        return self.plan_run(patch, snapshot.as_deref(), summary).await;
                    }
                    self.write_run(&key, &record, None)
                        .await?
                        .map(|version| Stored { version, record })
                }
                RunStep::TakeOver => {
                    let Some(mut stored) = stored else { continue };
                    if self.dry_run {
                        return self.plan_run(patch, snapshot.as_deref(), summary).await;
                    }
                    stored.record.owner_deadline = self.deadline;
                    self.write_run(&key, &stored.record, Some(stored.version))
                        .await?
                        .map(|version| Stored { version, ..stored })
                }
            };
            rounds += 1;
            if let Some(stored) = owned {
                let mut owned = Owned {
                    patch,
                    key,
                    stored,
                    failed: Vec::new(),
                };
                return self.resume(&mut owned, summary).await;
            }
        }
        Err(PatchError::StateContended { key })
    }

    async fn write_run(
        &self,
        key: &str,
        record: &RunRecord,
        version: Option<u64>,
    ) -> Result<Option<u64>, PatchError> {
        let item = Item {
            key,
            kind: "run",
            state: if record.done_at.is_some() {
                "done"
            } else {
                "running"
            },
            record,
            expires_at: record.expires_at(Timestamp::now()),
        };
        self.store.write(&item, version).await
    }

    /// Saves the run record this invocation owns; losing it means another
    /// invocation took over (only possible after our deadline).
    pub(super) async fn save_run(&self, owned: &mut Owned<'_>) -> Result<(), PatchError> {
        match self
            .write_run(&owned.key, &owned.stored.record, Some(owned.stored.version))
            .await?
        {
            Some(version) => {
                owned.stored.version = version;
                Ok(())
            }
            None => Err(PatchError::StateContended {
                key: owned.key.clone(),
            }),
        }
    }

    /// Works every target of an owned run; done only when none failed.
    async fn resume(&self, owned: &mut Owned<'_>, summary: &mut Summary) -> Result<(), PatchError> {
        if let Some(window) = owned.patch.wake_window {
            // Fixed once, at the first claim: a retry keeps the same window.
            let window_end =
                *owned.stored.record.window_end.get_or_insert_with(|| {
                    owned.patch.time.unwrap_or_else(Timestamp::now) + window
                });
            if owned.stored.record.primary.is_none() {
                self.wake_group(owned, window_end, summary).await?;
            }
        }
        self.primary_target(owned, summary).await?;
        if let Err(error) = self.fallback_targets(owned, summary).await {
            failure(owned, summary, "fallback instances", &error);
        }
        if owned.patch.wake_window.is_some() {
            self.finish_wakes(owned).await?;
        }
        if owned.failed.is_empty() {
            owned.stored.record.done_at = Some(Timestamp::now());
            self.save_run(owned).await?;
            return Ok(());
        }
        // Give the run up at once, so Lambda's retry resumes it.
        owned.stored.record.owner_deadline = Timestamp::now();
        self.save_run(owned).await?;
        Err(PatchError::RunIncomplete {
            run: owned.key.clone(),
            failed: owned.failed.join("; "),
        })
    }

    async fn primary_target(
        &self,
        owned: &mut Owned<'_>,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let group = owned.patch.patch_group.clone();
        let target = CommandTarget::PatchGroupTag(&group);
        let step = target_step(owned.stored.record.primary.as_ref());
        if let TargetStep::Done(command_id) = &step {
            summary.skip(
                None,
                Some(command_id),
                format!("already sent to {target} (run resumed)"),
            );
            return Ok(());
        }
        if let TargetStep::LookUp { fence, since } = &step {
            if let Some(command_id) =
                ssm::find_command(&self.clients.ssm, None, fence, *since - LOOKUP_SLACK).await?
            {
                owned.stored.record.primary = Some(TargetPhase::Sent {
                    command_id: command_id.clone(),
                    sent_at: *since,
                });
                self.save_run(owned).await?;
                summary.skip(
                    None,
                    Some(&command_id),
                    format!("adopted: sent to {target} before a crash; not sent again"),
                );
                return Ok(());
            }
        }
        let since = Timestamp::now();
        let fence = new_fence(&owned.key, since);
        owned.stored.record.primary = Some(TargetPhase::Sending {
            fence: fence.clone(),
            since,
        });
        self.save_run(owned).await?;
        match self.send(owned, &target, &fence).await {
            Ok(command_id) => {
                owned.stored.record.primary = Some(TargetPhase::Sent {
                    command_id: command_id.clone(),
                    sent_at: since,
                });
                summary
                    .commands
                    .push(self.sent(owned, &target, Some(command_id)));
                self.save_run(owned).await
            }
            Err(error) => {
                failure(owned, summary, &target.to_string(), &error);
                Ok(())
            }
        }
    }

    async fn fallback_targets(
        &self,
        owned: &mut Owned<'_>,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let group = owned.patch.patch_group.clone();
        let fallback =
            autoscaling::instances_tagged_only_patchgroup(&self.clients.ec2, &group).await?;
        let managed = ssm::managed_among(&self.clients.ssm, &fallback).await?;
        let mut to_send: Vec<(String, Option<u64>)> = Vec::new();
        // Instances "sending" under one fence went out in one command.
        let mut sending: BTreeMap<(String, Timestamp), Vec<(String, u64)>> = BTreeMap::new();
        for id in &fallback {
            if !managed.contains(id) {
                summary.skip(
                    Some(id),
                    None,
                    "not managed by SSM (tagged only PatchGroup); not patched",
                );
                continue;
            }
            let key = run_instance_key(&owned.key, id);
            let stored: Option<Stored<FallbackRecord>> = self.store.get(&key).await?;
            let version = stored.as_ref().map(|s| s.version);
            match (
                target_step(stored.as_ref().map(|s| &s.record.phase)),
                version,
            ) {
                (TargetStep::Done(command_id), _) => {
                    summary.skip(Some(id), Some(&command_id), "already sent (run resumed)");
                }
                (TargetStep::LookUp { fence, since }, Some(version)) => {
                    sending
                        .entry((fence, since))
                        .or_default()
                        .push((id.clone(), version));
                }
                _ => to_send.push((id.clone(), version)),
            }
        }
        for ((fence, since), members) in sending {
            let found = ssm::find_command(
                &self.clients.ssm,
                Some(&members[0].0),
                &fence,
                since - LOOKUP_SLACK,
            )
            .await?;
            match found {
                Some(command_id) => {
                    for (id, version) in &members {
                        let record = FallbackRecord {
                            instance_id: id.clone(),
                            phase: TargetPhase::Sent {
                                command_id: command_id.clone(),
                                sent_at: since,
                            },
                        };
                        self.write_fallback(&owned.key, &record, Some(*version))
                            .await?;
                    }
                    summary.skip(None, Some(&command_id), format!("adopted: sent to {} fallback instance(s) before a crash; not sent again", members.len()));
                }
                None => to_send.extend(members.into_iter().map(|(id, v)| (id, Some(v)))),
            }
        }
        for chunk in to_send.chunks(SEND_COMMAND_MAX_INSTANCES) {
            let since = Timestamp::now();
            let fence = new_fence(&owned.key, since);
            let mut versions = Vec::with_capacity(chunk.len());
            for (id, version) in chunk {
                let record = FallbackRecord {
                    instance_id: id.clone(),
                    phase: TargetPhase::Sending {
                        fence: fence.clone(),
                        since,
                    },
                };
                let written = self.write_fallback(&owned.key, &record, *version).await?;
                versions.push(written.ok_or_else(|| PatchError::StateContended {
                    key: run_instance_key(&owned.key, id),
                })?);
            }
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let target = CommandTarget::Instances(&ids);
            match self.send(owned, &target, &fence).await {
                Ok(command_id) => {
                    for (id, version) in ids.iter().zip(versions) {
                        let record = FallbackRecord {
                            instance_id: id.clone(),
                            phase: TargetPhase::Sent {
                                command_id: command_id.clone(),
                                sent_at: since,
                            },
                        };
                        self.write_fallback(&owned.key, &record, Some(version))
                            .await?;
                    }
                    summary
                        .commands
                        .push(self.sent(owned, &target, Some(command_id)));
                }
                Err(error) => failure(owned, summary, &target.to_string(), &error),
            }
        }
        Ok(())
    }

    async fn write_fallback(
        &self,
        run_key: &str,
        record: &FallbackRecord,
        version: Option<u64>,
    ) -> Result<Option<u64>, PatchError> {
        let key = run_instance_key(run_key, &record.instance_id);
        let now = Timestamp::now();
        let item = Item {
            key: &key,
            kind: "run-instance",
            state: match record.phase {
                TargetPhase::Sending { .. } => "sending",
                TargetPhase::Sent { .. } => "sent",
            },
            record,
            expires_at: now + RUN_KEEP,
        };
        self.store.write(&item, version).await
    }

    async fn send(
        &self,
        owned: &Owned<'_>,
        target: &CommandTarget<'_>,
        fence: &str,
    ) -> Result<String, PatchError> {
        let patch = owned.patch;
        // A wake's command is only delivered within the window.
        let window_end = owned
            .stored
            .record
            .window_end
            .filter(|_| patch.wake_window.is_some());
        let timeout = window_end.map(|end| {
            let left = end.duration_since(Timestamp::now()).as_secs();
            i32::try_from(left.clamp(SEND_TIMEOUT_MIN, SEND_TIMEOUT_MAX)).unwrap_or(i32::MAX)
        });
        let verb = if window_end.is_some() {
            WAKE_COMMENT
        } else {
            "scheduled"
        };
        let snapshot = (patch.operation == Operation::Install).then(|| {
            snapshot_id(
                &patch.patch_group,
                patch.time.unwrap_or_else(Timestamp::now),
            )
        });
        let comment = command_comment(
            fence,
            &format!(
                "{verb} {} of {}",
                patch.operation.as_str(),
                patch.patch_group
            ),
        );
        let command_id = ssm::send_scheduled_command(
            &self.clients.ssm,
            patch,
            target,
            snapshot.as_deref(),
            &comment,
            timeout,
        )
        .await?;
        tracing::info!(patch_group = %patch.patch_group, action = "send_command", result = "sent", command_id = %command_id, target = %target, operation = patch.operation.as_str(), "scheduled patch command");
        Ok(command_id)
    }

    fn sent(
        &self,
        owned: &Owned<'_>,
        target: &CommandTarget<'_>,
        command_id: Option<String>,
    ) -> CommandSent {
        command_sent(
            owned.patch,
            target,
            command_id,
            owned.stored.record.snapshot_id.clone(),
        )
    }

    /// A dry run: what would be sent, nothing written.
    async fn plan_run(
        &self,
        patch: &ScheduledPatch,
        snapshot: Option<&str>,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let group = patch.patch_group.clone();
        summary.commands.push(command_sent(
            patch,
            &CommandTarget::PatchGroupTag(&group),
            None,
            snapshot.map(str::to_string),
        ));
        let fallback =
            autoscaling::instances_tagged_only_patchgroup(&self.clients.ec2, &group).await?;
        let managed = ssm::managed_among(&self.clients.ssm, &fallback).await?;
        let (managed, unmanaged): (Vec<String>, Vec<String>) =
            fallback.into_iter().partition(|id| managed.contains(id));
        for id in unmanaged {
            summary.skip(
                Some(&id),
                None,
                "not managed by SSM (tagged only PatchGroup); not patched",
            );
        }
        for chunk in managed.chunks(SEND_COMMAND_MAX_INSTANCES) {
            summary.commands.push(command_sent(
                patch,
                &CommandTarget::Instances(chunk),
                None,
                snapshot.map(str::to_string),
            ));
        }
        Ok(())
    }
}

fn command_sent(
    patch: &ScheduledPatch,
    target: &CommandTarget<'_>,
    command_id: Option<String>,
    snapshot_id: Option<String>,
) -> CommandSent {
    let (instance_ids, targets) = match target {
        CommandTarget::PatchGroupTag(_) => (None, Some(vec![target.to_string()])),
        CommandTarget::Instances(ids) => (Some(ids.to_vec()), None),
    };
    CommandSent {
        command_id,
        patch_group: Some(patch.patch_group.clone()),
        instance_ids,
        targets,
        operation: patch.operation.as_str(),
        snapshot_id,
    }
}

/// A target that failed: listed under `errors`; if a retry can mend it, the
/// run stays unfinished so that Lambda's retry resumes it.
fn failure(owned: &mut Owned<'_>, summary: &mut Summary, target: &str, error: &PatchError) {
    let text = crate::error_text(error);
    tracing::error!(target = target, action = "send_command", result = "error", error = %text, "scheduled target failed");
    if !error.is_permanent() {
        owned.failed.push(format!("{target}: {text}"));
    }
    summary.errors.push(Failure {
        instance_id: None,
        error: format!("{target}: {text}"),
    });
}
