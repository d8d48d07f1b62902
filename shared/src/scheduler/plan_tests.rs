//! The scheduler's decisions, given plain instances and schedules.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::*;
use crate::schedule::parse_schedules;
use crate::tags::WOKEN_TAG;

const SCHEDULES: &str = r#"{"schedules": {
  "office": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]},
  "office-enforced": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}], "enforced": true},
  "sleepy": {"periods": [{"begin": "09:00", "end": "18:00"}], "hibernate": true, "enforced": true},
  "broken": {"periods": [{"begin": "9:00"}]}
}}"#;

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn instance(id: &str, state: &str, tags: &[(&str, &str)]) -> Instance {
    Instance {
        instance_id: id.into(),
        region: "eu-west-1".into(),
        state: InstanceState::from_name(state),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        spot: false,
        hibernation_configured: false,
        state_reason: None,
        launch_time: None,
    }
}

fn plan(instances: &[Instance], now: &str) -> TickPlan {
    let schedules = parse_schedules(SCHEDULES).expect("schedules");
    plan_tick(instances, &schedules, "Schedule", ts(now))
}

/// The marker of `schedule` (as written in `SCHEDULES`) at `at`.
fn marker(at: &str, schedule: &str) -> Marker {
    let schedules = parse_schedules(SCHEDULES).expect("schedules");
    let digest = match schedules.get(schedule) {
        Some(Ok(s)) => s.digest.clone(),
        other => panic!("{schedule}: {other:?}"),
    };
    Marker {
        at: ts(at),
        digest,
        schedule: schedule.into(),
        start_failed: false,
    }
}

fn act(id: &str, action: Action, applied: Option<(&str, &str)>) -> PlannedAction {
    PlannedAction {
        instance_id: id.into(),
        region: "eu-west-1".into(),
        action,
        applied: applied.map(|(at, schedule)| marker(at, schedule)),
    }
}

const STOP: Action = Action::Stop { hibernate: false };

#[test]
fn given_a_stop_transition_not_yet_applied_when_ticking_then_the_instance_stops_and_is_marked() {
    let p = plan(
        &[instance("i-1", "running", &[("Schedule", "office")])],
        "2026-11-26T18:05:00Z",
    );
    assert_eq!(
        p.actions,
        vec![act("i-1", STOP, Some(("2026-11-26T18:00:00Z", "office")))]
    );
}

#[test]
fn given_a_missed_tick_when_the_next_tick_comes_late_then_the_transition_is_not_lost() {
    // Friday's 18:00 stop, first seen on Saturday morning.
    let marked = instance(
        "i-1",
        "running",
        &[
            ("Schedule", "office"),
            (APPLIED_TAG, "2026-11-26T18:00:00Z"),
        ],
    );
    let p = plan(&[marked], "2026-11-28T07:00:00Z");
    assert_eq!(
        p.actions,
        vec![act("i-1", STOP, Some(("2026-11-27T18:00:00Z", "office")))]
    );
}

#[test]
fn given_transition_only_mode_when_an_instance_was_started_by_hand_after_the_stop_then_it_keeps_running(
) {
    let started_by_hand = instance(
        "i-1",
        "running",
        &[
            ("Schedule", "office"),
            (APPLIED_TAG, "2026-11-26T18:00:00Z"),
        ],
    );
    let p = plan(
        std::slice::from_ref(&started_by_hand),
        "2026-11-26T21:00:00Z",
    );
    assert!(
        p.actions.is_empty() && p.skipped.is_empty() && p.failed.is_empty(),
        "{p:?}"
    );
    // ...until the next stop transition.
    let p = plan(&[started_by_hand], "2026-11-27T18:00:00Z");
    assert_eq!(
        p.actions,
        vec![act("i-1", STOP, Some(("2026-11-27T18:00:00Z", "office")))]
    );
}

