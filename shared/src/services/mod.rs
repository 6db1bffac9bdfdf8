//! The use cases: connecting a source, taking in provider webhooks, syncing (one connection,
//! a shard, "Sync steps"), phone uploads, the person's status and days, challenges and
//! standings, the organizer's view of a challenge (sync health, export), reminders. Each fetches through ports, calls the domain and the engine, and commits; none
//! names a concrete adapter, so every rule here is tested on the in-memory store first.

pub mod challenges;
pub mod connecting;
pub mod day_events;
pub mod erasure;
pub mod intake;
pub mod nudges;
pub mod organizer;
pub mod reconcile;
pub mod reminding;
pub mod standings;
pub mod status;
pub mod subscriptions;
pub mod syncing;
pub mod uploads;

#[cfg(test)]
mod tests;

pub use challenges::{ChallengeError, Challenges};
pub use connecting::{Callback, CallbackQuery, ConnectLink, ConnectSettings, Connecting, ConsentStart};
pub use day_events::{DayChange, DayEvents};
pub use erasure::{Erasure, ErasureReport};
pub use intake::{IntakeAnswer, WebhookIntake};
pub use nudges::{DigestOutcome, NudgeError, NudgeOutcome, NudgeSettings, Nudges, ReminderEntry, RemindersReport};
pub use organizer::{ExportPage, ExportRow, NeedsAction, Organizer, SyncHealth};
pub use reconcile::{Reconcile, ReconcileReport};
pub use reminding::{ChallengeReminders, Reminding};
pub use standings::{Leaderboard, Standing, Standings};
pub use status::{ConnectionStatusView, DayView, Status};
pub use subscriptions::{Subscriptions, SubscriptionsReport};
pub use syncing::{ManualSync, SyncSettings, Syncing, WorkerError, WorkerResult};
pub use uploads::{AppliedDay, DeviceUpload, DeviceUploads, RejectedDay, UploadReport};

use crate::clock::Clock;
use crate::domain::{ParseError, StepLimits};
use crate::engine::{Schedule, SyncEngine};
use crate::ports::{
    ChallengeStore, ConnectionStore, EphemeralStore, EventPublisher, Providers, ReminderStore, StepStore, Store,
    StoreError, TokenCipher,
};
use std::sync::Arc;
use std::time::Duration;

/// Every way a use case can fail, with what the caller may be told. The HTTP edge maps each
/// variant to one status, in one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid {field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// The request does not prove who sent it (a webhook's signature, say).
    #[error("the request is not authenticated")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A limit on what one person may hold (open challenges, say) is reached.
    #[error("{0}")]
    LimitReached(String),
    #[error("the request body is too large")]
    TooLarge,
    /// Asked again too soon: try again after `retry_after`.
    #[error("{message}")]
    TooSoon { message: String, retry_after: Duration },
    /// Something that may answer on a retry (throttling, a timeout, a lost race, the bus).
    #[error("{0}")]
    Unavailable(String),
    /// Ours, not the caller's: logged where it happened, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// Wraps an unexpected failure; the text is for the log only.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        ServiceError::Internal(error.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() { ServiceError::Unavailable(e.to_string()) } else { ServiceError::Internal(e.to_string()) }
    }
}

impl From<ParseError> for ServiceError {
    fn from(e: ParseError) -> Self {
        ServiceError::Invalid { field: e.field, message: e.message }
    }
}

/// The ports every service is built from: one store seen through each narrow port, the bus
/// and the clock.
#[derive(Clone)]
pub struct Ports {
    pub steps: Arc<dyn StepStore>,
    pub challenges: Arc<dyn ChallengeStore>,
    pub connections: Arc<dyn ConnectionStore>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub reminders: Arc<dyn ReminderStore>,
    pub publisher: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
}

impl Ports {
    /// Every store port from one store.
    pub fn over(store: Arc<dyn Store>, publisher: Arc<dyn EventPublisher>, clock: Arc<dyn Clock>) -> Self {
        Self {
            steps: store.clone(),
            challenges: store.clone(),
            connections: store.clone(),
            ephemeral: store.clone(),
            reminders: store,
            publisher,
            clock,
        }
    }

