//! Patch windows that wake stopped instances (`wake_stopped`): the calls.
//! The decisions are `wake_state.rs`'s.
//!
//! A run claims each stopped, `Schedule`-tagged instance of its group with a
//! conditional write, tags it `fleetops:woken=<window end>` (so the scheduler
//! never stops it while the window is open), starts it, and waits a little
//! for the agents; the run's command then reaches it, delivered by SSM as
//! soon as its agent is online, until the window closes (`TimeoutSeconds`).
//! When its command has ended (the command-level status event, or the sweep),
//! it is stopped again unless its schedule wants it running by then.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use jiff::Timestamp;

use super::decide::is_final;
use super::dispatch::{Run, DEADLINE_MARGIN};
use super::error::PatchError;
use super::scheduled::{FallbackRecord, Owned};
use super::ssm;
use super::state::{TargetPhase, ABANDONED_KEEP, RUN_KEEP};
use super::store::{run_instance_key, wake_key, wakes_of_command_key, Item, Stored};
use super::summary::{Failure, Returned, Summary};
use super::wake_state::{
    return_step, wake_claim, CommandOnInstance, ReturnStep, WakeClaim, WakePhase, WakeRecord,
};
use crate::scheduler::ec2::{change_state, record_applied, remove_tag, StateChange};
use crate::scheduler::{override_keeps_stopped, wants_running, ASG_TAG, MAX_TAGS, OVERRIDE_TAG};
use crate::tags::{PATCH_GROUP_FALLBACK_TAG, PATCH_GROUP_TAG, WOKEN_TAG};

/// The woken instances a command reached (`wakes#<command-id>`), so that the
/// command's status event finds them without listing its invocations.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct CommandWakes {
    command_id: String,
    instance_ids: Vec<String>,
}

/// A stopped instance of the group, as the run sees it.
struct Sleeper {
    instance_id: String,
    tags: BTreeMap<String, String>,
}

