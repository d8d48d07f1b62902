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
/// `AWS_REGION` work as in every SDK), with fleetops' retry policy.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .load()
        .await
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
