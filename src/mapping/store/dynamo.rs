//! The DynamoDB adapter: the client over one table, and the table's lifecycle (create with
//! its protections, check them, wait for it, delete it). Reads are in [`read`](super::read),
//! writes in [`write`](super::write); the item layout is in [`layout`](super::layout).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus,
    SseSpecification, SseStatus, TableDescription,
};
use aws_sdk_dynamodb::Client;

use super::aws::AwsConfig;
use super::error::{Fault, StoreError};
use super::sdk::service;

/// The DynamoDB mapping store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: Arc<str>,
    /// Concurrent BatchWriteItem calls during a bulk write.
    pub(super) write_concurrency: usize,
    /// What the client was built from: the account and region for the operator's lines.
    aws: AwsConfig,
}

impl DynamoStore {
    /// A store over `table`.
    pub fn new(aws: &AwsConfig, table: &str) -> DynamoStore {
        DynamoStore {
            client: Client::new(&aws.sdk),
            table: table.into(),
            write_concurrency: 8,
            aws: aws.clone(),
        }
    }

    /// The AWS configuration the store was opened with.
    pub fn aws(&self) -> &AwsConfig {
        &self.aws
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Maps an SDK error of `operation` to a [`StoreError`]: the table's
    /// ResourceNotFoundException is [`StoreError::TableNotFound`], so that every command
    /// says the same thing about a missing (or misspelt) table and none creates it.
    pub(super) fn fail<E, R>(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let table = self.table.to_string();
        move |e| {
            if e.code() == Some("ResourceNotFoundException") {
                StoreError::TableNotFound {
                    table,
                    location: None,
                }
            } else {
                service(operation)(e)
            }
        }
    }

    /// Whether the table exists.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn exists(&self) -> Result<bool, StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(service("DescribeTable")(e)),
        }
    }

    /// Creates the table (keys `pk`/`sk`, strings; on-demand billing) unless it exists, and
    /// waits until it is active. Returns whether it was created.
    ///
    /// It gets the protections template.yaml gives it: deletion protection, server-side
    /// encryption with the AWS managed KMS key, and point-in-time recovery (35 days of
    /// restores). A table made by hand would lack them, and the mappings decide who may call
    /// what.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        if self.exists().await? {
            self.wait_active().await?;
            return Ok(false);
        }
        use super::sdk::{key_element as key, string_attribute as attr};
        let created = self
            .client
            .create_table()
            .table_name(&*self.table)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .billing_mode(BillingMode::PayPerRequest)
            .deletion_protection_enabled(true)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Someone else created it meanwhile: fine.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(self.fail("CreateTable")(e)),
        }
        self.wait_active().await?;
        self.client
            .update_continuous_backups()
            .table_name(&*self.table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .expect("enabled set"),
            )
            .send()
            .await
            .map_err(self.fail("UpdateContinuousBackups"))?;
        Ok(true)
    }

    /// The table's protections: (deletion protection, SSE, point-in-time recovery).
    ///
    /// # Errors
    /// [`StoreError::TableNotFound`]; [`StoreError::Service`].
    pub async fn protections(&self) -> Result<(bool, bool, bool), StoreError> {
        let table = self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(self.fail("DescribeTable"))?
            .table
            .unwrap_or_else(|| TableDescription::builder().build());
        let backups = self
            .client
            .describe_continuous_backups()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(self.fail("DescribeContinuousBackups"))?;
        let pitr = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            == Some(&PointInTimeRecoveryStatus::Enabled);
        let sse = table
            .sse_description()
            .and_then(|s| s.status())
            .is_some_and(|s| *s == SseStatus::Enabled || *s == SseStatus::Enabling);
        Ok((table.deletion_protection_enabled() == Some(true), sse, pitr))
    }

    /// The SDK's TableExists waiter (the AWS CLI's `wait table-exists`): the first check is
    /// at once, then every 20 s or more, up to five minutes.
    async fn wait_active(&self) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::client::Waiters;
        const MAX_WAIT: Duration = Duration::from_secs(300);
        match self
            .client
            .wait_until_table_exists()
            .table_name(&*self.table)
            .wait(MAX_WAIT)
            .await
        {
            Ok(_) => Ok(()),
            Err(
                aws_sdk_dynamodb::waiters::table_exists::WaitUntilTableExistsError::ExceededMaxWait(
                    _,
                ),
            ) => Err(StoreError::Timeout {
                operation: "waiting for the table to be active",
                millis: MAX_WAIT.as_millis() as u64,
            }),
            Err(e) => Err(StoreError::service(
                "DescribeTable",
                Fault::Unreachable(Box::new(e)),
            )),
        }
    }

    /// Deletes the table, turning its deletion protection off first: for test teardown only,
    /// so it exists only with the `test-util` feature.
    ///
    /// # Errors
    /// [`StoreError::Service`].
    #[cfg(any(test, feature = "test-util"))]
    pub async fn delete_table(&self) -> Result<(), StoreError> {
        self.client
            .update_table()
            .table_name(&*self.table)
            .deletion_protection_enabled(false)
            .send()
            .await
            .map_err(self.fail("UpdateTable"))?;
        self.client
            .delete_table()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(self.fail("DeleteTable"))?;
        Ok(())
    }
}
