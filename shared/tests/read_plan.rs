//! The tick's two-step read: whatever the fleet, the instances the read plan
//! leaves out (as EC2's filters would) are ones `plan_tick` decides nothing
//! for, so planning over the instances read gives the plan over all of them.

use std::collections::BTreeMap;

use fleetops::schedule::{parse_schedules, Schedules};
use fleetops::scheduler::read_plan::{
    early_queries_per_state, early_reads, plan_reads, tag_key_groups, FullRead, ReadPlan, TagViews,
    EARLY_QUERIES_PER_STATE, MAX_FILTER_VALUES,
};
use fleetops::scheduler::{plan_tick, Instance, InstanceState, StateReason, TickPlan, APPLIED_TAG};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const SCHEDULES: &str = r#"{"schedules": {
  "office": {"timezone": "Europe/Berlin", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]},
  "office-enforced": {"timezone": "America/New_York", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}], "enforced": true},
  "night": {"periods": [{"begin": "22:00", "end": "06:00"}], "skip_dates": ["12-25"]},
  "open": {"timezone": "Asia/Seoul", "periods": [{"begin": "08:00"}, {"weekdays": "fri", "end": "20:00"}]},
  "sleepy": {"periods": [{"begin": "09:00", "end": "18:00"}], "hibernate": true, "enforced": true},
  "broken": {"periods": [{"begin": "9:00"}]}
}}"#;
const TAG: &str = "Schedule";
const BASE: &str = "2026-11-23T00:00:00Z";

fn schedules() -> Schedules {
    parse_schedules(SCHEDULES).expect("schedules")
}

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn digest(schedules: &Schedules, name: &str) -> String {
    match schedules.get(name) {
        Some(Ok(s)) => s.digest.clone(),
        _ => "000000000000".into(),
    }
}

/// The deciding tags, as `DescribeTags` returns them (of every instance,
/// terminated ones too).
fn views_of(fleet: &[Instance]) -> TagViews {
    let keys: Vec<String> = tag_key_groups(TAG)
        .into_iter()
        .flat_map(|chain| chain.keys)
        .collect();
    let mut views = TagViews::new();
    for instance in fleet {
        for (key, value) in &instance.tags {
            if keys.contains(key) {
                views
                    .entry(instance.instance_id.clone())
                    .or_default()
                    .insert(key.clone(), value.clone());
            }
        }
    }
    views
}

/// What EC2 returns for the plan's queries: filters evaluated as the API
/// reference defines them (exact tag values, states, ids, lifecycle).
fn returned(fleet: &[Instance], plan: &ReadPlan) -> Vec<Instance> {
    let live = ["pending", "running", "stopping", "stopped", "shutting-down"];
    fleet
        .iter()
        .filter(|i| {
            let value = i.tags.get(TAG);
            plan.early.iter().chain(&plan.reads).any(|read| match read {
                FullRead::ByState { values, states } => {
                    value.is_some_and(|v| values.contains(v)) && states.contains(&i.state.name())
                }
                FullRead::ById(ids) => {
                    ids.contains(&i.instance_id) && live.contains(&i.state.name())
                }
                FullRead::Spot => value.is_some() && i.spot && live.contains(&i.state.name()),
            })
        })
        .cloned()
        .collect()
}

fn sorted(mut plan: TickPlan) -> TickPlan {
    plan.actions
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    plan.marks.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    plan.skipped
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    plan.failed
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    plan.warnings
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    plan.expired_overrides.sort();
    plan.wake_ends
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    plan
}

fn read_plan_of(fleet: &[Instance], now: Timestamp) -> ReadPlan {
    let schedules = schedules();
    let early = early_reads(&schedules, now, EARLY_QUERIES_PER_STATE);
    plan_reads(&views_of(fleet), &schedules, TAG, now, early)
}

fn any_state() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("running"),
        4 => Just("stopped"),
        1 => Just("pending"),
        1 => Just("stopping"),
        1 => Just("shutting-down"),
        1 => Just("terminated"),
    ]
}

fn any_schedule_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("office".to_string()),
        3 => Just("office-enforced".to_string()),
        2 => Just("night".to_string()),
        2 => Just("open".to_string()),
        1 => Just("sleepy".to_string()),
        1 => Just("broken".to_string()),
        1 => Just("nope".to_string()),
        1 => Just(" office".to_string()),
        1 => Just("off*".to_string()),
    ]
}

