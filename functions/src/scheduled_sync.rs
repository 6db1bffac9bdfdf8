//! `scheduled-sync`: on each scheduler tick, one `SyncShard` event per shard that has due
//! connections. Reading a shard costs one small query; shards with nothing due cost nothing
//! more, and webhook-fed connections are only due for their six-hourly reconciliation.

use crate::app::App;
use stepsync::aws::DUE_SHARDS;
use stepsync::events::{Event, SyncShard};
use stepsync::ports::ConnectionStore;

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("reading due connections failed: {0}")]
    Store(String),
    #[error("publishing shard events failed: {0}")]
    Publish(String),
}

/// Emits the tick's `SyncShard` events; returns the shards that had due work.
pub async fn tick(app: &App) -> Result<Vec<u16>, TickError> {
    let now = app.engine.clock.now();
    let mut busy = Vec::new();
    for shard in 0..DUE_SHARDS {
        let due = app.store.due_connections(shard, now, 1).await.map_err(|e| TickError::Store(e.to_string()))?;
        if !due.is_empty() {
            busy.push(shard);
        }
    }
    let events: Vec<Event> = busy.iter().map(|&shard| Event::SyncShard(SyncShard { shard, tick: now })).collect();
    app.engine.publisher.publish(&events).await.map_err(|e| TickError::Publish(e.to_string()))?;
    tracing::info!(shards = ?busy, "tick");
    Ok(busy)
}
