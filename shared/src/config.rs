//! Settings read once from the environment into a typed struct; no `env::var` elsewhere.

use crate::domain::StepLimits;
use crate::engine::Schedule;
use crate::providers::Parts;
use crate::providers::garmin::GarminSettings;
use crate::providers::google_health::GoogleHealthSettings;
use crate::providers::misfit::MisfitSettings;
use crate::providers::oura::OuraSettings;
use crate::providers::polar::PolarSettings;
use crate::providers::quota::QuotaWindow;
use crate::providers::withings::WithingsSettings;
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("configuration {name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, message: message.into() }
    }
}

/// What one function loads at cold start: the secrets and provider parts its routes use,
/// nothing more. A function without the token key cannot open a stored token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loads {
    /// `STEPSYNC_TOKEN_KEY`: to seal and open OAuth tokens (connecting, syncing).
    pub token_key: bool,
    /// Which halves of each provider: the API clients (with the client secrets) and the
    /// webhook verifiers (with the endpoint secrets).
    pub providers: Parts,
}

impl Loads {
    /// Tests and the local stack: every part.
    pub const EVERYTHING: Loads = Loads { token_key: true, providers: Parts { clients: true, verifiers: true } };
    /// Connecting and syncing: the token key and the API clients, no webhook verifier.
    pub const CLIENTS: Loads = Loads { token_key: true, providers: Parts { clients: true, verifiers: false } };
    /// The public webhook: verifiers only, no token key, no client secret.
    pub const VERIFIERS: Loads = Loads { token_key: false, providers: Parts { clients: false, verifiers: true } };
    /// The daily run: the API clients (to keep the sources' subscriptions), no token key.
    pub const APP_CLIENTS: Loads = Loads { token_key: false, providers: Parts { clients: true, verifiers: false } };
    /// Challenges and the scheduled sweep: the table and the bus, no secret at all.
    pub const STORE_ONLY: Loads = Loads { token_key: false, providers: Parts { clients: false, verifiers: false } };

    /// The secret settings (see `aws::SECRET_SETTINGS`) this function reads, and no other.
    pub fn secret_settings(self) -> Vec<&'static str> {
        let mut settings = Vec::new();
        if self.token_key {
            settings.extend(["STEPSYNC_TOKEN_KEY", "STEPSYNC_TOKEN_KEY_PREVIOUS"]);
        }
        if self.providers.clients {
            settings.extend([
                "STEPSYNC_GOOGLE_CLIENT_SECRET",
                "STEPSYNC_MISFIT_CLIENT_SECRET",
                "STEPSYNC_WITHINGS_CLIENT_SECRET",
                "STEPSYNC_POLAR_CLIENT_SECRET",
                "STEPSYNC_GARMIN_CLIENT_SECRET",
            ]);
        }
        if self.providers.verifiers {
            // Garmin signs nothing either: only its webhook checks the token our callback carries.
            settings.extend([
                "STEPSYNC_GOOGLE_WEBHOOK_SECRET",
                "STEPSYNC_POLAR_WEBHOOK_SECRET",
                "STEPSYNC_GARMIN_NOTIFY_TOKEN",
            ]);
        }
        if self.providers.clients || self.providers.verifiers {
            // Oura signs notifications with the client secret; the verification token is
            // what subscriptions are created with and what their verification GET carries.
            settings.extend(["STEPSYNC_OURA_CLIENT_SECRET", "STEPSYNC_OURA_VERIFICATION_TOKEN"]);
            // Withings signs nothing: our callback URL carries this token, which the client
            // subscribes with and the verifier checks.
            settings.push("STEPSYNC_WITHINGS_NOTIFY_TOKEN");
        }
        settings
    }
}

