//! What one invocation did, returned to Lambda and logged as one line.

use serde::Serialize;

use super::settings::LifecycleResult;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub commands: Vec<CommandSent>,
    pub lifecycle_actions: Vec<LifecycleAction>,
    pub heartbeats: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<Failure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommandSent {
    /// `None` in a dry run.
    pub command_id: Option<String>,
    pub patch_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    pub operation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LifecycleAction {
    pub instance_id: String,
    pub group: String,
    pub hook: String,
    pub result: LifecycleResult,
    pub reason: String,
    /// False when the action was no longer active (completed before or timed out).
    pub applied: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub error: String,
}

impl Summary {
    pub(super) fn skip(
        &mut self,
        instance_id: Option<&str>,
        command_id: Option<&str>,
        reason: impl Into<String>,
    ) {
        let reason = reason.into();
        tracing::info!(instance_id, command_id, action = "skip", result = "skipped", reason = %reason, "skipped");
        self.skipped.push(Skipped {
            instance_id: instance_id.map(str::to_string),
            command_id: command_id.map(str::to_string),
            reason,
        });
    }

    pub(super) fn merge(&mut self, other: Summary) {
        self.commands.extend(other.commands);
        self.lifecycle_actions.extend(other.lifecycle_actions);
        self.heartbeats.extend(other.heartbeats);
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
    }
}
