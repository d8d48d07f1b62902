//! Auto Scaling and EC2 calls of the dispatcher.

use std::collections::{BTreeMap, BTreeSet};

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

/// The tag keys of every Auto Scaling group (all pages), or of the groups
/// named (`DescribeAutoScalingGroups` takes up to 100 names a call).
pub async fn group_tag_keys(
    asg: &Client,
    names: Option<&[String]>,
) -> Result<BTreeMap<String, BTreeSet<String>>, PatchError> {
    let mut out = BTreeMap::new();
    let chunks: Vec<Option<Vec<String>>> = match names {
        None => vec![None],
        Some(names) => names.chunks(100).map(|c| Some(c.to_vec())).collect(),
    };
    for chunk in chunks {
        let mut pages = asg
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(chunk.clone())
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|source| PatchError::Group {
                group: chunk
                    .as_ref()
                    .map(|c| c.join(","))
                    .unwrap_or_else(|| "(all)".into()),
                source,
            })?;
            for group in page.auto_scaling_groups() {
                let Some(name) = group.auto_scaling_group_name() else {
                    continue;
                };
                out.insert(
                    name.to_string(),
                    group
                        .tags()
                        .iter()
                        .filter_map(|t| t.key().map(str::to_string))
                        .collect(),
                );
            }
        }
    }
    Ok(out)
}

/// Instances of `group`'s warm pool waiting on a lifecycle hook
/// (`Warmed:Pending:Wait`). AWS lists warm-pool instances through
/// `DescribeWarmPool` ("the instances that are currently in the warm pool").
pub async fn warm_pool_waiting(asg: &Client, group: &str) -> Result<Vec<Waiting>, PatchError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = asg
            .describe_warm_pool()
            .auto_scaling_group_name(group)
            .max_records(50)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|source| PatchError::WarmPool {
                group: group.to_string(),
                source,
            })?;
        for i in page.instances() {
            if i.lifecycle_state().map(|s| s.as_str()) == Some("Warmed:Pending:Wait") {
                out.push(Waiting {
                    instance_id: i.instance_id().unwrap_or_default().to_string(),
                    group: group.to_string(),
                    warm_pool: true,
                });
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(out),
        }
    }
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
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("tag:PatchGroup")
        .values(group)
        .build();
    let instances =
        running_instances(ec2, filter)
            .await
            .map_err(|source| PatchError::FallbackTagged {
                group: group.to_string(),
                source,
            })?;
    Ok(instances
        .iter()
        // A blank `Patch Group` does not count (as `patch_group` reads tags),
        // and `tag:Patch Group=<group>` does not reach it either.
        .filter(|i| {
            !i.tags().iter().any(|t| {
                t.key() == Some("Patch Group") && t.value().is_some_and(|v| !v.trim().is_empty())
            })
        })
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect())
}

/// Running instances matching `filter`, all pages.
pub async fn running_instances(
    ec2: &aws_sdk_ec2::Client,
    filter: aws_sdk_ec2::types::Filter,
) -> Result<
    Vec<aws_sdk_ec2::types::Instance>,
    aws_sdk_ec2::error::SdkError<
        aws_sdk_ec2::operation::describe_instances::DescribeInstancesError,
    >,
> {
    let mut pages = ec2
        .describe_instances()
        .filters(filter)
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .max_results(1000)
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        instances.extend(
            page?
                .reservations()
                .iter()
                .flat_map(|r| r.instances().to_vec()),
        );
    }
    Ok(instances)
}
