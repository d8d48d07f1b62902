//! A function binary under `cargo lambda watch`'s Lambda runtime emulator,
//! invoked with `cargo lambda invoke` exactly as a developer would.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{free_port, repo_root, venv_bin};

pub struct LambdaFunction {
    watch: Child,
    function: Child,
    port: u16,
    log_path: PathBuf,
}

/// What one invocation returned.
#[derive(Debug)]
pub struct Invocation {
    /// The function's JSON result, or its error text.
    pub result: Result<Value, String>,
}

impl Invocation {
    pub fn output(&self) -> &Value {
        match &self.result {
            Ok(value) => value,
            Err(error) => panic!("the invocation failed: {error}"),
        }
    }

    pub fn error(&self) -> &str {
        match &self.result {
            Ok(value) => panic!("the invocation succeeded: {value}"),
            Err(error) => error,
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

fn cargo_lambda() -> Command {
    let mut command = Command::new(venv_bin("cargo-lambda"));
    command.arg("lambda");
    command
}

impl LambdaFunction {
    /// Starts the runtime API emulator and the debug binary `name` (built by
    /// `make test` before the tests run) connected to it, with `env`.
    pub fn start(name: &str, env: &[(String, String)]) -> Self {
        Self::start_with_timeout(name, env, None)
    }

    /// As `start`, with the function timeout (the invocation's deadline) set
    /// to `timeout_seconds` instead of cargo lambda's default.
    pub fn start_with_timeout(
        name: &str,
        env: &[(String, String)],
        timeout_seconds: Option<u64>,
    ) -> Self {
        // Checked before anything is started, so a missing binary leaks nothing.
        let binary = target_dir().join("debug").join(name);
        assert!(
            binary.exists(),
            "{} is not built; run `cargo build --workspace` first",
            binary.display()
        );
        let port = free_port();
        let mut watch = cargo_lambda()
            .args([
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .args(
                timeout_seconds
                    .map(|t| vec!["--timeout".to_string(), t.to_string()])
                    .unwrap_or_default(),
            )
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting cargo lambda watch (run `make setup` first): {e}")
            });
        // A `Child` is not killed on drop: stop watch before any panic.
        if let Err(panic) = std::panic::catch_unwind(|| wait_for_port(port)) {
            let _ = watch.kill();
            let _ = watch.wait();
            std::panic::resume_unwind(panic);
        }

        let log_path = std::env::temp_dir().join(format!("fleetops-{name}-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("function log file");
        let function = Command::new(&binary)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // `--only-lambda-apis` serves the default function `_` under `/.rt`.
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Self {
            watch,
            function,
            port,
            log_path,
        }
    }

    /// Starts `cargo lambda invoke` with `event` without waiting for it.
    pub fn spawn_invoke(&self, event: &Value) -> Child {
        self.invoke_command(event)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running cargo lambda invoke")
    }

    /// Kills the function process mid-invocation, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
    }

    fn invoke_command(&self, event: &Value) -> Command {
        let mut command = cargo_lambda();
        command
            .args([
                "invoke",
                "_",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .args(["--output-format", "json", "--data-ascii"])
            .arg(event.to_string())
            .current_dir(repo_root());
        command
    }

    /// Invokes the function with `event` through `cargo lambda invoke`.
    pub fn invoke(&self, event: &Value) -> Invocation {
        let output: Output = self
            .invoke_command(event)
            .output()
            .expect("running cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if output.status.success() {
            let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
                panic!("the function's output is not JSON ({e}): {stdout}\n{stderr}")
            });
            Invocation { result: Ok(value) }
        } else {
            // cargo lambda draws errors in a box wrapped at 80 columns; unwrap it
            // so a test can search the message.
            let raw = format!("{stdout}{stderr}");
            let text: Vec<&str> = raw
                .split_whitespace()
                .filter(|w| !matches!(*w, "×" | "│"))
                .collect();
            Invocation {
                result: Err(text.join(" ")),
            }
        }
    }

    /// The function's log lines so far (JSON lines from tracing).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
        let _ = self.watch.kill();
        let _ = self.watch.wait();
        // FLEETOPS_KEEP_LOGS=1 keeps the function's log for a failing test.
        if std::env::var_os("FLEETOPS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}
