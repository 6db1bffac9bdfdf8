//! The only code that imports `aws_sdk_*`: the DynamoDB store (a file per port), the
//! EventBridge publisher, the worker dispatch (Lambda invoke), SSM secrets, SDK configuration,
//! the SDK's HTTP client and a request counter.

mod counter;
mod dynamo;
mod eventbridge;
mod http;
mod invoke;
mod items;
mod ssm;

pub use counter::RequestCounter;
pub use dynamo::DynamoStore;
pub use eventbridge::{EventBridgePublisher, PutEventsApi};
pub use http::http_client;
pub use invoke::{InvokeApi, WorkerDispatch};
pub use items::day_change;
pub use ssm::{SECRET_SETTINGS, SecretsError, resolve_secret_parameters};

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;

/// SDK configuration from the usual AWS settings (region, credentials, `AWS_ENDPOINT_URL*`),
/// sending with our HTTP client (`http_client`).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client()).load().await
}

/// SDK configuration for a local AWS-compatible endpoint on loopback: dummy credentials and a
/// fixed region, so the SDK never looks for real ones (or probes the metadata address).
pub fn local_sdk_config(endpoint: &str) -> SdkConfig {
    use aws_config::Region;
    use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "local")))
        .endpoint_url(endpoint)
        .http_client(http_client())
        .build()
}
