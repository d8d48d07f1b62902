//! The dispatcher's records and the pure decisions over them.
//!
//! Exactly once comes from two things: every change of a record is a
//! conditional write (the store's compare-and-set, see `store.rs`), and a
//! command is never sent without first recording "sending" with a fence that
//! the command carries in its comment, so that after a crash the command is
//! looked up and adopted instead of being sent again. The functions here only
//! decide; the adapters (`launch.rs`, `scheduled.rs`, `sweep.rs`) execute.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::decide::rfc3339;
use super::settings::LifecycleResult;

/// A finished launch record is kept this long: the longest a lifecycle action
/// can live (the hook's global timeout is at most 48 hours), so a duplicate
/// event for it always finds the record.
pub const LAUNCH_KEEP: SignedDuration = SignedDuration::from_hours(48);
/// A finished scheduled run is kept this long: longer than EventBridge's
/// retries and Lambda's asynchronous retries of one event (at most 24 hours).
pub const RUN_KEEP: SignedDuration = SignedDuration::from_hours(25);
/// A record whose work never finished (its owner crashed and nobody took over)
/// still goes away after this.
pub const ABANDONED_KEEP: SignedDuration = SignedDuration::from_hours(7 * 24);
/// Commands are looked up from this long before the fence was written
/// (clock skew between Lambda and SSM).
pub const LOOKUP_SLACK: SignedDuration = SignedDuration::from_secs(300);

/// The record of one launch (`launch#<instance-id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRecord {
    pub instance_id: String,
    pub group: String,
    pub hook: String,
    pub token: Option<String>,
    /// Launched into the warm pool rather than into service.
    #[serde(default)]
    pub warm_pool: bool,
    pub patch_group: String,
    /// When fleetops first saw the launch (start of the registration budget).
    #[serde(with = "rfc3339")]
    pub first_seen: Timestamp,
    pub phase: LaunchPhase,
}

/// Where a launch stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum LaunchPhase {
    /// Held by the invocation that ends by `owner_deadline`; nothing sent yet.
    Claimed {
        #[serde(with = "rfc3339")]
        owner_deadline: Timestamp,
    },
    /// `SendCommand` may have been called; the command's comment carries `fence`.
    Sending {
        fence: String,
        #[serde(with = "rfc3339")]
        since: Timestamp,
        #[serde(with = "rfc3339")]
        owner_deadline: Timestamp,
    },
    Sent {
        command_id: String,
        #[serde(with = "rfc3339")]
        sent_at: Timestamp,
    },
    /// The lifecycle action is (being) completed with `result`; written before
    /// `CompleteLifecycleAction`, so the call is made by one invocation only.
    Completed {
        command_id: Option<String>,
        result: LifecycleResult,
        reason: String,
        #[serde(with = "rfc3339")]
        at: Timestamp,
    },
}

impl LaunchPhase {
    pub fn name(&self) -> &'static str {
        match self {
            LaunchPhase::Claimed { .. } => "claimed",
            LaunchPhase::Sending { .. } => "sending",
            LaunchPhase::Sent { .. } => "sent",
            LaunchPhase::Completed { .. } => "completed",
        }
    }

    pub fn command_id(&self) -> Option<&str> {
        match self {
            LaunchPhase::Sent { command_id, .. } => Some(command_id),
            LaunchPhase::Completed { command_id, .. } => command_id.as_deref(),
            _ => None,
        }
    }
}

impl LaunchRecord {
    /// When the record may expire (the store's TTL attribute).
    pub fn expires_at(&self, now: Timestamp) -> Timestamp {
        match &self.phase {
            LaunchPhase::Completed { at, .. } => *at + LAUNCH_KEEP,
            _ => now + ABANDONED_KEEP,
        }
    }
}

/// Who looks at a launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchTrigger {
    /// A lifecycle event (first delivery, duplicate or retry).
    Event,
    /// The sweep found the instance waiting on fleetops' hook.
    Sweep {
        /// Waiting to go from the warm pool into service (not `Warmed:*`).
        into_service: bool,
    },
}

