//! Test harness: an isolated table per test on the embedded DynamoDB (dynoxide, its own
//! in-memory database and port per test) or on the shared moto server, with a request counter
//! on the client and the sync engine wired to the real adapter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use stepsync::aws::{DynamoStore, RequestCounter, local_sdk_config};
use stepsync::challenges::Challenges;
use stepsync::crypto::AesGcmTokenCipher;
use stepsync::domain::{Challenge, ChallengeId, LocalDate, StepLimits};
use stepsync::ports::ChallengeStore;
use stepsync::sync::SyncEngine;
use stepsync::testing::{FixedClock, RecordingPublisher};
use stepsync_local::dynoxide::EmbeddedDynamo;
use stepsync_local::moto::MotoServer;
use stepsync_local::table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Dynoxide,
    Moto,
}

pub struct TestEnv {
    pub backend: Backend,
    pub endpoint: String,
    pub table: String,
    pub store: Arc<DynamoStore>,
    pub counter: RequestCounter,
    pub clock: Arc<FixedClock>,
    pub publisher: Arc<RecordingPublisher>,
    pub engine: SyncEngine,
    _embedded: Option<EmbeddedDynamo>,
}

/// Unique names within one process (moto is shared by a test binary's tests).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// "Now" for the tests: mid-challenge for the challenges `TestEnv::challenge` makes.
pub const NOW: &str = "2026-11-25T18:00:00Z";

impl TestEnv {
    pub async fn new(backend: Backend) -> Self {
        let (endpoint, embedded) = match backend {
            Backend::Dynoxide => {
                let db = EmbeddedDynamo::in_memory().await.expect("embedded DynamoDB starts");
                (db.endpoint().to_owned(), Some(db))
            }
            Backend::Moto => {
                (MotoServer::shared().expect("moto starts (make test installs it)").endpoint().to_owned(), None)
            }
        };
        let counter = RequestCounter::default();
        let sdk = local_sdk_config(&endpoint);
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(counter.clone()).build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let table = unique("steps");
        table::create_table(&client, &table, &table::table_definition(table::TEMPLATE).unwrap())
            .await
            .expect("table from template.yaml");
        counter.reset();
        let store = Arc::new(DynamoStore::new(client, table.clone()));
        let clock = Arc::new(FixedClock::at(NOW));
        let publisher = Arc::new(RecordingPublisher::default());
        let engine = SyncEngine {
            steps: store.clone(),
            connections: store.clone(),
            publisher: publisher.clone(),
            cipher: Arc::new(AesGcmTokenCipher::new(&[42u8; 32])),
            clock: clock.clone(),
            limits: StepLimits::default(),
        };
        Self { backend, endpoint, table, store, counter, clock, publisher, engine, _embedded: embedded }
    }

    pub fn challenges(&self) -> Challenges<'_> {
        Challenges { steps: self.store.as_ref(), store: self.store.as_ref() }
    }

    /// Creates a challenge over `start..=end` (UTC, a week of grace, so none of the test
    /// dates' challenges is final at `NOW`) and returns its id.
    pub async fn challenge(&self, start: &str, end: &str) -> ChallengeId {
        self.challenge_with(start, end, 7).await
    }

    pub async fn challenge_with(&self, start: &str, end: &str, grace_days: u32) -> ChallengeId {
        let id = ChallengeId::parse(&unique("chal")).unwrap();
        let c = Challenge::new(id.clone(), "Test walk", date(start), date(end), "UTC", grace_days).unwrap();
        self.store.create_challenge(&c).await.unwrap();
        id
    }

    pub fn now(&self) -> jiff::Timestamp {
        use stepsync::clock::Clock;
        self.clock.now()
    }
}

pub fn date(raw: &str) -> LocalDate {
    LocalDate::parse(raw).unwrap()
}

/// Runs each named `async fn(TestEnv)` against both local DynamoDB implementations.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod dynoxide {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::TestEnv::new($crate::Backend::Dynoxide).await).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::TestEnv::new($crate::Backend::Moto).await).await;
                }
            )*
        }
    };
}
