//! The periodic sweep: instances waiting on fleetops' launch hook whose event
//! was lost, whose invocation timed out, or whose status event was lost.

use std::collections::BTreeSet;

use futures::StreamExt;
use jiff::Timestamp;

use super::autoscaling::{self, Waiting};
use super::decide::{is_final, LaunchRecord};
use super::dispatch::{duration, Launch, Run};
use super::error::PatchError;
use super::settings::LifecycleResult;
use super::ssm;
use super::summary::{Failure, Summary};

/// Instances the sweep works on at once.
const SWEEP_CONCURRENCY: usize = 4;

impl Run<'_> {
    pub(super) async fn sweep(&self, summary: &mut Summary) -> Result<(), PatchError> {
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
            warm_pool: waiting.warm_pool,
        };
        let Some(mut record) = record else {
            // The launch event was lost: handle it now, without waiting for the agent.
            return self.patch_launch(&launch, summary, Timestamp::now()).await;
        };
        if record.completion.is_some() && record.warm_pool && !waiting.warm_pool {
            // Patched when it went into the warm pool; now it waits to go into
            // service and its lifecycle event was lost.
            return self
                .complete(
                    &launch,
                    Some((name.as_str(), &mut record)),
                    LifecycleResult::Continue,
                    "from the warm pool into service: patched when it was warmed".into(),
                    summary,
                )
                .await;
        }
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
