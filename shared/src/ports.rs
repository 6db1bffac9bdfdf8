//! Narrow traits the engine works through. Adapters are named for their technology
//! (`aws::DynamoStore`, `aws::EventBridgePublisher`); in-memory fakes live in `testing`.

use crate::domain::{
    Challenge, ChallengeId, Connection, ConnectionStatus, DailyValue, DayRecord, DiagnosisCode, DueSlot,
    EncryptedTokens, LastError, LocalDate, OAuthState, Participant, Provider, Snapshot, TokenSet, UploadWindow, UserId,
    UserProfile,
};
use crate::events::Event;
use async_trait::async_trait;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// What went wrong in a store; `is_retryable` says whether the same call can succeed later.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition failed: someone wrote the item since it was read. Re-read and re-apply.
    #[error("the item changed since it was read")]
    Conflict,
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this provider account is already connected to another person")]
    AccountOwnedByAnother,
    #[error("the challenge is final; its totals no longer change")]
    ChallengeFinal,
    #[error("the connection is disconnected")]
    Disconnected,
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
    /// The store refused the request itself (a validation error, a transaction too large):
    /// the same request fails again, so it is never retried.
    #[error("the store refused the request: {0}")]
    Refused(String),
    /// Throttling, a timeout, a 5xx: the same call may succeed later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict | StoreError::Unavailable(_))
    }
}

/// A person's profile and the stored days among the dates asked for.
#[derive(Debug, Clone, Default)]
pub struct UserDays {
    pub profile: UserProfile,
    pub days: BTreeMap<LocalDate, DayRecord>,
}

/// One changed day, written alone: the day item, conditioned on its version. What it moves
/// (the participants whose challenge counts the date) is counted after it, participant by
/// participant (`DayCount`), by the writer and again from the table's change stream, each
/// count idempotent on its own: a crash between the two loses nothing and counts nothing twice.
#[derive(Debug, Clone)]
pub struct DayWrite {
    pub record: DayRecord,
    pub expected_version: u64,
    /// When the write was made: what the challenge's close is compared with.
    pub now: Timestamp,
}

/// One committed write of a day record, as the table's change stream tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayChange {
    /// The stream's sequence number: what a partial failure reports back.
    pub id: String,
    pub old: Option<DayRecord>,
    pub new: DayRecord,
    /// The write's time (`DayWrite::now`).
    pub written_at: Timestamp,
}

/// One committed day change counted into one participant: each source's numbers moved by the
/// deltas and the date's counted version moved from `from_version` to `to_version`, only if
/// the participant still counts the date at `from_version` (0: not counted yet), exists, is
/// not sealed and its challenge was not final at `written_at`. A count applied twice, or one
/// older than the participant's, fails its condition: counting is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub challenge: ChallengeId,
    pub user: UserId,
    pub date: LocalDate,
    pub from_version: u64,
    pub to_version: u64,
    /// Per source whose value moved: (source, steps delta, days-with-data delta).
    pub deltas: Vec<(Provider, i64, i64)>,
    pub written_at: Timestamp,
}

/// A join: the new participant and the profile with the membership added (its `rev` one
/// past `expected_rev`), written atomically, conditioned on `expected_rev`.
#[derive(Debug, Clone)]
pub struct JoinWrite {
    pub participant: Participant,
    pub profile: UserProfile,
    pub expected_rev: u64,
}

/// Sealing a participant at close, atomically: the snapshot (new), the participant's numbers
/// set to the snapshot's and marked sealed, and the profile with the membership sealed (its
/// `rev` one past `expected_rev`), conditioned on `expected_rev`.
#[derive(Debug, Clone)]
pub struct SealWrite {
    pub challenge: ChallengeId,
    pub user: UserId,
    pub snapshot: Snapshot,
    pub profile: UserProfile,
    pub expected_rev: u64,
}