#[test]
fn given_enforced_mode_when_an_instance_was_started_by_hand_then_it_is_stopped_again() {
    let i = instance(
        "i-1",
        "running",
        &[
            ("Schedule", "office-enforced"),
            (APPLIED_TAG, "2026-11-26T18:00:00Z"),
        ],
    );
    let p = plan(&[i], "2026-11-26T21:00:00Z");
    assert_eq!(
        p.actions,
        vec![act(
            "i-1",
            STOP,
            Some(("2026-11-26T18:00:00Z", "office-enforced"))
        )]
    );
}

#[test]
fn given_an_unmarked_instance_already_in_state_then_only_the_marker_is_recorded() {
    let p = plan(
        &[instance("i-1", "stopped", &[("Schedule", "office")])],
        "2026-11-26T20:00:00Z",
    );
    assert!(p.actions.is_empty());
    assert_eq!(
        p.marks,
        vec![PlannedMark {
            instance_id: "i-1".into(),
            region: "eu-west-1".into(),
            applied: marker("2026-11-26T18:00:00Z", "office")
        }]
    );
}

#[test]
fn hibernate_only_where_the_instance_is_configured_for_it() {
    let mut configured = instance("i-h", "running", &[("Schedule", "sleepy")]);
    configured.hibernation_configured = true;
    let plain = instance("i-p", "running", &[("Schedule", "sleepy")]);
    let p = plan(&[configured, plain], "2026-11-26T20:00:00Z");
    assert_eq!(p.actions[0].action, Action::Stop { hibernate: true });
    assert_eq!(p.actions[1].action, Action::Stop { hibernate: false });
}

