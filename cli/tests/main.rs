//! The `fleetops` binary, run as a user runs it: golden `check` output on real
//! mistakes, `preview --json` against an independent minute-by-minute
//! reference, help and exit codes. One test binary (the workspace's layout).
//! AWS (`plan`, `push`) is tested end to end in tests/e2e/cli.rs.

mod check;
mod preview;
mod reference;
mod usage;

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of the binary printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `fleetops ARGS` in `dir`, with no AWS configuration around it.
pub fn fleetops(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_fleetops"))
        .args(args)
        .current_dir(dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("running fleetops");
    Run {
        code: output.status.code().expect("an exit code, not a signal"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

/// `cli/tests/golden/...`
pub fn golden_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(sub)
}

/// A scratch directory for this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleetops-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}
