//! instance-scheduler: stops and starts tagged EC2 instances on schedules.

pub mod ec2;
mod instance;
mod patching;
mod plan;
mod settings;
mod tick;

pub use instance::{Instance, InstanceState, StateReason};
pub use plan::{
    plan_tick, Action, Failed, Marker, PlannedAction, PlannedMark, Skipped, TickPlan, Warning,
    APPLIED_TAG, ASG_TAG, MAX_TAGS, OVERRIDE_TAG,
};
pub use settings::{
    parse_flag, parse_tick_event, EnvError, EventError, SchedulerSettings, TickRequest,
};
pub use tick::{run_tick, run_tick_with_schedules, RegionClient, TickError, TickSummary};

#[cfg(test)]
mod plan_tests;
