//! compliance-reporter end to end: seed a mixed fleet (agents, patch states,
//! association compliance) in the emulator, run the real binary, and read the
//! report as a subscriber does: an SQS queue subscribed to the topic.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_ssm::types::{
    ComplianceExecutionSummary, ComplianceItemEntry, ComplianceSeverity, ComplianceStatus,
    OperatingSystem,
};
use fleetops_e2e::{event, Emulator, LambdaFunction};

mod page;
use serde_json::{json, Value};

const REGION: &str = "us-east-1";

pub(crate) struct Fleet {
    emulator: Emulator,
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
}

pub(crate) struct Seeded {
    web_ok: String,
    web_critical: String,
    web_reboot: String,
    db_failed: String,
    db_offline: String,
    db_stale: String,
    db_never: String,
    legacy: String,
    stopped: String,
}

impl Fleet {
    pub(crate) async fn new() -> Self {
        let emulator = Emulator::start();
        let config = emulator.sdk_config(REGION).await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            emulator,
        }
    }

    async fn launch(&self, name: &str, group: Option<&str>) -> String {
        let mut spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("Name").value(name).build());
        if let Some(group) = group {
            spec = spec.tags(Tag::builder().key("Patch Group").value(group).build());
        }
        let output = self
            .ec2
            .run_instances()
            .image_id("ami-760aaa0f")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec.build())
            .send()
            .await
            .expect("run instance");
        output.instances()[0]
            .instance_id()
            .expect("instance id")
            .to_string()
    }

    fn agent(&self, id: &str, ping: &str) {
        self.emulator.control(
            "POST",
            "/_fleetops/ssm/agent",
            Some(&json!({"instance_id": id, "ping_status": ping})),
        );
    }

    fn patch_state(&self, id: &str, fields: Value) {
        let mut body = json!({"InstanceId": id, "InstalledCount": 12});
        if let (Value::Object(b), Value::Object(f)) = (&mut body, fields) {
            b.extend(f);
        }
        self.emulator
            .control("POST", "/_fleetops/ssm/patch-state", Some(&body));
    }

    async fn association(&self, id: &str, status: ComplianceStatus) {
        self.ssm
            .put_compliance_items()
            .resource_id(id)
            .resource_type("ManagedInstance")
            .compliance_type("Association")
            .execution_summary(
                ComplianceExecutionSummary::builder()
                    .execution_time(aws_smithy_types::DateTime::from_secs(
                        jiff::Timestamp::now().as_second(),
                    ))
                    .build()
                    .expect("summary"),
            )
            .items(
                ComplianceItemEntry::builder()
                    .id("assoc-cloudwatch-agent")
                    .title("AWS-ConfigureAWSPackage")
                    .severity(ComplianceSeverity::High)
                    .status(status)
                    .build()
                    .expect("item"),
            )
            .send()
            .await
            .expect("put compliance items");
    }

    /// Two patch groups (web with a baseline, db without), and one of everything.
    pub(crate) async fn seed(&self) -> Seeded {
        let baseline = self
            .ssm
            .create_patch_baseline()
            .name("fleetops-web")
            .operating_system(OperatingSystem::AmazonLinux2)
            .send()
            .await
            .expect("baseline");
        self.ssm
            .register_patch_baseline_for_patch_group()
            .baseline_id(baseline.baseline_id().expect("baseline id"))
            .patch_group("web")
            .send()
            .await
            .expect("register group");

        let s = Seeded {
            web_ok: self.launch("web-ok", Some("web")).await,
            web_critical: self.launch("web-critical", Some("web")).await,
            web_reboot: self.launch("web-reboot", Some("web")).await,
            db_failed: self.launch("db-failed", Some("db")).await,
            db_offline: self.launch("db-offline", Some("db")).await,
            db_stale: self.launch("db-stale", Some("db")).await,
            db_never: self.launch("db-never-scanned", Some("db")).await,
            legacy: self.launch("legacy-unmanaged", None).await,
            stopped: self.launch("batch-stopped", Some("web")).await,
        };
        let terminated = self.launch("old-terminated", Some("web")).await;
        for id in [
            &s.web_ok,
            &s.web_critical,
            &s.web_reboot,
            &s.db_failed,
            &s.db_stale,
            &s.db_never,
            &s.stopped,
            &terminated,
        ] {
            self.agent(id, "Online");
        }
        self.agent(&s.db_offline, "ConnectionLost");
        self.patch_state(&s.web_ok, json!({"NotApplicableCount": 30}));
        self.patch_state(
            &s.web_critical,
            json!({"MissingCount": 3, "CriticalNonCompliantCount": 2, "SecurityNonCompliantCount": 1}),
        );
        self.patch_state(&s.web_reboot, json!({"InstalledPendingRebootCount": 1}));
        self.patch_state(&s.db_failed, json!({"FailedCount": 1}));
        self.patch_state(&s.db_offline, json!({}));
        let month_ago = jiff::Timestamp::now().as_second() - 30 * 86_400;
        self.patch_state(
            &s.db_stale,
            json!({"OperationStartTime": month_ago - 60, "OperationEndTime": month_ago}),
        );
        // Missing patches on a stopped instance must not make it non-compliant;
        // its month-old scan is patch debt (`stopped_stale`).
        self.patch_state(
            &s.stopped,
            json!({"MissingCount": 9, "CriticalNonCompliantCount": 9,
                   "OperationStartTime": month_ago - 60, "OperationEndTime": month_ago}),
        );
        self.patch_state(&terminated, json!({"FailedCount": 4}));
        self.association(&s.web_ok, ComplianceStatus::Compliant)
            .await;
        self.association(&s.db_failed, ComplianceStatus::NonCompliant)
            .await;
        self.ec2
            .stop_instances()
            .instance_ids(&s.stopped)
            .send()
            .await
            .expect("stop");
        self.ec2
            .terminate_instances()
            .instance_ids(&terminated)
            .send()
            .await
            .expect("terminate");
        s
    }

    /// A topic with an SQS subscriber (raw delivery off, as by default).
    pub(crate) async fn topic_with_queue(&self) -> (String, String) {
        let topic = self
            .sns
            .create_topic()
            .name("fleetops-report")
            .send()
            .await
            .expect("topic");
        let topic_arn = topic.topic_arn().expect("topic arn").to_string();
        let queue = self
            .sqs
            .create_queue()
            .queue_name("report-reader")
            .send()
            .await
            .expect("queue");
        let queue_url = queue.queue_url().expect("queue url").to_string();
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn")
            .clone();
        self.sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe");
        (topic_arn, queue_url)
    }

    /// The SNS notifications waiting in the queue, oldest first.
    async fn notifications(&self, queue_url: &str) -> Vec<Value> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        output
            .messages()
            .iter()
            .map(|m| {
                serde_json::from_str(m.body().unwrap_or_default()).expect("an SNS notification")
            })
            .collect()
    }

    pub(crate) fn start_function(&self, extra_env: &[(&str, &str)]) -> LambdaFunction {
        self.emulator
            .start_function("compliance-reporter", REGION, extra_env)
    }
}

