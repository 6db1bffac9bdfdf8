//! Fitbit and Pixel through the Google Health API: Google OAuth, identity, daily roll-ups and
//! revocation (`GoogleHealthClient`), and webhooks signed with Google's published Tink keys
//! (`GoogleHealthWebhooks`); both are built from one `GoogleHealthSettings`.

mod client;
mod keyset;

/// Where Google publishes the Tink keyset that signs webhooks: the address live implementations
/// use (Google's reference pages name none as of 2026-11).
pub const DEFAULT_KEYSET_URL: &str = "https://www.gstatic.com/googlehealthapi/webhooks/webhooks_public_keyset.json";
mod webhook;
mod wire;

pub use client::GoogleHealthClient;
pub use webhook::GoogleHealthWebhooks;

use crate::providers::http::{Redirects, build_client, http_url};
use reqwest::Url;
use secrecy::SecretString;
use std::time::Duration;

/// The one scope StepSync needs: daily activity, read only.
pub const ACTIVITY_SCOPE: &str = "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly";
/// Optional: reads the account's settings, of which StepSync uses the IANA time zone.
pub const SETTINGS_SCOPE: &str = "https://www.googleapis.com/auth/googlehealth.settings.readonly";

/// The issuer Google names in an authorization response's `iss` (RFC 9207).
pub const ISSUER: &str = "https://accounts.google.com";
pub const DEFAULT_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_REVOKE_URL: &str = "https://oauth2.googleapis.com/revoke";
pub const DEFAULT_API_BASE: &str = "https://health.googleapis.com";

/// What the client needs to know, read once from configuration. Every URL can be pointed
/// elsewhere (the local stack and tests use 127.0.0.1).
#[derive(Debug, Clone)]
pub struct GoogleHealthSettings {
    pub client_id: String,
    /// Only the API client needs it; a function that only verifies webhooks never loads it.
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    /// Scheme and host of the Health API; paths such as `/v4/users/me/identity` are appended.
    pub api_base: String,
    /// Where Google's Tink public keyset for webhook signatures is published.
    pub keyset_url: String,
    /// The subscriber's `endpointAuthorization.secret`, sent verbatim as `Authorization`.
    pub webhook_secret: Option<SecretString>,
    /// Whether notifications must carry the secret too. Off by default: some live events
    /// lack the header, and the signature already proves the sender.
    pub require_authorization: bool,
    pub max_body_bytes: usize,
    /// Every request's timeouts. The webhook verifier's keyset fetches take the
    /// shorter of these and 2 s to connect, 3 s in all: a webhook answers within its
    /// function's 10 s.
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl GoogleHealthSettings {
    /// Settings for Google's real endpoints.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString, keyset_url: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            revoke_url: DEFAULT_REVOKE_URL.to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            keyset_url: keyset_url.into(),
            webhook_secret: None,
            require_authorization: false,
            max_body_bytes: 256 * 1024,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a Google Health adapter could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{name} is not a valid http(s) URL")]
    InvalidUrl { name: &'static str },
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
    #[error("the API client needs the client secret, which this function did not load")]
    NoClientSecret,
    #[error("the webhook keyset is invalid: {0}")]
    Keyset(String),
}

/// The setting `name` as an http(s) URL.
fn parse_url(name: &'static str, raw: &str) -> Result<Url, SetupError> {
    http_url(raw).ok_or(SetupError::InvalidUrl { name })
}

/// The HTTP client each adapter builds for itself: the settings' timeouts, redirects followed.
fn http_client(settings: &GoogleHealthSettings) -> Result<reqwest::Client, SetupError> {
    build_client(settings.connect_timeout, settings.request_timeout, Redirects::Follow)
        .map_err(|e| SetupError::HttpClient(e.to_string()))
}

/// A Google Health known-answer fixture (the repository's `fixtures/google_health/`), as text.
#[cfg(test)]
fn fixture(name: &str) -> String {
    String::from_utf8(crate::testing::fixture("google_health", name)).expect("a UTF-8 fixture")
}
