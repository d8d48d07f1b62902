//! compliance-reporter: wiring only. The behaviour lives in `fleetops::report`.

use fleetops::accounts::{
    resolve_accounts, units, AccountConfigs, AccountSettings, AccountsSetting, IdentityCache,
};
use fleetops::aws::{diagnostic, load_sdk_config};
use fleetops::input::{parse_tick_event, EnvError};
use fleetops::metrics::{emf_line, reporter_metrics, REPORTER};
use fleetops::report::fanout::{
    assembly_delay, night_messages, night_of, parse_report_batch, queue_night, run_report_batch,
};
use fleetops::report::{run_report, Clients, ReportError, ReportOutput, ReporterSettings, Scope};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// The role session name in every spoke account's CloudTrail.
const SESSION_NAME: &str = "fleetops-compliance-reporter";

struct Deps {
    settings: ReporterSettings,
    clients: Clients,
    /// `ACCOUNTS` and `REGIONS`: `None` when both are unset (the function's
    /// own account and region only, as before).
    fleet: Option<(AccountSettings, Vec<String>)>,
    /// `WORK_QUEUE_URL`: the nightly run queues one message per
    /// account-region (with `REPORT_BUCKET`, where the units are kept).
    work_queue_url: Option<String>,
    /// `REPORT_ASSEMBLY_DELAY_SECONDS`: the assembly's first look.
    assembly_delay: i32,
    sqs: aws_sdk_sqs::Client,
    sdk_config: aws_config::SdkConfig,
    identity: IdentityCache,
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
        work_queue_url: env("WORK_QUEUE_URL"),
        assembly_delay: assembly_delay(env("REPORT_ASSEMBLY_DELAY_SECONDS").as_deref())?,
        sqs: aws_sdk_sqs::Client::new(&sdk_config),
        organizations: aws_sdk_organizations::Client::new(&sdk_config),
        identity: IdentityCache::default(),
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

async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, Diagnostic> {
    // A batch of the work queue: units to read, or the night's assembly.
    if let Some(batch) = parse_report_batch(&event.payload) {
        let role = deps
            .fleet
            .as_ref()
            .map_or(fleetops::accounts::DEFAULT_SPOKE_ROLE, |(a, _)| {
                a.spoke_role_name.as_str()
            });
        let configs = account_configs(deps, role).await?;
        let out = run_report_batch(&deps.clients, &deps.settings, &configs, batch).await;
        if let Some(report) = &out.report {
            emit_metrics(deps, report);
        }
        tracing::info!(summary = %serde_json::to_string(&out).unwrap_or_default(), "report batch done");
        return Ok(serde_json::to_value(out).unwrap_or_default());
    }
    let request = parse_tick_event(&event.payload, jiff::Timestamp::now())
        .map_err(|e| diagnostic("InvalidEvent", &e))?;
    let configs;
    let scope = match &deps.fleet {
        None => Scope::Own,
        Some((accounts, regions)) => {
            configs = account_configs(deps, &accounts.spoke_role_name).await?;
            let ids = resolve_accounts(
                &accounts.accounts,
                configs.own_account(),
                &deps.organizations,
            )
            .await
            .map_err(|e| diagnostic("Retryable", &e))?;
            let units = units(&ids, regions);
            // Through the queue (it needs the bucket to keep the units in).
            if let (Some(queue), Some(_)) = (&deps.work_queue_url, &deps.settings.bucket) {
                let messages = night_messages(&units, request.now, request.dry_run);
                let sent = queue_night(&deps.sqs, queue, &messages, deps.assembly_delay)
                    .await
                    .map_err(|reason| Diagnostic {
                        error_type: "Retryable".into(),
                        error_message: format!("the night's units could not be queued: {reason}"),
                    })?;
                tracing::info!(queued = sent, "report units queued");
                return Ok(
                    json!({"queued": units, "messages": sent, "night": night_of(request.now)}),
                );
            }
            Scope::Units {
                configs: &configs,
                units,
            }
        }
    };
    match run_report(&deps.clients, &deps.settings, request, scope).await {
        Ok(output) => {
            tracing::info!(summary = %serde_json::to_string(&output).unwrap_or_default(), "report done");
            emit_metrics(deps, &output);
            Ok(serde_json::to_value(output).unwrap_or_default())
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

/// Metrics (EMF) on their own stdout line.
fn emit_metrics(deps: &Deps, output: &ReportOutput) {
    if let Some(line) = emf_line(
        REPORTER,
        &deps.clients.region,
        jiff::Timestamp::now(),
        reporter_metrics(output),
    ) {
        println!("{line}");
    }
}

async fn account_configs(deps: &Deps, role: &str) -> Result<AccountConfigs, Diagnostic> {
    let identity = deps
        .identity
        .get(&deps.sdk_config)
        .await
        .map_err(|e| diagnostic("Retryable", &e))?;
    Ok(AccountConfigs::new(
        deps.sdk_config.clone(),
        identity,
        role,
        SESSION_NAME,
    ))
}
