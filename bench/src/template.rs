//! The deployment facts the cost model and the cold start take from `template.yaml`.

use crate::error::BenchError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Template {
    /// `Globals.Function.MemorySize`.
    pub memory_mb: u32,
    /// `Globals.Function.Architectures[0]`.
    pub architecture: String,
    /// `Parameters.SyncIntervalMinutes.Default`: how often the scheduler ticks.
    pub sync_interval_minutes: u32,
}

impl Template {
    pub fn read() -> Result<Self, BenchError> {
        let bad = |why: &str| BenchError::setup("template.yaml", why);
        let doc: serde_norway::Value =
            serde_norway::from_str(stepsync_local::table::TEMPLATE).map_err(|e| bad(&e.to_string()))?;
        let function = &doc["Globals"]["Function"];
        let number = |v: &serde_norway::Value, what: &str| {
            v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad(&format!("{what} is not a number")))
        };
        Ok(Self {
            memory_mb: number(&function["MemorySize"], "Globals.Function.MemorySize")?,
            architecture: function["Architectures"][0].as_str().unwrap_or("x86_64").to_owned(),
            sync_interval_minutes: number(
                &doc["Parameters"]["SyncIntervalMinutes"]["Default"],
                "Parameters.SyncIntervalMinutes.Default",
            )?,
        })
    }
}
