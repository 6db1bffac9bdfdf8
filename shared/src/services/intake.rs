//! Webhook intake: a provider's request verified on its raw bytes, handshakes answered, and
//! "new data" notices turned into `SyncRequested` events for the accounts' owners, coalescing
//! duplicates per person and day. Fast: the sync itself runs in the worker.

use super::{Ports, ServiceError};
use crate::domain::{LocalDate, Provider, UserId};
use crate::events::{Event, SyncReason, SyncRequested};
use crate::ports::{DataNotice, Providers, WebhookError, WebhookMessage};
use std::collections::BTreeMap;
use std::time::Duration;

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
    /// Duplicate notices for one person and day within this window cause one sync.
    pub coalesce: Duration,
}

/// The de-duplication key of one person's day at one provider. A notice claims it; the
/// worker gives it back when the sync starts, so a notice arriving after the fetch began
/// (a deletion, a late upload) asks for a sync of its own.
pub fn coalesce_key(provider: Provider, user: &UserId, date: LocalDate) -> String {
    format!("{provider}#{user}#{date}")
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
        let verifier = self
            .providers
            .webhooks(provider)
            .ok_or_else(|| ServiceError::NotFound(format!("webhooks for {provider}")))?;
        if body.len() > MAX_WEBHOOK_BODY {
            return Err(ServiceError::TooLarge);
        }
        match verifier.verify(method, headers, body).await {
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
            Err(error) => {
                // Never log the signature or the body: only what kind of refusal it was.
                tracing::warn!(provider = %provider, %error, "webhook refused");
                Err(error.into())
            }
        }
    }

    /// One `SyncRequested` per person over the dates nobody asked for within the coalescing
    /// window. Notices for accounts no one connected are ignored.
    async fn request_syncs(&self, provider: Provider, notices: Vec<DataNotice>) -> Result<usize, ServiceError> {
        let mut claims = Vec::new();
        let wanted = match self.claim_days(provider, notices, &mut claims).await {
            Ok(wanted) => wanted,
            Err(error) => {
                // The provider retries a refused notice: the claims taken so far go back, so
                // the retry is not swallowed by the coalescing.
                self.release(&claims).await;
                return Err(error);
            }
        };
        let events: Vec<Event> = wanted
            .into_iter()
            .map(|(user, dates)| {
                Event::SyncRequested(SyncRequested {
                    user,
                    provider,
                    reason: SyncReason::Webhook,
                    start: dates.iter().min().copied(),
                    end: dates.iter().max().copied(),
                })
            })
            .collect();
        if let Err(error) = self.ports.publisher.publish(&events).await {
            self.release(&claims).await;
            tracing::error!(%error, "webhook: sync requests not published");
            return Err(ServiceError::Unavailable("try again later".into()));
        }
        Ok(events.len())
    }

    /// Claims each (person, day) the notices name for the coalescing window; answers the days
    /// per person this notice won, and pushes each claim taken onto `claims`.
    async fn claim_days(
        &self,
        provider: Provider,
        notices: Vec<DataNotice>,
        claims: &mut Vec<String>,
    ) -> Result<BTreeMap<UserId, Vec<LocalDate>>, ServiceError> {
        let (connections, ephemeral) = (&self.ports.connections, &self.ports.ephemeral);
        let now = self.ports.clock.now();
        let mut wanted: BTreeMap<UserId, Vec<LocalDate>> = BTreeMap::new();
        for notice in notices {
            let Some(user) = connections.provider_account_owner(provider, &notice.account_id).await? else {
                tracing::info!(provider = %provider, "notice for an account nobody connected: ignored");
                continue;
            };
            for date in notice.dates {
                let key = coalesce_key(provider, &user, date);
                match ephemeral.claim_once(&key, now, self.coalesce).await {
                    Ok(true) => {
                        wanted.entry(user.clone()).or_default().push(date);
                        claims.push(key);
                    }
                    Ok(false) => {}
                    // A claim that timed out may have been taken all the same: give it back
                    // too, or the provider's retry would find it and ask for nothing.
                    Err(error) => {
                        claims.push(key);
                        return Err(error.into());
                    }
                }
            }
        }
        Ok(wanted)
    }

    /// Gives claims back; one that cannot be given back runs out with its window.
    async fn release(&self, claims: &[String]) {
        for key in claims {
            if let Err(error) = self.ports.ephemeral.release_claim(key).await {
                tracing::warn!(%error, "webhook: a coalescing claim could not be given back; it expires on its own");
            }
        }
    }
}
