//! Patch windows that wake stopped instances, as pure decisions over plain
//! data. One record per instance (`wake#<instance-id>`): which run woke it,
//! until when its window lasts, and how far the wake got. The adapter
//! (`wake.rs`) only carries the steps out.
//!
//! starting (claimed; the start may or may not have happened) → started →
//! sent (the run's command reached it) → returned (stopped again, or left
//! running because its schedule wants it so). A start that failed ends in
//! start_failed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::decide::rfc3339;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeRecord {
    pub instance_id: String,
    /// The key of the scheduled run that woke the instance.
    pub run: String,
    #[serde(with = "rfc3339")]
    pub window_end: Timestamp,
    pub phase: WakePhase,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum WakePhase {
    Starting,
    Started,
    Sent {
        command_id: String,
    },
    StartFailed {
        error: String,
    },
    Returned {
        #[serde(with = "rfc3339")]
        at: Timestamp,
        stopped: bool,
    },
}

impl WakePhase {
    pub fn name(&self) -> &'static str {
        match self {
            WakePhase::Starting => "starting",
            WakePhase::Started => "started",
            WakePhase::Sent { .. } => "sent",
            WakePhase::StartFailed { .. } => "start_failed",
            WakePhase::Returned { .. } => "returned",
        }
    }
}

impl WakeRecord {
    /// Whether the wake still holds the instance (not finished, window open).
    pub fn holds(&self, now: Timestamp) -> bool {
        matches!(
            self.phase,
            WakePhase::Starting | WakePhase::Started | WakePhase::Sent { .. }
        ) && now < self.window_end
    }
}

/// What a run does with a stopped instance of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeClaim {
    /// No record: create one (conditionally), then start.
    Create,
    /// A finished wake of an earlier run: replace it (by version), then start.
    Replace,
    /// This run claimed it and may have crashed before the start: start again
    /// (a start of a started instance changes nothing).
    Resume,
    /// Leave it stopped, for this reason.
    Leave(String),
}

pub fn wake_claim(existing: Option<&WakeRecord>, run: &str, now: Timestamp) -> WakeClaim {
    let Some(record) = existing else {
        return WakeClaim::Create;
    };
    if record.run == run {
        return match record.phase {
            WakePhase::Starting => WakeClaim::Resume,
            _ => WakeClaim::Leave(format!(
                "already woken by this run ({}); a duplicate or retried run never wakes twice",
                record.phase.name()
            )),
        };
    }
    if record.holds(now) {
        return WakeClaim::Leave(format!(
            "woken by another run ({}) whose window lasts until {}",
            record.run, record.window_end
        ));
    }
    WakeClaim::Replace
}

/// Where a woken instance's patch command stands, as SSM says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandOnInstance {
    /// Pending, InProgress or Delayed (or not visible yet).
    Running,
    /// A final status: Success, Failed, TimedOut, Cancelled...
    Ended,
}

/// What to do with a woken instance now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnStep {
    /// Its patching is not over: look again later.
    Wait(String),
    /// Stop it again (it was stopped when the run found it).
    Stop(String),
    /// Leave it running: its schedule wants it running by now.
    KeepRunning(String),
    /// The wake is over (returned, or never started).
    Done,
}

