//! instance-scheduler: wiring only. The behaviour lives in `fleetops::scheduler`.

use fleetops::aws::{diagnostic, load_sdk_config};
use fleetops::scheduler::{
    parse_tick_event, run_tick, RegionClient, SchedulerSettings, TickError, TickSummary,
};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

struct Deps {
    settings: SchedulerSettings,
    ssm: aws_sdk_ssm::Client,
    regions: Vec<RegionClient>,
}

fn main() -> Result<(), lambda_runtime::Error> {
    fleetops::aws::run_function(run)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    let sdk_config = load_sdk_config().await;
    let own_region = sdk_config.region().map(|r| r.to_string());
    let settings =
        SchedulerSettings::from_env(|name| std::env::var(name).ok(), own_region.as_deref())?;
    let regions = settings
        .regions
        .iter()
        .map(|region| RegionClient::new(&sdk_config, region))
        .collect();
    let deps = Deps {
        settings,
        ssm: aws_sdk_ssm::Client::new(&sdk_config),
        regions,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(event, &deps))).await
}

async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<TickSummary, Diagnostic> {
    let request = parse_tick_event(&event.payload, jiff::Timestamp::now())
        .map_err(|e| diagnostic("InvalidEvent", &e))?;
    run_tick(&deps.ssm, &deps.regions, &deps.settings, request)
        .await
        .map_err(|error| {
            let kind = match &error {
                TickError::Parameter(_) | TickError::Config { .. } => "InvalidConfig",
                TickError::Regions { .. } => "Retryable",
            };
            tracing::error!(error_type = kind, error = %fleetops::error_text(&error), "tick failed");
            diagnostic(kind, &error)
        })
}
