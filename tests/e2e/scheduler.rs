//! instance-scheduler end to end: seed a fleet in the emulator, invoke the
//! binary with scheduled events at chosen times, read the states back from EC2.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    HibernationOptionsRequest, InstanceMarketOptionsRequest, MarketType, ResourceType, Tag,
    TagSpecification,
};
use fleetops_e2e::{event, Emulator, Invocation, LambdaFunction};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";

const SCHEDULES: &str = r#"{"schedules": {
  "office": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]},
  "office-enforced": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}], "enforced": true},
  "seoul-office": {"timezone": "Asia/Seoul", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}], "enforced": true},
  "sleepy": {"periods": [{"begin": "09:00", "end": "18:00"}], "enforced": true, "hibernate": true},
  "broken": {"timezone": "KST", "periods": [{"begin": "09:00", "end": "18:00"}]}
}}"#;

pub(crate) struct Fleet {
    pub(crate) emulator: Emulator,
    pub(crate) ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
}

impl Fleet {
    pub(crate) async fn new() -> Self {
        let emulator = Emulator::start();
        let config = emulator.sdk_config(REGION).await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            emulator,
        }
    }

    pub(crate) async fn put_schedules(&self, document: &str) {
        self.ssm
            .put_parameter()
            .name("/fleetops/schedules")
            .value(document)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put schedules");
    }

    pub(crate) async fn launch_in(
        &self,
        ec2: &aws_sdk_ec2::Client,
        tags: &[(&str, &str)],
        tweak: impl FnOnce(
            aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder,
        )
            -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder,
    ) -> String {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        let request = ec2
            .run_instances()
            .image_id("ami-760aaa0f")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec.build());
        let output = tweak(request).send().await.expect("run instance");
        output.instances()[0]
            .instance_id()
            .expect("instance id")
            .to_string()
    }

    pub(crate) async fn launch(&self, tags: &[(&str, &str)]) -> String {
        self.launch_in(&self.ec2, tags, |r| r).await
    }

    /// `count` instances tagged `Schedule=<schedule>` in one call; their ids.
    pub(crate) async fn launch_many(&self, schedule: &str, count: i32) -> Vec<String> {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("Schedule").value(schedule).build())
            .build();
        let output = self
            .ec2
            .run_instances()
            .image_id("ami-760aaa0f")
            .min_count(count)
            .max_count(count)
            .tag_specifications(spec)
            .send()
            .await
            .expect("run instances");
        output
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(String::from))
            .collect()
    }

    pub(crate) async fn states(&self) -> BTreeMap<String, String> {
        states_in(&self.ec2).await
    }

    pub(crate) fn start_function(&self, extra_env: &[(&str, &str)]) -> LambdaFunction {
        self.emulator
            .start_function("instance-scheduler", REGION, extra_env)
    }

    pub(crate) fn set_state(&self, id: &str, state: &str) {
        self.emulator.control(
            "POST",
            "/_fleetops/ec2/instance-state",
            Some(&json!({"instance_id": id, "state": state})),
        );
    }
}

