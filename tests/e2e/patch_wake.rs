//! Patching a fleet that sleeps at night, end to end: a scheduled Install with
//! `wake_stopped` starts the group's stopped instances, one command patches
//! them all, the scheduler stops nothing while they patch, and the command's
//! status event stops them again unless their schedule wants them running.

use fleetops_e2e::LambdaFunction;
use serde_json::{json, Value};

use crate::patch::{Fleet, REGION, STATE_TABLE};

const WOKEN_TAG: &str = "fleetops:woken";

/// `off` wants its instances stopped now (its one period is on another
/// weekday); `early` wants them running (a start at 00:00 and no stop).
fn schedules_now() -> String {
    // 1970-01-01 was a Thursday (3 with Monday 0).
    let today = (jiff::Timestamp::now().as_second().div_euclid(86_400) + 3).rem_euclid(7);
    let other = usize::try_from((today + 3) % 7).expect("weekday");
    let name = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][other];
    format!(
        r#"{{"schedules": {{
  "off": {{"periods": [{{"weekdays": "{name}", "begin": "09:00", "end": "10:00"}}]}},
  "early": {{"periods": [{{"begin": "00:00"}}]}}
}}}}"#
    )
}

struct Night {
    fleet: Fleet,
}

impl Night {
    async fn new() -> Self {
        let fleet = Fleet::new().await;
        let ssm = aws_sdk_ssm::Client::new(&fleet.emulator.sdk_config(REGION).await);
        ssm.put_parameter()
            .name("/fleetops/schedules")
            .value(schedules_now())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("schedules");
        Self { fleet }
    }

    /// An instance of patch group `web` on `schedule`, managed by SSM, whose
    /// patch commands take 10 emulated minutes; stopped unless `running`.
    async fn instance(&self, schedule: &str, running: bool) -> String {
        let id = fleetops_e2e::run_tagged(
            &self.fleet.ec2,
            &[("Patch Group", "web"), ("Schedule", schedule)],
        )
        .await;
        self.fleet.agent(&id, json!({"online_after_seconds": 0}));
        self.fleet.emulator.control(
            "POST",
            "/_fleetops/ssm/command-outcome",
            Some(&json!({"instance_id": id, "after_seconds": 600, "document_name": "AWS-RunPatchBaseline"})),
        );
        if !running {
            self.fleet.emulator.control(
                "POST",
                "/_fleetops/ec2/instance-state",
                Some(&json!({"instance_id": id, "state": "stopped"})),
            );
        }
        id
    }

    fn dispatcher(&self) -> LambdaFunction {
        self.fleet.function(&[])
    }

    fn scheduler(&self) -> LambdaFunction {
        self.fleet.emulator.start_function(
            "instance-scheduler",
            REGION,
            &[("STATE_TABLE", STATE_TABLE)],
        )
    }

    async fn state(&self, id: &str) -> (String, Option<String>) {
        let out = self
            .fleet
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe");
        let instance = &out.reservations()[0].instances()[0];
        let state = instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        let woken = instance
            .tags()
            .iter()
            .find(|t| t.key() == Some(WOKEN_TAG))
            .and_then(|t| t.value().map(str::to_string));
        (state, woken)
    }

    /// The command-level status event of `command_id`, once its invocations
    /// have ended on the emulated clock.
    fn command_finished(&self, command_id: &str) -> Value {
        // Rate controls run the invocations one after another: look again
        // after each one's 10 minutes.
        for _ in 0..8 {
            self.fleet.emulator.control(
                "POST",
                "/_fleetops/clock/advance",
                Some(&json!({"seconds": 601})),
            );
            let found = self.fleet.events("aws.ssm").into_iter().find(|e| {
                e["detail"]["command-id"] == json!(command_id)
                    && e["detail-type"] == json!("EC2 Command Status-change Notification")
            });
            if let Some(event) = found {
                return event;
            }
        }
        panic!("no command-level event for {command_id}")
    }
}

fn now_input() -> Value {
    let time = jiff::Timestamp::now().to_string();
    json!({"patch_group": "web", "operation": "Install", "time": time,
           "wake_stopped": true, "window_minutes": 60})
}

