//! End-to-end tests: the real function binaries under `cargo lambda`, against
//! the moto emulator. One test binary (ripgrep's layout) so the AWS SDK links once.

mod cli;
mod patch;
mod patch_once;
mod report;
mod scheduler;
mod scheduler_changes;
