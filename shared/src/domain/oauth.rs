//! A pending OAuth authorization: what the callback needs, stored server side, used once.

use super::{Provider, UserId};
use jiff::Timestamp;
use secrecy::SecretString;

/// How long a person has to finish the provider's consent page.
pub const OAUTH_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct OAuthState {
    /// The random `state` parameter; also the key.
    pub id: String,
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
