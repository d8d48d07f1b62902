//! patch-dispatcher end to end: an Auto Scaling group with fleetops' launch
//! hook in the emulator, the lifecycle and command-status events it records
//! fed to the real binary, the completed lifecycle actions read back.

use aws_sdk_autoscaling::types::{LifecycleHookSpecification, Tag};
use aws_sdk_ec2::types::{ResourceType, Tag as Ec2Tag, TagSpecification};
use fleetops_e2e::{event, Emulator, LambdaFunction};
use serde_json::{json, Value};

pub(crate) const REGION: &str = "us-east-1";
const HOOK: &str = "fleetops-patch-on-launch";
pub(crate) const STATE_TABLE: &str = "fleetops-state";
const OPT_IN_TAG: &str = "fleetops:patch-on-launch";

pub(crate) struct Fleet {
    pub(crate) emulator: Emulator,
    pub(crate) asg: aws_sdk_autoscaling::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) dynamodb: aws_sdk_dynamodb::Client,
}

impl Fleet {
    /// The emulated account with the dispatcher's state table, as the
    /// template creates it (key `pk`, TTL on `expires_at`).
    pub(crate) async fn new() -> Self {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        let emulator = Emulator::start();
        let config = emulator.sdk_config(REGION).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        dynamodb
            .create_table()
            .table_name(STATE_TABLE)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .send()
            .await
            .expect("state table");
        dynamodb
            .update_time_to_live()
            .table_name(STATE_TABLE)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .expect("ttl"),
            )
            .send()
            .await
            .expect("ttl");
        emulator.reset_calls();
        Self {
            asg: aws_sdk_autoscaling::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            dynamodb,
            emulator,
        }
    }

    /// Every item of the state table: key -> (state, expires_at, record JSON).
    pub(crate) async fn state_items(
        &self,
    ) -> std::collections::BTreeMap<String, (String, i64, Value)> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .dynamodb
            .scan()
            .table_name(STATE_TABLE)
            .send()
            .await
            .expect("scan");
        out.items()
            .iter()
            .map(|item| {
                let text = |k: &str| match item.get(k) {
                    Some(AttributeValue::S(s)) | Some(AttributeValue::N(s)) => s.clone(),
                    _ => String::new(),
                };
                (
                    text("pk"),
                    (
                        text("state"),
                        text("expires_at").parse().unwrap_or(0),
                        serde_json::from_str(&text("record")).unwrap_or(Value::Null),
                    ),
                )
            })
            .collect()
    }

    /// A group `name` with the launch hook and the opt-in tag; `patch_group`
    /// becomes the `Patch Group` tag.
    pub(crate) async fn group(&self, name: &str, patch_group: Option<&str>) {
        self.group_opted(name, patch_group, true).await
    }

    pub(crate) async fn group_opted(&self, name: &str, patch_group: Option<&str>, opted_in: bool) {
        self.asg
            .create_launch_configuration()
            .launch_configuration_name(format!("{name}-lc"))
            .image_id("ami-760aaa0f")
            .instance_type("t3.micro")
            .send()
            .await
            .expect("launch configuration");
        let mut create = self
            .asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_configuration_name(format!("{name}-lc"))
            .min_size(0)
            .max_size(5)
            .desired_capacity(0)
            .availability_zones("us-east-1a")
            .lifecycle_hook_specification_list(
                LifecycleHookSpecification::builder()
                    .lifecycle_hook_name(HOOK)
                    .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
                    .heartbeat_timeout(600)
                    .default_result("ABANDON")
                    .build(),
            );
        if opted_in {
            create = create.tags(
                Tag::builder()
                    .key(OPT_IN_TAG)
                    .value("true")
                    .propagate_at_launch(false)
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .build(),
            );
        }
        if let Some(group) = patch_group {
            create = create.tags(
                Tag::builder()
                    .key("Patch Group")
                    .value(group)
                    .propagate_at_launch(true)
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .build(),
            );
        }
        create.send().await.expect("auto scaling group");
    }

    /// Scales `group` out by one; returns the new instance.
    pub(crate) fn scale_out(&self, group: &str) -> String {
        let out = self.emulator.control(
            "POST",
            "/_fleetops/autoscaling/launch",
            Some(&json!({"group": group, "count": 1})),
        );
        out["instance_ids"][0]
            .as_str()
            .expect("instance id")
            .to_string()
    }

    pub(crate) fn agent(&self, instance_id: &str, body: Value) {
        let mut body = body;
        body["instance_id"] = json!(instance_id);
        self.emulator
            .control("POST", "/_fleetops/ssm/agent", Some(&body));
    }

    pub(crate) fn events(&self, source: &str) -> Vec<Value> {
        let out = self
            .emulator
            .control("GET", &format!("/_fleetops/events?source={source}"), None);
        out["events"].as_array().cloned().unwrap_or_default()
    }

    pub(crate) fn launch_event(&self, instance_id: &str) -> Value {
        self.events("aws.autoscaling")
            .into_iter()
            .find(|e| e["detail"]["EC2InstanceId"] == json!(instance_id))
            .unwrap_or_else(|| panic!("no lifecycle event for {instance_id}"))
    }

    /// The status event of `command_id`, after letting the emulated clock run.
    pub(crate) fn status_event(&self, command_id: &str) -> Value {
        self.emulator.control(
            "POST",
            "/_fleetops/clock/advance",
            Some(&json!({"seconds": 30})),
        );
        self.events("aws.ssm")
            .into_iter()
            .find(|e| {
                e["detail"]["command-id"] == json!(command_id)
                    && e["detail-type"]
                        == json!("EC2 Command Invocation Status-change Notification")
            })
            .unwrap_or_else(|| panic!("no status event for {command_id}"))
    }

    pub(crate) fn completions(&self, instance_id: &str) -> Vec<Value> {
        let out = self.emulator.control(
            "GET",
            &format!("/_fleetops/autoscaling/lifecycle-actions?instance_id={instance_id}"),
            None,
        );
        out["actions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["kind"] == json!("complete"))
            .collect()
    }

    pub(crate) fn function(&self, extra_env: &[(&str, &str)]) -> LambdaFunction {
        let env: Vec<(&str, &str)> = [
            ("AGENT_POLL_INTERVAL_SECONDS", "1"),
            ("STATE_TABLE", STATE_TABLE),
        ]
        .into_iter()
        .chain(extra_env.iter().copied())
        .collect();
        self.emulator
            .start_function("patch-dispatcher", REGION, &env)
    }

    pub(crate) fn calls(&self, name: &str) -> u64 {
        self.emulator.calls().get(name).copied().unwrap_or(0)
    }
}

