//! What the scheduler knows about an instance: plain data read from EC2.

use std::collections::BTreeMap;

/// The EC2 instance states the scheduler distinguishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Other(String),
}

impl InstanceState {
    pub fn from_name(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Other(name) => name,
        }
    }
}

/// EC2's reason for the instance's last state change (`StateReason`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateReason {
    pub code: String,
    pub message: String,
}

impl StateReason {
    /// Whether the instance stopped by itself while starting (a start that did
    /// not hold: KMS grant missing, no capacity, volume limit...), as opposed
    /// to a stop somebody asked for.
    pub fn is_failed_start(&self) -> bool {
        const REQUESTED_STOPS: &[&str] = &[
            "Client.UserInitiatedShutdown",
            "Client.UserInitiatedHibernate",
            "Client.InstanceInitiatedShutdown",
            "Server.ScheduledStop",
            "Server.SpotInstanceShutdown",
            "Server.SpotInstanceTermination",
        ];
        !self.code.is_empty() && !REQUESTED_STOPS.contains(&self.code.as_str())
    }

    /// A start that did not hold, if it came right after the start: a failed
    /// start, or an instance that shut itself down at boot.
    pub fn is_failed_boot(&self) -> bool {
        self.is_failed_start() || self.code == "Client.InstanceInitiatedShutdown"
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub instance_id: String,
    pub region: String,
    pub state: InstanceState,
    pub tags: BTreeMap<String, String>,
    /// `InstanceLifecycle: spot`.
    pub spot: bool,
    /// `HibernationOptions.Configured`.
    pub hibernation_configured: bool,
    pub state_reason: Option<StateReason>,
    /// EC2's `LaunchTime`: when the instance was last started.
    pub launch_time: Option<jiff::Timestamp>,
}
