//! How scopegate reaches AWS: the options (the AWS CLI's), the loaded configuration shared
//! by the DynamoDB, S3 and STS clients, who the credentials belong to, and one way to turn an
//! SDK error into a line an operator can read.
//!
//! # Precedence, as the AWS CLI
//! - Credentials: `--profile` beats `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. The SDK's
//!   default chain reads the environment's keys first even when given a profile name, so a
//!   named profile gets its own provider. Without `--profile`, the default chain
//!   (environment, `AWS_PROFILE`, web identity, container, instance role) as in the Lambda.
//! - Region: `--region`, then `AWS_REGION`/`AWS_DEFAULT_REGION`, then the profile's `region`,
//!   then the instance metadata.
//! - A profile named but defined in neither `~/.aws/config` nor `~/.aws/credentials` (or the
//!   files `AWS_CONFIG_FILE`/`AWS_SHARED_CREDENTIALS_FILE` name) is an error naming it, before
//!   any request.

use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// How to reach AWS: the AWS CLI's options. Everything unset falls back to the SDK's default
/// chain (environment, profile, instance role), which is what the Lambda uses.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--endpoint-url` (an emulator); S3 then uses path-style addressing.
    pub endpoint_url: Option<String>,
    /// Fixed credentials (access key id, secret), for emulators in tests.
    pub static_credentials: Option<(String, String)>,
    /// Per attempt timeout. Defaults to 3 s.
    pub attempt_timeout: Option<Duration>,
    /// Whole operation timeout (with retries). Defaults to 10 s.
    pub operation_timeout: Option<Duration>,
    /// Attempts per call. Defaults to 3.
    pub max_attempts: Option<u32>,
}

impl AwsOptions {
    /// The operator CLI's: as patient as the AWS CLI (a 10k-entry export or a throttled
    /// table takes longer than a request path can wait), with the SDK's standard retries.
    pub fn for_cli() -> AwsOptions {
        AwsOptions {
            attempt_timeout: Some(Duration::from_secs(20)),
            operation_timeout: Some(Duration::from_secs(60)),
            max_attempts: Some(3),
            ..AwsOptions::default()
        }
    }

    /// Short timeouts and one retry: for the authorizer, where a hung call would hold a
    /// request (the cache has fallbacks).
    pub fn for_authorizer() -> AwsOptions {
        AwsOptions {
            attempt_timeout: Some(Duration::from_millis(1500)),
            operation_timeout: Some(Duration::from_secs(3)),
            max_attempts: Some(2),
            ..AwsOptions::default()
        }
    }
}

/// Why the AWS configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsSetupError {
    /// `--profile` names a profile no shared file defines.
    #[error("profile {profile:?} is not defined in the AWS config or credentials file (~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE); defined: {}", if defined.is_empty() { "none".to_owned() } else { defined.join(", ") })]
    UnknownProfile {
        /// The name given.
        profile: String,
        /// The profiles that are defined.
        defined: Vec<String>,
    },
    /// The shared config files could not be read or parsed.
    #[error("the AWS config files cannot be read: {0}")]
    ProfileFiles(String),
    /// No region anywhere in the chain.
    #[error("no AWS region: pass --region, set AWS_REGION, or set `region` in the profile (aws configure set region REGION)")]
    NoRegion,
}

/// Who the credentials belong to (STS GetCallerIdentity; the CLI's).
#[cfg(feature = "cli")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The account id.
    pub account: String,
    /// The principal's ARN.
    pub arn: String,
}

/// A loaded AWS configuration, shared by the DynamoDB, S3 and STS clients. Opaque so that
/// only the store modules see the SDK.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub(crate) sdk: SdkConfig,
    pub(crate) path_style: bool,
}

impl AwsConfig {
    /// Resolves region, profile, credentials and endpoint (see the [module docs](self) for
    /// the order).
    ///
    /// # Errors
    /// [`AwsSetupError`]: an unknown profile, unreadable config files, no region.
    pub async fn load(options: &AwsOptions) -> Result<AwsConfig, AwsSetupError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &options.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &options.profile {
            check_profile(p).await?;
            // profile_name() alone leaves the environment's keys first in the chain.
            loader = loader.profile_name(p).credentials_provider(
                ProfileFileCredentialsProvider::builder()
                    .profile_name(p)
                    .build(),
            );
        }
        if let Some(e) = &options.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        if let Some((id, secret)) = &options.static_credentials {
            loader =
                loader.credentials_provider(Credentials::new(id, secret, None, None, "static"));
        }
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(options.attempt_timeout.unwrap_or(Duration::from_secs(3)))
            .operation_timeout(options.operation_timeout.unwrap_or(Duration::from_secs(10)))
            .build();
        loader = loader.timeout_config(timeouts).retry_config(
            RetryConfig::standard().with_max_attempts(options.max_attempts.unwrap_or(3)),
        );
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(AwsSetupError::NoRegion);
        }
        // AWS_ENDPOINT_URL in the environment counts as well as --endpoint-url.
        let path_style = sdk.endpoint_url().is_some();
        Ok(AwsConfig { sdk, path_style })
    }

    /// The region in use (the CLI's "which account and region" line).
    #[cfg(feature = "cli")]
    pub fn region(&self) -> Option<String> {
        self.sdk.region().map(ToString::to_string)
    }
}

/// Refuses a profile that no shared config file defines (the SDK would only fail at the first
/// request, with a message about credentials).
async fn check_profile(profile: &str) -> Result<(), AwsSetupError> {
    use aws_runtime::env_config::file::EnvConfigFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    let set = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        Some(profile.to_owned().into()),
    )
    .await
    .map_err(|e| AwsSetupError::ProfileFiles(e.to_string()))?;
    if set.get_profile(profile).is_some() {
        return Ok(());
    }
    let mut defined: Vec<String> = set.profiles().map(str::to_owned).collect();
    defined.sort();
    Err(AwsSetupError::UnknownProfile {
        profile: profile.to_owned(),
        defined,
    })
}
