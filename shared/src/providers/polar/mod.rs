//! Polar watches and trackers through Polar's AccessLink API v3: OAuth whose token answer
//! names the account (`x_user_id`) and has no refresh token (Polar's tokens do not expire in
//! practice; a refused one means the person reconnects), the person registered to our client
//! on connect and deregistered on disconnect, and daily activity read from the
//! non-transactional `/v3/users/activities` (at most 28 days a request, nothing older than
//! 365 days) (`PolarClient`); notices verified by `Polar-Webhook-Signature`, an HMAC over the
//! raw body keyed with the webhook's one-time `signature_secret_key` (`PolarWebhooks`); and
//! the client's one webhook, checked and reactivated when Polar switched it off
//! (`PolarWebhookKeeper`). Polar counts requests per client, so every API call first takes
//! from the shared budget (`AppQuota`).

mod client;
mod keeper;
mod webhook;

pub use client::PolarClient;
pub use keeper::PolarWebhookKeeper;
pub use webhook::PolarWebhooks;

use crate::providers::http::{Redirects, build_client, http_url};
use crate::providers::quota::QuotaWindow;
use reqwest::Url;
use secrecy::SecretString;
use std::time::Duration;

/// Read access to everything the person shares: AccessLink's only scope.
pub const READ_ALL_SCOPE: &str = "accesslink.read_all";

pub const DEFAULT_AUTH_URL: &str = "https://flow.polar.com/oauth2/authorization";
pub const DEFAULT_TOKEN_URL: &str = "https://polarremote.com/v2/oauth2/token";
pub const DEFAULT_API_BASE: &str = "https://www.polaraccesslink.com";

/// The one event StepSync needs: a day's activity summary is available (new or changed).
pub const ACTIVITY_SUMMARY: &str = "ACTIVITY_SUMMARY";

/// Polar's limits grow with the registered users (`500 + users × 20` a quarter hour and
/// `5000 + users × 100` a day); these are the floor, right for any number of users. A larger
/// deployment configures its own.
pub const DEFAULT_QUOTA: [QuotaWindow; 2] =
    [QuotaWindow { length: Duration::from_secs(15 * 60), limit: 500 }, QuotaWindow::per_day(5000)];

/// What the adapters need to know, read once from configuration. Every URL can be pointed
/// elsewhere (the local stack and tests use 127.0.0.1).
#[derive(Debug, Clone)]
pub struct PolarSettings {
    pub client_id: String,
    /// The API client and the webhook keeper need it (the keeper authenticates as the client).
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    pub token_url: String,
    /// Scheme and host of the API; `/v3/...` is appended.
    pub api_base: String,
    /// The webhook's `signature_secret_key`. Polar shows it once, in the answer that creates
    /// the webhook, so an operator creates the webhook and puts the key in the secret store;
    /// until then every notice is refused (a PING is still answered, so the webhook can be made).
    pub webhook_secret: Option<SecretString>,
    /// Where notices are sent: `{public_url}/webhooks/polar`.
    pub callback_url: String,
    /// The client-wide request budget (Polar's floor unless configured).
    pub quota: Vec<QuotaWindow>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

impl PolarSettings {
    /// Settings for Polar's real endpoints.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString, callback_url: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            webhook_secret: None,
            callback_url: callback_url.into(),
            quota: DEFAULT_QUOTA.to_vec(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
        }
    }
}

/// Why a Polar adapter could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{name} is not a valid http(s) URL")]
    InvalidUrl { name: &'static str },
    #[error("{name}: {why}")]
    InvalidSetting { name: &'static str, why: &'static str },
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
    #[error("Polar's API client and webhook keeper need the client secret, which this function did not load")]
    NoClientSecret,
}

/// The setting `name` as an http(s) URL.
fn parse_url(name: &'static str, raw: &str) -> Result<Url, SetupError> {
    http_url(raw).ok_or(SetupError::InvalidUrl { name })
}

/// The HTTP client: the settings' timeouts, no redirects (an API that redirects its resources
/// has moved, and a redirect must not carry our credentials elsewhere).
fn http_client(settings: &PolarSettings) -> Result<reqwest::Client, SetupError> {
    build_client(settings.connect_timeout, settings.request_timeout, Redirects::Stop)
        .map_err(|e| SetupError::HttpClient(e.to_string()))
}

fn client_secret(settings: &PolarSettings) -> Result<SecretString, SetupError> {
    settings.client_secret.clone().ok_or(SetupError::NoClientSecret)
}

/// A Polar user id as AccessLink gives it (a positive integer, as text): the account id and a
/// path segment, so anything else is refused.
fn user_id(raw: &str) -> Option<&str> {
    let id = raw.trim();
    let plain = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
    plain.then_some(id)
}

/// A Polar known-answer fixture (the repository's `fixtures/polar/`), as text.
#[cfg(test)]
fn fixture(name: &str) -> String {
    String::from_utf8(crate::testing::fixture("polar", name)).expect("a UTF-8 fixture")
}
