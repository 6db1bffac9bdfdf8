//! Garmin watches and trackers through Garmin's Health API (daily summaries): OAuth 2 with
//! PKCE, the account from `/wellness-api/rest/user/id`, deregistration on disconnect, and the
//! days read the only way Garmin allows (`GarminClient`); the unsigned ping notices, bound by
//! a secret in our callback URL (`GarminWebhooks`).
//!
//! Garmin is read by upload time, not by date: a ping names an upload window (at most 24 h)
//! with a time-bound pull token, and "summary data endpoints should only be called as a result
//! of ping notifications". So the days of a window are never pulled by date. Instead:
//! - a ping becomes a sync of exactly its upload window (`StepSource::uploaded_steps`), read
//!   at our configured API base with the person's token and the ping's pull token; each
//!   day's value is dated by its upload, so a later upload of a day replaces an earlier one
//!   (a correction may lower it) and a replayed or late ping changes nothing;
//! - a sync by dates (the backfill at connect, the reconcile sweep, "Sync steps") asks Garmin
//!   for a backfill of those days (`/backfill/dailies`, by summary time, at most 90 days a
//!   request): Garmin answers 202 at once and later pings the days as if newly uploaded. It
//!   reads nothing itself, so it never takes a day away (`Provider::is_read_by_upload`).
//!   A repeated backfill of the same time is refused 409 by Garmin, which is fine: it was
//!   asked already.
//!
//! Garmin publishes a per-app limit for backfills only (10,000 days a minute for a production
//! key, 100 for an evaluation key): backfill requests take from the shared budget
//! (`AppQuota`), at most `MAX_BACKFILL_DAYS` each; the pulls pings ask for are paced by Garmin.

mod client;
mod webhook;

pub use client::GarminClient;
pub use webhook::GarminWebhooks;

use crate::providers::http::{Redirects, build_client, http_url};
use crate::providers::quota::QuotaWindow;
use reqwest::Url;
use secrecy::SecretString;
use std::time::Duration;

pub const DEFAULT_AUTH_URL: &str = "https://connect.garmin.com/oauth2Confirm";
pub const DEFAULT_TOKEN_URL: &str = "https://diauth.garmin.com/di-oauth2-service/oauth/token";
pub const DEFAULT_API_BASE: &str = "https://apis.garmin.com";

/// Where the Health API's resources live under the API base.
pub const REST_PATH: &str = "/wellness-api/rest";
/// The daily summaries, read by upload window; the path every daily ping's `callbackURL` names.
pub const DAILIES_PATH: &str = "/wellness-api/rest/dailies";

/// The permission a person grants (or later withdraws) for health data such as the dailies.
pub const HEALTH_PERMISSION: &str = "HEALTH_EXPORT";

/// The longest backfill request Garmin takes, in days.
pub const MAX_BACKFILL_DAYS: i32 = 90;

/// Backfill requests a minute: at most `MAX_BACKFILL_DAYS` each, 100 of them stay under a
/// production key's 10,000 days a minute. An evaluation key (100 days a minute) needs 1.
pub const DEFAULT_QUOTA: [QuotaWindow; 1] = [QuotaWindow::per_minute(100)];

/// What the adapters need to know, read once from configuration. Every URL can be pointed
/// elsewhere (the local stack and tests use 127.0.0.1).
#[derive(Debug, Clone)]
pub struct GarminSettings {
    pub client_id: String,
    /// Only the API client needs it; the webhook never reads it.
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    pub token_url: String,
    /// Scheme and host of the Health API; `/wellness-api/rest/...` is appended. A ping's
    /// `callbackURL` must name this same origin, and is never fetched itself.
    pub api_base: String,
    /// The secret our callback URL carries (`{public_url}/webhooks/garmin?token=...`): Garmin
    /// signs nothing. Without it every notice is refused.
    pub notify_token: Option<SecretString>,
    /// The budget of backfill requests (`DEFAULT_QUOTA` unless configured).
    pub quota: Vec<QuotaWindow>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

impl GarminSettings {
    /// Settings for Garmin's real endpoints.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            notify_token: None,
            quota: DEFAULT_QUOTA.to_vec(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            // Pings are small, but Garmin batches many people into one.
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Why a Garmin adapter could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{name} is not a valid http(s) URL")]
    InvalidUrl { name: &'static str },
    #[error("{name}: {why}")]
    InvalidSetting { name: &'static str, why: &'static str },
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
    #[error("Garmin's API client needs the client secret, which this function did not load")]
    NoClientSecret,
}

/// The setting `name` as an http(s) URL.
fn parse_url(name: &'static str, raw: &str) -> Result<Url, SetupError> {
    http_url(raw).ok_or(SetupError::InvalidUrl { name })
}

/// A Garmin user id (hex in Garmin's examples; any short run of letters, digits and dashes
/// accepted): the account id and a store key.
fn user_id(raw: &str) -> Option<&str> {
    let id = raw.trim();
    let plain = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plain.then_some(id)
}

/// The HTTP client: the settings' timeouts, no redirects (a redirect must not carry the
/// person's token elsewhere).
fn http_client(settings: &GarminSettings) -> Result<reqwest::Client, SetupError> {
    build_client(settings.connect_timeout, settings.request_timeout, Redirects::Stop)
        .map_err(|e| SetupError::HttpClient(e.to_string()))
}

/// A Garmin known-answer fixture (the repository's `fixtures/garmin/`), as text.
#[cfg(test)]
fn fixture(name: &str) -> String {
    String::from_utf8(crate::testing::fixture("garmin", name)).expect("a UTF-8 fixture")
}
