//! `fleetops plan` and `fleetops push` end to end: the real binary
//! (target/debug/fleetops) with the environment a user has (AWS_ENDPOINT_URL
//! pointing at the emulator), against a seeded fleet and Parameter Store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use fleetops_e2e::{repo_root, Emulator};
use serde_json::{json, Value};

use crate::scheduler::{ids, reasons, tags_of, tick_at, Fleet};

const REGION: &str = "us-east-1";
const PARAMETER: &str = "/fleetops/schedules";

const SCHEDULES: &str = r#"{"schedules": {
  "office": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]},
  "seoul-office": {"timezone": "Asia/Seoul", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}], "enforced": true},
  "broken": {"timezone": "KST", "periods": [{"begin": "09:00", "end": "18:00"}]}
}}"#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

fn binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let binary = target.join("debug").join("fleetops");
    assert!(
        binary.exists(),
        "{} is not built; run `cargo build --workspace` first",
        binary.display()
    );
    binary
}

/// `fleetops ARGS` with nothing but the emulator's environment and `extra`.
fn fleetops(emulator: &Emulator, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let output = Command::new(binary())
        .args(args)
        .env_clear()
        .envs(emulator.function_env(REGION))
        .envs(extra.iter().copied())
        .output()
        .expect("running fleetops");
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// A file holding `text`, in a directory of this test process.
fn file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("fleetops-e2e-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing the document");
    path.to_string_lossy().to_string()
}

async fn ssm(fleet: &Fleet) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&fleet.emulator.sdk_config(REGION).await)
}

/// The parameter's value and version.
async fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> (String, i64) {
    let output = ssm
        .get_parameter()
        .name(name)
        .send()
        .await
        .expect("get parameter");
    let parameter = output.parameter().expect("parameter");
    (
        parameter.value().unwrap_or_default().to_string(),
        parameter.version(),
    )
}

/// Every instance's state and tags.
async fn fleet_view(fleet: &Fleet) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let described = fleet
        .ec2
        .describe_instances()
        .send()
        .await
        .expect("describe");
    let states = fleet.states().await;
    states
        .into_iter()
        .map(|(id, state)| {
            let tags = tags_of(&described, &id);
            (id, (state, tags))
        })
        .collect()
}