/// A leave: the participant removed and the profile without the membership, atomically.
#[derive(Debug, Clone)]
pub struct LeaveWrite {
    pub challenge: ChallengeId,
    pub user: UserId,
    pub profile: UserProfile,
    pub expected_rev: u64,
}

#[async_trait]
pub trait StepStore: Send + Sync {
    /// The profile and the stored days among `dates`, read consistently (one request: the
    /// days from the earliest asked through the profile, which sorts after them).
    async fn load_user_days(&self, user: &UserId, dates: &[LocalDate]) -> Result<UserDays, StoreError>;
    /// The profile and every stored day from `start` to `end`, read consistently.
    async fn load_user_window(&self, user: &UserId, start: LocalDate, end: LocalDate) -> Result<UserDays, StoreError>;
    /// Each of `users`' profile and stored days among `dates`, read in batches of keys and
    /// eventually consistent (an overview, which a write a second old may not be in yet): the
    /// organizer's view of a challenge. Every user asked for is in the answer.
    async fn load_people_days(
        &self,
        users: &[UserId],
        dates: &[LocalDate],
    ) -> Result<BTreeMap<UserId, UserDays>, StoreError>;
    /// `StoreError::Conflict` when the day's version moved.
    async fn commit_day(&self, write: &DayWrite) -> Result<(), StoreError>;
    /// Counts one committed day change into one participant; `StoreError::Conflict` when its
    /// condition failed (counted already, counting another version, left, sealed or final).
    async fn count_day(&self, count: &DayCount) -> Result<(), StoreError>;
    /// `StoreError::Conflict` when the profile's rev moved (a join, leave or seal came first).
    async fn commit_seal(&self, write: &SealWrite) -> Result<(), StoreError>;
    /// Sets the person's time zone; conditioned on `expected_rev`.
    async fn set_time_zone(&self, user: &UserId, zone: &str, expected_rev: u64) -> Result<(), StoreError>;
    /// Sets or clears the primary source; conditioned on `expected_rev`.
    async fn set_primary_source(
        &self,
        user: &UserId,
        primary: Option<Provider>,
        expected_rev: u64,
    ) -> Result<(), StoreError>;
    /// Deletes every item of the person's own partition (days, profile, memberships,
    /// connections, logs); answers how many. Idempotent: a second call deletes nothing.
    async fn erase_user(&self, user: &UserId) -> Result<usize, StoreError>;
}

#[async_trait]
pub trait ChallengeStore: Send + Sync {
    async fn create_challenge(&self, challenge: &Challenge) -> Result<(), StoreError>;
    async fn get_challenge(&self, id: &ChallengeId) -> Result<Option<Challenge>, StoreError>;
    /// Every challenge whose window ends on or after `ending_from`, by end date.
    async fn list_challenges(&self, ending_from: LocalDate) -> Result<Vec<Challenge>, StoreError>;
    /// `StoreError::Conflict` when the profile's rev moved; `AlreadyExists` when already joined.
    async fn commit_join(&self, write: &JoinWrite) -> Result<(), StoreError>;
    /// `StoreError::Conflict` when the profile's rev moved.
    async fn commit_leave(&self, write: &LeaveWrite) -> Result<(), StoreError>;
    /// Overwrites a participant's numbers and counted versions (a rebuild) with `rebuilt`'s,
    /// conditioned on the participant's `rev` being `rebuilt.rev` (moved on by one).
    async fn commit_totals(&self, rebuilt: &Participant) -> Result<(), StoreError>;
    async fn participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Participant>, StoreError>;
    async fn participants(&self, challenge: &ChallengeId) -> Result<Vec<Participant>, StoreError>;
    /// The participant's snapshot, once sealed.
    async fn snapshot(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Snapshot>, StoreError>;
    /// Deletes the person's participant row and sealed snapshot in `challenge`, if any.
    async fn erase_participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<(), StoreError>;
}

/// A claimed provider account: the days before `counts_from` fed a previous owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountClaim {
    pub counts_from: Option<LocalDate>,
}