pub struct Config {
    /// What this function loaded.
    pub loads: Loads,
    /// `STEPSYNC_TABLE`: the one DynamoDB table.
    pub table_name: String,
    /// `STEPSYNC_EVENT_BUS`: the EventBridge bus StepSync publishes to.
    pub event_bus_name: String,
    /// `STEPSYNC_SYNC_WORKER_FUNCTION`: `sync-worker`'s name; set, a `SyncRequested` is handed
    /// to it by an asynchronous invoke instead of the bus (`aws::WorkerDispatch`).
    pub sync_worker_function: Option<String>,
    /// `STEPSYNC_TOKEN_KEY`: base64 of the 32-byte token data key (when `loads.token_key`).
    pub token_key: Option<SecretBox<[u8; 32]>>,
    /// `STEPSYNC_TOKEN_KEY_PREVIOUS`: comma-separated earlier token keys (a rotation in
    /// progress): tokens they sealed still open, and are sealed again with the current key on
    /// their next refresh.
    pub previous_token_keys: Vec<SecretBox<[u8; 32]>>,
    /// `STEPSYNC_MAX_DAILY_STEPS` (default 100000).
    pub limits: StepLimits,
    /// `STEPSYNC_SYNC_WINDOW_DAYS` (default 7): the default pull window, in local days.
    pub sync_window_days: u32,
    /// `STEPSYNC_BACKFILL_DAYS` (default 30): what a new connection pulls when the person is
    /// in no active challenge.
    pub backfill_days: u32,
    /// `STEPSYNC_PUBLIC_URL`: the API's public base URL; OAuth redirect URIs hang off it.
    pub public_url: String,
    /// `STEPSYNC_RETURN_TO_ALLOWLIST`: comma-separated URL prefixes a person may be sent
    /// back to after connecting; the first is the default.
    pub return_to_allowlist: Vec<String>,
    /// `STEPSYNC_GOOGLE_CLIENT_ID` turns Google Health on (`..._CLIENT_SECRET` is required
    /// where the API client is loaded); every URL
    /// can be pointed elsewhere (`..._AUTH_URL`, `..._TOKEN_URL`, `..._REVOKE_URL`,
    /// `..._API_BASE`, `..._KEYSET_URL`); `..._WEBHOOK_SECRET` is the subscriber's
    /// endpoint secret and `..._REQUIRE_AUTHORIZATION` (default false) makes notifications
    /// carry it too.
    pub google: Option<GoogleHealthSettings>,
    /// `STEPSYNC_MISFIT_CLIENT_ID` turns Misfit on (`..._CLIENT_SECRET` is required where the
    /// API client is loaded); `..._BASE_URL`
    /// points it elsewhere; `..._SNS_HOSTS` (comma-separated) are SNS hosts allowed besides
    /// AWS's own (`..._ALLOW_AWS_SNS`, default true); `..._TOPIC_ARNS` limits the topics
    /// accepted; `..._SNS_URL_REWRITES` (`from|to,...`) maps allowed SNS URLs to where a local
    /// stack serves them.
    pub misfit: Option<MisfitSettings>,
    /// `STEPSYNC_OURA_CLIENT_ID` turns Oura on; `..._CLIENT_SECRET` is required wherever an
    /// Oura adapter is loaded (it signs notifications too) and `..._VERIFICATION_TOKEN` is
    /// what subscriptions carry; `..._AUTH_URL`, `..._TOKEN_URL`, `..._REVOKE_URL` and
    /// `..._API_BASE` point it elsewhere; `..._REQUESTS_PER_MINUTE` (300) and
    /// `..._REQUESTS_PER_DAY` (5000) are the app-wide budget. Notifications are asked for at
    /// `{STEPSYNC_PUBLIC_URL}/webhooks/oura`.
    pub oura: Option<OuraSettings>,
    /// `STEPSYNC_WITHINGS_CLIENT_ID` turns Withings on (`..._CLIENT_SECRET` is required where
    /// the API client is loaded); `..._NOTIFY_TOKEN` is the secret our notification callback
    /// (`{STEPSYNC_PUBLIC_URL}/webhooks/withings?token=...`) carries; `..._AUTH_URL` and
    /// `..._API_BASE` point it elsewhere; `..._REQUESTS_PER_MINUTE` (120) is the app-wide budget.
    pub withings: Option<WithingsSettings>,
    /// `STEPSYNC_POLAR_CLIENT_ID` turns Polar on (`..._CLIENT_SECRET` is required where the API
    /// client is loaded: the daily run's webhook check authenticates as the client too);
    /// `..._WEBHOOK_SECRET` is the one webhook's `signature_secret_key`, which Polar shows once
    /// when an operator creates the webhook at `{STEPSYNC_PUBLIC_URL}/webhooks/polar`;
    /// `..._AUTH_URL`, `..._TOKEN_URL` and `..._API_BASE` point it elsewhere;
    /// `..._REQUESTS_PER_QUARTER_HOUR` (500) and `..._REQUESTS_PER_DAY` (5000) are the budget.
    pub polar: Option<PolarSettings>,
    /// `STEPSYNC_GARMIN_CLIENT_ID` turns Garmin on (`..._CLIENT_SECRET` is required where the
    /// API client is loaded); `..._NOTIFY_TOKEN` is the secret our ping callback
    /// (`{STEPSYNC_PUBLIC_URL}/webhooks/garmin?token=...`, given to Garmin by an operator)
    /// carries; `..._AUTH_URL`, `..._TOKEN_URL` and `..._API_BASE` point it elsewhere;
    /// `..._BACKFILLS_PER_MINUTE` (100) is the budget of backfill requests.
    pub garmin: Option<GarminSettings>,
    /// `STEPSYNC_RECONCILE_MINUTES` (360), `STEPSYNC_PULL_MINUTES` (30), and the sweep shards
    /// from `STEPSYNC_EXPECTED_PEOPLE` (10,000; `engine::shards_for`).
    pub schedule: Schedule,
    /// `STEPSYNC_MANUAL_COOLDOWN_SECONDS` (default 60): one "Sync steps" per person per window.
    pub manual_cooldown_seconds: u32,
    /// `STEPSYNC_MANUAL_DEADLINE_MS` (default 8000): how long "Sync steps" waits inline.
    pub manual_deadline_ms: u32,
    /// `STEPSYNC_WORKER_CONCURRENCY` (default 8): connections one worker syncs at once.
    pub worker_concurrency: u32,
    /// `STEPSYNC_UPLOADS_PER_MINUTE` (default 12): phone uploads one person may send in a
    /// minute, all their phones together; more are answered 429 with `Retry-After`.
    pub uploads_per_minute: u32,
    /// `STEPSYNC_STEPS_UPDATED` (default off): publish one `StepsUpdated` per changed day for a
    /// company's app that subscribes. Off, no event is paid for that nobody reads.
    pub steps_updated: bool,
    /// `STEPSYNC_NUDGES` (default off): a delivery target for reminders is configured
    /// (deployed: the template's `NudgeTargetUrl`). Off, no reminder is recorded or sent.
    pub nudges: bool,
    /// `STEPSYNC_NUDGE_PERIOD_HOURS` (default 24, kept within 1–720): at most one reminder per
    /// person, source and diagnosis, and one digest per challenge, in this many hours.
    pub nudge_period_hours: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("event_bus_name", &self.event_bus_name)
            .field("sync_worker_function", &self.sync_worker_function)
            .field("token_key", &"[REDACTED]")
            .field("previous_token_keys", &format!("{} [REDACTED]", self.previous_token_keys.len()))
            .field("limits", &self.limits)
            .field("sync_window_days", &self.sync_window_days)
            .field("public_url", &self.public_url)
            .field("return_to_allowlist", &self.return_to_allowlist)
            .field("google", &self.google.as_ref().map(|g| &g.client_id))
            .finish()
    }
}

