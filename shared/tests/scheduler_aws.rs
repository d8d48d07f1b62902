//! The scheduler's AWS error paths with `aws-smithy-mocks`: throttling, a
//! batch with one instance in the wrong state, a missing parameter, paging.

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_ec2::operation::stop_instances::StopInstancesOutput;
use aws_sdk_ec2::types::{
    Instance, InstanceState, InstanceStateName, Reservation, ResourceType, Tag, TagDescription,
};
use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
use aws_sdk_ssm::types::error::ParameterNotFound;
use aws_sdk_ssm::types::Parameter;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use fleetops::aws::retry_config;
use fleetops::scheduler::ec2::{
    change_state, change_state_until, StateChange, NOT_ATTEMPTED, NOT_SENT_THROTTLED, NO_ANSWER,
};
use fleetops::scheduler::read::describe_scheduled_instances;
use fleetops::scheduler::{run_tick, RegionClient, SchedulerSettings, TickError, TickRequest};

const THROTTLED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r-1</RequestID></Response>"#;

fn incorrect_state(id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>IncorrectInstanceState</Code><Message>This instance '{id}' is not in a state from which it can be stopped.</Message></Error></Errors><RequestID>r-2</RequestID></Response>"#
    )
}

fn fast_retries(config: aws_sdk_ec2::config::Builder) -> aws_sdk_ec2::config::Builder {
    config.retry_config(retry_config().with_initial_backoff(std::time::Duration::from_millis(1)))
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("i-{i:017x}")).collect()
}

#[tokio::test]
async fn given_throttling_when_stopping_then_the_call_is_retried_until_it_succeeds() {
    let stop = mock!(aws_sdk_ec2::Client::stop_instances)
        .sequence()
        .http_status(503, Some(THROTTLED.to_string()))
        .times(2)
        .output(|| StopInstancesOutput::builder().build())
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&stop], fast_retries);
    let wanted = ids(0..3);
    let outcome = change_state(&ec2, StateChange::Stop { hibernate: false }, &wanted).await;
    assert_eq!(outcome.done, wanted);
    assert!(outcome.failed.is_empty());
    assert_eq!(stop.num_calls(), 3);
}

#[tokio::test]
async fn given_one_instance_in_a_wrong_state_when_stopping_a_batch_then_only_it_fails() {
    let bad = "i-00000000000000005".to_string();
    let named_bad = bad.clone();
    let rejects_bad = mock!(aws_sdk_ec2::Client::stop_instances)
        .match_requests(move |r| r.instance_ids().contains(&named_bad))
        .sequence()
        .http_status(400, Some(incorrect_state(&bad)))
        .repeatedly()
        .build();
    let accepts_rest = mock!(aws_sdk_ec2::Client::stop_instances)
        .sequence()
        .output(|| StopInstancesOutput::builder().build())
        .repeatedly()
        .build();
    let ec2 = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&rejects_bad, &accepts_rest],
        fast_retries
    );
    let wanted = ids(0..1500);
    let outcome = change_state(&ec2, StateChange::Stop { hibernate: false }, &wanted).await;
    assert_eq!(outcome.failed.len(), 1, "{:?}", outcome.failed);
    assert_eq!(outcome.failed[0].0, "i-00000000000000005");
    assert!(
        outcome.failed[0].1.contains("IncorrectInstanceState"),
        "{}",
        outcome.failed[0].1
    );
    assert_eq!(outcome.done.len(), 1499);
    // Two batches of 1000 and 500; the first rejected once, then retried without the bad one.
    assert_eq!((rejects_bad.num_calls(), accepts_rest.num_calls()), (1, 2));
}

/// StartInstances throttled at every attempt, and a client with fast retries.
fn always_throttled_starts() -> (aws_smithy_mocks::Rule, aws_sdk_ec2::Client) {
    let start = mock!(aws_sdk_ec2::Client::start_instances)
        .sequence()
        .http_status(503, Some(THROTTLED.to_string()))
        .repeatedly()
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&start], fast_retries);
    (start, ec2)
}

#[tokio::test]
async fn given_throttling_that_never_ends_then_the_batch_fails_with_the_code_and_is_not_split() {
    let (start, ec2) = always_throttled_starts();
    let outcome = change_state(&ec2, StateChange::Start, &ids(0..4)).await;
    assert_eq!(outcome.failed.len(), 4);
    assert!(
        outcome.failed[0].1.contains("RequestLimitExceeded"),
        "{}",
        outcome.failed[0].1
    );
    assert_eq!(start.num_calls(), fleetops::aws::MAX_ATTEMPTS as usize);
}