pub(crate) fn command_id(output: &Value) -> String {
    output["commands"][0]["command_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no command in {output}"))
        .to_string()
}

pub(crate) fn only_action(output: &Value) -> &Value {
    let actions = output["lifecycle_actions"]
        .as_array()
        .unwrap_or_else(|| panic!("{output}"));
    assert_eq!(actions.len(), 1, "{output}");
    &actions[0]
}

/// Scale out, run the lifecycle event, then the command's status event.
async fn scale_out_and_patch(fleet: &Fleet, function: &LambdaFunction) -> (String, Value) {
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let launched = function.invoke(&fleet.launch_event(&id));
    let command = command_id(launched.output());
    assert_eq!(
        launched.output()["commands"][0]["instance_ids"],
        json!([id])
    );
    assert!(launched.output()["lifecycle_actions"]
        .as_array()
        .is_some_and(Vec::is_empty));
    let finished = function.invoke(&fleet.status_event(&command));
    (id, finished.output().clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_scale_out_when_patching_succeeds_then_the_instance_continues() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let (id, output) = scale_out_and_patch(&fleet, &function).await;
    let action = only_action(&output);
    assert_eq!(
        (action["instance_id"].as_str(), action["result"].as_str()),
        (Some(id.as_str()), Some("CONTINUE")),
        "{output}"
    );
    let done = fleet.completions(&id);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["result"], json!("CONTINUE"));
    let commands = fleet.emulator.control(
        "GET",
        "/_fleetops/ssm/commands?document_name=AWS-RunPatchBaseline",
        None,
    );
    assert_eq!(
        commands["commands"][0]["parameters"]["Operation"],
        json!(["Install"])
    );
    assert_eq!(
        commands["commands"][0]["parameters"]["RebootOption"],
        json!(["RebootIfNeeded"])
    );
}

