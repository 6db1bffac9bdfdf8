//! A pending OAuth authorization: what the start link and the callback need, stored server
//! side, each used once.

use super::{Provider, UserId};
use jiff::Timestamp;
use secrecy::SecretString;

/// How long a person has to finish the provider's consent page.
pub const OAUTH_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// How long the app has to open the start link it was given: long enough to open a browser,
/// short enough that a leaked link is soon worthless.
pub const CONNECT_TICKET_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Which step of connecting a stored state is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OAuthStage {
    /// A one-time start link handed to the person's app (`/oauth/{provider}/start?ticket=`);
    /// opening it binds a consent to that browser.
    Ticket,
    /// A consent in progress, bound to one browser by the state cookie.
    #[default]
    Consent,
}

#[derive(Debug, Clone)]
pub struct OAuthState {
    /// The random `state` parameter; also the key.
    pub id: String,
    pub stage: OAuthStage,
    pub user: UserId,
    pub provider: Provider,
    /// The PKCE code verifier; never leaves the server.
    pub verifier: SecretString,
    /// Where the person goes back to afterwards (from the allow-list).
    pub return_to: String,
    pub expires_at: Timestamp,
}

impl OAuthState {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}
