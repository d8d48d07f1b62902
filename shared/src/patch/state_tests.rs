//! Table tests of every decision, and a model check: any interleaving of
//! deliveries (with crashes anywhere) sends at most one command per launch.

use super::*;
use proptest::prelude::*;

fn at(minute: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
}

fn record(phase: LaunchPhase) -> LaunchRecord {
    LaunchRecord {
        instance_id: "i-1".into(),
        group: "web".into(),
        hook: "h".into(),
        token: Some("t".into()),
        warm_pool: false,
        patch_group: "web".into(),
        first_seen: at(0),
        phase,
    }
}

fn claimed(deadline: i64) -> LaunchPhase {
    LaunchPhase::Claimed {
        owner_deadline: at(deadline),
    }
}

fn sending(deadline: i64) -> LaunchPhase {
    LaunchPhase::Sending {
        fence: "f1".into(),
        since: at(1),
        owner_deadline: at(deadline),
    }
}

fn sent() -> LaunchPhase {
    LaunchPhase::Sent {
        command_id: "c1".into(),
        sent_at: at(1),
    }
}

fn completed() -> LaunchPhase {
    LaunchPhase::Completed {
        command_id: Some("c1".into()),
        result: LifecycleResult::Abandon,
        reason: "patch command ended Failed".into(),
        at: at(3),
    }
}

const EVENT: LaunchTrigger = LaunchTrigger::Event;
const SWEEP: LaunchTrigger = LaunchTrigger::Sweep {
    into_service: false,
};

#[test]
fn every_launch_phase_and_trigger_has_one_step() {
    let look_up = LaunchStep::LookUp {
        fence: "f1".into(),
        since: at(1),
    };
    let cases: Vec<(Option<LaunchRecord>, LaunchTrigger, LaunchStep)> = vec![
        (None, EVENT, LaunchStep::Claim),
        (None, SWEEP, LaunchStep::Claim),
        // A live owner is left alone; a dead one is taken over.
        (
            Some(record(claimed(10))),
            EVENT,
            LaunchStep::Skip("duplicate: another invocation is waiting for its agent".into()),
        ),
        (Some(record(claimed(4))), EVENT, LaunchStep::TakeOver),
        (Some(record(claimed(5))), SWEEP, LaunchStep::TakeOver),
        // "Sending" is always looked up first, whoever holds it.
        (Some(record(sending(10))), EVENT, look_up.clone()),
        (Some(record(sending(1))), SWEEP, look_up),
        (
            Some(record(sent())),
            EVENT,
            LaunchStep::Skip("duplicate: patch command already sent".into()),
        ),
        (
            Some(record(sent())),
            SWEEP,
            LaunchStep::Check {
                command_id: "c1".into(),
            },
        ),
        (
            Some(record(completed())),
            EVENT,
            LaunchStep::Skip("duplicate: already completed ABANDON".into()),
        ),
        // Completed but still waiting: the completion call was lost.
        (
            Some(record(completed())),
            SWEEP,
            LaunchStep::Complete {
                result: LifecycleResult::Abandon,
                reason: "patch command ended Failed".into(),
            },
        ),
    ];
    for (record, trigger, expected) in cases {
        assert_eq!(
            launch_step(record.as_ref(), trigger, at(5)),
            expected,
            "{record:?} {trigger:?}"
        );
    }
}

#[test]
fn a_warmed_instance_going_into_service_continues_at_once() {
    let mut warm = record(completed());
    warm.warm_pool = true;
    assert_eq!(
        launch_step(
            Some(&warm),
            LaunchTrigger::Sweep { into_service: true },
            at(5)
        ),
        LaunchStep::Complete {
            result: LifecycleResult::Continue,
            reason: FROM_WARM_POOL.into()
        }
    );
    // Still in the warm pool: the recorded result again.
    assert!(matches!(
        launch_step(
            Some(&warm),
            LaunchTrigger::Sweep {
                into_service: false
            },
            at(5)
        ),
        LaunchStep::Complete {
            result: LifecycleResult::Abandon,
            ..
        }
    ));
}

#[test]
fn a_looked_up_command_is_adopted_and_a_missing_one_resent_only_after_the_deadline() {
    assert_eq!(
        resolve_sending(Some("c9"), at(10), at(5)),
        Resolution::Adopt("c9".into())
    );
    assert_eq!(
        resolve_sending(Some("c9"), at(1), at(5)),
        Resolution::Adopt("c9".into())
    );
    assert_eq!(resolve_sending(None, at(5), at(5)), Resolution::TakeOver);
    assert!(matches!(
        resolve_sending(None, at(6), at(5)),
        Resolution::Skip(_)
    ));
}

