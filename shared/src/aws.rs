//! What every function does the same way with the AWS SDK.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;

/// Attempts per call, first included. Throttling (`RequestLimitExceeded`,
/// `ThrottlingException`) and 5xx answers are retried with exponential
/// backoff and jitter by the SDK's standard retry strategy.
pub const MAX_ATTEMPTS: u32 = 8;

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// The default credential/region/endpoint chain (so `AWS_ENDPOINT_URL` and
/// `AWS_REGION` work as in every SDK), with fleetops' retry policy and one
/// HTTP client ([`shared_http_client`]) for every client made from it.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .http_client(shared_http_client())
        .load()
        .await
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxies from the
/// environment), made here so that every client made from the config has
/// it in its own config: left to the SDK, a client's config holds none (the
/// default is picked per call), and the `DescribeTags` reads
/// (`scheduler::tag_page_client`) wrap the client's own HTTP client.
pub fn shared_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// An error with its whole chain of causes, for logs and summaries
/// (`service error: ParameterNotFound: ...`), without repeating a cause that
/// the previous message already quotes.
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// Logs are JSON lines whatever the function's logging config says (Lambda
/// sets `AWS_LAMBDA_LOG_FORMAT=JSON` only with `LogFormat: JSON`; cargo lambda
/// sets nothing). Call first thing in `main`, before any thread starts: it
/// may set an environment variable. Level: `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`,
/// default `info`.
pub fn init_json_logging() {
    if std::env::var_os("AWS_LAMBDA_LOG_FORMAT").is_none() {
        std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    }
    lambda_runtime::tracing::init_default_subscriber();
}

/// An SDK date as a `jiff` timestamp (`None` if out of range).
pub fn timestamp(t: &aws_smithy_types::DateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(t.secs(), i32::try_from(t.subsec_nanos()).ok()?).ok()
}

/// A function's `main`: JSON logs first (before any thread starts, see
/// [`init_json_logging`]), then `run` on a single-threaded runtime. One
/// thread because the handlers' concurrency is all I/O, polled within one
/// task (`buffer_unordered`, `try_join`), and Lambda gives a 128 MB function
/// about a fourteenth of a vCPU: a multi-threaded runtime only adds
/// cross-thread wake-ups, never parallel work.
pub fn run_function<F>(run: impl FnOnce() -> F) -> Result<(), lambda_runtime::Error>
where
    F: std::future::Future<Output = Result<(), lambda_runtime::Error>>,
{
    init_json_logging();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// The error a function returns to Lambda: `error_type` is what alarms and
/// retries key on (`InvalidEvent`, `InvalidConfig`, `Retryable`, ...), the
/// message is the whole chain of causes.
pub fn diagnostic(
    error_type: &str,
    error: &(dyn std::error::Error + 'static),
) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: error_type.to_string(),
        error_message: error_text(error),
    }
}

/// When the invocation must be done, from the context's deadline (epoch
/// milliseconds in Lambda). `cargo lambda watch` sends its timeout instead
/// (600,000 ms, i.e. "1970-01-01T00:10:00Z"), so a value that is not a
/// plausible recent epoch is read as a duration from `now`; none at all gives
/// 15 minutes, Lambda's maximum.
pub fn invocation_deadline(deadline_ms: u64, now: jiff::Timestamp) -> jiff::Timestamp {
    let fifteen_minutes = jiff::SignedDuration::from_secs(900);
    let day_ago_ms = (now - jiff::SignedDuration::from_hours(24)).as_millisecond();
    match i64::try_from(deadline_ms) {
        Ok(0) | Err(_) => now + fifteen_minutes,
        Ok(ms) if ms >= day_ago_ms => {
            jiff::Timestamp::from_millisecond(ms).unwrap_or(now + fifteen_minutes)
        }
        Ok(ms) => now + jiff::SignedDuration::from_millis(ms).min(fifteen_minutes),
    }
}

/// When to stop starting new work: `margin` before the invocation's deadline
/// (as a monotonic instant, for timeouts), or now when less is left.
pub fn act_until(
    deadline_ms: u64,
    now: jiff::Timestamp,
    margin: jiff::SignedDuration,
) -> std::time::Instant {
    let left = invocation_deadline(deadline_ms, now).duration_since(now) - margin;
    std::time::Instant::now() + std::time::Duration::try_from(left).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::invocation_deadline;

    #[test]
    fn the_deadline_is_an_epoch_in_lambda_and_a_timeout_under_cargo_lambda() {
        let now: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let epoch = u64::try_from(now.as_millisecond() + 120_000).unwrap();
        assert_eq!(
            invocation_deadline(epoch, now).to_string(),
            "2026-11-26T10:02:00Z"
        );
        assert_eq!(
            invocation_deadline(600_000, now).to_string(),
            "2026-11-26T10:10:00Z"
        );
        assert_eq!(
            invocation_deadline(0, now).to_string(),
            "2026-11-26T10:15:00Z"
        );
        assert_eq!(
            invocation_deadline(u64::MAX, now).to_string(),
            "2026-11-26T10:15:00Z"
        );
    }
}
