//! The chaos run (`make chaos`; `tests/integration/chaos.rs` runs it smaller): the real
//! services over the in-memory store, with faults injected at random at every seam, then a
//! clean pass, then the checks that nothing was lost or counted twice.
//!
//! Injected: the store throttling a request, or timing out *after* a write committed (the
//! caller sees an error for something that happened); the provider answering 5xx, 429 or
//! timing out; the bus refusing a publish; events duplicated, reordered, and held back then
//! delivered later (EventBridge's at-least-once, out of order); Lambda retrying a failed
//! invocation; a worker stopped mid-shard by its deadline; webhooks replayed; the stream's
//! publisher failing part-way. Walking goes on meanwhile: days rise, are corrected down, and
//! are deleted at the provider.
//!
//! Checked at the end: every day equals what the provider holds; every participant total
//! equals a recomputation from the days; every connection synced after the clean pass; every
//! committed day change has its `StepsUpdated` (same user, date and version); no refresh
//! lease or coalescing claim is left held.

use async_trait::async_trait;
use futures::StreamExt;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stepsync::clock::Clock;
use stepsync::crypto::AesGcmTokenCipher;
use stepsync::domain::{
    Challenge, ChallengeId, Connection, DailyValue, EncryptedTokens, LocalDate, OAuthState, Participant, Provider,
    Snapshot, TokenSet, UserId,
};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{
    AccountClaim, ChallengeStore, ConnectionStore, DataNotice, DayCount, DayWrite, EphemeralStore, EventPublisher,
    JoinWrite, LeaveWrite, ProviderError, Providers, PublishError, ReminderClaim, ReminderStore, ReminderSubject,
    SealWrite, StepSource, StepStore, StoreError, StoredSubscriptions, SubscriptionCheck, SyncRecord, TokenCipher,
    UserDays, WebhookError, WebhookMessage, WebhookVerifier,
};
use stepsync::services::{ConnectSettings, DayEvents, Ports, Services, Settings, SyncSettings, WorkerError};
use stepsync::testing::{FixedClock, InMemoryStore, RecordingPublisher, ScriptedOAuth, issued_tokens};

/// How big a run is and how hard it is hit.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub connections: usize,
    pub rounds: usize,
    pub seed: u64,
    /// The chance of each fault at each seam (0.0 to 1.0).
    pub fault_rate: f64,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        Self { connections: 1000, rounds: 8, seed: 2026, fault_rate: 0.08 }
    }
}

/// What a run injected, and what the checks found (every list empty: nothing lost).
#[derive(Debug, Default)]
pub struct ChaosReport {
    pub connections: usize,
    pub injected: BTreeMap<&'static str, u64>,
    pub deliveries: u64,
    pub day_changes: usize,
    pub events: usize,
    pub wrong_days: Vec<String>,
    pub wrong_totals: Vec<String>,
    pub unsynced: Vec<String>,
    pub changes_without_event: Vec<String>,
    pub leases_left: usize,
    pub claims_left: Vec<String>,
}

impl ChaosReport {
    /// Everything the checks found wrong; zero means nothing was lost or counted twice.
    pub fn problems(&self) -> usize {
        self.wrong_days.len()
            + self.wrong_totals.len()
            + self.unsynced.len()
            + self.changes_without_event.len()
            + self.leases_left
            + self.claims_left.len()
    }

    pub fn summary(&self) -> String {
        let mut out = format!("chaos: {} connections, {} event deliveries\n", self.connections, self.deliveries);
        out.push_str("faults injected:\n");
        for (kind, count) in &self.injected {
            out.push_str(&format!("  {kind:<44} {count:>7}\n"));
        }
        out.push_str(&format!(
            "day changes committed: {}, StepsUpdated published: {}\n",
            self.day_changes, self.events
        ));
        let checks = [
            ("days differing from the provider", self.wrong_days.len()),
            ("participant totals differing from a recomputation", self.wrong_totals.len()),
            ("connections not synced after the clean pass", self.unsynced.len()),
            ("day changes without their event", self.changes_without_event.len()),
            ("refresh leases left held", self.leases_left),
            ("claims left held", self.claims_left.len()),
        ];
        for (what, count) in checks {
            out.push_str(&format!("{what}: {count}\n"));
        }
        let verdict = if self.problems() == 0 { "nothing lost, nothing counted twice" } else { "PROBLEMS FOUND" };
        out.push_str(&format!("result: {verdict}\n"));
        out
    }
}

