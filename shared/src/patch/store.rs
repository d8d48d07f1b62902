//! The dispatcher's state table (DynamoDB, env `STATE_TABLE`): one item per
//! launch, scheduled run and fallback instance of a run. Every write is
//! conditional: a create only if the key is absent, a change only if the
//! version read is still the one stored (compare-and-set). A write that loses
//! the race returns `false`; the caller re-reads and decides again.
//!
//! Item: `pk` (S, the key), `kind` (S), `state` (S, the phase, for people
//! reading the table), `version` (N), `record` (S, the record as JSON),
//! `expires_at` (N, epoch seconds, the table's TTL attribute).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::PatchError;

/// A record as read, with the version a change must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored<T> {
    pub version: u64,
    pub record: T,
}

/// Where the records live.
#[derive(Clone, Debug)]
pub struct Store {
    pub client: Client,
    pub table: String,
}

/// One write: the record, what it is, and when it may expire.
pub struct Item<'a, T> {
    pub key: &'a str,
    pub kind: &'static str,
    pub state: &'static str,
    pub record: &'a T,
    pub expires_at: Timestamp,
}

impl Store {
    /// Reads a record (strongly consistent); `None` when there is none.
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Stored<T>>, PatchError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|source| PatchError::StateRead {
                key: key.to_string(),
                source,
            })?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        decode(item).map(Some).map_err(|bad| bad.at(key))
    }

    /// Creates the record only if `key` is absent; `Ok(None)` if it exists.
    pub async fn create<T: Serialize>(
        &self,
        item: &Item<'_, T>,
    ) -> Result<Option<u64>, PatchError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes(item, 1).map_err(|bad| bad.at(item.key))?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(1)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(source) => Err(PatchError::StateCreate {
                key: item.key.to_string(),
                source,
            }),
        }
    }

    /// Replaces the record only if its version is still `version`; returns the
    /// new version, or `Ok(None)` if someone changed it first.
    pub async fn replace<T: Serialize>(
        &self,
        item: &Item<'_, T>,
        version: u64,
    ) -> Result<Option<u64>, PatchError> {
        let next = version + 1;
        let attrs = attributes(item, next).map_err(|bad| bad.at(item.key))?;
        let value = |name: &str| attrs.get(name).cloned();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(item.key.to_string()))
            .update_expression(
                "SET #record = :record, #state = :state, #version = :next, expires_at = :expires",
            )
            .condition_expression("#version = :version")
            .expression_attribute_names("#record", "record")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#version", "version")
            .set_expression_attribute_values(Some(HashMap::from_iter(
                [
                    (":record", value("record")),
                    (":state", value("state")),
                    (":next", value("version")),
                    (":expires", value("expires_at")),
                    (":version", Some(AttributeValue::N(version.to_string()))),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
            )))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(next)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(source) => Err(PatchError::StateUpdate {
                key: item.key.to_string(),
                source,
            }),
        }
    }

    /// Creates (`version` None) or replaces (`Some`) a record.
    pub async fn write<T: Serialize>(
        &self,
        item: &Item<'_, T>,
        version: Option<u64>,
    ) -> Result<Option<u64>, PatchError> {
        match version {
            None => self.create(item).await,
            Some(v) => self.replace(item, v).await,
        }
    }
}

/// Why an item could not be encoded or decoded (small, so the sync helpers
/// stay cheap; callers turn it into a `PatchError` naming the key).
enum Bad {
    Json(serde_json::Error),
    Malformed(&'static str),
}

impl Bad {
    fn at(self, key: &str) -> PatchError {
        match self {
            Bad::Json(source) => PatchError::StateCorrupt {
                key: key.to_string(),
                source,
            },
            Bad::Malformed(problem) => PatchError::StateMalformed {
                key: key.to_string(),
                problem: problem.to_string(),
            },
        }
    }
}

fn attributes<T: Serialize>(
    item: &Item<'_, T>,
    version: u64,
) -> Result<HashMap<String, AttributeValue>, Bad> {
    let json = serde_json::to_string(item.record).map_err(Bad::Json)?;
    Ok(HashMap::from([
        ("pk".to_string(), AttributeValue::S(item.key.to_string())),
        ("kind".to_string(), AttributeValue::S(item.kind.to_string())),
        (
            "state".to_string(),
            AttributeValue::S(item.state.to_string()),
        ),
        (
            "version".to_string(),
            AttributeValue::N(version.to_string()),
        ),
        ("record".to_string(), AttributeValue::S(json)),
        (
            "expires_at".to_string(),
            AttributeValue::N(item.expires_at.as_second().to_string()),
        ),
    ]))
}

fn decode<T: DeserializeOwned>(item: &HashMap<String, AttributeValue>) -> Result<Stored<T>, Bad> {
    let version = match item.get("version") {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| Bad::Malformed("version is not a number"))?,
        _ => return Err(Bad::Malformed("no numeric version attribute")),
    };
    let json = match item.get("record") {
        Some(AttributeValue::S(s)) => s,
        _ => return Err(Bad::Malformed("no string record attribute")),
    };
    let record = serde_json::from_str(json).map_err(Bad::Json)?;
    Ok(Stored { version, record })
}

/// Key of a launch's record.
pub fn launch_key(instance_id: &str) -> String {
    format!("launch#{instance_id}")
}

/// Key of a scheduled run's record.
pub fn run_key(patch_group: &str, operation: &str, run: &str) -> String {
    format!("run#{patch_group}#{operation}#{run}")
}

/// Key of an instance's patch-window wake (one at a time per instance).
pub fn wake_key(instance_id: &str) -> String {
    format!("wake#{instance_id}")
}

/// Key of the list of woken instances a command reached.
pub fn wakes_of_command_key(command_id: &str) -> String {
    format!("wakes#{command_id}")
}

/// Key of one fallback instance's record within a run.
pub fn run_instance_key(run_key: &str, instance_id: &str) -> String {
    format!("{run_key}#{instance_id}")
}
