//! The scheduler's decisions for one tick, as a pure function of the fleet,
//! the schedules and "now".

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use super::instance::{Instance, InstanceState};
use crate::schedule::{Schedule, Schedules, Transition};

/// Tag that pins an instance's state or makes the scheduler leave it alone.
pub const OVERRIDE_TAG: &str = "ScheduleOverride";
/// Tag fleetops writes after acting on an instance: the instant of the
/// schedule transition it applied (RFC 3339). It is how a transition-only
/// schedule knows a transition is already done, so that a hand-started
/// instance keeps running, while a missed or late tick still acts.
pub const APPLIED_TAG: &str = "fleetops:schedule-applied";
/// Auto Scaling's own tag on the instances of a group.
pub const ASG_TAG: &str = "aws:autoscaling:groupName";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop { hibernate: bool },
}

/// One instance to start or stop, and the transition marker to record after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedAction {
    pub instance_id: String,
    pub region: String,
    pub action: Action,
    /// `None` for a `ScheduleOverride` pin: nothing to record.
    pub applied: Option<Timestamp>,
}

/// An instance already in the state of a transition it has not been marked
/// for: only the marker is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedMark {
    pub instance_id: String,
    pub region: String,
    pub applied: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub instance_id: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub instance_id: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickPlan {
    pub actions: Vec<PlannedAction>,
    pub marks: Vec<PlannedMark>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
}

/// Decides, for every instance carrying the schedule tag, what this tick does.
pub fn plan_tick(
    instances: &[Instance],
    schedules: &Schedules,
    schedule_tag: &str,
    now: Timestamp,
) -> TickPlan {
    let mut plan = TickPlan::default();
    let mut evaluated = HashMap::new();
    for instance in instances {
        match decide(instance, schedules, schedule_tag, now, &mut evaluated) {
            Decision::Nothing => {}
            Decision::Skip(reason) => plan.skipped.push(Skipped {
                instance_id: instance.instance_id.clone(),
                reason,
            }),
            Decision::Fail(error) => plan.failed.push(Failed {
                instance_id: instance.instance_id.clone(),
                error,
            }),
            Decision::Act(action, applied) => plan.actions.push(PlannedAction {
                instance_id: instance.instance_id.clone(),
                region: instance.region.clone(),
                action,
                applied,
            }),
            Decision::Mark(applied) => plan.marks.push(PlannedMark {
                instance_id: instance.instance_id.clone(),
                region: instance.region.clone(),
                applied,
            }),
        }
    }
    plan
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Nothing,
    Skip(String),
    Fail(String),
    Act(Action, Option<Timestamp>),
    Mark(Timestamp),
}

/// What a schedule says at "now": the same for all its instances, so it is
/// evaluated once per schedule and tick, not once per instance.
#[derive(Clone, Copy)]
struct ScheduleNow {
    last: Option<Transition>,
    wants_running: bool,
}

impl ScheduleNow {
    fn of(schedule: &Schedule, now: Timestamp) -> Self {
        Self {
            last: schedule.last_transition(now),
            wants_running: schedule.wants_running(now),
        }
    }
}

fn decide(
    instance: &Instance,
    schedules: &Schedules,
    schedule_tag: &str,
    now: Timestamp,
    evaluated: &mut HashMap<String, ScheduleNow>,
) -> Decision {
    let running = match &instance.state {
        InstanceState::Running => true,
        InstanceState::Stopped => false,
        InstanceState::Terminated => return Decision::Nothing,
        transitional => {
            return Decision::Skip(format!(
                "instance is {} (transitional state)",
                transitional.name()
            ))
        }
    };
    if let Some(group) = instance.tags.get(ASG_TAG) {
        return Decision::Skip(format!(
            "member of Auto Scaling group \"{group}\" (the group manages its capacity)"
        ));
    }
    if instance.spot {
        return Decision::Skip(
            "spot instance (cannot be stopped and started by a schedule)".into(),
        );
    }
    let pinned = match instance.tags.get(OVERRIDE_TAG).map(|v| v.trim()) {
        None => None,
        Some("skip") => return Decision::Skip(format!("{OVERRIDE_TAG}=skip")),
        Some("running") => Some(true),
        Some("stopped") => Some(false),
        Some(other) => {
            return Decision::Skip(format!(
                "invalid {OVERRIDE_TAG} value \"{other}\"; expected running, stopped or skip"
            ))
        }
    };
    // Tag values typed in a console often carry stray spaces.
    let name = instance
        .tags
        .get(schedule_tag)
        .map(|v| v.trim())
        .unwrap_or_default();
    let schedule = match schedules.get(name) {
        None => return Decision::Skip(format!("unknown schedule \"{name}\"")),
        Some(Err(invalid)) => return Decision::Skip(format!("invalid schedule: {invalid}")),
        Some(Ok(schedule)) => schedule,
    };
    let stop = Action::Stop {
        hibernate: schedule.hibernate && instance.hibernation_configured,
    };
    let toward = |want_running: bool| if want_running { Action::Start } else { stop };

    if let Some(want_running) = pinned {
        return if want_running == running {
            Decision::Nothing
        } else {
            Decision::Act(toward(want_running), None)
        };
    }

    let applied = instance
        .tags
        .get(APPLIED_TAG)
        .and_then(|v| v.parse::<Timestamp>().ok());
    let ScheduleNow {
        last,
        wants_running: want_running,
    } = *evaluated
        .entry(schedule.name.clone())
        .or_insert_with(|| ScheduleNow::of(schedule, now));
    // Before the first transition in the lookback there is nothing to mark;
    // the epoch stands for "since the beginning".
    let marker = last.map_or(Timestamp::UNIX_EPOCH, |t| t.at);
    let already_applied = applied.is_some_and(|a| a >= marker);

    // A start fleetops made for this transition that did not hold is reported,
    // not retried every tick; the next start transition tries again.
    if want_running && !running && already_applied {
        if let Some(reason) = instance
            .state_reason
            .as_ref()
            .filter(|r| r.is_failed_start())
        {
            return Decision::Fail(format!(
                "start did not hold: {}: {}",
                reason.code, reason.message
            ));
        }
    }

    if schedule.enforced {
        return if want_running == running {
            Decision::Nothing
        } else {
            Decision::Act(toward(want_running), Some(marker))
        };
    }
    match last {
        None => Decision::Nothing,
        Some(_) if already_applied => Decision::Nothing,
        Some(transition) if transition.running == running => Decision::Mark(transition.at),
        Some(transition) => Decision::Act(toward(transition.running), Some(transition.at)),
    }
}
