//! The scheduler's decisions, given plain instances and schedules.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::*;
use crate::schedule::parse_schedules;

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
    }
}

fn plan(instances: &[Instance], now: &str) -> TickPlan {
    let schedules = parse_schedules(SCHEDULES).expect("schedules");
    plan_tick(instances, &schedules, "Schedule", ts(now))
}

fn act(id: &str, action: Action, applied: Option<&str>) -> PlannedAction {
    PlannedAction {
        instance_id: id.into(),
        region: "eu-west-1".into(),
        action,
        applied: applied.map(ts),
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
        vec![act("i-1", STOP, Some("2026-11-26T18:00:00Z"))]
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
        vec![act("i-1", STOP, Some("2026-11-27T18:00:00Z"))]
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
        vec![act("i-1", STOP, Some("2026-11-27T18:00:00Z"))]
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
        vec![act("i-1", STOP, Some("2026-11-26T18:00:00Z"))]
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
            applied: ts("2026-11-26T18:00:00Z")
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
        vec![act("i-kms", Action::Start, Some("2026-11-27T09:00:00Z"))]
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
        vec![act("i-1", Action::Start, Some("2026-11-26T09:00:00Z"))]
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
            dry_run: false
        })
    );
    assert_eq!(
        parse_tick_event(&serde_json::json!({"dry_run": true}), clock),
        Ok(TickRequest {
            now: clock,
            dry_run: true
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
