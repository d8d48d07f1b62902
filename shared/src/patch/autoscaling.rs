//! Auto Scaling and EC2 calls of the dispatcher.

use std::collections::BTreeSet;

use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use aws_sdk_autoscaling::Client;

use super::error::PatchError;
use super::settings::LifecycleResult;

/// Which lifecycle action to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRef<'a> {
    pub group: &'a str,
    pub hook: &'a str,
    pub instance_id: &'a str,
    pub token: Option<&'a str>,
}

/// Whether the call reached an active action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    Done,
    /// `ValidationError` "No active Lifecycle Action": completed before (or timed out).
    NoActiveAction,
}

fn no_active_action(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("ValidationError")
        && message.is_some_and(|m| m.contains("No active Lifecycle Action"))
}

pub async fn complete(
    asg: &Client,
    action: &ActionRef<'_>,
    result: LifecycleResult,
) -> Result<Reached, PatchError> {
    let outcome = asg
        .complete_lifecycle_action()
        .auto_scaling_group_name(action.group)
        .lifecycle_hook_name(action.hook)
        .instance_id(action.instance_id)
        .set_lifecycle_action_token(action.token.map(str::to_string))
        .lifecycle_action_result(result.as_str())
        .send()
        .await;
    match outcome {
        Ok(_) => Ok(Reached::Done),
        Err(e) if no_active_action(e.code(), e.message()) => Ok(Reached::NoActiveAction),
        Err(source) => Err(PatchError::Complete {
            instance_id: action.instance_id.to_string(),
            source,
        }),
    }
}

pub async fn heartbeat(asg: &Client, action: &ActionRef<'_>) -> Result<Reached, PatchError> {
    let outcome = asg
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(action.group)
        .lifecycle_hook_name(action.hook)
        .instance_id(action.instance_id)
        .set_lifecycle_action_token(action.token.map(str::to_string))
        .send()
        .await;
    match outcome {
        Ok(_) => Ok(Reached::Done),
        Err(e) if no_active_action(e.code(), e.message()) => Ok(Reached::NoActiveAction),
        Err(source) => Err(PatchError::Heartbeat {
            instance_id: action.instance_id.to_string(),
            source,
        }),
    }
}

/// An instance waiting on a launch hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub instance_id: String,
    pub group: String,
    pub warm_pool: bool,
}

/// Every instance in `Pending:Wait` / `Warmed:Pending:Wait`, all pages.
pub async fn waiting_instances(asg: &Client) -> Result<Vec<Waiting>, PatchError> {
    let mut pages = asg
        .describe_auto_scaling_instances()
        .max_records(50)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|source| PatchError::ListInstances { source })?;
        for i in page.auto_scaling_instances() {
            let state = i.lifecycle_state().unwrap_or_default();
            if state == "Pending:Wait" || state == "Warmed:Pending:Wait" {
                out.push(Waiting {
                    instance_id: i.instance_id().unwrap_or_default().to_string(),
                    group: i.auto_scaling_group_name().unwrap_or_default().to_string(),
                    warm_pool: state.starts_with("Warmed:"),
                });
            }
        }
    }
    Ok(out)
}

/// The groups among `groups` that have the launch hook `hook`.
pub async fn groups_with_hook(
    asg: &Client,
    groups: &BTreeSet<String>,
    hook: &str,
) -> Result<BTreeSet<String>, PatchError> {
    let mut out = BTreeSet::new();
    for group in groups {
        let output = asg
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .lifecycle_hook_names(hook)
            .send()
            .await
            .map_err(|source| PatchError::Hooks {
                group: group.clone(),
                source,
            })?;
        if output.lifecycle_hooks().iter().any(|h| {
            h.lifecycle_hook_name() == Some(hook)
                && h.lifecycle_transition() == Some(super::events::LAUNCHING)
        }) {
            out.insert(group.clone());
        }
    }
    Ok(out)
}

/// The instance's tags; `Ok(None)` when EC2 does not know it.
pub async fn instance_tags(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<Option<Vec<(String, String)>>, PatchError> {
    let output = match ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
    {
        Ok(output) => output,
        Err(e)
            if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e)
                == Some("InvalidInstanceID.NotFound") =>
        {
            return Ok(None)
        }
        Err(source) => {
            return Err(PatchError::Tags {
                instance_id: instance_id.to_string(),
                source,
            })
        }
    };
    Ok(output
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(instance_id))
        .map(|i| {
            i.tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        }))
}

/// Running instances whose patch group comes from the fallback tag
/// `PatchGroup=<group>` alone (no `Patch Group` tag), all pages.
pub async fn instances_tagged_only_patchgroup(
    ec2: &aws_sdk_ec2::Client,
    group: &str,
) -> Result<Vec<String>, PatchError> {
    use aws_sdk_ec2::types::Filter;
    let mut pages = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:PatchGroup")
                .values(group)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .max_results(1000)
        .into_paginator()
        .send();
    let mut ids = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|source| PatchError::FallbackTagged {
            group: group.to_string(),
            source,
        })?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let has_primary = instance
                .tags()
                .iter()
                .any(|t| t.key() == Some("Patch Group"));
            if let (false, Some(id)) = (has_primary, instance.instance_id()) {
                ids.push(id.to_string());
            }
        }
    }
    Ok(ids)
}
