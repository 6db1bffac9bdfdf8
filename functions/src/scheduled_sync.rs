//! `scheduled-sync`: on each scheduler tick, one `SyncShard` event per shard that has due
//! connections (`stepsync::services::Syncing::tick`).

use crate::app::App;

#[derive(Debug, thiserror::Error)]
#[error("the tick failed: {0}")]
pub struct TickError(String);

/// Emits the tick's `SyncShard` events; returns the shards that had due work.
pub async fn tick(app: &App) -> Result<Vec<u16>, TickError> {
    app.services.syncing.tick().await.map_err(|e| TickError(e.to_string()))
}
