//! patch-dispatcher exactly once, end to end: the same event delivered at the
//! same time to separate processes, Lambda's retry after a partial failure,
//! the process killed right after `SendCommand`, groups that did not opt in,
//! and the command-status flood of scheduled runs.

use std::time::{Duration, Instant};

use fleetops_e2e::{event, LambdaFunction};
use serde_json::{json, Value};

use crate::patch::{command_id, only_action, Fleet, REGION, STATE_TABLE};

impl Fleet {
    /// A running instance with `tags`; its agent is online unless `managed` is false.
    async fn instance(&self, tags: &[(&str, &str)], managed: bool) -> String {
        let id = fleetops_e2e::run_tagged(&self.ec2, tags).await;
        if managed {
            self.agent(&id, json!({"online_after_seconds": 0}));
        }
        id
    }

    /// Every `AWS-RunPatchBaseline` command SSM has, oldest first.
    fn patch_commands(&self) -> Vec<Value> {
        let out = self.emulator.control(
            "GET",
            "/_fleetops/ssm/commands?document_name=AWS-RunPatchBaseline",
            None,
        );
        out["commands"].as_array().cloned().unwrap_or_default()
    }

    fn fault(&self, rules: Value) {
        self.emulator.control(
            "POST",
            "/_fleetops/faults",
            Some(&json!({ "rules": rules })),
        );
    }

    fn dispatcher_with_timeout(&self, timeout_seconds: u64) -> LambdaFunction {
        self.emulator.start_function_with_timeout(
            "patch-dispatcher",
            REGION,
            &[
                ("AGENT_POLL_INTERVAL_SECONDS", "1"),
                ("STATE_TABLE", STATE_TABLE),
            ],
            timeout_seconds,
        )
    }
}

