//! What the DynamoDB, S3 and STS adapters share: one way to turn an SDK error into a line an
//! operator can read, and who the credentials belong to.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use super::aws::{AwsConfig, CallerIdentity};
use super::store::StoreError;

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

/// An SDK error as one line: the service's error code, its message and the request id for a
/// service error; the causes, each once, for anything else. Never the SDK's debug dump (it
/// has the raw response), which goes to the debug log instead.
pub(crate) fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    tracing::debug!(error = ?e, "AWS SDK error");
    match e {
        SdkError::ServiceError(se) => {
            let meta = se.err().meta();
            let mut out = meta.code().unwrap_or("UnknownError").to_owned();
            if let Some(m) = meta.message().filter(|m| !m.is_empty()) {
                out.push_str(": ");
                out.push_str(m);
            }
            if let Some(id) = meta.extra("aws_request_id") {
                out.push_str(" (request id ");
                out.push_str(id);
                out.push(')');
            }
            out
        }
        SdkError::TimeoutError(_) => "no answer in time".to_owned(),
        other => crate::error_text::one_line(other),
    }
}

/// Maps an SDK error of `operation` to [`StoreError::Service`], keeping the service's error
/// code for callers that tell some apart.
pub(crate) fn service<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| StoreError::Service {
        operation,
        code: e.code().map(str::to_owned),
        message: describe(&e),
    }
}
