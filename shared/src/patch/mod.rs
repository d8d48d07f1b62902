//! patch-dispatcher: patches every instance an Auto Scaling group launches
//! (lifecycle hook, event-driven completion, sweep) and patch groups on a schedule.

pub mod autoscaling;
mod decide;
mod dispatch;
mod error;
mod events;
mod launch;
mod scheduled;
mod settings;
pub mod ssm;
pub mod state;
pub mod store;
mod summary;
mod sweep;
mod wake;
pub mod wake_state;

pub use decide::{
    decide_launch, is_final, patch_group, snapshot_id, validate_max_concurrency,
    validate_max_errors, verdict, LaunchDecision, PatchStateView,
};
pub use dispatch::{dispatch, Clients};
pub use error::PatchError;
pub use events::{
    parse_event, CommandFinishedDetail, CommandStatusDetail, EventError, LaunchDetail, Operation,
    PatchRequest, RebootOption, ScheduledPatch, Trigger, COMMAND_FINISHED_DETAIL_TYPE,
    COMMAND_STATUS_DETAIL_TYPE, LAUNCHING, LAUNCH_DETAIL_TYPE, PATCH_DOCUMENT,
};
pub use settings::{LifecycleResult, OnFailure, PatchSettings};
pub use summary::{CommandSent, Failure, LifecycleAction, Returned, Skipped, Summary};