/// The return addresses, each a URL with a host (`https://app.example.com/done`) or an app's own
/// scheme (`stepsync://`): an entry that does not parse would match nothing, silently.
fn return_allowlist(raw: &str) -> Result<Vec<String>, ConfigError> {
    let entries = list(Some(raw));
    for entry in &entries {
        let parsed = url::Url::parse(entry).ok();
        let web = parsed.as_ref().is_some_and(|u| matches!(u.scheme(), "http" | "https"));
        let usable = parsed.as_ref().is_some_and(|u| !web || u.host_str().is_some_and(|h| !h.is_empty()));
        if !usable {
            return Err(ConfigError::new(
                "STEPSYNC_RETURN_TO_ALLOWLIST",
                format!("{entry:?} is not a URL with a host, nor an app scheme such as stepsync://"),
            ));
        }
    }
    Ok(entries)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Every part, from an explicit map (tests, the local stack).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::loading(vars, Loads::EVERYTHING)
    }

    /// What `loads` asks for, from an explicit map; settings it does not load are not read.
    pub fn loading(vars: &HashMap<String, String>, loads: Loads) -> Result<Self, ConfigError> {
        let get = |name: &'static str| vars.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or_else(|| ConfigError::new(name, "is not set"));
        let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            get(name).map_or(Ok(default), |v| v.parse().map_err(|_| ConfigError::new(name, "must be a whole number")))
        };
        // The client secret belongs to the API client: read where the clients are loaded.
        let client_secret = |id: &'static str, secret: &'static str| -> Result<Option<SecretString>, ConfigError> {
            if !loads.providers.clients {
                return Ok(None);
            }
            let value = get(secret).ok_or_else(|| ConfigError::new(id, format!("is set, so {secret} must be too")))?;
            Ok(Some(SecretString::from(value.to_owned())))
        };
        Ok(Self {
            loads,
            table_name: required("STEPSYNC_TABLE")?.to_owned(),
            event_bus_name: get("STEPSYNC_EVENT_BUS").unwrap_or("default").to_owned(),
            sync_worker_function: get("STEPSYNC_SYNC_WORKER_FUNCTION").filter(|f| !f.is_empty()).map(str::to_owned),
            token_key: if loads.token_key {
                Some(parse_key("STEPSYNC_TOKEN_KEY", required("STEPSYNC_TOKEN_KEY")?)?)
            } else {
                None
            },
            previous_token_keys: match get("STEPSYNC_TOKEN_KEY_PREVIOUS") {
                Some(keys) if loads.token_key => list(Some(keys))
                    .iter()
                    .map(|k| parse_key("STEPSYNC_TOKEN_KEY_PREVIOUS", k))
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            },
            limits: StepLimits { max_daily_steps: number("STEPSYNC_MAX_DAILY_STEPS", 100_000)? },
            sync_window_days: number("STEPSYNC_SYNC_WINDOW_DAYS", 7)?.clamp(1, 90),
            backfill_days: number("STEPSYNC_BACKFILL_DAYS", 30)?.clamp(1, 366),
            public_url: get("STEPSYNC_PUBLIC_URL").unwrap_or("http://127.0.0.1:3000").trim_end_matches('/').to_owned(),
            return_to_allowlist: return_allowlist(
                get("STEPSYNC_RETURN_TO_ALLOWLIST").unwrap_or("http://127.0.0.1:3000/"),
            )?,
            misfit: match get("STEPSYNC_MISFIT_CLIENT_ID") {
                Some(id) => {
                    let defaults = MisfitSettings {
                        client_secret: client_secret("STEPSYNC_MISFIT_CLIENT_ID", "STEPSYNC_MISFIT_CLIENT_SECRET")?,
                        ..MisfitSettings::new(id, SecretString::from(""))
                    };
                    Some(MisfitSettings {
                        base_url: get("STEPSYNC_MISFIT_BASE_URL").map_or(defaults.base_url.clone(), str::to_owned),
                        allowed_sns_hosts: list(get("STEPSYNC_MISFIT_SNS_HOSTS")),
                        allow_aws_sns_hosts: get("STEPSYNC_MISFIT_ALLOW_AWS_SNS")
                            .is_none_or(|v| !matches!(v, "0" | "false" | "no")),
                        allowed_topic_arns: {
                            // Without it anyone could subscribe the endpoint to a topic of
                            // their own and send validly signed notices.
                            let topics = list(get("STEPSYNC_MISFIT_TOPIC_ARNS"));
                            if loads.providers.verifiers && topics.is_empty() {
                                return Err(ConfigError::new(
                                    "STEPSYNC_MISFIT_TOPIC_ARNS",
                                    "must list the SNS topics Misfit notifies through (STEPSYNC_MISFIT_CLIENT_ID is set)",
                                ));
                            }
                            topics
                        },
                        cert_url_rewrites: list(get("STEPSYNC_MISFIT_SNS_URL_REWRITES"))
                            .iter()
                            .map(|pair| {
                                pair.split_once('|').map(|(a, b)| (a.to_owned(), b.to_owned())).ok_or_else(|| {
                                    ConfigError::new("STEPSYNC_MISFIT_SNS_URL_REWRITES", "each entry is from|to")
                                })
                            })
                            .collect::<Result<_, _>>()?,
                        ..defaults
                    })
                }
                None => None,
            },
            oura: match get("STEPSYNC_OURA_CLIENT_ID") {
                Some(id) if loads.providers.clients || loads.providers.verifiers => {
                    let secret = get("STEPSYNC_OURA_CLIENT_SECRET").ok_or_else(|| {
                        ConfigError::new(
                            "STEPSYNC_OURA_CLIENT_ID",
                            "is set, so STEPSYNC_OURA_CLIENT_SECRET must be too",
                        )
                    })?;
                    let public_url =
                        get("STEPSYNC_PUBLIC_URL").unwrap_or("http://127.0.0.1:3000").trim_end_matches('/');
                    let defaults = OuraSettings::new(
                        id,
                        SecretString::from(secret.to_owned()),
                        format!("{public_url}/webhooks/oura"),
                    );
                    let url = |name: &'static str, default: &str| get(name).unwrap_or(default).to_owned();
                    Some(OuraSettings {
                        auth_url: url("STEPSYNC_OURA_AUTH_URL", &defaults.auth_url),
                        token_url: url("STEPSYNC_OURA_TOKEN_URL", &defaults.token_url),
                        revoke_url: url("STEPSYNC_OURA_REVOKE_URL", &defaults.revoke_url),
                        api_base: url("STEPSYNC_OURA_API_BASE", &defaults.api_base),
                        verification_token: get("STEPSYNC_OURA_VERIFICATION_TOKEN")
                            .map(|t| SecretString::from(t.to_owned())),
                        quota: vec![
                            QuotaWindow::per_minute(number("STEPSYNC_OURA_REQUESTS_PER_MINUTE", 300)?.max(1)),
                            QuotaWindow::per_day(number("STEPSYNC_OURA_REQUESTS_PER_DAY", 5000)?.max(1)),
                        ],
                        ..defaults
                    })
                }
                _ => None,
            },
            withings: match get("STEPSYNC_WITHINGS_CLIENT_ID") {
                Some(id) if loads.providers.clients || loads.providers.verifiers => {
                    let public_url =
                        get("STEPSYNC_PUBLIC_URL").unwrap_or("http://127.0.0.1:3000").trim_end_matches('/');
                    let defaults = WithingsSettings {
                        client_secret: client_secret("STEPSYNC_WITHINGS_CLIENT_ID", "STEPSYNC_WITHINGS_CLIENT_SECRET")?,
                        ..WithingsSettings::new(id, SecretString::from(""), format!("{public_url}/webhooks/withings"))
                    };
                    let url = |name: &'static str, default: &str| get(name).unwrap_or(default).to_owned();
                    Some(WithingsSettings {
                        auth_url: url("STEPSYNC_WITHINGS_AUTH_URL", &defaults.auth_url),
                        api_base: url("STEPSYNC_WITHINGS_API_BASE", &defaults.api_base),
                        notify_token: get("STEPSYNC_WITHINGS_NOTIFY_TOKEN").map(|t| SecretString::from(t.to_owned())),
                        quota: vec![QuotaWindow::per_minute(
                            number("STEPSYNC_WITHINGS_REQUESTS_PER_MINUTE", 120)?.max(1),
                        )],
                        ..defaults
                    })
                }
                _ => None,
            },
            polar: match get("STEPSYNC_POLAR_CLIENT_ID") {
                Some(id) if loads.providers.clients || loads.providers.verifiers => {
                    let public_url =
                        get("STEPSYNC_PUBLIC_URL").unwrap_or("http://127.0.0.1:3000").trim_end_matches('/');
                    let defaults = PolarSettings {
                        client_secret: client_secret("STEPSYNC_POLAR_CLIENT_ID", "STEPSYNC_POLAR_CLIENT_SECRET")?,
                        ..PolarSettings::new(id, SecretString::from(""), format!("{public_url}/webhooks/polar"))
                    };
                    let url = |name: &'static str, default: &str| get(name).unwrap_or(default).to_owned();
                    Some(PolarSettings {
                        auth_url: url("STEPSYNC_POLAR_AUTH_URL", &defaults.auth_url),
                        token_url: url("STEPSYNC_POLAR_TOKEN_URL", &defaults.token_url),
                        api_base: url("STEPSYNC_POLAR_API_BASE", &defaults.api_base),
                        webhook_secret: get("STEPSYNC_POLAR_WEBHOOK_SECRET")
                            .filter(|_| loads.providers.verifiers)
                            .map(|s| SecretString::from(s.to_owned())),
                        quota: vec![
                            QuotaWindow {
                                length: Duration::from_secs(15 * 60),
                                limit: number("STEPSYNC_POLAR_REQUESTS_PER_QUARTER_HOUR", 500)?.max(1),
                            },
                            QuotaWindow::per_day(number("STEPSYNC_POLAR_REQUESTS_PER_DAY", 5000)?.max(1)),
                        ],
                        ..defaults
                    })
                }
                _ => None,
            },
            garmin: match get("STEPSYNC_GARMIN_CLIENT_ID") {
                Some(id) if loads.providers.clients || loads.providers.verifiers => {
                    let defaults = GarminSettings {
                        client_secret: client_secret("STEPSYNC_GARMIN_CLIENT_ID", "STEPSYNC_GARMIN_CLIENT_SECRET")?,
                        ..GarminSettings::new(id, SecretString::from(""))
                    };
                    let url = |name: &'static str, default: &str| get(name).unwrap_or(default).to_owned();
                    Some(GarminSettings {
                        auth_url: url("STEPSYNC_GARMIN_AUTH_URL", &defaults.auth_url),
                        token_url: url("STEPSYNC_GARMIN_TOKEN_URL", &defaults.token_url),
                        api_base: url("STEPSYNC_GARMIN_API_BASE", &defaults.api_base),
                        notify_token: get("STEPSYNC_GARMIN_NOTIFY_TOKEN")
                            .filter(|_| loads.providers.verifiers)
                            .map(|t| SecretString::from(t.to_owned())),
                        quota: vec![QuotaWindow::per_minute(
                            number("STEPSYNC_GARMIN_BACKFILLS_PER_MINUTE", 100)?.max(1),
                        )],
                        ..defaults
                    })
                }
                _ => None,
            },
            schedule: Schedule {
                webhook_interval: Duration::from_secs(
                    60 * u64::from(number("STEPSYNC_RECONCILE_MINUTES", 360)?.max(1)),
                ),
                pull_interval: Duration::from_secs(60 * u64::from(number("STEPSYNC_PULL_MINUTES", 30)?.max(1))),
                shards: crate::engine::shards_for(u64::from(number("STEPSYNC_EXPECTED_PEOPLE", 10_000)?)),
                ..Schedule::default()
            },
            manual_cooldown_seconds: number("STEPSYNC_MANUAL_COOLDOWN_SECONDS", 60)?,
            manual_deadline_ms: number("STEPSYNC_MANUAL_DEADLINE_MS", 8000)?,
            worker_concurrency: number("STEPSYNC_WORKER_CONCURRENCY", 8)?.clamp(1, 64),
            uploads_per_minute: number("STEPSYNC_UPLOADS_PER_MINUTE", 12)?.max(1),
            steps_updated: get("STEPSYNC_STEPS_UPDATED").is_some_and(|v| matches!(v, "1" | "true" | "yes" | "on")),
            nudges: get("STEPSYNC_NUDGES").is_some_and(|v| matches!(v, "1" | "true" | "yes" | "on")),
            nudge_period_hours: number("STEPSYNC_NUDGE_PERIOD_HOURS", 24)?.clamp(1, 720),
            google: match get("STEPSYNC_GOOGLE_CLIENT_ID") {
                Some(id) => {
                    let defaults = GoogleHealthSettings {
                        client_secret: client_secret("STEPSYNC_GOOGLE_CLIENT_ID", "STEPSYNC_GOOGLE_CLIENT_SECRET")?,
                        ..GoogleHealthSettings::new(
                            id,
                            SecretString::from(""),
                            get("STEPSYNC_GOOGLE_KEYSET_URL")
                                .unwrap_or(crate::providers::google_health::DEFAULT_KEYSET_URL),
                        )
                    };
                    let url = |name: &'static str, default: &str| get(name).unwrap_or(default).to_owned();
                    Some(GoogleHealthSettings {
                        auth_url: url("STEPSYNC_GOOGLE_AUTH_URL", &defaults.auth_url),
                        token_url: url("STEPSYNC_GOOGLE_TOKEN_URL", &defaults.token_url),
                        revoke_url: url("STEPSYNC_GOOGLE_REVOKE_URL", &defaults.revoke_url),
                        api_base: url("STEPSYNC_GOOGLE_API_BASE", &defaults.api_base),
                        webhook_secret: get("STEPSYNC_GOOGLE_WEBHOOK_SECRET")
                            .filter(|_| loads.providers.verifiers)
                            .map(|s| SecretString::from(s.to_owned())),
                        require_authorization: get("STEPSYNC_GOOGLE_REQUIRE_AUTHORIZATION")
                            .is_some_and(|v| matches!(v, "1" | "true" | "yes")),
                        ..defaults
                    })
                }
                None => None,
            },
        })
    }

    /// Each source's settings and the parts this function builds, for the provider registry.
    pub fn sources(&self) -> crate::providers::SourceSettings<'_> {
        crate::providers::SourceSettings {
            google: self.google.as_ref(),
            misfit: self.misfit.as_ref(),
            oura: self.oura.as_ref(),
            withings: self.withings.as_ref(),
            polar: self.polar.as_ref(),
            garmin: self.garmin.as_ref(),
            parts: self.loads.providers,
        }
    }

    /// The token key, where this function loaded it.
    pub fn token_key(&self) -> Option<&[u8; 32]> {
        self.token_key.as_ref().map(ExposeSecret::expose_secret)
    }

    pub fn previous_token_keys(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.previous_token_keys.iter().map(ExposeSecret::expose_secret)
    }
}

