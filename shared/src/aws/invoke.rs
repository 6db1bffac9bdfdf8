//! `WorkerDispatch`: a publisher that hands each `SyncRequested` straight to `sync-worker` by an
//! asynchronous Lambda invoke, and every other event to the bus.
//!
//! EventBridge delivers a rule's target by invoking it asynchronously anyway, so the direct
//! invoke is the same delivery one hop shorter: Lambda queues the event, retries it twice and
//! sends what still fails to the worker's on-failure destination (`EventInvokeConfig` in
//! `template.yaml`), as the rule's target did. It saves the PutEvents entry ($1 per million)
//! that a webhook's sync cost, the largest line of a webhook-fed bill after API Gateway's.
//! The payload is the event as EventBridge would deliver it (`detail-type` and `detail`), so
//! the worker reads both the same way, and an operator can still force a sync with a
//! `SyncRequested` on the bus (the rule stays).

use crate::events::Event;
use crate::ports::{EventPublisher, PublishError};
use async_trait::async_trait;
use std::sync::Arc;

/// The one call the dispatch needs; the SDK client implements it, a test may stand in.
#[async_trait]
pub trait InvokeApi: Send + Sync {
    /// Queues `payload` for `function` (InvocationType `Event`): `Ok` once Lambda accepted it.
    async fn invoke_async(&self, function: &str, payload: Vec<u8>) -> Result<(), String>;
}

#[async_trait]
impl InvokeApi for aws_sdk_lambda::Client {
    async fn invoke_async(&self, function: &str, payload: Vec<u8>) -> Result<(), String> {
        let out = self
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_smithy_types::Blob::new(payload))
            .send()
            .await
            .map_err(|e| format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e)))?;
        // 202 Accepted: queued. Anything else was not.
        match out.status_code() {
            202 => Ok(()),
            other => Err(format!("Invoke answered {other}")),
        }
    }
}

pub struct WorkerDispatch<A: InvokeApi = aws_sdk_lambda::Client> {
    api: A,
    /// `sync-worker`'s name or ARN (`STEPSYNC_SYNC_WORKER_FUNCTION`).
    worker: String,
    bus: Arc<dyn EventPublisher>,
}

impl<A: InvokeApi> WorkerDispatch<A> {
    pub fn new(api: A, worker: impl Into<String>, bus: Arc<dyn EventPublisher>) -> Self {
        Self { api, worker: worker.into(), bus }
    }
}

#[async_trait]
impl<A: InvokeApi> EventPublisher for WorkerDispatch<A> {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let (syncs, others): (Vec<&Event>, Vec<&Event>) =
            events.iter().partition(|e| matches!(e, Event::SyncRequested(_)));
        let invokes = syncs.iter().map(|event| async move {
            let payload = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            self.api.invoke_async(&self.worker, payload).await
        });
        let failures: Vec<String> =
            futures::future::join_all(invokes).await.into_iter().filter_map(Result::err).collect();
        let others: Vec<Event> = others.into_iter().cloned().collect();
        let bus = match others.is_empty() {
            true => Ok(()),
            false => self.bus.publish(&others).await,
        };
        match (failures.first(), bus) {
            (None, result) => result,
            (Some(reason), Ok(())) => {
                tracing::warn!(failed = failures.len(), %reason, "sync-worker invokes refused");
                Err(PublishError::Failed { failed: failures.len(), total: events.len(), reason: reason.clone() })
            }
            (Some(reason), Err(PublishError::Failed { failed, .. })) => Err(PublishError::Failed {
                failed: failed + failures.len(),
                total: events.len(),
                reason: reason.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Provider, UserId};
    use crate::events::{SyncReason, SyncRequested};
    use crate::testing::RecordingPublisher;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Invokes {
        sent: Mutex<Vec<(String, serde_json::Value)>>,
        refuse: bool,
    }

    #[async_trait]
    impl InvokeApi for Invokes {
        async fn invoke_async(&self, function: &str, payload: Vec<u8>) -> Result<(), String> {
            if self.refuse {
                return Err("TooManyRequestsException".into());
            }
            let json = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
            self.sent.lock().unwrap().push((function.to_owned(), json));
            Ok(())
        }
    }

    fn sync(user: &str) -> Event {
        Event::SyncRequested(SyncRequested {
            user: UserId::parse(user).unwrap(),
            provider: Provider::GoogleHealth,
            reason: SyncReason::Webhook,
            start: None,
            end: None,
            noticed_at: None,
            notice_id: Some(format!("notice-{user}")),
            upload: None,
        })
    }

    #[tokio::test]
    async fn sync_requests_go_to_the_worker_as_events_it_reads_and_the_rest_to_the_bus() {
        let bus = Arc::new(RecordingPublisher::default());
        let dispatch = WorkerDispatch::new(Invokes::default(), "stepsync-sync-worker", bus.clone());
        let status = Event::ConnectionStatusChanged(
            serde_json::from_value(serde_json::json!({
                "user": "alice", "provider": "google_health", "old_status": "active",
                "new_status": "reconnect_required", "reason": "reconnect_required", "action": "Reconnect."
            }))
            .unwrap(),
        );
        dispatch.publish(&[sync("alice"), status.clone(), sync("bob")]).await.unwrap();

        let sent = dispatch.api.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|(f, _)| f == "stepsync-sync-worker"));
        let read: Event = serde_json::from_value(sent[0].1.clone()).unwrap();
        assert_eq!(read, sync("alice"), "the worker reads the payload as it reads an EventBridge event");
        assert_eq!(bus.events(), [status]);
    }

    #[tokio::test]
    async fn a_refused_invoke_is_a_failed_publish() {
        let bus = Arc::new(RecordingPublisher::default());
        let dispatch = WorkerDispatch::new(Invokes { refuse: true, ..Invokes::default() }, "w", bus);
        let error = dispatch.publish(&[sync("alice")]).await.unwrap_err();
        assert!(matches!(error, PublishError::Failed { failed: 1, total: 1, .. }), "{error:?}");
    }
}