fn reasons(output: &Value) -> Vec<String> {
    output["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["reason"].as_str().map(str::to_string))
        .collect()
}

/// Invokes each function with `event` at the same time.
fn all_at_once(functions: &[LambdaFunction], event: &Value) -> Vec<Result<Value, String>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = functions
            .iter()
            .map(|f| scope.spawn(move || f.invoke(event).result))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("invoke thread"))
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn given_the_same_scheduled_run_delivered_three_times_at_once_then_one_command_per_target() {
    let fleet = Fleet::new().await;
    for _ in 0..3 {
        fleet.instance(&[("Patch Group", "web")], true).await;
    }
    let fallback = fleet.instance(&[("PatchGroup", "web")], true).await;
    let functions: Vec<LambdaFunction> = (0..3).map(|_| fleet.function(&[])).collect();
    let input = event("patch-dispatcher-scheduled-install.json");
    let outputs = all_at_once(&functions, &input);
    let sent: Vec<&Value> = outputs
        .iter()
        .map(|o| o.as_ref().unwrap_or_else(|e| panic!("{e}")))
        .filter(|o| o["commands"].as_array().is_some_and(|c| !c.is_empty()))
        .collect();
    assert_eq!(sent.len(), 1, "one invocation sends: {outputs:?}");
    assert_eq!(sent[0]["commands"][1]["instance_ids"], json!([fallback]));
    for output in outputs.iter().flatten() {
        if output["commands"].as_array().is_some_and(Vec::is_empty) {
            assert!(
                reasons(output).iter().any(|r| r.starts_with("duplicate")),
                "{output}"
            );
        }
    }
    assert_eq!(fleet.patch_commands().len(), 2, "group + fallback, once");
    assert_eq!(
        fleet.calls("ssm:PutParameter"),
        0,
        "no Parameter Store records"
    );
    // The run's record is done and expires a day after (TTL attribute).
    let items = fleet.state_items().await;
    let run = items
        .iter()
        .find(|(k, _)| {
            k.starts_with("run#web#Install#2026-11-29T02:00:00Z") && k.matches('#').count() == 3
        })
        .unwrap_or_else(|| panic!("{items:?}"));
    assert_eq!(run.1 .0, "done");
    let now = jiff::Timestamp::now().as_second();
    assert!(
        run.1 .1 > now + 24 * 3600 && run.1 .1 < now + 26 * 3600,
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_unmanaged_fallback_instance_then_the_run_succeeds_and_skips_only_it() {
    let fleet = Fleet::new().await;
    fleet.instance(&[("Patch Group", "web")], true).await;
    let managed = fleet.instance(&[("PatchGroup", "web")], true).await;
    let unmanaged = fleet.instance(&[("PatchGroup", "web")], false).await;
    // A blank `Patch Group` is no patch group: the fallback tag decides.
    let blank = fleet
        .instance(&[("Patch Group", ""), ("PatchGroup", "web")], true)
        .await;
    let function = fleet.function(&[]);
    let output = function
        .invoke(&event("patch-dispatcher-scheduled-install.json"))
        .output()
        .clone();
    assert_eq!(
        output["commands"].as_array().map(Vec::len),
        Some(2),
        "{output}"
    );
    let mut fallback: Vec<String> =
        serde_json::from_value(output["commands"][1]["instance_ids"].clone()).unwrap_or_default();
    fallback.sort();
    let mut expected = vec![managed.clone(), blank.clone()];
    expected.sort();
    assert_eq!(fallback, expected, "{output}");
    let skipped = output["skipped"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["instance_id"] == json!(unmanaged)))
        .unwrap_or_else(|| panic!("{output}"));
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not managed by SSM"),
        "{output}"
    );
    assert!(
        output["errors"].as_array().is_some_and(Vec::is_empty),
        "{output}"
    );
    assert_eq!(fleet.patch_commands().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_run_that_failed_part_way_when_lambda_retries_then_it_resumes_without_resending() {
    let fleet = Fleet::new().await;
    fleet.instance(&[("Patch Group", "web")], true).await;
    let fallback = fleet.instance(&[("PatchGroup", "web")], true).await;
    // The group-wide command fails past the SDK's retries; the fallback goes.
    fleet.fault(json!([{"service": "ssm", "operation": "SendCommand", "error": "InternalServerError", "status": 500, "max_count": 8}]));
    let function = fleet.function(&[]);
    let input = event("patch-dispatcher-scheduled-install.json");
    let failed = function.invoke(&input);
    assert!(
        failed.error().contains("not finished") && failed.error().contains("tag:Patch Group=web"),
        "{}",
        failed.error()
    );
    let commands = fleet.patch_commands();
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0]["instance_ids"], json!([fallback]));
    // Lambda's retry of the same event.
    let retried = function.invoke(&input).output().clone();
    assert_eq!(
        retried["commands"].as_array().map(Vec::len),
        Some(1),
        "{retried}"
    );
    assert_eq!(
        retried["commands"][0]["targets"],
        json!(["tag:Patch Group=web"])
    );
    assert!(
        reasons(&retried).iter().any(|r| r.contains("already sent")),
        "the fallback is not resent: {retried}"
    );
    assert_eq!(fleet.patch_commands().len(), 2);
    let again = function.invoke(&input).output().clone();
    assert!(
        again["commands"].as_array().is_some_and(Vec::is_empty),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_the_same_lifecycle_event_twice_at_once_then_one_command_and_one_completion() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let id = fleet.scale_out("web");
    // Both invocations wait for the agent at the same time.
    fleet.agent(&id, json!({"online_after_seconds": 3}));
    let functions: Vec<LambdaFunction> = (0..2).map(|_| fleet.function(&[])).collect();
    let launched = all_at_once(&functions, &fleet.launch_event(&id));
    let with_command: Vec<&Value> = launched
        .iter()
        .flatten()
        .filter(|o| o["commands"].as_array().is_some_and(|c| !c.is_empty()))
        .collect();
    assert_eq!(with_command.len(), 1, "{launched:?}");
    assert_eq!(fleet.patch_commands().len(), 1);
    let status = fleet.status_event(&command_id(with_command[0]));
    let finished = all_at_once(&functions, &status);
    let completed: Vec<&Value> = finished
        .iter()
        .flatten()
        .filter(|o| {
            o["lifecycle_actions"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .collect();
    assert_eq!(completed.len(), 1, "{finished:?}");
    assert_eq!(fleet.completions(&id).len(), 1);
    assert_eq!(fleet.calls("autoscaling:CompleteLifecycleAction"), 1);
    let items = fleet.state_items().await;
    let (state, expires, _) = &items[&format!("launch#{id}")];
    assert_eq!(state, "completed");
    let now = jiff::Timestamp::now().as_second();
    assert!(*expires > now + 47 * 3600 && *expires < now + 49 * 3600);
}

/// Kills `function` as soon as SSM has a patch command for `instance_id`.
fn kill_after_send(fleet: &Fleet, function: &mut LambdaFunction, instance_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fleet.patch_commands().iter().any(|c| {
        c["instance_ids"]
            .as_array()
            .is_some_and(|ids| ids.contains(&json!(instance_id)))
    }) {
        assert!(Instant::now() < deadline, "no command was sent");
        std::thread::sleep(Duration::from_millis(100));
    }
    function.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_crash_right_after_send_command_then_the_redelivery_and_the_sweep_adopt_it() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    for redelivered in [true, false] {
        let id = fleet.scale_out("web");
        fleet.agent(&id, json!({"online_after_seconds": 0}));
        // SendCommand takes effect at once; its answer is slow, and the
        // process dies before it can record the command id.
        fleet.fault(json!([{"service": "ssm", "operation": "SendCommand", "latency_ms": 20000, "latency_phase": "after", "max_count": 1}]));
        let mut crashed = fleet.dispatcher_with_timeout(60);
        let mut invoke = crashed.spawn_invoke(&fleet.launch_event(&id));
        kill_after_send(&fleet, &mut crashed, &id);
        let _ = invoke.kill();
        let _ = invoke.wait();
        let key = format!("launch#{id}");
        assert_eq!(fleet.state_items().await[&key].0, "sending");

        let survivor = fleet.function(&[]);
        let adopted = if redelivered {
            survivor.invoke(&fleet.launch_event(&id)).output().clone()
        } else {
            survivor
                .invoke(&event("patch-dispatcher-sweep.json"))
                .output()
                .clone()
        };
        assert!(
            reasons(&adopted).iter().any(|r| r.starts_with("adopted")),
            "{adopted}"
        );
        let commands: Vec<Value> = fleet
            .patch_commands()
            .into_iter()
            .filter(|c| c["instance_ids"] == json!([id]))
            .collect();
        assert_eq!(commands.len(), 1, "exactly one command: {commands:?}");
        let command = commands[0]["command_id"].as_str().expect("id").to_string();
        assert_eq!(fleet.state_items().await[&key].0, "sent");
        let finished = survivor
            .invoke(&fleet.status_event(&command))
            .output()
            .clone();
        assert_eq!(
            only_action(&finished)["result"],
            json!("CONTINUE"),
            "{finished}"
        );
        assert_eq!(fleet.completions(&id).len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_group_without_the_opt_in_tag_then_nothing_is_sent_completed_or_written() {
    let fleet = Fleet::new().await;
    fleet.group_opted("legacy", Some("web"), false).await;
    let id = fleet.scale_out("legacy");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let function = fleet.function(&[]);
    let output = function.invoke(&fleet.launch_event(&id)).output().clone();
    assert!(
        reasons(&output).iter().any(|r| r.contains("not opted in")),
        "{output}"
    );
    assert_eq!(fleet.calls("ssm:SendCommand"), 0);
    assert_eq!(fleet.calls("autoscaling:CompleteLifecycleAction"), 0);
    assert!(fleet.state_items().await.is_empty());
    let swept = function
        .invoke(&event("patch-dispatcher-sweep.json"))
        .output()
        .clone();
    assert!(
        swept["commands"].as_array().is_some_and(Vec::is_empty),
        "{swept}"
    );
    assert_eq!(fleet.calls("ssm:SendCommand"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_scheduled_install_on_many_instances_then_one_command_event_and_no_state_read() {
    let fleet = Fleet::new().await;
    const INSTANCES: usize = 20;
    for _ in 0..INSTANCES {
        fleet.instance(&[("Patch Group", "web")], true).await;
    }
    let function = fleet.function(&[]);
    let output = function
        .invoke(&json!({"patch_group": "web", "operation": "Install", "max_concurrency": "100%", "time": "2026-11-30T02:00:00Z"}))
        .output()
        .clone();
    let command = command_id(&output);
    fleet.emulator.control(
        "POST",
        "/_fleetops/clock/advance",
        Some(&json!({"seconds": 600})),
    );
    let events = fleet.events("aws.ssm");
    let of = |detail_type: &str| {
        events
            .iter()
            .filter(|e| {
                e["detail-type"] == json!(detail_type)
                    && e["detail"]["command-id"] == json!(command)
            })
            .cloned()
            .collect::<Vec<Value>>()
    };
    // What the old rule matched (one per instance) and what the rule matches now.
    assert_eq!(
        of("EC2 Command Invocation Status-change Notification").len(),
        INSTANCES
    );
    let finished = of("EC2 Command Status-change Notification");
    assert_eq!(finished.len(), 1);
    fleet.emulator.reset_calls();
    let handled = function.invoke(&finished[0]).output().clone();
    assert!(
        reasons(&handled)
            .iter()
            .any(|r| r.contains("not a fleetops launch command")),
        "{handled}"
    );
    assert_eq!(fleet.calls("dynamodb:GetItem"), 0, "no state read");
    assert_eq!(fleet.calls("ssm:ListCommands"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_launch_command_then_its_command_level_event_completes_the_launch() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let function = fleet.function(&[]);
    let command = command_id(function.invoke(&fleet.launch_event(&id)).output());
    fleet.status_event(&command);
    let finished = fleet
        .events("aws.ssm")
        .into_iter()
        .find(|e| {
            e["detail-type"] == json!("EC2 Command Status-change Notification")
                && e["detail"]["command-id"] == json!(command)
        })
        .expect("command-level event");
    let output = function.invoke(&finished).output().clone();
    assert_eq!(
        only_action(&output)["result"],
        json!("CONTINUE"),
        "{output}"
    );
    assert_eq!(fleet.completions(&id).len(), 1);
}
