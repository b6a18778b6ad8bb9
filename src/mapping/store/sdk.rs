//! What the DynamoDB, S3 and STS adapters share: one way to turn an SDK error into a typed
//! [`Fault`] an operator can read, and who the credentials belong to.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

#[cfg(feature = "cli")]
use super::aws::{AwsConfig, CallerIdentity};
use super::error::{Fault, StoreError};

#[cfg(feature = "cli")]
impl AwsConfig {
    /// Who the credentials belong to: one STS GetCallerIdentity call.
    ///
    /// # Errors
    /// [`StoreError::Service`] (for example, credentials that do not sign).
    pub async fn caller_identity(&self) -> Result<CallerIdentity, StoreError> {
        let out = aws_sdk_sts::Client::new(&self.sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(service("sts:GetCallerIdentity"))?;
        Ok(CallerIdentity {
            account: out.account.unwrap_or_default(),
            arn: out.arn.unwrap_or_default(),
        })
    }
}

/// A string attribute of a table's key (a CreateTable definition).
pub(crate) fn string_attribute(name: &str) -> aws_sdk_dynamodb::types::AttributeDefinition {
    aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
        .build()
        .expect("name and type set")
}

/// One element of a table's key schema (`Hash` or `Range`).
pub(crate) fn key_element(
    name: &str,
    kind: aws_sdk_dynamodb::types::KeyType,
) -> aws_sdk_dynamodb::types::KeySchemaElement {
    aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type set")
}

/// An SDK error as a [`Fault`]: for a service error its code, message and request id; a
/// timeout as such; anything else (no connection, an unreadable answer) with the SDK error as
/// its source. Never the SDK's debug dump (it has the raw response), which goes to the debug
/// log instead.
pub(crate) fn fault<E, R>(e: SdkError<E, R>) -> Fault
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    tracing::debug!(error = ?e, "AWS SDK error");
    match &e {
        SdkError::ServiceError(se) => {
            let meta = se.err().meta();
            Fault::Answered {
                code: meta.code().unwrap_or("UnknownError").to_owned(),
                message: meta.message().filter(|m| !m.is_empty()).map(str::to_owned),
                request_id: meta.extra("aws_request_id").map(str::to_owned),
            }
        }
        SdkError::TimeoutError(_) => Fault::TimedOut,
        _ => Fault::Unreachable(Box::new(e)),
    }
}

/// Maps an SDK error of `operation` to [`StoreError::Service`].
pub(crate) fn service<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| StoreError::service(operation, fault(e))
}