impl Run<'_> {
    /// Claims, tags and starts the group's stopped, scheduled instances; then
    /// waits (within the invocation's time) for their agents.
    pub(super) async fn wake_group(
        &self,
        owned: &mut Owned<'_>,
        window_end: Timestamp,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let now = Timestamp::now();
        if now >= window_end {
            summary.skip(
                None,
                None,
                format!(
                    "the patch window closed at {window_end} before the run: no instance woken"
                ),
            );
            return Ok(());
        }
        let mut to_start = Vec::new();
        for sleeper in self.sleepers(&owned.patch.patch_group).await? {
            if let Some(reason) = not_wakeable(&sleeper, now) {
                summary.skip(Some(&sleeper.instance_id), None, reason);
                continue;
            }
            let id = sleeper.instance_id;
            let key = wake_key(&id);
            let stored: Option<Stored<WakeRecord>> = self.store.get(&key).await?;
            let version = stored.as_ref().map(|s| s.version);
            let record = WakeRecord {
                instance_id: id.clone(),
                run: owned.key.clone(),
                window_end,
                phase: WakePhase::Starting,
            };
            let claimed = match wake_claim(stored.as_ref().map(|s| &s.record), &owned.key, now) {
                WakeClaim::Leave(reason) => {
                    summary.skip(Some(&id), None, reason);
                    continue;
                }
                WakeClaim::Resume => Some(version.unwrap_or(1)),
                WakeClaim::Create => self.write_wake(&record, None).await?,
                WakeClaim::Replace => self.write_wake(&record, version).await?,
            };
            match claimed {
                Some(version) => to_start.push((id, version)),
                None => summary.skip(
                    Some(&id),
                    None,
                    "another invocation claimed it at the same moment; not woken twice",
                ),
            }
        }
        if to_start.is_empty() {
            return Ok(());
        }
        for (id, _) in &to_start {
            if !owned.stored.record.woken.contains(id) {
                owned.stored.record.woken.push(id.clone());
            }
        }
        self.save_run(owned).await?;

        // The tag before the start: the scheduler must never see a woken
        // instance it does not know about.
        let ids: Vec<String> = to_start.iter().map(|(id, _)| id.clone()).collect();
        let untagged: BTreeMap<String, String> =
            record_applied(&self.clients.ec2, WOKEN_TAG, &window_end.to_string(), &ids)
                .await
                .into_iter()
                .collect();
        let tagged: Vec<String> = ids
            .iter()
            .filter(|id| !untagged.contains_key(*id))
            .cloned()
            .collect();
        let started = change_state(&self.clients.ec2, StateChange::Start, &tagged).await;
        let mut failed: BTreeMap<String, String> = started.failed.into_iter().collect();
        for (id, error) in untagged {
            failed.insert(
                id,
                format!("tag {WOKEN_TAG} could not be written ({error})"),
            );
        }
        for (id, version) in &to_start {
            let phase = match failed.get(id) {
                Some(error) => {
                    tracing::warn!(instance_id = %id, action = "wake", result = "failed", error = %error);
                    summary.errors.push(Failure {
                        instance_id: Some(id.clone()),
                        error: format!("not woken for the patch window: start failed: {error}"),
                    });
                    WakePhase::StartFailed {
                        error: error.clone(),
                    }
                }
                None => {
                    tracing::info!(instance_id = %id, action = "wake", result = "ok", window_end = %window_end);
                    summary.woken.push(id.clone());
                    WakePhase::Started
                }
            };
            let record = WakeRecord {
                instance_id: id.clone(),
                run: owned.key.clone(),
                window_end,
                phase,
            };
            // Losing this write means another invocation moved the wake on.
            self.write_wake(&record, Some(*version)).await?;
        }
        let stopped_again = self.wait_for_agents(&started.done).await;
        self.report_starts_that_did_not_hold(window_end, stopped_again, summary)
            .await
    }

    /// An instance whose agent is not online may be stopped again already: a
    /// start that did not hold (a KMS grant missing for its volumes, no
    /// capacity). It is reported, and never counted as woken.
    async fn report_starts_that_did_not_hold(
        &self,
        window_end: Timestamp,
        stopped_again: BTreeMap<String, String>,
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        for (id, reason) in stopped_again {
            let id = id.as_str();
            summary.woken.retain(|w| w != id);
            summary.errors.push(Failure {
                instance_id: Some(id.to_string()),
                error: format!("not woken for the patch window: start did not hold ({reason})"),
            });
            let Some(stored) = self.store.get::<WakeRecord>(&wake_key(id)).await? else {
                continue;
            };
            let record = WakeRecord {
                window_end,
                phase: WakePhase::StartFailed { error: reason },
                ..stored.record
            };
            self.write_wake(&record, Some(stored.version)).await?;
        }
        Ok(())
    }

    /// The group's stopped instances that carry the schedule tag (by
    /// `Patch Group`, or by `PatchGroup` alone).
    async fn sleepers(&self, group: &str) -> Result<Vec<Sleeper>, PatchError> {
        let mut found: BTreeMap<String, Sleeper> = BTreeMap::new();
        for key in [PATCH_GROUP_TAG, PATCH_GROUP_FALLBACK_TAG] {
            let mut pages = self
                .clients
                .ec2
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{key}"))
                        .values(group)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("tag-key")
                        .values(&self.settings.schedule_tag)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("stopped")
                        .build(),
                )
                .max_results(1000)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|source| PatchError::WakeCandidates {
                    group: group.to_string(),
                    source,
                })?;
                for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                    let Some(id) = instance.instance_id() else {
                        continue;
                    };
                    let tags = crate::tags::ec2_tag_map(instance.tags());
                    // Its patch group must be this one as Patch Manager reads it.
                    let pairs = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                    if crate::tags::patch_group(pairs).as_deref() == Some(group) {
                        found.insert(
                            id.to_string(),
                            Sleeper {
                                instance_id: id.to_string(),
                                tags,
                            },
                        );
                    }
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// Polls the woken instances' agents until all are online or the time
    /// this invocation may spend is up; SSM delivers the command to the late
    /// ones when they come online, until the window closes.
    /// Returns the instances that stopped again meanwhile, with EC2's state
    /// reason (a start that did not hold).
    async fn wait_for_agents(&self, ids: &[String]) -> BTreeMap<String, String> {
        let poll = super::dispatch::duration(self.settings.agent_poll_interval);
        let budget = super::dispatch::duration(self.settings.agent_registration_timeout);
        let give_up = (Timestamp::now() + budget).min(self.deadline - DEADLINE_MARGIN - poll);
        let mut waiting: Vec<&String> = ids.iter().collect();
        // Stopped again already (a start that did not hold): not worth waiting for.
        let mut stopped_again: BTreeMap<String, String> = BTreeMap::new();
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for id in waiting {
                if !matches!(ssm::agent_online(&self.clients.ssm, id).await, Ok(true)) {
                    still.push(id);
                }
            }
            let stopped = self.stopped_among(&still).await;
            waiting = still
                .into_iter()
                .filter(|id| !stopped.contains_key(*id))
                .collect();
            stopped_again.extend(stopped);
            if waiting.is_empty() || Timestamp::now() + poll >= give_up {
                break;
            }
            tokio::time::sleep(std::time::Duration::try_from(poll).unwrap_or_default()).await;
        }
        for id in &waiting {
            tracing::info!(instance_id = %id, action = "wake", result = "agent-not-online-yet", "the command is delivered when its agent comes online, until the window closes");
        }
        stopped_again
    }

    /// The ids among `ids` that EC2 shows stopped, with their state reason
    /// (none when it cannot say).
    async fn stopped_among(&self, ids: &[&String]) -> BTreeMap<String, String> {
        if ids.is_empty() {
            return Default::default();
        }
        let request = self
            .clients
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.iter().map(|id| (*id).clone()).collect()));
        let Ok(output) = request.send().await else {
            return Default::default();
        };
        output
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .is_some_and(|n| n.as_str() == "stopped")
            })
            .filter_map(|i| {
                let reason = i.state_reason().map_or_else(
                    || "no state reason".to_string(),
                    |r| {
                        format!(
                            "{}: {}",
                            r.code().unwrap_or_default(),
                            r.message().unwrap_or_default()
                        )
                    },
                );
                Some((i.instance_id()?.to_string(), reason))
            })
            .collect()
    }

    /// After the run's commands: each woken instance records the command that
    /// reaches it, and each command the woken instances it reaches.
    pub(super) async fn finish_wakes(&self, owned: &Owned<'_>) -> Result<(), PatchError> {
        let primary = match &owned.stored.record.primary {
            Some(TargetPhase::Sent { command_id, .. }) => Some(command_id.clone()),
            _ => None,
        };
        let mut by_command: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for id in &owned.stored.record.woken {
            let Some(stored) = self.store.get::<WakeRecord>(&wake_key(id)).await? else {
                continue;
            };
            if stored.record.run != owned.key {
                continue;
            }
            if let WakePhase::Sent { command_id } = &stored.record.phase {
                by_command
                    .entry(command_id.clone())
                    .or_default()
                    .push(id.clone());
                continue;
            }
            if !matches!(
                stored.record.phase,
                WakePhase::Starting | WakePhase::Started
            ) {
                continue;
            }
            let fallback: Option<Stored<FallbackRecord>> =
                self.store.get(&run_instance_key(&owned.key, id)).await?;
            let command = match fallback.map(|f| f.record.phase) {
                Some(TargetPhase::Sent { command_id, .. }) => Some(command_id),
                _ => primary.clone(),
            };
            let Some(command_id) = command else { continue };
            let record = WakeRecord {
                phase: WakePhase::Sent {
                    command_id: command_id.clone(),
                },
                ..stored.record
            };
            self.write_wake(&record, Some(stored.version)).await?;
            by_command.entry(command_id).or_default().push(id.clone());
        }
        for (command_id, instance_ids) in by_command {
            let key = wakes_of_command_key(&command_id);
            let record = CommandWakes {
                command_id,
                instance_ids,
            };
            let item = Item {
                key: &key,
                kind: "wakes",
                state: "sent",
                record: &record,
                expires_at: Timestamp::now() + ABANDONED_KEEP,
            };
            // Already there: a resumed run wrote it before.
            self.store.create(&item).await?;
        }
        Ok(())
    }

    /// The woken instances a finished command reached (its status event).
    pub(super) async fn wakes_of_command(
        &self,
        command_id: &str,
    ) -> Result<Vec<String>, PatchError> {
        let stored: Option<Stored<CommandWakes>> =
            self.store.get(&wakes_of_command_key(command_id)).await?;
        Ok(stored.map(|s| s.record.instance_ids).unwrap_or_default())
    }

    /// Running instances carrying `fleetops:woken` (the sweep looks at them).
    pub(super) async fn woken_running(&self) -> Result<Vec<String>, PatchError> {
        let filter = Filter::builder().name("tag-key").values(WOKEN_TAG).build();
        let instances = super::autoscaling::running_instances(&self.clients.ec2, filter)
            .await
            .map_err(|source| PatchError::WakeCandidates {
                group: format!("(tag {WOKEN_TAG})"),
                source,
            })?;
        Ok(instances
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect())
    }

    /// Hands woken instances back once their patching is over: stopped again
    /// unless their schedule wants them running now. One conditional write
    /// decides who does it, before the stop.
    pub(super) async fn return_woken(
        &self,
        ids: &[String],
        summary: &mut Summary,
    ) -> Result<(), PatchError> {
        let mut schedules = None;
        for id in ids {
            let Some(stored) = self.store.get::<WakeRecord>(&wake_key(id)).await? else {
                continue;
            };
            let now = Timestamp::now();
            let command = match &stored.record.phase {
                WakePhase::Sent { command_id } => {
                    ssm::invocation_status(&self.clients.ssm, command_id, id)
                        .await?
                        .map(|status| {
                            if is_final(&status) {
                                CommandOnInstance::Ended
                            } else {
                                CommandOnInstance::Running
                            }
                        })
                }
                _ => None,
            };
            // Whether it is time at all, before reading tags and schedules.
            match return_step(&stored.record, command, Some(false), now) {
                ReturnStep::Done => continue,
                ReturnStep::Wait(reason) => {
                    summary.skip(Some(id), None, format!("woken: {reason}; not stopped yet"));
                    continue;
                }
                ReturnStep::Stop(_) | ReturnStep::KeepRunning(_) => {}
            }
            if schedules.is_none() {
                schedules = Some(self.read_schedules().await);
            }
            let wanted = match (&schedules, self.current_tags(id).await?) {
                (Some(Ok(schedules)), Some(tags)) => {
                    wants_running(&tags, schedules, &self.settings.schedule_tag, now)
                }
                _ => None,
            };
            let step = return_step(&stored.record, command, wanted, now);
            let (stop, reason) = match step {
                ReturnStep::Stop(reason) => (true, reason),
                ReturnStep::KeepRunning(reason) => (false, reason),
                ReturnStep::Done | ReturnStep::Wait(_) => continue,
            };
            let reason = match &schedules {
                Some(Err(problem)) => format!("{reason} (schedules unreadable: {problem})"),
                _ => reason,
            };
            if self.dry_run {
                summary.skip(
                    Some(id),
                    None,
                    format!("dry run: would hand back: {reason}"),
                );
                continue;
            }
            let record = WakeRecord {
                phase: WakePhase::Returned {
                    at: now,
                    stopped: stop,
                },
                ..stored.record
            };
            if self
                .write_wake(&record, Some(stored.version))
                .await?
                .is_none()
            {
                summary.skip(Some(id), None, "another invocation hands it back");
                continue;
            }
            if stop {
                let outcome = change_state(
                    &self.clients.ec2,
                    StateChange::Stop { hibernate: false },
                    std::slice::from_ref(id),
                )
                .await;
                if let Some((_, error)) = outcome.failed.first() {
                    // The tag stays: the scheduler hands it back after the window.
                    summary.errors.push(Failure {
                        instance_id: Some(id.clone()),
                        error: format!("woken instance not stopped again: {error}; the scheduler stops it after its window"),
                    });
                    continue;
                }
            }
            for (_, error) in
                remove_tag(&self.clients.ec2, WOKEN_TAG, std::slice::from_ref(id)).await
            {
                summary.errors.push(Failure {
                    instance_id: Some(id.clone()),
                    error: format!("tag {WOKEN_TAG} not removed ({error}); the scheduler removes it after the window"),
                });
            }
            tracing::info!(instance_id = %id, action = if stop { "stop" } else { "keep-running" }, result = "ok", reason = %reason, "woken instance handed back");
            summary.returned.push(Returned {
                instance_id: id.clone(),
                stopped: stop,
                reason,
            });
        }
        Ok(())
    }

    async fn read_schedules(&self) -> Result<crate::schedule::Schedules, String> {
        let document =
            crate::ssm::get_parameter(&self.clients.ssm, &self.settings.schedules_parameter)
                .await
                .map_err(|e| crate::error_text(&e))?;
        crate::schedule::parse_schedules(&document).map_err(|e| e.to_string())
    }

    async fn current_tags(&self, id: &str) -> Result<Option<BTreeMap<String, String>>, PatchError> {
        Ok(super::autoscaling::instance_tags(&self.clients.ec2, id)
            .await?
            .map(|tags| tags.into_iter().collect()))
    }

    async fn write_wake(
        &self,
        record: &WakeRecord,
        version: Option<u64>,
    ) -> Result<Option<u64>, PatchError> {
        let key = wake_key(&record.instance_id);
        let now = Timestamp::now();
        let expires_at = match record.phase {
            WakePhase::Returned { .. } | WakePhase::StartFailed { .. } => now + RUN_KEEP,
            _ => record.window_end + ABANDONED_KEEP,
        };
        let item = Item {
            key: &key,
            kind: "wake",
            state: record.phase.name(),
            record,
            expires_at,
        };
        self.store.write(&item, version).await
    }
}

/// Why a stopped instance of the group is left asleep, if it is.
fn not_wakeable(sleeper: &Sleeper, now: Timestamp) -> Option<String> {
    if let Some(group) = sleeper.tags.get(ASG_TAG) {
        return Some(format!(
            "member of Auto Scaling group \"{group}\": not woken (the group manages its capacity)"
        ));
    }
    let pin = sleeper.tags.get(OVERRIDE_TAG).map(String::as_str);
    if override_keeps_stopped(pin, now) {
        return Some(format!(
            "{OVERRIDE_TAG}={}: not woken",
            pin.unwrap_or_default().trim()
        ));
    }
    if sleeper.tags.len() >= MAX_TAGS && !sleeper.tags.contains_key(WOKEN_TAG) {
        return Some(format!(
            "has {MAX_TAGS} tags (EC2's limit): the tag {WOKEN_TAG} cannot be written, so it is not woken (the scheduler could not tell the wake from a hand start)"
        ));
    }
    None
}
