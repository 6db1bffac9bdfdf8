//! `EventBridgePublisher`: `PutEvents` in batches of at most 10 entries, retrying exactly the
//! entries that the answer reports as failed.

use crate::events::{EVENT_SOURCE, Event};
use crate::ports::{EventPublisher, PublishError};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use std::time::Duration;

/// PutEvents takes at most this many entries per request.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// Tries per batch, counting the first.
const MAX_ATTEMPTS: u32 = 4;

/// The one call the publisher needs; the SDK client implements it, a test may wrap it.
#[async_trait]
pub trait PutEventsApi: Send + Sync {
    /// Sends `entries`; returns, per entry in order, the error code of the ones that failed.
    async fn put_events(&self, entries: Vec<PutEventsRequestEntry>) -> Result<Vec<Option<String>>, String>;
}

#[async_trait]
impl PutEventsApi for Client {
    async fn put_events(&self, entries: Vec<PutEventsRequestEntry>) -> Result<Vec<Option<String>>, String> {
        let count = entries.len();
        let out = self
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e)))?;
        let mut codes: Vec<Option<String>> = out.entries().iter().map(|e| e.error_code().map(str::to_owned)).collect();
        // The answer lists every entry in request order; anything missing counts as failed.
        codes.resize(count, Some("MissingResult".to_owned()));
        Ok(codes)
    }
}

pub struct EventBridgePublisher<A: PutEventsApi = Client> {
    api: A,
    bus: String,
}

impl<A: PutEventsApi> EventBridgePublisher<A> {
    pub fn new(api: A, bus: impl Into<String>) -> Self {
        Self { api, bus: bus.into() }
    }

    fn entry(&self, event: &Event) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(event.detail_type())
            .detail(event.detail_json())
            .build()
    }

    async fn publish_batch(&self, batch: &[Event]) -> Result<(), (usize, String)> {
        let mut pending: Vec<PutEventsRequestEntry> = batch.iter().map(|e| self.entry(e)).collect();
        let mut last_reason = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            match self.api.put_events(pending.clone()).await {
                Ok(codes) => {
                    let failed: Vec<(PutEventsRequestEntry, String)> =
                        pending.into_iter().zip(codes).filter_map(|(entry, code)| code.map(|c| (entry, c))).collect();
                    if failed.is_empty() {
                        return Ok(());
                    }
                    last_reason = failed.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>().join(", ");
                    tracing::warn!(failed = failed.len(), codes = %last_reason, attempt, "PutEvents entries failed; retrying them");
                    pending = failed.into_iter().map(|(entry, _)| entry).collect();
                }
                Err(reason) => {
                    tracing::warn!(%reason, attempt, "PutEvents failed; retrying the batch");
                    last_reason = reason;
                }
            }
        }
        Err((pending.len(), last_reason))
    }
}

#[async_trait]
impl<A: PutEventsApi> EventPublisher for EventBridgePublisher<A> {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let mut failed = 0;
        let mut reason = String::new();
        for batch in events.chunks(MAX_ENTRIES_PER_CALL) {
            if let Err((count, why)) = self.publish_batch(batch).await {
                failed += count;
                reason = why;
            }
        }
        if failed == 0 { Ok(()) } else { Err(PublishError::Failed { failed, total: events.len(), reason }) }
    }
}
