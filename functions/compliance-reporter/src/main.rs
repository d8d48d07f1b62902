//! compliance-reporter: wiring only. The behaviour lives in `fleetops::report`.

use fleetops::accounts::{
    resolve_accounts, units, AccountConfigs, AccountSettings, AccountsSetting,
};
use fleetops::aws::{diagnostic, load_sdk_config};
use fleetops::input::{parse_tick_event, EnvError};
use fleetops::metrics::{emf_line, reporter_metrics, REPORTER};
use fleetops::report::{run_report, Clients, ReportError, ReportOutput, ReporterSettings, Scope};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

/// The role session name in every spoke account's CloudTrail.
const SESSION_NAME: &str = "fleetops-compliance-reporter";

struct Deps {
    settings: ReporterSettings,
    clients: Clients,
    /// `ACCOUNTS` and `REGIONS`: `None` when both are unset (the function's
    /// own account and region only, as before).
    fleet: Option<(AccountSettings, Vec<String>)>,
    sdk_config: aws_config::SdkConfig,
    organizations: aws_sdk_organizations::Client,
}

fn main() -> Result<(), lambda_runtime::Error> {
    fleetops::aws::run_function(run)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    // Validated before anything else: a bad configuration makes no AWS call.
    let settings = match ReporterSettings::from_env(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(error_type = "InvalidConfig", error = %error, "invalid configuration");
            return lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| invalid_config(&error)))
                .await;
        }
    };
    let sdk_config = load_sdk_config().await;
    let region = sdk_config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let fleet = match (AccountSettings::from_env(env), env("REGIONS")) {
        (Ok(accounts), regions)
            if accounts.accounts != AccountsSetting::Own || regions.is_some() =>
        {
            let regions = fleetops::input::parse_regions(regions.as_deref(), Some(&region))?;
            Some((accounts, regions))
        }
        (Ok(_), _) => None,
        (Err(error), _) => return Err(error.into()),
    };
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk_config)
            // Works with custom endpoints (emulators) as well as AWS.
            .force_path_style(std::env::var_os("AWS_ENDPOINT_URL").is_some())
            .build(),
    );
    let deps = Deps {
        settings,
        fleet,
        organizations: aws_sdk_organizations::Client::new(&sdk_config),
        clients: Clients {
            region,
            ec2: aws_sdk_ec2::Client::new(&sdk_config),
            ssm: aws_sdk_ssm::Client::new(&sdk_config),
            sns: aws_sdk_sns::Client::new(&sdk_config),
            s3,
        },
        sdk_config,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(event, &deps))).await
}

async fn invalid_config(error: &EnvError) -> Result<Value, Diagnostic> {
    Err(diagnostic("InvalidConfig", error))
}

async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<ReportOutput, Diagnostic> {
    let request = parse_tick_event(&event.payload, jiff::Timestamp::now())
        .map_err(|e| diagnostic("InvalidEvent", &e))?;
    let configs;
    let scope = match &deps.fleet {
        None => Scope::Own,
        Some((accounts, regions)) => {
            configs = AccountConfigs::new(
                deps.sdk_config.clone(),
                &accounts.spoke_role_name,
                SESSION_NAME,
            )
            .await
            .map_err(|e| diagnostic("Retryable", &e))?;
            let ids = resolve_accounts(
                &accounts.accounts,
                configs.own_account(),
                &deps.organizations,
            )
            .await
            .map_err(|e| diagnostic("Retryable", &e))?;
            Scope::Units {
                configs: &configs,
                units: units(&ids, regions),
            }
        }
    };
    match run_report(&deps.clients, &deps.settings, request, scope).await {
        Ok(output) => {
            tracing::info!(summary = %serde_json::to_string(&output).unwrap_or_default(), "report done");
            // Metrics (EMF) on their own stdout line.
            let metrics = reporter_metrics(&output);
            if let Some(line) = emf_line(
                REPORTER,
                &deps.clients.region,
                jiff::Timestamp::now(),
                metrics,
            ) {
                println!("{line}");
            }
            Ok(output)
        }
        Err(error) => {
            let kind = match &error {
                ReportError::Publish(_) => "Retryable",
            };
            tracing::error!(error_type = kind, error = %fleetops::error_text(&error), "report failed");
            Err(diagnostic(kind, &error))
        }
    }
}
