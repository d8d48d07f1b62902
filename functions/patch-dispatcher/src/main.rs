//! patch-dispatcher: wiring only. The behaviour lives in `fleetops::patch`.

use fleetops::aws::{diagnostic, invocation_deadline, load_sdk_config};
use fleetops::metrics::{dispatcher_metrics, emf_line, DISPATCHER};
use fleetops::patch::{dispatch, parse_event, Clients, PatchError, PatchSettings, Summary};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

struct Deps {
    settings: PatchSettings,
    clients: Clients,
    region: String,
}

fn main() -> Result<(), lambda_runtime::Error> {
    fleetops::aws::run_function(run)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    let settings = PatchSettings::from_env(|name| std::env::var(name).ok())?;
    let sdk_config = load_sdk_config().await;
    let deps = Deps {
        region: sdk_config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        settings,
        clients: Clients {
            ssm: aws_sdk_ssm::Client::new(&sdk_config),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk_config),
            ec2: aws_sdk_ec2::Client::new(&sdk_config),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
        },
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(event, &deps))).await
}

async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<Summary, Diagnostic> {
    let request = parse_event(&event.payload).map_err(|e| {
        tracing::error!(error_type = "InvalidEvent", error = %e, "invalid event");
        diagnostic("InvalidEvent", &e)
    })?;
    let deadline = invocation_deadline(event.context.deadline, jiff::Timestamp::now());
    let result = dispatch(&deps.clients, &deps.settings, request, deadline).await;
    // Metrics (EMF) on their own stdout line.
    if let Ok(summary) = &result {
        let metrics = dispatcher_metrics(summary);
        if let Some(line) = emf_line(DISPATCHER, &deps.region, jiff::Timestamp::now(), metrics) {
            println!("{line}");
        }
    }
    result.map_err(|error| {
            let kind = match &error {
                PatchError::StateCorrupt { .. } | PatchError::StateMalformed { .. } => {
                    "InvalidState"
                }
                PatchError::NoSuchInstance { .. } => "InvalidEvent",
                _ => "Retryable",
            };
            tracing::error!(error_type = kind, instance_id = error.instance_id(), error = %fleetops::error_text(&error), "dispatch failed");
            diagnostic(kind, &error)
        })
}
