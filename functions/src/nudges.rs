//! `nudges`: a `ConnectionStatusChanged` from the bus in (the rule passes moves to
//! `reconnect_required` only), at most one `ReminderDue` per person, source and diagnosis per
//! period out (`stepsync::services::Nudges`), which another rule hands to the delivery target.

use crate::app::App;
use stepsync::events::Event;

pub use stepsync::services::{NudgeError, NudgeOutcome};

/// Handles one EventBridge event (the whole envelope: its `time` is when the status moved).
pub async fn handle(app: &App, payload: serde_json::Value) -> Result<NudgeOutcome, NudgeError> {
    let at = payload.get("time").and_then(|t| t.as_str()).and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let event: Event = serde_json::from_value(payload).map_err(|e| NudgeError::BadEvent(e.to_string()))?;
    let Event::ConnectionStatusChanged(change) = event else {
        return Err(NudgeError::BadEvent(format!("{} is not a status change", event.detail_type())));
    };
    let outcome = app.services.nudges().on_status_changed(&change, at).await;
    match &outcome {
        Ok(done) => {
            tracing::info!(user = %change.user, provider = %change.provider, outcome = ?done, "status change handled")
        }
        Err(error) => {
            tracing::warn!(user = %change.user, provider = %change.provider, %error, "status change not handled")
        }
    }
    outcome
}