#[test]
fn status_events_finish_only_the_recorded_command() {
    assert!(matches!(status_step(None, "c1"), StatusStep::Ignore(_)));
    assert_eq!(status_step(Some(&record(sent())), "c1"), StatusStep::Finish);
    assert!(matches!(
        status_step(Some(&record(sent())), "c2"),
        StatusStep::Ignore(_)
    ));
    assert!(matches!(
        status_step(Some(&record(completed())), "c1"),
        StatusStep::Ignore(r) if r.starts_with("duplicate")
    ));
    assert!(matches!(
        status_step(Some(&record(claimed(10))), "c1"),
        StatusStep::Ignore(_)
    ));
    // Arrived before the id was recorded: look it up (retried if not found).
    assert_eq!(
        status_step(Some(&record(sending(10))), "c1"),
        StatusStep::LookUp {
            fence: "f1".into(),
            since: at(1)
        }
    );
}

fn run(done: bool, deadline: i64) -> RunRecord {
    RunRecord {
        patch_group: "web".into(),
        operation: "Install".into(),
        run: "2026-11-29T02:00:00Z".into(),
        snapshot_id: None,
        owner_deadline: at(deadline),
        primary: None,
        done_at: done.then(|| at(2)),
        window_end: None,
        woken: Vec::new(),
    }
}

#[test]
fn runs_are_claimed_once_and_resumed_after_their_owner() {
    assert_eq!(run_step(None, at(5)), RunStep::Claim);
    assert!(
        matches!(run_step(Some(&run(true, 1)), at(5)), RunStep::Skip(r) if r.contains("finished"))
    );
    assert!(
        matches!(run_step(Some(&run(false, 10)), at(5)), RunStep::Skip(r) if r.contains("another invocation"))
    );
    assert_eq!(run_step(Some(&run(false, 5)), at(5)), RunStep::TakeOver);
    assert_eq!(target_step(None), TargetStep::Send);
    assert_eq!(
        target_step(Some(&TargetPhase::Sending {
            fence: "f".into(),
            since: at(1)
        })),
        TargetStep::LookUp {
            fence: "f".into(),
            since: at(1)
        }
    );
    assert_eq!(
        target_step(Some(&TargetPhase::Sent {
            command_id: "c".into(),
            sent_at: at(1)
        })),
        TargetStep::Done("c".into())
    );
}

#[test]
fn expiry_follows_the_work() {
    assert_eq!(record(completed()).expires_at(at(100)), at(3) + LAUNCH_KEEP);
    assert_eq!(record(sent()).expires_at(at(100)), at(100) + ABANDONED_KEEP);
    assert_eq!(run(true, 1).expires_at(at(100)), at(2) + RUN_KEEP);
    assert_eq!(run(false, 1).expires_at(at(100)), at(100) + ABANDONED_KEEP);
}

#[test]
fn the_fence_survives_the_comment_limit_and_is_unique() {
    let fence = new_fence("launch#i-1", at(1));
    assert_eq!(fence.len(), 16);
    assert_ne!(fence, new_fence("launch#i-1", at(1)));
    let comment = command_comment(&fence, &"launch ".repeat(40));
    assert!(comment.chars().count() <= 100);
    assert!(carries_fence(&comment, &fence));
    assert!(!carries_fence(&comment, "0000000000000000"));
    assert!(!carries_fence("someone else's command", &fence));
}

#[test]
fn records_round_trip_as_json() {
    for phase in [claimed(1), sending(2), sent(), completed()] {
        let r = record(phase);
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<LaunchRecord>(&text).unwrap(), r);
    }
}

// ---- model check: the launch protocol as the adapter runs it, one atomic
// store or SSM operation per step, any interleaving, crashes anywhere.

/// Where one invocation of `patch_launch` is.
#[derive(Clone, Debug)]
enum Pc {
    Read,
    LookUp {
        version: u64,
        fence: String,
        owner_deadline: Timestamp,
    },
    /// Holds the claim at `version`: record "sending" next.
    Owned {
        version: u64,
    },
    /// "Sending" recorded at `version`: call SendCommand next.
    Send {
        version: u64,
        fence: String,
    },
    /// Sent `command`: record it next.
    Record {
        version: u64,
        command: String,
    },
    Done,
}

struct Model {
    store: Option<(u64, LaunchRecord)>,
    /// Commands SSM has: (id, fence).
    commands: Vec<(String, String)>,
}

struct Invocation {
    pc: Pc,
    deadline: Timestamp,
    trigger: LaunchTrigger,
}

impl Model {
    fn cas(&mut self, expected: Option<u64>, record: LaunchRecord) -> Option<u64> {
        let current = self.store.as_ref().map(|(v, _)| *v);
        if current != expected {
            return None;
        }
        let next = expected.unwrap_or(0) + 1;
        self.store = Some((next, record));
        Some(next)
    }

