//! The deployment facts the cost model and the cold start take from `template.yaml` (through
//! `stepsync_local::template`, the one reader of it).

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
        let bad = |e: stepsync_local::template::TemplateError| BenchError::setup("the deployment facts", e);
        let template = stepsync_local::template::template().map_err(bad)?;
        Ok(Self {
            memory_mb: template.memory_mb,
            architecture: template.architecture.clone(),
            sync_interval_minutes: template.number_parameter("SyncIntervalMinutes").map_err(bad)?,
        })
    }
}
