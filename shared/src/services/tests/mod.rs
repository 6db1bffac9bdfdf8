//! The use cases on the in-memory store, one module per service. Each test builds a `World`:
//! the services wired as `functions`' `App::from_parts` wires them, over one `InMemoryStore`,
//! a fixed clock, a recording publisher and scripted providers.

mod challenges;
mod connecting;
mod counting;
mod day_events;
mod erasure;
mod intake;
mod nudges;
mod organizer;
mod read_by_upload;
mod reconcile;
mod standings;
mod status;
mod subscriptions;
mod syncing;
mod travel;
mod uploads;

use super::{
    Challenges, ConnectSettings, Connecting, DeviceUploads, Ports, ServiceError, Services, Settings, Standings, Status,
    Syncing, WebhookIntake,
};
use crate::clock::Clock;
use crate::crypto::AesGcmTokenCipher;
use crate::domain::{Challenge, ChallengeId, Connection, DailyValue, LocalDate, Provider, TokenSet, UserId};
use crate::engine::SyncEngine;
use crate::events::{ConnectionStatusChanged, Event, SyncRequested};
use crate::ports::{ChallengeStore, ConnectionStore, Providers, TokenCipher};
use crate::testing::{
    FixedClock, InMemoryStore, RecordingPublisher, RecordingRevoker, ScriptedOAuth, ScriptedProvider, ScriptedWebhooks,
    issued_tokens,
};
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;

/// "Now" in every world: mid-November challenges are active, none of them final.
const NOW: &str = "2026-11-25T18:00:00Z";
/// The scope the scripted Google client requires and grants.
const SCOPE: &str = "activity";
/// Where people are sent back by default (the allow-list's first entry).
const HOME: &str = "http://127.0.0.1:3000/";

/// Everything one test needs, built once, scripted through the doubles it keeps.
struct World {
    store: Arc<InMemoryStore>,
    publisher: Arc<RecordingPublisher>,
    clock: Arc<FixedClock>,
    cipher: Arc<dyn TokenCipher>,
    /// Google Health's doubles: its source, OAuth client, revoker and webhook verifier.
    google: Arc<ScriptedProvider>,
    oauth: Arc<ScriptedOAuth>,
    revoker: Arc<RecordingRevoker>,
    webhooks: Arc<ScriptedWebhooks>,
    /// Misfit: a source the server pulls, with no OAuth client and no webhooks here.
    misfit: Arc<ScriptedProvider>,
    ports: Ports,
    engine: Arc<SyncEngine>,
    connecting: Connecting,
    intake: WebhookIntake,
    syncing: Syncing,
    uploads: DeviceUploads,
}

