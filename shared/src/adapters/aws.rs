//! Building the AWS clients once, at start. Endpoints come from the SDK's own variable names
//! (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_CONNECT`, …), each set on
//! its own service's client: an `endpoint_url` on the shared loader would override all of them
//! and send Connect calls to the S3 emulator.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use secrecy::SecretString;

use crate::adapters::verint::keys::KeyReadError;
use crate::adapters::verint::{ApiKey, KeySource, Keys, VerintClient};
use crate::config::{Config, VerintKeySource};
use crate::ports::verint::VerintError;

#[derive(Debug, Clone)]
pub struct Clients {
    /// The shared configuration (region, credentials) the clients were built from, for a client
    /// of another service (recoveryctl --stack).
    pub sdk: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub connect: aws_sdk_connect::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the Verint API key secret {secret} could not be read")]
    Secret {
        secret: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the Verint API key secret {secret} is malformed: {reason}")]
    SecretFormat { secret: String, reason: String },
    #[error("the Verint client could not be built")]
    Verint(#[source] VerintError),
}

/// Operation (all attempts, the SDK's retries included) and attempt timeouts for one service.
/// They bound every call's request and response head; a streaming body (S3 `GetObject`) is read
/// after the operation ends and is bounded by the worker's stall watchdog instead.
fn timeouts(operation: u64, attempt: u64) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(operation))
        .operation_attempt_timeout(Duration::from_secs(attempt))
        .build()
}

/// S3: object reads and writes of reports and ledgers (a few MB at most) within the region.
pub(crate) fn s3_timeouts() -> TimeoutConfig {
    timeouts(60, 20)
}

/// SQS: an attempt must outlast a 20 s long poll (`ReceiveMessage`).
pub(crate) fn sqs_timeouts() -> TimeoutConfig {
    timeouts(60, 30)
}

/// Connect: `DescribeContact`, with room for the SDK's retries of throttling.
pub(crate) fn connect_timeouts() -> TimeoutConfig {
    timeouts(30, 10)
}

/// Secrets Manager: one read at start.
pub(crate) fn secrets_timeouts() -> TimeoutConfig {
    timeouts(30, 10)
}

impl Clients {
    /// Builds every client from `lookup` (the process environment in the functions, a map in
    /// tests): region, static credentials when given, and one endpoint per service from the SDK's
    /// standard variable names. When S3's endpoint is overridden, S3 uses path-style addressing
    /// (emulators have no virtual-host buckets).
    pub async fn load(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")) {
            loader = loader.region(aws_config::Region::new(region));
        }
        if let (Some(key), Some(secret)) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"))
        {
            let credentials = aws_credential_types::Credentials::new(
                key,
                secret,
                get("AWS_SESSION_TOKEN"),
                None,
                "environment",
            );
            loader = loader.credentials_provider(credentials);
        }
        let sdk = loader.load().await;
        let endpoint = |service: &str| {
            get(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| get("AWS_ENDPOINT_URL"))
        };

