//! How domain values become DynamoDB items and back. Keys follow the one-table design:
//! `USER#{user}` holds a person's profile, connections and days; `CHAL#{id}` a challenge and
//! its participants; `PACCT#{provider}#{account}` who owns a provider account.

use crate::domain::{
    AccountHold, Challenge, ChallengeId, Connection, ConnectionStatus, DayRecord, DueSlot, EncryptedTokens, LastError,
    LocalDate, Membership, OAuthStage, OAuthState, Participant, ParticipantTotals, Provider, Snapshot, SourceTotals,
    SourceValue, StepCount, UserId, UserProfile, shard_of,
};
use crate::ports::{ReminderSubject, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub type Item = HashMap<String, AttributeValue>;

pub const PROFILE_SK: &str = "PROFILE";
pub const META_SK: &str = "META";
pub const OWNER_SK: &str = "OWNER";

pub fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}
pub fn day_sk(date: LocalDate) -> String {
    format!("DAY#{date}")
}
pub fn conn_sk(provider: Provider) -> String {
    format!("CONN#{provider}")
}
pub fn challenge_pk(id: &ChallengeId) -> String {
    format!("CHAL#{id}")
}
pub fn participant_sk(user: &UserId) -> String {
    format!("PART#{user}")
}
pub fn account_pk(provider: Provider, account: &str) -> String {
    format!("PACCT#{provider}#{account}")
}

pub fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk.into()))])
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(format!("cannot map item: {e}")))
}

pub fn from_item<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("cannot read item: {e}")))
}

/// One record of the table's change stream as a committed day change: `None` for any other
/// item, and for a day item removed (days are never deleted; nothing to announce). Images come
/// as the Lambda event carries them or as the streams API answers them; an empty image is none.
pub fn day_change<I: Into<serde_dynamo::Item>>(
    id: String,
    old: Option<I>,
    new: Option<I>,
) -> Result<Option<crate::ports::DayChange>, StoreError> {
    let image = |item: Option<I>| -> Result<Option<(DayRecord, Timestamp)>, StoreError> {
        let Some(item) = item.map(Into::<serde_dynamo::Item>::into).filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        match item.get("sk") {
            Some(serde_dynamo::AttributeValue::S(sk)) if sk.starts_with("DAY#") => {}
            _ => return Ok(None),
        }
        let day: DayItem =
            serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("cannot read day image: {e}")))?;
        let written_at = day.updated_at;
        day.into_record().map(|record| Some((record, written_at)))
    };
    let Some((new, written_at)) = image(new)? else { return Ok(None) };
    let old = image(old)?.map(|(record, _)| record);
    Ok(Some(crate::ports::DayChange { id, old, new, written_at }))
}

#[derive(Serialize, Deserialize)]
pub struct DayItem {
    pub pk: String,
    pub sk: String,
    pub user: UserId,
    pub date: LocalDate,
    pub total: u32,
    pub version: u64,
    /// Provider id → that source's latest value.
    pub sources: BTreeMap<String, SourceValue>,
    /// `{provider}#{install_id}` → that installation's latest value (phone platforms).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub installs: BTreeMap<String, SourceValue>,
    /// Provider id → when a pull last found its value gone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, Timestamp>,
    pub updated_at: Timestamp,
}

impl DayItem {
    pub fn from_record(record: &DayRecord, now: Timestamp) -> Self {
        Self {
            pk: user_pk(&record.user),
            sk: day_sk(record.date),
            user: record.user.clone(),
            date: record.date,
            total: record.total.get(),
            version: record.version,
            sources: record.sources.iter().map(|(p, v)| (p.as_str().to_owned(), *v)).collect(),
            installs: record.installs.iter().map(|((p, id), v)| (format!("{}#{id}", p.as_str()), *v)).collect(),
            removed: record.removed.iter().map(|(p, at)| (p.as_str().to_owned(), *at)).collect(),
            updated_at: now,
        }
    }