/// What a sync attempt records on its connection.
#[derive(Debug, Clone, Default)]
pub struct SyncRecord {
    pub attempted_at: Option<Timestamp>,
    pub succeeded_at: Option<Timestamp>,
    pub last_data_date: Option<LocalDate>,
    pub last_device_sync_at: Option<Timestamp>,
    pub last_new_data_at: Option<Timestamp>,
    /// `Some(None)` clears the last error; `None` leaves it.
    pub last_error: Option<Option<LastError>>,
    pub status: Option<ConnectionStatus>,
    pub next_sync_at: Option<Timestamp>,
    /// Puts the connection (back) in this slot of the schedule and drops its due time: the
    /// sweep takes it once a cycle from then on, with no write.
    pub slot: Option<DueSlot>,
    /// Only onto the connection with these tokens: the outcome of a sync that began before a
    /// reconnect (or a refresh elsewhere) never lands on the newer connection
    /// (`StoreError::Conflict`).
    pub token_version: Option<u64>,
}

/// How far one shard's sweep of one cycle has come: one small item per shard and cycle, written
/// once per sweep (not per connection), under the shard's sweep claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepCursor {
    /// Every phase up to this absolute index (`engine::schedule::phase_index`) was swept to its end.
    pub through: Option<i64>,
    /// The phase after `through`, begun but stopped (the worker's deadline) after this connection.
    pub partial: Option<PartialPhase>,
    /// Per phase of the cycle: when its last complete sweep began. Every connection of the slot
    /// that carries no error was synced successfully at or after it (a failure records its error).
    pub swept: BTreeMap<u32, Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialPhase {
    pub index: i64,
    pub after: (UserId, Provider),
    pub started_at: Timestamp,
}

/// A webhook sync's claim on the fetch (`ConnectionStore::fence_fetch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFence {
    /// When the notice arrived (the webhook's clock).
    pub noticed_at: Timestamp,
    /// The notice's id: the fence of a retry of the same notice goes ahead again.
    pub notice_id: String,
    pub start: LocalDate,
    pub end: LocalDate,
    /// When this fetch starts (the worker's clock).
    pub now: Timestamp,
}

