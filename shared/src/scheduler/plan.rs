//! The scheduler's decisions for one tick, as a pure function of the fleet,
//! the schedules and "now".

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use super::instance::{Instance, InstanceState};
use crate::schedule::{Schedule, Schedules, Transition};
use crate::tags::{woken_until, WOKEN_TAG};

/// Tag that pins an instance's state or makes the scheduler leave it alone.
pub const OVERRIDE_TAG: &str = "ScheduleOverride";
/// Tag fleetops writes after acting on an instance: which transition of which
/// schedule it applied (see `Marker`). It is how a transition-only schedule
/// knows a transition is already done, so that a hand-started instance keeps
/// running, while a missed or late tick, a re-tag or an edit still acts.
pub const APPLIED_TAG: &str = "fleetops:schedule-applied";
/// EC2 allows at most 50 tags per resource.
pub const MAX_TAGS: usize = 50;

/// The applied-transition marker: `<instant> <digest> <schedule>`, e.g.
/// `2026-11-26T18:00:00Z 3fa2c1d0e4b7 office-hours`. The digest is the
/// schedule's (name and definition); a marker of another schedule or of an
/// earlier definition is "not applied".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Marker {
    pub at: Timestamp,
    pub digest: String,
    pub schedule: String,
    /// fleetops' start for this transition did not hold (written as
    /// `<digest>/no-hold`): reported, not started again until the next start.
    pub start_failed: bool,
}

impl Marker {
    fn of(schedule: &Schedule, at: Timestamp) -> Self {
        Self {
            at,
            digest: schedule.digest.clone(),
            schedule: schedule.name.clone(),
            start_failed: false,
        }
    }

    /// The tag value (EC2 allows 256 characters: the name is cut to fit).
    pub fn tag_value(&self) -> String {
        let flag = if self.start_failed { NO_HOLD } else { "" };
        format!("{} {}{flag} {}", self.at, self.digest, self.schedule)
            .chars()
            .take(256)
            .collect()
    }
}

const NO_HOLD: &str = "/no-hold";
/// A stop this soon after the instance's last start is "did not hold".
const HOLD_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

/// What an instance's marker says about the schedule it carries now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MarkerRead {
    /// Applied up to this instant, for this very schedule and definition
    /// (`true`: the start for it did not hold).
    Applied(Timestamp, bool),
    /// No marker, an unreadable one, or one of another schedule or definition.
    NotApplied,
}

pub(super) fn read_marker(value: Option<&str>, schedule: &Schedule) -> MarkerRead {
    let Some(value) = value.map(str::trim) else {
        return MarkerRead::NotApplied;
    };
    let mut parts = value.splitn(3, ' ');
    let at = parts.next().and_then(|t| t.parse::<Timestamp>().ok());
    match (at, parts.next()) {
        (Some(at), Some(digest)) => match digest.strip_suffix(NO_HOLD) {
            _ if digest == schedule.digest => MarkerRead::Applied(at, false),
            Some(digest) if digest == schedule.digest => MarkerRead::Applied(at, true),
            _ => MarkerRead::NotApplied,
        },
        // The format before markers named their schedule (an instant alone):
        // trusted for whatever schedule the instance carries, until fleetops
        // next acts on it and writes the new format.
        (Some(at), None) => MarkerRead::Applied(at, false),
        (None, _) => MarkerRead::NotApplied,
    }
}
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
    pub applied: Option<Marker>,
}

/// An instance already in the state of a transition it has not been marked
/// for: only the marker is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedMark {
    pub instance_id: String,
    pub region: String,
    pub applied: Marker,
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

/// Something the user should know that is neither a skip nor a failed action
/// (for example a marker that cannot be written).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub instance_id: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickPlan {
    pub actions: Vec<PlannedAction>,
    pub marks: Vec<PlannedMark>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
    pub warnings: Vec<Warning>,
    /// Instances whose `ScheduleOverride` has expired: the schedule governs again.
    pub expired_overrides: Vec<String>,
    /// Instances whose patch window (`fleetops:woken`) has closed: brought to
    /// their schedule's state by this tick, then the tag is removed.
    pub wake_ends: Vec<PlannedWakeEnd>,
}

