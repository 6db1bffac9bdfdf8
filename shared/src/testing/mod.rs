//! In-memory fakes with the same semantics as the DynamoDB adapter (every condition checked
//! under one lock), a settable clock and a recording publisher, for fast unit tests.

mod memory;

pub use memory::InMemoryStore;

use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::events::Event;
use crate::ports::{EventPublisher, ProviderError, PublishError, StepSource};
use async_trait::async_trait;
use jiff::Timestamp;
use std::sync::Mutex;

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

/// Keeps every published event, in order.
#[derive(Debug, Default)]
pub struct RecordingPublisher(Mutex<Vec<Event>>);

impl RecordingPublisher {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// A provider that answers from a script: fixed values, or an error.
pub struct ScriptedProvider {
    pub provider: Provider,
    pub answer: Mutex<Result<Vec<DailyValue>, ProviderError>>,
    pub calls: Mutex<u32>,
}

impl ScriptedProvider {
    pub fn new(provider: Provider, answer: Result<Vec<DailyValue>, ProviderError>) -> Self {
        Self { provider, answer: Mutex::new(answer), calls: Mutex::new(0) }
    }
}

#[async_trait]
impl StepSource for ScriptedProvider {
    fn provider(&self) -> Provider {
        self.provider
    }

    async fn daily_steps(
        &self,
        _connection: &Connection,
        _tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        *self.calls.lock().unwrap() += 1;
        let answer = self.answer.lock().unwrap().clone();
        answer.map(|values| values.into_iter().filter(|v| start <= v.date && v.date <= end).collect())
    }
}
