//! The scheduler's EC2 actions: stop and start in batches that survive one
//! bad instance, record the transition marker (the reads are in `read`).

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::Tag;
use aws_sdk_ec2::Client;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error_text;

/// Instances per StopInstances/StartInstances call. EC2 documents no limit
/// for these two; for TerminateInstances it documents "Up to 1000 instance
/// IDs", and we take the same for its siblings. A failing batch is split
/// (see `change_state`), so one bad instance still costs only a few calls.
pub const ACTION_BATCH_SIZE: usize = 1000;
/// Resources per CreateTags call (the API's documented maximum is 1000).
const TAG_BATCH_SIZE: usize = 1000;

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

/// Calls in flight at once for one kind of change or tag write. EC2's
/// mutating-request bucket holds 200 tokens and refills 5 per second: a few
/// concurrent calls keep a big transition short without draining it.
const CONCURRENT_CALLS: usize = 4;

/// Stops or starts `ids` in batches, a few batches at a time. EC2 rejects a
/// whole call when one instance cannot change state, so a failing batch is
/// split: instances the error names fail alone, and the rest is retried
/// (halved when the error names none). Throttling is retried by the SDK's
/// retry policy before that.
pub async fn change_state(client: &Client, change: StateChange, ids: &[String]) -> BatchOutcome {
    change_state_until(client, change, ids, None).await
}

/// What a batch not sent, or not answered, before `until` fails with.
pub const NOT_ATTEMPTED: &str =
    "not attempted: the invocation's time ran out (the next tick applies it)";
pub const NO_ANSWER: &str =
    "no answer before the invocation's time ran out (the next tick sees whether it applied)";
/// What batches not sent after EC2 throttled a batch of the same kind fail
/// with: its buckets refill slowly (a start bucket 2 instances a second), so
/// the rest would only be refused too, and spend the invocation's time.
pub const NOT_SENT_THROTTLED: &str = "not attempted: EC2 throttled this region's previous call of the same kind past its retries (RequestLimitExceeded); the next tick applies it";

/// `change_state`, but nothing is sent after `until`, and a call still
/// unanswered then (EC2 throttling it, the SDK backing off) is given up: its
/// instances fail with `NO_ANSWER`, the ones never sent with `NOT_ATTEMPTED`,
/// so the invocation still answers, within its timeout, with what it did.
pub async fn change_state_until(
    client: &Client,
    change: StateChange,
    ids: &[String],
    until: Option<std::time::Instant>,
) -> BatchOutcome {
    let throttled = AtomicBool::new(false);
    let outcomes: Vec<BatchOutcome> = futures::stream::iter(ids.chunks(ACTION_BATCH_SIZE))
        .map(|batch| change_batch(client, change, batch.to_vec(), until, &throttled))
        .buffer_unordered(CONCURRENT_CALLS)
        .collect()
        .await;
    let mut outcome = BatchOutcome::default();
    for part in outcomes {
        outcome.done.extend(part.done);
        outcome.failed.extend(part.failed);
    }
    outcome
}

/// One batch, split until every instance is done or failed. `throttled` is
/// shared by the batches of one kind: once EC2 throttled one past the SDK's
/// retries, the others are not sent.
async fn change_batch(
    client: &Client,
    change: StateChange,
    batch: Vec<String>,
    until: Option<std::time::Instant>,
    throttled: &AtomicBool,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut queue = vec![batch];
    while let Some(batch) = queue.pop() {
        let answer = match until {
            _ if throttled.load(Ordering::Relaxed) => Err(NOT_SENT_THROTTLED),
            Some(until) if std::time::Instant::now() >= until => Err(NOT_ATTEMPTED),
            Some(until) => tokio::time::timeout_at(until.into(), call(client, change, &batch))
                .await
                .map_err(|_| NO_ANSWER),
            None => Ok(call(client, change, &batch).await),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(text) => {
                let text = text.to_string();
                outcome
                    .failed
                    .extend(batch.into_iter().map(|id| (id, text.clone())));
                continue;
            }
        };
        match answer {
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
                    if error.throttled {
                        throttled.store(true, Ordering::Relaxed);
                    }
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
    /// EC2 throttled it (request or resource bucket; the SDK's retries are
    /// already spent).
    throttled: bool,
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
    // "If you exceed an API throttling limit, you get the RequestLimitExceeded
    // error code" (EC2, "Request throttling"), for request and resource buckets.
    let throttled = code == "RequestLimitExceeded";
    let text = if code.is_empty() {
        error_text(&error)
    } else {
        format!("{code}: {message}")
    };
    CallError {
        message,
        text,
        per_instance,
        throttled,
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

/// Runs a tag call per `TAG_BATCH_SIZE` ids, a few at a time; a failed call
/// fails each of its ids.
async fn per_tag_batch<F, Fut>(ids: &[String], call: F) -> Vec<(String, String)>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let results: Vec<(&[String], Result<(), String>)> =
        futures::stream::iter(ids.chunks(TAG_BATCH_SIZE))
            .map(|batch| {
                let sent = call(batch.to_vec());
                async move { (batch, sent.await) }
            })
            .buffer_unordered(CONCURRENT_CALLS)
            .collect()
            .await;
    let mut failures = Vec::new();
    for (batch, result) in results {
        if let Err(text) = result {
            failures.extend(batch.iter().map(|id| (id.clone(), text.clone())));
        }
    }
    failures
}
