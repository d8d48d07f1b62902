//! Test support for fleetops' end-to-end tests: the moto emulator (with the
//! extension in `tests/emulator/`) on a free loopback port, SDK clients
//! pointed at it, and the Lambda binaries run under `cargo lambda`'s runtime
//! emulator. Everything started here is stopped on drop.

mod emulator;
mod lambda;

pub use emulator::Emulator;
pub use lambda::{Invocation, LambdaFunction};

use std::path::PathBuf;

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The project's tool venv (`make setup` creates it), or `FLEETOPS_VENV`.
pub fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var_os("FLEETOPS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    venv.join("bin").join(tool)
}

/// A sample event from `events/`.
pub fn event(name: &str) -> serde_json::Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A port that was free a moment ago on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One instance with `tags`, launched with `ec2`; its id.
pub async fn run_tagged(ec2: &aws_sdk_ec2::Client, tags: &[(&str, &str)]) -> String {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (key, value) in tags {
        spec = spec.tags(Tag::builder().key(*key).value(*value).build());
    }
    let out = ec2
        .run_instances()
        .image_id("ami-760aaa0f")
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("run instance");
    out.instances()[0]
        .instance_id()
        .expect("instance id")
        .to_string()
}
