//! A patch schedule: one command per patch group and operation, rate
//! controlled by SSM, with the day's snapshot id for Install.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::autoscaling;
use super::decide::snapshot_id;
use super::dispatch::Run;
use super::error::PatchError;
use super::events::{Operation, ScheduledPatch};
use super::ssm::{self, CommandTarget};
use super::summary::{CommandSent, Summary};

/// A second scheduled delivery within this window is a duplicate.
const SCHEDULE_DEDUP_WINDOW: SignedDuration = SignedDuration::from_secs(15 * 60);

/// The state record of a scheduled command, `<prefix>schedule/<group>/<operation>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ScheduleRecord {
    command_id: String,
    /// Commands for instances tagged only `PatchGroup` (see `scheduled`).
    #[serde(default)]
    fallback_command_ids: Vec<String>,
    #[serde(with = "super::decide::rfc3339")]
    sent_at: Timestamp,
    snapshot_id: Option<String>,
}

impl Run<'_> {
    /// Sends the schedule's command to `tag:Patch Group=<group>`. SSM ANDs
    /// targets of different keys, so instances tagged only with the fallback key
    /// `PatchGroup` get their own command by instance id (50 per command, the
    /// SendCommand limit), with the same rate controls.
    pub(super) async fn scheduled(
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
        let fallback =
            autoscaling::instances_tagged_only_patchgroup(&self.clients.ec2, &patch.patch_group)
                .await?;
        let mut targets = vec![CommandTarget::PatchGroupTag(&patch.patch_group)];
        targets.extend(
            fallback
                .chunks(ssm::SEND_COMMAND_MAX_INSTANCES)
                .map(CommandTarget::Instances),
        );
        let mut sent = Vec::with_capacity(targets.len());
        for target in &targets {
            let command_id = if self.dry_run {
                None
            } else {
                Some(
                    ssm::send_scheduled_command(
                        &self.clients.ssm,
                        patch,
                        target,
                        snapshot.as_deref(),
                    )
                    .await?,
                )
            };
            tracing::info!(patch_group = %patch.patch_group, action = "send_command", result = if self.dry_run { "dry_run" } else { "sent" }, command_id = command_id.as_deref(), target = %target, operation = patch.operation.as_str(), "scheduled patch command");
            let (instance_ids, tag_targets) = match target {
                CommandTarget::PatchGroupTag(_) => (None, Some(vec![target.to_string()])),
                CommandTarget::Instances(ids) => (Some(ids.to_vec()), None),
            };
            sent.push(CommandSent {
                command_id,
                patch_group: Some(patch.patch_group.clone()),
                instance_ids,
                targets: tag_targets,
                operation: patch.operation.as_str(),
                snapshot_id: snapshot.clone(),
            });
        }
        if !self.dry_run {
            let mut ids = sent.iter().filter_map(|c| c.command_id.clone());
            let record = ScheduleRecord {
                command_id: ids.next().unwrap_or_default(),
                fallback_command_ids: ids.collect(),
                sent_at: now,
                snapshot_id: snapshot.clone(),
            };
            ssm::write_record(&self.clients.ssm, &name, &record, false).await?;
        }
        summary.commands.extend(sent);
        Ok(())
    }
}