        let s3_endpoint = endpoint("S3");
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(s3_endpoint.is_some())
            .timeout_config(s3_timeouts());
        if let Some(url) = s3_endpoint {
            s3 = s3.endpoint_url(url);
        }
        let mut sqs = aws_sdk_sqs::config::Builder::from(&sdk).timeout_config(sqs_timeouts());
        if let Some(url) = endpoint("SQS") {
            sqs = sqs.endpoint_url(url);
        }
        let mut connect = aws_sdk_connect::config::Builder::from(&sdk)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6))
            .timeout_config(connect_timeouts());
        if let Some(url) = endpoint("CONNECT") {
            connect = connect.endpoint_url(url);
        }
        let mut secrets =
            aws_sdk_secretsmanager::config::Builder::from(&sdk).timeout_config(secrets_timeouts());
        if let Some(url) = endpoint("SECRETS_MANAGER") {
            secrets = secrets.endpoint_url(url);
        }
        Clients {
            sdk: sdk.clone(),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            connect: aws_sdk_connect::Client::from_conf(connect.build()),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
        }
    }

    /// The Verint client, signing with the key from the environment or from Secrets Manager
    /// (`{"keyId","key"}`); a key from a secret follows its rotation (design §6).
    pub async fn verint(&self, config: &Config) -> Result<VerintClient, StartError> {
        let keys = match &config.verint_key {
            VerintKeySource::Direct { key_id, key } => {
                Keys::fixed(ApiKey::new(key_id.clone(), key).map_err(|reason| {
                    StartError::SecretFormat {
                        secret: "VERINT_API_KEY".into(),
                        reason,
                    }
                })?)
            }
            VerintKeySource::Secret(secret) => {
                let source = SecretKey {
                    secrets: self.secrets.clone(),
                    secret: secret.clone(),
                };
                let key = source.read_key().await?;
                Keys::from_source(key, Arc::new(source))
            }
        };
        VerintClient::with_key_set(
            config.verint_das_url.clone(),
            config.verint_ingest_url.clone(),
            Arc::new(keys),
        )
        .map(|v| v.with_stall_timeout(config.stall_timeout))
        .map_err(StartError::Verint)
    }
}

/// The Verint key in a Secrets Manager secret (`{"keyId","key"}`), read at start and again when
/// Verint refuses it or it is old.
#[derive(Debug)]
struct SecretKey {
    secrets: aws_sdk_secretsmanager::Client,
    secret: String,
}

impl SecretKey {
    async fn read_key(&self) -> Result<ApiKey, StartError> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret)
            .send()
            .await
            .map_err(|e| StartError::Secret {
                secret: self.secret.clone(),
                source: Box::new(e.into_service_error()),
            })?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored {
            key_id: String,
            key: String,
        }
        let stored: Stored = out
            .secret_string()
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| StartError::SecretFormat {
                secret: self.secret.clone(),
                reason: "expected JSON {\"keyId\",\"key\"}".into(),
            })?;
        ApiKey::new(stored.key_id, &SecretString::from(stored.key)).map_err(|reason| {
            StartError::SecretFormat {
                secret: self.secret.clone(),
                reason,
            }
        })
    }
}

impl KeySource for SecretKey {
    fn read(&self) -> Pin<Box<dyn Future<Output = Result<ApiKey, KeyReadError>> + Send + '_>> {
        Box::pin(async move { self.read_key().await.map_err(KeyReadError::from) })
    }
}

/// Every object under `prefix`, across all pages of `ListObjectsV2`.
pub(crate) async fn list_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<
    Vec<aws_sdk_s3::types::Object>,
    aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        objects.extend(
            page.map_err(|e| e.into_service_error())?
                .contents
                .unwrap_or_default(),
        );
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_sdk_client_has_operation_and_attempt_timeouts() {
        let vars = std::collections::HashMap::from([
            ("AWS_REGION", "eu-west-2"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]);
        let clients = Clients::load(|k| vars.get(k).map(|v| v.to_string())).await;
        let configs = [
            ("s3", clients.s3.config().timeout_config().cloned()),
            ("sqs", clients.sqs.config().timeout_config().cloned()),
            (
                "connect",
                clients.connect.config().timeout_config().cloned(),
            ),
            (
                "secrets",
                clients.secrets.config().timeout_config().cloned(),
            ),
        ];
        for (name, timeouts) in configs {
            let t = timeouts.unwrap_or_else(|| panic!("{name}: no timeout config"));
            let operation = t.operation_timeout().expect("an operation timeout");
            let attempt = t.operation_attempt_timeout().expect("an attempt timeout");
            assert!(attempt <= operation, "{name}");
            assert!(t.connect_timeout().is_some(), "{name}");
        }
        let sqs = sqs_timeouts();
        assert!(
            sqs.operation_attempt_timeout().expect("attempt") > Duration::from_secs(20),
            "an SQS attempt outlasts a 20 s long poll"
        );
    }
}