/// What `fence_fetch` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fenced {
    /// Fetch now: the connection as it stands after the fence was written.
    Fetch(Box<Connection>),
    /// A fetch of these dates began after the notice arrived: this one is redundant.
    Covered,
    NoConnection,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn get_connection(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError>;
    /// Every connection of one person, in any status.
    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>, StoreError>;
    /// Every connection (any status) of each of `users`, read in batches of keys and
    /// eventually consistent: the organizer's view of a challenge. A person with none adds
    /// nothing.
    async fn connections_of(&self, users: &[UserId]) -> Result<Vec<Connection>, StoreError>;
    /// Up to `limit` active connections of `shard` whose `next_sync_at` is at or before `now`,
    /// most overdue first, after `after` (a connection of the previous page, as it was read).
    async fn due_connections(
        &self,
        shard: u16,
        now: Timestamp,
        after: Option<&Connection>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError>;
    /// Up to `limit` active connections sitting in `slot` (no due time), in key order, after
    /// the connection `after`.
    async fn slot_connections(
        &self,
        slot: DueSlot,
        after: Option<&(UserId, Provider)>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError>;
    async fn sweep_cursor(&self, shard: u16, cycle: u32) -> Result<Option<SweepCursor>, StoreError>;
    async fn save_sweep_cursor(&self, shard: u16, cycle: u32, cursor: &SweepCursor) -> Result<(), StoreError>;
    /// One conditional write before a webhook's fetch: it goes ahead unless a fetch of
    /// `start..=end` that began at or after `noticed_at` is recorded (then `Covered`), unless it
    /// is a retry of the notice that fence was written for (same `notice_id`): that goes ahead. Going ahead records
    /// `now`, the dates and `noticed_at` on the connection and answers the connection.
    async fn fence_fetch(&self, user: &UserId, provider: Provider, fence: &FetchFence) -> Result<Fenced, StoreError>;
    /// Creates the connection; `AlreadyExists` when there is one.
    async fn create_connection(&self, connection: &Connection) -> Result<(), StoreError>;
    /// Replaces the tokens when `token_version` is still `expected_version` and the connection
    /// is not disconnected, and frees the refresh lease in the same write; returns the new
    /// version. A stale writer gets `Conflict` or
    /// `Disconnected`, so it can never overwrite a newer token.
    async fn store_tokens(
        &self,
        user: &UserId,
        provider: Provider,
        tokens: &EncryptedTokens,
        expected_version: u64,
    ) -> Result<u64, StoreError>;
    /// Takes the refresh lease if it is free, expired, or already ours.
    async fn acquire_lease(
        &self,
        user: &UserId,
        provider: Provider,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    async fn release_lease(&self, user: &UserId, provider: Provider, holder: &str) -> Result<(), StoreError>;
    /// Records a sync's outcome; refused with `Disconnected` once the person disconnected, so
    /// a late sync never reactivates a connection.
    async fn record_sync(&self, user: &UserId, provider: Provider, record: &SyncRecord) -> Result<(), StoreError>;
    /// Claims a provider account for `user`; `AccountOwnedByAnother` while someone else holds
    /// it. An account released by someone else answers the last day counted for them: the new
    /// owner counts only the days after it, so one provider day never feeds two people.
    async fn claim_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
    ) -> Result<AccountClaim, StoreError>;
    /// Releases `user`'s hold on the account; the days through `counted_through` stay theirs
    /// (a later owner starts after it). A no-op when `user` does not hold it.
    async fn release_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
        counted_through: LocalDate,
    ) -> Result<(), StoreError>;
    async fn provider_account_owner(&self, provider: Provider, account: &str) -> Result<Option<UserId>, StoreError>;
    /// Writes a whole connection on connect or reconnect: created when `expected_version` is
    /// `None`, else replaced only while `token_version` is still `expected_version`. The item
    /// written carries `connection.token_version` (the caller moves it on).
    async fn save_connection(&self, connection: &Connection, expected_version: Option<u64>) -> Result<(), StoreError>;
    /// Marks the connection disconnected, drops its tokens and moves `token_version` on, so
    /// a refresh or sync still in flight can neither store tokens nor reactivate it.
    /// Returns the connection as it was.
    async fn disconnect(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError>;
    /// The app-level subscriptions the daily run left for `provider`, and when it ran.
    async fn subscriptions(&self, provider: Provider) -> Result<Option<StoredSubscriptions>, StoreError>;
    /// Replaces what is stored for `provider`'s subscriptions.
    async fn save_subscriptions(&self, provider: Provider, stored: &StoredSubscriptions) -> Result<(), StoreError>;
    /// Stores what asking about the person's own notification subscription (Withings) found:
    /// the connection's `subscription_checked_at`, and its `subscription_lapsed_at` set or
    /// cleared, touching nothing else; `NotFound` without a connection.
    async fn record_subscription_check(
        &self,
        user: &UserId,
        provider: Provider,
        check: &SubscriptionCheck,
    ) -> Result<(), StoreError>;
}

/// What asking a source about a person's own subscription found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionCheck {
    /// When the source was asked (or the person subscribed).
    pub checked_at: Timestamp,
    /// `Some`: missing, since then; `None`: in place.
    pub lapsed_since: Option<Timestamp>,
}

/// A source's subscriptions as one run of the keeper left them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredSubscriptions {
    pub checked_at: Timestamp,
    pub states: Vec<SubscriptionState>,
}