/// `command`: the run's command on the instance, when one was sent.
/// `wants_running`: what its schedule (or a pin) wants now; `None` when it
/// carries no valid schedule (then it goes back to stopped, as it was found).
pub fn return_step(
    record: &WakeRecord,
    command: Option<CommandOnInstance>,
    wants_running: Option<bool>,
    now: Timestamp,
) -> ReturnStep {
    let window_open = now < record.window_end;
    let why = match (&record.phase, command) {
        (WakePhase::Returned { .. } | WakePhase::StartFailed { .. }, _) => return ReturnStep::Done,
        // Never in the middle of a patch, window or not.
        (WakePhase::Sent { command_id }, Some(CommandOnInstance::Running) | None)
            if window_open || command.is_some() =>
        {
            return ReturnStep::Wait(format!("patch command {command_id} is not over"));
        }
        (WakePhase::Sent { command_id }, Some(CommandOnInstance::Ended)) => {
            format!("its patch command {command_id} has ended")
        }
        (WakePhase::Sent { command_id }, _) => {
            format!(
                "its window closed at {} and SSM does not know command {command_id} on it",
                record.window_end
            )
        }
        (WakePhase::Starting | WakePhase::Started, _) if window_open => {
            return ReturnStep::Wait("the run has not sent its patch command yet".into());
        }
        (WakePhase::Starting | WakePhase::Started, _) => format!(
            "its window closed at {} before a patch command was sent",
            record.window_end
        ),
    };
    match wants_running {
        Some(true) => ReturnStep::KeepRunning(format!("{why}; its schedule wants it running now")),
        Some(false) => ReturnStep::Stop(format!("{why}; stopped again, as its schedule wants")),
        None => ReturnStep::Stop(format!(
            "{why}; stopped again, as it was found (no valid schedule to say otherwise)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn record(run: &str, phase: WakePhase) -> WakeRecord {
        WakeRecord {
            instance_id: "i-1".into(),
            run: run.into(),
            window_end: ts("2026-11-26T04:00:00Z"),
            phase,
        }
    }

    const RUN: &str = "run#web#Install#2026-11-26T02:00:00Z";
    const DURING: &str = "2026-11-26T02:30:00Z";
    const AFTER: &str = "2026-11-26T04:05:00Z";

    #[test]
    fn a_run_wakes_an_instance_once_whatever_the_deliveries() {
        let sent = WakePhase::Sent {
            command_id: "c1".into(),
        };
        let now = ts(DURING);
        assert_eq!(wake_claim(None, RUN, now), WakeClaim::Create);
        assert_eq!(
            wake_claim(Some(&record(RUN, WakePhase::Starting)), RUN, now),
            WakeClaim::Resume
        );
        for phase in [
            WakePhase::Started,
            sent.clone(),
            WakePhase::StartFailed { error: "x".into() },
            WakePhase::Returned {
                at: now,
                stopped: true,
            },
        ] {
            let claim = wake_claim(Some(&record(RUN, phase.clone())), RUN, now);
            assert!(
                matches!(&claim, WakeClaim::Leave(r) if r.contains("never wakes twice")),
                "{phase:?}: {claim:?}"
            );
        }
        // Another run: not while this wake holds it; after, a new wake.
        let other = "run#web#Install#2026-11-25T02:00:00Z";
        assert!(matches!(
            wake_claim(Some(&record(other, sent.clone())), RUN, now),
            WakeClaim::Leave(_)
        ));
        assert_eq!(
            wake_claim(Some(&record(other, sent)), RUN, ts(AFTER)),
            WakeClaim::Replace
        );
        let returned = WakePhase::Returned {
            at: now,
            stopped: true,
        };
        assert_eq!(
            wake_claim(Some(&record(other, returned)), RUN, now),
            WakeClaim::Replace
        );
    }

    #[test]
    fn a_woken_instance_goes_back_only_once_its_patching_is_over() {
        use CommandOnInstance::{Ended, Running};
        let sent = || {
            record(
                RUN,
                WakePhase::Sent {
                    command_id: "c1".into(),
                },
            )
        };
        let stop = |s: &ReturnStep| matches!(s, ReturnStep::Stop(_));
        let wait = |s: &ReturnStep| matches!(s, ReturnStep::Wait(_));
        // (record, command, schedule wants running, now) -> step
        assert!(wait(&return_step(
            &sent(),
            Some(Running),
            Some(false),
            ts(DURING)
        )));
        assert!(stop(&return_step(
            &sent(),
            Some(Ended),
            Some(false),
            ts(DURING)
        )));
        // The window closed mid-patch: the command finishes first.
        assert!(wait(&return_step(
            &sent(),
            Some(Running),
            Some(false),
            ts(AFTER)
        )));
        assert!(stop(&return_step(&sent(), Some(Ended), None, ts(AFTER))));
        // Not visible in SSM: wait while the window is open, not after.
        assert!(wait(&return_step(&sent(), None, Some(false), ts(DURING))));
        assert!(stop(&return_step(&sent(), None, Some(false), ts(AFTER))));
        // A schedule that starts at 06:00 and it is 06:05: keep it running.
        assert!(matches!(
            return_step(&sent(), Some(Ended), Some(true), ts(AFTER)),
            ReturnStep::KeepRunning(_)
        ));
        // Started, no command yet: wait for the run; after the window, stop.
        let started = record(RUN, WakePhase::Started);
        assert!(wait(&return_step(&started, None, Some(false), ts(DURING))));
        assert!(stop(&return_step(&started, None, Some(false), ts(AFTER))));
        for done in [
            WakePhase::StartFailed { error: "x".into() },
            WakePhase::Returned {
                at: ts(DURING),
                stopped: true,
            },
        ] {
            assert_eq!(
                return_step(&record(RUN, done), Some(Ended), Some(false), ts(AFTER)),
                ReturnStep::Done
            );
        }
    }
}