/// The dice every seam rolls, and the count of what they injected.
struct Faults {
    rng: Mutex<StdRng>,
    rate: f64,
    on: AtomicBool,
    injected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Faults {
    fn new(seed: u64, rate: f64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rate,
            on: AtomicBool::new(true),
            injected: Mutex::default(),
        }
    }

    /// Whether to inject `kind` now (and count it when so).
    fn roll(&self, kind: &'static str) -> bool {
        self.roll_times(kind, 1.0)
    }

    /// As `roll`, `times` as likely: for a seam rolled once per batch rather than per item.
    fn roll_times(&self, kind: &'static str, times: f64) -> bool {
        if !self.on.load(Ordering::SeqCst) {
            return false;
        }
        let hit = self.rng.lock().unwrap().random_bool((self.rate * times).min(1.0));
        if hit {
            *self.injected.lock().unwrap().entry(kind).or_default() += 1;
        }
        hit
    }

    fn below(&self, n: usize) -> usize {
        self.rng.lock().unwrap().random_range(0..n.max(1))
    }
}

const THROTTLED: &str = "store: throttled (ThrottlingException)";
const TIMED_OUT: &str = "store: timed out after the write committed";
const COUNT_LOST: &str = "count: the writer stopped after its day write";

/// The in-memory store behind a faulty network: a request may be refused before it runs, and
/// a write may run and still answer an error.
struct ChaosStore {
    inner: Arc<InMemoryStore>,
    faults: Arc<Faults>,
}

impl ChaosStore {
    async fn read<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        if self.faults.roll(THROTTLED) {
            return Err(StoreError::Unavailable("ThrottlingException".into()));
        }
        call.await
    }

    async fn write<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let result = self.read(call).await;
        if result.is_ok() && self.faults.roll(TIMED_OUT) {
            return Err(StoreError::Unavailable("the request timed out".into()));
        }
        result
    }
}

#[async_trait]
impl StepStore for ChaosStore {
    async fn load_user_days(&self, user: &UserId, dates: &[LocalDate]) -> Result<UserDays, StoreError> {
        self.read(self.inner.load_user_days(user, dates)).await
    }
    async fn load_user_window(&self, user: &UserId, start: LocalDate, end: LocalDate) -> Result<UserDays, StoreError> {
        self.read(self.inner.load_user_window(user, start, end)).await
    }
    async fn load_people_days(
        &self,
        users: &[UserId],
        dates: &[LocalDate],
    ) -> Result<BTreeMap<UserId, UserDays>, StoreError> {
        self.read(self.inner.load_people_days(users, dates)).await
    }
    async fn commit_day(&self, write: &DayWrite) -> Result<(), StoreError> {
        self.write(self.inner.commit_day(write)).await
    }
    async fn count_day(&self, count: &DayCount) -> Result<(), StoreError> {
        // The writer dies between its day write and its counts: only the stream counts it.
        if self.faults.roll(COUNT_LOST) {
            return Err(StoreError::Unavailable("the function stopped".into()));
        }
        self.write(self.inner.count_day(count)).await
    }
    async fn commit_seal(&self, write: &SealWrite) -> Result<(), StoreError> {
        self.write(self.inner.commit_seal(write)).await
    }
    async fn set_time_zone(&self, user: &UserId, zone: &str, expected_rev: u64) -> Result<(), StoreError> {
        self.write(self.inner.set_time_zone(user, zone, expected_rev)).await
    }
    async fn erase_user(&self, user: &UserId) -> Result<usize, StoreError> {
        self.write(self.inner.erase_user(user)).await
    }
    async fn set_primary_source(
        &self,
        user: &UserId,
        primary: Option<Provider>,
        expected_rev: u64,
    ) -> Result<(), StoreError> {
        self.write(self.inner.set_primary_source(user, primary, expected_rev)).await
    }
}

