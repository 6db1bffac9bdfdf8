//! Why a sync failed, as a closed set of codes: the engine records one, the diagnosis reads it.

use serde::{Deserialize, Serialize};

/// A sync's failure, as stored on the connection and shown by the status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The legacy Fitbit Web API is gone: reconnect through Google.
    LegacyRetired,
    /// The source's API no longer answers at all.
    ProviderRetired,
    /// The grant was revoked or expired.
    ReconnectRequired,
    /// The person did not allow the activity scope.
    MissingPermission,
    RateLimited,
    ProviderUnavailable,
    /// The access token was refused; a refresh is tried next time.
    TokenRefused,
    /// The provider refused the request for another reason.
    ProviderRefused,
    /// The provider refuses our app (an API not enabled for the project, say): an operator
    /// fixes it; the person waits, and the connection stays active.
    AppRefused,
    /// The stored tokens cannot be decrypted (a lost or rotated token key).
    TokensUnreadable,
    /// The sync did not finish on our side (the store, a lost race); it is retried.
    SyncFailed,
    /// A code this version does not know (written by a newer one).
    #[serde(other)]
    Unknown,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::LegacyRetired => "legacy_retired",
            FailureCode::ProviderRetired => "provider_retired",
            FailureCode::ReconnectRequired => "reconnect_required",
            FailureCode::MissingPermission => "missing_permission",
            FailureCode::RateLimited => "rate_limited",
            FailureCode::ProviderUnavailable => "provider_unavailable",
            FailureCode::TokenRefused => "token_refused",
            FailureCode::ProviderRefused => "provider_refused",
            FailureCode::AppRefused => "app_refused",
            FailureCode::TokensUnreadable => "tokens_unreadable",
            FailureCode::SyncFailed => "sync_failed",
            FailureCode::Unknown => "unknown",
        }
    }

    /// Failures that pass by themselves: the next try may well work.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureCode::RateLimited
                | FailureCode::ProviderUnavailable
                | FailureCode::TokenRefused
                | FailureCode::ProviderRefused
                | FailureCode::SyncFailed
        )
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_and_write_as_their_snake_case_names() {
        for code in [FailureCode::LegacyRetired, FailureCode::RateLimited, FailureCode::TokensUnreadable] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<FailureCode>(&json).unwrap(), code);
        }
        assert_eq!(serde_json::from_str::<FailureCode>("\"from_the_future\"").unwrap(), FailureCode::Unknown);
    }
}
