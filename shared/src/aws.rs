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

/// An error with its whole chain of causes, for logs and summaries.
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(error).to_string()
}
