//! Patching comes first: instances on which `AWS-RunPatchBaseline` is
//! running (sent by fleetops, Patch Manager, a maintenance window or a person)
//! are never stopped by a tick. Read only in regions where the tick would stop
//! something: one `ListCommands` (commands still executing), then the
//! invocations of those commands only.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey, CommandInvocationStatus};

use super::plan::{Action, Skipped, TickPlan};

const PATCH_DOCUMENT: &str = "AWS-RunPatchBaseline";

#[derive(Debug, thiserror::Error)]
#[error("reading the patch commands in progress in {region} failed: {text}")]
pub struct PatchingError {
    pub region: String,
    pub text: String,
}

/// Instance id -> the patch command in progress on it (`Pending`,
/// `InProgress` or `Delayed`).
pub async fn instances_patching(
    ssm: &aws_sdk_ssm::Client,
    region: &str,
) -> Result<BTreeMap<String, String>, PatchingError> {
    let fail = |e: &(dyn std::error::Error + 'static)| PatchingError {
        region: region.to_string(),
        text: crate::error_text(e),
    };
    let filter = |key: CommandFilterKey, value: &str| {
        CommandFilter::builder()
            .key(key)
            .value(value)
            .build()
            .expect("key and value are set")
    };
    let mut executing = Vec::new();
    let mut pages = ssm
        .list_commands()
        .filters(filter(CommandFilterKey::DocumentName, PATCH_DOCUMENT))
        .filters(filter(CommandFilterKey::ExecutionStage, "Executing"))
        .max_results(50)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| fail(&e))?;
        executing.extend(
            page.commands()
                .iter()
                .filter_map(|c| c.command_id().map(str::to_string)),
        );
    }
    let mut patching = BTreeMap::new();
    for command_id in executing {
        let mut pages = ssm
            .list_command_invocations()
            .command_id(&command_id)
            .max_results(50)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fail(&e))?;
            for invocation in page.command_invocations() {
                let running = matches!(
                    invocation.status(),
                    Some(
                        CommandInvocationStatus::Pending
                            | CommandInvocationStatus::InProgress
                            | CommandInvocationStatus::Delayed
                    )
                );
                if let (true, Some(id)) = (running, invocation.instance_id()) {
                    patching.insert(id.to_string(), command_id.clone());
                }
            }
        }
    }
    Ok(patching)
}

/// Whether the plan stops anything in `region` (only then is patching read).
pub fn stops_in(plan: &TickPlan, region: &str) -> bool {
    plan.actions
        .iter()
        .any(|a| a.region == region && matches!(a.action, Action::Stop { .. }))
}

/// Turns the planned stops of instances being patched in `region` into skips
/// whose reason says `patching`. When what is patching could not be read, no
/// stop in the region goes ahead: a patch run cut off by a stop is worse than
/// a stop one tick late.
pub fn hold_for_patching(
    plan: &mut TickPlan,
    region: &str,
    patching: Result<&BTreeMap<String, String>, &PatchingError>,
) {
    let mut kept = Vec::with_capacity(plan.actions.len());
    for action in plan.actions.drain(..) {
        let stop = action.region == region && matches!(action.action, Action::Stop { .. });
        let reason = match (&patching, stop) {
            (_, false) => None,
            (Ok(patching), true) => patching.get(&action.instance_id).map(|command| {
                format!("patching: {PATCH_DOCUMENT} command {command} is in progress; stopped at the first tick after it ends")
            }),
            (Err(error), true) => Some(format!(
                "patching state unknown ({error}); not stopped, so that no patch run is cut off"
            )),
        };
        match reason {
            Some(reason) => plan.skipped.push(Skipped {
                instance_id: action.instance_id,
                reason,
            }),
            None => kept.push(action),
        }
    }
    plan.actions = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plan::PlannedAction;

    fn action(id: &str, region: &str, action: Action) -> PlannedAction {
        PlannedAction {
            instance_id: id.into(),
            region: region.into(),
            action,
            applied: None,
        }
    }

    const STOP: Action = Action::Stop { hibernate: false };

    #[test]
    fn only_stops_of_patching_instances_in_the_region_are_held() {
        let mut plan = TickPlan {
            actions: vec![
                action("i-patching", "eu-west-1", STOP),
                action("i-idle", "eu-west-1", STOP),
                action("i-patching-start", "eu-west-1", Action::Start),
                action("i-other-region", "us-east-1", STOP),
            ],
            ..TickPlan::default()
        };
        let patching = BTreeMap::from([
            ("i-patching".to_string(), "c1".to_string()),
            ("i-patching-start".to_string(), "c1".to_string()),
        ]);
        assert!(stops_in(&plan, "eu-west-1"));
        hold_for_patching(&mut plan, "eu-west-1", Ok(&patching));
        let kept: Vec<&str> = plan
            .actions
            .iter()
            .map(|a| a.instance_id.as_str())
            .collect();
        assert_eq!(kept, ["i-idle", "i-patching-start", "i-other-region"]);
        assert_eq!(plan.skipped[0].instance_id, "i-patching");
        assert!(plan.skipped[0].reason.contains("patching"));
    }

    #[test]
    fn an_unreadable_patching_state_holds_every_stop_of_the_region() {
        let mut plan = TickPlan {
            actions: vec![
                action("i-1", "eu-west-1", STOP),
                action("i-2", "eu-west-1", Action::Start),
            ],
            ..TickPlan::default()
        };
        let error = PatchingError {
            region: "eu-west-1".into(),
            text: "ThrottlingException".into(),
        };
        hold_for_patching(&mut plan, "eu-west-1", Err(&error));
        assert_eq!(plan.actions.len(), 1);
        assert!(plan.skipped[0].reason.contains("patching state unknown"));
    }
}