/// A marker: of the instance's schedule or another, at a transition-like
/// instant around now, flagged or not, old format, or garbage.
fn any_marker() -> impl Strategy<Value = Option<(usize, i64, bool, u8)>> {
    proptest::option::weighted(0.8, (0usize..6, -96i64 * 60..=60, any::<bool>(), 0u8..10))
}

fn any_override() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(
        0.15,
        prop_oneof![
            Just("running".to_string()),
            Just("stopped".to_string()),
            Just("skip".to_string()),
            Just("stopped until 2026-11-24T12:00:00+01:00".to_string()),
            Just("running until 2026-11-30T12:00:00Z".to_string()),
            Just("bogus".to_string()),
        ],
    )
}

prop_compose! {
    fn any_instance(n: usize)(
        state in any_state(),
        value in proptest::option::weighted(0.95, any_schedule_value()),
        marker in any_marker(),
        overridden in any_override(),
        woken in proptest::option::weighted(0.05, -120i64..120),
        asg in proptest::bool::weighted(0.05),
        spot in proptest::bool::weighted(0.05),
        hibernation in any::<bool>(),
        failed_boot in proptest::bool::weighted(0.2),
        launched_min_ago in 0i64..6000,
    ) -> (usize, &'static str, Option<String>, Option<(usize, i64, bool, u8)>, Option<String>, Option<i64>, bool, bool, bool, bool, i64) {
        (n, state, value, marker, overridden, woken, asg, spot, hibernation, failed_boot, launched_min_ago)
    }
}

type Raw = (
    usize,
    &'static str,
    Option<String>,
    Option<(usize, i64, bool, u8)>,
    Option<String>,
    Option<i64>,
    bool,
    bool,
    bool,
    bool,
    i64,
);

