//! The scheduler over several accounts and regions, end to end: accounts are
//! moto's, selected by assumed-role credentials; the spoke roles exist only
//! where the test creates them; the work queue is moto's SQS, drained by the
//! test into SQS events for the function, as Lambda's event source mapping
//! would.

use std::collections::BTreeMap;

use fleetops_e2e::{Emulator, LambdaFunction};
use serde_json::{json, Value};

const HUB: &str = "123456789012";
const SPOKES: [&str; 2] = ["111111111111", "222222222222"];
/// No spoke role there: it cannot be assumed.
const LOCKED: &str = "333333333333";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const SPOKE_ROLE: &str = "fleetops-spoke";
const OFFICE: &str =
    r#"{"schedules": {"office": {"periods": [{"begin": "09:00", "end": "18:00"}]}}}"#;
const EVENING: &str = "2026-11-26T18:05:00Z";

struct Org {
    emulator: Emulator,
}

impl Org {
    async fn new() -> Self {
        let org = Self {
            emulator: Emulator::start(),
        };
        let ssm = aws_sdk_ssm::Client::new(&org.emulator.sdk_config(REGIONS[0]).await);
        ssm.put_parameter()
            .name("/fleetops/schedules")
            .value(OFFICE)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("schedules");
        org
    }

    /// A queue of the hub account, and a client for it.
    async fn queue(&self, name: &str) -> (aws_sdk_sqs::Client, String) {
        let sqs = aws_sdk_sqs::Client::new(&self.emulator.sdk_config(REGIONS[0]).await);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_string();
        (sqs, url)
    }

    fn spoke_role(&self, account: &str) {
        self.emulator.control(
            "POST",
            "/_fleetops/iam/role",
            Some(&json!({"account": account, "name": SPOKE_ROLE})),
        );
    }

    /// The emulator's SDK configuration as `account` (its spoke role assumed).
    async fn config(&self, account: &str, region: &str) -> aws_config::SdkConfig {
        let base = self.emulator.sdk_config(region).await;
        if account == HUB {
            return base;
        }
        let sts = aws_sdk_sts::Client::new(&base);
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/{SPOKE_ROLE}"))
            .role_session_name("fleetops-e2e")
            .send()
            .await
            .expect("assume spoke role");
        let c = out.credentials().expect("credentials");
        base.to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_sdk_ec2::config::Credentials::new(
                        c.access_key_id(),
                        c.secret_access_key(),
                        Some(c.session_token().to_string()),
                        None,
                        "e2e",
                    ),
                ),
            )
            .build()
    }

    /// One running `office` instance in `account` and `region`.
    async fn instance(&self, account: &str, region: &str) -> String {
        let ec2 = aws_sdk_ec2::Client::new(&self.config(account, region).await);
        fleetops_e2e::run_tagged(&ec2, &[("Schedule", "office")]).await
    }

    async fn state(&self, account: &str, region: &str, id: &str) -> String {
        let ec2 = aws_sdk_ec2::Client::new(&self.config(account, region).await);
        let out = ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe");
        out.reservations()[0].instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default()
    }

    /// Two spokes and the hub with an instance in each region, one account
    /// without a spoke role: (account, region) -> instance.
    async fn fleet(&self) -> BTreeMap<(String, String), String> {
        for spoke in SPOKES {
            self.spoke_role(spoke);
        }
        let mut fleet = BTreeMap::new();
        for account in [HUB, SPOKES[0], SPOKES[1]] {
            for region in REGIONS {
                let id = self.instance(account, region).await;
                fleet.insert((account.to_string(), region.to_string()), id);
            }
        }
        fleet
    }

    /// `name` over the hub, both spokes and the locked account, in both regions.
    fn function(&self, name: &str, extra: &[(&str, &str)]) -> LambdaFunction {
        let accounts = format!("{HUB},{},{},{LOCKED}", SPOKES[0], SPOKES[1]);
        let regions = REGIONS.join(",");
        let mut env = vec![
            ("ACCOUNTS", accounts.as_str()),
            ("REGIONS", regions.as_str()),
        ];
        env.extend_from_slice(extra);
        self.emulator.start_function(name, REGIONS[0], &env)
    }

    fn scheduler(&self, extra: &[(&str, &str)]) -> LambdaFunction {
        self.function("instance-scheduler", extra)
    }

    async fn assert_all_stopped(&self, fleet: &BTreeMap<(String, String), String>) {
        for ((account, region), id) in fleet {
            assert_eq!(
                self.state(account, region, id).await,
                "stopped",
                "{account}/{region}/{id}"
            );
        }
    }
}