fn tagged(id: &str, state: InstanceStateName) -> Instance {
    Instance::builder()
        .instance_id(id)
        .state(InstanceState::builder().name(state).build())
        .tags(Tag::builder().key("Schedule").value("office").build())
        .build()
}

#[tokio::test]
async fn given_ec2_throttling_a_kind_past_the_retries_then_its_later_batches_are_not_sent() {
    // A big transition against EC2's start bucket (1000 instances, then 2 a
    // second): once a batch is refused past the retries, the rest would be too.
    let (start, ec2) = always_throttled_starts();
    let outcome = change_state(&ec2, StateChange::Start, &ids(0..6000)).await;
    assert_eq!(outcome.failed.len(), 6000);
    // The first four batches were in flight together; the other two never left.
    assert_eq!(start.num_calls(), 4 * fleetops::aws::MAX_ATTEMPTS as usize);
    let not_sent = outcome
        .failed
        .iter()
        .filter(|(_, why)| why == NOT_SENT_THROTTLED)
        .count();
    assert_eq!(not_sent, 2000);
}

#[tokio::test]
async fn given_two_pages_of_instances_then_both_are_read() {
    let pages = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .output(|| {
            DescribeInstancesOutput::builder()
                .reservations(
                    Reservation::builder()
                        .instances(tagged("i-1", InstanceStateName::Running))
                        .build(),
                )
                .next_token("page-2")
                .build()
        })
        .output(|| {
            DescribeInstancesOutput::builder()
                .reservations(
                    Reservation::builder()
                        .instances(tagged("i-2", InstanceStateName::Stopped))
                        .build(),
                )
                .build()
        })
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&pages], fast_retries);
    let found = describe_scheduled_instances(&ec2, "eu-west-1", "Schedule")
        .await
        .expect("describe");
    assert_eq!(
        found
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect::<Vec<_>>(),
        ["i-1", "i-2"]
    );
    assert_eq!(pages.num_calls(), 2);
}

fn settings() -> SchedulerSettings {
    SchedulerSettings {
        schedule_tag: "Schedule".into(),
        schedules_parameter: "/fleetops/schedules".into(),
        dry_run: false,
        regions: vec!["eu-west-1".into()],
    }
}

fn request() -> TickRequest {
    TickRequest {
        now: "2026-11-26T18:05:00Z".parse().expect("time"),
        dry_run: false,
        act_until: None,
        memory: None,
    }
}

#[tokio::test]
async fn given_a_missing_schedules_parameter_then_the_tick_fails_before_touching_ec2() {
    let missing = mock!(aws_sdk_ssm::Client::get_parameter)
        .then_error(|| GetParameterError::ParameterNotFound(ParameterNotFound::builder().build()));
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let ssm = mock_client!(aws_sdk_ssm, [&missing]);
    let ec2 = mock_client!(aws_sdk_ec2, [&describe]);
    let regions = [RegionClient {
        region: "eu-west-1".into(),
        ec2,
        ssm: ssm.clone(),
    }];
    let error = run_tick(&ssm, &regions, &settings(), request())
        .await
        .expect_err("must fail");
    assert!(
        matches!(
            error,
            TickError::Parameter(fleetops::ssm::ParameterError::Missing { .. })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("/fleetops/schedules"));
    assert_eq!(describe.num_calls(), 0);
}

#[tokio::test]
async fn given_a_valid_document_then_a_tick_stops_and_marks_through_the_sdk() {
    let document = r#"{"schedules": {"office": {"periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]}}}"#;
    let parameter = mock!(aws_sdk_ssm::Client::get_parameter).then_output(move || {
        GetParameterOutput::builder()
            .parameter(Parameter::builder().value(document).build())
            .build()
    });
    // The deciding tags first: i-1 carries `office` and no marker, so it is
    // read in full (with its schedule's other unmarked instances).
    let tags = mock!(aws_sdk_ec2::Client::describe_tags)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.values().contains(&"Schedule".to_string()))
        })
        .then_output(|| {
            DescribeTagsOutput::builder()
                .tags(
                    TagDescription::builder()
                        .resource_id("i-1")
                        .resource_type(ResourceType::Instance)
                        .key("Schedule")
                        .value("office")
                        .build(),
                )
                .build()
        });
    let other_tags = mock!(aws_sdk_ec2::Client::describe_tags)
        .then_output(|| DescribeTagsOutput::builder().build());
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        DescribeInstancesOutput::builder()
            .reservations(
                Reservation::builder()
                    .instances(tagged("i-1", InstanceStateName::Running))
                    .build(),
            )
            .build()
    });
    let stop = mock!(aws_sdk_ec2::Client::stop_instances)
        .then_output(|| StopInstancesOutput::builder().build());
    let tag = mock!(aws_sdk_ec2::Client::create_tags)
        .match_requests(|r| {
            // `<instant> <digest> <schedule>`.
            r.resources() == ["i-1"]
                && r.tags()[0].value().is_some_and(|v| {
                    v.starts_with("2026-11-26T18:00:00Z ") && v.ends_with(" office")
                })
        })
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let ssm = mock_client!(aws_sdk_ssm, [&parameter]);
    let ec2 = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&tags, &other_tags, &describe, &stop, &tag]
    );
    // Before stopping: which instances are patching (none), one call.
    let nothing_patching = mock!(aws_sdk_ssm::Client::list_commands).then_output(|| {
        aws_sdk_ssm::operation::list_commands::ListCommandsOutput::builder().build()
    });
    let regions = [RegionClient {
        region: "eu-west-1".into(),
        ec2,
        ssm: mock_client!(aws_sdk_ssm, [&nothing_patching]),
    }];
    let summary = run_tick(&ssm, &regions, &settings(), request())
        .await
        .expect("tick");
    assert_eq!(summary.stopped, ["i-1"]);
    assert_eq!((stop.num_calls(), tag.num_calls()), (1, 1));
    // Three DescribeTags chains (schedule tag, marker, rare keys), the first
    // two split by instance id (a probe, then one group of the rest); the
    // full reads: with the tags, `office`'s instances not stopped; after
    // them, the rest of `office` (all unmarked) and spot instances.
    assert_eq!((tags.num_calls(), other_tags.num_calls()), (2, 3));
    assert_eq!(describe.num_calls(), 3);
    assert_eq!(nothing_patching.num_calls(), 1);
}