    fn with_phase(&self, phase: LaunchPhase) -> LaunchRecord {
        let mut r = self
            .store
            .as_ref()
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| record(phase.clone()));
        r.phase = phase;
        r
    }

    /// One atomic step of `inv` at `now`.
    fn step(&mut self, inv: &mut Invocation, now: Timestamp, n: usize) {
        let pc = std::mem::replace(&mut inv.pc, Pc::Done);
        inv.pc = match pc {
            Pc::Done => Pc::Done,
            Pc::Read => {
                let stored = self.store.clone();
                match launch_step(stored.as_ref().map(|(_, r)| r), inv.trigger, now) {
                    LaunchStep::Claim => {
                        let r = self.with_phase(LaunchPhase::Claimed {
                            owner_deadline: inv.deadline,
                        });
                        match self.cas(None, r) {
                            Some(version) => Pc::Owned { version },
                            None => Pc::Read,
                        }
                    }
                    LaunchStep::TakeOver => {
                        let version = stored.map(|(v, _)| v);
                        let r = self.with_phase(LaunchPhase::Claimed {
                            owner_deadline: inv.deadline,
                        });
                        match self.cas(version, r) {
                            Some(version) => Pc::Owned { version },
                            None => Pc::Read,
                        }
                    }
                    LaunchStep::LookUp { fence, .. } => match stored {
                        Some((
                            version,
                            LaunchRecord {
                                phase: LaunchPhase::Sending { owner_deadline, .. },
                                ..
                            },
                        )) => Pc::LookUp {
                            version,
                            fence,
                            owner_deadline,
                        },
                        _ => Pc::Read,
                    },
                    _ => Pc::Done,
                }
            }
            Pc::LookUp {
                version,
                fence,
                owner_deadline,
            } => {
                let found = self
                    .commands
                    .iter()
                    .find(|(_, f)| *f == fence)
                    .map(|(c, _)| c.clone());
                match resolve_sending(found.as_deref(), owner_deadline, now) {
                    Resolution::Adopt(command_id) => {
                        let r = self.with_phase(LaunchPhase::Sent {
                            command_id,
                            sent_at: now,
                        });
                        match self.cas(Some(version), r) {
                            Some(_) => Pc::Done,
                            None => Pc::Read,
                        }
                    }
                    Resolution::TakeOver => {
                        let r = self.with_phase(LaunchPhase::Claimed {
                            owner_deadline: inv.deadline,
                        });
                        match self.cas(Some(version), r) {
                            Some(version) => Pc::Owned { version },
                            None => Pc::Read,
                        }
                    }
                    Resolution::Skip(_) => Pc::Done,
                }
            }
            Pc::Owned { version } => {
                let fence = format!("fence-{n}");
                let r = self.with_phase(LaunchPhase::Sending {
                    fence: fence.clone(),
                    since: now,
                    owner_deadline: inv.deadline,
                });
                match self.cas(Some(version), r) {
                    Some(version) => Pc::Send { version, fence },
                    None => Pc::Done,
                }
            }
            Pc::Send { version, fence } => {
                let command = format!("cmd-{}", self.commands.len());
                self.commands.push((command.clone(), fence));
                Pc::Record { version, command }
            }
            Pc::Record { version, command } => {
                let r = self.with_phase(LaunchPhase::Sent {
                    command_id: command,
                    sent_at: now,
                });
                let _ = self.cas(Some(version), r);
                Pc::Done
            }
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Up to four invocations (events, duplicates, retries, sweeps) start at
    /// chosen minutes; each step is taken by a chosen invocation; an
    /// invocation may crash at any step and is always gone at its deadline.
    /// However they interleave, SSM gets at most one command.
    #[test]
    fn any_interleaving_sends_at_most_one_command(
        starts in proptest::collection::vec((0i64..30, any::<bool>(), 1i64..6), 2..5),
        schedule in proptest::collection::vec((0usize..4, 0u8..10), 1..80),
    ) {
        let mut model = Model { store: None, commands: Vec::new() };
        let mut invocations: Vec<Invocation> = starts
            .iter()
            .map(|&(start, sweep, lifetime)| Invocation {
                pc: Pc::Read,
                deadline: at(start + lifetime),
                trigger: if sweep { SWEEP } else { EVENT },
            })
            .collect();
        let mut minute = 0;
        for (n, &(who, action)) in schedule.iter().enumerate() {
            let index = who % invocations.len();
            let start = starts[index].0;
            // Time only moves forward; a step may let a minute pass.
            if action == 9 { minute += 1; }
            let now = at(minute);
            let inv = &mut invocations[index];
            if minute < start { continue; }
            if now >= inv.deadline || action == 0 {
                // Killed (its deadline, or a crash): it never runs again.
                inv.pc = Pc::Done;
                continue;
            }
            model.step(inv, now, n);
        }
        prop_assert!(model.commands.len() <= 1, "{:?}", model.commands);
    }

    /// Without crashes, two deliveries at once send exactly one command.
    #[test]
    fn two_deliveries_without_crashes_send_exactly_one(
        schedule in proptest::collection::vec(0usize..2, 12..40),
    ) {
        let mut model = Model { store: None, commands: Vec::new() };
        let mut invocations: Vec<Invocation> = (0..2)
            .map(|_| Invocation { pc: Pc::Read, deadline: at(10), trigger: EVENT })
            .collect();
        for (n, &who) in schedule.iter().enumerate() {
            model.step(&mut invocations[who], at(0), n);
        }
        // Let both run to the end.
        for n in 0..20 {
            model.step(&mut invocations[n % 2], at(0), 100 + n);
        }
        prop_assert_eq!(model.commands.len(), 1);
    }
}
