//! `reconcile`: once a day (EventBridge Scheduler, explicit `Input`), seals the challenges that
//! closed and repairs drift in the open ones (`stepsync::services::Reconcile`).

use crate::app::App;
use stepsync::services::{Reconcile, ReconcileReport};

#[derive(Debug, thiserror::Error)]
#[error("the reconcile run failed: {0}")]
pub struct ReconcileError(String);

pub async fn run(app: &App) -> Result<ReconcileReport, ReconcileError> {
    let ports = &app.services.ports;
    let reconcile = Reconcile { steps: ports.steps.as_ref(), store: ports.challenges.as_ref() };
    reconcile.run(ports.clock.now()).await.map_err(|e| ReconcileError(e.to_string()))
}