/// Short-lived, single-use records: OAuth states and webhook de-duplication keys.
#[async_trait]
pub trait EphemeralStore: Send + Sync {
    async fn put_oauth_state(&self, state: &OAuthState) -> Result<(), StoreError>;
    /// Removes and returns the state in one conditional step: a second take finds nothing.
    async fn take_oauth_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError>;
    /// `true` for the first claim of `key` until `ttl` passes; `false` for every other.
    async fn claim_once(&self, key: &str, now: Timestamp, ttl: Duration) -> Result<bool, StoreError>;
    /// When the current claim on `key` runs out, if there is one.
    async fn claim_expiry(&self, key: &str) -> Result<Option<Timestamp>, StoreError>;
    /// Gives a claim back (its work could not be handed on), so a retry is not swallowed.
    async fn release_claim(&self, key: &str) -> Result<(), StoreError>;
    /// Uses of `key` counted in the fixed window that ends at `window_end` (which names it).
    async fn window_count(&self, key: &str, window_end: Timestamp) -> Result<u32, StoreError>;
    /// Counts one use of `key` in the window that ends at `window_end`.
    async fn count_in_window(&self, key: &str, window_end: Timestamp) -> Result<(), StoreError>;
    /// Counts one use of `key` in the window that ends at `window_end` if fewer than `limit`
    /// were counted there, in one conditional step shared by every caller: `false` (nothing
    /// counted) once the window is spent. An app-wide quota at a provider.
    async fn take_in_window(&self, key: &str, window_end: Timestamp, limit: u32) -> Result<bool, StoreError>;
}

/// What one reminder is about: the key of its once-per-period record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReminderSubject {
    /// One diagnosis of one person's connection to one source.
    Person { user: UserId, provider: Provider, code: DiagnosisCode },
    /// A challenge's digest for its organizers (who still needs to act).
    Digest { challenge: ChallengeId },
}

/// What `claim_reminder` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderClaim {
    /// Ours to send: recorded as sent at the claim's `now`.
    Claimed,
    /// One was sent at this time, within the period: nothing is to be sent.
    SentAt(Timestamp),
}

/// The once-per-period records of the reminders sent to people and organizers.
#[async_trait]
pub trait ReminderStore: Send + Sync {
    /// One conditional write decides: records that `holder` sent the reminder about `subject`
    /// at `now`, unless one was recorded later than `now - period` (then `SentAt` that time, and
    /// nothing is written). Of any number of callers within a period exactly one is answered
    /// `Claimed`. The record expires (TTL) a period after `now`; expiry is checked here too.
    async fn claim_reminder(
        &self,
        subject: &ReminderSubject,
        holder: &str,
        now: Timestamp,
        period: Duration,
    ) -> Result<ReminderClaim, StoreError>;
    /// Gives back `holder`'s claim (its reminder could not be handed on), so a retry sends it;
    /// a record anyone else made is left alone.
    async fn release_reminder(&self, subject: &ReminderSubject, holder: &str) -> Result<(), StoreError>;
}

/// Every store port at once: what one table (DynamoDB, or memory in tests) offers. Services
/// take the narrow ports; wiring hands them one `Arc<dyn Store>`.
pub trait Store: StepStore + ChallengeStore + ConnectionStore + EphemeralStore + ReminderStore {}

impl<T: StepStore + ChallengeStore + ConnectionStore + EphemeralStore + ReminderStore> Store for T {}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{failed} of {total} events could not be published: {reason}")]
    Failed { failed: usize, total: usize, reason: String },
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError>;
}

/// Events tell the company's app about what is already stored, so a failure to publish (after
/// the publisher's own retries) is logged with `what` was publishing, not returned.
pub async fn publish_or_log(publisher: &dyn EventPublisher, events: &[Event], what: &str) {
    if events.is_empty() {
        return;
    }
    if let Err(error) = publisher.publish(events).await {
        tracing::error!(%error, what, "events not published");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("the tokens could not be encrypted")]
    Encrypt,
    /// Wrong key, wrong person or provider, or tampered ciphertext.
    #[error("the tokens could not be decrypted")]
    Decrypt,
    /// This function was deployed without the token key (it has no business with tokens).
    #[error("this function holds no token key")]
    NoKey,
}