#[tokio::test]
async fn given_describe_tags_throttled_past_the_retries_then_the_region_fails_and_nothing_is_done()
{
    let document = r#"{"schedules": {"office": {"periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]}}}"#;
    let parameter = mock!(aws_sdk_ssm::Client::get_parameter).then_output(move || {
        GetParameterOutput::builder()
            .parameter(Parameter::builder().value(document).build())
            .build()
    });
    let throttled = mock!(aws_sdk_ec2::Client::describe_tags)
        .sequence()
        .http_status(503, Some(THROTTLED.to_string()))
        .repeatedly()
        .build();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let stop = mock!(aws_sdk_ec2::Client::stop_instances)
        .then_output(|| StopInstancesOutput::builder().build());
    let ssm = mock_client!(aws_sdk_ssm, [&parameter]);
    let ec2 = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&throttled, &describe, &stop],
        fast_retries
    );
    let regions = [RegionClient {
        region: "eu-west-1".into(),
        ec2,
        ssm: ssm.clone(),
    }];
    let error = run_tick(&ssm, &regions, &settings(), request())
        .await
        .expect_err("the region cannot be read");
    let TickError::Regions { failures, summary } = &error else {
        panic!("{error}");
    };
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].operation, "DescribeTags");
    assert!(
        failures[0].message.contains("RequestLimitExceeded"),
        "{error}"
    );
    assert!(summary.stopped.is_empty() && summary.started.is_empty());
    // Only the queries sent with the tags (the schedule's instances out of
    // state, spot instances); nothing after them, nothing stopped.
    assert_eq!((describe.num_calls(), stop.num_calls()), (2, 0));
}

/// An EC2 endpoint that accepts connections and never answers (EC2
/// throttling a call while the SDK backs off looks the same from here).
async fn silent_ec2() -> aws_sdk_ec2::Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::for_tests())
        .endpoint_url(format!("http://{address}"))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

#[tokio::test]
async fn given_no_answer_before_the_invocations_time_runs_out_then_the_batch_fails_saying_so() {
    let ec2 = silent_ec2().await;
    let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let started = std::time::Instant::now();
    let outcome = change_state_until(&ec2, StateChange::Start, &ids(0..1200), Some(until)).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(outcome.done.is_empty());
    assert_eq!(outcome.failed.len(), 1200);
    assert!(outcome.failed.iter().all(|(_, why)| why == NO_ANSWER));
}

#[tokio::test]
async fn given_the_invocations_time_already_spent_then_nothing_is_sent() {
    let start = mock!(aws_sdk_ec2::Client::start_instances).then_output(|| {
        aws_sdk_ec2::operation::start_instances::StartInstancesOutput::builder().build()
    });
    let ec2 = mock_client!(aws_sdk_ec2, [&start]);
    let outcome = change_state_until(
        &ec2,
        StateChange::Start,
        &ids(0..3),
        Some(std::time::Instant::now()),
    )
    .await;
    assert_eq!(start.num_calls(), 0);
    assert!(outcome.failed.iter().all(|(_, why)| why == NOT_ATTEMPTED));
    assert_eq!(outcome.failed.len(), 3);
}
