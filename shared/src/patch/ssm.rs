//! SSM calls of the dispatcher: agents, commands, patch states.

use aws_sdk_ssm::types::{
    CommandFilter, CommandFilterKey, InstanceInformationStringFilter, PingStatus, Target,
};
use aws_sdk_ssm::Client;

use super::decide::PatchStateView;
use super::error::PatchError;
use super::events::{ScheduledPatch, PATCH_DOCUMENT};
use super::state::carries_fence;

/// Whether the instance's SSM agent is registered and `Online`. An instance SSM
/// does not know yet (`InvalidInstanceId`) is simply not online.
pub async fn agent_online(ssm: &Client, instance_id: &str) -> Result<bool, PatchError> {
    let filter = InstanceInformationStringFilter::builder()
        .key("InstanceIds")
        .values(instance_id)
        .build()
        .expect("key and values are set");
    match ssm
        .describe_instance_information()
        .filters(filter)
        .send()
        .await
    {
        Ok(output) => Ok(output.instance_information_list().iter().any(|i| {
            i.instance_id() == Some(instance_id) && i.ping_status() == Some(&PingStatus::Online)
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_instance_id()) =>
        {
            Ok(false)
        }
        Err(source) => Err(PatchError::Agent {
            instance_id: instance_id.to_string(),
            source,
        }),
    }
}

/// The outcome of sending a launch patch command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Command(String),
    /// `InvalidInstanceId`: the agent has not registered yet; worth retrying.
    NotRegistered,
}

/// `AWS-RunPatchBaseline` Install with RebootIfNeeded on one fresh instance.
pub async fn send_launch_command(
    ssm: &Client,
    instance_id: &str,
    comment: &str,
) -> Result<Sent, PatchError> {
    let result = ssm
        .send_command()
        .document_name(PATCH_DOCUMENT)
        .instance_ids(instance_id)
        .parameters("Operation", vec!["Install".to_string()])
        .parameters("RebootOption", vec!["RebootIfNeeded".to_string()])
        .comment(truncate(comment, 100))
        .send()
        .await;
    match result {
        Ok(output) => Ok(Sent::Command(
            output
                .command()
                .and_then(|c| c.command_id())
                .unwrap_or_default()
                .to_string(),
        )),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_instance_id()) =>
        {
            Ok(Sent::NotRegistered)
        }
        Err(source) => Err(PatchError::SendCommand {
            target: instance_id.to_string(),
            source,
        }),
    }
}

/// `SendCommand` takes at most 50 instance ids.
pub const SEND_COMMAND_MAX_INSTANCES: usize = 50;

/// Whom a scheduled command goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandTarget<'a> {
    /// `tag:Patch Group=<group>`: every managed instance of the group.
    PatchGroupTag(&'a str),
    /// Instances by id (at most `SEND_COMMAND_MAX_INSTANCES`).
    Instances(&'a [String]),
}

impl std::fmt::Display for CommandTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandTarget::PatchGroupTag(group) => write!(f, "tag:Patch Group={group}"),
            CommandTarget::Instances(ids) => write!(f, "{}", ids.join(",")),
        }
    }
}

/// The scheduled command with the rule's rate controls and reboot option,
/// and the day's snapshot id for Install.
pub async fn send_scheduled_command(
    ssm: &Client,
    patch: &ScheduledPatch,
    target: &CommandTarget<'_>,
    snapshot_id: Option<&str>,
    comment: &str,
    timeout_seconds: Option<i32>,
) -> Result<String, PatchError> {
    let mut request = ssm
        .send_command()
        .document_name(PATCH_DOCUMENT)
        .max_concurrency(&patch.max_concurrency)
        .max_errors(&patch.max_errors)
        .parameters("Operation", vec![patch.operation.as_str().to_string()])
        .parameters("RebootOption", vec![patch.reboot.as_str().to_string()])
        .comment(truncate(comment, 100))
        // A patch window: an instance the command cannot reach before the
        // window closes is never patched after it ("If this time is reached
        // and the command hasn't already started running, it won't run",
        // SendCommand, TimeoutSeconds).
        .set_timeout_seconds(timeout_seconds);
    request = match target {
        CommandTarget::PatchGroupTag(group) => request.targets(
            Target::builder()
                .key("tag:Patch Group")
                .values(*group)
                .build(),
        ),
        CommandTarget::Instances(ids) => request.set_instance_ids(Some(ids.to_vec())),
    };
    if let Some(snapshot) = snapshot_id {
        request = request.parameters("SnapshotId", vec![snapshot.to_string()]);
    }
    let output = request
        .send()
        .await
        .map_err(|source| PatchError::SendCommand {
            target: target.to_string(),
            source,
        })?;
    Ok(output
        .command()
        .and_then(|c| c.command_id())
        .unwrap_or_default()
        .to_string())
}

