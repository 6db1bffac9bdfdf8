//! The sync engine: validated daily values in, day records and challenge totals out, never
//! counting a step twice. Pure logic over the ports in `crate::ports`; it never sees an SDK
//! type, an HTTP request or a provider's JSON.

pub mod counting;
mod schedule;
mod seal;
mod subscription;
mod tokens;

use schedule::jittered;
pub use schedule::{PEOPLE_PER_SHARD, PHASE, Schedule, phase_index, phase_start, shards_for};
pub use seal::{Sealed, seal_membership};
pub use subscription::{
    SUBSCRIPTION_CHECK_EVERY, SUBSCRIPTION_RETRY_AFTER, SubscriptionChecked, subscription_check_due,
};
use tokens::Tokens;

use crate::clock::Clock;
use crate::domain::{
    Connection, ConnectionStatus, DailyValue, DayRecord, FailureCode, LastError, LocalDate, Provider, SourceValue,
    StepLimits, TokenSet, UploadWindow, UserId, ValueError, local_today,
};
use crate::events::{ConnectionStatusChanged, Event};
use crate::ports::{
    ConnectionStore, DayChange as CommittedChange, DayWrite, EventPublisher, ProviderError, Providers, StepSource,
    StepStore, StoreError, SyncRecord, TokenCipher, UserDays,
};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How often one apply re-reads and re-applies after losing a race before giving up.
const MAX_CONFLICT_ROUNDS: u32 = 100;
/// When the provider failed without saying when to come back, try again after this.
const FAILURE_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("gave up after {0} rounds of concurrent changes to the same days")]
    TooManyConflicts(u32),
    #[error("the stored tokens could not be read")]
    Tokens,
}

impl SyncError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Store(e) => e.is_retryable(),
            SyncError::Provider(e) => e.is_retryable(),
            SyncError::TooManyConflicts(_) => true,
            SyncError::Tokens => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayChange {
    pub date: LocalDate,
    pub old_total: u32,
    pub new_total: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedValue {
    pub date: LocalDate,
    pub error: ValueError,
}

/// What an apply does to one date: the source's new value, or its absence from a pull that
/// asked for the date (at that time), which removes a value it had.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Value(SourceValue),
    Absent(Timestamp),
}

/// What one apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub changed: Vec<DayChange>,
    pub unchanged: usize,
    pub rejected: Vec<RejectedValue>,
}

/// What one sync reads from its source.
#[derive(Debug, Clone, Copy)]
pub enum Fetch<'a> {
    /// The civil dates `start..=end`: a day the source no longer returns has lost its value.
    Days { start: LocalDate, end: LocalDate },
    /// What was uploaded in a window of a source read by upload time (Garmin).
    Uploaded(&'a UploadWindow),
}

impl Fetch<'_> {
    async fn from(
        self,
        source: &dyn StepSource,
        connection: &Connection,
        tokens: Option<&TokenSet>,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        match self {
            Fetch::Days { start, end } => source.daily_steps(connection, tokens, start, end).await,
            Fetch::Uploaded(window) => source.uploaded_steps(connection, tokens, window).await,
        }
    }
}

/// How a connection's sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Synced(ApplyReport),
    /// Not active (disconnected or waiting for a reconnect): nothing was fetched.
    Skipped(ConnectionStatus),
    /// The provider failed; `status` is the connection's status afterwards.
    Failed {
        error: LastError,
        status: ConnectionStatus,
        retry_after: Option<Duration>,
    },
}

pub struct SyncEngine {
    pub steps: Arc<dyn StepStore>,
    pub connections: Arc<dyn ConnectionStore>,
    pub publisher: Arc<dyn EventPublisher>,
    pub cipher: Arc<dyn TokenCipher>,
    pub clock: Arc<dyn Clock>,
    pub limits: StepLimits,
    pub schedule: Schedule,
    /// The sources to pull and the OAuth clients that refresh their tokens.
    pub providers: Providers,
}

impl SyncEngine {
    /// Validates `values` from `source` and merges them into `user`'s day records, writing
    /// only days that changed, each in one conditional transaction with the participant
    /// totals it moves. `tz` is the person's zone, for "not after local tomorrow".
    pub async fn apply(
        &self,
        user: &UserId,
        source: Provider,
        tz: &TimeZone,
        values: &[DailyValue],
    ) -> Result<ApplyReport, SyncError> {
        self.apply_values(user, source, None, tz, values, None).await
    }