/// Builds an instance; markers are placed at the schedule's own last
/// transition (shifted by `shift` minutes) so that "current" markers are common.
fn build(raw: Raw, schedules: &Schedules, now: Timestamp) -> Instance {
    let (n, state, value, marker, overridden, woken, asg, spot, hibernation, failed_boot, ago) =
        raw;
    let names = [
        "office",
        "office-enforced",
        "night",
        "open",
        "sleepy",
        "broken",
    ];
    let mut tags = BTreeMap::new();
    tags.insert("Name".to_string(), format!("web-{n}"));
    if let Some(value) = &value {
        tags.insert(TAG.to_string(), value.clone());
    }
    if let Some((which, shift, flagged, form)) = marker {
        // Mostly the instance's own schedule.
        let name = match (&value, form) {
            (Some(v), 0..=6) => v.trim().to_string(),
            _ => names[which].to_string(),
        };
        let last = match schedules.get(&name) {
            Some(Ok(s)) => s.last_transition(now).map(|t| t.at),
            _ => None,
        }
        .unwrap_or(now);
        let at = match form {
            // Written by a tick evaluated later than this one.
            7 => now + SignedDuration::from_mins(shift.abs().max(1)),
            _ if shift > 0 => last + SignedDuration::from_mins(shift),
            _ => last,
        };
        let flag = if flagged { "/no-hold" } else { "" };
        let text = match form {
            8 => at.to_string(),
            9 => "garbage".to_string(),
            _ => format!("{at} {}{flag} {name}", digest(schedules, &name)),
        };
        tags.insert(APPLIED_TAG.to_string(), text);
    }
    if let Some(o) = overridden {
        tags.insert("ScheduleOverride".to_string(), o);
    }
    if let Some(mins) = woken {
        tags.insert(
            "fleetops:woken".to_string(),
            (now + SignedDuration::from_mins(mins)).to_string(),
        );
    }
    if asg {
        tags.insert("aws:autoscaling:groupName".to_string(), "web".to_string());
    }
    Instance {
        instance_id: format!("i-{n:017x}"),
        region: "eu-west-1".into(),
        state: InstanceState::from_name(state),
        tags,
        spot,
        hibernation_configured: hibernation,
        state_reason: (state == "stopped").then(|| StateReason {
            code: if failed_boot {
                "Server.InternalError".into()
            } else {
                "Client.UserInitiatedShutdown".into()
            },
            message: "reason".into(),
        }),
        launch_time: Some(now - SignedDuration::from_mins(ago)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// Planning over what the two reads return gives the plan over the whole fleet.
    #[test]
    fn the_instances_left_unread_are_ones_the_tick_decides_nothing_for(
        raws in proptest::collection::vec(any_instance(0), 1..40),
        minutes in 0i64..(14 * 24 * 60),
    ) {
        let schedules = schedules();
        let now = ts(BASE) + SignedDuration::from_mins(minutes);
        let fleet: Vec<Instance> = raws
            .into_iter()
            .enumerate()
            .map(|(n, mut raw)| { raw.0 = n; build(raw, &schedules, now) })
            .collect();
        let plan = read_plan_of(&fleet, now);
        for read in plan.early.iter().chain(&plan.reads) {
            let values = match read {
                FullRead::ByState { values, states } => values.len() + states.len(),
                FullRead::ById(ids) => ids.len() + 5,
                FullRead::Spot => 7,
            };
            prop_assert!(values <= MAX_FILTER_VALUES);
        }
        let read = returned(&fleet, &plan);
        // The reference: every live instance carrying the tag, read in full.
        let live = ["pending", "running", "stopping", "stopped", "shutting-down"];
        let tagged: Vec<Instance> = fleet
            .iter()
            .filter(|i| i.tags.contains_key(TAG) && live.contains(&i.state.name()))
            .cloned()
            .collect();
        let all = sorted(plan_tick(&tagged, &schedules, TAG, now));
        let partial = sorted(plan_tick(&read, &schedules, TAG, now));
        prop_assert_eq!(all, partial);
    }
}

/// A fleet of `n` instances of `office` at `now`, all where the schedule
/// wants them and marked for its latest transition.
fn settled_fleet(n: usize, now: Timestamp) -> Vec<Instance> {
    let schedules = schedules();
    let Some(Ok(office)) = schedules.get("office") else {
        panic!("office");
    };
    let last = office.last_transition(now).expect("a transition");
    let state = if office.wants_running(now) {
        "running"
    } else {
        "stopped"
    };
    (0..n)
        .map(|i| Instance {
            instance_id: format!("i-{i:017x}"),
            region: "eu-west-1".into(),
            state: InstanceState::from_name(state),
            tags: [
                (TAG.to_string(), "office".to_string()),
                (
                    APPLIED_TAG.to_string(),
                    format!("{} {} office", last.at, office.digest),
                ),
            ]
            .into(),
            spot: false,
            hibernation_configured: false,
            state_reason: None,
            launch_time: None,
        })
        .collect()
}

#[test]
fn given_a_settled_fleet_then_the_full_reads_return_nothing() {
    let now = ts("2026-11-26T20:00:00Z");
    let fleet = settled_fleet(5000, now);
    let plan = read_plan_of(&fleet, now);
    assert_eq!(plan.tagged, 5000);
    assert_eq!(plan.by_id, 0);
    // Nothing after the tags: the schedule's instances not stopped and the
    // spot instances were asked for with them (`early`).
    assert_eq!(plan.reads, []);
    assert!(plan.early.contains(&FullRead::Spot));
    assert!(plan.early.iter().any(
        |r| matches!(r, FullRead::ByState { values, states } if values.contains(&"office".to_string()) && !states.contains(&"stopped"))
    ));
    assert!(returned(&fleet, &plan).is_empty());
}

#[test]
fn given_one_instance_re_tagged_or_started_by_hand_then_only_it_is_read() {
    let now = ts("2026-11-26T20:00:00Z");
    let mut fleet = settled_fleet(2000, now);
    fleet[7].tags.insert(TAG.into(), "office-enforced".into());
    fleet[9].state = InstanceState::Running;
    let plan = read_plan_of(&fleet, now);
    let read: Vec<String> = returned(&fleet, &plan)
        .into_iter()
        .map(|i| i.instance_id)
        .collect();
    assert_eq!(
        read,
        [fleet[7].instance_id.clone(), fleet[9].instance_id.clone()]
    );
    // Enforced: it is read because it is not in the state its new schedule wants.
    assert_eq!(plan.by_id, 0);
}

#[test]
fn given_a_schedule_edit_then_its_unmarked_instances_are_read_whole_not_by_id() {
    let now = ts("2026-11-26T20:00:00Z");
    let mut fleet = settled_fleet(3000, now);
    for instance in &mut fleet {
        instance.tags.insert(
            APPLIED_TAG.into(),
            "2026-11-26T18:00:00Z 0123456789ab office".into(),
        );
    }
    let plan = read_plan_of(&fleet, now);
    assert_eq!(plan.by_id, 0);
    // Whole: the rest of it (stopped, as it wants) after the tags; the
    // others came with them.
    assert!(
        plan.reads.iter().any(|r| matches!(r, FullRead::ByState { values, states } if values == &["office"] && states == &["stopped"])),
        "{:?}",
        plan.reads
    );
    assert_eq!(returned(&fleet, &plan).len(), 3000);
}

#[test]
fn given_many_schedules_then_no_query_carries_more_filter_values_than_ec2_accepts() {
    let names: Vec<String> = (0..450).map(|i| format!("s{i}")).collect();
    let document = serde_json::json!({
        "schedules": names.iter().map(|n| (n.clone(), serde_json::json!({"periods": [{"begin": "09:00", "end": "18:00"}], "enforced": true}))).collect::<serde_json::Map<_, _>>()
    });
    let schedules = parse_schedules(&document.to_string()).expect("schedules");
    let mut views = TagViews::new();
    for (i, name) in names.iter().enumerate() {
        views.insert(
            format!("i-{i:017x}"),
            [(TAG.to_string(), name.clone())].into(),
        );
    }
    let now = ts("2026-11-26T20:00:00Z");
    let early = early_reads(&schedules, now, EARLY_QUERIES_PER_STATE);
    let plan = plan_reads(&views, &schedules, TAG, now, early);
    let by_state: Vec<&Vec<String>> = plan
        .early
        .iter()
        .filter_map(|r| match r {
            FullRead::ByState { values, .. } => Some(values),
            _ => None,
        })
        .collect();
    assert_eq!(by_state.iter().map(|v| v.len()).sum::<usize>(), 450);
    assert!(by_state.iter().all(|v| v.len() + 4 <= MAX_FILTER_VALUES));
    assert_eq!(by_state.len(), EARLY_QUERIES_PER_STATE);
    // Told the fleet is small, fewer queries; never over the limit.
    let few = early_reads(&schedules, now, early_queries_per_state(Some(3000)));
    assert_eq!(few.len(), 3 + 1, "{few:?}"); // and the spot query
    assert!(few.iter().all(|r| match r {
        FullRead::ByState { values, .. } => values.len() + 4 <= MAX_FILTER_VALUES,
        read => read == &FullRead::Spot,
    }));
}

#[test]
fn early_queries_follow_the_last_count_of_the_fleet() {
    assert_eq!(early_queries_per_state(None), EARLY_QUERIES_PER_STATE);
    assert_eq!(early_queries_per_state(Some(0)), 1);
    assert_eq!(early_queries_per_state(Some(2000)), 1);
    assert_eq!(early_queries_per_state(Some(2001)), 2);
    assert_eq!(
        early_queries_per_state(Some(100_000)),
        EARLY_QUERIES_PER_STATE
    );
}

#[test]
fn given_instances_whose_tags_call_for_a_look_then_they_are_read_by_id() {
    let now = ts("2026-11-26T20:00:00Z");
    let mut fleet = settled_fleet(10, now);
    fleet[0]
        .tags
        .insert("ScheduleOverride".into(), "running".into());
    fleet[1]
        .tags
        .insert("aws:autoscaling:groupName".into(), "web".into());
    fleet[2].tags.insert(TAG.into(), "typo".into());
    fleet[3].tags.insert(TAG.into(), "office ".into());
    fleet[4].tags.insert(TAG.into(), "broken".into());
    fleet[5]
        .tags
        .insert("fleetops:woken".into(), "2026-11-26T21:00:00Z".into());
    let plan = read_plan_of(&fleet, now);
    let ids: Vec<&String> = plan
        .reads
        .iter()
        .filter_map(|r| match r {
            FullRead::ById(ids) => Some(ids),
            _ => None,
        })
        .flatten()
        .collect();
    let expected: Vec<String> = fleet[..6].iter().map(|i| i.instance_id.clone()).collect();
    assert_eq!(ids, expected.iter().collect::<Vec<_>>());
}
