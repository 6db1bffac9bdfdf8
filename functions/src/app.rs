//! What every function builds once at cold start and lends to its handler.

use std::sync::Arc;
use stepsync::aws::{DynamoStore, EventBridgePublisher, SdkConfig};
use stepsync::clock::{Clock, SystemClock};
use stepsync::config::Config;
use stepsync::crypto::AesGcmTokenCipher;
use stepsync::ports::EventPublisher;
use stepsync::providers::{FitbitLegacy, ProviderRegistry};
use stepsync::sync::SyncEngine;

/// Shared state: the store, the engine and the provider clients.
pub struct App {
    pub config: Config,
    pub store: Arc<DynamoStore>,
    pub engine: SyncEngine,
    pub providers: ProviderRegistry,
}

impl App {
    /// Builds everything from the environment: AWS settings and `Config::from_env`.
    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let config = Config::from_env()?;
        let sdk = stepsync::aws::load_sdk_config().await;
        Ok(Self::new(config, &sdk))
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name.clone()));
        let publisher =
            Arc::new(EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(sdk), config.event_bus_name.clone()));
        Self::from_parts(config, store, publisher, Arc::new(SystemClock))
    }

    /// From ready parts (tests lend their own publisher and clock).
    pub fn from_parts(
        config: Config,
        store: Arc<DynamoStore>,
        publisher: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let engine = SyncEngine {
            steps: store.clone(),
            connections: store.clone(),
            publisher,
            cipher: Arc::new(AesGcmTokenCipher::new(config.token_key())),
            clock,
            limits: config.limits,
        };
        let providers = ProviderRegistry::default().with(Arc::new(FitbitLegacy));
        Self { config, store, engine, providers }
    }
}