/// Delivers the queue's messages to `function` in batches of `size`, as
/// Lambda's event source mapping does: the messages the function names in
/// `batchItemFailures` stay in the queue (made visible again at once with
/// `redeliver`, instead of after the visibility timeout), the others are
/// deleted. Every batch's records and output.
async fn drain(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    size: i32,
    function: &LambdaFunction,
    redeliver: bool,
) -> Vec<(Vec<Value>, Value)> {
    let mut batches = Vec::new();
    for _ in 0..12 {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(size)
            .send()
            .await
            .expect("receive");
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                       "body": m.body(), "attributes": {}, "messageAttributes": {},
                       "eventSource": "aws:sqs", "awsRegion": REGIONS[0],
                       "eventSourceARN": format!("arn:aws:sqs:{}:{HUB}:queue", REGIONS[0])})
            })
            .collect();
        let batch = function
            .invoke(&json!({ "Records": records }))
            .output()
            .clone();
        let failed: Vec<&str> = batch["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        for m in messages {
            let handle = m.receipt_handle().unwrap_or_default();
            if !failed.contains(&m.message_id().unwrap_or_default()) {
                sqs.delete_message()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            } else if redeliver {
                sqs.change_message_visibility()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .expect("visible again");
            }
        }
        batches.push((records, batch));
    }
    batches
}