/// What to do next with a launch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaunchStep {
    /// No record: create one (only if still absent), then wait for the agent.
    Claim,
    /// A claim whose owner's time is up: take it over (only if unchanged).
    TakeOver,
    /// "Sending" without a command id: find the command by its fence first.
    LookUp {
        fence: String,
        since: Timestamp,
    },
    /// The command was sent; read its status (the sweep, for lost status events).
    Check {
        command_id: String,
    },
    /// Completed, yet the instance still waits on the hook: complete it again
    /// (a crash after the record, or a warmed instance now going into service).
    Complete {
        result: LifecycleResult,
        reason: String,
    },
    Skip(String),
}

pub const FROM_WARM_POOL: &str = "from the warm pool into service: patched when it was warmed";

pub fn launch_step(
    record: Option<&LaunchRecord>,
    trigger: LaunchTrigger,
    now: Timestamp,
) -> LaunchStep {
    let Some(record) = record else {
        return LaunchStep::Claim;
    };
    match (&record.phase, trigger) {
        (LaunchPhase::Completed { result, .. }, LaunchTrigger::Event) => {
            LaunchStep::Skip(format!("duplicate: already completed {}", result.as_str()))
        }
        (LaunchPhase::Completed { .. }, LaunchTrigger::Sweep { into_service: true })
            if record.warm_pool =>
        {
            LaunchStep::Complete {
                result: LifecycleResult::Continue,
                reason: FROM_WARM_POOL.into(),
            }
        }
        (LaunchPhase::Completed { result, reason, .. }, LaunchTrigger::Sweep { .. }) => {
            LaunchStep::Complete {
                result: *result,
                reason: reason.clone(),
            }
        }
        (LaunchPhase::Sent { .. }, LaunchTrigger::Event) => {
            LaunchStep::Skip("duplicate: patch command already sent".into())
        }
        (LaunchPhase::Sent { command_id, .. }, LaunchTrigger::Sweep { .. }) => LaunchStep::Check {
            command_id: command_id.clone(),
        },
        (LaunchPhase::Sending { fence, since, .. }, _) => LaunchStep::LookUp {
            fence: fence.clone(),
            since: *since,
        },
        (LaunchPhase::Claimed { owner_deadline }, _) if *owner_deadline > now => {
            LaunchStep::Skip("duplicate: another invocation is waiting for its agent".into())
        }
        (LaunchPhase::Claimed { .. }, _) => LaunchStep::TakeOver,
    }
}

/// What a lookup of a "sending" command leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The command exists: record its id (only if the record is unchanged).
    Adopt(String),
    /// Not sent, and its sender's time is up: take the record over.
    TakeOver,
    /// Not found, but its sender may still be sending it.
    Skip(String),
}

pub fn resolve_sending(
    found: Option<&str>,
    owner_deadline: Timestamp,
    now: Timestamp,
) -> Resolution {
    match found {
        Some(command_id) => Resolution::Adopt(command_id.to_string()),
        None if owner_deadline <= now => Resolution::TakeOver,
        None => Resolution::Skip("duplicate: another invocation is sending the command".into()),
    }
}

/// What a final status event for `command_id` leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusStep {
    Ignore(String),
    /// The record waits for this command: check the result and complete.
    Finish,
    /// The command's id is not recorded yet: look it up by the fence; if it is
    /// this command, adopt it and finish, else fail so the event is retried.
    LookUp {
        fence: String,
        since: Timestamp,
    },
}

pub fn status_step(record: Option<&LaunchRecord>, command_id: &str) -> StatusStep {
    let Some(record) = record else {
        return StatusStep::Ignore("not a launch command fleetops is waiting for".into());
    };
    match &record.phase {
        LaunchPhase::Completed { result, .. } => {
            StatusStep::Ignore(format!("duplicate: already completed {}", result.as_str()))
        }
        LaunchPhase::Sent {
            command_id: sent, ..
        } if sent == command_id => StatusStep::Finish,
        LaunchPhase::Sending { fence, since, .. } => StatusStep::LookUp {
            fence: fence.clone(),
            since: *since,
        },
        LaunchPhase::Sent { .. } | LaunchPhase::Claimed { .. } => {
            StatusStep::Ignore("not the launch command of this instance".into())
        }
    }
}

