//! What can go wrong while dispatching, each carrying the instance, command or
//! parameter involved and the SDK error it came from.

use aws_sdk_autoscaling::operation::complete_lifecycle_action::CompleteLifecycleActionError;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsError;
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesError;
use aws_sdk_autoscaling::operation::describe_lifecycle_hooks::DescribeLifecycleHooksError;
use aws_sdk_autoscaling::operation::describe_warm_pool::DescribeWarmPoolError;
use aws_sdk_autoscaling::operation::record_lifecycle_action_heartbeat::RecordLifecycleActionHeartbeatError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;
use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationError;
use aws_sdk_ssm::operation::describe_instance_patch_states::DescribeInstancePatchStatesError;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationError;
use aws_sdk_ssm::operation::list_commands::ListCommandsError;
use aws_sdk_ssm::operation::send_command::SendCommandError;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("reading the tags of {instance_id} failed")]
    Tags {
        instance_id: String,
        #[source]
        source: SdkError<DescribeInstancesError>,
    },
    #[error("reading the stopped instances of patch group {group} to wake failed")]
    WakeCandidates {
        group: String,
        #[source]
        source: SdkError<DescribeInstancesError>,
    },
    #[error("instance {instance_id} does not exist in EC2")]
    NoSuchInstance { instance_id: String },
    #[error("reading state record {key} failed")]
    StateRead {
        key: String,
        #[source]
        source: SdkError<GetItemError>,
    },
    #[error("creating state record {key} failed")]
    StateCreate {
        key: String,
        #[source]
        source: SdkError<PutItemError>,
    },
    #[error("updating state record {key} failed")]
    StateUpdate {
        key: String,
        #[source]
        source: SdkError<UpdateItemError>,
    },
    #[error("state record {key} is not a fleetops record")]
    StateCorrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("state record {key} is malformed: {problem}")]
    StateMalformed { key: String, problem: String },
    #[error("state record {key} kept changing under this invocation")]
    StateContended { key: String },
    #[error("looking up fleetops' command with fence {fence} failed")]
    ListCommands {
        fence: String,
        #[source]
        source: SdkError<ListCommandsError>,
    },
    #[error("the status event of command {command_id} on {instance_id} arrived before its id was recorded; retry")]
    StatusTooEarly {
        command_id: String,
        instance_id: String,
    },
    #[error("reading Auto Scaling group {group} failed")]
    Group {
        group: String,
        #[source]
        source: SdkError<DescribeAutoScalingGroupsError>,
    },
    #[error("reading the warm pool of group {group} failed")]
    WarmPool {
        group: String,
        #[source]
        source: SdkError<DescribeWarmPoolError>,
    },
    #[error("scheduled run {run} is held by another invocation until after this one's deadline: {reason}")]
    RunInProgress { run: String, reason: String },
    #[error(
        "scheduled run {run} is not finished (a retry resumes it without resending): {failed}"
    )]
    RunIncomplete { run: String, failed: String },
    #[error("checking the SSM agent of {instance_id} failed")]
    Agent {
        instance_id: String,
        #[source]
        source: SdkError<DescribeInstanceInformationError>,
    },
    #[error("sending AWS-RunPatchBaseline to {target} failed")]
    SendCommand {
        target: String,
        #[source]
        source: SdkError<SendCommandError>,
    },
    #[error("reading invocation {command_id} on {instance_id} failed")]
    Invocation {
        command_id: String,
        instance_id: String,
        #[source]
        source: SdkError<GetCommandInvocationError>,
    },
    #[error("reading the patch state of {instance_id} failed")]
    PatchState {
        instance_id: String,
        #[source]
        source: SdkError<DescribeInstancePatchStatesError>,
    },
    #[error("completing the lifecycle action of {instance_id} failed")]
    Complete {
        instance_id: String,
        #[source]
        source: SdkError<CompleteLifecycleActionError>,
    },
    #[error("recording a lifecycle heartbeat for {instance_id} failed")]
    Heartbeat {
        instance_id: String,
        #[source]
        source: SdkError<RecordLifecycleActionHeartbeatError>,
    },
    #[error("listing the instances tagged PatchGroup={group} failed")]
    FallbackTagged {
        group: String,
        #[source]
        source: SdkError<DescribeInstancesError>,
    },
    #[error("listing Auto Scaling instances failed")]
    ListInstances {
        #[source]
        source: SdkError<DescribeAutoScalingInstancesError>,
    },
    #[error("reading the lifecycle hooks of group {group} failed")]
    Hooks {
        group: String,
        #[source]
        source: SdkError<DescribeLifecycleHooksError>,
    },
}

impl PatchError {
    /// A failure no retry can mend (the target itself is wrong), as opposed to
    /// throttling, service errors or lost state writes.
    pub fn is_permanent(&self) -> bool {
        match self {
            PatchError::SendCommand { source, .. } => source.as_service_error().is_some_and(|e| {
                e.is_invalid_instance_id()
                    || e.is_invalid_document()
                    || e.is_invalid_parameters()
                    || e.is_unsupported_platform_type()
            }),
            _ => false,
        }
    }

    /// The instance the error is about, if any.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            PatchError::Tags { instance_id, .. }
            | PatchError::NoSuchInstance { instance_id }
            | PatchError::Agent { instance_id, .. }
            | PatchError::Invocation { instance_id, .. }
            | PatchError::PatchState { instance_id, .. }
            | PatchError::Complete { instance_id, .. }
            | PatchError::Heartbeat { instance_id, .. }
            | PatchError::StatusTooEarly { instance_id, .. } => Some(instance_id),
            _ => None,
        }
    }
}