/// Encrypts tokens before they reach the store, bound to the person and the provider.
pub trait TokenCipher: Send + Sync {
    /// Seals `tokens` for the connection `(user, provider)` at `token_version`, the version
    /// they are stored with: they open for that connection and version only.
    fn encrypt(
        &self,
        user: &UserId,
        provider: Provider,
        token_version: u64,
        tokens: &TokenSet,
    ) -> Result<EncryptedTokens, CipherError>;
    fn decrypt(
        &self,
        user: &UserId,
        provider: Provider,
        token_version: u64,
        tokens: &EncryptedTokens,
    ) -> Result<TokenSet, CipherError>;
}

/// Why a provider call failed, and what that means for retrying.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("rate limited by the provider")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The access token was refused; a refresh may help once.
    #[error("the provider refused the access token")]
    Unauthorized,
    /// The token endpoint refused the refresh token (`invalid_grant`): revoked, expired, or
    /// already replaced by a peer's refresh. The engine re-reads before deciding.
    #[error("the provider refused the refresh token")]
    InvalidGrant,
    /// Revoked or expired grant, missing permission: only the person can fix it.
    #[error("the person must reconnect: {reason}")]
    ReconnectRequired { reason: String },
    #[error("a permission is missing: {scope}")]
    MissingScope { scope: String },
    /// The provider refuses our app, not this person (an API not enabled for the project,
    /// preview access not granted, a scope the project may not ask for): a reconnect fixes
    /// nothing; an operator must.
    #[error("the provider refuses our app: {reason}")]
    AppRefused { reason: String },
    /// The provider's API is gone (legacy Fitbit, Misfit).
    #[error("the provider's API is retired")]
    Retired,
    #[error("the provider refused the request: {0}")]
    BadRequest(String),
}

impl ProviderError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::RateLimited { .. } | ProviderError::Unavailable(_))
    }
}

/// What the authorize redirect carries.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub state: String,
    /// base64url(SHA-256(verifier)), for PKCE S256.
    pub code_challenge: String,
    pub redirect_uri: String,
}

/// Who the person is at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    /// The stable id webhooks name (Google's `healthUserId`).
    pub account_id: String,
    /// The legacy Fitbit user id, for joining an old `fitbit` connection; absent if none.
    pub legacy_account_id: Option<String>,
    /// IANA time zone, where the provider tells it.
    pub time_zone: Option<String>,
}

/// Why a webhook request was refused. The answer is a 4xx; nothing was parsed or acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the signature header is missing")]
    MissingSignature,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the signing key is unknown")]
    UnknownKey,
    #[error("the request is not authorized")]
    Unauthorized,
    /// Signed, but dated too far from now: a replay of an old message, or a sender's clock far off.
    #[error("the message is dated outside the accepted window")]
    Stale,
    #[error("the body is too large")]
    TooLarge,
    #[error("the body is malformed: {0}")]
    Malformed(String),
    /// The verifier could not get what it needs (e.g. the published keys); a retry may help.
    #[error("webhook verification is unavailable: {0}")]
    Unavailable(String),
}

/// A provider's "there is new data" notice, after verification: whose data, which civil dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataNotice {
    pub account_id: String,
    pub dates: Vec<LocalDate>,
    /// `true` for deletions (counts may drop; consent may be gone).
    pub deleted: bool,
}

/// A notice from a source read by upload time (Garmin), after verification: whose data, and
/// the upload window to read; no window when the notice is about the grant (deregistered,
/// permissions changed), which a sync of the default window finds out about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadNotice {
    pub account_id: String,
    pub window: Option<UploadWindow>,
}

/// What a verified webhook request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookMessage {
    /// A subscription handshake: answer with this status and body.
    Handshake {
        status: u16,
        body: String,
    },
    Notices(Vec<DataNotice>),
    Uploads(Vec<UploadNotice>),
}

