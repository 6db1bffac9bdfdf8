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
    /// The first day this connection may count: the provider account fed someone else
    /// through the day before (see `AccountClaim`), so earlier days are never fetched.
    pub counts_from: Option<LocalDate>,
    /// A phone platform's app installations bound to this person (`install_id` → its first
    /// countable day): an installation feeds one person at a time, like a provider account.
    pub installs: std::collections::BTreeMap<String, Option<LocalDate>>,
    /// The schedule slot a healthy connection sits in (`engine::Schedule::slot`): swept once a
    /// cycle with no write of its own. `next_sync_at`, while set, takes precedence (a backoff,
    /// a new connection due now).
    pub slot: Option<DueSlot>,
    /// Since when this person's own notification subscription (Withings subscribes each
    /// person) is known to be missing: its subscribe failed on connect, or a sync's check
    /// found it gone and could not make it again. Cleared once it is made again.
    pub subscription_lapsed_at: Option<Timestamp>,
    /// When a sync last asked the source about this person's own subscription (Withings);
    /// never asked: the connect that subscribed them (`created_at`) stands for it.
    pub subscription_checked_at: Option<Timestamp>,
}

/// A fixed place in the scheduler's cycle: shard, phases per cycle (the cadence in
/// `engine::schedule::PHASE`s) and the phase within it. Written once, when a connection first
/// syncs (or syncs again after an error); the sweep of each phase takes every connection in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DueSlot {
    pub shard: u16,
    pub cycle: u32,
    pub phase: u32,
}

impl Connection {
    /// The newest date with steps among `values`, when it is newer than the one this connection
    /// holds: "newest data" only moves forward, so a late upload of an older day, or a
    /// notification about day D after D+1 arrived, never makes a source look silent.
    pub fn newer_data_date(&self, values: impl IntoIterator<Item = (LocalDate, i64)>) -> Option<LocalDate> {
        let newest = values.into_iter().filter(|(_, steps)| *steps > 0).map(|(date, _)| date).max()?;
        self.last_data_date.is_none_or(|held| newest > held).then_some(newest)
    }

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
            counts_from: None,
            installs: std::collections::BTreeMap::new(),
            slot: None,
            subscription_lapsed_at: None,
            subscription_checked_at: None,
        }
    }

    /// The person's time zone, UTC when unknown or no longer in the database.
    pub fn tz(&self) -> jiff::tz::TimeZone {
        self.time_zone.as_deref().and_then(|name| jiff::tz::TimeZone::get(name).ok()).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// Connections backing off are spread over this many shards (GSI1 `DUE#{shard}`); healthy ones
/// over `Schedule::shards`, never fewer.
pub const DUE_SHARDS: u16 = 8;

/// A second stable hash of a connection (FNV-1a), independent of `shard_of`'s, so that the
/// phase within a cycle does not follow the shard.
pub fn phase_hash(user: &UserId, provider: Provider) -> u32 {
    let h = user
        .as_str()
        .bytes()
        .chain([b'#'])
        .chain(provider.as_str().bytes())
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    // MurmurHash3's finaliser: FNV's low bits follow the bytes' parity, as `shard_of`'s do.
    let h = (h ^ (h >> 16)).wrapping_mul(0x85eb_ca6b);
    let h = (h ^ (h >> 13)).wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The scheduler shard of a connection backing off (GSI1 `DUE#{shard}`, always `DUE_SHARDS` of
/// them): stable, spread by a simple string hash.
pub fn shard_of(user: &UserId, provider: Provider) -> u16 {
    shard_among(user, provider, DUE_SHARDS)
}

/// The sweep shard of a connection among `shards` (its slot's; `Schedule::shards`).
pub fn shard_among(user: &UserId, provider: Provider, shards: u16) -> u16 {
    let h = user
        .as_str()
        .bytes()
        .chain(provider.as_str().bytes())
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (h % u32::from(shards.max(1))) as u16
}

/// Who holds a provider account, and from which day it counts for them. Released, the hold
/// stays with its last holder and the last day counted for them, so that one provider day
/// never feeds two people: a new holder counts only the days after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHold {
    pub user: UserId,
    pub released_through: Option<LocalDate>,
    pub counts_from: Option<LocalDate>,
}

impl AccountHold {
    /// Who holds it now; nobody once released.
    pub fn holder(&self) -> Option<&UserId> {
        self.released_through.is_none().then_some(&self.user)
    }

    /// The hold after `user` claims the account; `None` while someone else holds it.
    pub fn claimed(previous: Option<&AccountHold>, user: &UserId) -> Option<AccountHold> {
        let counts_from = match previous {
            None => None,
            Some(held) if held.released_through.is_none() => return (held.user == *user).then(|| held.clone()),
            // The last holder again: their own days stay theirs to count.
            Some(released) if released.user == *user => released.counts_from,
            Some(released) => released.released_through.map(|d| d.add_days(1)).max(released.counts_from),
        };
        Some(AccountHold { user: user.clone(), released_through: None, counts_from })
    }

    /// The hold after `user` lets go, the days through `counted_through` staying theirs;
    /// `None` when `user` does not hold it.
    pub fn released(&self, user: &UserId, counted_through: LocalDate) -> Option<AccountHold> {
        (self.holder() == Some(user)).then(|| AccountHold { released_through: Some(counted_through), ..self.clone() })
    }
}

/// Today's date in `tz` at `now`.
pub fn local_today(now: Timestamp, tz: &jiff::tz::TimeZone) -> LocalDate {
    LocalDate::from_date(now.to_zoned_datetime(tz.clone()).date())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn day(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    #[test]
    fn a_provider_account_counts_each_day_for_one_holder_only() {
        let (alice, bob) = (user("alice"), user("bob"));
        let held = AccountHold::claimed(None, &alice).unwrap();
        assert_eq!((held.holder(), held.counts_from), (Some(&alice), None));
        assert_eq!(AccountHold::claimed(Some(&held), &bob), None, "held by Alice");
        assert_eq!(AccountHold::claimed(Some(&held), &alice).as_ref(), Some(&held), "claiming again changes nothing");
        assert_eq!(held.released(&bob, day("2026-11-20")), None, "only the holder releases");

        let released = held.released(&alice, day("2026-11-20")).unwrap();
        assert_eq!(released.holder(), None);
        let bobs = AccountHold::claimed(Some(&released), &bob).unwrap();
        assert_eq!((bobs.holder(), bobs.counts_from), (Some(&bob), Some(day("2026-11-21"))));
        // Alice takes it back after Bob: she counts only after Bob's days, Bob's floor never moves back.
        let bob_done = bobs.released(&bob, day("2026-11-25")).unwrap();
        let alice_again = AccountHold::claimed(Some(&bob_done), &alice).unwrap();
        assert_eq!(alice_again.counts_from, Some(day("2026-11-26")));
        let bob_again = AccountHold::claimed(Some(&bob_done), &bob).unwrap();
        assert_eq!(bob_again.counts_from, Some(day("2026-11-21")), "the last holder keeps his own floor");
        // A release dated before the holder's own floor never lowers it for the next one.
        let early = bobs.released(&bob, day("2026-11-19")).unwrap();
        assert_eq!(AccountHold::claimed(Some(&early), &alice).unwrap().counts_from, Some(day("2026-11-21")));
    }
}