    pub fn into_record(self) -> Result<DayRecord, StoreError> {
        let sources = self
            .sources
            .into_iter()
            .map(|(p, v)| p.parse::<Provider>().map(|p| (p, v)))
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let installs = self
            .installs
            .into_iter()
            .map(|(key, v)| {
                let (provider, id) =
                    key.split_once('#').ok_or_else(|| StoreError::Corrupt(format!("install key {key}")))?;
                let provider = provider.parse::<Provider>().map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(((provider, id.to_owned()), v))
            })
            .collect::<Result<BTreeMap<_, _>, StoreError>>()?;
        let removed = self
            .removed
            .into_iter()
            .map(|(p, at)| p.parse::<Provider>().map(|p| (p, at)))
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(DayRecord {
            removed,
            user: self.user,
            date: self.date,
            sources,
            total: StepCount::from_stored(self.total),
            version: self.version,
            installs,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub struct ProfileItem {
    pub pk: String,
    pub sk: String,
    #[serde(default)]
    pub rev: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub memberships: BTreeMap<String, Membership>,
}

impl ProfileItem {
    pub fn from_profile(user: &UserId, profile: &UserProfile) -> Self {
        Self {
            pk: user_pk(user),
            sk: PROFILE_SK.to_owned(),
            rev: profile.rev,
            primary: profile.primary,
            time_zone: profile.time_zone.clone(),
            memberships: profile.memberships.iter().map(|(id, m)| (id.as_str().to_owned(), *m)).collect(),
        }
    }

    pub fn into_profile(self) -> Result<UserProfile, StoreError> {
        let memberships = self
            .memberships
            .into_iter()
            .map(|(id, m)| ChallengeId::parse(&id).map(|id| (id, m)))
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(UserProfile { primary: self.primary, time_zone: self.time_zone, memberships, rev: self.rev })
    }
}

#[derive(Serialize, Deserialize)]
pub struct ChallengeItem {
    pub pk: String,
    pub sk: String,
    pub id: ChallengeId,
    pub name: String,
    pub start: LocalDate,
    pub end: LocalDate,
    pub time_zone: String,
    pub grace_days: u32,
    /// GSI1 `CHALLENGES` / `{end}#{id}`: every challenge, newest window last.
    #[serde(default)]
    pub gsi1pk: Option<String>,
    #[serde(default)]
    pub gsi1sk: Option<String>,
}

/// GSI1 partition holding every challenge (a directory; challenges are few).
pub const CHALLENGES_GSI_PK: &str = "CHALLENGES";

impl ChallengeItem {
    pub fn from_challenge(c: &Challenge) -> Self {
        Self {
            pk: challenge_pk(&c.id),
            sk: META_SK.to_owned(),
            id: c.id.clone(),
            name: c.name.clone(),
            start: c.start,
            end: c.end,
            time_zone: c.time_zone.clone(),
            grace_days: c.grace_days,
            gsi1pk: Some(CHALLENGES_GSI_PK.to_owned()),
            gsi1sk: Some(format!("{}#{}", c.end, c.id)),
        }
    }

    pub fn into_challenge(self) -> Challenge {
        Challenge {
            id: self.id,
            name: self.name,
            start: self.start,
            end: self.end,
            time_zone: self.time_zone,
            grace_days: self.grace_days,
        }
    }
}

/// A participant: the fixed attributes below, plus `steps#{provider}` and `days#{provider}`
/// per source with steps in the window (top-level numbers, so a day write moves them with
/// `ADD`; `participant_item` and `participant_from_item` convert).
#[derive(Serialize, Deserialize)]
pub struct ParticipantItem {
    pub pk: String,
    pub sk: String,
    pub challenge: ChallengeId,
    pub user: UserId,
    pub joined_at: Timestamp,
    /// Epoch seconds after which the challenge is final: day writes are conditioned on it.
    pub closes_at: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
    /// Date → the version of the day record the numbers include (`Participant::counted`);
    /// absent on items written before counting by version (read as empty: a rebuild fills it).
    #[serde(default)]
    pub counted: BTreeMap<String, u64>,
    #[serde(default)]
    pub rev: u64,
}

/// The attribute names of one source's numbers in a participant item.
pub fn source_attributes(source: Provider) -> (String, String) {
    (format!("steps#{}", source.as_str()), format!("days#{}", source.as_str()))
}

pub fn participant_item(p: &Participant, closes_at: Timestamp) -> Result<Item, StoreError> {
    let mut item = to_item(&ParticipantItem {
        pk: challenge_pk(&p.challenge),
        sk: participant_sk(&p.user),
        challenge: p.challenge.clone(),
        user: p.user.clone(),
        joined_at: p.joined_at,
        closes_at: closes_at.as_second(),
        sealed: p.sealed,
        counted: p.counted.iter().map(|(d, v)| (d.to_string(), *v)).collect(),
        rev: p.rev,
    })?;
    for (source, totals) in &p.sources.0 {
        let (steps, days) = source_attributes(*source);
        item.insert(steps, n(totals.total));
        item.insert(days, n(totals.days));
    }
    Ok(item)
}

pub fn participant_from_item(item: Item) -> Result<Participant, StoreError> {
    let number = |name: &str| -> Result<u64, StoreError> {
        item.get(name).map_or(Ok(0), |v| {
            v.as_n()
                .ok()
                .and_then(|raw| raw.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("{name} is not a count")))
        })
    };
    let mut sources = SourceTotals::default();
    for source in Provider::ALL {
        let (steps, days) = source_attributes(source);
        let totals = ParticipantTotals {
            total: number(&steps)?,
            days: u32::try_from(number(&days)?).map_err(|_| StoreError::Corrupt(format!("{days} is too large")))?,
        };
        if totals != ParticipantTotals::default() {
            sources.0.insert(source, totals);
        }
    }
    let fixed: ParticipantItem = from_item(item)?;
    let counted = fixed
        .counted
        .iter()
        .map(|(d, v)| LocalDate::parse(d).map(|d| (d, *v)).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect::<Result<_, _>>()?;
    Ok(Participant {
        challenge: fixed.challenge,
        user: fixed.user,
        sources,
        joined_at: fixed.joined_at,
        sealed: fixed.sealed,
        counted,
        rev: fixed.rev,
    })
}

pub fn snapshot_sk(user: &UserId) -> String {
    format!("SNAP#{user}")
}

/// `CHAL#{id}` / `SNAP#{user}`: a participant's final numbers and the day values they came from.
#[derive(Serialize, Deserialize)]
pub struct SnapshotItem {
    pub pk: String,
    pub sk: String,
    /// Provider id → the source's numbers over the window.
    pub totals: BTreeMap<String, ParticipantTotals>,
    /// Date → provider id → steps.
    pub days: BTreeMap<LocalDate, BTreeMap<String, u32>>,
    pub sealed_at: Timestamp,
}

impl SnapshotItem {
    pub fn from_snapshot(challenge: &ChallengeId, user: &UserId, snapshot: &Snapshot) -> Self {
        let by_name = |p: &Provider| p.as_str().to_owned();
        Self {
            pk: challenge_pk(challenge),
            sk: snapshot_sk(user),
            totals: snapshot.totals.0.iter().map(|(p, t)| (by_name(p), *t)).collect(),
            days: snapshot
                .days
                .iter()
                .map(|(date, values)| (*date, values.iter().map(|(p, s)| (by_name(p), *s)).collect()))
                .collect(),
            sealed_at: snapshot.sealed_at,
        }
    }

    pub fn into_snapshot(self) -> Result<Snapshot, StoreError> {
        let provider = |name: &str| name.parse::<Provider>().map_err(|e| StoreError::Corrupt(e.to_string()));
        let totals = self.totals.iter().map(|(p, t)| Ok((provider(p)?, *t))).collect::<Result<_, StoreError>>()?;
        let days = self
            .days
            .into_iter()
            .map(|(date, values)| {
                let values = values.iter().map(|(p, s)| Ok((provider(p)?, *s))).collect::<Result<_, StoreError>>()?;
                Ok((date, values))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Snapshot { totals: SourceTotals(totals), days, sealed_at: self.sealed_at })
    }
}

#[derive(Serialize, Deserialize)]
pub struct ConnectionItem {
    pub pk: String,
    pub sk: String,
    pub user: UserId,
    pub provider: Provider,
    pub status: ConnectionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<EncryptedTokens>,
    #[serde(default)]
    pub token_version: u64,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_data_date: Option<LocalDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_device_sync_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_new_data_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_from: Option<LocalDate>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub installs: BTreeMap<String, Option<LocalDate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DueSlot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_lapsed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_checked_at: Option<Timestamp>,
    /// GSI1: present only while the connection is active and scheduled (a sparse index):
    /// `DUE#{shard}` / due time while it has one, else `SLOT#...` / `{user}#{provider}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

impl ConnectionItem {
    pub fn from_connection(c: &Connection) -> Self {
        let active = c.status == ConnectionStatus::Active;
        let (gsi1pk, gsi1sk) = match (c.next_sync_at, c.slot) {
            (Some(at), _) if active => (Some(due_pk(shard_of(&c.user, c.provider))), Some(due_sk(at))),
            (None, Some(slot)) if active => (Some(slot_pk(slot)), Some(slot_sk(&c.user, c.provider))),
            _ => (None, None),
        };
        Self {
            pk: user_pk(&c.user),
            sk: conn_sk(c.provider),
            user: c.user.clone(),
            provider: c.provider,
            status: c.status,
            provider_user_id: c.provider_user_id.clone(),
            time_zone: c.time_zone.clone(),
            tokens: c.tokens.clone(),
            token_version: c.token_version,
            created_at: c.created_at,
            last_attempt_at: c.last_attempt_at,
            last_success_at: c.last_success_at,
            last_data_date: c.last_data_date,
            last_device_sync_at: c.last_device_sync_at,
            last_new_data_at: c.last_new_data_at,
            last_error: c.last_error.clone(),
            next_sync_at: c.next_sync_at,
            counts_from: c.counts_from,
            installs: c.installs.clone(),
            slot: c.slot,
            subscription_lapsed_at: c.subscription_lapsed_at,
            subscription_checked_at: c.subscription_checked_at,
            gsi1pk,
            gsi1sk,
        }
    }

    pub fn into_connection(self) -> Connection {
        Connection {
            user: self.user,
            provider: self.provider,
            status: self.status,
            provider_user_id: self.provider_user_id,
            time_zone: self.time_zone,
            tokens: self.tokens,
            token_version: self.token_version,
            created_at: self.created_at,
            last_attempt_at: self.last_attempt_at,
            last_success_at: self.last_success_at,
            last_data_date: self.last_data_date,
            last_device_sync_at: self.last_device_sync_at,
            last_new_data_at: self.last_new_data_at,
            last_error: self.last_error,
            next_sync_at: self.next_sync_at,
            counts_from: self.counts_from,
            installs: self.installs,
            slot: self.slot,
            subscription_lapsed_at: self.subscription_lapsed_at,
            subscription_checked_at: self.subscription_checked_at,
        }
    }
}

/// GSI1 partition of one schedule slot.
pub fn slot_pk(slot: DueSlot) -> String {
    format!("SLOT#{}#{}#{}", slot.shard, slot.cycle, slot.phase)
}

/// GSI1 sort key in a slot: unique per connection, so a sweep can resume after one.
pub fn slot_sk(user: &UserId, provider: Provider) -> String {
    format!("{user}#{provider}")
}

pub fn sweep_pk(shard: u16, cycle: u32) -> String {
    format!("SWEEP#{shard}#{cycle}")
}
pub const SWEEP_SK: &str = "CURSOR";

/// `SWEEP#{shard}#{cycle}` / `CURSOR`: how far the shard's sweep of the cycle has come.
#[derive(Serialize, Deserialize)]
pub struct SweepCursorItem {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_provider: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_started_at: Option<Timestamp>,
    /// Phase (as text) → when its last complete sweep began.
    #[serde(default)]
    pub swept: BTreeMap<String, Timestamp>,
}

impl SweepCursorItem {
    pub fn from_cursor(shard: u16, cycle: u32, cursor: &crate::ports::SweepCursor) -> Self {
        let partial = cursor.partial.as_ref();
        Self {
            pk: sweep_pk(shard, cycle),
            sk: SWEEP_SK.to_owned(),
            through: cursor.through,
            partial_index: partial.map(|p| p.index),
            partial_user: partial.map(|p| p.after.0.clone()),
            partial_provider: partial.map(|p| p.after.1),
            partial_started_at: partial.map(|p| p.started_at),
            swept: cursor.swept.iter().map(|(phase, at)| (phase.to_string(), *at)).collect(),
        }
    }

    pub fn into_cursor(self) -> Result<crate::ports::SweepCursor, StoreError> {
        let partial = match (self.partial_index, self.partial_user, self.partial_provider, self.partial_started_at) {
            (Some(index), Some(user), Some(provider), Some(started_at)) => {
                Some(crate::ports::PartialPhase { index, after: (user, provider), started_at })
            }
            _ => None,
        };
        let swept = self
            .swept
            .into_iter()
            .map(|(phase, at)| phase.parse::<u32>().map(|p| (p, at)))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Corrupt(format!("sweep cursor phase: {e}")))?;
        Ok(crate::ports::SweepCursor { through: self.through, partial, swept })
    }
}

pub fn due_pk(shard: u16) -> String {
    format!("DUE#{shard}")
}

/// Sortable due time: RFC 3339 in UTC with fixed-width fractional seconds.
pub fn due_sk(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Who holds a provider account. Released, it stays: `user` is the last holder and
/// `released_through` the last day counted for them.
#[derive(Serialize, Deserialize)]
pub struct OwnerItem {
    pub pk: String,
    pub sk: String,
    pub user: UserId,
    pub provider: Provider,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_through: Option<LocalDate>,
    /// The holder's first countable day (`AccountClaim::counts_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_from: Option<LocalDate>,
    /// Moves on every write: a claim is conditioned on the version it read.
    #[serde(default)]
    pub version: u64,
}

impl OwnerItem {
    pub fn from_hold(provider: Provider, account: &str, hold: &AccountHold, version: u64) -> Self {
        Self {
            pk: account_pk(provider, account),
            sk: OWNER_SK.to_owned(),
            user: hold.user.clone(),
            provider,
            account: account.to_owned(),
            released_through: hold.released_through,
            counts_from: hold.counts_from,
            version,
        }
    }

    pub fn hold(&self) -> AccountHold {
        AccountHold { user: self.user.clone(), released_through: self.released_through, counts_from: self.counts_from }
    }
}

/// A source's app-level subscriptions (one item per source), as the daily run left them.
pub fn subscriptions_pk(provider: Provider) -> String {
    format!("SUBSCRIPTIONS#{provider}")
}
pub const SUBSCRIPTIONS_SK: &str = "STATE";

pub fn oauth_pk(id: &str) -> String {
    format!("OAUTH#{id}")
}
pub const OAUTH_SK: &str = "STATE";

pub fn dedupe_pk(key: &str) -> String {
    format!("DEDUPE#{key}")
}
pub const DEDUPE_SK: &str = "DEDUPE";

/// A reminder's once-per-period record: a person's in their own partition (so erasing them
/// erases it), a digest in its challenge's. `REMINDER#` sorts after `PROFILE`, `PART#` and
/// before `SNAP#`, outside every range the other reads query (a person's days through their
/// profile, a challenge's participants).
pub fn reminder_key(subject: &ReminderSubject) -> (String, String) {
    match subject {
        ReminderSubject::Person { user, provider, code } => (user_pk(user), format!("REMINDER#{provider}#{code}")),
        ReminderSubject::Digest { challenge } => (challenge_pk(challenge), "REMINDER#digest".to_owned()),
    }
}

/// A fixed-window counter (uploads per person per minute): one item per key and window.
pub fn rate_pk(key: &str, window_end: Timestamp) -> String {
    format!("RATE#{key}#{}", window_end.as_second())
}
pub const RATE_SK: &str = "RATE";

#[derive(Serialize, Deserialize)]
pub struct OAuthStateItem {
    pub pk: String,
    pub sk: String,
    #[serde(default)]
    pub stage: OAuthStage,
    pub user: UserId,
    pub provider: Provider,
    pub verifier: String,
    pub return_to: String,
    /// Epoch seconds: the table's TTL attribute (expiry is also checked in code).
    pub expires_at: i64,
}

impl OAuthStateItem {
    pub fn from_state(state: &OAuthState) -> Self {
        use secrecy::ExposeSecret;
        Self {
            pk: oauth_pk(&state.id),
            sk: OAUTH_SK.to_owned(),
            stage: state.stage,
            user: state.user.clone(),
            provider: state.provider,
            verifier: state.verifier.expose_secret().to_owned(),
            return_to: state.return_to.clone(),
            expires_at: state.expires_at.as_second(),
        }
    }

    pub fn into_state(self) -> Result<OAuthState, StoreError> {
        let id = self.pk.strip_prefix("OAUTH#").unwrap_or_default().to_owned();
        Ok(OAuthState {
            id,
            stage: self.stage,
            user: self.user,
            provider: self.provider,
            verifier: self.verifier.into(),
            return_to: self.return_to,
            expires_at: Timestamp::from_second(self.expires_at).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }
}
