//! SSM calls of the dispatcher: agents, commands, patch states, state records.

use aws_sdk_ssm::types::{InstanceInformationStringFilter, ParameterType, PingStatus, Target};
use aws_sdk_ssm::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::decide::PatchStateView;
use super::error::PatchError;
use super::events::{ScheduledPatch, PATCH_DOCUMENT};
use crate::ssm::ParameterError;

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
) -> Result<String, PatchError> {
    let mut request = ssm
        .send_command()
        .document_name(PATCH_DOCUMENT)
        .max_concurrency(&patch.max_concurrency)
        .max_errors(&patch.max_errors)
        .parameters("Operation", vec![patch.operation.as_str().to_string()])
        .parameters("RebootOption", vec![patch.reboot.as_str().to_string()])
        .comment(truncate(
            &format!(
                "fleetops scheduled {} of {}",
                patch.operation.as_str(),
                patch.patch_group
            ),
            100,
        ));
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

/// Reads a JSON record; `None` when the parameter does not exist.
pub async fn read_record<T: DeserializeOwned>(
    ssm: &Client,
    name: &str,
) -> Result<Option<T>, PatchError> {
    let text = match crate::ssm::get_parameter(ssm, name).await {
        Ok(text) => text,
        Err(ParameterError::Missing { .. }) => return Ok(None),
        Err(source) => {
            return Err(PatchError::StateRead {
                name: name.to_string(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| PatchError::StateCorrupt {
            name: name.to_string(),
            source,
        })
}

/// Writes a JSON record. With `create_only`, an existing record is left alone
/// and `Ok(false)` says someone else holds it.
pub async fn write_record<T: Serialize>(
    ssm: &Client,
    name: &str,
    record: &T,
    create_only: bool,
) -> Result<bool, PatchError> {
    let value = serde_json::to_string(record).map_err(|source| PatchError::StateCorrupt {
        name: name.to_string(),
        source,
    })?;
    let result = ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(!create_only)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if create_only
                && e.as_service_error()
                    .is_some_and(|s| s.is_parameter_already_exists()) =>
        {
            Ok(false)
        }
        Err(source) => Err(PatchError::StateWrite {
            name: name.to_string(),
            source,
        }),
    }
}

/// A parameter-name-safe form of a patch group (letters, digits, `_.-` kept).
pub fn name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c.to_string()
            } else {
                format!("_{:02x}", c as u32)
            }
        })
        .collect()
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