pub(crate) fn nightly_now() -> Value {
    let mut e = event("compliance-reporter-nightly.json");
    e["time"] = json!(jiff::Timestamp::now().to_string());
    e
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_mixed_fleet_when_the_nightly_report_runs_then_the_sqs_subscriber_gets_the_json_report(
) {
    let fleet = Fleet::new().await;
    let s = fleet.seed().await;
    let (topic_arn, queue_url) = fleet.topic_with_queue().await;
    let function = fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn)]);
    fleet.emulator.reset_calls();

    let output = function.invoke(&nightly_now()).output().clone();
    let calls = fleet.emulator.calls();
    println!("output: {output}\ncalls: {calls:?}");
    assert_eq!(output["dry_run"], json!(false));
    assert_eq!(
        output["instances"],
        json!(9),
        "terminated is left out: {output}"
    );
    assert_eq!(
        output["noncompliant"],
        json!(3),
        "critical, reboot, failed: {output}"
    );
    assert!(output["message_id"].is_string(), "{output}");
    assert_eq!(calls.get("sns:Publish"), Some(&1));
    assert_eq!(
        calls.get("ssm:DescribeInstancePatchStates"),
        Some(&1),
        "one batch of ≤ 50"
    );

    let notifications = fleet.notifications(&queue_url).await;
    assert_eq!(notifications.len(), 1, "{notifications:?}");
    let n = &notifications[0];
    assert_eq!(n["Type"], "Notification");
    let subject = n["Subject"].as_str().expect("subject");
    assert!(subject.len() < 100 && subject.is_ascii(), "{subject}");
    assert!(
        subject.contains("3 non-compliant") && subject.contains("1 critical"),
        "{subject}"
    );
    // The SQS subscriber gets the machine JSON, not the e-mail text.
    let report: Value =
        serde_json::from_str(n["Message"].as_str().expect("message")).expect("JSON report");
    assert_eq!(report["type"], "fleetops.compliance-report");
    let totals = &report["totals"];
    assert_eq!(
        (
            &totals["running"],
            &totals["stopped"],
            &totals["unmanaged"],
            &totals["connection_lost"]
        ),
        (&json!(8), &json!(1), &json!(1), &json!(1)),
        "{totals}"
    );
    assert_eq!(
        (&totals["compliant"], &totals["noncompliant"]),
        (&json!(2), &json!(3)),
        "{totals}"
    );
    assert_eq!(
        (&totals["stale"], &totals["not_scanned"]),
        (&json!(1), &json!(1)),
        "{totals}"
    );
    assert_eq!(
        (
            &totals["missing_critical"],
            &totals["pending_reboot"],
            &totals["failed"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(
        (
            &totals["association_compliant"],
            &totals["association_noncompliant"]
        ),
        (&json!(1), &json!(1))
    );
    let groups: Vec<(String, Value)> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["patch_group"].as_str().unwrap_or_default().to_string(),
                g["baseline_id"].clone(),
            )
        })
        .collect();
    assert_eq!(groups.len(), 3, "{groups:?}");
    assert!(
        groups.iter().any(|(g, b)| g == "db" && b.is_null()),
        "db has no baseline: {groups:?}"
    );
    assert!(
        groups.iter().any(|(g, b)| g == "web" && b.is_string()),
        "{groups:?}"
    );
    assert_eq!(
        report["worst_instances"][0]["instance_id"],
        json!(s.web_critical)
    );
    let worst: Vec<&str> = report["worst_instances"]
        .as_array()
        .expect("worst")
        .iter()
        .filter_map(|l| l["instance_id"].as_str())
        .collect();
    for id in [
        &s.web_reboot,
        &s.db_failed,
        &s.db_offline,
        &s.db_stale,
        &s.db_never,
        &s.legacy,
    ] {
        assert!(worst.contains(&id.as_str()), "{id} in {worst:?}");
    }
    assert!(!worst.contains(&s.stopped.as_str()) && !worst.contains(&s.web_ok.as_str()));
    assert_eq!(report["stopped"][0]["instance_id"], json!(s.stopped));
    assert_eq!(totals["stopped_stale"], json!(1), "{totals}");
    let web = report["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["patch_group"] == "web"))
        .expect("web");
    assert_eq!(
        (&web["stopped"], &web["stopped_stale"]),
        (&json!(1), &json!(1)),
        "{web}"
    );

    // One copy of each: the e-mail text under `email`, the JSON under
    // `default` (which SQS, Lambda and HTTP/S subscribers get).
    let published = fleet
        .emulator
        .control("GET", "/_fleetops/sns/messages", None);
    let message: Value = serde_json::from_str(
        published["messages"][0]["message"]
            .as_str()
            .expect("message"),
    )
    .expect("structure");
    let text = message["email"].as_str().expect("email text");
    println!("{text}");
    let keys: Vec<&String> = message.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["default", "email", "sms"], "{message}");
    assert_eq!(message["default"], n["Message"], "SQS got `default`");
    assert_eq!(message["sms"], n["Subject"]);
    assert!(
        line_with(text, "web-critical").contains("2 critical"),
        "{text}"
    );
    assert!(line_with(text, "legacy-unmanaged").contains(&s.legacy));
    assert!(text.contains("Stopped (not assessed) (1)"), "{text}");
    assert!(text.contains("Changes: first report"), "{text}");

    // The previous summary was kept; tomorrow's report shows what changed.
    let kept = fleet
        .ssm
        .get_parameter()
        .name("/fleetops/compliance-reporter/previous")
        .send()
        .await
        .expect("previous summary");
    assert!(kept
        .parameter()
        .and_then(|p| p.value())
        .is_some_and(|v| v.len() < 4096));
    fleet.patch_state(
        &s.web_critical,
        json!({"MissingCount": 0, "CriticalNonCompliantCount": 0, "SecurityNonCompliantCount": 0}),
    );
    let second = function.invoke(&nightly_now()).output().clone();
    assert_eq!(second["noncompliant"], json!(2), "{second}");
    let notifications = fleet.notifications(&queue_url).await;
    let report: Value =
        serde_json::from_str(notifications[0]["Message"].as_str().expect("message")).expect("JSON");
    assert_eq!(
        report["changes"]["fixed"],
        json!([s.web_critical]),
        "{}",
        report["changes"]
    );
    assert!(report["changes"]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .any(|m| m["metric"] == "noncompliant" && m["before"] == 3 && m["after"] == 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_report_bucket_when_the_report_runs_then_json_and_html_are_stored_and_linked() {
    let fleet = Fleet::new().await;
    let s = fleet.seed().await;
    let (topic_arn, queue_url) = fleet.topic_with_queue().await;
    fleet
        .s3
        .create_bucket()
        .bucket("fleet-reports")
        .send()
        .await
        .expect("bucket");
    let function = fleet.start_function(&[
        ("REPORT_TOPIC_ARN", &topic_arn),
        ("REPORT_BUCKET", "fleet-reports"),
    ]);

    let output = function.invoke(&nightly_now()).output().clone();
    let objects: Vec<&str> = output["report_objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(objects.len(), 2, "{output}");
    let listed = fleet
        .s3
        .list_objects_v2()
        .bucket("fleet-reports")
        .prefix("fleetops/reports/")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    for key in &keys {
        assert!(
            key.starts_with(&format!("fleetops/reports/{today}/")),
            "{key}"
        );
        assert!(
            objects.contains(&format!("s3://fleet-reports/{key}").as_str()),
            "{key} in {objects:?}"
        );
    }
    let s3 = &fleet.s3;
    let get = |key: String| async move {
        let object = s3
            .get_object()
            .bucket("fleet-reports")
            .key(key)
            .send()
            .await
            .expect("get");
        String::from_utf8(object.body.collect().await.expect("body").to_vec()).expect("utf-8")
    };
    let json_key = keys
        .iter()
        .find(|k| k.ends_with(".json"))
        .expect("json key")
        .to_string();
    let html_key = keys
        .iter()
        .find(|k| k.ends_with(".html"))
        .expect("html key")
        .to_string();
    let full: Value = serde_json::from_str(&get(json_key).await).expect("full JSON");
    assert_eq!(full["totals"]["noncompliant"], json!(3));
    let html = get(html_key).await;
    assert_eq!(
        html.matches("<svg class=\"group-bar\"").count(),
        3,
        "one chart per group"
    );
    assert!(html.contains("the trend starts tonight"), "first report");
    assert!(html.contains(&s.web_critical));

    let notifications = fleet.notifications(&queue_url).await;
    let report: Value =
        serde_json::from_str(notifications[0]["Message"].as_str().expect("message")).expect("JSON");
    let links = report["links"].as_array().expect("links");
    assert!(
        links.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.starts_with("s3://fleet-reports/fleetops/reports/"))),
        "{links:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_dry_run_event_then_the_report_is_returned_and_nothing_is_published_or_stored() {
    let fleet = Fleet::new().await;
    fleet.seed().await;
    let (topic_arn, _queue_url) = fleet.topic_with_queue().await;
    let function = fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn)]);
    fleet.emulator.reset_calls();
    let output = function
        .invoke(&event("compliance-reporter-dry-run.json"))
        .output()
        .clone();
    assert_eq!(output["dry_run"], json!(true));
    assert!(output["message_id"].is_null());
    assert!(
        output["subject"]
            .as_str()
            .is_some_and(|s| s.contains("non-compliant")),
        "{output}"
    );
    let calls = fleet.emulator.calls();
    assert!(
        !calls.contains_key("sns:Publish") && !calls.contains_key("ssm:PutParameter"),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_missing_or_invalid_topic_arn_then_the_invocation_fails_before_any_aws_call() {
    let fleet = Fleet::new().await;
    for env in [
        vec![],
        vec![("REPORT_TOPIC_ARN", "fleetops-report")],
        vec![(
            "REPORT_TOPIC_ARN",
            "arn:aws:sqs:us-east-1:123456789012:fleetops-report",
        )],
        vec![
            ("REPORT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:ok"),
            ("STALE_AFTER_DAYS", "0"),
        ],
    ] {
        fleet.emulator.reset_calls();
        let function = fleet.start_function(&env);
        let invocation = function.invoke(&nightly_now());
        let error = invocation.error();
        assert!(error.contains("InvalidConfig"), "{error}");
        let named = if env.len() == 2 {
            "STALE_AFTER_DAYS"
        } else {
            "REPORT_TOPIC_ARN"
        };
        assert!(error.contains(named), "{error}");
        assert!(
            fleet.emulator.calls().is_empty(),
            "{:?}",
            fleet.emulator.calls()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_throttled_patch_states_that_never_recover_then_the_report_says_which_data_is_missing(
) {
    let fleet = Fleet::new().await;
    fleet.seed().await;
    let (topic_arn, queue_url) = fleet.topic_with_queue().await;
    fleet.emulator.control(
        "POST",
        "/_fleetops/faults",
        Some(&json!({"rules": [{"service": "ssm", "operation": "DescribeInstancePatchStates", "error": "ThrottlingException"}]})),
    );
    let function = fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn)]);
    let output = function.invoke(&nightly_now()).output().clone();
    assert_eq!(output["complete"], json!(false), "{output}");
    assert_eq!(
        output["missing_data"],
        json!(["ssm:DescribeInstancePatchStates"])
    );
    assert_eq!(
        output["previous_saved"],
        json!(false),
        "an incomplete report is not kept for comparison"
    );
    let notifications = fleet.notifications(&queue_url).await;
    assert!(notifications[0]["Subject"]
        .as_str()
        .is_some_and(|s| s.starts_with("INCOMPLETE")));
    let report: Value =
        serde_json::from_str(notifications[0]["Message"].as_str().expect("message")).expect("JSON");
    assert!(
        report["totals"]["noncompliant"].is_null(),
        "unknown, not 0: {}",
        report["totals"]
    );
    assert!(output["noncompliant"].is_null(), "{output}");
    assert!(report["gaps"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("ThrottlingException")));
}

/// What the faults API says fired so far, summed over the rules.
fn faults_fired(emulator: &fleetops_e2e::Emulator) -> u64 {
    let rules = emulator.control("GET", "/_fleetops/faults", None);
    rules["rules"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["fired"].as_u64()).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn given_5_percent_503s_then_every_report_is_right_or_says_which_data_is_missing() {
    let fleet = Fleet::new().await;
    fleet.seed().await;
    // Enough managed instances for several pages and id batches per report.
    let more = fleet
        .ec2
        .run_instances()
        .image_id("ami-760aaa0f")
        .min_count(120)
        .max_count(120)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Patch Group").value("web").build())
                .build(),
        )
        .send()
        .await
        .expect("run instances");
    for instance in more.instances() {
        let id = instance.instance_id().expect("id");
        fleet.agent(id, "Online");
        fleet.patch_state(
            id,
            json!({"Operation": "Scan", "OperationEndTime": jiff::Timestamp::now().to_string()}),
        );
    }
    let (topic_arn, queue_url) = fleet.topic_with_queue().await;
    let function = fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn)]);
    let reference = function.invoke(&nightly_now()).output().clone();
    assert_eq!(reference["complete"], json!(true), "{reference}");
    let reference_totals = {
        let n = fleet.notifications(&queue_url).await;
        let report: Value =
            serde_json::from_str(n[0]["Message"].as_str().expect("message")).expect("JSON");
        report["totals"].clone()
    };

    fleet.emulator.control(
        "POST",
        "/_fleetops/faults",
        Some(&json!({"seed": 5, "rules": [
            {"service": "ssm", "operation": "*", "error": "ServiceUnavailable", "status": 503, "rate": 0.05},
            {"service": "ec2", "operation": "*", "error": "ServiceUnavailable", "status": 503, "rate": 0.05},
            {"service": "sns", "operation": "*", "error": "ServiceUnavailable", "status": 503, "rate": 0.05}
        ]})),
    );
    let mut runs = 0;
    while runs < 30 && (runs < 3 || faults_fired(&fleet.emulator) < 3) {
        runs += 1;
        let output = function.invoke(&nightly_now()).output().clone();
        let notifications = fleet.notifications(&queue_url).await;
        assert_eq!(notifications.len(), 1, "one report per run: {output}");
        let report: Value =
            serde_json::from_str(notifications[0]["Message"].as_str().expect("message"))
                .expect("JSON");
        if output["complete"] == json!(true) {
            assert_eq!(report["totals"], reference_totals, "run {runs}: {output}");
        } else {
            // Missing data is named, and counted as unknown, never as a wrong verdict.
            assert!(
                output["missing_data"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty()),
                "{output}"
            );
            assert!(notifications[0]["Subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("INCOMPLETE")));
            for metric in ["compliant", "noncompliant", "missing_critical", "failed"] {
                assert!(
                    report["totals"][metric].as_u64() <= reference_totals[metric].as_u64(),
                    "{metric}: {} vs {}",
                    report["totals"],
                    reference_totals
                );
            }
        }
    }
    assert!(
        faults_fired(&fleet.emulator) >= 3,
        "the faults did fire ({runs} runs)"
    );
}

impl Fleet {
    /// `count` running instances with these tags, in one RunInstances call.
    async fn launch_many(&self, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
        let spec = tags.iter().fold(
            TagSpecification::builder().resource_type(ResourceType::Instance),
            |spec, (k, v)| spec.tags(Tag::builder().key(*k).value(*v).build()),
        );
        let output = self
            .ec2
            .run_instances()
            .image_id("ami-760aaa0f")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(count)
            .max_count(count)
            .tag_specifications(spec.build())
            .send()
            .await
            .expect("run instances");
        output
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect()
    }

    /// The last publish: (subject, e-mail text, bytes of the message).
    fn last_published(&self) -> (String, String, u64) {
        let published = self
            .emulator
            .control("GET", "/_fleetops/sns/messages", None);
        let last = published["messages"]
            .as_array()
            .and_then(|m| m.last())
            .cloned()
            .expect("a published message");
        let envelope: Value =
            serde_json::from_str(last["message"].as_str().expect("message")).expect("structure");
        (
            last["subject"].as_str().unwrap_or_default().to_string(),
            envelope["email"].as_str().unwrap_or_default().to_string(),
            last["bytes"].as_u64().unwrap_or(0),
        )
    }

    /// The one report waiting in the queue, as the SQS subscriber gets it
    /// (taken off the queue, so the next run's report is the next one).
    async fn take_report(&self, queue_url: &str) -> Value {
        let output = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(5)
            .send()
            .await
            .expect("receive");
        let messages = output.messages();
        assert_eq!(messages.len(), 1, "one report per run: {messages:?}");
        if let Some(handle) = messages[0].receipt_handle() {
            self.sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .expect("delete");
        }
        let notification: Value =
            serde_json::from_str(messages[0].body().unwrap_or_default()).expect("notification");
        serde_json::from_str(notification["Message"].as_str().expect("message"))
            .expect("the SQS subscriber gets the JSON report")
    }

    fn faults(&self, rules: Value) {
        self.emulator.control(
            "POST",
            "/_fleetops/faults",
            Some(&json!({ "rules": rules })),
        );
    }
}

fn ids_of(value: &Value) -> Vec<String> {
    let mut ids: Vec<String> = value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The text lines from the section starting with `title` to the next blank line.
fn text_section(text: &str, title: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with(title))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(!lines.is_empty(), "no section {title:?} in:\n{text}");
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_failed_patch_state_batch_and_then_a_failed_ec2_read_then_nothing_is_fixed_from_missing_data_and_nothing_drops_to_0(
) {
    // Given the mixed fleet and 60 more web instances, every one of them missing
    // a critical patch: 68 managed instances, two patch-state batches.
    let fleet = Fleet::new().await;
    let s = fleet.seed().await;
    let extra = fleet.launch_many(60, &[("Patch Group", "web")]).await;
    for id in &extra {
        fleet.agent(id, "Online");
        fleet.patch_state(
            id,
            json!({"MissingCount": 1, "CriticalNonCompliantCount": 1,
                   "OperationEndTime": jiff::Timestamp::now().to_string()}),
        );
    }
    let (topic_arn, queue_url) = fleet.topic_with_queue().await;
    let function = fleet.emulator.start_function_with_timeout(
        "compliance-reporter",
        REGION,
        &[("REPORT_TOPIC_ARN", &topic_arn)],
        120,
    );
    let first = function.invoke(&nightly_now()).output().clone();
    assert_eq!(first["complete"], json!(true), "{first}");
    assert_eq!(first["noncompliant"], json!(63), "{first}");
    assert_eq!(first["previous_saved"], json!(true), "{first}");
    let yesterday = fleet.take_report(&queue_url).await;
    let mut was_noncompliant: Vec<String> = yesterday["worst_instances"]
        .as_array()
        .expect("worst")
        .iter()
        .filter(|l| l["standing"] == "non_compliant")
        .filter_map(|l| l["instance_id"].as_str().map(str::to_string))
        .collect();
    was_noncompliant.sort();
    assert_eq!(was_noncompliant.len(), 63);

    // Everything gets fixed, and then one patch-state batch fails for good
    // (an error the SDK does not retry, so exactly one call fails).
    for id in extra
        .iter()
        .chain([&s.web_critical, &s.web_reboot, &s.db_failed])
    {
        fleet.patch_state(
            id,
            json!({"MissingCount": 0, "CriticalNonCompliantCount": 0,
                   "SecurityNonCompliantCount": 0, "FailedCount": 0,
                   "InstalledPendingRebootCount": 0}),
        );
    }
    fleet.faults(
        json!([{"service": "ssm", "operation": "DescribeInstancePatchStates",
                         "error": "AccessDeniedException", "max_count": 1}]),
    );
    let second = function.invoke(&nightly_now()).output().clone();
    println!("second: {second}");
    assert_eq!(second["complete"], json!(false), "{second}");
    assert_eq!(second["previous_saved"], json!(false), "{second}");
    let (subject, text, _) = fleet.last_published();
    let report = fleet.take_report(&queue_url).await;
    println!("{text}");
    assert!(subject.starts_with("INCOMPLETE"), "{subject}");
    let gaps = report["gaps"].as_array().expect("gaps");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["source"], "ssm:DescribeInstancePatchStates");
    let unread = ids_of(&gaps[0]["instance_ids"]);
    assert!(!unread.is_empty() && unread.len() <= 50, "{unread:?}");
    // Then only instances read this time are fixed; the unread ones are neither.
    let expected_fixed: Vec<String> = was_noncompliant
        .iter()
        .filter(|id| !unread.contains(id))
        .cloned()
        .collect();
    assert!(
        !expected_fixed.is_empty() && expected_fixed.len() < was_noncompliant.len(),
        "both batches held non-compliant instances"
    );
    let changes = &report["changes"];
    assert_eq!(ids_of(&changes["fixed"]), expected_fixed, "{changes}");
    assert_eq!(ids_of(&changes["newly_noncompliant"]), Vec::<String>::new());
    // No metric drops to 0: what depends on the unread states is unknown.
    assert!(
        second["noncompliant"].is_null(),
        "unknown, not a count: {second}"
    );
    for change in changes["metrics"].as_array().expect("metrics") {
        assert!(
            change["after"] != json!(0) || change["before"] == json!(0),
            "a drop to 0: {change}"
        );
    }
    assert!(changes["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .any(|c| c["metric"] == "noncompliant" && c["before"] == 63 && c["after"].is_null()));
    assert!(
        report["totals"]["noncompliant"].is_null(),
        "{}",
        report["totals"]
    );
    assert_eq!(report["totals"]["running"], json!(68), "EC2 was read");
    assert!(text.contains("  noncompliant: 63 -> unknown"), "{text}");
    assert_eq!(report["incomplete_sections"]["groups"]["status"], "partial");
    assert!(
        text_section(&text, "Patch groups")
            .contains("could not read ssm:DescribeInstancePatchStates"),
        "{text}"
    );

    // And then the EC2 read fails for good (8 throttled attempts of one call).
    fleet.faults(json!([{"service": "ec2", "operation": "DescribeInstances",
                         "error": "RequestLimitExceeded", "max_count": 8}]));
    fleet.emulator.reset_calls();
    let third = function.invoke(&nightly_now()).output().clone();
    println!("third: {third}");
    assert_eq!(
        fleet.emulator.calls().get("ec2:DescribeInstances"),
        Some(&8)
    );
    assert_eq!(third["complete"], json!(false), "{third}");
    assert_eq!(
        third["missing_data"],
        json!(["ec2:DescribeInstances"]),
        "{third}"
    );
    assert!(
        third["instances"].is_null() && third["noncompliant"].is_null(),
        "{third}"
    );
    let (subject, text, _) = fleet.last_published();
    let report = fleet.take_report(&queue_url).await;
    println!("{text}");
    assert!(subject.starts_with("INCOMPLETE"), "{subject}");
    let changes = &report["changes"];
    assert_eq!(ids_of(&changes["fixed"]), Vec::<String>::new(), "{changes}");
    assert_eq!(ids_of(&changes["newly_noncompliant"]), Vec::<String>::new());
    let metrics = changes["metrics"].as_array().expect("metrics");
    assert!(!metrics.is_empty(), "{changes}");
    for change in metrics {
        assert!(change["after"].is_null(), "unknown, not a count: {change}");
    }
    for metric in [
        "instances",
        "running",
        "stopped",
        "noncompliant",
        "unmanaged",
    ] {
        assert!(
            report["totals"][metric].is_null(),
            "{metric}: {}",
            report["totals"]
        );
    }
    assert!(text.contains("  running: 68 -> unknown"), "{text}");
    assert!(!text.contains(" -> 0 ("), "{text}");
    for title in [
        "Summary",
        "Patch groups",
        "Worst instances",
        "Not managed by SSM",
        "Stopped",
    ] {
        assert!(
            text_section(&text, title).contains("unknown: could not read ec2:DescribeInstances"),
            "{title}:\n{text}"
        );
    }
    for section in ["groups", "worst_instances", "stopped", "totals"] {
        assert_eq!(
            report["incomplete_sections"][section]["status"], "unknown",
            "{section}: {}",
            report["incomplete_sections"]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_blank_patch_group_tag_and_patchgroup_web_then_the_report_counts_the_instance_in_web(
) {
    let fleet = Fleet::new().await;
    let ids = fleet
        .launch_many(
            1,
            &[
                ("Name", "app-1"),
                ("Patch Group", ""),
                ("PatchGroup", "web"),
            ],
        )
        .await;
    // Managed, never scanned: the group can only come from the tags.
    fleet.agent(&ids[0], "Online");
    let (topic_arn, queue_url) = fleet.topic_with_queue().await;
    let function = fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn)]);
    let output = function.invoke(&nightly_now()).output().clone();
    assert_eq!(output["complete"], json!(true), "{output}");
    let (_, text, _) = fleet.last_published();
    let report = fleet.take_report(&queue_url).await;
    let groups: Vec<&str> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["patch_group"].as_str())
        .collect();
    assert_eq!(groups, ["web"], "{}", report["groups"]);
    assert_eq!(report["worst_instances"][0]["patch_group"], "web");
    assert!(line_with(&text, "app-1").contains("web"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_fleet_too_big_for_one_message_then_the_published_message_stays_within_256_kib() {
    // 1,000 instances without an SSM agent: each is a problem line and an
    // unmanaged line, far more than 256 KiB in full.
    let fleet = Fleet::new().await;
    let name = "a-rather-long-instance-name-for-a-big-fleet-of-unmanaged-servers";
    let ids = fleet
        .launch_many(1000, &[("Name", name), ("Patch Group", "web")])
        .await;
    assert_eq!(ids.len(), 1000);
    let (topic_arn, queue_url) = fleet.topic_with_queue().await;
    let function = fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn)]);
    let output = function.invoke(&nightly_now()).output().clone();
    println!("{output}");
    assert!(output["message_id"].is_string(), "published: {output}");
    let kept = output["kept_per_list"].as_u64().expect("summarised");
    assert!(kept > 0 && kept < 1000, "{output}");
    let (_, text, bytes) = fleet.last_published();
    assert!(bytes <= 262_144, "{bytes}");
    assert_eq!(output["bytes"], json!(bytes));
    assert!(
        text.contains(&format!("  ... and {} more", 1000 - kept)),
        "{text}"
    );
    // One copy of the text and one of the JSON: `email` and `default`.
    let published = fleet
        .emulator
        .control("GET", "/_fleetops/sns/messages", None);
    let envelope: Value = serde_json::from_str(
        published["messages"][0]["message"]
            .as_str()
            .expect("message"),
    )
    .expect("structure");
    let keys: Vec<&String> = envelope.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["default", "email", "sms"]);
    // The two copies share the budget, so most of it is used.
    assert!(bytes > 200_000, "{bytes}");
    let report = fleet.take_report(&queue_url).await;
    assert_eq!(report["type"], "fleetops.compliance-report");
    assert_eq!(
        report["omitted"]["worst_instances"],
        json!(1000 - kept),
        "{}",
        report["omitted"]
    );
}