#[test]
fn overrides_pin_or_leave_alone() {
    let p = plan(
        &[
            instance(
                "i-run",
                "stopped",
                &[("Schedule", "office"), (OVERRIDE_TAG, "running")],
            ),
            instance(
                "i-stop",
                "running",
                &[("Schedule", "office"), (OVERRIDE_TAG, "stopped")],
            ),
            instance(
                "i-skip",
                "running",
                &[("Schedule", "office"), (OVERRIDE_TAG, "skip")],
            ),
            instance(
                "i-odd",
                "running",
                &[("Schedule", "office"), (OVERRIDE_TAG, "maybe")],
            ),
        ],
        "2026-11-26T12:00:00Z",
    );
    assert_eq!(
        p.actions,
        vec![act("i-run", Action::Start, None), act("i-stop", STOP, None)]
    );
    let reasons: Vec<_> = p
        .skipped
        .iter()
        .map(|s| (s.instance_id.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons[0], ("i-skip", "ScheduleOverride=skip"));
    assert!(
        reasons[1].1.contains("invalid ScheduleOverride"),
        "{reasons:?}"
    );
}

#[test]
fn never_touched_instances_are_listed_with_their_reason() {
    let mut spot = instance("i-spot", "running", &[("Schedule", "office")]);
    spot.spot = true;
    let p = plan(
        &[
            instance("i-pending", "pending", &[("Schedule", "office")]),
            instance("i-stopping", "stopping", &[("Schedule", "office")]),
            instance(
                "i-asg",
                "running",
                &[("Schedule", "office"), (ASG_TAG, "web")],
            ),
            spot,
            instance("i-unknown", "running", &[("Schedule", "nope")]),
            instance("i-broken", "running", &[("Schedule", "broken")]),
        ],
        "2026-11-26T20:00:00Z",
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let reasons: BTreeMap<_, _> = p
        .skipped
        .iter()
        .map(|s| (s.instance_id.as_str(), s.reason.as_str()))
        .collect();
    assert!(reasons["i-pending"].contains("pending"));
    assert!(reasons["i-stopping"].contains("stopping"));
    assert!(reasons["i-asg"].contains("Auto Scaling group \"web\""));
    assert!(reasons["i-spot"].contains("spot"));
    assert_eq!(reasons["i-unknown"], "unknown schedule \"nope\"");
    assert!(
        reasons["i-broken"].contains("periods[0].begin"),
        "{}",
        reasons["i-broken"]
    );
}

#[test]
fn a_tag_value_with_stray_spaces_still_names_its_schedule() {
    let p = plan(
        &[instance("i-1", "running", &[("Schedule", " office ")])],
        "2026-11-26T18:05:00Z",
    );
    assert_eq!(p.actions.len(), 1);
    let p = plan(
        &[instance("i-2", "running", &[("Schedule", "off ice")])],
        "2026-11-26T18:05:00Z",
    );
    assert_eq!(p.skipped[0].reason, "unknown schedule \"off ice\"");
}

#[test]
fn a_start_that_did_not_hold_is_reported_not_retried() {
    let mut i = instance(
        "i-kms",
        "stopped",
        &[
            ("Schedule", "office-enforced"),
            (APPLIED_TAG, "2026-11-26T09:00:00Z"),
        ],
    );
    i.state_reason = Some(StateReason {
        code: "Client.InternalError".into(),
        message: "Client.InternalError: Client error on launch".into(),
    });
    // Started at 09:00 (for the 09:00 transition), stopped again at once.
    i.launch_time = Some(ts("2026-11-26T09:00:20Z"));
    let p = plan(&[i.clone()], "2026-11-26T09:10:00Z");
    assert!(p.actions.is_empty());
    assert_eq!(p.failed[0].instance_id, "i-kms");
    assert!(
        p.failed[0].error.contains("Client.InternalError"),
        "{}",
        p.failed[0].error
    );
    // The next start transition tries again.
    let p = plan(&[i], "2026-11-27T09:10:00Z");
    assert_eq!(
        p.actions,
        vec![act(
            "i-kms",
            Action::Start,
            Some(("2026-11-27T09:00:00Z", "office-enforced"))
        )]
    );
}

#[test]
fn a_hand_stop_during_a_period_is_respected_in_transition_mode_and_undone_when_enforced() {
    let mut i = instance(
        "i-1",
        "stopped",
        &[
            ("Schedule", "office"),
            (APPLIED_TAG, "2026-11-26T09:00:00Z"),
        ],
    );
    i.state_reason = Some(StateReason {
        code: "Client.UserInitiatedShutdown".into(),
        message: "User initiated shutdown".into(),
    });
    assert!(plan(&[i.clone()], "2026-11-26T12:00:00Z")
        .actions
        .is_empty());
    i.tags.insert("Schedule".into(), "office-enforced".into());
    assert_eq!(
        plan(&[i], "2026-11-26T12:00:00Z").actions,
        vec![act(
            "i-1",
            Action::Start,
            Some(("2026-11-26T09:00:00Z", "office-enforced"))
        )]
    );
}

#[test]
fn event_time_is_now_and_bad_fields_are_named() {
    let clock = ts("2030-01-01T00:00:00Z");
    let scheduled = serde_json::json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-26T09:00:00Z", "detail": {}});
    assert_eq!(
        parse_tick_event(&scheduled, clock),
        Ok(TickRequest {
            now: ts("2026-11-26T09:00:00Z"),
            dry_run: false,
            act_until: None,
            memory: None,
        })
    );
    assert_eq!(
        parse_tick_event(&serde_json::json!({"dry_run": true}), clock),
        Ok(TickRequest {
            now: clock,
            dry_run: true,
            act_until: None,
            memory: None,
        })
    );
    assert_eq!(
        parse_tick_event(&serde_json::json!({"time": "yesterday"}), clock).map_err(|e| e.field),
        Err("time")
    );
    assert_eq!(
        parse_tick_event(&serde_json::json!({"dry_run": "yes"}), clock).map_err(|e| e.field),
        Err("dry_run")
    );
}

#[test]
fn settings_come_from_the_environment_with_defaults() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let s = SchedulerSettings::from_env(env(&[]), Some("eu-west-1")).expect("defaults");
    assert_eq!(
        (
            s.schedule_tag.as_str(),
            s.schedules_parameter.as_str(),
            s.dry_run,
            s.regions.clone()
        ),
        (
            "Schedule",
            "/fleetops/schedules",
            false,
            vec!["eu-west-1".to_string()]
        )
    );
    let s = SchedulerSettings::from_env(
        env(&[("REGIONS", "us-east-1, eu-central-1"), ("DRY_RUN", "TRUE")]),
        Some("eu-west-1"),
    )
    .expect("set");
    assert_eq!((s.regions.len(), s.dry_run), (2, true));
    assert_eq!(
        SchedulerSettings::from_env(env(&[("DRY_RUN", "maybe")]), Some("eu-west-1"))
            .map_err(|e| e.name),
        Err("DRY_RUN")
    );
    assert_eq!(
        SchedulerSettings::from_env(env(&[("REGIONS", "Europe")]), None).map_err(|e| e.name),
        Err("REGIONS")
    );
}

fn any_json_scalar() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        "\\PC{0,30}".prop_map(serde_json::Value::String),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z"
            .prop_map(serde_json::Value::String),
    ]
}