    /// As `apply`, for the values one app installation of a phone platform uploaded: they
    /// are kept per installation, and the platform's value for a day is the largest of its
    /// installations' (`DayRecord::merge_install`).
    pub async fn apply_from_install(
        &self,
        user: &UserId,
        source: Provider,
        install: &str,
        tz: &TimeZone,
        values: &[DailyValue],
    ) -> Result<ApplyReport, SyncError> {
        self.apply_values(user, source, Some(install), tz, values, None).await
    }

    /// As `apply`, for the answer to a pull of `window` that started at `asked_at`: a day inside
    /// it (up to local today) that the source no longer returns loses the source's value, as a
    /// deletion would, unless that value was observed after `asked_at`.
    pub async fn apply_window(
        &self,
        user: &UserId,
        source: Provider,
        tz: &TimeZone,
        values: &[DailyValue],
        window: Option<(LocalDate, LocalDate, Timestamp)>,
    ) -> Result<ApplyReport, SyncError> {
        self.apply_values(user, source, None, tz, values, window).await
    }

    async fn apply_values(
        &self,
        user: &UserId,
        source: Provider,
        install: Option<&str>,
        tz: &TimeZone,
        values: &[DailyValue],
        window: Option<(LocalDate, LocalDate, Timestamp)>,
    ) -> Result<ApplyReport, SyncError> {
        let now = self.clock.now();
        let today = local_today(now, tz);
        let mut report = ApplyReport::default();
        let mut pending: BTreeMap<LocalDate, Pending> = BTreeMap::new();
        // A refused value is no evidence that its day is gone.
        let mut refused = std::collections::BTreeSet::new();
        for value in values {
            match self.limits.validate(value, today) {
                Ok(steps) => {
                    let incoming = SourceValue { steps, observed_at: value.observed_at };
                    // Within one batch the same rule picks the latest value per date.
                    let keep = match pending.get(&value.date) {
                        Some(Pending::Value(current)) => current.is_replaced_by(&incoming),
                        Some(Pending::Absent(_)) | None => true,
                    };
                    if keep {
                        pending.insert(value.date, Pending::Value(incoming));
                    }
                }
                Err(error) => {
                    tracing::info!(user = %user, source = %source, date = %value.date, code = error.code(), "daily value rejected");
                    report.rejected.push(RejectedValue { date: value.date, error });
                    refused.insert(value.date);
                }
            }
        }
        if let Some((start, end, asked_at)) = window {
            for date in start.through(end.min(today)).filter(|date| !refused.contains(date)) {
                pending.entry(date).or_insert(Pending::Absent(asked_at));
            }
        }

        let mut round = 0;
        while !pending.is_empty() {
            round += 1;
            if round > MAX_CONFLICT_ROUNDS {
                return Err(SyncError::TooManyConflicts(MAX_CONFLICT_ROUNDS));
            }
            let dates: Vec<LocalDate> = pending.keys().copied().collect();
            // Values that came through a connection (a pull, a phone installation) are written
            // only while it is not disconnected: its status is read before the first write.
            let through = (install.is_some() || window.is_some()).then_some(source);
            let snapshot = self.steps.load_user_days(user, &dates).await?;
            match self
                .write_changed_days(user, (source, install, through), &snapshot, &mut pending, &mut report, now)
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict) => backoff(round).await,
                Err(e) => return Err(e.into()),
            }
        }

        // Each committed day reaches the bus as one `StepsUpdated` through the table's change
        // stream (`services::day_events`), never from here: a crash after the commit loses none.
        Ok(report)
    }

    /// Writes each pending day that the snapshot shows would change, removing it from
    /// `pending` once done. Stops at the first conflict; the caller re-reads.
    async fn write_changed_days(
        &self,
        user: &UserId,
        (source, install, mut through): (Provider, Option<&str>, Option<Provider>),
        snapshot: &UserDays,
        pending: &mut BTreeMap<LocalDate, Pending>,
        report: &mut ApplyReport,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // A day of a final membership not sealed yet: seal it first, so its snapshot holds the
        // day as it was at close; the seal moved `rev`, so the caller re-reads.
        let unsealed: Vec<&crate::domain::ChallengeId> = snapshot
            .profile
            .memberships
            .iter()
            .filter(|(_, m)| m.needs_seal(now) && pending.keys().any(|date| m.covers(*date)))
            .map(|(id, _)| id)
            .collect();
        if !unsealed.is_empty() {
            for challenge in unsealed {
                seal_membership(self.steps.as_ref(), user, challenge, now).await?;
            }
            return Err(StoreError::Conflict);
        }
        let primary = snapshot.profile.primary;
        for (date, value) in pending.clone() {
            let current = snapshot.days.get(&date).cloned().unwrap_or_else(|| DayRecord::empty(user.clone(), date));
            let mut next = current.clone();
            let changed = match (value, install) {
                (Pending::Value(value), Some(install)) => next.merge_install(source, install, value, primary),
                (Pending::Value(value), None) => next.merge(source, value, primary),
                (Pending::Absent(observed_at), _) => next.remove(source, observed_at, primary),
            };
            if !changed {
                // A day the source never had is not a day it reported unchanged.
                if matches!(value, Pending::Value(_)) {
                    report.unchanged += 1;
                }
                pending.remove(&date);
                continue;
            }
            // Turned off since: nothing more is written. Read only when there is something to
            // write, so an unchanged sync stays one read.
            if let Some(provider) = through.take() {
                let status = self.connections.get_connection(user, provider).await?.map(|c| c.status);
                if status == Some(ConnectionStatus::Disconnected) {
                    return Err(StoreError::Disconnected);
                }
            }
            next.version = current.version + 1;
            self.steps.commit_day(&DayWrite { record: next.clone(), expected_version: current.version, now }).await?;
            pending.remove(&date);
            report.changed.push(DayChange { date, old_total: current.total.get(), new_total: next.total.get() });
            let old = (current.version > 0).then_some(current);
            let committed = CommittedChange { id: String::new(), old, new: next, written_at: now };
            self.count_now(&snapshot.profile, &committed).await;
        }
        Ok(())
    }

    /// Counts a change this engine just committed into the challenges it moves, so the
    /// leaderboard moves at once. Best effort: the change stream counts whatever this does not
    /// (a crash, a throttled update, a race with a join), exactly once (`counting`).
    async fn count_now(&self, profile: &crate::domain::UserProfile, change: &CommittedChange) {
        for count in counting::day_counts(profile, change) {
            match self.steps.count_day(&count).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    tracing::debug!(challenge = %count.challenge, date = %count.date, "count left to the change stream");
                }
                Err(error) => {
                    tracing::warn!(%error, challenge = %count.challenge, date = %count.date, "count left to the change stream");
                }
            }
        }
    }

    /// The steps are already counted: a lost event is logged, not returned.
    async fn publish(&self, events: &[Event]) {
        crate::ports::publish_or_log(self.publisher.as_ref(), events, "sync").await;
    }

    /// Pulls the connection's provider for `start..=end`, applies the values and records the
    /// outcome on the connection. Tokens are refreshed first when they expire within five
    /// minutes, and once more if the provider refuses the access token.
    /// A source this deployment does not pull (a phone, a provider not configured) is skipped.
    /// Days before the connection's `counts_from` (they fed the account's previous holder)
    /// are never fetched.
    /// `tz` is the zone of the connection's days (`Syncing::person_zone`).
    pub async fn sync_connection(
        &self,
        connection: &Connection,
        tz: &TimeZone,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<SyncOutcome, SyncError> {
        self.sync_fetch(connection, tz, Fetch::Days { start, end }).await
    }

    /// As `sync_connection`, for what `fetch` names: the civil dates of a window, or an upload
    /// window of a source read by upload time. An upload window's values keep the source's
    /// upload time as their observation (a replayed or late notice never replaces a later
    /// upload) and say nothing of the days they do not name.
    pub async fn sync_fetch(
        &self,
        connection: &Connection,
        tz: &TimeZone,
        fetch: Fetch<'_>,
    ) -> Result<SyncOutcome, SyncError> {
        let Some(provider) = self.providers.source(connection.provider) else {
            return Ok(SyncOutcome::Skipped(connection.status));
        };
        if connection.status != ConnectionStatus::Active {
            return Ok(SyncOutcome::Skipped(connection.status));
        }
        let fetch = match fetch {
            Fetch::Days { start, end } => {
                let start = connection.counts_from.map_or(start, |first| start.max(first));
                if start > end {
                    return Ok(SyncOutcome::Synced(ApplyReport::default()));
                }
                Fetch::Days { start, end }
            }
            uploaded => uploaded,
        };
        let oauth = self.providers.oauth(connection.provider);
        let now = self.clock.now();
        let (mut connection, mut tokens) = match self.usable_tokens(connection, oauth, false).await? {
            Tokens::Ready(c, t) => (*c, t),
            Tokens::Stop(outcome) => return Ok(outcome),
        };
        let mut fetched = fetch.from(provider, &connection, tokens.as_ref()).await;
        if matches!(fetched, Err(ProviderError::Unauthorized)) && tokens.is_some() {
            (connection, tokens) = match self.usable_tokens(&connection, oauth, true).await? {
                Tokens::Ready(c, t) => (*c, t),
                Tokens::Stop(outcome) => return Ok(outcome),
            };
            fetched = fetch.from(provider, &connection, tokens.as_ref()).await;
        }
        match fetched {
            Ok(mut values) => {
                let pulled = match fetch {
                    Fetch::Days { start, end } => {
                        // A pulled value was observed when the fetch started: an older fetch
                        // that commits later never replaces what a newer one stored.
                        values.iter_mut().for_each(|v| v.observed_at = Some(now));
                        (!connection.provider.is_read_by_upload()).then_some((start, end, now))
                    }
                    Fetch::Uploaded(_) => {
                        // Days that fed the account's previous holder stay theirs.
                        values.retain(|v| connection.counts_from.is_none_or(|first| v.date >= first));
                        None
                    }
                };
                let (user, source) = (&connection.user, connection.provider);
                let report = match self.apply_window(user, source, tz, &values, pulled).await {
                    Ok(report) => report,
                    // Turned off while this sync ran: the person's choice wins; nothing more
                    // is written (days already written stay, as for any disconnect).
                    Err(SyncError::Store(StoreError::Disconnected)) => {
                        return Ok(SyncOutcome::Skipped(ConnectionStatus::Disconnected));
                    }
                    Err(e) => return Err(e),
                };
                // A healthy connection in its slot writes nothing: the sweep's cursor tells its
                // last success, its days tell its newest data (`services::status`). Only a
                // change of state is written: the first success, one after an error or a
                // backoff, or a slot that moved with the schedule.
                let slot = self.schedule.slot(&connection.user, connection.provider);
                let settled = connection.next_sync_at.is_none()
                    && connection.last_error.is_none()
                    && connection.last_success_at.is_some()
                    && connection.slot == slot;
                if !settled {
                    let record = SyncRecord {
                        attempted_at: Some(now),
                        succeeded_at: Some(now),
                        last_data_date: connection.newer_data_date(values.iter().map(|v| (v.date, v.steps))),
                        last_new_data_at: (!report.changed.is_empty()).then_some(now),
                        last_error: Some(None),
                        slot,
                        ..SyncRecord::default()
                    };
                    self.record(&connection, &record).await?;
                }
                // The source just answered with these tokens: the moment to ask, now and
                // then, whether it still notifies us of this person (Withings).
                self.keep_person_subscription(&connection, tokens.as_ref(), now).await;
                Ok(SyncOutcome::Synced(report))
            }
            Err(error) => self.record_failure(&connection, error, now).await,
        }
    }

    async fn record_failure(
        &self,
        connection: &Connection,
        error: ProviderError,
        now: Timestamp,
    ) -> Result<SyncOutcome, SyncError> {
        let (code, action) = failure_code(&error, connection.provider);
        let status = match error {
            ProviderError::ReconnectRequired { .. }
            | ProviderError::InvalidGrant
            | ProviderError::Retired
            | ProviderError::MissingScope { .. } => ConnectionStatus::ReconnectRequired,
            _ => connection.status,
        };
        let retry_after = match &error {
            ProviderError::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        tracing::warn!(user = %connection.user, provider = %connection.provider, code = code.as_str(), %error, "sync failed");
        if let ProviderError::AppRefused { reason } = &error {
            // `ProviderAppRefusedAlarm` (template.yaml) counts these lines: an operator must act.
            tracing::error!(alarm = "provider_app_refused", provider = %connection.provider, reason, "provider refuses our app");
        }
        // Back off: what the provider asked for, else a few minutes; nothing hammers it.
        let wait = retry_after.unwrap_or_else(|| jittered(FAILURE_BACKOFF));
        let last_error =
            self.record_outcome(connection, LastError { code, message: action }, status, wait, now).await?;
        Ok(SyncOutcome::Failed { error: last_error, status, retry_after })
    }

    /// Records a sync that ended in an error of ours, not the provider's, so that it never
    /// stays due: stored tokens no key opens put the connection on `reconnect_required` (an
    /// operator alarm: a lost or rotated token key); anything else (the store throttling, too
    /// many concurrent changes) is retried after a backoff. A sweep that meets many of them
    /// thus moves on to the rest of its shard.
    pub async fn record_error(&self, connection: &Connection, error: &SyncError) -> Result<(), SyncError> {
        let now = self.clock.now();
        let status = match error {
            SyncError::Tokens => {
                // `TokensUnreadableAlarm` (template.yaml) counts these lines.
                tracing::error!(alarm = "tokens_unreadable", user = %connection.user, provider = %connection.provider, "stored tokens unreadable");
                ConnectionStatus::ReconnectRequired
            }
            other => {
                tracing::warn!(user = %connection.user, provider = %connection.provider, error = %other, "sync failed on our side");
                connection.status
            }
        };
        let wait = jittered(FAILURE_BACKOFF);
        let last_error = error_outcome(connection.provider, error);
        self.record_outcome(connection, last_error, status, wait, now).await.map(|_| ())
    }

    /// Stores a failed sync's outcome (and the status it leads to, announced when it moved);
    /// an active connection is due again after `wait`.
    async fn record_outcome(
        &self,
        connection: &Connection,
        last_error: LastError,
        status: ConnectionStatus,
        wait: Duration,
        now: Timestamp,
    ) -> Result<LastError, SyncError> {
        let record = SyncRecord {
            attempted_at: Some(now),
            last_error: Some(Some(last_error.clone())),
            status: (status != connection.status).then_some(status),
            next_sync_at: (status == ConnectionStatus::Active).then(|| now.checked_add(wait).ok()).flatten(),
            ..SyncRecord::default()
        };
        // A status change is announced only when it was stored (not for a superseded sync).
        if self.record(connection, &record).await? && status != connection.status {
            self.publish(&[Event::ConnectionStatusChanged(ConnectionStatusChanged {
                user: connection.user.clone(),
                provider: connection.provider,
                old_status: connection.status,
                new_status: status,
                reason: last_error.code.as_str().to_owned(),
                action: last_error.message.clone(),
            })])
            .await;
        }
        Ok(last_error)
    }

    /// A connection disconnected meanwhile refuses the record; that is the person's choice
    /// winning over a late sync, not an error. So does one reconnected (newer tokens) since the
    /// sync began: its outcome is not this sync's to write.
    /// Returns whether the record was stored.
    async fn record(&self, connection: &Connection, record: &SyncRecord) -> Result<bool, SyncError> {
        let record = SyncRecord { token_version: Some(connection.token_version), ..record.clone() };
        match self.connections.record_sync(&connection.user, connection.provider, &record).await {
            Ok(()) => Ok(true),
            Err(StoreError::Disconnected) | Err(StoreError::NotFound(_)) => Ok(false),
            Err(StoreError::Conflict) => {
                tracing::info!(user = %connection.user, provider = %connection.provider, "outcome of a superseded sync dropped");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What a person is told about a sync that ended in an error of ours.
pub fn error_outcome(provider: Provider, error: &SyncError) -> LastError {
    match error {
        SyncError::Tokens => LastError {
            code: FailureCode::TokensUnreadable,
            message: format!("Reconnect {}: we could not use the access you gave us.", provider.display_name()),
        },
        _ => LastError {
            code: FailureCode::SyncFailed,
            message: "This sync did not finish; we will try again shortly.".to_owned(),
        },
    }
}

/// A stable code and the sentence that tells the person what to do.
fn failure_code(error: &ProviderError, provider: Provider) -> (FailureCode, String) {
    let name = provider.display_name();
    match error {
        ProviderError::Retired if provider == Provider::Fitbit => (
            FailureCode::LegacyRetired,
            "Reconnect Fitbit through Google: the old Fitbit connection no longer works.".to_owned(),
        ),
        ProviderError::Retired => (
            FailureCode::ProviderRetired,
            format!("{name} no longer answers. Reconnect or choose another step source."),
        ),
        ProviderError::ReconnectRequired { .. } | ProviderError::InvalidGrant => {
            (FailureCode::ReconnectRequired, format!("Reconnect {name}: its permission was revoked or expired."))
        }
        ProviderError::MissingScope { .. } => {
            (FailureCode::MissingPermission, format!("Reconnect {name} and allow access to activity data."))
        }
        ProviderError::RateLimited { .. } => {
            (FailureCode::RateLimited, format!("{name} asked us to slow down; we will try again shortly."))
        }
        ProviderError::Unavailable(_) => {
            (FailureCode::ProviderUnavailable, format!("{name} is not answering right now; we will try again."))
        }
        ProviderError::Unauthorized => {
            (FailureCode::TokenRefused, format!("{name} refused our access; we will refresh it and try again."))
        }
        ProviderError::BadRequest(_) => {
            (FailureCode::ProviderRefused, format!("{name} refused the request; we will try again later."))
        }
        ProviderError::AppRefused { .. } => (
            FailureCode::AppRefused,
            format!("{name} is refusing StepSync itself, not your account; we are fixing it. Nothing to do."),
        ),
    }
}

/// Short randomised sleep after a lost race, growing with the round, capped at ~64 ms.
async fn backoff(round: u32) {
    use rand::Rng;
    let cap_ms = 1u64 << round.min(6);
    let ms = rand::rng().random_range(0..=cap_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AesGcmTokenCipher;
    use crate::domain::{Challenge, ChallengeId};
    use crate::ports::{ChallengeStore, ConnectionStore};
    use crate::services::Challenges;
    use crate::testing::{FixedClock, InMemoryStore, RecordingPublisher, ScriptedProvider};

    struct World {
        store: Arc<InMemoryStore>,
        publisher: Arc<RecordingPublisher>,
        engine: SyncEngine,
    }

    fn world() -> World {
        world_with(Providers::default())
    }

    fn world_with(providers: Providers) -> World {
        let store = Arc::new(InMemoryStore::default());
        let publisher = Arc::new(RecordingPublisher::default());
        let engine = SyncEngine {
            steps: store.clone(),
            connections: store.clone(),
            publisher: publisher.clone(),
            cipher: Arc::new(AesGcmTokenCipher::new(&[1; 32])),
            clock: Arc::new(FixedClock::at("2026-11-25T18:00:00Z")),
            limits: StepLimits::default(),
            schedule: Schedule::default(),
            providers,
        };
        World { store, publisher, engine }
    }

    fn d(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    fn v(date: &str, steps: i64) -> DailyValue {
        DailyValue { date: d(date), steps, observed_at: None }
    }

    fn alice() -> UserId {
        UserId::parse("alice").unwrap()
    }

    async fn joined(w: &World, id: &str, start: &str, end: &str) -> ChallengeId {
        let id = ChallengeId::parse(id).unwrap();
        let c = Challenge::new(id.clone(), "walk", d(start), d(end), "UTC", 0).unwrap();
        w.store.create_challenge(&c).await.unwrap();
        let challenges = Challenges { steps: w.store.as_ref(), store: w.store.as_ref() };
        challenges.join(&id, &alice(), w.engine.clock.now()).await.unwrap();
        id
    }

    async fn total(w: &World, id: &ChallengeId) -> u64 {
        w.store.participant(id, &alice()).await.unwrap().unwrap().totals().total
    }

    #[tokio::test]
    async fn invalid_values_are_reported_and_the_previous_value_stays() {
        let w = world();
        w.engine.apply(&alice(), Provider::Misfit, &TimeZone::UTC, &[v("2026-11-24", 5000)]).await.unwrap();
        let report = w
            .engine
            .apply(
                &alice(),
                Provider::Misfit,
                &TimeZone::UTC,
                &[v("2026-11-24", -3), v("2026-11-24", 250_000), v("2026-11-28", 10)],
            )
            .await
            .unwrap();
        let codes: Vec<_> = report.rejected.iter().map(|r| r.error.code()).collect();
        assert_eq!(codes, ["negative", "above_cap", "future_date"]);
        assert_eq!(w.store.day(&alice(), d("2026-11-24")).unwrap().total.get(), 5000);
    }

    #[tokio::test]
    async fn the_last_of_a_batch_wins_and_unchanged_days_cost_no_write() {
        let w = world();
        let c = joined(&w, "c", "2026-11-01", "2026-11-30").await;
        let writes_before = w.store.writes();
        let report = w
            .engine
            .apply(&alice(), Provider::AppleHealth, &TimeZone::UTC, &[v("2026-11-23", 100), v("2026-11-23", 300)])
            .await
            .unwrap();
        assert_eq!(report.changed, [DayChange { date: d("2026-11-23"), old_total: 0, new_total: 300 }]);
        assert_eq!(w.store.writes() - writes_before, 2, "the day, and its count into the one challenge");
        assert_eq!(total(&w, &c).await, 300);
        let again =
            w.engine.apply(&alice(), Provider::AppleHealth, &TimeZone::UTC, &[v("2026-11-23", 300)]).await.unwrap();
        assert_eq!(again.unchanged, 1);
        assert_eq!(w.store.writes() - writes_before, 2, "no write for an unchanged day");
    }

    #[tokio::test]
    async fn two_sources_resolve_to_the_maximum_and_each_commit_is_one_change() {
        let w = world();
        let c = joined(&w, "c", "2026-11-01", "2026-11-30").await;
        w.engine.apply(&alice(), Provider::AppleHealth, &TimeZone::UTC, &[v("2026-11-24", 8000)]).await.unwrap();
        w.engine.apply(&alice(), Provider::GoogleHealth, &TimeZone::UTC, &[v("2026-11-24", 7600)]).await.unwrap();
        assert_eq!(total(&w, &c).await, 8000, "never 15600");
        assert!(w.publisher.events().is_empty(), "day events come from the change stream, not the write");
        let changes = w.store.take_day_changes();
        let updates: Vec<_> = changes
            .iter()
            .filter_map(crate::services::day_events::steps_updated)
            .map(|s| (s.old_total, s.new_total, s.version, s.source))
            .collect();
        assert_eq!(
            updates,
            [(0, 8000, 1, Provider::AppleHealth), (8000, 8000, 2, Provider::GoogleHealth)],
            "every committed change, with the day's version and the source it moved"
        );
    }

    #[tokio::test]
    async fn the_primary_source_decides_the_total() {
        let w = world();
        w.store.set_primary_source(&alice(), Some(Provider::GoogleHealth), 0).await.unwrap();
        w.engine.apply(&alice(), Provider::AppleHealth, &TimeZone::UTC, &[v("2026-11-24", 8000)]).await.unwrap();
        w.engine.apply(&alice(), Provider::GoogleHealth, &TimeZone::UTC, &[v("2026-11-24", 7600)]).await.unwrap();
        assert_eq!(w.store.day(&alice(), d("2026-11-24")).unwrap().total.get(), 7600);
    }

    #[tokio::test]
    async fn a_rate_limit_is_recorded_without_changing_the_status() {
        let source = Arc::new(ScriptedProvider::new(
            Provider::GoogleHealth,
            Err(ProviderError::RateLimited { retry_after: Some(Duration::from_secs(30)) }),
        ));
        let w = world_with(Providers::default().with_source(source.clone()));
        let mut connection = Connection::new(alice(), Provider::GoogleHealth, w.engine.clock.now());
        w.store.create_connection(&connection).await.unwrap();
        let outcome =
            w.engine.sync_connection(&connection, &TimeZone::UTC, d("2026-11-19"), d("2026-11-25")).await.unwrap();
        let SyncOutcome::Failed { status, retry_after, error } = outcome else { panic!("{outcome:?}") };
        assert_eq!((status, retry_after), (ConnectionStatus::Active, Some(Duration::from_secs(30))));
        assert_eq!(error.code, FailureCode::RateLimited);
        assert!(w.publisher.events().is_empty(), "no status change, no event");

        connection = w.store.get_connection(&alice(), Provider::GoogleHealth).await.unwrap().unwrap();
        *source.answer.lock().unwrap() = Ok(vec![v("2026-11-24", 4200)]);
        let outcome =
            w.engine.sync_connection(&connection, &TimeZone::UTC, d("2026-11-19"), d("2026-11-25")).await.unwrap();
        assert!(matches!(outcome, SyncOutcome::Synced(ref r) if r.changed.len() == 1));
        let stored = w.store.get_connection(&alice(), Provider::GoogleHealth).await.unwrap().unwrap();
        assert_eq!(stored.last_error, None, "a success clears the last error");
        assert_eq!(stored.last_data_date, Some(d("2026-11-24")));
    }
}