/// An instance whose `fleetops:woken` tag is to be removed once this tick
/// has brought it to its schedule's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWakeEnd {
    pub instance_id: String,
    pub region: String,
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
        let (decision, expired, wake_ended) =
            decide(instance, schedules, schedule_tag, now, &mut evaluated);
        if expired {
            plan.expired_overrides.push(instance.instance_id.clone());
        }
        if wake_ended {
            plan.wake_ends.push(PlannedWakeEnd {
                instance_id: instance.instance_id.clone(),
                region: instance.region.clone(),
            });
        }
        let writes_marker = matches!(
            &decision,
            Decision::Mark(_) | Decision::Act(_, Some(_)) | Decision::FailAndMark(..)
        );
        if writes_marker
            && !instance.tags.contains_key(APPLIED_TAG)
            && instance.tags.len() >= MAX_TAGS
        {
            plan.warnings.push(Warning {
                instance_id: instance.instance_id.clone(),
                reason: format!(
                    "has {MAX_TAGS} tags (EC2's limit): the marker {APPLIED_TAG} cannot be written; remove a tag, or a transition-only schedule re-applies its last transition at every tick"
                ),
            });
            if matches!(decision, Decision::Mark(_)) {
                continue;
            }
        }
        match decision {
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
            Decision::FailAndMark(error, applied) => {
                plan.failed.push(Failed {
                    instance_id: instance.instance_id.clone(),
                    error,
                });
                plan.marks.push(PlannedMark {
                    instance_id: instance.instance_id.clone(),
                    region: instance.region.clone(),
                    applied,
                });
            }
        }
    }
    plan
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Nothing,
    Skip(String),
    Fail(String),
    Act(Action, Option<Marker>),
    Mark(Marker),
    /// Report a failure and record it in the marker.
    FailAndMark(String, Marker),
}

/// A `ScheduleOverride` value at "now".
#[derive(Debug, PartialEq, Eq)]
enum Override {
    None,
    Skip,
    Pin {
        running: bool,
    },
    /// `… until <instant>` that has passed: the schedule governs again, and
    /// the instance is brought to the schedule's state once.
    Expired {
        until: Timestamp,
    },
}

/// Reads `running`, `stopped`, `skip`, each optionally `until <RFC 3339 with offset>`.
fn read_override(value: Option<&str>, now: Timestamp) -> Result<Override, String> {
    let Some(value) = value.map(str::trim) else {
        return Ok(Override::None);
    };
    let (word, until) = match value.split_once(" until ") {
        Some((word, until)) => (word.trim(), Some(until.trim())),
        None => (value, None),
    };
    let pinned = match word {
        "skip" => Override::Skip,
        "running" => Override::Pin { running: true },
        "stopped" => Override::Pin { running: false },
        _ => {
            return Err(format!(
                "invalid {OVERRIDE_TAG} value \"{value}\"; expected running, stopped or skip, optionally followed by \"until <RFC 3339 instant with offset>\""
            ))
        }
    };
    let Some(until) = until else {
        return Ok(pinned);
    };
    let instant = until.parse::<Timestamp>().map_err(|_| {
        if until.parse::<jiff::civil::DateTime>().is_ok() {
            format!(
                "invalid {OVERRIDE_TAG} value \"{value}\": \"{until}\" has no UTC offset, so it is ambiguous; write it with one, e.g. 2026-12-24T18:00:00+09:00"
            )
        } else {
            format!(
                "invalid {OVERRIDE_TAG} value \"{value}\": \"{until}\" is not an RFC 3339 instant with an offset, e.g. 2026-12-24T18:00:00+09:00"
            )
        }
    })?;
    Ok(if now < instant {
        pinned
    } else {
        Override::Expired { until: instant }
    })
}