proptest::proptest! {
    /// No event makes the parser panic; a rejection names `time` or `dry_run`.
    #[test]
    fn any_event_is_parsed_or_rejected_with_its_field(time in any_json_scalar(), dry_run in any_json_scalar(), extra in "\\PC{0,8}") {
        let event = serde_json::json!({"time": time, "dry_run": dry_run, extra: 1});
        if let Err(error) = parse_tick_event(&event, ts("2030-01-01T00:00:00Z")) {
            proptest::prop_assert!(error.field == "time" || error.field == "dry_run", "{error}");
        }
    }
}

#[test]
fn an_all_day_every_day_schedule_never_transitions() {
    let schedules =
        parse_schedules(r#"{"schedules": {"always": {"periods": [{}]}}}"#).expect("schedules");
    let p = plan_tick(
        &[instance("i-1", "running", &[("Schedule", "always")])],
        &schedules,
        "Schedule",
        ts("2026-11-26T18:05:00Z"),
    );
    assert_eq!(p, TickPlan::default());
}

fn plan_with(document: &str, instances: &[Instance], now: &str) -> TickPlan {
    let schedules = parse_schedules(document).expect("schedules");
    plan_tick(instances, &schedules, "Schedule", ts(now))
}

const OFFICE_AND_LATE: &str = r#"{"schedules": {
  "office": {"periods": [{"begin": "09:00", "end": "18:00"}]},
  "late": {"periods": [{"begin": "17:00", "end": "23:00"}]}
}}"#;

#[test]
fn given_a_re_tag_to_another_schedule_then_its_latest_transition_is_applied() {
    // Stopped at 18:00 by office, marked; re-tagged to late at 19:00.
    let first = plan_with(
        OFFICE_AND_LATE,
        &[instance("i-1", "running", &[("Schedule", "office")])],
        "2026-11-26T18:05:00Z",
    );
    let value = first.actions[0]
        .applied
        .as_ref()
        .expect("marker")
        .tag_value();
    assert!(
        value.starts_with("2026-11-26T18:00:00Z ") && value.ends_with(" office"),
        "{value}"
    );
    let retagged = instance(
        "i-1",
        "stopped",
        &[("Schedule", "late"), (APPLIED_TAG, value.as_str())],
    );
    let p = plan_with(OFFICE_AND_LATE, &[retagged], "2026-11-26T19:05:00Z");
    assert_eq!(p.actions.len(), 1, "{p:?}");
    assert_eq!(p.actions[0].action, Action::Start);
    assert_eq!(
        p.actions[0].applied.as_ref().map(|m| m.schedule.as_str()),
        Some("late")
    );
}

