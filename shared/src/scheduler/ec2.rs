//! The scheduler's EC2 calls: read the tagged fleet, stop and start it in
//! batches that survive one bad instance, record the transition marker.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, InstanceLifecycleType, Tag};
use aws_sdk_ec2::Client;

use super::instance::{Instance, InstanceState, StateReason};
use crate::error_text;

/// DescribeInstances page size (the API's maximum).
const DESCRIBE_PAGE_SIZE: i32 = 1000;
/// Instances per StopInstances/StartInstances call. EC2 documents no hard
/// limit; 100 keeps a call small and a failing batch cheap to split.
pub const ACTION_BATCH_SIZE: usize = 100;
/// Resources per CreateTags call (the API's documented maximum is 1000).
const TAG_BATCH_SIZE: usize = 1000;

#[derive(Debug, thiserror::Error)]
#[error("DescribeInstances in {region} failed: {source}")]
pub struct DescribeError {
    pub region: String,
    #[source]
    pub source: SdkError<aws_sdk_ec2::operation::describe_instances::DescribeInstancesError>,
}

/// Every live instance carrying `tag_key`, read with a server-side filter so
/// untagged instances never leave EC2.
pub async fn describe_scheduled_instances(
    client: &Client,
    region: &str,
    tag_key: &str,
) -> Result<Vec<Instance>, DescribeError> {
    let mut pages = client
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(tag_key).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped", "shutting-down"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .max_results(DESCRIBE_PAGE_SIZE)
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|source| DescribeError {
            region: region.to_string(),
            source,
        })?;
        for reservation in page.reservations() {
            instances.extend(
                reservation
                    .instances()
                    .iter()
                    .filter_map(|i| to_instance(i, region)),
            );
        }
    }
    Ok(instances)
}

fn to_instance(raw: &aws_sdk_ec2::types::Instance, region: &str) -> Option<Instance> {
    // An entry without an id cannot be acted on or reported; EC2 always sends one.
    let instance_id = raw.instance_id()?.to_string();
    let state = raw
        .state()
        .and_then(|s| s.name())
        .map_or(InstanceState::Other("unknown".into()), |n| {
            InstanceState::from_name(n.as_str())
        });
    let tags = crate::tags::ec2_tag_map(raw.tags());
    Some(Instance {
        instance_id,
        region: region.to_string(),
        state,
        tags,
        spot: raw.instance_lifecycle() == Some(&InstanceLifecycleType::Spot),
        hibernation_configured: raw
            .hibernation_options()
            .and_then(|h| h.configured())
            .unwrap_or(false),
        state_reason: raw.state_reason().map(|r| StateReason {
            code: r.code().unwrap_or_default().to_string(),
            message: r.message().unwrap_or_default().to_string(),
        }),
        launch_time: raw.launch_time().and_then(crate::aws::timestamp),
    })
}

/// What a set of stop or start calls achieved, per instance.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub done: Vec<String>,
    pub failed: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChange {
    Start,
    Stop { hibernate: bool },
}

/// Stops or starts `ids` in batches. EC2 rejects a whole call when one
/// instance cannot change state, so a failing batch is split: instances the
/// error names fail alone, and the rest is retried (halved when the error
/// names none). Throttling is retried by the SDK's retry policy before that.
pub async fn change_state(client: &Client, change: StateChange, ids: &[String]) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut queue: Vec<Vec<String>> = ids
        .chunks(ACTION_BATCH_SIZE)
        .map(<[String]>::to_vec)
        .collect();
    while let Some(batch) = queue.pop() {
        match call(client, change, &batch).await {
            Ok(()) => outcome.done.extend(batch),
            Err(error) => {
                let named: Vec<&String> = batch
                    .iter()
                    .filter(|id| error.message.contains(id.as_str()))
                    .collect();
                if !named.is_empty() && named.len() < batch.len() {
                    outcome
                        .failed
                        .extend(named.iter().map(|id| ((*id).clone(), error.text.clone())));
                    queue.push(
                        batch
                            .iter()
                            .filter(|id| !named.contains(id))
                            .cloned()
                            .collect(),
                    );
                } else if batch.len() > 1 && error.per_instance {
                    let (left, right) = batch.split_at(batch.len() / 2);
                    queue.push(left.to_vec());
                    queue.push(right.to_vec());
                } else {
                    outcome
                        .failed
                        .extend(batch.into_iter().map(|id| (id, error.text.clone())));
                }
            }
        }
    }
    outcome
}

struct CallError {
    /// Service message, searched for the instance ids it names.
    message: String,
    /// Code and message, as reported.
    text: String,
    /// Whether the error may be about some instances of the batch only, so
    /// splitting the batch can help (not for throttling or auth failures).
    per_instance: bool,
}

async fn call(client: &Client, change: StateChange, ids: &[String]) -> Result<(), CallError> {
    match change {
        StateChange::Start => client
            .start_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(classify),
        StateChange::Stop { hibernate } => client
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .set_hibernate(hibernate.then_some(true))
            .send()
            .await
            .map(|_| ())
            .map_err(classify),
    }
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    error: SdkError<E, R>,
) -> CallError {
    let code = error.code().unwrap_or_default().to_string();
    let message = error.message().unwrap_or_default().to_string();
    let per_instance = matches!(
        code.as_str(),
        "IncorrectInstanceState"
            | "InvalidInstanceID.NotFound"
            | "InvalidInstanceID.Malformed"
            | "UnsupportedOperation"
            | "UnsupportedHibernationConfiguration"
            | "InsufficientInstanceCapacity"
            | "InvalidParameterCombination"
    );
    let text = if code.is_empty() {
        error_text(&error)
    } else {
        format!("{code}: {message}")
    };
    CallError {
        message,
        text,
        per_instance,
    }
}

/// Records the applied transition on instances, one CreateTags call per
/// 1000 instances sharing a value. Failures are returned per instance: the
/// state change happened, so only the marker is missing (the next tick sees
/// the instance already in its state and records it then).
pub async fn record_applied(
    client: &Client,
    tag_key: &str,
    value: &str,
    ids: &[String],
) -> Vec<(String, String)> {
    per_tag_batch(ids, |batch| async move {
        client
            .create_tags()
            .set_resources(Some(batch))
            .tags(Tag::builder().key(tag_key).value(value).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    })
    .await
}

/// Removes the tag `tag_key` (whatever its value) from instances, one
/// DeleteTags call per 1000; failures are returned per instance.
pub async fn remove_tag(client: &Client, tag_key: &str, ids: &[String]) -> Vec<(String, String)> {
    per_tag_batch(ids, |batch| async move {
        client
            .delete_tags()
            .set_resources(Some(batch))
            .tags(Tag::builder().key(tag_key).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    })
    .await
}

/// Runs a tag call per `TAG_BATCH_SIZE` ids; a failed call fails each of its ids.
async fn per_tag_batch<F, Fut>(ids: &[String], call: F) -> Vec<(String, String)>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut failures = Vec::new();
    for batch in ids.chunks(TAG_BATCH_SIZE) {
        if let Err(text) = call(batch.to_vec()).await {
            failures.extend(batch.iter().map(|id| (id.clone(), text.clone())));
        }
    }
    failures
}
