//! What can go wrong while dispatching, each carrying the instance, command or
//! parameter involved and the SDK error it came from.

use aws_sdk_autoscaling::operation::complete_lifecycle_action::CompleteLifecycleActionError;
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesError;
use aws_sdk_autoscaling::operation::describe_lifecycle_hooks::DescribeLifecycleHooksError;
use aws_sdk_autoscaling::operation::record_lifecycle_action_heartbeat::RecordLifecycleActionHeartbeatError;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;
use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationError;
use aws_sdk_ssm::operation::describe_instance_patch_states::DescribeInstancePatchStatesError;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationError;
use aws_sdk_ssm::operation::put_parameter::PutParameterError;
use aws_sdk_ssm::operation::send_command::SendCommandError;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("reading the tags of {instance_id} failed")]
    Tags {
        instance_id: String,
        #[source]
        source: SdkError<DescribeInstancesError>,
    },
    #[error("instance {instance_id} does not exist in EC2")]
    NoSuchInstance { instance_id: String },
    #[error("reading state parameter {name} failed")]
    StateRead {
        name: String,
        #[source]
        source: crate::ssm::ParameterError,
    },
    #[error("writing state parameter {name} failed")]
    StateWrite {
        name: String,
        #[source]
        source: SdkError<PutParameterError>,
    },
    #[error("state parameter {name} is not a fleetops record")]
    StateCorrupt {
        name: String,
        #[source]
        source: serde_json::Error,
    },
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
    /// The instance the error is about, if any.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            PatchError::Tags { instance_id, .. }
            | PatchError::NoSuchInstance { instance_id }
            | PatchError::Agent { instance_id, .. }
            | PatchError::Invocation { instance_id, .. }
            | PatchError::PatchState { instance_id, .. }
            | PatchError::Complete { instance_id, .. }
            | PatchError::Heartbeat { instance_id, .. } => Some(instance_id),
            _ => None,
        }
    }
}