#[test]
fn given_an_edited_schedule_then_the_latest_transition_as_now_written_is_applied() {
    let before = r#"{"schedules": {"office": {"periods": [{"begin": "09:00", "end": "17:00"}]}}}"#;
    let after = r#"{"schedules": {"office": {"periods": [{"begin": "12:00", "end": "20:00"}]}}}"#;
    let started = plan_with(
        before,
        &[instance("i-1", "stopped", &[("Schedule", "office")])],
        "2026-11-26T09:05:00Z",
    );
    let value = started.actions[0]
        .applied
        .as_ref()
        .expect("marker")
        .tag_value();
    let i = instance(
        "i-1",
        "running",
        &[("Schedule", "office"), (APPLIED_TAG, value.as_str())],
    );
    // Unedited, 10:05 changes nothing; edited to 12-20, yesterday's 20:00 stop holds.
    assert!(
        plan_with(before, std::slice::from_ref(&i), "2026-11-26T10:05:00Z")
            .actions
            .is_empty()
    );
    let p = plan_with(after, &[i], "2026-11-26T10:05:00Z");
    assert_eq!(p.actions.len(), 1, "{p:?}");
    assert_eq!(p.actions[0].action, STOP);
    assert_eq!(
        p.actions[0].applied.as_ref().map(|m| m.at),
        Some(ts("2026-11-25T20:00:00Z"))
    );
}

#[test]
fn an_old_format_marker_still_counts_for_the_schedule_carried_now() {
    let i = instance(
        "i-1",
        "running",
        &[
            ("Schedule", "office"),
            (APPLIED_TAG, "2026-11-26T18:00:00Z"),
        ],
    );
    assert!(plan(&[i], "2026-11-26T20:00:00Z").actions.is_empty());
}

#[test]
fn expiring_overrides_hold_before_and_hand_back_after() {
    let pinned = |value: &str| {
        instance(
            "i-1",
            "running",
            &[
                ("Schedule", "office"),
                (OVERRIDE_TAG, value),
                (APPLIED_TAG, "2026-11-26T09:00:00Z"),
            ],
        )
    };
    // "Keep this box up until Friday 18:00 Seoul time" (09:00 UTC).
    let value = "running until 2026-11-27T18:00:00+09:00";
    let before = plan(&[pinned(value)], "2026-11-27T08:55:00Z");
    assert!(
        before.actions.is_empty() && before.expired_overrides.is_empty(),
        "{before:?}"
    );
    // Friday 09:05 UTC: office wants it running (09-18 UTC): nothing to change.
    let during = plan(&[pinned(value)], "2026-11-27T09:05:00Z");
    assert!(during.actions.is_empty(), "{during:?}");
    assert_eq!(during.expired_overrides, vec!["i-1".to_string()]);
    // Transition-only, expired at night: the schedule's state now (stopped).
    let night = "running until 2026-11-26T20:00:00Z";
    let p = plan(&[pinned(night)], "2026-11-26T20:05:00Z");
    assert_eq!(p.actions.len(), 1, "{p:?}");
    assert_eq!(p.actions[0].action, STOP);
    let marker = p.actions[0].applied.clone().expect("marker");
    assert_eq!(marker.at, ts("2026-11-26T20:00:00Z"));
    // Once applied, transitions govern again: a hand start keeps running.
    let mut after = pinned(night);
    after.tags.insert(APPLIED_TAG.into(), marker.tag_value());
    assert!(plan(&[after], "2026-11-26T21:00:00Z").actions.is_empty());
    // "stopped until" before its instant pins stopped; "skip until" skips.
    let stopped = plan(
        &[pinned("stopped until 2026-11-27T00:00:00-05:00")],
        "2026-11-26T12:00:00Z",
    );
    assert_eq!(stopped.actions[0].action, STOP);
    assert!(stopped.actions[0].applied.is_none());
    let skip = plan(
        &[pinned("skip until 2026-11-27T00:00:00Z")],
        "2026-11-26T20:05:00Z",
    );
    assert!(skip.actions.is_empty());
    assert_eq!(skip.skipped.len(), 1);
}

#[test]
fn a_malformed_or_offsetless_override_is_skipped_with_its_reason() {
    for (value, says) in [
        ("running until 2026-12-24T18:00:00", "no UTC offset"),
        ("running until friday", "not an RFC 3339 instant"),
        (
            "runing until 2026-12-24T18:00:00Z",
            "expected running, stopped or skip",
        ),
        ("on", "expected running, stopped or skip"),
    ] {
        let i = instance(
            "i-1",
            "running",
            &[("Schedule", "office"), (OVERRIDE_TAG, value)],
        );
        let p = plan(&[i], "2026-11-26T20:05:00Z");
        assert!(p.actions.is_empty(), "{value}");
        assert!(
            p.skipped[0].reason.contains(says),
            "{value}: {}",
            p.skipped[0].reason
        );
    }
}