/// What a schedule says at "now": the same for all its instances, so it is
/// evaluated once per schedule and tick, not once per instance.
#[derive(Clone, Copy)]
pub(super) struct ScheduleNow {
    pub(super) last: Option<Transition>,
    pub(super) wants_running: bool,
}

impl ScheduleNow {
    pub(super) fn of(schedule: &Schedule, now: Timestamp) -> Self {
        Self {
            last: schedule.last_transition(now),
            wants_running: schedule.wants_running(now),
        }
    }
}

/// What an instance's `fleetops:woken` tag says at "now".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Woken {
    /// The patch window is open until then: no stop.
    Open(Timestamp),
    /// The window closed then (or the tag is unreadable: the epoch): the
    /// schedule's state is applied once, as after an expired override.
    Closed(Timestamp),
}

fn read_woken(value: Option<&str>, now: Timestamp) -> Option<Woken> {
    let until = woken_until(value?).unwrap_or(Timestamp::UNIX_EPOCH);
    Some(if now < until {
        Woken::Open(until)
    } else {
        Woken::Closed(until)
    })
}

/// The decision, whether an expired override is news, and whether a closed
/// patch window's tag is to be removed.
fn decide(
    instance: &Instance,
    schedules: &Schedules,
    schedule_tag: &str,
    now: Timestamp,
    evaluated: &mut HashMap<String, ScheduleNow>,
) -> (Decision, bool, bool) {
    let overridden = read_override(instance.tags.get(OVERRIDE_TAG).map(String::as_str), now);
    let expired = matches!(overridden, Ok(Override::Expired { .. }));
    let woken = read_woken(instance.tags.get(WOKEN_TAG).map(String::as_str), now);
    // A closed patch window hands the instance back to its schedule like an
    // expired override: the schedule's state once, then transitions govern
    // (so the wake is never mistaken for a hand start).
    let overridden = match (woken, overridden) {
        (Some(Woken::Closed(end)), Ok(Override::None)) => Ok(Override::Expired { until: end }),
        (Some(Woken::Closed(end)), Ok(Override::Expired { until })) => Ok(Override::Expired {
            until: until.max(end),
        }),
        (_, other) => other,
    };
    let mut decision = decide_state(
        instance,
        overridden,
        schedules,
        schedule_tag,
        now,
        evaluated,
    );
    if let (Some(Woken::Open(until)), Decision::Act(Action::Stop { .. }, _)) = (woken, &decision) {
        decision = Decision::Skip(format!(
            "woken for its patch window ({WOKEN_TAG}) until {until}: not stopped while the window is open"
        ));
    }
    // An expired override is news only for instances fleetops governs.
    let listed = expired && !matches!(decision, Decision::Skip(_));
    let wake_ended = matches!(woken, Some(Woken::Closed(_)));
    (decision, listed, wake_ended)
}