/// The record of one scheduled run (`run#<group>#<operation>#<time>`). Its size
/// does not depend on the fleet: the group-wide command is tracked here, the
/// fallback instances each in their own small record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub patch_group: String,
    pub operation: String,
    /// The scheduled event's `time`, or the UTC day when the input has none.
    pub run: String,
    pub snapshot_id: Option<String>,
    #[serde(with = "rfc3339")]
    pub owner_deadline: Timestamp,
    /// The command to `tag:Patch Group=<group>`.
    pub primary: Option<TargetPhase>,
    /// Set once every target was handled.
    #[serde(with = "rfc3339::option", default)]
    pub done_at: Option<Timestamp>,
    /// `wake_stopped`: when the patch window ends (fixed at the claim, so a
    /// retry keeps it), and the instances this run claimed to wake.
    #[serde(with = "rfc3339::option", default)]
    pub window_end: Option<Timestamp>,
    #[serde(default)]
    pub woken: Vec<String>,
}

impl RunRecord {
    pub fn expires_at(&self, now: Timestamp) -> Timestamp {
        match self.done_at {
            Some(done) => done + RUN_KEEP,
            None => now + ABANDONED_KEEP,
        }
    }
}

/// One target of a scheduled run: the group-wide command, or one fallback
/// instance (`run#...#<instance-id>`, whose chunk of up to 50 shares a fence).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum TargetPhase {
    Sending {
        fence: String,
        #[serde(with = "rfc3339")]
        since: Timestamp,
    },
    Sent {
        command_id: String,
        #[serde(with = "rfc3339")]
        sent_at: Timestamp,
    },
}

/// What to do with a scheduled run before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStep {
    Claim,
    /// Its owner's time is up without finishing: take over and resume.
    TakeOver,
    Skip(String),
}

pub fn run_step(record: Option<&RunRecord>, now: Timestamp) -> RunStep {
    match record {
        None => RunStep::Claim,
        Some(run) => match run.done_at {
            Some(done) => RunStep::Skip(format!(
                "duplicate: {} of {} (run {}) finished at {done}",
                run.operation, run.patch_group, run.run
            )),
            None if run.owner_deadline > now => RunStep::Skip(format!(
                "duplicate: another invocation is running {} of {} (run {})",
                run.operation, run.patch_group, run.run
            )),
            None => RunStep::TakeOver,
        },
    }
}

/// What to do with one target of a run this invocation owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetStep {
    /// Nothing recorded: record "sending", then send.
    Send,
    /// "Sending" recorded: look the command up; adopt it, or send it if absent
    /// (the run's owner is this invocation, so nobody else is sending it).
    LookUp { fence: String, since: Timestamp },
    /// Already sent: nothing to do.
    Done(String),
}

pub fn target_step(phase: Option<&TargetPhase>) -> TargetStep {
    match phase {
        None => TargetStep::Send,
        Some(TargetPhase::Sending { fence, since }) => TargetStep::LookUp {
            fence: fence.clone(),
            since: *since,
        },
        Some(TargetPhase::Sent { command_id, .. }) => TargetStep::Done(command_id.clone()),
    }
}

/// The comment of a command fleetops sends: the fence first, so that SSM's
/// 100-character limit never cuts it off.
pub fn command_comment(fence: &str, what: &str) -> String {
    format!("fleetops {fence} {what}")
        .chars()
        .take(100)
        .collect()
}

/// Whether a command's comment carries `fence`.
pub fn carries_fence(comment: &str, fence: &str) -> bool {
    comment.split_whitespace().nth(1) == Some(fence)
}

/// A fence: unique per send attempt (the record key, the instant and a
/// per-process counter, hashed), 16 hex digits.
pub fn new_fence(key: &str, now: Timestamp) -> String {
    use sha1::Digest;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest = sha1::Sha1::new()
        .chain_update(key.as_bytes())
        .chain_update(now.as_nanosecond().to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .chain_update(n.to_le_bytes())
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