#[test]
fn an_instance_at_the_tag_limit_is_warned_about_its_marker() {
    let mut tags: Vec<(String, String)> = (0..49)
        .map(|n| (format!("k{n}"), "v".to_string()))
        .collect();
    tags.push(("Schedule".into(), "office".into()));
    let refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = plan(&[instance("i-1", "running", &refs)], "2026-11-26T18:05:00Z");
    assert_eq!(p.actions.len(), 1);
    assert!(p.warnings[0].reason.contains("50 tags"), "{p:?}");
}

#[test]
fn a_late_tick_never_undoes_a_newer_decision() {
    // The 09:05 tick started the instance for the 09:00 transition (enforced);
    // a retried 08:55 tick arrives afterwards: it must not stop it again.
    let started = plan(
        &[instance(
            "i-1",
            "stopped",
            &[("Schedule", "office-enforced")],
        )],
        "2026-11-26T09:05:00Z",
    );
    let value = started.actions[0]
        .applied
        .as_ref()
        .expect("marker")
        .tag_value();
    let i = instance(
        "i-1",
        "running",
        &[
            ("Schedule", "office-enforced"),
            (APPLIED_TAG, value.as_str()),
        ],
    );
    let late = plan(std::slice::from_ref(&i), "2026-11-26T08:55:00Z");
    assert!(late.actions.is_empty(), "{late:?}");
    assert!(late.skipped[0].reason.starts_with("late tick"), "{late:?}");
    // The same instance at a current tick: nothing to do.
    let now = plan(&[i], "2026-11-26T09:10:00Z");
    assert!(now.actions.is_empty() && now.skipped.is_empty(), "{now:?}");
}

#[test]
fn a_boot_loop_is_reported_once_and_not_restarted_until_the_next_start() {
    let mut i = instance("i-loop", "stopped", &[("Schedule", "office-enforced")]);
    let started = plan(std::slice::from_ref(&i), "2026-11-26T09:05:00Z");
    let value = started.actions[0]
        .applied
        .as_ref()
        .expect("marker")
        .tag_value();
    i.tags.insert(APPLIED_TAG.into(), value);
    i.launch_time = Some(ts("2026-11-26T09:05:10Z"));
    i.state_reason = Some(StateReason {
        code: "Client.InstanceInitiatedShutdown".into(),
        message: "Client.InstanceInitiatedShutdown: Instance initiated shutdown".into(),
    });
    let p = plan(std::slice::from_ref(&i), "2026-11-26T09:10:00Z");
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(p.failed[0].error.contains("InstanceInitiatedShutdown"));
    assert!(p.marks[0].applied.start_failed);
    // Recorded: later ticks report it and leave it stopped, even past the window.
    i.tags
        .insert(APPLIED_TAG.into(), p.marks[0].applied.tag_value());
    let later = plan(std::slice::from_ref(&i), "2026-11-26T15:00:00Z");
    assert!(later.actions.is_empty(), "{later:?}");
    assert!(later.failed[0]
        .error
        .contains("until the schedule's next start"));
    // The next morning's start tries again.
    let tomorrow = plan(&[i], "2026-11-27T09:05:00Z");
    assert_eq!(tomorrow.actions[0].action, Action::Start);
}