#[async_trait]
impl ChallengeStore for ChaosStore {
    async fn create_challenge(&self, challenge: &Challenge) -> Result<(), StoreError> {
        self.inner.create_challenge(challenge).await
    }
    async fn get_challenge(&self, id: &ChallengeId) -> Result<Option<Challenge>, StoreError> {
        self.read(self.inner.get_challenge(id)).await
    }
    async fn list_challenges(&self, ending_from: LocalDate) -> Result<Vec<Challenge>, StoreError> {
        self.read(self.inner.list_challenges(ending_from)).await
    }
    async fn commit_join(&self, write: &JoinWrite) -> Result<(), StoreError> {
        self.write(self.inner.commit_join(write)).await
    }
    async fn commit_leave(&self, write: &LeaveWrite) -> Result<(), StoreError> {
        self.write(self.inner.commit_leave(write)).await
    }
    async fn commit_totals(&self, rebuilt: &Participant) -> Result<(), StoreError> {
        self.write(self.inner.commit_totals(rebuilt)).await
    }
    async fn participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Participant>, StoreError> {
        self.read(self.inner.participant(challenge, user)).await
    }
    async fn participants(&self, challenge: &ChallengeId) -> Result<Vec<Participant>, StoreError> {
        self.read(self.inner.participants(challenge)).await
    }
    async fn snapshot(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Snapshot>, StoreError> {
        self.read(self.inner.snapshot(challenge, user)).await
    }
    async fn erase_participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<(), StoreError> {
        self.write(self.inner.erase_participant(challenge, user)).await
    }
}

#[async_trait]
impl ConnectionStore for ChaosStore {
    async fn get_connection(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError> {
        self.read(self.inner.get_connection(user, provider)).await
    }
    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>, StoreError> {
        self.read(self.inner.list_connections(user)).await
    }
    async fn connections_of(&self, users: &[UserId]) -> Result<Vec<Connection>, StoreError> {
        self.read(self.inner.connections_of(users)).await
    }
    async fn due_connections(
        &self,
        shard: u16,
        now: Timestamp,
        after: Option<&Connection>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        self.read(self.inner.due_connections(shard, now, after, limit)).await
    }
    async fn slot_connections(
        &self,
        slot: stepsync::domain::DueSlot,
        after: Option<&(UserId, Provider)>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        self.read(self.inner.slot_connections(slot, after, limit)).await
    }
    async fn sweep_cursor(&self, shard: u16, cycle: u32) -> Result<Option<stepsync::ports::SweepCursor>, StoreError> {
        self.read(self.inner.sweep_cursor(shard, cycle)).await
    }
    async fn save_sweep_cursor(
        &self,
        shard: u16,
        cycle: u32,
        cursor: &stepsync::ports::SweepCursor,
    ) -> Result<(), StoreError> {
        self.write(self.inner.save_sweep_cursor(shard, cycle, cursor)).await
    }
    async fn fence_fetch(
        &self,
        user: &UserId,
        provider: Provider,
        fence: &stepsync::ports::FetchFence,
    ) -> Result<stepsync::ports::Fenced, StoreError> {
        self.write(self.inner.fence_fetch(user, provider, fence)).await
    }
    async fn create_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.write(self.inner.create_connection(connection)).await
    }
    async fn store_tokens(
        &self,
        user: &UserId,
        provider: Provider,
        tokens: &EncryptedTokens,
        expected_version: u64,
    ) -> Result<u64, StoreError> {
        self.write(self.inner.store_tokens(user, provider, tokens, expected_version)).await
    }
    async fn acquire_lease(
        &self,
        user: &UserId,
        provider: Provider,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.write(self.inner.acquire_lease(user, provider, holder, now, ttl)).await
    }
    async fn release_lease(&self, user: &UserId, provider: Provider, holder: &str) -> Result<(), StoreError> {
        self.write(self.inner.release_lease(user, provider, holder)).await
    }
    async fn record_sync(&self, user: &UserId, provider: Provider, record: &SyncRecord) -> Result<(), StoreError> {
        self.write(self.inner.record_sync(user, provider, record)).await
    }
    async fn claim_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
    ) -> Result<AccountClaim, StoreError> {
        self.write(self.inner.claim_provider_account(provider, account, user)).await
    }
    async fn release_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
        counted_through: LocalDate,
    ) -> Result<(), StoreError> {
        self.write(self.inner.release_provider_account(provider, account, user, counted_through)).await
    }
    async fn provider_account_owner(&self, provider: Provider, account: &str) -> Result<Option<UserId>, StoreError> {
        self.read(self.inner.provider_account_owner(provider, account)).await
    }
    async fn save_connection(&self, connection: &Connection, expected_version: Option<u64>) -> Result<(), StoreError> {
        self.write(self.inner.save_connection(connection, expected_version)).await
    }
    async fn disconnect(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError> {
        self.write(self.inner.disconnect(user, provider)).await
    }
    async fn subscriptions(&self, provider: Provider) -> Result<Option<StoredSubscriptions>, StoreError> {
        self.read(self.inner.subscriptions(provider)).await
    }
    async fn save_subscriptions(&self, provider: Provider, stored: &StoredSubscriptions) -> Result<(), StoreError> {
        self.write(self.inner.save_subscriptions(provider, stored)).await
    }
    async fn record_subscription_check(
        &self,
        user: &UserId,
        provider: Provider,
        check: &SubscriptionCheck,
    ) -> Result<(), StoreError> {
        self.write(self.inner.record_subscription_check(user, provider, check)).await
    }
}

