//! What one invocation did, returned to Lambda and logged as one line.

use serde::Serialize;

use super::settings::LifecycleResult;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub commands: Vec<CommandSent>,
    pub lifecycle_actions: Vec<LifecycleAction>,
    pub heartbeats: Vec<String>,
    /// Stopped instances started for a scheduled run's patch window
    /// (`wake_stopped`).
    pub woken: Vec<String>,
    /// Woken instances handed back after their patching: stopped again, or
    /// left running because their schedule wants them running by then.
    pub returned: Vec<Returned>,
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
pub struct Returned {
    pub instance_id: String,
    /// `false`: left running (its schedule wants it running now).
    pub stopped: bool,
    pub reason: String,
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
        self.woken.extend(other.woken);
        self.returned.extend(other.returned);
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
    }
}
