//! Misfit (legacy): OAuth without refresh tokens, the profile as identity and daily activity
//! summaries (`MisfitClient`), and notifications delivered as Amazon SNS messages signed with
//! AWS's certificates (`MisfitWebhooks`); both are built from one `MisfitSettings`. The cloud
//! API's status is unknown since 2023, so a dead endpoint is read as
//! `ProviderError::Retired` rather than retried forever.

mod client;
mod rate_limit;
mod sns;
mod webhook;

pub use client::MisfitClient;
pub use webhook::MisfitWebhooks;

use crate::providers::http::{Redirects, build_client};
use secrecy::SecretString;
use std::time::Duration;

/// The scope that carries activity summaries; the connection is useless without it.
pub const TRACKING_SCOPE: &str = "tracking";

pub const DEFAULT_BASE_URL: &str = "https://api.misfitwearables.com";

/// What Misfit's client libraries asked for; only `tracking` is needed for steps, the rest
/// kept so that a consent page looks the way it always did.
pub const DEFAULT_SCOPES: [&str; 6] = ["public", "birthday", "email", "tracking", "session", "sleeps"];

/// What the client needs to know, read once from configuration.
#[derive(Debug, Clone)]
pub struct MisfitSettings {
    pub client_id: String,
    /// Only the API client needs it; a function that only verifies webhooks never loads it.
    pub client_secret: Option<SecretString>,
    /// Scheme and host of the API; `/auth/...` and `/move/resource/v1/...` are appended.
    pub base_url: String,
    /// Scopes to ask for; sent comma-separated, as Misfit expects. Must include `tracking`.
    pub scopes: Vec<String>,
    /// Exact hosts (lower case, no port) allowed for `SigningCertURL` and `SubscribeURL`.
    pub allowed_sns_hosts: Vec<String>,
    /// Whether AWS's own `sns.<region>.amazonaws.com` hosts are allowed too.
    pub allow_aws_sns_hosts: bool,
    /// Topic ARNs whose messages are accepted; empty accepts none (the webhook fails closed,
    /// and configuration requires the list where the verifier is loaded). A valid SNS
    /// signature only proves that AWS sent a message, not whose topic it came from.
    pub allowed_topic_arns: Vec<String>,
    /// `(prefix, replacement)` applied to certificate and subscribe URLs *after* they passed
    /// the allow-list, first match wins: lets a local stack or a test serve them on 127.0.0.1.
    /// Both end in `/`, e.g. `("https://sns.fixture.test/", "http://127.0.0.1:9000/")`.
    pub cert_url_rewrites: Vec<(String, String)>,
    /// Every request's timeouts. The webhook verifier's SNS certificate fetches take the
    /// shorter of these and 2 s to connect, 3 s in all: a webhook answers within its
    /// function's 10 s.
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The largest webhook body accepted.
    pub max_body_bytes: usize,
}

impl MisfitSettings {
    /// Settings for Misfit's real API and AWS's SNS hosts.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            base_url: DEFAULT_BASE_URL.to_owned(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            allowed_sns_hosts: Vec::new(),
            allow_aws_sns_hosts: true,
            allowed_topic_arns: Vec::new(),
            cert_url_rewrites: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why a Misfit adapter could not be built from its settings.
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

/// The API client's HTTP client: the settings' timeouts, and no redirects: an API that
/// redirects its resources is read as moved away. (The webhook verifier builds its own, with
/// shorter timeouts and no redirects either.)
fn http_client(settings: &MisfitSettings) -> Result<reqwest::Client, SetupError> {
    build_client(settings.connect_timeout, settings.request_timeout, Redirects::Stop)
        .map_err(|e| SetupError::HttpClient(e.to_string()))
}

/// A Misfit known-answer fixture (the repository's `fixtures/misfit/`), as text.
#[cfg(test)]
fn fixture(name: &str) -> String {
    String::from_utf8(crate::testing::fixture("misfit", name)).expect("a UTF-8 fixture")
}