fn unhandled(output: &Value) -> Vec<(String, String, String)> {
    output["unhandled"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            (
                u["account"].as_str().unwrap_or_default().to_string(),
                u["region"].as_str().unwrap_or_default().to_string(),
                u["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn sorted(output: &Value, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = output[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn given_three_accounts_in_two_regions_then_one_tick_in_process_handles_each_and_reports_the_locked_one(
) {
    let org = Org::new().await;
    let fleet = org.fleet().await;
    let function = org.scheduler(&[]);
    let output = function.invoke(&json!({"time": EVENING})).output().clone();
    let mut expected: Vec<String> = fleet.values().cloned().collect();
    expected.sort();
    assert_eq!(sorted(&output, "stopped"), expected, "{output}");
    let locked = unhandled(&output);
    assert_eq!(locked.len(), 2, "{output}");
    for (account, _, reason) in &locked {
        assert_eq!(account, LOCKED);
        assert!(reason.contains("cannot be assumed"), "{reason}");
    }
    assert_eq!(
        output["units"].as_array().map(Vec::len),
        Some(6),
        "{output}"
    );
    org.assert_all_stopped(&fleet).await;

    // Metrics: the invocation's line, and one per account-region with its account.
    let docs: Vec<Value> = function
        .logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect();
    let per_unit: Vec<&Value> = docs.iter().filter(|d| d.get("account").is_some()).collect();
    assert_eq!(docs.len(), 7, "{docs:?}");
    assert_eq!(per_unit.len(), 6, "{docs:?}");
    for doc in per_unit {
        // Every metric declared is a number of the document, every dimension a string.
        for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
        {
            let name = metric["Name"].as_str().expect("name");
            assert!(doc[name].is_number(), "{name} in {doc}");
        }
        for dimension in ["function", "region", "account"] {
            assert!(doc[dimension].is_string(), "{dimension} in {doc}");
        }
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "region", "account"]])
        );
        assert_eq!(doc["InstancesStopped"], json!(1.0), "{doc}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_work_queue_then_the_tick_queues_one_message_per_account_region_and_each_is_handled_on_its_own(
) {
    let org = Org::new().await;
    let fleet = org.fleet().await;
    let (sqs, queue) = org.queue("fleetops-work").await;
    let function = org.scheduler(&[("WORK_QUEUE_URL", queue.as_str())]);
    let tick = function.invoke(&json!({"time": EVENING})).output().clone();
    assert_eq!(tick["queued"].as_array().map(Vec::len), Some(8), "{tick}");
    assert!(
        sorted(&tick, "stopped").is_empty(),
        "the tick only queues: {tick}"
    );

    // Drain the queue as the event source mapping would, in batches of 5.
    let mut stopped = Vec::new();
    let mut failures = 0;
    for (_, batch) in drain(&sqs, &queue, 5, &function, false).await {
        for (account, _, reason) in unhandled(&batch) {
            assert_eq!(account, LOCKED, "{batch}");
            assert!(reason.contains("cannot be assumed"), "{reason}");
        }
        failures += batch["batchItemFailures"]
            .as_array()
            .expect("a partial batch response")
            .len();
        stopped.extend(sorted(&batch, "stopped"));
    }
    stopped.sort();
    let mut expected: Vec<String> = fleet.values().cloned().collect();
    expected.sort();
    assert_eq!(stopped, expected);
    assert_eq!(failures, 2, "the locked account's two regions");
    org.assert_all_stopped(&fleet).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn given_accounts_organization_then_only_active_accounts_are_handled() {
    let org = Org::new().await;
    let config = org.emulator.sdk_config(REGIONS[0]).await;
    let organizations = aws_sdk_organizations::Client::new(&config);
    organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("organization");
    let mut made = Vec::new();
    for name in ["active", "suspended"] {
        let status = organizations
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .expect("account");
        let id = status
            .create_account_status()
            .and_then(|s| s.account_id())
            .expect("account id")
            .to_string();
        org.spoke_role(&id);
        made.push(id);
    }
    organizations
        .close_account()
        .account_id(&made[1])
        .send()
        .await
        .expect("suspend");
    let active = org.instance(&made[0], REGIONS[0]).await;
    let suspended = org.instance(&made[1], REGIONS[0]).await;
    let function = org.emulator.start_function(
        "instance-scheduler",
        REGIONS[0],
        &[("ACCOUNTS", "organization")],
    );
    let output = function.invoke(&json!({"time": EVENING})).output().clone();
    let accounts: Vec<&str> = output["units"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["account"].as_str())
        .collect();
    assert!(accounts.contains(&made[0].as_str()), "{output}");
    assert!(!accounts.contains(&made[1].as_str()), "{output}");
    assert_eq!(org.state(&made[0], REGIONS[0], &active).await, "stopped");
    assert_eq!(org.state(&made[1], REGIONS[0], &suspended).await, "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_three_accounts_then_one_report_covers_them_with_a_row_each_and_names_the_locked_one()
{
    let org = Org::new().await;
    let fleet = org.fleet().await;
    let (topic, queue, _) = report_outputs(&org).await;
    let sqs = aws_sdk_sqs::Client::new(&org.emulator.sdk_config(REGIONS[0]).await);
    let reporter = org.function(
        "compliance-reporter",
        &[("REPORT_TOPIC_ARN", topic.as_str())],
    );
    let output = reporter
        .invoke(&json!({"time": jiff::Timestamp::now().to_string()}))
        .output()
        .clone();
    assert_eq!(output["accounts"], json!(4), "{output}");
    assert_eq!(output["complete"], json!(false), "{output}");
    assert_eq!(unhandled(&output).len(), 2, "{output}");

    // The SQS subscriber's copy: the JSON report, a row per account.
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .send()
        .await
        .expect("receive");
    let body: Value = serde_json::from_str(received.messages()[0].body().unwrap_or_default())
        .expect("notification");
    let report: Value =
        serde_json::from_str(body["Message"].as_str().expect("message")).expect("report");
    assert_eq!(report["totals"]["running"], json!(fleet.len()), "{report}");
    let rows = report["accounts"].as_array().expect("accounts");
    assert_eq!(rows.len(), 4, "{report}");
    assert_eq!(rows[0]["account"], json!(LOCKED), "unknown first: {report}");
    assert_eq!(rows[0]["totals"]["running"], Value::Null, "unknown, not 0");
    for account in [HUB, SPOKES[0], SPOKES[1]] {
        let row = rows
            .iter()
            .find(|r| r["account"] == json!(account))
            .expect("row");
        assert_eq!(row["totals"]["running"], json!(2), "{row}");
        assert_eq!(row["regions"], json!(["eu-west-1", "us-east-1"]), "{row}");
    }
    assert!(
        report["subject"]
            .as_str()
            .unwrap_or_default()
            .starts_with("INCOMPLETE fleetops 4 accounts"),
        "{report}"
    );
}

/// The report's topic with an SQS subscriber, and the report bucket.
async fn report_outputs(org: &Org) -> (String, String, &'static str) {
    let config = org.emulator.sdk_config(REGIONS[0]).await;
    let sns = aws_sdk_sns::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = "fleetops-reports";
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket");
    let topic = sns
        .create_topic()
        .name("fleetops-report")
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_string();
    let (_, reader) = org.queue("report-reader").await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{}:{HUB}:report-reader", REGIONS[0]))
        .send()
        .await
        .expect("subscribe");
    (topic, reader, bucket)
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_work_queue_then_the_nightly_report_is_read_unit_by_unit_and_assembled_once() {
    let org = Org::new().await;
    let fleet = org.fleet().await;
    let (topic, reader, bucket) = report_outputs(&org).await;
    let (sqs, work) = org.queue("fleetops-report-work").await;
    let reporter = org.function(
        "compliance-reporter",
        &[
            ("REPORT_TOPIC_ARN", topic.as_str()),
            ("REPORT_BUCKET", bucket),
            ("WORK_QUEUE_URL", work.as_str()),
            ("REPORT_ASSEMBLY_DELAY_SECONDS", "0"),
        ],
    );
    let night = reporter
        .invoke(&json!({"time": jiff::Timestamp::now().to_string()}))
        .output()
        .clone();
    assert_eq!(night["queued"].as_array().map(Vec::len), Some(8), "{night}");
    assert_eq!(night["messages"], json!(9), "8 units and the assembly");

    // Drain as the event source mapping would; a failed item (an assembly
    // still waiting) is made visible again at once instead of after the
    // visibility timeout.
    let mut report = None;
    let mut assembled = Vec::new();
    let mut assembly = None;
    for (records, batch) in drain(&sqs, &work, 4, &reporter, true).await {
        if let Some(found) = records.iter().find(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains("report_assembly")
        }) {
            assembly = Some(found.clone());
        }
        if !batch["report"].is_null() {
            assembled.push(batch["report"].clone());
            report = Some(batch["report"].clone());
        }
    }
    let report = report.expect("the assembly built the report");
    assert_eq!(assembled.len(), 1, "assembled once: {assembled:?}");
    assert_eq!(report["accounts"], json!(4), "{report}");
    assert_eq!(report["complete"], json!(false), "{report}");
    let locked: Vec<(String, String, String)> = unhandled(&report);
    assert_eq!(locked.len(), 2, "{report}");
    assert!(
        locked
            .iter()
            .all(|(a, _, r)| a == LOCKED && r.contains("cannot be assumed")),
        "{report}"
    );

    // The assembly delivered again after the report went out publishes nothing.
    let again = reporter
        .invoke(&json!({ "Records": [assembly.expect("the assembly message")] }))
        .output()
        .clone();
    assert!(again["report"].is_null(), "{again}");

    // The subscriber got exactly one report, covering every instance read.
    let received = sqs
        .receive_message()
        .queue_url(&reader)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    assert_eq!(received.messages().len(), 1);
    let body: Value = serde_json::from_str(received.messages()[0].body().unwrap_or_default())
        .expect("notification");
    let published: Value =
        serde_json::from_str(body["Message"].as_str().expect("message")).expect("report");
    assert_eq!(
        published["totals"]["running"],
        json!(fleet.len()),
        "{published}"
    );
    assert_eq!(published["accounts"].as_array().map(Vec::len), Some(4));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_throttling_in_one_region_past_the_retries_then_only_its_units_fail_and_are_delivered_again(
) {
    let org = Org::new().await;
    let fleet = org.fleet().await;
    let (sqs, queue) = org.queue("fleetops-work").await;
    // eu-west-1's EC2 throttles every call for a while (the SDK's retries
    // included), in every account; us-east-1 answers.
    org.emulator.control(
        "POST",
        "/_fleetops/faults",
        // The tick's first read is DescribeTags; throttled until the rules are cleared.
        Some(
            &json!({"rules": [{"service": "ec2", "operation": "DescribeTags",
            "region": "eu-west-1", "error": "RequestLimitExceeded", "status": 503}]}),
        ),
    );
    let function = org.scheduler(&[("WORK_QUEUE_URL", queue.as_str())]);
    let tick = function.invoke(&json!({"time": EVENING})).output().clone();
    assert_eq!(tick["queued"].as_array().map(Vec::len), Some(8), "{tick}");

    let first = drain(&sqs, &queue, 10, &function, false).await;
    let (_, batch) = first.first().expect("one batch of 8");
    let failed: Vec<(String, String, String)> = unhandled(batch);
    assert_eq!(
        failed.len(),
        5,
        "3 throttled + the locked account's 2: {batch}"
    );
    assert!(
        failed
            .iter()
            .filter(|(a, _, _)| a != LOCKED)
            .all(|(_, r, why)| r == "eu-west-1" && why.contains("RequestLimitExceeded")),
        "{batch}"
    );
    for ((account, region), id) in &fleet {
        let want = if region == "us-east-1" {
            "stopped"
        } else {
            "running"
        };
        assert_eq!(
            org.state(account, region, id).await,
            want,
            "{account}/{region}"
        );
    }

    // Delivered again (the failed messages only) once the throttling is over:
    // eu-west-1 is done then, and only the locked account still fails.
    org.emulator
        .control("POST", "/_fleetops/faults", Some(&json!({"rules": []})));
    // As after the visibility timeout: the failed messages are visible again.
    let (records, batch) = &first[0];
    let failed_ids: Vec<&str> = batch["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    for record in records {
        if failed_ids.contains(&record["messageId"].as_str().unwrap_or_default()) {
            sqs.change_message_visibility()
                .queue_url(&queue)
                .receipt_handle(record["receiptHandle"].as_str().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await
                .expect("visible again");
        }
    }
    let redelivered = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    assert_eq!(
        redelivered.messages().len(),
        5,
        "only the failed ones are left"
    );
    let records: Vec<Value> = redelivered
        .messages()
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                   "body": m.body(), "eventSource": "aws:sqs", "awsRegion": REGIONS[0]})
        })
        .collect();
    let again = function
        .invoke(&json!({ "Records": records }))
        .output()
        .clone();
    assert_eq!(
        again["batchItemFailures"].as_array().map(Vec::len),
        Some(2),
        "{again}"
    );
    for ((account, region), id) in &fleet {
        assert_eq!(
            org.state(account, region, id).await,
            "stopped",
            "{account}/{region}"
        );
    }
}
