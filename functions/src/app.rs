//! What every function builds once at cold start and lends to its handler: the adapters
//! (DynamoDB, EventBridge, the provider clients, the token cipher) behind the services.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stepsync::aws::{DynamoStore, EventBridgePublisher, SdkConfig, SecretsError, WorkerDispatch};
use stepsync::clock::{Clock, SystemClock};
use stepsync::config::{Config, ConfigError, Loads};
use stepsync::crypto::{AesGcmTokenCipher, NoTokenKey};
use stepsync::ports::{EventPublisher, Providers, Store, TokenCipher};
use stepsync::providers::SetupError;
use stepsync::services::{ConnectSettings, NudgeSettings, Ports, Services, Settings, SyncSettings};

/// The configuration and the services, built once over the adapters.
pub struct App {
    pub config: Config,
    pub services: Services,
}

/// Why a function could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("a provider's client: {0}")]
    Providers(#[from] SetupError),
}

/// What a function settles before its first event: its settings, secrets included (one SSM
/// call when deployed), checked once so that a missing or malformed one fails the init as
/// before. The AWS clients and the provider clients are built from it when the first event
/// needs them ([`Prepared::build`]): building the SDK's first client reads and parses the
/// system's root certificates, which is most of a cold start's own work.
#[derive(Clone)]
pub struct Prepared {
    vars: HashMap<String, String>,
    loads: Loads,
    /// Loaded already when the secrets needed it.
    sdk: Option<SdkConfig>,
}

impl Prepared {
    /// Reads what `loads` names from the environment: the secrets from SSM (one call, none
    /// when the function loads no secret or the settings are given locally), then checks
    /// the configuration.
    pub async fn from_env(loads: Loads) -> Result<Self, StartError> {
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        let secrets = loads.secret_settings();
        let names_a_parameter = secrets
            .iter()
            .any(|setting| vars.get(&format!("{setting}_PARAMETER")).is_some_and(|name| !name.is_empty()));
        let sdk = if names_a_parameter {
            let sdk = stepsync::aws::load_sdk_config().await;
            stepsync::aws::resolve_secret_parameters(&sdk, &secrets, &mut vars).await?;
            Some(sdk)
        } else {
            None
        };
        Config::loading(&vars, loads)?;
        Ok(Self { vars, loads, sdk })
    }

    /// Forgets the settings once the app holds them: a later `build` finds none.
    pub fn release(&mut self) {
        self.vars = HashMap::new();
        self.sdk = None;
    }

    /// The app: AWS settings (unless the secrets loaded them), the DynamoDB and EventBridge
    /// clients, the provider clients and the token cipher.
    pub async fn build(&self) -> Result<App, StartError> {
        let config = Config::loading(&self.vars, self.loads)?;
        match &self.sdk {
            Some(sdk) => App::new(config, sdk),
            None => App::new(config, &stepsync::aws::load_sdk_config().await),
        }
    }
}

impl App {
    /// Builds what one function `loads` from the environment, all at once (see [`Prepared`]
    /// for the two halves the Lambda runtime uses).
    pub async fn from_env(loads: Loads) -> Result<Self, StartError> {
        Prepared::from_env(loads).await?.build().await
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Result<Self, StartError> {
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
    ) -> Result<Self, StartError> {
        let providers = stepsync::providers::registry(config.sources(), store.clone(), clock.clone())?;
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
            uploads_per_minute: config.uploads_per_minute,
            steps_updated: config.steps_updated,
            nudges: NudgeSettings {
                enabled: config.nudges,
                period: Duration::from_secs(3600 * u64::from(config.nudge_period_hours)),
            },
        };
        Self { services: Services::new(ports, cipher, providers, settings), config }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared() -> Prepared {
        let vars = [("STEPSYNC_TABLE", "stepsync"), ("STEPSYNC_PUBLIC_URL", "https://api.stepsync.example")];
        Prepared {
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            loads: Loads::STORE_ONLY,
            sdk: Some(stepsync::aws::local_sdk_config("http://127.0.0.1:9")),
        }
    }

    #[tokio::test]
    async fn the_app_is_built_from_the_checked_settings_until_they_are_released() {
        let mut prepared = prepared();
        let app = prepared.build().await.unwrap();
        assert_eq!(app.config.table_name, "stepsync");
        prepared.release();
        assert!(matches!(prepared.build().await, Err(StartError::Config(_))), "nothing is left to build from");
    }
}
