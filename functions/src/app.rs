//! What every function builds once at cold start and lends to its handler: the adapters
//! (DynamoDB, EventBridge, the provider clients, the token cipher) behind the services.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stepsync::aws::{DynamoStore, EventBridgePublisher, SdkConfig, WorkerDispatch};
use stepsync::clock::{Clock, SystemClock};
use stepsync::config::{Config, Loads};
use stepsync::crypto::{AesGcmTokenCipher, NoTokenKey};
use stepsync::ports::{EventPublisher, Providers, Store, TokenCipher};
use stepsync::services::{ConnectSettings, Ports, Services, Settings, SyncSettings};

/// The configuration and the services, built once over the adapters.
pub struct App {
    pub config: Config,
    pub services: Services,
}

impl App {
    /// Builds what one function `loads` from the environment: AWS settings, its secrets from
    /// SSM (one call, none when it loads no secret), then `Config::loading`. Runs once per cold
    /// start.
    pub async fn from_env(loads: Loads) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let sdk = stepsync::aws::load_sdk_config().await;
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        stepsync::aws::resolve_secret_parameters(&sdk, &loads.secret_settings(), &mut vars).await?;
        let config = Config::loading(&vars, loads)?;
        Self::new(config, &sdk)
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name.clone()));
        let bus: Arc<dyn EventPublisher> =
            Arc::new(EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(sdk), config.event_bus_name.clone()));
        // A sync is handed straight to sync-worker where the template names it: one hop and
        // one PutEvents entry fewer than the bus's rule (stepsync::aws::WorkerDispatch).
        let publisher: Arc<dyn EventPublisher> = match &config.sync_worker_function {
            Some(worker) => Arc::new(WorkerDispatch::new(aws_sdk_lambda::Client::new(sdk), worker.clone(), bus)),
            None => bus,
        };
        Self::from_parts(config, store, publisher, Arc::new(SystemClock))
    }

    /// From ready parts (tests and the local stack lend their own store, publisher and clock);
    /// the provider parts are those `config.loads` names.
    pub fn from_parts(
        config: Config,
        store: Arc<dyn Store>,
        publisher: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let providers = stepsync::providers::registry(
            config.google.as_ref(),
            config.misfit.as_ref(),
            config.loads.providers,
            clock.clone(),
        )?;
        Ok(Self::with_providers(config, store, publisher, clock, providers))
    }

    /// From ready parts and a ready provider registry.
    pub fn with_providers(
        config: Config,
        store: Arc<dyn Store>,
        publisher: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
        providers: Providers,
    ) -> Self {
        let ports = Ports::over(store, publisher, clock);
        let cipher: Arc<dyn TokenCipher> = match config.token_key() {
            Some(key) => Arc::new(AesGcmTokenCipher::new(key).with_previous(config.previous_token_keys())),
            None => Arc::new(NoTokenKey),
        };
        let settings = Settings {
            limits: config.limits,
            schedule: config.schedule.clone(),
            connect: ConnectSettings {
                public_url: config.public_url.clone(),
                return_to_allowlist: config.return_to_allowlist.clone(),
                backfill_days: config.backfill_days,
            },
            sync: SyncSettings {
                window_days: config.sync_window_days,
                worker_concurrency: config.worker_concurrency,
                manual_cooldown: Duration::from_secs(u64::from(config.manual_cooldown_seconds)),
                manual_deadline: Duration::from_millis(u64::from(config.manual_deadline_ms)),
            },
            coalesce: Duration::from_secs(u64::from(config.webhook_coalesce_seconds)),
            uploads_per_minute: config.uploads_per_minute,
            steps_updated: config.steps_updated,
        };
        Self { services: Services::new(ports, cipher, providers, settings), config }
    }
}
