//! Where the report goes: SNS, S3, and the previous summary in SSM.

use aws_sdk_s3::error::SdkError as S3Error;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_sns::error::SdkError as SnsError;
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_ssm::error::SdkError as SsmError;
use aws_sdk_ssm::operation::put_parameter::PutParameterError;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};

use super::build::Previous;
use super::fit::FittedMessage;
use crate::ssm::{get_parameter, ParameterError};

/// S3 key prefix for full reports (the function may write only under it).
pub const KEY_PREFIX: &str = "fleetops/reports";

#[derive(Debug, thiserror::Error)]
pub enum PublishFailure {
    #[error("publishing the report to {topic_arn} failed: {source}")]
    Sns {
        topic_arn: String,
        #[source]
        source: SnsError<PublishError>,
    },
    #[error("storing s3://{bucket}/{key} failed: {source}")]
    S3 {
        bucket: String,
        key: String,
        #[source]
        source: S3Error<PutObjectError>,
    },
    #[error("saving the previous summary to {name} failed: {source}")]
    State {
        name: String,
        #[source]
        source: SsmError<PutParameterError>,
    },
}

/// Publishes `message` (`MessageStructure: json`), returns the message id.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    message: &FittedMessage,
) -> Result<String, PublishFailure> {
    let output = sns
        .publish()
        .topic_arn(topic_arn)
        .subject(&message.subject)
        .message(&message.message)
        .message_structure("json")
        .send()
        .await
        .map_err(|source| PublishFailure::Sns {
            topic_arn: topic_arn.to_string(),
            source,
        })?;
    Ok(output.message_id().unwrap_or_default().to_string())
}

/// The keys of one report: `fleetops/reports/<date>/compliance-<time>.{json,html}`.
pub fn report_keys(generated_at: jiff::Timestamp) -> (String, String) {
    let stamp = generated_at
        .strftime("%Y-%m-%d/compliance-%H%M%SZ")
        .to_string();
    (
        format!("{KEY_PREFIX}/{stamp}.json"),
        format!("{KEY_PREFIX}/{stamp}.html"),
    )
}

/// Stores the full JSON and HTML reports; returns their `s3://` URIs.
pub async fn store_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    objects: &[(String, String, &str)],
) -> Result<Vec<String>, PublishFailure> {
    let mut uris = Vec::new();
    for (key, body, content_type) in objects {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .content_type(*content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(
                body.clone().into_bytes(),
            ))
            .send()
            .await
            .map_err(|source| PublishFailure::S3 {
                bucket: bucket.to_string(),
                key: key.clone(),
                source,
            })?;
        uris.push(format!("s3://{bucket}/{key}"));
    }
    Ok(uris)
}

/// The previous summary; none (first report) when the parameter does not exist.
/// A value that is not a summary is treated as none, with a warning.
pub async fn read_previous(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<Previous, ParameterError> {
    match get_parameter(ssm, name).await {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap_or_else(|error| {
            tracing::warn!(parameter = name, error = %error, "previous summary is not valid; comparing with nothing");
            Previous::default()
        })),
        Err(ParameterError::Missing { .. }) => Ok(Previous::default()),
        Err(other) => Err(other),
    }
}

/// Overwrites the previous summary (a standard String parameter).
pub async fn save_previous(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    summary: &str,
) -> Result<(), PublishFailure> {
    ssm.put_parameter()
        .name(name)
        .value(summary)
        .r#type(ParameterType::String)
        .tier(ParameterTier::Standard)
        .overwrite(true)
        .send()
        .await
        .map_err(|source| PublishFailure::State {
            name: name.to_string(),
            source,
        })?;
    Ok(())
}