#[async_trait]
impl EphemeralStore for ChaosStore {
    async fn put_oauth_state(&self, state: &OAuthState) -> Result<(), StoreError> {
        self.write(self.inner.put_oauth_state(state)).await
    }
    async fn take_oauth_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        self.write(self.inner.take_oauth_state(id)).await
    }
    async fn claim_once(&self, key: &str, now: Timestamp, ttl: Duration) -> Result<bool, StoreError> {
        self.write(self.inner.claim_once(key, now, ttl)).await
    }
    async fn claim_expiry(&self, key: &str) -> Result<Option<Timestamp>, StoreError> {
        self.read(self.inner.claim_expiry(key)).await
    }
    async fn release_claim(&self, key: &str) -> Result<(), StoreError> {
        self.write(self.inner.release_claim(key)).await
    }
    async fn window_count(&self, key: &str, window_end: Timestamp) -> Result<u32, StoreError> {
        self.read(self.inner.window_count(key, window_end)).await
    }
    async fn count_in_window(&self, key: &str, window_end: Timestamp) -> Result<(), StoreError> {
        self.write(self.inner.count_in_window(key, window_end)).await
    }
    async fn take_in_window(&self, key: &str, window_end: Timestamp, limit: u32) -> Result<bool, StoreError> {
        self.write(self.inner.take_in_window(key, window_end, limit)).await
    }
}

#[async_trait]
impl ReminderStore for ChaosStore {
    async fn claim_reminder(
        &self,
        subject: &ReminderSubject,
        holder: &str,
        now: Timestamp,
        period: Duration,
    ) -> Result<ReminderClaim, StoreError> {
        self.write(self.inner.claim_reminder(subject, holder, now, period)).await
    }
    async fn release_reminder(&self, subject: &ReminderSubject, holder: &str) -> Result<(), StoreError> {
        self.write(self.inner.release_reminder(subject, holder)).await
    }
}

/// What each person's Google account holds: the truth the end checks against.
type Truth = HashMap<UserId, BTreeMap<LocalDate, i64>>;

/// Google Health with an unreliable network: answers the truth for the window, or fails.
struct ChaosGoogle {
    truth: Arc<Mutex<Truth>>,
    faults: Arc<Faults>,
}

