//! Building the AWS clients once, at start. Endpoints come from the SDK's own variables
//! (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_CONNECT`, …): an
//! `endpoint_url` set on the shared loader would override all of them, so the loader is left
//! alone and only S3's addressing style is adjusted.

use secrecy::SecretString;

use crate::config::{Config, VerintKeySource};
use crate::verint::{ApiKey, VerintClient, VerintError};

#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub connect: aws_sdk_connect::Client,
    pub sdk: aws_config::SdkConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the Verint API key secret {secret} could not be read")]
    Secret { secret: String, #[source] source: Box<dyn std::error::Error + Send + Sync> },
    #[error("the Verint API key secret {secret} is malformed: {reason}")]
    SecretFormat { secret: String, reason: String },
    #[error("the Verint client could not be built")]
    Verint(#[source] VerintError),
}

impl Clients {
    /// Loads the SDK configuration; `lookup` tells whether an S3 endpoint is overridden, in which
    /// case S3 uses path-style addressing (emulators have no virtual-host buckets).
    pub async fn load(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|v| lookup(v).is_some_and(|s| !s.is_empty()));
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(overridden).build());
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let connect_conf = aws_sdk_connect::config::Builder::from(&sdk)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6))
            .build();
        let connect = aws_sdk_connect::Client::from_conf(connect_conf);
        Clients { s3, sqs, connect, sdk }
    }

    /// The Verint API key, from the environment or from Secrets Manager (`{"keyId","key"}`).
    pub async fn verint_key(&self, config: &Config) -> Result<ApiKey, StartError> {
        match &config.verint_key {
            VerintKeySource::Direct { key_id, key } => ApiKey::new(key_id.clone(), key)
                .map_err(|reason| StartError::SecretFormat { secret: "VERINT_API_KEY".into(), reason }),
            VerintKeySource::Secret(secret) => {
                let client = aws_sdk_secretsmanager::Client::new(&self.sdk);
                let out = client.get_secret_value().secret_id(secret).send().await.map_err(|e| StartError::Secret {
                    secret: secret.clone(),
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
                    .ok_or_else(|| StartError::SecretFormat { secret: secret.clone(), reason: "expected JSON {\"keyId\",\"key\"}".into() })?;
                ApiKey::new(stored.key_id, &SecretString::from(stored.key))
                    .map_err(|reason| StartError::SecretFormat { secret: secret.clone(), reason })
            }
        }
    }

    pub async fn verint(&self, config: &Config) -> Result<VerintClient, StartError> {
        let key = self.verint_key(config).await?;
        VerintClient::new(config.verint_das_url.clone(), config.verint_ingest_url.clone(), key).map_err(StartError::Verint)
    }
}