/// The invocation's status, `None` while SSM does not know it yet (`InvocationDoesNotExist`).
pub async fn invocation_status(
    ssm: &Client,
    command_id: &str,
    instance_id: &str,
) -> Result<Option<String>, PatchError> {
    match ssm
        .get_command_invocation()
        .command_id(command_id)
        .instance_id(instance_id)
        .send()
        .await
    {
        Ok(output) => Ok(output.status().map(|s| s.as_str().to_string())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invocation_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(source) => Err(PatchError::Invocation {
            command_id: command_id.to_string(),
            instance_id: instance_id.to_string(),
            source,
        }),
    }
}

pub async fn patch_state(
    ssm: &Client,
    instance_id: &str,
) -> Result<Option<PatchStateView>, PatchError> {
    let output = ssm
        .describe_instance_patch_states()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|source| PatchError::PatchState {
            instance_id: instance_id.to_string(),
            source,
        })?;
    Ok(output
        .instance_patch_states()
        .iter()
        .find(|s| s.instance_id() == instance_id)
        .map(|s| PatchStateView {
            operation: Some(s.operation().as_str().to_string()),
            operation_end: crate::aws::timestamp(s.operation_end_time()),
            failed_count: s.failed_count(),
            missing_count: s.missing_count(),
        }))
}

/// The id of the `AWS-RunPatchBaseline` command whose comment carries `fence`,
/// requested since `since` (on `instance_id` when given), if SSM has it.
pub async fn find_command(
    ssm: &Client,
    instance_id: Option<&str>,
    fence: &str,
    since: jiff::Timestamp,
) -> Result<Option<String>, PatchError> {
    let filter = |key: CommandFilterKey, value: String| {
        CommandFilter::builder()
            .key(key)
            .value(value)
            .build()
            .expect("key and value are set")
    };
    let mut pages = ssm
        .list_commands()
        .set_instance_id(instance_id.map(str::to_string))
        .filters(filter(
            CommandFilterKey::DocumentName,
            PATCH_DOCUMENT.into(),
        ))
        .filters(filter(
            CommandFilterKey::InvokedAfter,
            since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ))
        .max_results(50)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|source| PatchError::ListCommands {
            fence: fence.to_string(),
            source,
        })?;
        if let Some(found) = page
            .commands()
            .iter()
            .find(|c| c.comment().is_some_and(|text| carries_fence(text, fence)))
        {
            return Ok(found.command_id().map(str::to_string));
        }
    }
    Ok(None)
}

/// A command's comment, targets and instance ids (`ListCommands` by id);
/// `None` when SSM does not know it.
pub async fn command_comment(
    ssm: &Client,
    command_id: &str,
) -> Result<Option<(String, Vec<String>)>, PatchError> {
    let output = match ssm.list_commands().command_id(command_id).send().await {
        Ok(output) => output,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_command_id()) =>
        {
            return Ok(None)
        }
        Err(source) => {
            return Err(PatchError::ListCommands {
                fence: command_id.to_string(),
                source,
            })
        }
    };
    Ok(output.commands().first().map(|c| {
        (
            c.comment().unwrap_or_default().to_string(),
            c.instance_ids().to_vec(),
        )
    }))
}

/// The ids among `instance_ids` that SSM manages (registered, any ping status).
pub async fn managed_among(
    ssm: &Client,
    instance_ids: &[String],
) -> Result<std::collections::BTreeSet<String>, PatchError> {
    let mut managed = std::collections::BTreeSet::new();
    let mut chunks: Vec<Vec<String>> = instance_ids
        .chunks(SEND_COMMAND_MAX_INSTANCES)
        .map(<[String]>::to_vec)
        .collect();
    while let Some(chunk) = chunks.pop() {
        match registered(ssm, &chunk).await? {
            Some(found) => managed.extend(found),
            // SSM refuses the whole filter when one id is not registered:
            // ask for each id on its own.
            None if chunk.len() > 1 => chunks.extend(chunk.into_iter().map(|id| vec![id])),
            None => {}
        }
    }
    Ok(managed)
}

/// The registered ids among `ids`, or `None` when SSM answers `InvalidInstanceId`.
async fn registered(ssm: &Client, ids: &[String]) -> Result<Option<Vec<String>>, PatchError> {
    let filter = InstanceInformationStringFilter::builder()
        .key("InstanceIds")
        .set_values(Some(ids.to_vec()))
        .build()
        .expect("key and values are set");
    let mut pages = ssm
        .describe_instance_information()
        .filters(filter)
        .max_results(50)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => found.extend(
                page.instance_information_list()
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_string)),
            ),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_instance_id()) =>
            {
                return Ok(None)
            }
            Err(source) => {
                return Err(PatchError::Agent {
                    instance_id: ids.join(","),
                    source,
                })
            }
        }
    }
    Ok(Some(found))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