#[test]
fn a_stop_hours_after_a_good_start_is_not_a_start_that_did_not_hold() {
    let mut i = instance("i-host", "stopped", &[("Schedule", "office-enforced")]);
    let started = plan(std::slice::from_ref(&i), "2026-11-26T09:05:00Z");
    let value = started.actions[0]
        .applied
        .as_ref()
        .expect("marker")
        .tag_value();
    i.tags.insert(APPLIED_TAG.into(), value);
    i.launch_time = Some(ts("2026-11-26T09:05:10Z"));
    i.state_reason = Some(StateReason {
        code: "Server.InternalError".into(),
        message: "Server.InternalError: Internal error on the host".into(),
    });
    // Found stopped at 14:00: enforced mode starts it again.
    let p = plan(&[i], "2026-11-26T14:00:00Z");
    assert!(p.failed.is_empty(), "{p:?}");
    assert_eq!(p.actions[0].action, Action::Start);
}

/// An instance stopped by `office` at 18:00 (transition-only, marked), woken
/// by the patch dispatcher at 02:00 for a window until 04:00.
fn woken(schedule: &str, state: &str, until: &str) -> Instance {
    instance(
        "i-woken",
        state,
        &[
            ("Schedule", schedule),
            (
                APPLIED_TAG,
                &marker("2026-11-25T18:00:00Z", schedule).tag_value(),
            ),
            (WOKEN_TAG, until),
        ],
    )
}

#[test]
fn a_woken_instance_is_never_stopped_while_its_window_is_open() {
    for schedule in ["office", "office-enforced"] {
        let p = plan(
            &[woken(schedule, "running", "2026-11-26T04:00:00Z")],
            "2026-11-26T03:00:00Z",
        );
        assert!(p.actions.is_empty(), "{schedule}: {p:?}");
        assert!(p.wake_ends.is_empty(), "{schedule}: {p:?}");
        if schedule == "office-enforced" {
            assert!(p.skipped[0].reason.contains("patch window"), "{p:?}");
        }
    }
}

#[test]
fn after_the_window_a_woken_instance_gets_its_schedules_state_once_then_transitions_govern() {
    // Transition-only: the 18:00 stop was applied before the wake, so without
    // the tag the running instance would look hand-started and keep running.
    let p = plan(
        &[woken("office", "running", "2026-11-26T04:00:00Z")],
        "2026-11-26T04:05:00Z",
    );
    assert_eq!(p.actions.len(), 1, "{p:?}");
    assert_eq!(p.actions[0].action, STOP);
    let applied = p.actions[0].applied.clone().expect("marker");
    assert_eq!(applied.at, ts("2026-11-26T04:00:00Z"));
    assert_eq!(
        p.wake_ends,
        vec![PlannedWakeEnd {
            instance_id: "i-woken".into(),
            region: "eu-west-1".into()
        }]
    );
    assert!(p.expired_overrides.is_empty(), "{p:?}");
    // Tag removed and marker written: a later hand start keeps running.
    let mut after = woken("office", "running", "2026-11-26T04:00:00Z");
    after.tags.remove(WOKEN_TAG);
    after.tags.insert(APPLIED_TAG.into(), applied.tag_value());
    assert!(plan(&[after], "2026-11-26T05:00:00Z").actions.is_empty());
    // A schedule that wants it running by then keeps it running.
    let morning = plan(
        &[woken("office", "running", "2026-11-26T10:00:00Z")],
        "2026-11-26T10:05:00Z",
    );
    assert!(morning.actions.is_empty(), "{morning:?}");
    assert_eq!(morning.marks.len(), 1, "{morning:?}");
    assert_eq!(morning.wake_ends.len(), 1, "{morning:?}");
    // Already stopped again by the dispatcher: only the tag goes.
    let stopped = plan(
        &[woken("office", "stopped", "2026-11-26T04:00:00Z")],
        "2026-11-26T04:05:00Z",
    );
    assert!(stopped.actions.is_empty(), "{stopped:?}");
    assert_eq!(stopped.wake_ends.len(), 1, "{stopped:?}");
}

#[test]
fn an_unreadable_woken_tag_is_removed_and_the_schedule_governs() {
    let p = plan(
        &[woken("office-enforced", "running", "soon")],
        "2026-11-26T03:00:00Z",
    );
    assert_eq!(p.actions.len(), 1, "{p:?}");
    assert_eq!(p.wake_ends.len(), 1, "{p:?}");
}