#[async_trait]
impl StepSource for ChaosGoogle {
    fn provider(&self) -> Provider {
        Provider::GoogleHealth
    }

    async fn daily_steps(
        &self,
        connection: &Connection,
        _tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        if self.faults.roll("provider: 5xx") {
            return Err(ProviderError::Unavailable("503 Service Unavailable".into()));
        }
        if self.faults.roll("provider: 429") {
            return Err(ProviderError::RateLimited { retry_after: Some(Duration::from_secs(60)) });
        }
        if self.faults.roll("provider: timeout") {
            return Err(ProviderError::Unavailable("timed out".into()));
        }
        let truth = self.truth.lock().unwrap();
        let days = truth.get(&connection.user).cloned().unwrap_or_default();
        Ok(days
            .range(start..=end)
            .map(|(date, steps)| DailyValue { date: *date, steps: *steps, observed_at: None })
            .collect())
    }
}

/// Notices as the verifier hands them over: the body is `account|date,date`.
struct PlainNotices;

#[async_trait]
impl WebhookVerifier for PlainNotices {
    async fn verify(&self, _: &str, _: &[(String, String)], body: &[u8]) -> Result<WebhookMessage, WebhookError> {
        let text = std::str::from_utf8(body).map_err(|_| WebhookError::Malformed("utf-8".into()))?;
        let (account, dates) = text.split_once('|').ok_or_else(|| WebhookError::Malformed("shape".into()))?;
        let dates = dates.split(',').filter_map(|d| LocalDate::parse(d).ok()).collect();
        Ok(WebhookMessage::Notices(vec![DataNotice { account_id: account.to_owned(), dates, deleted: false }]))
    }
}

/// EventBridge as the worker sees it: at least once, in any order, sometimes late.
struct ChaosBus {
    queue: Mutex<VecDeque<Event>>,
    faults: Arc<Faults>,
}

#[async_trait]
impl EventPublisher for ChaosBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        if !events.is_empty() && self.faults.roll("bus: publish refused") {
            return Err(PublishError::Failed { failed: events.len(), total: events.len(), reason: "chaos".into() });
        }
        let mut queue = self.queue.lock().unwrap();
        for event in events {
            if matches!(event, Event::SyncRequested(_) | Event::SyncShard(_)) {
                queue.push_back(event.clone());
            }
        }
        Ok(())
    }
}

impl ChaosBus {
    /// The events to deliver now: some twice, in shuffled order, some held back for later.
    fn deliveries(&self) -> Vec<Event> {
        let pending: Vec<Event> = self.queue.lock().unwrap().drain(..).collect();
        let mut now = Vec::new();
        let mut later = Vec::new();
        for event in pending {
            if self.faults.roll("events: held back, delivered later") {
                later.push(event);
                continue;
            }
            if self.faults.roll("events: duplicated") {
                now.push(event.clone());
            }
            now.push(event);
        }
        if now.len() > 1 && self.faults.roll_times("events: reordered", 5.0) {
            let n = now.len();
            for i in (1..n).rev() {
                now.swap(i, self.faults.below(i + 1));
            }
        }
        self.queue.lock().unwrap().extend(later);
        now
    }

    fn is_empty(&self) -> bool {
        self.queue.lock().unwrap().is_empty()
    }
}

/// The run's world: the services over the chaos seams, and the truth.
struct World {
    store: Arc<InMemoryStore>,
    /// The same store behind the faulty network the functions see.
    faulty: Arc<ChaosStore>,
    faults: Arc<Faults>,
    clock: Arc<FixedClock>,
    bus: Arc<ChaosBus>,
    services: Services,
    truth: Arc<Mutex<Truth>>,
    announced: Arc<RecordingPublisher>,
    changes: Vec<stepsync::ports::DayChange>,
    people: Vec<UserId>,
    challenges: Vec<ChallengeId>,
    deliveries: u64,
}

fn date(raw: &str) -> LocalDate {
    LocalDate::parse(raw).expect("a valid date")
}

