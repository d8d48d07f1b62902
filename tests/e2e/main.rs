//! End-to-end tests: the real function binaries under `cargo lambda`, against
//! the moto emulator. One test binary (ripgrep's layout) so the AWS SDK links once.

mod cli;
mod fleet;
mod metrics;
mod patch;
mod patch_once;
mod patch_wake;
mod report;
mod scheduler;
mod scheduler_changes;
mod scheduler_steady;
