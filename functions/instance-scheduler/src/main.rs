//! instance-scheduler: wiring only. The behaviour lives in `fleetops::scheduler`
//! (one account-region) and `fleetops::accounts` (which ones, and credentials).

use fleetops::accounts::{resolve_accounts, units, AccountConfigs, AccountSettings, IdentityCache};
use fleetops::aws::{act_until, diagnostic, load_sdk_config};
use fleetops::metrics::{emf_line, emf_unit_line, scheduler_metrics, SCHEDULER};
use fleetops::scheduler::read::ReadMemory;
use fleetops::scheduler::{
    parse_tick_event, parse_work_batch, queue_units, read_schedules, run_units, run_work_batch,
    FleetTickSummary, SchedulerSettings, TickError,
};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

/// The role session name in every spoke account's CloudTrail.
const SESSION_NAME: &str = "fleetops-instance-scheduler";

struct Deps {
    settings: SchedulerSettings,
    accounts: AccountSettings,
    /// `WORK_QUEUE_URL`: a tick queues one message per account-region.
    work_queue_url: Option<String>,
    sdk_config: aws_config::SdkConfig,
    identity: IdentityCache,
    ssm: aws_sdk_ssm::Client,
    sqs: aws_sdk_sqs::Client,
    organizations: aws_sdk_organizations::Client,
    own_region: String,
}

fn main() -> Result<(), lambda_runtime::Error> {
    fleetops::aws::run_function(run)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    let sdk_config = load_sdk_config().await;
    let own_region = sdk_config.region().map(|r| r.to_string());
    let env = |name: &str| std::env::var(name).ok();
    let settings = SchedulerSettings::from_env(env, own_region.as_deref())?;
    let accounts = AccountSettings::from_env(env)?;
    let deps = Deps {
        settings,
        accounts,
        work_queue_url: env("WORK_QUEUE_URL").filter(|v| !v.trim().is_empty()),
        identity: IdentityCache::default(),
        ssm: aws_sdk_ssm::Client::new(&sdk_config),
        sqs: aws_sdk_sqs::Client::new(&sdk_config),
        organizations: aws_sdk_organizations::Client::new(&sdk_config),
        sdk_config,
        own_region: own_region.unwrap_or_default(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(event, &deps))).await
}

/// Kept between the invocations of a warm process: how big the last reads
/// were, so the next tick splits its reads without probing first.
static READ_MEMORY: ReadMemory = ReadMemory::new();

/// Time kept, after the last stop or start is sent, to write the markers and
/// answer within the function's timeout.
const ANSWER_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);

async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<FleetTickSummary, Diagnostic> {
    let act_until = Some(act_until(
        event.context.deadline,
        jiff::Timestamp::now(),
        ANSWER_MARGIN,
    ));
    let fleet = match parse_work_batch(&event.payload) {
        Some(batch) => {
            let mut items = batch.map_err(|e| diagnostic("InvalidEvent", &e))?;
            for item in &mut items {
                if let Ok((_, request)) = &mut item.work {
                    request.act_until = act_until;
                    request.memory = Some(&READ_MEMORY);
                }
            }
            let schedules = read_schedules(&deps.ssm, &deps.settings)
                .await
                .map_err(failed)?;
            let configs = account_configs(deps).await?;
            run_work_batch(&schedules, &items, &configs, &deps.settings).await
        }
        None => {
            let mut request = parse_tick_event(&event.payload, jiff::Timestamp::now())
                .map_err(|e| diagnostic("InvalidEvent", &e))?;
            request.act_until = act_until;
            request.memory = Some(&READ_MEMORY);
            // Read (and validated) before anything is queued or done.
            let schedules = read_schedules(&deps.ssm, &deps.settings)
                .await
                .map_err(failed)?;
            let configs = account_configs(deps).await?;
            let accounts = resolve_accounts(
                &deps.accounts.accounts,
                configs.own_account(),
                &deps.organizations,
            )
            .await
            .map_err(|e| retryable(&e))?;
            let units = units(&accounts, &deps.settings.regions);
            match &deps.work_queue_url {
                Some(url) => queue_units(&deps.sqs, url, &units, &deps.settings, request).await,
                None => run_units(&schedules, &units, &configs, &deps.settings, request).await,
            }
        }
    };
    // Metrics (EMF) on their own stdout line, for a whole or a partial tick.
    let metrics = scheduler_metrics(&fleet.flattened(), fleet.unhandled.len());
    let now = jiff::Timestamp::now();
    if let Some(line) = emf_line(SCHEDULER, &deps.own_region, now, metrics) {
        println!("{line}");
    }
    // Over several account-regions, one more line for each, with its account.
    if fleet.units.len() > 1 {
        for unit in &fleet.units {
            let metrics = scheduler_metrics(&fleet.unit_summary(unit), 0);
            if let Some(line) = emf_unit_line(SCHEDULER, &unit.account, &unit.region, now, metrics)
            {
                println!("{line}");
            }
        }
    }
    tracing::info!(summary = %serde_json::to_string(&fleet).unwrap_or_default(), "scheduler summary");
    // Nothing handled at all (every account-region failed): retry the whole.
    let handled = !fleet.units.is_empty() || !fleet.queued.is_empty();
    if !handled && !fleet.unhandled.is_empty() && fleet.batch_item_failures.is_none() {
        let reasons: Vec<String> = fleet
            .unhandled
            .iter()
            .map(|u| format!("{}/{}: {}", u.account, u.region, u.reason))
            .collect();
        tracing::error!(
            error_type = "Retryable",
            "no account-region could be handled"
        );
        return Err(Diagnostic {
            error_type: "Retryable".into(),
            error_message: format!("no account-region could be handled: {}", reasons.join("; ")),
        });
    }
    Ok(fleet)
}

async fn account_configs(deps: &Deps) -> Result<AccountConfigs, Diagnostic> {
    let identity = deps
        .identity
        .get(&deps.sdk_config)
        .await
        .map_err(|e| retryable(&e))?;
    Ok(AccountConfigs::new(
        deps.sdk_config.clone(),
        identity,
        &deps.accounts.spoke_role_name,
        SESSION_NAME,
    ))
}

fn retryable(error: &(dyn std::error::Error + 'static)) -> Diagnostic {
    tracing::error!(error_type = "Retryable", error = %fleetops::error_text(error), "tick failed");
    diagnostic("Retryable", error)
}

fn failed(error: TickError) -> Diagnostic {
    let kind = match &error {
        TickError::Parameter(_) | TickError::Config { .. } => "InvalidConfig",
        TickError::Regions { .. } => "Retryable",
    };
    tracing::error!(error_type = kind, error = %fleetops::error_text(&error), "tick failed");
    diagnostic(kind, &error)
}