    /// Events tell the company's app; what they report is already stored, so a failure to
    /// publish (after the publisher's own retries) is logged, not returned.
    pub(crate) async fn publish_quietly(&self, events: &[crate::events::Event], what: &str) {
        crate::ports::publish_or_log(self.publisher.as_ref(), events, what).await;
    }
}

/// What the services need to know from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: StepLimits,
    pub schedule: Schedule,
    pub connect: ConnectSettings,
    pub sync: SyncSettings,
    /// Phone uploads one person may send in a minute (all their phones together).
    pub uploads_per_minute: u32,
    /// Publish `StepsUpdated` from the change stream (a company's app subscribes).
    pub steps_updated: bool,
    /// Reminders: whether a delivery target is configured, and their period.
    pub nudges: NudgeSettings,
}

/// Every use case, wired once over the same ports: what a function (or a test) serves from.
pub struct Services {
    pub ports: Ports,
    pub engine: Arc<SyncEngine>,
    pub connecting: Connecting,
    pub intake: WebhookIntake,
    pub syncing: Syncing,
    pub uploads: DeviceUploads,
    steps_updated: bool,
    nudges: NudgeSettings,
}

impl Services {
    pub fn new(ports: Ports, cipher: Arc<dyn TokenCipher>, providers: Providers, settings: Settings) -> Self {
        let engine = Arc::new(SyncEngine {
            steps: ports.steps.clone(),
            connections: ports.connections.clone(),
            publisher: ports.publisher.clone(),
            cipher: cipher.clone(),
            clock: ports.clock.clone(),
            limits: settings.limits,
            schedule: settings.schedule,
            providers: providers.clone(),
        });
        Self {
            connecting: Connecting {
                ports: ports.clone(),
                cipher,
                providers: providers.clone(),
                settings: settings.connect,
            },
            intake: WebhookIntake { ports: ports.clone(), providers },
            syncing: Syncing { ports: ports.clone(), engine: engine.clone(), settings: settings.sync },
            uploads: DeviceUploads {
                ports: ports.clone(),
                engine: engine.clone(),
                per_minute: settings.uploads_per_minute,
            },
            engine,
            ports,
            steps_updated: settings.steps_updated,
            nudges: settings.nudges,
        }
    }

    /// The change stream's handler: counts, and `StepsUpdated` where configured.
    pub fn day_events(&self) -> DayEvents {
        DayEvents {
            steps: self.ports.steps.clone(),
            challenges: self.ports.challenges.clone(),
            publisher: self.steps_updated.then(|| self.ports.publisher.clone()),
        }
    }

    /// Reminders to people who need to act, and organizer digests, to the delivery target.
    pub fn nudges(&self) -> Nudges<'_> {
        Nudges {
            connections: self.ports.connections.as_ref(),
            reminders: self.ports.reminders.as_ref(),
            publisher: self.ports.publisher.as_ref(),
            clock: self.ports.clock.as_ref(),
            settings: self.nudges,
        }
    }

    pub fn erasure(&self) -> Erasure<'_> {
        Erasure { ports: &self.ports, connecting: &self.connecting }
    }

    /// The daily run's keeper of the sources' app-level subscriptions.
    pub fn subscriptions(&self) -> Subscriptions<'_> {
        Subscriptions { connections: self.ports.connections.as_ref(), providers: &self.engine.providers }
    }

    pub fn challenges(&self) -> Challenges<'_> {
        Challenges { steps: self.ports.steps.as_ref(), store: self.ports.challenges.as_ref() }
    }

    /// The organizer's view of a challenge: sync health, who needs an action, the export.
    pub fn organizer(&self) -> Organizer<'_> {
        Organizer {
            steps: self.ports.steps.as_ref(),
            challenges: self.ports.challenges.as_ref(),
            connections: self.ports.connections.as_ref(),
        }
    }

    /// Reminding a challenge's people who need to act, and its organizers (a digest).
    pub fn reminding(&self) -> Reminding<'_> {
        Reminding { organizer: self.organizer(), nudges: self.nudges() }
    }

    pub fn standings(&self) -> Standings<'_> {
        Standings { challenges: self.ports.challenges.as_ref() }
    }

    pub fn status(&self) -> Status<'_> {
        Status {
            connections: self.ports.connections.as_ref(),
            steps: self.ports.steps.as_ref(),
            clock: self.ports.clock.as_ref(),
        }
    }
}
