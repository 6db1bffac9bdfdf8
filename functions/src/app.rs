//! What every function builds once at cold start and lends to its handler.

use std::collections::HashMap;
use std::sync::Arc;
use stepsync::aws::{DynamoStore, EventBridgePublisher, SdkConfig};
use stepsync::clock::{Clock, SystemClock};
use stepsync::config::Config;
use stepsync::crypto::AesGcmTokenCipher;
use stepsync::ports::EventPublisher;
use stepsync::providers::google_health::{GoogleHealthClient, GoogleHealthSettings};
use stepsync::providers::misfit::{MisfitClient, MisfitSettings};
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
    /// Builds everything from the environment: AWS settings, the secrets from SSM (one call),
    /// then `Config::from_vars`. Runs once per cold start.
    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let sdk = stepsync::aws::load_sdk_config().await;
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        resolve_secret_parameters(&aws_sdk_ssm::Client::new(&sdk), &mut vars).await?;
        let config = Config::from_vars(&vars)?;
        Self::new(config, &sdk)
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
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
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let providers = providers(&config, clock.clone())?;
        let engine = SyncEngine {
            steps: store.clone(),
            connections: store.clone(),
            publisher,
            cipher: Arc::new(AesGcmTokenCipher::new(config.token_key())),
            clock,
            limits: config.limits,
            schedule: config.schedule.clone(),
        };
        Ok(Self { config, store, engine, providers })
    }
}

/// Settings that hold secrets. Deployed, each comes from the SSM SecureString parameter named
/// by `{SETTING}_PARAMETER` (decrypted with the stack's KMS key), never from a plain
/// environment value; locally the setting itself may be set.
pub const SECRET_SETTINGS: [&str; 4] = [
    "STEPSYNC_TOKEN_KEY",
    "STEPSYNC_GOOGLE_CLIENT_SECRET",
    "STEPSYNC_GOOGLE_WEBHOOK_SECRET",
    "STEPSYNC_MISFIT_CLIENT_SECRET",
];

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("reading secrets from SSM failed: {0}")]
    Ssm(String),
    #[error("the SSM parameter for {0} does not exist")]
    Missing(String),
}

/// Replaces every `{SETTING}_PARAMETER` in `vars` by `{SETTING}` = the parameter's value,
/// fetched in one `GetParameters` call with decryption. Values are never logged.
pub async fn resolve_secret_parameters(
    ssm: &aws_sdk_ssm::Client,
    vars: &mut HashMap<String, String>,
) -> Result<(), SecretsError> {
    let wanted: Vec<(&str, String)> = SECRET_SETTINGS
        .iter()
        .filter_map(|setting| {
            let name = vars.get(&format!("{setting}_PARAMETER")).filter(|n| !n.is_empty())?;
            Some((*setting, name.clone()))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = wanted.iter().map(|(_, name)| name.clone()).collect();
    names.sort();
    names.dedup();
    let out = ssm
        .get_parameters()
        .set_names(Some(names))
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| SecretsError::Ssm(aws_sdk_ssm::error::DisplayErrorContext(&e).to_string()))?;
    let found: HashMap<String, String> =
        out.parameters().iter().filter_map(|p| Some((p.name()?.to_owned(), p.value()?.to_owned()))).collect();
    for (setting, name) in wanted {
        let value = found.get(&name).ok_or_else(|| SecretsError::Missing(setting.to_owned()))?;
        vars.insert(setting.to_owned(), value.clone());
    }
    Ok(())
}

/// The provider clients this configuration turns on.
fn providers(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<ProviderRegistry, Box<dyn std::error::Error + Send + Sync>> {
    let mut registry = ProviderRegistry::default().with(Arc::new(FitbitLegacy::default()));
    if let Some(google) = &config.google {
        let mut settings = GoogleHealthSettings::new(
            google.client_id.clone(),
            google.client_secret.clone(),
            google.keyset_url.clone(),
        );
        let urls = [
            (&mut settings.auth_url, &google.auth_url),
            (&mut settings.token_url, &google.token_url),
            (&mut settings.revoke_url, &google.revoke_url),
            (&mut settings.api_base, &google.api_base),
        ];
        for (setting, configured) in urls {
            if let Some(url) = configured {
                setting.clone_from(url);
            }
        }
        settings.webhook_secret = google.webhook_secret.clone();
        settings.require_authorization = google.require_authorization;
        registry = registry.with(Arc::new(GoogleHealthClient::new(settings, clock.clone())?));
    }
    if let Some(misfit) = &config.misfit {
        let mut settings = MisfitSettings::new(misfit.client_id.clone(), misfit.client_secret.clone());
        if let Some(url) = &misfit.base_url {
            settings.base_url.clone_from(url);
        }
        settings.allowed_sns_hosts.clone_from(&misfit.sns_hosts);
        settings.allow_aws_sns_hosts = misfit.allow_aws_sns;
        settings.allowed_topic_arns.clone_from(&misfit.topic_arns);
        settings.cert_url_rewrites.clone_from(&misfit.sns_url_rewrites);
        registry = registry.with(Arc::new(MisfitClient::new(settings, clock)?));
    }
    Ok(registry)
}
