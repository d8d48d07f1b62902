//! The local AWS account: moto in server mode with fleetops' extension.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{repo_root, venv_bin};

pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    port: u16,
}

impl Emulator {
    /// Starts the emulator on a free loopback port and waits until it serves.
    pub fn start() -> Self {
        let script = repo_root().join("tests/emulator/server.py");
        let mut child = Command::new(venv_bin("python"))
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0"])
            // The server exits when its stdin closes, so it dies with us.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the emulator (run `make setup` first): {e}"));
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("FLEETOPS_EMULATOR_READY ") {
                        break url.trim().to_string();
                    }
                }
                other => panic!("the emulator exited before it was ready: {other:?}"),
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the emulator's endpoint");
        Self {
            child,
            endpoint,
            port,
        }
    }

    /// SDK configuration pointed at the emulator, as a function would build it
    /// from `AWS_ENDPOINT_URL`.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "emulator",
            ))
            .load()
            .await
    }

    /// The environment a function needs to talk to the emulator.
    pub fn function_env(&self, region: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", region),
            ("AWS_DEFAULT_REGION", region),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn env_with(&self, region: &str, extra_env: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.function_env(region);
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// The function binary `name` under cargo lambda, talking to the emulator
    /// in `region`, with `extra_env` on top.
    pub fn start_function(
        &self,
        name: &str,
        region: &str,
        extra_env: &[(&str, &str)],
    ) -> crate::LambdaFunction {
        crate::LambdaFunction::start(name, &self.env_with(region, extra_env))
    }

    /// As `start_function`, with the invocation deadline `timeout_seconds` away.
    pub fn start_function_with_timeout(
        &self,
        name: &str,
        region: &str,
        extra_env: &[(&str, &str)],
        timeout_seconds: u64,
    ) -> crate::LambdaFunction {
        crate::LambdaFunction::start_with_timeout(
            name,
            &self.env_with(region, extra_env),
            Some(timeout_seconds),
        )
    }

    /// Calls the emulator's control plane (`/_fleetops/...`).
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the emulator");
        stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
            self.port,
            payload.len()
        );
        stream
            .write_all(request.as_bytes())
            .expect("send to the emulator");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read from the emulator");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or((response.as_str(), ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "{method} {path}: {head}\n{body}"
        );
        if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"))
        }
    }

    /// API calls the emulator has served, by `service:Operation`.
    pub fn calls(&self) -> std::collections::BTreeMap<String, u64> {
        let value = self.control("GET", "/_fleetops/calls", None);
        serde_json::from_value(value["calls"].clone()).expect("call counts")
    }

    /// Response body bytes per operation since the last reset.
    pub fn bytes(&self) -> std::collections::BTreeMap<String, u64> {
        let value = self.control("GET", "/_fleetops/calls", None);
        serde_json::from_value(value["bytes"].clone()).expect("response bytes")
    }

    pub fn reset_calls(&self) {
        self.control(
            "POST",
            "/_fleetops/calls/reset",
            Some(&serde_json::json!({})),
        );
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