/// Daily totals from one source: every source the server pulls has this.
#[async_trait]
pub trait StepSource: Send + Sync {
    fn provider(&self) -> Provider;

    /// Daily totals for the civil dates `start..=end`; a date with no data is absent.
    async fn daily_steps(
        &self,
        connection: &Connection,
        tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError>;

    /// The daily totals uploaded in `window` (a source read by upload time), each observed at
    /// its upload, whatever their dates; sources read by date have no such thing.
    async fn uploaded_steps(
        &self,
        connection: &Connection,
        tokens: Option<&TokenSet>,
        window: &UploadWindow,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        let _ = (connection, tokens, window);
        Err(ProviderError::BadRequest(format!("{} is not read by upload time", self.provider())))
    }
}

/// OAuth 2 at a source: the consent page, the code exchange, refreshing and who the person is.
#[async_trait]
pub trait OAuthClient: Send + Sync {
    /// The consent page URL to redirect the person to.
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError>;

    /// Scopes that must be granted for the connection to work.
    fn required_scopes(&self) -> &[&str];

    /// The authorization server's issuer, which it names in the callback's `iss` (RFC 9207):
    /// a callback naming another issuer came from somewhere else (a mix-up attack) and is
    /// refused before its code is exchanged. `None` for a provider that sends no `iss`.
    fn issuer(&self) -> Option<&str> {
        None
    }

    async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError>;

    /// What a source needs once a connection is stored (Withings: the person's notification
    /// subscription). Best effort: a failure leaves the connection on the scheduled pulls.
    async fn connected(&self, tokens: &TokenSet, identity: &ProviderIdentity) -> Result<(), ProviderError> {
        let _ = (tokens, identity);
        Ok(())
    }

    /// A new access token; keeps the old refresh token when the provider sends none.
    async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError>;

    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError>;
}

/// Gives a grant back at the source when the person disconnects.
#[async_trait]
pub trait Revoker: Send + Sync {
    /// Best effort: the caller logs a failure and goes on.
    async fn revoke(&self, tokens: &TokenSet) -> Result<(), ProviderError>;