impl World {
    async fn new(options: &ChaosOptions) -> Self {
        let inner = Arc::new(InMemoryStore::default());
        let faults = Arc::new(Faults::new(options.seed, options.fault_rate));
        let store = Arc::new(ChaosStore { inner: inner.clone(), faults: faults.clone() });
        let clock = Arc::new(FixedClock::at("2026-11-25T08:00:00Z"));
        let bus = Arc::new(ChaosBus { queue: Mutex::default(), faults: faults.clone() });
        let truth: Arc<Mutex<Truth>> = Arc::default();
        let google = Arc::new(ChaosGoogle { truth: truth.clone(), faults: faults.clone() });
        let providers = Providers::default()
            .with_source(google)
            .with_oauth(Provider::GoogleHealth, Arc::new(ScriptedOAuth::granting("activity", "unused")))
            .with_webhooks(Provider::GoogleHealth, Arc::new(PlainNotices));
        let cipher: Arc<dyn TokenCipher> = Arc::new(AesGcmTokenCipher::new(&[5; 32]));
        let defaults = stepsync::testing::settings();
        let settings = Settings {
            connect: ConnectSettings { backfill_days: 7, ..defaults.connect.clone() },
            sync: SyncSettings { worker_concurrency: 8, ..defaults.sync.clone() },
            ..defaults
        };
        let ports = Ports::over(store.clone(), bus.clone(), clock.clone());
        let services = Services::new(ports, cipher.clone(), providers, settings);
        let mut world = World {
            store: inner,
            faulty: store,
            faults,
            clock,
            bus,
            services,
            truth,
            announced: Arc::default(),
            changes: Vec::new(),
            people: Vec::new(),
            challenges: Vec::new(),
            deliveries: 0,
        };
        // Set-up is not under test: the faults start once everyone is in place.
        world.faults.on.store(false, Ordering::SeqCst);
        world.set_up(options, cipher.as_ref()).await;
        world.faults.on.store(true, Ordering::SeqCst);
        world
    }

    /// People connected to Google (tokens valid for long, a few about to expire so refreshes
    /// and their leases run too), in two overlapping challenges, with a week walked.
    async fn set_up(&mut self, options: &ChaosOptions, cipher: &dyn TokenCipher) {
        let now = self.clock.now();
        for (id, start, end) in [("november", "2026-11-01", "2026-11-30"), ("last-week", "2026-11-19", "2026-11-25")] {
            let challenge =
                Challenge::new(ChallengeId::parse(id).expect("a valid id"), id, date(start), date(end), "UTC", 3)
                    .expect("a valid challenge");
            self.store.create_challenge(&challenge).await.expect("created");
            self.challenges.push(challenge.id);
        }
        let challenges = self.services.challenges();
        for i in 0..options.connections {
            let user = UserId::parse(&format!("chaos-{i:05}")).expect("a valid user id");
            let mut tokens = issued_tokens(&format!("access-{i}"), "activity");
            if i % 10 == 0 {
                tokens.expires_at = now + jiff::SignedDuration::from_mins(1);
            }
            let connection = Connection {
                provider_user_id: Some(format!("g-{i}")),
                tokens: Some(cipher.encrypt(&user, Provider::GoogleHealth, 1, &tokens).expect("sealed")),
                token_version: 1,
                next_sync_at: Some(now),
                ..Connection::new(user.clone(), Provider::GoogleHealth, now)
            };
            self.store.create_connection(&connection).await.expect("connected");
            self.store.claim_provider_account(Provider::GoogleHealth, &format!("g-{i}"), &user).await.expect("claimed");
            for challenge in &self.challenges {
                challenges.join(challenge, &user, now).await.expect("joined");
            }
            let week: BTreeMap<LocalDate, i64> =
                (19..=25).map(|d| (date(&format!("2026-11-{d}")), 1000 + (i as i64 * 37 + d) % 9000)).collect();
            self.truth.lock().unwrap().insert(user.clone(), week);
            self.people.push(user);
        }
    }

