//! instance-scheduler: stops and starts tagged EC2 instances on schedules.

pub mod ec2;
mod fleet;
pub mod id_split;
mod instance;
pub mod pacing;
mod patching;
mod plan;
pub mod read;
pub mod read_plan;
mod settings;
pub mod tag_page;
pub mod tag_page_client;
mod tick;

pub use fleet::{
    parse_work_batch, queue_units, run_units, run_work_batch, BatchItemFailure, FleetTickSummary,
    Located, UnitDone, UnitMessage, WorkItem,
};
pub use instance::{Instance, InstanceState, StateReason};
pub use plan::{
    override_keeps_stopped, plan_tick, wants_running, Action, Failed, Marker, PlannedAction,
    PlannedMark, PlannedWakeEnd, Skipped, TickPlan, Warning, APPLIED_TAG, ASG_TAG, MAX_TAGS,
    OVERRIDE_TAG,
};
pub use settings::{
    parse_flag, parse_tick_event, EnvError, EventError, SchedulerSettings, TickRequest,
};
pub use tick::{
    read_schedules, run_tick, run_tick_with_schedules, RegionClient, TickError, TickSummary,
};

#[cfg(test)]
mod plan_tests;