/// A scale-out whose patch command fails, with `extra_env`: the output of
/// the status event, and the completions Auto Scaling recorded.
async fn failed_patch(extra_env: &[(&str, &str)]) -> (Value, Vec<Value>) {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(extra_env);
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    fleet.emulator.control(
        "POST",
        "/_fleetops/ssm/command-outcome",
        Some(&json!({"instance_id": id, "status": "Failed"})),
    );
    let command = command_id(function.invoke(&fleet.launch_event(&id)).output());
    let output = function
        .invoke(&fleet.status_event(&command))
        .output()
        .clone();
    (output, fleet.completions(&id))
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_failed_patch_when_the_policy_is_abandon_then_the_instance_is_abandoned() {
    let (output, completions) = failed_patch(&[]).await;
    let action = only_action(&output);
    assert_eq!(action["result"], json!("ABANDON"), "{output}");
    assert!(
        action["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Failed"),
        "{output}"
    );
    assert_eq!(completions[0]["result"], json!("ABANDON"));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_failed_patch_when_the_policy_is_continue_then_the_instance_continues_with_the_reason(
) {
    let (output, completions) = failed_patch(&[("ON_PATCH_FAILURE", "continue")]).await;
    let action = only_action(&output);
    assert_eq!(action["result"], json!("CONTINUE"), "{output}");
    assert!(
        action["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Failed"),
        "{output}"
    );
    assert_eq!(completions[0]["result"], json!("CONTINUE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_agent_that_never_registers_when_the_budget_ends_then_the_instance_is_abandoned() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[("AGENT_REGISTRATION_TIMEOUT_SECONDS", "3")]);
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"never": true}));
    let output = function.invoke(&fleet.launch_event(&id)).output().clone();
    let action = only_action(&output);
    assert_eq!(action["result"], json!("ABANDON"), "{output}");
    assert!(
        action["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("did not come online"),
        "{output}"
    );
    assert!(
        output["commands"].as_array().is_some_and(Vec::is_empty),
        "{output}"
    );
    assert_eq!(fleet.calls("ssm:SendCommand"), 0);
    assert_eq!(fleet.completions(&id)[0]["result"], json!("ABANDON"));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_instance_without_a_patch_group_then_it_continues_at_once() {
    let fleet = Fleet::new().await;
    fleet.group("plain", None).await;
    let function = fleet.function(&[]);
    let id = fleet.scale_out("plain");
    let output = function.invoke(&fleet.launch_event(&id)).output().clone();
    let action = only_action(&output);
    assert_eq!(action["result"], json!("CONTINUE"), "{output}");
    assert_eq!(action["reason"], json!("no patch group tag"));
    assert_eq!(fleet.calls("ssm:SendCommand"), 0);
    assert_eq!(fleet.completions(&id).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_duplicate_lifecycle_event_then_no_second_command_is_sent() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let launch = fleet.launch_event(&id);
    let first = function.invoke(&launch).output().clone();
    command_id(&first);
    let second = function.invoke(&launch).output().clone();
    assert!(
        second["commands"].as_array().is_some_and(Vec::is_empty),
        "{second}"
    );
    assert!(
        second["skipped"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("duplicate"),
        "{second}"
    );
    assert_eq!(fleet.calls("ssm:SendCommand"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_duplicate_status_event_then_the_action_is_completed_once() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let command = command_id(function.invoke(&fleet.launch_event(&id)).output());
    let status = fleet.status_event(&command);
    let first = function.invoke(&status).output().clone();
    assert_eq!(only_action(&first)["result"], json!("CONTINUE"));
    let second = function.invoke(&status).output().clone();
    assert!(
        second["lifecycle_actions"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{second}"
    );
    assert!(
        second["skipped"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("duplicate"),
        "{second}"
    );
    assert_eq!(fleet.calls("autoscaling:CompleteLifecycleAction"), 1);
    assert_eq!(fleet.completions(&id).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_lost_lifecycle_event_when_the_sweep_runs_then_the_instance_is_patched() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let swept = function
        .invoke(&event("patch-dispatcher-sweep.json"))
        .output()
        .clone();
    let command = command_id(&swept);
    // The status event is lost too: the next sweep reads the result itself.
    fleet.emulator.control(
        "POST",
        "/_fleetops/clock/advance",
        Some(&json!({"seconds": 30})),
    );
    let swept = function
        .invoke(&event("patch-dispatcher-sweep.json"))
        .output()
        .clone();
    assert_eq!(only_action(&swept)["result"], json!("CONTINUE"), "{swept}");
    assert_eq!(fleet.completions(&id).len(), 1);
    let status = fleet.status_event(&command);
    let late = function.invoke(&status).output().clone();
    assert!(
        late["lifecycle_actions"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{late}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_patch_schedule_with_ten_percent_then_one_command_targets_the_group_and_one_the_fallback_tag(
) {
    let fleet = Fleet::new().await;
    for _ in 0..3 {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Ec2Tag::builder().key("Patch Group").value("web").build())
            .build();
        let out = fleet
            .ec2
            .run_instances()
            .image_id("ami-760aaa0f")
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec)
            .send()
            .await
            .expect("run instance");
        let id = out.instances()[0].instance_id().expect("id").to_string();
        fleet.agent(&id, json!({"online_after_seconds": 0}));
    }
    // One instance carries only the fallback key: it gets its own command.
    let fallback = fleet
        .ec2
        .run_instances()
        .image_id("ami-760aaa0f")
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Ec2Tag::builder().key("PatchGroup").value("web").build())
                .build(),
        )
        .send()
        .await
        .expect("run instance");
    let fallback = fallback.instances()[0]
        .instance_id()
        .expect("id")
        .to_string();
    fleet.agent(&fallback, json!({"online_after_seconds": 0}));
    let function = fleet.function(&[]);
    let input = event("patch-dispatcher-scheduled-install.json");
    assert_eq!(input["max_concurrency"], json!("10%"));
    let output = function.invoke(&input).output().clone();
    let command = command_id(&output);
    let snapshot = output["commands"][0]["snapshot_id"]
        .as_str()
        .expect("snapshot")
        .to_string();
    let all = fleet
        .emulator
        .control("GET", "/_fleetops/ssm/commands", None);
    let sent = all["commands"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["command_id"] == json!(command)))
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(sent["command_id"], json!(command));
    assert_eq!(sent["max_concurrency"], json!("10%"));
    assert_eq!(sent["max_errors"], json!("1"));
    assert_eq!(sent["parameters"]["SnapshotId"], json!([snapshot]));
    assert_eq!(sent["parameters"]["Operation"], json!(["Install"]));
    assert_eq!(
        sent["instance_ids"].as_array().map(Vec::len),
        Some(3),
        "{sent}"
    );
    assert_eq!(
        output["commands"][0]["targets"],
        json!(["tag:Patch Group=web"])
    );
    assert_eq!(
        output["commands"][1]["instance_ids"],
        json!([fallback]),
        "{output}"
    );
    assert_eq!(
        output["commands"][1]["snapshot_id"],
        json!(snapshot),
        "same patch set"
    );
    let again = function.invoke(&input).output().clone();
    assert!(
        again["commands"].as_array().is_some_and(Vec::is_empty),
        "{again}"
    );
    assert_eq!(fleet.calls("ssm:SendCommand"), 2);
    let bad = function
        .invoke(&json!({"patch_group": "web", "operation": "Install", "max_concurrency": "0"}));
    assert!(bad.error().contains("max_concurrency"), "{}", bad.error());
}

impl Fleet {
    /// Every lifecycle event recorded for `instance_id`, oldest first.
    fn launch_events(&self, instance_id: &str) -> Vec<Value> {
        self.events("aws.autoscaling")
            .into_iter()
            .filter(|e| e["detail"]["EC2InstanceId"] == json!(instance_id))
            .collect()
    }

    fn launch_into_warm_pool(&self, group: &str) -> String {
        let out = self.emulator.control(
            "POST",
            "/_fleetops/autoscaling/launch",
            Some(&json!({"group": group, "count": 1, "warm_pool": true})),
        );
        out["instance_ids"][0]
            .as_str()
            .expect("instance id")
            .to_string()
    }

    fn move_into_service(&self, group: &str) -> String {
        let out = self.emulator.control(
            "POST",
            "/_fleetops/autoscaling/launch",
            Some(&json!({"group": group, "count": 1, "from_warm_pool": true})),
        );
        out["instance_ids"][0]
            .as_str()
            .expect("instance id")
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_warm_pool_then_warming_is_patched_and_going_into_service_continues_at_once() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let id = fleet.launch_into_warm_pool("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let warming = fleet.launch_events(&id);
    assert_eq!(warming[0]["detail"]["Destination"], json!("WarmPool"));
    let command = command_id(function.invoke(&warming[0]).output());
    let warmed = function
        .invoke(&fleet.status_event(&command))
        .output()
        .clone();
    assert_eq!(
        only_action(&warmed)["result"],
        json!("CONTINUE"),
        "{warmed}"
    );

    assert_eq!(fleet.move_into_service("web"), id);
    let events = fleet.launch_events(&id);
    let into_service = events.last().expect("second lifecycle event");
    assert_eq!(into_service["detail"]["Origin"], json!("WarmPool"));
    let output = function.invoke(into_service).output().clone();
    let action = only_action(&output);
    assert_eq!(action["result"], json!("CONTINUE"), "{output}");
    assert!(
        action["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("warm pool"),
        "{output}"
    );
    assert_eq!(
        fleet.calls("ssm:SendCommand"),
        1,
        "patched once, when warmed"
    );
    assert_eq!(fleet.completions(&id).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_lost_event_for_a_warmed_instance_going_into_service_then_the_sweep_continues_it() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let id = fleet.launch_into_warm_pool("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let command = command_id(function.invoke(&fleet.launch_events(&id)[0]).output());
    function.invoke(&fleet.status_event(&command));
    fleet.move_into_service("web");
    // The WarmPool -> AutoScalingGroup event is lost; the sweep finds the instance.
    let swept = function
        .invoke(&event("patch-dispatcher-sweep.json"))
        .output()
        .clone();
    let action = only_action(&swept);
    assert_eq!(
        (action["instance_id"].as_str(), action["result"].as_str()),
        (Some(id.as_str()), Some("CONTINUE")),
        "{swept}"
    );
    assert_eq!(fleet.calls("ssm:SendCommand"), 1);
    assert_eq!(fleet.completions(&id).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_bad_events_then_the_error_names_the_field_and_nothing_changes() {
    let fleet = Fleet::new().await;
    fleet.group("web", Some("web")).await;
    let function = fleet.function(&[]);
    let id = fleet.scale_out("web");
    fleet.agent(&id, json!({"online_after_seconds": 0}));
    let good = fleet.launch_event(&id);
    fleet.emulator.reset_calls();

    let mut missing = good.clone();
    missing["detail"]
        .as_object_mut()
        .expect("detail")
        .remove("LifecycleActionToken");
    let mut wrong_type = good.clone();
    wrong_type["detail-type"] = json!("EC2 Instance Launch Successful");
    let mut wrong_source = good.clone();
    wrong_source["source"] = json!("aws.ec2");
    for (bad, names) in [
        (missing, "LifecycleActionToken"),
        (wrong_type, "detail-type"),
        (wrong_source, "source"),
        (json!({"patch_group": "web"}), "operation"),
        (json!({"sweep": "yes"}), "sweep"),
        (json!("hello"), "(event)"),
    ] {
        let invocation = function.invoke(&bad);
        assert!(
            invocation.error().contains(names),
            "{bad}: {}",
            invocation.error()
        );
    }
    assert!(
        fleet.emulator.calls().is_empty(),
        "no AWS call at all: {:?}",
        fleet.emulator.calls()
    );
    assert!(fleet.completions(&id).is_empty());
}
