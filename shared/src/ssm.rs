//! Parameter Store reads shared by the functions.

use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;

#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("parameter {name} does not exist")]
    Missing { name: String },
    #[error("parameter {name} has no value")]
    Empty { name: String },
    #[error("reading parameter {name} failed: {source}")]
    Read {
        name: String,
        #[source]
        // Boxed: SDK errors are large and this is the rare path.
        source: Box<SdkError<GetParameterError>>,
    },
}

/// The value of one parameter (SecureString values decrypted).
pub async fn get_parameter(
    client: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<String, ParameterError> {
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|source| {
            if source
                .as_service_error()
                .is_some_and(GetParameterError::is_parameter_not_found)
            {
                ParameterError::Missing {
                    name: name.to_string(),
                }
            } else {
                ParameterError::Read {
                    name: name.to_string(),
                    source: Box::new(source),
                }
            }
        })?;
    output
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| ParameterError::Empty {
            name: name.to_string(),
        })
}
