//! A person's link to one step source: status, encrypted tokens and sync diagnostics.

use super::{FailureCode, LocalDate, Provider, UserId};
use jiff::Timestamp;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    /// Tokens revoked or expired, or the provider's API retired: the person must reconnect.
    ReconnectRequired,
    /// The person disconnected; the history stays, nothing syncs.
    Disconnected,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::ReconnectRequired => "reconnect_required",
            ConnectionStatus::Disconnected => "disconnected",
        }
    }
}

/// Token pair as the provider issued it. Never logged: `SecretString` redacts on `Debug`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    #[serde(serialize_with = "expose")]
    pub access_token: SecretString,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub refresh_token: Option<SecretString>,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

// Serialising a token is only ever done to encrypt it (see `TokenCipher`).
fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    s.serialize_str(secret.expose_secret())
}

fn expose_opt<S: serde::Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => expose(secret, s),
        None => s.serialize_none(),
    }
}

/// Tokens after `TokenCipher::encrypt`: what the store keeps. Opaque text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncryptedTokens(pub String);

/// The last failure, as a stable code and a sentence for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub code: FailureCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub user: UserId,
    pub provider: Provider,
    pub status: ConnectionStatus,
    /// The provider's id for the account (e.g. Google's `healthUserId`).
    pub provider_user_id: Option<String>,
    /// The person's IANA time zone as the provider or phone reports it.
    pub time_zone: Option<String>,
    pub tokens: Option<EncryptedTokens>,
    pub token_version: u64,
    pub created_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_data_date: Option<LocalDate>,
    pub last_device_sync_at: Option<Timestamp>,
    /// The last time a sync changed a day: "no new data for a day" means a device not syncing.
    pub last_new_data_at: Option<Timestamp>,
    pub last_error: Option<LastError>,
    pub next_sync_at: Option<Timestamp>,
}

impl Connection {
    pub fn new(user: UserId, provider: Provider, now: Timestamp) -> Self {
        Self {
            user,
            provider,
            status: ConnectionStatus::Active,
            provider_user_id: None,
            time_zone: None,
            tokens: None,
            token_version: 0,
            created_at: now,
            last_attempt_at: None,
            last_success_at: None,
            last_data_date: None,
            last_device_sync_at: None,
            last_new_data_at: None,
            last_error: None,
            next_sync_at: None,
        }
    }

    /// The person's time zone, UTC when unknown or no longer in the database.
    pub fn tz(&self) -> jiff::tz::TimeZone {
        self.time_zone.as_deref().and_then(|name| jiff::tz::TimeZone::get(name).ok()).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// Connections are spread over this many scheduler shards (GSI1 `DUE#{shard}`).
pub const DUE_SHARDS: u16 = 8;

/// The scheduler shard of a connection: stable, spread by a simple string hash.
pub fn shard_of(user: &UserId, provider: Provider) -> u16 {
    let h = user
        .as_str()
        .bytes()
        .chain(provider.as_str().bytes())
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (h % u32::from(DUE_SHARDS)) as u16
}

/// Today's date in `tz` at `now`.
pub fn local_today(now: Timestamp, tz: &jiff::tz::TimeZone) -> LocalDate {
    LocalDate::from_date(now.to_zoned_datetime(tz.clone()).date())
}