impl World {
    /// Google answers no days and grants `SCOPE` to the account `g-alice`.
    fn new() -> Self {
        Self::with(ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![])), ScriptedOAuth::granting(SCOPE, "g-alice"))
    }

    fn with(google: ScriptedProvider, oauth: ScriptedOAuth) -> Self {
        let store = Arc::new(InMemoryStore::default());
        let publisher = Arc::new(RecordingPublisher::default());
        let clock = Arc::new(FixedClock::at(NOW));
        let cipher: Arc<dyn TokenCipher> = Arc::new(AesGcmTokenCipher::new(&[7; 32]));
        let google = Arc::new(google);
        let oauth = Arc::new(oauth);
        let revoker = Arc::new(RecordingRevoker::default());
        let webhooks = Arc::new(ScriptedWebhooks::answering(Ok(crate::ports::WebhookMessage::Notices(vec![]))));
        let misfit = Arc::new(ScriptedProvider::new(Provider::Misfit, Ok(vec![])));
        let providers = Providers::default()
            .with_source(google.clone())
            .with_source(misfit.clone())
            .with_oauth(Provider::GoogleHealth, oauth.clone())
            .with_revoker(Provider::GoogleHealth, revoker.clone())
            .with_webhooks(Provider::GoogleHealth, webhooks.clone());
        let ports = Ports::over(store.clone(), publisher.clone(), clock.clone());
        let defaults = crate::testing::settings();
        let settings = Settings {
            connect: ConnectSettings {
                return_to_allowlist: vec![HOME.into(), "stepsync://".into()],
                ..defaults.connect.clone()
            },
            ..defaults
        };
        let Services { ports, engine, connecting, intake, syncing, uploads, .. } =
            Services::new(ports, cipher.clone(), providers, settings);
        World {
            store,
            publisher,
            clock,
            cipher,
            google,
            oauth,
            revoker,
            webhooks,
            misfit,
            ports,
            engine,
            connecting,
            intake,
            syncing,
            uploads,
        }
    }

    fn challenges(&self) -> Challenges<'_> {
        Challenges { steps: self.ports.steps.as_ref(), store: self.ports.challenges.as_ref() }
    }

    fn erasure(&self) -> crate::services::Erasure<'_> {
        crate::services::Erasure { ports: &self.ports, connecting: &self.connecting }
    }

    fn standings(&self) -> Standings<'_> {
        Standings { challenges: self.ports.challenges.as_ref() }
    }

    fn status(&self) -> Status<'_> {
        Status {
            connections: self.ports.connections.as_ref(),
            steps: self.ports.steps.as_ref(),
            clock: self.ports.clock.as_ref(),
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Given: `user` connected `provider` as `account`, with tokens valid for long, due now.
    async fn connected(&self, user: &UserId, provider: Provider, account: &str) -> Connection {
        self.connected_with(user, provider, account, issued_tokens(&format!("access-{user}"), SCOPE)).await
    }

    async fn connected_with(&self, user: &UserId, provider: Provider, account: &str, tokens: TokenSet) -> Connection {
        let connection = Connection {
            provider_user_id: Some(account.to_owned()),
            tokens: Some(self.cipher.encrypt(user, provider, 1, &tokens).unwrap()),
            token_version: 1,
            next_sync_at: Some(self.now()),
            ..Connection::new(user.clone(), provider, self.now())
        };
        self.store.create_connection(&connection).await.unwrap();
        self.store.claim_provider_account(provider, account, user).await.unwrap();
        connection
    }

    async fn connection(&self, user: &UserId, provider: Provider) -> Option<Connection> {
        self.store.get_connection(user, provider).await.unwrap()
    }

    async fn owner(&self, provider: Provider, account: &str) -> Option<UserId> {
        self.store.provider_account_owner(provider, account).await.unwrap()
    }

    /// Given: a challenge over `start..=end` in UTC with a week of grace.
    async fn challenge(&self, id: &str, start: &str, end: &str) -> ChallengeId {
        self.challenge_with_grace(id, start, end, 7).await
    }

    async fn challenge_with_grace(&self, id: &str, start: &str, end: &str, grace_days: u32) -> ChallengeId {
        let id = ChallengeId::parse(id).unwrap();
        let challenge = Challenge::new(id.clone(), "Winter walk", date(start), date(end), "UTC", grace_days).unwrap();
        self.store.create_challenge(&challenge).await.unwrap();
        id
    }

    async fn join(&self, id: &ChallengeId, user: &UserId) {
        self.challenges().join(id, user, self.now()).await.unwrap();
    }

    /// Given: `user`'s phone reported these days (through the engine, as an upload would).
    async fn walked(&self, user: &UserId, source: Provider, days: &[DailyValue]) {
        self.engine.apply(user, source, &jiff::tz::TimeZone::UTC, days).await.unwrap();
    }

    async fn total(&self, id: &ChallengeId, user: &UserId) -> (u64, u32) {
        let totals = self.store.participant(id, user).await.unwrap().unwrap().totals();
        (totals.total, totals.days)
    }

    /// The change stream's handler over this world's store, publishing on its publisher.
    fn stream_handler(&self) -> super::DayEvents {
        super::DayEvents {
            steps: self.store.clone(),
            challenges: self.store.clone(),
            publisher: Some(self.publisher.clone()),
        }
    }

    /// Runs the change stream's handler over what the store committed since the last call
    /// (as `DayEventsFunction` does deployed); returns the `StepsUpdated` it published.
    async fn day_events(&self) -> Vec<crate::events::StepsUpdated> {
        let changes = self.store.take_day_changes();
        self.stream_handler().handle(&changes).await.unwrap();
        changes.iter().filter_map(super::day_events::steps_updated).collect()
    }

    fn sync_requests(&self) -> Vec<SyncRequested> {
        let events = self.publisher.events().into_iter();
        events.filter_map(|e| if let Event::SyncRequested(r) = e { Some(r) } else { None }).collect()
    }

    fn status_changes(&self) -> Vec<ConnectionStatusChanged> {
        let events = self.publisher.events().into_iter();
        events.filter_map(|e| if let Event::ConnectionStatusChanged(c) = e { Some(c) } else { None }).collect()
    }
}

/// An Apple Health upload from the installation "iphone", the phone set to `zone`.
fn from_phone_in(zone: &str, values: Vec<DailyValue>) -> crate::services::DeviceUpload {
    crate::services::DeviceUpload {
        platform: Provider::AppleHealth,
        install_id: "iphone".into(),
        observed_at: None,
        zone: zone.into(),
        tz: jiff::tz::TimeZone::get(zone).unwrap(),
        values,
        rejected: vec![],
    }
}

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn date(raw: &str) -> LocalDate {
    LocalDate::parse(raw).unwrap()
}

fn steps(day: &str, steps: i64) -> DailyValue {
    DailyValue { date: date(day), steps, observed_at: None }
}

/// The refusal as the HTTP edge receives it, variant and text, for an exact comparison.
fn refused<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> String {
    format!("{:?}", result.expect_err("the use case refuses"))
}