    /// As `revoke`, knowing the account at the source where the connection did (Withings'
    /// revoke names the user).
    async fn revoke_account(&self, tokens: &TokenSet, account_id: Option<&str>) -> Result<(), ProviderError> {
        let _ = account_id;
        self.revoke(tokens).await
    }
}

/// Verifies a source's webhook requests on their raw bytes, then parses them.
#[async_trait]
pub trait WebhookVerifier: Send + Sync {
    /// `headers` as received (names in any case).
    async fn verify(
        &self,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError>;

    /// A GET carrying its question in the query (a subscription's verification, as Oura's).
    /// Sources that verify no such thing read it as any other request.
    async fn verify_query(&self, query: &str, headers: &[(String, String)]) -> Result<WebhookMessage, WebhookError> {
        let _ = query;
        self.verify("GET", headers, b"").await
    }

    /// The whole request, its raw query string included: a GET goes to `verify_query`, any
    /// other method to `verify`. A source whose callback URL carries a secret of ours in its
    /// query (Withings signs nothing) reads it here.
    async fn verify_request(
        &self,
        method: &str,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        if method.eq_ignore_ascii_case("GET") {
            self.verify_query(query, headers).await
        } else {
            self.verify(method, headers, body).await
        }
    }
}

/// An app-level notification subscription at a source, as the daily run last left it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionState {
    /// What it delivers, in the source's terms (`daily_activity/create`).
    pub topic: String,
    pub id: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// What the run did (`kept`, `renewed`, `created`), or why it could not.
    pub note: String,
}

impl SubscriptionState {
    /// Whether notices flow through it at `now`: it exists and has not expired.
    pub fn live(&self, now: Timestamp) -> bool {
        self.id.is_some() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// Keeps a source's app-level subscriptions alive: the daily run's part for sources whose
/// subscriptions expire or can be switched off.
#[async_trait]
pub trait SubscriptionKeeper: Send + Sync {
    /// Renews each subscription close to its end (or past it) and creates each one missing;
    /// returns every topic's state after. A topic that could not be mended is reported in its
    /// state; an error means the source could not even be asked.
    async fn keep(&self, now: Timestamp) -> Result<Vec<SubscriptionState>, ProviderError>;
}

/// A source that subscribes each person to its notifications (Withings): a sync now and then
/// asks whether the person's subscription still points at us and makes it again if not.
#[async_trait]
pub trait PersonSubscriptions: Send + Sync {
    /// Whether the person's subscription to our callback exists at the source.
    async fn subscribed(&self, tokens: &TokenSet) -> Result<bool, ProviderError>;
    async fn subscribe(&self, tokens: &TokenSet) -> Result<(), ProviderError>;
}

/// The sources this deployment has, by capability: each use case asks for the one it needs.
#[derive(Default, Clone)]
pub struct Providers {
    sources: HashMap<Provider, Arc<dyn StepSource>>,
    oauth: HashMap<Provider, Arc<dyn OAuthClient>>,
    revokers: HashMap<Provider, Arc<dyn Revoker>>,
    webhooks: HashMap<Provider, Arc<dyn WebhookVerifier>>,
    keepers: HashMap<Provider, Arc<dyn SubscriptionKeeper>>,
    people: HashMap<Provider, Arc<dyn PersonSubscriptions>>,
}

impl Providers {
    pub fn with_source(mut self, source: Arc<dyn StepSource>) -> Self {
        self.sources.insert(source.provider(), source);
        self
    }

    pub fn with_oauth(mut self, provider: Provider, client: Arc<dyn OAuthClient>) -> Self {
        self.oauth.insert(provider, client);
        self
    }

    pub fn with_revoker(mut self, provider: Provider, revoker: Arc<dyn Revoker>) -> Self {
        self.revokers.insert(provider, revoker);
        self
    }

    pub fn with_webhooks(mut self, provider: Provider, verifier: Arc<dyn WebhookVerifier>) -> Self {
        self.webhooks.insert(provider, verifier);
        self
    }

    pub fn with_keeper(mut self, provider: Provider, keeper: Arc<dyn SubscriptionKeeper>) -> Self {
        self.keepers.insert(provider, keeper);
        self
    }

    pub fn with_person_subscriptions(mut self, provider: Provider, people: Arc<dyn PersonSubscriptions>) -> Self {
        self.people.insert(provider, people);
        self
    }

    /// How `provider` subscribes each person, if it does (the syncs check it now and then).
    pub fn person_subscriptions(&self, provider: Provider) -> Option<&dyn PersonSubscriptions> {
        self.people.get(&provider).map(AsRef::as_ref)
    }

    pub fn subscribes_people(&self, provider: Provider) -> bool {
        self.people.contains_key(&provider)
    }

    /// The sources whose subscriptions the daily run keeps.
    pub fn keepers(&self) -> impl Iterator<Item = (Provider, &dyn SubscriptionKeeper)> {
        self.keepers.iter().map(|(p, k)| (*p, k.as_ref()))
    }

    pub fn source(&self, provider: Provider) -> Option<&dyn StepSource> {
        self.sources.get(&provider).map(Arc::as_ref)
    }

    pub fn oauth(&self, provider: Provider) -> Option<&dyn OAuthClient> {
        self.oauth.get(&provider).map(Arc::as_ref)
    }

    pub fn revoker(&self, provider: Provider) -> Option<&dyn Revoker> {
        self.revokers.get(&provider).map(Arc::as_ref)
    }

    pub fn webhooks(&self, provider: Provider) -> Option<&dyn WebhookVerifier> {
        self.webhooks.get(&provider).map(Arc::as_ref)
    }
}