async fn states_in(ec2: &aws_sdk_ec2::Client) -> BTreeMap<String, String> {
    let output = ec2.describe_instances().send().await.expect("describe");
    output
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

pub(crate) fn tick_at(time: &str) -> Value {
    let mut e = event("instance-scheduler-tick.json");
    e["time"] = json!(time);
    e
}

pub(crate) fn ids(output: &Value, key: &str) -> Vec<String> {
    output[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {output}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

pub(crate) fn reasons(output: &Value, key: &str, field: &str) -> BTreeMap<String, String> {
    output[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {output}"))
        .iter()
        .map(|v| {
            (
                v["instance_id"].as_str().unwrap_or_default().to_string(),
                v[field].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(crate) fn tags_of(
    output: &aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput,
    id: &str,
) -> BTreeMap<String, String> {
    output
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.instance_id() == Some(id))
        .flat_map(|i| i.tags())
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_mixed_fleet_when_the_evening_tick_runs_then_only_scheduled_instances_stop() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let office = fleet
        .launch(&[("Schedule", "office"), ("Name", "app-1")])
        .await;
    let untagged = fleet.launch(&[("Name", "db-1")]).await;
    let asg = fleet
        .launch(&[("Schedule", "office"), ("aws:autoscaling:groupName", "web")])
        .await;
    let spot = fleet
        .launch_in(&fleet.ec2, &[("Schedule", "office")], |r| {
            r.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .build(),
            )
        })
        .await;
    let pending = fleet.launch(&[("Schedule", "office")]).await;
    fleet.set_state(&pending, "pending");
    let unknown = fleet.launch(&[("Schedule", "no-such-schedule")]).await;
    let broken = fleet.launch(&[("Schedule", "broken")]).await;
    let pinned = fleet
        .launch(&[("Schedule", "office"), ("ScheduleOverride", "running")])
        .await;
    let left_alone = fleet
        .launch(&[("Schedule", "office"), ("ScheduleOverride", "skip")])
        .await;

    let function = fleet.start_function(&[]);
    // Thursday 18:05 UTC: five minutes after the office schedule's stop.
    let invocation = function.invoke(&tick_at("2026-11-26T18:05:00Z"));
    let output = invocation.output();

    assert_eq!(output["time"], json!("2026-11-26T18:05:00Z"));
    assert_eq!(output["dry_run"], json!(false));
    assert_eq!(ids(output, "stopped"), vec![office.clone()]);
    assert!(ids(output, "started").is_empty());
    assert!(
        output["failed"].as_array().is_some_and(Vec::is_empty),
        "{output}"
    );
    let skipped = reasons(output, "skipped", "reason");
    assert!(skipped[&asg].contains("Auto Scaling"), "{skipped:?}");
    assert!(skipped[&spot].contains("spot"), "{skipped:?}");
    assert!(skipped[&pending].contains("pending"), "{skipped:?}");
    assert!(
        skipped[&unknown].contains("unknown schedule"),
        "{skipped:?}"
    );
    assert!(skipped[&broken].contains("timezone"), "{skipped:?}");
    assert!(skipped[&left_alone].contains("skip"), "{skipped:?}");
    assert!(!skipped.contains_key(&untagged) && !skipped.contains_key(&pinned));

    let states = fleet.states().await;
    assert_eq!(states[&office], "stopped");
    for id in [
        &untagged,
        &asg,
        &spot,
        &unknown,
        &broken,
        &pinned,
        &left_alone,
    ] {
        assert_eq!(states[id], "running", "{id}");
    }
    assert_eq!(states[&pending], "pending");
    // The applied transition is recorded on the instance.
    let described = fleet
        .ec2
        .describe_instances()
        .instance_ids(&office)
        .send()
        .await
        .expect("describe");
    // `<instant> <digest> <schedule>`: which transition of which schedule.
    let marker = tags_of(&described, &office)["fleetops:schedule-applied"].clone();
    assert!(
        marker.starts_with("2026-11-26T18:00:00Z ") && marker.ends_with(" office"),
        "{marker}"
    );
    // One action line per instance acted on.
    assert!(
        function
            .logs()
            .lines()
            .any(|l| l.contains(&office) && l.contains("\"action\":\"stop\"")),
        "{}",
        function.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_transition_only_mode_when_an_instance_is_started_by_hand_then_it_runs_until_the_next_stop(
) {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let office = fleet.launch(&[("Schedule", "office")]).await;
    let enforced = fleet.launch(&[("Schedule", "office-enforced")]).await;
    let function = fleet.start_function(&[]);

    // A late tick (the 18:00 one was missed) still stops both.
    let output = function
        .invoke(&tick_at("2026-11-26T18:20:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&output, "stopped").len(), 2, "{output}");

    // Somebody starts both by hand in the evening.
    fleet
        .ec2
        .start_instances()
        .instance_ids(&office)
        .instance_ids(&enforced)
        .send()
        .await
        .expect("start");
    let output = function
        .invoke(&tick_at("2026-11-26T20:00:00Z"))
        .output()
        .clone();
    assert_eq!(
        ids(&output, "stopped"),
        vec![enforced.clone()],
        "only the enforced schedule converges: {output}"
    );
    assert_eq!(fleet.states().await[&office], "running");

    // Friday morning both start, and Friday evening the hand-started one stops too.
    let output = function
        .invoke(&tick_at("2026-11-27T09:00:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&output, "started"), vec![enforced.clone()], "{output}");
    let output = function
        .invoke(&tick_at("2026-11-27T18:00:00Z"))
        .output()
        .clone();
    let mut stopped = ids(&output, "stopped");
    stopped.sort();
    let mut both = vec![office.clone(), enforced.clone()];
    both.sort();
    assert_eq!(stopped, both);
    let states = fleet.states().await;
    assert_eq!(
        (states[&office].as_str(), states[&enforced].as_str()),
        ("stopped", "stopped")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_seoul_office_hours_when_ticks_cross_local_nine_then_the_instance_starts() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let id = fleet.launch(&[("Schedule", "seoul-office")]).await;
    let function = fleet.start_function(&[]);
    // Thursday 20:00 KST: stopped.
    let output = function
        .invoke(&tick_at("2026-11-26T11:00:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&output, "stopped"), vec![id.clone()]);
    // Friday 08:55 KST: still stopped; 09:00 KST = 00:00Z: started.
    assert!(ids(
        function.invoke(&tick_at("2026-11-26T23:55:00Z")).output(),
        "started"
    )
    .is_empty());
    assert_eq!(
        ids(
            function.invoke(&tick_at("2026-11-27T00:00:00Z")).output(),
            "started"
        ),
        vec![id.clone()]
    );
    assert_eq!(fleet.states().await[&id], "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_dry_run_when_the_tick_runs_then_it_reports_and_changes_nothing() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    let function = fleet.start_function(&[]);
    let output = function
        .invoke(&event("instance-scheduler-dry-run.json"))
        .output()
        .clone();
    assert_eq!(output["dry_run"], json!(true));
    assert_eq!(ids(&output, "stopped"), vec![id.clone()]);
    assert_eq!(fleet.states().await[&id], "running");

    let env_dry = fleet.start_function(&[("DRY_RUN", "true")]);
    let output = env_dry
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert_eq!(
        (output["dry_run"].clone(), ids(&output, "stopped")),
        (json!(true), vec![id.clone()])
    );
    assert_eq!(fleet.states().await[&id], "running");
    let calls = fleet.emulator.calls();
    assert!(
        !calls.contains_key("ec2:StopInstances") && !calls.contains_key("ec2:CreateTags"),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_missing_or_broken_schedules_parameter_when_the_tick_runs_then_it_fails_and_changes_nothing(
) {
    let fleet = Fleet::new().await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    let function = fleet.start_function(&[]);
    let failed: Invocation = function.invoke(&tick_at("2026-11-26T18:05:00Z"));
    assert!(
        failed.error().contains("/fleetops/schedules"),
        "{}",
        failed.error()
    );

    fleet
        .put_schedules(r#"{"schedules": {"office": {"periods": [{}]},}}"#)
        .await;
    let failed = function.invoke(&tick_at("2026-11-26T18:05:00Z"));
    assert!(
        failed.error().contains("not valid JSON"),
        "{}",
        failed.error()
    );
    let calls = fleet.emulator.calls();
    assert!(
        !calls.contains_key("ec2:DescribeInstances") && !calls.contains_key("ec2:StopInstances"),
        "{calls:?}"
    );
    assert_eq!(fleet.states().await[&id], "running");

    let bad_event = function.invoke(&json!({"time": "tomorrow"}));
    assert!(bad_event.error().contains("time"), "{}", bad_event.error());
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_start_that_does_not_hold_when_the_next_tick_runs_then_it_is_failed_with_the_reason(
) {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let id = fleet.launch(&[("Schedule", "office-enforced")]).await;
    let healthy = fleet.launch(&[("Schedule", "office-enforced")]).await;
    fleet
        .ec2
        .stop_instances()
        .instance_ids(&id)
        .instance_ids(&healthy)
        .send()
        .await
        .expect("stop");
    fleet.emulator.control(
        "POST",
        "/_fleetops/ec2/start-fails",
        Some(&json!({"instance_id": id, "code": "Client.InternalError", "message": "Client.InternalError: Client error on launch"})),
    );
    let function = fleet.start_function(&[]);
    let output = function
        .invoke(&tick_at("2026-11-27T09:00:00Z"))
        .output()
        .clone();
    let mut started = ids(&output, "started");
    started.sort();
    let mut both = vec![id.clone(), healthy.clone()];
    both.sort();
    assert_eq!(started, both);

    let output = function
        .invoke(&tick_at("2026-11-27T09:05:00Z"))
        .output()
        .clone();
    assert!(ids(&output, "started").is_empty(), "not retried: {output}");
    let failed = reasons(&output, "failed", "error");
    assert!(failed[&id].contains("Client.InternalError"), "{failed:?}");
    let states = fleet.states().await;
    assert_eq!(
        (states[&id].as_str(), states[&healthy].as_str()),
        ("stopped", "running")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_hibernating_schedule_then_configured_instances_hibernate_and_others_stop() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let configured = fleet
        .launch_in(&fleet.ec2, &[("Schedule", "sleepy")], |r| {
            r.hibernation_options(
                HibernationOptionsRequest::builder()
                    .configured(true)
                    .build(),
            )
        })
        .await;
    let plain = fleet.launch(&[("Schedule", "sleepy")]).await;
    let function = fleet.start_function(&[]);
    let output = function
        .invoke(&tick_at("2026-11-26T20:00:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&output, "stopped").len(), 2, "{output}");
    let log = fleet
        .emulator
        .control("GET", "/_fleetops/ec2/stop-log", None);
    let hibernated: BTreeMap<String, bool> = log["stops"]
        .as_array()
        .expect("stops")
        .iter()
        .map(|s| {
            (
                s["instance_id"].as_str().unwrap_or_default().to_string(),
                s["hibernate"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!((hibernated[&configured], hibernated[&plain]), (true, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_several_regions_when_the_tick_runs_then_each_region_is_handled() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let east = fleet.launch(&[("Schedule", "office")]).await;
    let west_config = fleet.emulator.sdk_config("eu-west-1").await;
    let west_ec2 = aws_sdk_ec2::Client::new(&west_config);
    let west = fleet
        .launch_in(&west_ec2, &[("Schedule", "office")], |r| r)
        .await;
    let function = fleet.start_function(&[("REGIONS", "us-east-1,eu-west-1")]);
    let output = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    let mut stopped = ids(&output, "stopped");
    stopped.sort();
    let mut both = vec![east.clone(), west.clone()];
    both.sort();
    assert_eq!(stopped, both);
    assert_eq!(states_in(&west_ec2).await[&west], "stopped");
    assert_eq!(fleet.states().await[&east], "stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_big_tagged_fleet_then_calls_are_pages_plus_batches() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    fleet.launch_many("office", 250).await;
    fleet.launch(&[("Name", "untagged")]).await;
    let function = fleet.start_function(&[]);
    fleet.emulator.reset_calls();
    let output = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&output, "stopped").len(), 250);
    let calls = fleet.emulator.calls();
    // The deciding tags: the schedule tag and the marker each in two calls
    // (the `i-*0` probe, then the other fifteen id patterns in one call),
    // the rare keys in one. In full, with the tags: per valid schedule (four,
    // all wanting stopped; a fresh process knows no fleet size, so up to 8
    // queries per wanted state) its instances not stopped; after them, the
    // rest of `office` (all unmarked) in one page of up to 1000, and the spot
    // instances. 1000 per stop call, one CreateTags for the shared marker.
    assert_eq!(calls.get("ec2:DescribeTags"), Some(&5), "{calls:?}");
    assert_eq!(calls.get("ec2:DescribeInstances"), Some(&6), "{calls:?}");
    assert_eq!(calls.get("ec2:StopInstances"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("ec2:CreateTags"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("ssm:GetParameter"), Some(&1), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_fifth_of_ec2_calls_throttled_when_a_500_instance_fleet_ticks_then_every_instance_ends_in_its_state(
) {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(r#"{"schedules": {"office": {"periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]}, "always": {"periods": [{}]}}}"#)
        .await;
    fleet.launch_many("office", 250).await;
    let always = fleet.launch_many("always", 250).await;
    fleet.emulator.control(
        "POST",
        "/_fleetops/faults",
        Some(&json!({"rules": [{"service": "ec2", "operation": "*", "error": "RequestLimitExceeded", "rate": 0.2}], "seed": 7})),
    );
    let function = fleet.start_function(&[]);
    let output = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    fleet
        .emulator
        .control("POST", "/_fleetops/faults", Some(&json!({"rules": []})));

    let failed = reasons(&output, "failed", "error");
    // With 8 SDK attempts per call, a failure here would be a bug.
    assert!(failed.is_empty(), "nothing may fail: {output}");
    let states = fleet.states().await;
    for (id, state) in &states {
        if always.contains(id) {
            let logs = function.logs();
            let about: Vec<&str> = logs.lines().filter(|l| l.contains(id.as_str())).collect();
            assert_eq!(state, "running", "{id} must never be stopped: {about:?}");
        } else {
            assert!(
                state == "stopped" || failed.contains_key(id),
                "{id} is {state} and not reported: {output}"
            );
        }
    }
    let faults = fleet.emulator.control("GET", "/_fleetops/calls", None);
    assert!(
        faults["faults"].as_object().is_some_and(|f| !f.is_empty()),
        "faults fired: {faults}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_two_invocations_at_the_same_time_then_they_never_fight() {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(r#"{"schedules": {"office": {"periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]}, "always": {"enforced": true, "periods": [{}]}}}"#)
        .await;
    let mut office = Vec::new();
    let mut always = Vec::new();
    for i in 0..40 {
        if i % 2 == 0 {
            office.push(fleet.launch(&[("Schedule", "office")]).await);
        } else {
            always.push(fleet.launch(&[("Schedule", "always")]).await);
        }
    }
    // One always-on (enforced) instance was stopped by hand: both invocations
    // want it started.
    fleet.set_state(&always[0], "stopped");
    // EventBridge delivered the same tick twice, or a retry overlaps the first try.
    let first = fleet.start_function(&[]);
    let second = fleet.start_function(&[]);
    let tick = tick_at("2026-11-26T18:05:00Z");
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| first.invoke(&tick).output().clone());
        let b = scope.spawn(|| second.invoke(&tick).output().clone());
        (a.join().expect("first"), b.join().expect("second"))
    });
    let states = fleet.states().await;
    for id in &office {
        assert_eq!(states[id], "stopped", "{id}: {a} {b}");
    }
    for id in &always {
        assert_eq!(states[id], "running", "{id}: {a} {b}");
    }
    for output in [&a, &b] {
        assert!(ids(output, "failed").is_empty(), "{output}");
        let stopped = ids(output, "stopped");
        assert!(
            stopped.iter().all(|id| office.contains(id)),
            "only office instances are stopped: {output}"
        );
        let started = ids(output, "started");
        assert!(
            started.iter().all(|id| always.contains(id)),
            "only always-on instances are started: {output}"
        );
    }
    // Neither undid the other: nothing it stopped was started, and the other way round.
    let stop_log = fleet
        .emulator
        .control("GET", "/_fleetops/ec2/stop-log", None);
    let logged = stop_log.to_string();
    for id in &always[1..] {
        assert!(
            !logged.contains(id.as_str()),
            "{id} was stopped: {stop_log}"
        );
    }
}
