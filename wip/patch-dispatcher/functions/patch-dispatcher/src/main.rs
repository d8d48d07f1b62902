//! patch-dispatcher: wiring only. The behaviour lives in `fleetops::patch`.

use fleetops::aws::load_sdk_config;
use fleetops::patch::{dispatch, parse_event, Clients, PatchError, PatchSettings, Summary};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

struct Deps {
    settings: PatchSettings,
    clients: Clients,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = PatchSettings::from_env(|name| std::env::var(name).ok())?;
    let sdk_config = load_sdk_config().await;
    let deps = Deps {
        settings,
        clients: Clients {
            ssm: aws_sdk_ssm::Client::new(&sdk_config),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk_config),
            ec2: aws_sdk_ec2::Client::new(&sdk_config),
        },
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(event, &deps))).await
}

async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<Summary, Diagnostic> {
    let request = parse_event(&event.payload).map_err(|e| {
        tracing::error!(error_type = "InvalidEvent", error = %e, "invalid event");
        diagnostic("InvalidEvent", &e)
    })?;
    // The context's deadline is epoch milliseconds; without one, allow 15 minutes.
    let deadline = i64::try_from(event.context.deadline)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or_else(|| jiff::Timestamp::now() + jiff::SignedDuration::from_secs(900));
    dispatch(&deps.clients, &deps.settings, request, deadline)
        .await
        .map_err(|error| {
            let kind = match &error {
                PatchError::StateCorrupt { .. } => "InvalidState",
                PatchError::NoSuchInstance { .. } => "InvalidEvent",
                _ => "Retryable",
            };
            tracing::error!(error_type = kind, instance_id = error.instance_id(), error = %fleetops::error_text(&error), "dispatch failed");
            diagnostic(kind, &error)
        })
}

fn diagnostic(error_type: &str, error: &(dyn std::error::Error + 'static)) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_string(),
        error_message: fleetops::error_text(error),
    }
}
