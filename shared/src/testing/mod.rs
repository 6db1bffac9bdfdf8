//! In-memory fakes with the same semantics as the DynamoDB adapter (every condition checked
//! under one lock), a settable clock, a recording publisher and scripted providers, for fast
//! unit tests.

mod memory;
mod providers;

pub use memory::{InMemoryStore, Refusable};
pub use providers::{
    Exchange, Gate, RecordingRevoker, SCRIPTED_ISSUER, ScriptedOAuth, ScriptedWebhooks, issued_tokens,
};

use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet, UploadWindow};
use crate::events::Event;
use crate::ports::{EventPublisher, ProviderError, PublishError, StepSource};
use async_trait::async_trait;
use jiff::Timestamp;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A known-answer fixture, `fixtures/{provider}/{name}` in the repository (written and checked
/// by `scripts/fixtures.py`; its README says what each file must give), as bytes.
///
/// # Panics
/// When the file cannot be read, naming its path.
pub fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/")).join(provider).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A clock that stays where it is put.
#[derive(Debug)]
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    pub fn at(rfc3339: &str) -> Self {
        Self(Mutex::new(rfc3339.parse().expect("a valid RFC 3339 instant")))
    }
    pub fn set(&self, now: Timestamp) {
        *self.0.lock().unwrap() = now;
    }
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().unwrap();
        *now = now.checked_add(by).expect("in range");
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// Keeps every published event, in order; told to fail, it refuses every batch it is given
/// (an empty one needs no call, so it cannot fail, as with EventBridge).
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    events: Mutex<Vec<Event>>,
    failing: AtomicBool,
}

impl RecordingPublisher {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// From now on every non-empty batch fails (`true`) or is kept again (`false`).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        if !events.is_empty() && self.failing.load(Ordering::SeqCst) {
            let total = events.len();
            return Err(PublishError::Failed { failed: total, total, reason: "the bus is down (test)".into() });
        }
        self.events.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// A provider that answers from a script: fixed values, or an error; gated, it answers only
/// once the test opens its gate.
pub struct ScriptedProvider {
    pub provider: Provider,
    pub answer: Mutex<Result<Vec<DailyValue>, ProviderError>>,
    pub calls: Mutex<u32>,
    /// The `start..=end` of every pull, in order.
    pub windows: Mutex<Vec<(LocalDate, LocalDate)>>,
    gate: Mutex<Option<Arc<Gate>>>,
    /// Answers the next pulls take first, in order, before `answer`.
    next: Mutex<std::collections::VecDeque<Result<Vec<DailyValue>, ProviderError>>>,
    /// A person's own answer, instead of `answer` (a shard where some accounts fail).
    per_user: Mutex<std::collections::HashMap<crate::domain::UserId, Result<Vec<DailyValue>, ProviderError>>>,
    /// For a source read by upload time: what each read of an upload window answers, in order
    /// (none left: nothing uploaded), and the windows read.
    uploads: Mutex<std::collections::VecDeque<Result<Vec<DailyValue>, ProviderError>>>,
    pub upload_windows: Mutex<Vec<UploadWindow>>,
}

impl ScriptedProvider {
    pub fn new(provider: Provider, answer: Result<Vec<DailyValue>, ProviderError>) -> Self {
        Self {
            provider,
            answer: Mutex::new(answer),
            calls: Mutex::new(0),
            windows: Mutex::default(),
            gate: Mutex::default(),
            next: Mutex::default(),
            per_user: Mutex::default(),
            uploads: Mutex::default(),
            upload_windows: Mutex::default(),
        }
    }

    /// The next reads of upload windows answer these, in order.
    pub fn answer_uploads(&self, answers: impl IntoIterator<Item = Result<Vec<DailyValue>, ProviderError>>) {
        self.uploads.lock().unwrap().extend(answers);
    }

    /// The next pulls answer these, in order; later ones answer `answer` again.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = Result<Vec<DailyValue>, ProviderError>>) {
        self.next.lock().unwrap().extend(answers);
    }

    /// Pulls of `user`'s connection answer `answer`.
    pub fn answer_for(&self, user: &crate::domain::UserId, answer: Result<Vec<DailyValue>, ProviderError>) {
        self.per_user.lock().unwrap().insert(user.clone(), answer);
    }

    /// Each pull reads its answer, then waits at `gate`: a test decides when a fetched
    /// answer goes on to be applied.
    pub fn gated(self, gate: Arc<Gate>) -> Self {
        Self { gate: Mutex::new(Some(gate)), ..self }
    }

    /// Later pulls no longer wait (one already waiting still does).
    pub fn ungate(&self) {
        *self.gate.lock().unwrap() = None;
    }
}

#[async_trait]
impl StepSource for ScriptedProvider {
    fn provider(&self) -> Provider {
        self.provider
    }

    async fn daily_steps(
        &self,
        connection: &Connection,
        _tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        *self.calls.lock().unwrap() += 1;
        self.windows.lock().unwrap().push((start, end));
        let scripted = self.next.lock().unwrap().pop_front();
        let own = self.per_user.lock().unwrap().get(&connection.user).cloned();
        let answer = scripted.or(own).unwrap_or_else(|| self.answer.lock().unwrap().clone());
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        answer.map(|values| values.into_iter().filter(|v| start <= v.date && v.date <= end).collect())
    }

    async fn uploaded_steps(
        &self,
        _connection: &Connection,
        _tokens: Option<&TokenSet>,
        window: &UploadWindow,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        self.upload_windows.lock().unwrap().push(window.clone());
        self.uploads.lock().unwrap().pop_front().unwrap_or(Ok(Vec::new()))
    }
}

/// The services' settings the tests and the chaos run start from (the code's defaults, a local
/// public URL): a test changes only what it is about.
pub fn settings() -> crate::services::Settings {
    use crate::services::{ConnectSettings, SyncSettings};
    crate::services::Settings {
        limits: crate::domain::StepLimits::default(),
        schedule: crate::engine::Schedule::default(),
        connect: ConnectSettings {
            public_url: "http://127.0.0.1:3000".into(),
            return_to_allowlist: vec!["http://127.0.0.1:3000/".into()],
            backfill_days: 30,
        },
        sync: SyncSettings {
            window_days: 7,
            worker_concurrency: 4,
            manual_cooldown: std::time::Duration::from_secs(60),
            manual_deadline: std::time::Duration::from_secs(8),
        },
        uploads_per_minute: 12,
        steps_updated: true,
        nudges: crate::services::NudgeSettings::default(),
    }
}