fn strings(output: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = output[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn skip_reason(output: &Value, id: &str) -> String {
    output["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["instance_id"] == json!(id))
        .and_then(|s| s["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_sleeping_half_of_a_group_then_one_run_wakes_patches_and_puts_it_back() {
    let night = Night::new().await;
    let running = [
        night.instance("off", true).await,
        night.instance("off", true).await,
    ];
    let asleep = night.instance("off", false).await;
    let early = night.instance("early", false).await;
    let dispatcher = night.dispatcher();
    let input = now_input();

    let run = dispatcher.invoke(&input).output().clone();
    let mut expected = vec![asleep.clone(), early.clone()];
    expected.sort();
    assert_eq!(strings(&run, "woken"), expected, "{run}");
    assert_eq!(run["commands"].as_array().map(Vec::len), Some(1), "{run}");
    let command_id = run["commands"][0]["command_id"]
        .as_str()
        .expect("command id")
        .to_string();
    for id in [&asleep, &early] {
        let (state, tag) = night.state(id).await;
        assert_eq!(state, "running", "{id}");
        assert!(tag.is_some(), "{id} carries {WOKEN_TAG}");
    }
    // One command, all four patched by it once.
    let commands = night.fleet.emulator.control(
        "GET",
        "/_fleetops/ssm/commands?document_name=AWS-RunPatchBaseline",
        None,
    );
    let commands = commands["commands"].as_array().cloned().unwrap_or_default();
    assert_eq!(commands.len(), 1, "{commands:?}");

    // A duplicate delivery wakes nobody twice and sends nothing.
    let duplicate = dispatcher.invoke(&input).output().clone();
    assert!(strings(&duplicate, "woken").is_empty(), "{duplicate}");
    assert!(
        duplicate["commands"].as_array().is_none_or(Vec::is_empty),
        "{duplicate}"
    );

    // A scheduler tick while they patch: `off` wants all of them stopped,
    // but nothing is stopped mid-patch or inside the window.
    let scheduler = night.scheduler();
    let tick = scheduler
        .invoke(&json!({"time": jiff::Timestamp::now().to_string()}))
        .output()
        .clone();
    assert!(strings(&tick, "stopped").is_empty(), "{tick}");
    for id in running.iter().chain([&asleep]) {
        assert!(skip_reason(&tick, id).contains("patch"), "{id}: {tick}");
    }

    // The command ends: the woken instances go back, unless their schedule
    // wants them running by now.
    let finished = night.command_finished(&command_id);
    let back = dispatcher.invoke(&finished).output().clone();
    let returned: Vec<(String, bool)> = back["returned"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["instance_id"].as_str().unwrap_or_default().to_string(),
                r["stopped"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(returned.len(), 2, "{back}");
    assert!(returned.contains(&(asleep.clone(), true)), "{back}");
    assert!(returned.contains(&(early.clone(), false)), "{back}");
    assert_eq!(night.state(&asleep).await, ("stopped".into(), None));
    assert_eq!(night.state(&early).await, ("running".into(), None));
    // Its redelivery changes nothing.
    let again = dispatcher.invoke(&finished).output().clone();
    assert!(
        again["returned"].as_array().is_none_or(Vec::is_empty),
        "{again}"
    );
    // And the scheduler does not take the wake for a hand start: the one its
    // schedule wants running keeps running, the other stays stopped.
    let after = scheduler
        .invoke(&json!({"time": jiff::Timestamp::now().to_string()}))
        .output()
        .clone();
    assert!(!strings(&after, "started").contains(&asleep), "{after}");
    assert!(!strings(&after, "stopped").contains(&early), "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_instance_that_cannot_start_then_it_is_reported_and_the_run_goes_on() {
    let night = Night::new().await;
    let good = night.instance("off", false).await;
    let bad = night.instance("off", false).await;
    night.fleet.emulator.control(
        "POST",
        "/_fleetops/faults",
        Some(
            &json!({"rules": [{"service": "ec2", "operation": "StartInstances",
            "error": "InsufficientInstanceCapacity", "status": 400,
            "message": format!("Insufficient capacity to start {bad}"), "max_count": 1}]}),
        ),
    );
    let run = night.dispatcher().invoke(&now_input()).output().clone();
    assert_eq!(strings(&run, "woken"), vec![good.clone()], "{run}");
    let errors = run["errors"].to_string();
    assert!(
        errors.contains(&bad) && errors.contains("InsufficientInstanceCapacity"),
        "{run}"
    );
    assert_eq!(run["commands"].as_array().map(Vec::len), Some(1), "{run}");
    assert_eq!(night.state(&good).await.0, "running");
    assert_eq!(night.state(&bad).await.0, "stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_start_that_does_not_hold_then_it_is_reported_not_woken() {
    let night = Night::new().await;
    let good = night.instance("off", false).await;
    let kms = night.instance("off", false).await;
    night.fleet.emulator.control(
        "POST",
        "/_fleetops/ec2/start-fails",
        Some(&json!({"instance_id": kms, "code": "Client.InternalError",
            "message": "Client.InternalError: Client error on launch"})),
    );
    let dispatcher = night.dispatcher();
    let input = now_input();
    let run = dispatcher.invoke(&input).output().clone();
    assert_eq!(strings(&run, "woken"), vec![good.clone()], "{run}");
    let errors = run["errors"].to_string();
    assert!(
        errors.contains(&kms) && errors.contains("did not hold"),
        "{run}"
    );
    // Its redelivery does not try again: the wake is over for this run.
    let again = dispatcher.invoke(&input).output().clone();
    assert!(strings(&again, "woken").is_empty(), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_woken_instance_whose_status_event_was_lost_then_the_sweep_puts_it_back() {
    let night = Night::new().await;
    let asleep = night.instance("off", false).await;
    let dispatcher = night.dispatcher();
    let run = dispatcher.invoke(&now_input()).output().clone();
    assert_eq!(strings(&run, "woken"), vec![asleep.clone()], "{run}");
    let sweep = fleetops_e2e::event("patch-dispatcher-sweep.json");
    let during = dispatcher.invoke(&sweep).output().clone();
    assert!(
        skip_reason(&during, &asleep).contains("not over"),
        "{during}"
    );
    assert_eq!(night.state(&asleep).await.0, "running");
    night.fleet.emulator.control(
        "POST",
        "/_fleetops/clock/advance",
        Some(&json!({"seconds": 601})),
    );
    let after = dispatcher.invoke(&sweep).output().clone();
    assert_eq!(
        after["returned"][0]["instance_id"],
        json!(asleep),
        "{after}"
    );
    assert_eq!(night.state(&asleep).await, ("stopped".into(), None));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_agent_that_never_comes_online_then_the_window_ends_its_command_and_it_is_stopped_again(
) {
    let night = Night::new().await;
    // Registered with SSM, but its agent never answers once the instance runs
    // (and no command outcome is scripted for it: SSM decides).
    let offline = fleetops_e2e::run_tagged(
        &night.fleet.ec2,
        &[("Patch Group", "web"), ("Schedule", "off")],
    )
    .await;
    night
        .fleet
        .agent(&offline, json!({"ping_status": "ConnectionLost"}));
    night.fleet.emulator.control(
        "POST",
        "/_fleetops/ec2/instance-state",
        Some(&json!({"instance_id": offline, "state": "stopped"})),
    );
    let dispatcher = night
        .fleet
        .function(&[("AGENT_REGISTRATION_TIMEOUT_SECONDS", "2")]);
    let mut input = now_input();
    input["window_minutes"] = json!(1);
    let run = dispatcher.invoke(&input).output().clone();
    assert_eq!(strings(&run, "woken"), vec![offline.clone()], "{run}");
    let command = run["commands"][0]["command_id"]
        .as_str()
        .expect("command")
        .to_string();
    let sweep = fleetops_e2e::event("patch-dispatcher-sweep.json");
    let waiting = dispatcher.invoke(&sweep).output().clone();
    assert!(
        skip_reason(&waiting, &offline).contains("not over"),
        "{waiting}"
    );
    // The command's delivery timeout is what was left of the window: once it
    // passes, SSM gives the invocation up (never delivered) and the instance
    // goes back to stopped.
    night.fleet.emulator.control(
        "POST",
        "/_fleetops/clock/advance",
        Some(&json!({"seconds": 61})),
    );
    let invocations = night.fleet.emulator.control(
        "GET",
        "/_fleetops/ssm/commands?document_name=AWS-RunPatchBaseline",
        None,
    );
    let commands = invocations["commands"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ours = commands
        .iter()
        .find(|c| c["command_id"] == json!(command))
        .expect("the command");
    assert!(
        ours["timeout_seconds"]
            .as_i64()
            .is_some_and(|t| (30..=60).contains(&t)),
        "the window's rest as the delivery timeout: {ours}"
    );
    let after = dispatcher.invoke(&sweep).output().clone();
    assert_eq!(
        after["returned"][0]["instance_id"],
        json!(offline),
        "{after}"
    );
    assert_eq!(after["returned"][0]["stopped"], json!(true), "{after}");
    assert_eq!(night.state(&offline).await, ("stopped".into(), None));
}
