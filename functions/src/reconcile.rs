//! `reconcile`: once a day (EventBridge Scheduler, explicit `Input`), seals the challenges that
//! closed and repairs drift in the open ones (`stepsync::services::Reconcile`), then keeps the
//! sources' app-level subscriptions alive (`stepsync::services::Subscriptions`: Oura's expire),
//! and reminds the people of every challenge whose grace period ends within two days, with a
//! digest for its organizers (`stepsync::services::Reminding`; only with a reminder target).

use crate::app::App;
use serde::Serialize;
use stepsync::services::{ChallengeReminders, Reconcile, ReconcileReport, SubscriptionsReport};

#[derive(Debug, thiserror::Error)]
#[error("the reconcile run failed: {0}")]
pub struct ReconcileError(String);

/// What one run did.
#[derive(Debug, Serialize)]
pub struct DailyReport {
    #[serde(flatten)]
    pub challenges: ReconcileReport,
    pub subscriptions: SubscriptionsReport,
    /// The challenges whose grace period ends within two days: their people reminded, their
    /// organizers sent a digest (none without a reminder target).
    pub reminded: Vec<ChallengeReminders>,
}

pub async fn run(app: &App) -> Result<DailyReport, ReconcileError> {
    let ports = &app.services.ports;
    let now = ports.clock.now();
    let reconcile = Reconcile { steps: ports.steps.as_ref(), store: ports.challenges.as_ref() };
    let challenges = reconcile.run(now).await.map_err(|e| ReconcileError(e.to_string()))?;
    let subscriptions = app.services.subscriptions().keep(now).await.map_err(|e| ReconcileError(e.to_string()))?;
    // Last: a reminder the bus refused fails the run only after the rest is done.
    let reminded = app.services.reminding().before_close(now).await.map_err(|e| ReconcileError(e.to_string()))?;
    Ok(DailyReport { challenges, subscriptions, reminded })
}
