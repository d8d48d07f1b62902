//! fleetops: the logic behind the fleetops Lambda functions, as pure functions
//! over plain data, plus the small adapters that make the AWS calls.

pub mod accounts;
pub mod aws;
pub mod input;
pub mod metrics;
pub mod patch;
pub mod report;
pub mod schedule;
pub mod scheduler;
pub mod sqs;
pub mod ssm;
pub mod tags;

pub use aws::error_text;