/// Calls that change something: none may happen during a plan.
fn writes(calls: &BTreeMap<String, u64>) -> Vec<String> {
    calls
        .keys()
        .filter(|op| {
            [
                "ec2:StartInstances",
                "ec2:StopInstances",
                "ec2:CreateTags",
                "ec2:DeleteTags",
                "ssm:PutParameter",
                "ssm:DeleteParameter",
            ]
            .contains(&op.as_str())
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_fleet_when_plan_runs_then_it_shows_the_lambdas_dry_run_and_changes_nothing() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let office = fleet
        .launch(&[("Schedule", "office"), ("Name", "app-1")])
        .await;
    let seoul = fleet.launch(&[("Schedule", "seoul-office")]).await;
    let broken = fleet.launch(&[("Schedule", "broken")]).await;
    let untagged = fleet.launch(&[("Name", "db-1")]).await;
    let before = fleet_view(&fleet).await;
    fleet.emulator.reset_calls();

    // Thursday 18:05 UTC (Friday 03:05 in Seoul): both office schedules stop.
    let at = "2026-11-26T18:05:00Z";
    let plan = fleetops(&fleet.emulator, &["plan", "--at", at, "--json"], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let planned = plan.json();
    assert_eq!(planned["time"], json!(at));
    assert_eq!(planned["dry_run"], json!(true));
    let mut stopping = vec![office.clone(), seoul.clone()];
    stopping.sort();
    assert_eq!(ids(&planned, "stopped"), stopping, "{planned}");
    assert!(ids(&planned, "started").is_empty(), "{planned}");
    assert!(
        reasons(&planned, "skipped", "reason")[&broken].contains("timezone"),
        "{planned}"
    );

    // The table: one row per instance, with its Name and schedule.
    let table = fleetops(&fleet.emulator, &["plan", "--at", at], &[]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.starts_with(&format!(
            "Plan for a tick at {at} (dry run: nothing is changed)\n  schedules: Parameter Store {PARAMETER}\n  regions:   {REGION}\n"
        )),
        "{}",
        table.stdout
    );
    let row = |id: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("a row for {id}:\n{}", table.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row(&office),
        [&office, REGION, "app-1", "office", "running", "stop"]
    );
    assert_eq!(row(&broken)[5], "skip");
    assert!(!table.stdout.contains(&untagged), "{}", table.stdout);
    assert!(table.stdout.contains("2 to stop"), "{}", table.stdout);

    // With --file the local document is planned instead: here office runs
    // around the clock, and seoul-office no longer exists.
    let local = file(
        "plan.json",
        r#"{"schedules": {"office": {"periods": [{}], "enforced": true}}}"#,
    );
    let from_file = fleetops(
        &fleet.emulator,
        &["plan", "--file", &local, "--at", at, "--json"],
        &[],
    );
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    let from_file = from_file.json();
    assert!(ids(&from_file, "stopped").is_empty(), "{from_file}");
    assert!(
        reasons(&from_file, "skipped", "reason")[&seoul].contains("unknown schedule"),
        "{from_file}"
    );

    // Nothing was started, stopped or tagged, and the parameter is as it was.
    assert_eq!(writes(&fleet.emulator.calls()), Vec::<String>::new());
    assert_eq!(fleet_view(&fleet).await, before);
    assert_eq!(parameter(&ssm(&fleet).await, PARAMETER).await.0, SCHEDULES);

    // The Lambda's own dry run at the same instant says exactly the same.
    let function = fleet.start_function(&[]);
    let mut event = tick_at(at);
    event["dry_run"] = json!(true);
    let lambda = function.invoke(&event).output().clone();
    assert_eq!(lambda, planned);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_no_schedules_parameter_when_plan_runs_then_it_fails_with_exit_1_naming_it() {
    let fleet = Fleet::new().await;
    fleet.launch(&[("Schedule", "office")]).await;
    let run = fleetops(&fleet.emulator, &["plan"], &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(PARAMETER) && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    // A bad --region is a usage error, before any call.
    let run = fleetops(&fleet.emulator, &["plan", "--region", "Frankfurt"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--region"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_invalid_document_when_pushed_then_nothing_is_written_and_a_valid_one_is() {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(SCHEDULES.replace("KST", "Asia/Seoul").as_str())
        .await;
    let ssm = ssm(&fleet).await;
    let (stored, version) = parameter(&ssm, PARAMETER).await;
    fleet.emulator.reset_calls();

    // "9:00", and a trailing comma: refused, the parameter untouched.
    let nine = file(
        "nine.json",
        r#"{"schedules": {"office": {"periods": [{"begin": "9:00", "end": "18:00"}]}}}"#,
    );
    let comma = file(
        "comma.json",
        r#"{"schedules": {"office": {"periods": [{}]},}}"#,
    );
    for (path, problem) in [(&nine, "periods[0].begin"), (&comma, "trailing comma")] {
        let run = fleetops(&fleet.emulator, &["push", path], &[]);
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(problem), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    assert_eq!(parameter(&ssm, PARAMETER).await, (stored.clone(), version));
    assert!(
        !fleet.emulator.calls().contains_key("ssm:PutParameter"),
        "{:?}",
        fleet.emulator.calls()
    );

    // A valid edit: written as it is, and what changed is said.
    let edited = r#"{"schedules": {
  "office": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "08:00", "end": "18:00"}]},
  "broken": {"timezone": "Asia/Seoul", "periods": [{"begin": "09:00", "end": "18:00"}]},
  "weekend": {"periods": [{"weekdays": "sat,sun"}]}
}}"#;
    let edited_path = file("edited.json", edited);
    let run = fleetops(&fleet.emulator, &["push", &edited_path], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "Updated {PARAMETER} (version {}) from {edited_path}: 1 added, 1 removed, 1 edited, 1 unchanged\n",
            version + 1
        )),
        "{}",
        run.stdout
    );
    for line in [
        "  added:     weekend\n",
        "  removed:   seoul-office\n",
        "  edited:    office\n",
        "  unchanged: broken\n",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in\n{}", run.stdout);
    }
    assert_eq!(
        parameter(&ssm, PARAMETER).await,
        (edited.to_string(), version + 1)
    );

    // The same document again: nothing to write, no new version.
    let again = fleetops(&fleet.emulator, &["push", &edited_path], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("nothing to write"),
        "{}",
        again.stdout
    );
    assert_eq!(parameter(&ssm, PARAMETER).await.1, version + 1);

    // SCHEDULES_PARAMETER names another parameter: created as a String.
    let other = "/fleetops/staging/schedules";
    let created = fleetops(
        &fleet.emulator,
        &["push", &edited_path],
        &[("SCHEDULES_PARAMETER", other)],
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(
        created
            .stdout
            .starts_with(&format!("Created {other} (version 1)")),
        "{}",
        created.stdout
    );
    let described = ssm
        .get_parameter()
        .name(other)
        .send()
        .await
        .expect("the new parameter");
    assert_eq!(
        described.parameter().and_then(|p| p.r#type()),
        Some(&aws_sdk_ssm::types::ParameterType::String)
    );

    // And the scheduler plans with what was pushed.
    let plan = fleetops(
        &fleet.emulator,
        &["plan", "--at", "2026-11-28T12:00:00Z", "--json"],
        &[],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
}