    /// People walk on: today's count rises for many, a few correct a day down or delete it.
    fn walk(&self, today: LocalDate) -> Vec<(UserId, Vec<LocalDate>)> {
        let mut changed = Vec::new();
        let mut truth = self.truth.lock().unwrap();
        for user in &self.people {
            let days = truth.entry(user.clone()).or_default();
            match self.faults.below(10) {
                0..=4 => {
                    *days.entry(today).or_default() += 500 + self.faults.below(3000) as i64;
                    changed.push((user.clone(), vec![today]));
                }
                5 => {
                    let day = today.add_days(-(self.faults.below(5) as i32) - 1);
                    if let Some(steps) = days.get_mut(&day) {
                        *steps = (*steps / 2).max(0);
                        changed.push((user.clone(), vec![day]));
                    }
                }
                6 => {
                    let day = today.add_days(-(self.faults.below(5) as i32) - 1);
                    if days.remove(&day).is_some() {
                        changed.push((user.clone(), vec![day]));
                    }
                }
                _ => {}
            }
        }
        changed
    }

    /// Google's notices for what changed, some sent twice (a replay), each retried until
    /// accepted as Google retries refused ones.
    async fn notify(&self, changed: &[(UserId, Vec<LocalDate>)]) {
        let index: HashMap<&UserId, usize> = self.people.iter().enumerate().map(|(i, u)| (u, i)).collect();
        for (user, dates) in changed {
            let body =
                format!("g-{}|{}", index[user], dates.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
            let copies = if self.faults.roll("webhooks: replayed") { 2 } else { 1 };
            for _ in 0..copies {
                for _ in 0..20 {
                    let answer =
                        self.services.intake.receive(Provider::GoogleHealth, "POST", &[], body.as_bytes()).await;
                    if answer.is_ok() {
                        break;
                    }
                }
            }
        }
    }

    /// Delivers what the bus holds to the worker, eight at a time. A failed invocation is
    /// retried by Lambda (twice), then goes back to the bus (EventBridge's retry policy); a
    /// shard sweep may be stopped by its deadline part-way.
    async fn deliver(&mut self) {
        let events = self.bus.deliveries();
        self.deliveries += events.len() as u64;
        let syncing = &self.services.syncing;
        let faults = &self.faults;
        let failed: Vec<Event> = futures::stream::iter(events)
            .map(|event| async move {
                for _ in 0..3 {
                    let stop_at = (matches!(event, Event::SyncShard(_)) && faults.roll("worker: stopped mid-shard"))
                        .then(|| Instant::now() + Duration::from_micros(200));
                    match syncing.handle_event(event.clone(), stop_at).await {
                        Ok(_) => return None,
                        Err(WorkerError::Retryable(_)) => continue,
                        Err(other) => panic!("an event the worker refuses: {other}"),
                    }
                }
                Some(event)
            })
            .buffer_unordered(8)
            .filter_map(|e| async move { e })
            .collect()
            .await;
        self.bus.queue.lock().unwrap().extend(failed);
    }

    /// The stream's records handed to `day-events`, its batch failing part-way at times.
    async fn stream(&mut self) {
        let changes = self.store.take_day_changes();
        let events = DayEvents {
            steps: self.faulty.clone(),
            challenges: self.faulty.clone(),
            publisher: Some(self.announced.clone()),
        };
        let mut from = 0;
        while from < changes.len() {
            self.announced.fail(self.faults.roll_times("stream: bus down for StepsUpdated", 5.0));
            match events.handle(&changes[from..]).await {
                Ok(_) => from = changes.len(),
                Err(first_unpublished) => {
                    from = changes.iter().position(|c| c.id == first_unpublished).expect("a record of the batch");
                }
            }
        }
        self.announced.fail(false);
        self.changes.extend(changes);
    }

    async fn tick(&self) {
        for _ in 0..20 {
            if self.services.syncing.tick().await.is_ok() {
                return;
            }
        }
    }

    /// Runs until the bus is empty and nothing is due, with faults off.
    async fn settle(&mut self) {
        for _ in 0..50 {
            self.tick().await;
            self.deliver().await;
            self.stream().await;
            if self.bus.is_empty() && self.nothing_due().await {
                return;
            }
            self.clock.advance(Duration::from_secs(600));
        }
    }

    async fn nothing_due(&self) -> bool {
        for shard in 0..stepsync::domain::DUE_SHARDS {
            if !self.store.due_connections(shard, self.clock.now(), None, 1).await.expect("in memory").is_empty() {
                return false;
            }
        }
        true
    }
}

/// One chaos run; the report says what was injected and what, if anything, was lost.
pub async fn run(options: &ChaosOptions, progress: impl Fn(&str)) -> ChaosReport {
    let mut world = World::new(options).await;
    progress(&format!("{} people connected, two challenges", options.connections));
    let today = date("2026-11-25");
    for round in 1..=options.rounds {
        let changed = world.walk(today);
        world.notify(&changed).await;
        world.tick().await;
        world.deliver().await;
        world.stream().await;
        world.clock.advance(Duration::from_secs(20 * 60));
        progress(&format!(
            "round {round}/{}: {} people walked, {} deliveries so far",
            options.rounds,
            changed.len(),
            world.deliveries
        ));
    }
    // The clean pass: faults off, every connection due, everything delivered.
    world.faults.on.store(false, Ordering::SeqCst);
    world.clock.advance(Duration::from_secs(7 * 3600));
    let everyone: Vec<Event> = world
        .people
        .iter()
        .map(|user| {
            Event::SyncRequested(SyncRequested::whole(user.clone(), Provider::GoogleHealth, SyncReason::Schedule))
        })
        .collect();
    world.bus.queue.lock().unwrap().extend(everyone);
    world.settle().await;
    progress("clean pass done; checking");
    check(&world).await
}

async fn check(world: &World) -> ChaosReport {
    let mut report = ChaosReport {
        connections: world.people.len(),
        injected: world.faults.injected.lock().unwrap().clone(),
        deliveries: world.deliveries,
        day_changes: world.changes.len(),
        ..ChaosReport::default()
    };
    let truth = world.truth.lock().unwrap().clone();
    let challenges = world.services.challenges();
    for user in &world.people {
        let held = &truth[user];
        for day in (19..=25).map(|d| date(&format!("2026-11-{d}"))) {
            let want = held.get(&day).copied().unwrap_or(0);
            let got = world.store.day(user, day).map_or(0, |d| i64::from(d.total.get()));
            if got != want {
                report.wrong_days.push(format!("{user} {day}: {got}, the provider has {want}"));
            }
        }
        for challenge in &world.challenges {
            let stored = world.store.participant(challenge, user).await.expect("in memory").expect("joined").sources;
            let recomputed = challenges.recompute(challenge, user).await.expect("recomputed");
            if stored != recomputed {
                report.wrong_totals.push(format!("{user} in {challenge}: {stored:?} against {recomputed:?}"));
            }
        }
        let connection = world.store.get_connection(user, Provider::GoogleHealth).await.expect("in memory");
        // A healthy sync writes nothing on its connection: settled means active, no error, no
        // backoff, back in its slot, having succeeded at some point (the days above prove the
        // clean pass fetched everything).
        let synced = connection.as_ref().is_some_and(|c| {
            c.status == stepsync::domain::ConnectionStatus::Active
                && c.last_error.is_none()
                && c.next_sync_at.is_none()
                && c.last_success_at.is_some()
        });
        if !synced {
            report.unsynced.push(format!("{user}: {connection:?}"));
        }
    }
    let announced: BTreeSet<(UserId, LocalDate, u64)> = world
        .announced
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StepsUpdated(u) => Some((u.user, u.date, u.version)),
            _ => None,
        })
        .collect();
    report.events = announced.len();
    for change in &world.changes {
        let key = (change.new.user.clone(), change.new.date, change.new.version);
        if !announced.contains(&key) {
            report.changes_without_event.push(format!("{key:?}"));
        }
    }
    let now = world.clock.now();
    report.leases_left = world.store.leases_held(now);
    report.claims_left = world.store.claims_held(now);
    report
}