fn decide_state(
    instance: &Instance,
    overridden: Result<Override, String>,
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
    let (pinned, expired_at) = match overridden {
        Err(reason) => return Decision::Skip(reason),
        Ok(Override::Skip) => {
            return Decision::Skip(format!(
                "{OVERRIDE_TAG}={}",
                instance.tags.get(OVERRIDE_TAG).map_or("skip", |v| v.trim())
            ))
        }
        Ok(Override::Pin { running }) => (Some(running), None),
        Ok(Override::None) => (None, None),
        Ok(Override::Expired { until }) => (None, Some(until)),
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

    let (applied, start_failed) =
        match read_marker(instance.tags.get(APPLIED_TAG).map(String::as_str), schedule) {
            MarkerRead::Applied(at, failed) => (Some(at), failed),
            MarkerRead::NotApplied => (None, false),
        };
    let ScheduleNow {
        last,
        wants_running: want_running,
    } = *evaluated
        .entry(schedule.name.clone())
        .or_insert_with(|| ScheduleNow::of(schedule, now));
    // Before the first transition in the lookback there is nothing to mark;
    // the epoch stands for "since the beginning".
    // A late tick (an event delivered or retried after a newer one) never
    // undoes the newer tick's decision: the marker shows a transition later
    // than this tick's "now", so this tick leaves the instance alone.
    if let Some(newer) = applied.filter(|a| *a > now) {
        return Decision::Skip(format!(
            "late tick: evaluated for {now}, but a newer tick already applied the transition of {newer}"
        ));
    }
    let marker_at = last.map_or(Timestamp::UNIX_EPOCH, |t| t.at);
    let already_applied = applied.is_some_and(|a| a >= marker_at);
    // After an expired override the schedule's state is applied once, in
    // transition-only mode too; the marker then says so (its instant is the
    // expiry, later than the transition), and transitions govern again.
    if let Some(until) = expired_at {
        if applied.is_none_or(|a| a < until) {
            let marker = Marker::of(schedule, marker_at.max(until));
            return if want_running == running {
                Decision::Mark(marker)
            } else {
                Decision::Act(toward(want_running), Some(marker))
            };
        }
    }
    let marker = Marker::of(schedule, marker_at);

    // A start for this transition that did not hold (stopped again within
    // `HOLD_WINDOW` of its last start, by a failed start or a shutdown at
    // boot) is reported and recorded in the marker, so it is not started again
    // at every tick; the next start transition tries again. A stop long after
    // a good start (a host failure in the afternoon) is not this: enforced
    // schedules start the instance again.
    if want_running && !running && already_applied {
        let reason = instance.state_reason.as_ref().map_or_else(
            || "no state reason".to_string(),
            |r| format!("{}: {}", r.code, r.message),
        );
        if start_failed {
            return Decision::Fail(format!(
                "start did not hold: {reason}; not started again until the schedule's next start"
            ));
        }
        let started_after_transition = instance.launch_time.is_some_and(|t| t >= marker_at);
        let soon_after_start = instance
            .launch_time
            .is_some_and(|t| now.duration_since(t) <= HOLD_WINDOW);
        let failed_boot = instance
            .state_reason
            .as_ref()
            .is_some_and(|r| r.is_failed_boot());
        if failed_boot && started_after_transition && soon_after_start {
            let mut marker = Marker::of(schedule, marker_at);
            marker.start_failed = true;
            return Decision::FailAndMark(format!("start did not hold: {reason}"), marker);
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
        Some(transition) if transition.running == running => Decision::Mark(marker),
        Some(transition) => Decision::Act(toward(transition.running), Some(marker)),
    }
}

/// Whether a `ScheduleOverride` value keeps the instance stopped or out of
/// fleetops' hands at `now` (`stopped`, `skip`, or unreadable): a patch
/// window does not wake such an instance.
pub fn override_keeps_stopped(value: Option<&str>, now: Timestamp) -> bool {
    matches!(
        read_override(value, now),
        Ok(Override::Skip | Override::Pin { running: false }) | Err(_)
    )
}

/// Whether the instance's schedule, or a `ScheduleOverride` pin, wants it
/// running at `now`; `None` when it carries no valid schedule. The patch
/// dispatcher asks this before it stops an instance it woke.
pub fn wants_running(
    tags: &std::collections::BTreeMap<String, String>,
    schedules: &Schedules,
    schedule_tag: &str,
    now: Timestamp,
) -> Option<bool> {
    match read_override(tags.get(OVERRIDE_TAG).map(String::as_str), now) {
        Ok(Override::Pin { running }) => return Some(running),
        Ok(_) => {}
        Err(_) => return None,
    }
    let name = tags.get(schedule_tag).map(|v| v.trim())?;
    match schedules.get(name) {
        Some(Ok(schedule)) => Some(schedule.wants_running(now)),
        _ => None,
    }
}
