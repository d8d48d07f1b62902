//! The periodic sweep: instances waiting on fleetops' launch hook whose event
//! was lost, whose invocation timed out or crashed, or whose status event was
//! lost. In-service launches come from `DescribeAutoScalingInstances`,
//! warm-pool launches from `DescribeWarmPool` (where AWS lists them).

use std::collections::BTreeSet;

use futures::StreamExt;
use jiff::Timestamp;

use super::autoscaling::{self, Waiting};
use super::dispatch::{Launch, Run};
use super::error::PatchError;
use super::state::LaunchTrigger;
use super::summary::{Failure, Summary};

/// Instances the sweep works on at once.
const SWEEP_CONCURRENCY: usize = 4;

impl Run<'_> {
    pub(super) async fn sweep(&self, summary: &mut Summary) -> Result<(), PatchError> {
        let groups = autoscaling::group_tag_keys(&self.clients.autoscaling, None).await?;
        let opted: BTreeSet<String> = groups
            .iter()
            .filter(|(_, keys)| match &self.settings.group_opt_in_tag {
                Some(tag) => keys.contains(tag),
                None => true,
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in groups.keys() {
            self.remember_opt_in(name, opted.contains(name));
        }
        let ours = autoscaling::groups_with_hook(
            &self.clients.autoscaling,
            &opted,
            &self.settings.hook_name,
        )
        .await?;
        let mut waiting: Vec<Waiting> = autoscaling::waiting_instances(&self.clients.autoscaling)
            .await?
            .into_iter()
            .filter(|w| ours.contains(&w.group))
            .collect();
        for group in &ours {
            for warm in autoscaling::warm_pool_waiting(&self.clients.autoscaling, group).await? {
                if !waiting.iter().any(|w| w.instance_id == warm.instance_id) {
                    waiting.push(warm);
                }
            }
        }
        let results: Vec<(String, Summary, Result<(), PatchError>)> =
            futures::stream::iter(&waiting)
                .map(|w| async move {
                    let mut part = Summary::default();
                    let outcome = self.sweep_one(w, &mut part).await;
                    (w.instance_id.clone(), part, outcome)
                })
                .buffer_unordered(SWEEP_CONCURRENCY)
                .collect()
                .await;
        // Woken instances whose patch command ended and whose status event
        // was lost, or whose window closed before a command reached them.
        match self.woken_running().await {
            Ok(woken) => {
                if let Err(error) = self.return_woken(&woken, summary).await {
                    summary.errors.push(Failure {
                        instance_id: None,
                        error: format!("woken instances: {}", crate::error_text(&error)),
                    });
                }
            }
            Err(error) => summary.errors.push(Failure {
                instance_id: None,
                error: crate::error_text(&error),
            }),
        }
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
        let launch = Launch {
            instance_id: &waiting.instance_id,
            group: &waiting.group,
            hook: &self.settings.hook_name,
            token: None,
            warm_pool: waiting.warm_pool,
        };
        let trigger = LaunchTrigger::Sweep {
            into_service: !waiting.warm_pool,
        };
        // Without waiting for the agent: the next sweep looks again.
        self.patch_launch(&launch, trigger, summary, Timestamp::now())
            .await
    }
}
