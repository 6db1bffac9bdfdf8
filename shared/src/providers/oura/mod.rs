//! The Oura ring through Oura's API v2: OAuth with single-use refresh tokens, the personal
//! info as identity, daily activity with `next_token` paging and revocation (`OuraClient`);
//! notifications verified by `x-oura-signature`, an HMAC over the timestamp and the raw body
//! keyed with the client secret (`OuraWebhooks`); and the app's per-data-type subscriptions,
//! created, renewed before they expire and reported (`OuraSubscriptions`). Oura counts
//! requests per app, so every API call first takes from the shared budget (`AppQuota`).

mod client;
mod subscriptions;
mod webhook;

pub use client::OuraClient;
pub use subscriptions::OuraSubscriptions;
pub use webhook::OuraWebhooks;

use crate::providers::http::{Redirects, build_client, http_url};
use crate::providers::quota::QuotaWindow;
use reqwest::Url;
use secrecy::SecretString;
use std::time::Duration;

/// Daily summaries (activity with its steps, sleep, readiness): the one scope steps need.
pub const DAILY_SCOPE: &str = "daily";
/// The person's id, age and the like: `personal_info` answers its `id` with any scope, and
/// Oura's consent page lists it, so it is asked for and not required.
pub const PERSONAL_SCOPE: &str = "personal";

pub const DEFAULT_AUTH_URL: &str = "https://cloud.ouraring.com/oauth/authorize";
pub const DEFAULT_TOKEN_URL: &str = "https://api.ouraring.com/oauth/token";
pub const DEFAULT_REVOKE_URL: &str = "https://api.ouraring.com/oauth/revoke";
pub const DEFAULT_API_BASE: &str = "https://api.ouraring.com";

/// The data type and events StepSync subscribes to: a day's activity created, updated or
/// deleted.
pub const DATA_TYPE: &str = "daily_activity";
pub const EVENT_TYPES: [&str; 3] = ["create", "update", "delete"];

/// Oura's published limits for an app: 5,000 requests a day and 300 a minute.
pub const DEFAULT_QUOTA: [QuotaWindow; 2] = [QuotaWindow::per_minute(300), QuotaWindow::per_day(5000)];

/// What the adapters need to know, read once from configuration. Every URL can be pointed
/// elsewhere (the local stack and tests use 127.0.0.1).
#[derive(Debug, Clone)]
pub struct OuraSettings {
    pub client_id: String,
    /// The API client and the webhook verifier both need it: Oura signs notifications with it.
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    /// Scheme and host of the API; `/v2/...` is appended.
    pub api_base: String,
    /// Scopes asked for; must include `daily`.
    pub scopes: Vec<String>,
    /// The token Oura echoes in a subscription's verification GET: only a handshake carrying
    /// it is answered.
    pub verification_token: Option<SecretString>,
    /// Where notifications are sent: `{public_url}/webhooks/oura`.
    pub callback_url: String,
    /// The app-wide request budget (Oura's limits unless configured lower).
    pub quota: Vec<QuotaWindow>,
    /// How far a notification's `x-oura-timestamp` may be from now.
    pub max_clock_skew: Duration,
    /// A subscription expiring within this is renewed by the daily run.
    pub renew_within: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

impl OuraSettings {
    /// Settings for Oura's real endpoints.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString, callback_url: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            revoke_url: DEFAULT_REVOKE_URL.to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            scopes: vec![DAILY_SCOPE.to_owned(), PERSONAL_SCOPE.to_owned()],
            verification_token: None,
            callback_url: callback_url.into(),
            quota: DEFAULT_QUOTA.to_vec(),
            max_clock_skew: Duration::from_secs(300),
            renew_within: Duration::from_secs(7 * 86_400),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why an Oura adapter could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{name} is not a valid http(s) URL")]
    InvalidUrl { name: &'static str },
    #[error("{name}: {why}")]
    InvalidSetting { name: &'static str, why: &'static str },
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
    #[error("Oura's adapters need the client secret, which this function did not load")]
    NoClientSecret,
}

/// The setting `name` as an http(s) URL.
fn parse_url(name: &'static str, raw: &str) -> Result<Url, SetupError> {
    http_url(raw).ok_or(SetupError::InvalidUrl { name })
}

/// The HTTP client: the settings' timeouts, no redirects (an API that redirects its resources
/// has moved, and a redirect must not carry the client secret elsewhere).
fn http_client(settings: &OuraSettings) -> Result<reqwest::Client, SetupError> {
    build_client(settings.connect_timeout, settings.request_timeout, Redirects::Stop)
        .map_err(|e| SetupError::HttpClient(e.to_string()))
}

fn client_secret(settings: &OuraSettings) -> Result<SecretString, SetupError> {
    settings.client_secret.clone().ok_or(SetupError::NoClientSecret)
}

/// An Oura known-answer fixture (the repository's `fixtures/oura/`), as text.
#[cfg(test)]
fn fixture(name: &str) -> String {
    String::from_utf8(crate::testing::fixture("oura", name)).expect("a UTF-8 fixture")
}