/// A comma-separated setting as a list (empty entries dropped).
fn list(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn parse_key(name: &'static str, raw: &str) -> Result<SecretBox<[u8; 32]>, ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| ConfigError::new(name, "must be base64"))?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| ConfigError::new(name, "must decode to exactly 32 bytes"))?;
    Ok(SecretBox::new(Box::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn previous_token_keys_are_read_with_the_key_and_named_when_wrong() {
        let b64 = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        let (current, old, older) = (b64(1), b64(2), b64(3));
        let previous = format!("{old}, {older}");
        let rotating =
            [("STEPSYNC_TABLE", "t"), ("STEPSYNC_TOKEN_KEY", &current), ("STEPSYNC_TOKEN_KEY_PREVIOUS", &previous)];
        let config = Config::loading(&vars(&rotating), Loads::CLIENTS).unwrap();
        assert_eq!(config.previous_token_keys().map(|k| k[0]).collect::<Vec<_>>(), [2, 3]);
        assert!(!format!("{config:?}").contains(&old), "never printed");
        assert_eq!(Config::loading(&vars(&rotating), Loads::STORE_ONLY).unwrap().previous_token_keys().count(), 0);
        let bad = [("STEPSYNC_TABLE", "t"), ("STEPSYNC_TOKEN_KEY", &current), ("STEPSYNC_TOKEN_KEY_PREVIOUS", "short")];
        assert_eq!(Config::loading(&vars(&bad), Loads::CLIENTS).unwrap_err().name, "STEPSYNC_TOKEN_KEY_PREVIOUS");
    }

    #[test]
    fn reads_settings_and_names_the_one_that_is_wrong() {
        let key = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let cfg = Config::from_vars(&vars(&[("STEPSYNC_TABLE", "t"), ("STEPSYNC_TOKEN_KEY", &key)])).unwrap();
        assert_eq!(cfg.limits.max_daily_steps, 100_000);
        assert!(!format!("{cfg:?}").contains(&key));
        let err = Config::from_vars(&vars(&[("STEPSYNC_TABLE", "t"), ("STEPSYNC_TOKEN_KEY", "c2hvcnQ=")])).unwrap_err();
        assert_eq!(err.name, "STEPSYNC_TOKEN_KEY");
        assert_eq!(Config::from_vars(&vars(&[])).unwrap_err().name, "STEPSYNC_TABLE");
        for bad in ["app.example.com", "https://", "https://app.example.com,/relative"] {
            let settings =
                [("STEPSYNC_TABLE", "t"), ("STEPSYNC_TOKEN_KEY", key.as_str()), ("STEPSYNC_RETURN_TO_ALLOWLIST", bad)];
            assert_eq!(Config::from_vars(&vars(&settings)).unwrap_err().name, "STEPSYNC_RETURN_TO_ALLOWLIST", "{bad}");
        }
        let misfit = [
            ("STEPSYNC_TABLE", "t"),
            ("STEPSYNC_TOKEN_KEY", key.as_str()),
            ("STEPSYNC_MISFIT_CLIENT_ID", "m"),
            ("STEPSYNC_MISFIT_CLIENT_SECRET", "s"),
        ];
        let err = Config::from_vars(&vars(&misfit)).unwrap_err();
        assert_eq!(err.name, "STEPSYNC_MISFIT_TOPIC_ARNS", "the webhook half needs its topics");
        assert!(Config::loading(&vars(&misfit), Loads::CLIENTS).is_ok(), "the API half does not");
        let good = [
            ("STEPSYNC_TABLE", "t"),
            ("STEPSYNC_TOKEN_KEY", key.as_str()),
            ("STEPSYNC_RETURN_TO_ALLOWLIST", "https://a.example/x, stepsync://"),
        ];
        assert_eq!(
            Config::from_vars(&vars(&good)).unwrap().return_to_allowlist,
            ["https://a.example/x", "stepsync://"]
        );
    }

    #[test]
    fn reminders_are_off_unless_asked_and_their_period_is_kept_in_range() {
        let off = Config::loading(&vars(&[("STEPSYNC_TABLE", "t")]), Loads::STORE_ONLY).unwrap();
        assert!(!off.nudges);
        assert_eq!(off.nudge_period_hours, 24);
        let on = [("STEPSYNC_TABLE", "t"), ("STEPSYNC_NUDGES", "true"), ("STEPSYNC_NUDGE_PERIOD_HOURS", "0")];
        let on = Config::loading(&vars(&on), Loads::STORE_ONLY).unwrap();
        assert!(on.nudges);
        assert_eq!(on.nudge_period_hours, 1, "at least an hour");
        let bad = [("STEPSYNC_TABLE", "t"), ("STEPSYNC_NUDGE_PERIOD_HOURS", "a day")];
        assert_eq!(Config::loading(&vars(&bad), Loads::STORE_ONLY).unwrap_err().name, "STEPSYNC_NUDGE_PERIOD_HOURS");
    }

    #[test]
    fn each_function_reads_only_the_secrets_it_loads() {
        let key = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let google = [
            ("STEPSYNC_TABLE", "t"),
            ("STEPSYNC_GOOGLE_CLIENT_ID", "client"),
            ("STEPSYNC_GOOGLE_KEYSET_URL", "https://keys.example/"),
            ("STEPSYNC_GOOGLE_WEBHOOK_SECRET", "endpoint-secret"),
        ];
        // The webhook function: no token key, no client secret, the endpoint secret kept.
        let webhook = Config::loading(&vars(&google), Loads::VERIFIERS).unwrap();
        assert!(webhook.token_key().is_none());
        let settings = webhook.google.expect("Google Health is on");
        assert!(settings.client_secret.is_none());
        assert!(settings.webhook_secret.is_some());
        // A syncing function needs the client secret and the key, and never keeps the endpoint secret.
        let err =
            Config::loading(&vars(&[google.as_slice(), &[("STEPSYNC_TOKEN_KEY", &key)]].concat()), Loads::CLIENTS)
                .unwrap_err();
        assert_eq!(err.name, "STEPSYNC_GOOGLE_CLIENT_ID");
        assert!(err.to_string().contains("STEPSYNC_GOOGLE_CLIENT_SECRET"), "{err}");
        let full =
            [google.as_slice(), &[("STEPSYNC_TOKEN_KEY", &key), ("STEPSYNC_GOOGLE_CLIENT_SECRET", "s")]].concat();
        let syncing = Config::loading(&vars(&full), Loads::CLIENTS).unwrap();
        assert!(syncing.token_key().is_some());
        assert!(syncing.google.as_ref().is_some_and(|g| g.client_secret.is_some() && g.webhook_secret.is_none()));
        // Challenges and the sweep: nothing secret, even where the environment has it.
        let store_only = Config::loading(&vars(&full), Loads::STORE_ONLY).unwrap();
        assert!(store_only.token_key().is_none());
        assert!(store_only.google.is_some_and(|g| g.client_secret.is_none() && g.webhook_secret.is_none()));
        assert!(Loads::STORE_ONLY.secret_settings().is_empty());
        // Oura signs notifications with its client secret: the verifier holds it too.
        assert_eq!(
            Loads::VERIFIERS.secret_settings(),
            [
                "STEPSYNC_GOOGLE_WEBHOOK_SECRET",
                "STEPSYNC_POLAR_WEBHOOK_SECRET",
                "STEPSYNC_GARMIN_NOTIFY_TOKEN",
                "STEPSYNC_OURA_CLIENT_SECRET",
                "STEPSYNC_OURA_VERIFICATION_TOKEN",
                "STEPSYNC_WITHINGS_NOTIFY_TOKEN"
            ]
        );
        assert!(!Loads::APP_CLIENTS.secret_settings().contains(&"STEPSYNC_TOKEN_KEY"));
        assert!(!Loads::CLIENTS.secret_settings().contains(&"STEPSYNC_GOOGLE_WEBHOOK_SECRET"));
        for setting in Loads::EVERYTHING.secret_settings() {
            assert!(crate::aws::SECRET_SETTINGS.contains(&setting), "{setting} is not a known secret setting");
        }
    }
}
