//! Withings through its Public API: OAuth whose token answer names the account (`userid`),
//! refresh tokens that stay valid a while after they are replaced, daily activity with
//! `more`/`offset` paging, a per-person notification subscription (`notify`, `appli=16`)
//! made on connect and revoked with the grant (`WithingsClient`); and the notices themselves,
//! form-encoded and unsigned: our callback URL carries a secret of ours in its query, and a
//! notice only names whose data to fetch (`WithingsWebhooks`). Withings counts requests per
//! app (120 a minute), so every call first takes from the shared budget.

mod client;
mod webhook;

pub use client::WithingsClient;
pub use webhook::WithingsWebhooks;

use crate::providers::http::{Redirects, build_client, http_url};
use crate::providers::quota::QuotaWindow;
use reqwest::Url;
use secrecy::SecretString;
use std::time::Duration;

/// Daily activity (steps): the one scope needed.
pub const ACTIVITY_SCOPE: &str = "user.activity";
/// The notification category for activity.
pub const ACTIVITY_APPLI: &str = "16";

pub const DEFAULT_AUTH_URL: &str = "https://account.withings.com/oauth2_user/authorize2";
pub const DEFAULT_API_BASE: &str = "https://wbsapi.withings.net";

/// Withings' published limit for an app: 120 requests a minute.
pub const DEFAULT_QUOTA: [QuotaWindow; 1] = [QuotaWindow::per_minute(120)];

/// What the adapters need to know, read once from configuration.
#[derive(Debug, Clone)]
pub struct WithingsSettings {
    pub client_id: String,
    /// Only the API client needs it.
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    /// Scheme and host of the API; `/v2/oauth2`, `/v2/measure`, `/v2/signature` and `/notify`
    /// are appended.
    pub api_base: String,
    pub scopes: Vec<String>,
    /// The secret our callback URL carries (`?token=`): Withings signs nothing, so a notice
    /// without it is refused before anything is read.
    pub notify_token: Option<SecretString>,
    /// `{public_url}/webhooks/withings`; the token is appended when subscribing.
    pub callback_base: String,
    pub quota: Vec<QuotaWindow>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

impl WithingsSettings {
    pub fn new(client_id: impl Into<String>, client_secret: SecretString, callback_base: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            scopes: vec![ACTIVITY_SCOPE.to_owned()],
            notify_token: None,
            callback_base: callback_base.into(),
            quota: DEFAULT_QUOTA.to_vec(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
        }
    }
}

/// Why a Withings adapter could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{name} is not a valid http(s) URL")]
    InvalidUrl { name: &'static str },
    #[error("{name}: {why}")]
    InvalidSetting { name: &'static str, why: &'static str },
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
    #[error("the API client needs the client secret, which this function did not load")]
    NoClientSecret,
}

fn parse_url(name: &'static str, raw: &str) -> Result<Url, SetupError> {
    http_url(raw).ok_or(SetupError::InvalidUrl { name })
}

fn http_client(settings: &WithingsSettings) -> Result<reqwest::Client, SetupError> {
    build_client(settings.connect_timeout, settings.request_timeout, Redirects::Stop)
        .map_err(|e| SetupError::HttpClient(e.to_string()))
}

/// A Withings known-answer fixture (the repository's `fixtures/withings/`), as text.
#[cfg(test)]
fn fixture(name: &str) -> String {
    String::from_utf8(crate::testing::fixture("withings", name)).expect("a UTF-8 fixture")
}
