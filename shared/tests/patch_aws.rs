//! The patch dispatcher's AWS error paths with `aws-smithy-mocks`: throttling
//! on SendCommand, and a fresh instance whose agent SSM does not know yet.

use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Instance, Reservation, Tag};
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
use aws_sdk_ssm::operation::send_command::{SendCommandError, SendCommandOutput};
use aws_sdk_ssm::types::error::InvalidInstanceId;
use aws_sdk_ssm::types::{Command, InstanceInformation, PingStatus};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use fleetops::aws::retry_config;
use fleetops::patch::ssm::{send_launch_command, send_scheduled_command, CommandTarget, Sent};
use fleetops::patch::{
    dispatch, parse_event, Clients, Operation, PatchSettings, RebootOption, ScheduledPatch,
};

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

fn fast_retries(config: aws_sdk_ssm::config::Builder) -> aws_sdk_ssm::config::Builder {
    config.retry_config(retry_config().with_initial_backoff(std::time::Duration::from_millis(1)))
}

fn command(id: &str) -> SendCommandOutput {
    SendCommandOutput::builder()
        .command(Command::builder().command_id(id).build())
        .build()
}

fn web_install() -> ScheduledPatch {
    ScheduledPatch {
        patch_group: "web".into(),
        operation: Operation::Install,
        max_concurrency: "10%".into(),
        max_errors: "1".into(),
        reboot: RebootOption::RebootIfNeeded,
        time: None,
        wake_window: None,
    }
}

#[tokio::test]
async fn given_throttling_when_sending_the_scheduled_command_then_it_is_retried_and_sent_once() {
    let send = mock!(aws_sdk_ssm::Client::send_command)
        .sequence()
        .http_status(400, Some(THROTTLED.to_string()))
        .times(2)
        .output(|| command("cmd-1"))
        .build();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&send], fast_retries);
    let id = send_scheduled_command(
        &ssm,
        &web_install(),
        &CommandTarget::PatchGroupTag("web"),
        Some("snap"),
        "fleetops f1 scheduled Install of web",
        None,
    )
    .await
    .expect("sent after retries");
    assert_eq!(id, "cmd-1");
    assert_eq!(send.num_calls(), 3);
}

#[tokio::test]
async fn given_throttling_that_never_ends_then_the_error_names_the_target_and_keeps_the_code() {
    let send = mock!(aws_sdk_ssm::Client::send_command)
        .sequence()
        .http_status(400, Some(THROTTLED.to_string()))
        .repeatedly()
        .build();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&send], fast_retries);
    let error = send_scheduled_command(
        &ssm,
        &web_install(),
        &CommandTarget::PatchGroupTag("web"),
        None,
        "fleetops f1 scheduled Install of web",
        None,
    )
    .await
    .unwrap_err();
    let text = fleetops::error_text(&error);
    assert!(
        text.contains("tag:Patch Group=web") && text.contains("ThrottlingException"),
        "{text}"
    );
    assert_eq!(send.num_calls(), fleetops::aws::MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn given_a_fresh_instance_then_invalid_instance_id_is_not_final() {
    let send = mock!(aws_sdk_ssm::Client::send_command).then_error(|| {
        SendCommandError::InvalidInstanceId(
            InvalidInstanceId::builder()
                .message("Instances [[i-1]] not in a valid state")
                .build(),
        )
    });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&send], fast_retries);
    assert_eq!(
        send_launch_command(&ssm, "i-1", "test")
            .await
            .expect("not an error"),
        Sent::NotRegistered
    );
}

#[tokio::test(start_paused = true)]
async fn given_a_launch_whose_agent_registers_late_when_dispatching_then_the_command_is_sent_on_retry(
) {
    let tags = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        DescribeInstancesOutput::builder()
            .reservations(
                Reservation::builder()
                    .instances(
                        Instance::builder()
                            .instance_id("i-1234567890abcdef0")
                            .tags(Tag::builder().key("Patch Group").value("web").build())
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&tags]);
    let no_record =
        mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let create = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(pk)"))
        .then_output(|| PutItemOutput::builder().build());
    let update = mock!(aws_sdk_dynamodb::Client::update_item)
        .sequence()
        .output(|| UpdateItemOutput::builder().build())
        .repeatedly()
        .build();
    let dynamodb = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&no_record, &create, &update]
    );
    let online = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .sequence()
        .output(|| {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    InstanceInformation::builder()
                        .instance_id("i-1234567890abcdef0")
                        .ping_status(PingStatus::Online)
                        .build(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let send = mock!(aws_sdk_ssm::Client::send_command)
        .sequence()
        .error(|| SendCommandError::InvalidInstanceId(InvalidInstanceId::builder().build()))
        .times(2)
        .output(|| command("cmd-late"))
        .build();
    let ssm = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        [&online, &send],
        fast_retries
    );
    let autoscaling = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, []);
    let clients = Clients {
        ssm,
        autoscaling,
        ec2,
        dynamodb,
    };
    let settings = PatchSettings::from_env(|name| match name {
        "AGENT_POLL_INTERVAL_SECONDS" => Some("1".to_string()),
        "STATE_TABLE" => Some("fleetops-state".to_string()),
        "GROUP_OPT_IN_TAG" => Some(String::new()),
        _ => None,
    })
    .expect("settings");
    let request = parse_event(
        &serde_json::from_str(include_str!(
            "../../events/patch-dispatcher-lifecycle-launch.json"
        ))
        .expect("json"),
    )
    .expect("event");
    let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    let summary = dispatch(&clients, &settings, request, deadline)
        .await
        .expect("dispatched");
    assert_eq!(summary.commands.len(), 1, "{summary:?}");
    assert_eq!(summary.commands[0].command_id.as_deref(), Some("cmd-late"));
    assert!(summary.lifecycle_actions.is_empty());
    assert_eq!(send.num_calls(), 3);
    // The claim (a conditional create), then conditional updates:
    // "sending", back to "claimed" after InvalidInstanceId (twice), "sending"
    // again, and the command id.
    assert_eq!(create.num_calls(), 1);
    assert_eq!(update.num_calls(), 6);
}

#[tokio::test]
async fn given_a_claim_that_another_invocation_made_first_then_the_create_reports_the_conflict() {
    let lost = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, [&lost]);
    let store = fleetops::patch::store::Store {
        client,
        table: "fleetops-state".into(),
    };
    let record = serde_json::json!({"x": 1});
    let item = fleetops::patch::store::Item {
        key: "launch#i-1",
        kind: "launch",
        state: "claimed",
        record: &record,
        expires_at: jiff::Timestamp::now(),
    };
    assert_eq!(store.create(&item).await.expect("not an error"), None);
    assert_eq!(lost.num_calls(), 1);
}
