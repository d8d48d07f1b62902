//! The reporter's AWS reads with `aws-smithy-mocks`: DescribeInstancePatchStates
//! in batches of 50, throttling retried, and a batch that never recovers
//! reported as missing data for exactly its instances.

use aws_sdk_ssm::operation::describe_instance_patch_states::DescribeInstancePatchStatesOutput;
use aws_sdk_ssm::types::{InstancePatchState, PatchOperationType};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::DateTime;
use fleetops::aws::{retry_config, MAX_ATTEMPTS};
use fleetops::report::gather::{describe_patch_states, PATCH_STATE_BATCH};

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

fn fast_retries(config: aws_sdk_ssm::config::Builder) -> aws_sdk_ssm::config::Builder {
    config.retry_config(retry_config().with_initial_backoff(std::time::Duration::from_millis(1)))
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("i-{i:017x}")).collect()
}

fn state(id: &str) -> InstancePatchState {
    InstancePatchState::builder()
        .instance_id(id)
        .patch_group("web")
        .baseline_id("pb-0123456789abcdef0")
        .operation(PatchOperationType::Scan)
        .operation_start_time(DateTime::from_secs(1_764_000_000))
        .operation_end_time(DateTime::from_secs(1_764_000_060))
        .missing_count(1)
        .build()
        .expect("a complete patch state")
}

#[tokio::test]
async fn given_120_instances_then_patch_states_are_read_in_batches_of_at_most_50() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let record = seen.clone();
    let rule =
        mock!(aws_sdk_ssm::Client::describe_instance_patch_states).then_compute_output(move |r| {
            if let Ok(mut sizes) = record.lock() {
                sizes.push(r.instance_ids().len());
            }
            DescribeInstancePatchStatesOutput::builder()
                .set_instance_patch_states(Some(
                    r.instance_ids().iter().map(|id| state(id)).collect(),
                ))
                .build()
        });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&rule], fast_retries);
    let (states, gaps) = describe_patch_states(&ssm, &ids(120)).await;
    assert!(gaps.is_empty(), "{gaps:?}");
    assert_eq!(states.len(), 120);
    assert_eq!(rule.num_calls(), 3);
    let mut sizes = seen.lock().expect("sizes").clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [20, PATCH_STATE_BATCH, PATCH_STATE_BATCH]);
    assert_eq!(states[0].missing, 1);
}

#[tokio::test]
async fn given_throttling_then_the_batch_is_retried_until_it_succeeds() {
    let rule = mock!(aws_sdk_ssm::Client::describe_instance_patch_states)
        .sequence()
        .http_status(400, Some(THROTTLED.to_string()))
        .times(3)
        .output(|| {
            DescribeInstancePatchStatesOutput::builder()
                .instance_patch_states(state("i-00000000000000000"))
                .build()
        })
        .build();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule], fast_retries);
    let (states, gaps) = describe_patch_states(&ssm, &ids(1)).await;
    assert!(gaps.is_empty(), "{gaps:?}");
    assert_eq!(states.len(), 1);
    assert_eq!(rule.num_calls(), 4);
}

#[tokio::test]
async fn given_throttling_that_never_ends_then_the_batch_becomes_a_gap_naming_its_instances() {
    let rule = mock!(aws_sdk_ssm::Client::describe_instance_patch_states)
        .sequence()
        .http_status(400, Some(THROTTLED.to_string()))
        .repeatedly()
        .build();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule], fast_retries);
    let (states, gaps) = describe_patch_states(&ssm, &ids(7)).await;
    assert!(states.is_empty());
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].instance_ids, ids(7));
    assert!(
        gaps[0].error.contains("ThrottlingException"),
        "{}",
        gaps[0].error
    );
    assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize);
}

/// One running instance with these tags, as DescribeInstances returns it.
fn ec2_with_tags(tags: &[(&str, &str)]) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::types::{Instance, InstanceState, InstanceStateName, Reservation, Tag};
    let instance = tags.iter().fold(
        Instance::builder().instance_id("i-0000000000000001").state(
            InstanceState::builder()
                .name(InstanceStateName::Running)
                .build(),
        ),
        |b, (k, v)| b.tags(Tag::builder().key(*k).value(*v).build()),
    );
    let output = DescribeInstancesOutput::builder()
        .reservations(Reservation::builder().instances(instance.build()).build())
        .build();
    let rule = mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || output.clone());
    mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule])
}

#[tokio::test]
async fn given_a_blank_patch_group_tag_and_patchgroup_web_then_the_reporter_says_web_like_the_dispatcher(
) {
    let tags = [("Patch Group", ""), ("PatchGroup", "web"), ("Name", "app")];
    let instances = fleetops::report::gather::describe_instances(&ec2_with_tags(&tags))
        .await
        .expect("instances");
    assert_eq!(instances[0].patch_group.as_deref(), Some("web"));
    // The dispatcher's lookup agrees.
    assert_eq!(fleetops::patch::patch_group(tags), Some("web".into()));

    for (tags, expected) in [
        (
            vec![("Patch Group", "db"), ("PatchGroup", "web")],
            Some("db"),
        ),
        (vec![("PatchGroup", "web")], Some("web")),
        (vec![("Patch Group", " "), ("PatchGroup", "")], None),
        (vec![("patch group", "web")], None),
    ] {
        let instances = fleetops::report::gather::describe_instances(&ec2_with_tags(&tags))
            .await
            .expect("instances");
        assert_eq!(instances[0].patch_group.as_deref(), expected, "{tags:?}");
        assert_eq!(
            fleetops::patch::patch_group(tags.iter().copied()).as_deref(),
            expected,
            "{tags:?}"
        );
    }
}
