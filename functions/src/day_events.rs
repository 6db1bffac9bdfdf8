//! `day-events`: the table's change stream in; every committed day change counted into its
//! challenges exactly once, and one `StepsUpdated` per change where configured
//! (`stepsync::services::DayEvents`). The event source mapping filters the stream to day items
//! and asks for partial batch answers: a record not published, and every later one, come back.
//!
//! The batch and the answer are read and written here with the few fields used (the images
//! are DynamoDB JSON, which `serde_dynamo::Item` reads as it is).

use crate::app::App;
use serde::{Deserialize, Serialize};
use stepsync::ports::DayChange;

/// A DynamoDB stream batch as Lambda hands it over.
#[derive(Debug, Deserialize)]
pub struct StreamBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub dynamodb: StreamChange,
}

#[derive(Debug, Deserialize)]
pub struct StreamChange {
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: String,
    #[serde(rename = "OldImage", default)]
    pub old_image: Option<serde_dynamo::Item>,
    #[serde(rename = "NewImage", default)]
    pub new_image: Option<serde_dynamo::Item>,
}

/// The partial batch answer (`ReportBatchItemFailures`): empty when all was published.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchAnswer {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

#[derive(Debug, thiserror::Error)]
#[error("not a DynamoDB stream batch: {0}")]
pub struct BadBatch(String);

pub async fn handle(app: &App, payload: serde_json::Value) -> Result<BatchAnswer, BadBatch> {
    let batch: StreamBatch = serde_json::from_value(payload).map_err(|e| BadBatch(e.to_string()))?;
    let mut changes: Vec<DayChange> = Vec::with_capacity(batch.records.len());
    for record in batch.records {
        let change = record.dynamodb;
        let id = change.sequence_number;
        match stepsync::aws::day_change(id.clone(), change.old_image, change.new_image) {
            Ok(Some(change)) => changes.push(change),
            Ok(None) => tracing::debug!(record = %id, event = %record.event_name, "not a day write"),
            // An image we cannot read is a bug to look at, not a reason to stall the stream.
            Err(error) => tracing::error!(record = %id, %error, alarm = "day_event_unreadable", "day change skipped"),
        }
    }
    let failures = match app.services.day_events().handle(&changes).await {
        Ok(handled) => {
            tracing::info!(
                counted = handled.counted,
                rebuilt = handled.rebuilt,
                published = handled.published,
                "day changes handled"
            );
            Vec::new()
        }
        Err(first) => vec![ItemFailure { item_identifier: first }],
    };
    Ok(BatchAnswer { batch_item_failures: failures })
}
