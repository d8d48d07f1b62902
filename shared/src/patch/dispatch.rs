//! One invocation: a launch, a command status, a schedule or the sweep. The
//! handling of each trigger lives in its own file (`launch.rs`, `scheduled.rs`,
//! `sweep.rs`); this one holds what they share: the opt-in check, completing a
//! lifecycle action and recording heartbeats.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::autoscaling::{self, ActionRef, Reached};
use super::error::PatchError;
use super::events::{PatchRequest, Trigger};
use super::settings::{LifecycleResult, PatchSettings};
use super::store::Store;
use super::summary::{LifecycleAction, Summary};

/// The clients the dispatcher needs.
pub struct Clients {
    pub ssm: aws_sdk_ssm::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

/// Time left for waiting before the Lambda deadline.
pub(super) const DEADLINE_MARGIN: SignedDuration = SignedDuration::from_secs(5);
/// A heartbeat at least this often while waiting for an agent.
pub(super) const HEARTBEAT_EVERY: SignedDuration = SignedDuration::from_secs(60);
/// Re-reads of a record that another invocation keeps changing.
pub(super) const MAX_ROUNDS: usize = 4;

pub(super) struct Run<'a> {
    pub(super) clients: &'a Clients,
    pub(super) settings: &'a PatchSettings,
    pub(super) store: Store,
    pub(super) dry_run: bool,
    /// The Lambda deadline (the invocation must be done by then); a record
    /// this invocation holds says so, and may be taken over after it.
    pub(super) deadline: Timestamp,
    /// Whether each Auto Scaling group opted in, read once per invocation.
    opted_in: Mutex<BTreeMap<String, bool>>,
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
        store: Store {
            client: clients.dynamodb.clone(),
            table: settings.state_table.clone(),
        },
        dry_run: request.dry_run || settings.dry_run,
        deadline,
        opted_in: Mutex::new(BTreeMap::new()),
    };
    let mut summary = Summary {
        dry_run: run.dry_run,
        ..Summary::default()
    };
    match request.trigger {
        Trigger::Launch(detail) => run.launch(&detail, &mut summary).await?,
        Trigger::CommandStatus(detail) => run.command_status(&detail, &mut summary).await?,
        Trigger::CommandFinished(detail) => run.command_finished(&detail, &mut summary).await?,
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
pub(super) struct Launch<'a> {
    pub(super) instance_id: &'a str,
    pub(super) group: &'a str,
    pub(super) hook: &'a str,
    pub(super) token: Option<&'a str>,
    /// Launched into the warm pool (patched now, continued at once when it
    /// later moves into service).
    pub(super) warm_pool: bool,
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
    /// Whether `group` carries the opt-in tag (always, without one configured).
    pub(super) async fn opted_in(&self, group: &str) -> Result<bool, PatchError> {
        let Some(tag) = &self.settings.group_opt_in_tag else {
            return Ok(true);
        };
        if let Some(known) = self.cached_opt_in(group) {
            return Ok(known);
        }
        let names = [group.to_string()];
        let tags = autoscaling::group_tag_keys(&self.clients.autoscaling, Some(&names)).await?;
        let opted = tags.get(group).is_some_and(|keys| keys.contains(tag));
        self.remember_opt_in(group, opted);
        Ok(opted)
    }

    fn cached_opt_in(&self, group: &str) -> Option<bool> {
        self.opted_in
            .lock()
            .ok()
            .and_then(|cache| cache.get(group).copied())
    }

    pub(super) fn remember_opt_in(&self, group: &str, opted: bool) {
        if let Ok(mut cache) = self.opted_in.lock() {
            cache.insert(group.to_string(), opted);
        }
    }

    pub(super) fn not_opted_in_reason(&self, group: &str) -> String {
        format!(
            "group {group} has not opted in (no tag {})",
            self.settings
                .group_opt_in_tag
                .as_deref()
                .unwrap_or_default()
        )
    }

    pub(super) async fn heartbeat(
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

    /// Completes the lifecycle action. A caller that keeps a record has
    /// already recorded the completion (so only one invocation gets here).
    pub(super) async fn complete(
        &self,
        launch: &Launch<'_>,
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
}

pub(super) fn duration(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}
