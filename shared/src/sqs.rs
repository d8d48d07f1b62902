//! The work queues, as every function uses them: sending messages in
//! batches, reading the SQS events Lambda's event source mapping delivers,
//! and the partial batch response.

use serde::Serialize;
use serde_json::Value;

/// `SendMessageBatch` takes at most 10 messages.
const SEND_BATCH: usize = 10;

/// SQS's partial batch response item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// One message to send: its body, and a delay (`DelaySeconds`) if any.
pub struct Outgoing {
    pub body: String,
    pub delay_seconds: Option<i32>,
}

/// Sends `messages` in batches of 10; for each message, in order, `None`
/// when it was queued or why it was not.
pub async fn send_messages(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Outgoing],
) -> Vec<Option<String>> {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let mut results = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(SEND_BATCH) {
        let mut outcome: Vec<Option<String>> =
            vec![Some("no answer for this message".into()); chunk.len()];
        let entries: Result<Vec<SendMessageBatchRequestEntry>, String> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .set_delay_seconds(m.delay_seconds)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect();
        let sent = match entries {
            Ok(entries) => sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| crate::error_text(&e)),
            Err(problem) => Err(problem),
        };
        match sent {
            Ok(output) => {
                let at = |id: &str| id.parse::<usize>().ok().filter(|i| *i < chunk.len());
                for ok in output.successful() {
                    if let Some(i) = at(ok.id()) {
                        outcome[i] = None;
                    }
                }
                for failed in output.failed() {
                    if let Some(i) = at(failed.id()) {
                        outcome[i] = Some(format!(
                            "{}: {}",
                            failed.code(),
                            failed.message().unwrap_or_default()
                        ));
                    }
                }
            }
            Err(text) => outcome.iter_mut().for_each(|o| *o = Some(text.clone())),
        }
        results.extend(outcome);
    }
    results
}

/// The messages of an SQS event (`Records`, every one with `eventSource:
/// aws:sqs`) as (message id, body); `None` for any other event.
pub fn sqs_records(event: &Value) -> Option<Vec<(String, String)>> {
    let records = event.get("Records")?.as_array()?;
    if !records
        .iter()
        .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
    {
        return None;
    }
    Some(
        records
            .iter()
            .map(|r| {
                let text = |key: &str| {
                    r.get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                (text("messageId"), text("body"))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_sqs_events_have_records() {
        let event =
            json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs", "body": "b"}]});
        assert_eq!(
            sqs_records(&event),
            Some(vec![("m1".to_string(), "b".to_string())])
        );
        assert!(sqs_records(&json!({"time": "x"})).is_none());
        assert!(sqs_records(&json!({"Records": [{"eventSource": "aws:s3"}]})).is_none());
    }
}
