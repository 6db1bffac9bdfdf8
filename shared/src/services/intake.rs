//! Webhook intake: a provider's request verified on its raw bytes, handshakes answered, and
//! "new data" notices turned into `SyncRequested` events for the accounts' owners, one per
//! person, stamped with the notice's arrival. Fast, and no write: the sync itself runs in the
//! worker, whose fence coalesces duplicates (`services::syncing`).

use super::{Ports, ServiceError};
use crate::domain::{LocalDate, Provider, UserId};
use crate::events::{Event, SyncReason, SyncRequested};
use crate::ports::{DataNotice, Providers, UploadNotice, WebhookError, WebhookMessage};
use std::collections::BTreeMap;

/// Hard cap before any provider-specific check: nothing legitimate comes near it.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// What to answer the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeAnswer {
    /// A subscription handshake: this status and body.
    Handshake { status: u16, body: String },
    /// Notices taken: how many, and how many syncs they asked for.
    Accepted { notices: usize, syncs: usize },
}

pub struct WebhookIntake {
    pub ports: Ports,
    pub providers: Providers,
}

/// A random id for one accepted notice's sync request.
fn notice_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

impl From<WebhookError> for ServiceError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::TooLarge => ServiceError::TooLarge,
            WebhookError::Malformed(why) => ServiceError::BadRequest(format!("malformed notification: {why}")),
            WebhookError::Unavailable(_) => ServiceError::Unavailable("try again later".into()),
            WebhookError::MissingSignature
            | WebhookError::BadSignature
            | WebhookError::UnknownKey
            | WebhookError::Unauthorized
            | WebhookError::Stale => ServiceError::Unauthenticated,
        }
    }
}

impl WebhookIntake {
    /// Verifies one webhook request and acts on it.
    pub async fn receive(
        &self,
        provider: Provider,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<IntakeAnswer, ServiceError> {
        self.receive_request(provider, method, "", headers, body).await
    }

    /// As `receive`, with the request's raw query string (a GET's verification, or a secret
    /// of ours in the callback URL).
    pub async fn receive_request(
        &self,
        provider: Provider,
        method: &str,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<IntakeAnswer, ServiceError> {
        let verifier = self
            .providers
            .webhooks(provider)
            .ok_or_else(|| ServiceError::NotFound(format!("webhooks for {provider}")))?;
        if body.len() > MAX_WEBHOOK_BODY {
            return Err(ServiceError::TooLarge);
        }
        match verifier.verify_request(method, query, headers, body).await {
            Ok(WebhookMessage::Handshake { status, body }) => {
                tracing::info!(provider = %provider, status, "webhook handshake");
                Ok(IntakeAnswer::Handshake { status, body })
            }
            Ok(WebhookMessage::Notices(notices)) => {
                let count = notices.len();
                let syncs = self.request_syncs(provider, notices).await?;
                tracing::info!(provider = %provider, notices = count, syncs, "webhook accepted");
                Ok(IntakeAnswer::Accepted { notices: count, syncs })
            }
            Ok(WebhookMessage::Uploads(notices)) => {
                let count = notices.len();
                let syncs = self.request_upload_syncs(provider, notices).await?;
                tracing::info!(provider = %provider, notices = count, syncs, "webhook accepted");
                Ok(IntakeAnswer::Accepted { notices: count, syncs })
            }
            Err(error) => {
                // Never log the signature or the body: only what kind of refusal it was.
                tracing::warn!(provider = %provider, %error, "webhook refused");
                Err(error.into())
            }
        }
    }

    /// One `SyncRequested` per person over the dates their notices name, stamped with the
    /// time the notices arrived. Nothing is written here: the worker's fence
    /// (`ConnectionStore::fence_fetch`, one conditional write) drops a notice that a fetch
    /// begun after it already covers. Notices for accounts no one connected are ignored.
    async fn request_syncs(&self, provider: Provider, notices: Vec<DataNotice>) -> Result<usize, ServiceError> {
        let now = self.ports.clock.now();
        let mut wanted: BTreeMap<UserId, Vec<LocalDate>> = BTreeMap::new();
        for notice in notices {
            let Some(user) = self.ports.connections.provider_account_owner(provider, &notice.account_id).await? else {
                tracing::info!(provider = %provider, "notice for an account nobody connected: ignored");
                continue;
            };
            wanted.entry(user).or_default().extend(notice.dates);
        }
        let events: Vec<Event> = wanted
            .into_iter()
            .filter(|(_, dates)| !dates.is_empty())
            .map(|(user, dates)| {
                Event::SyncRequested(SyncRequested {
                    user,
                    provider,
                    reason: SyncReason::Webhook,
                    start: dates.iter().min().copied(),
                    end: dates.iter().max().copied(),
                    noticed_at: Some(now),
                    notice_id: Some(notice_id()),
                    upload: None,
                })
            })
            .collect();
        self.publish(events).await
    }

    /// One `SyncRequested` per upload notice of a known account, reading its window (or the
    /// default window, for a notice about the grant). No fence: each upload window is read on
    /// its own, and reading one twice (a duplicate or a replay) finds the same uploads, whose
    /// values are dated by their upload, so it changes nothing.
    async fn request_upload_syncs(
        &self,
        provider: Provider,
        notices: Vec<UploadNotice>,
    ) -> Result<usize, ServiceError> {
        let now = self.ports.clock.now();
        let mut events = Vec::new();
        for notice in notices {
            let Some(user) = self.ports.connections.provider_account_owner(provider, &notice.account_id).await? else {
                tracing::info!(provider = %provider, "notice for an account nobody connected: ignored");
                continue;
            };
            events.push(Event::SyncRequested(SyncRequested {
                noticed_at: Some(now),
                notice_id: Some(notice_id()),
                upload: notice.window,
                ..SyncRequested::whole(user, provider, SyncReason::Webhook)
            }));
        }
        self.publish(events).await
    }

    async fn publish(&self, events: Vec<Event>) -> Result<usize, ServiceError> {
        if let Err(error) = self.ports.publisher.publish(&events).await {
            // The provider retries a refused notice; nothing was claimed, so nothing swallows it.
            tracing::error!(%error, "webhook: sync requests not published");
            return Err(ServiceError::Unavailable("try again later".into()));
        }
        Ok(events.len())
    }
}
