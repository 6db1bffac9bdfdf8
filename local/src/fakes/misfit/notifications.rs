//! What Misfit announces through SNS: the events a notification's `Message` carries.

use jiff::Timestamp;
use serde_json::Value;

/// One change Misfit announces; a notification's `Message` is a JSON array of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MisfitEvent {
    /// The resource: "sessions", "activities", "sleeps", "goals", "profiles", "devices".
    pub kind: String,
    pub id: String,
    pub owner_id: String,
    pub action: EventAction,
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventAction {
    Created,
    Updated,
    Deleted,
}

impl EventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Created => "created",
            EventAction::Updated => "updated",
            EventAction::Deleted => "deleted",
        }
    }
}

impl MisfitEvent {
    /// An event updated now.
    pub fn new(kind: &str, id: &str, owner_id: &str, action: EventAction) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.to_owned(),
            owner_id: owner_id.to_owned(),
            action,
            updated_at: Timestamp::now(),
        }
    }
}

/// A notification's `Message`: the events as a JSON array string, spaced as Misfit writes it
/// (`", "` and `": "`), keys in Misfit's order.
pub fn notification_message(events: &[MisfitEvent]) -> String {
    let quote = |s: &str| Value::String(s.to_owned()).to_string();
    let objects: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{{\"type\": {}, \"id\": {}, \"ownerId\": {}, \"action\": {}, \"updatedAt\": {}}}",
                quote(&e.kind),
                quote(&e.id),
                quote(&e.owner_id),
                quote(e.action.as_str()),
                quote(&e.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            )
        })
        .collect();
    format!("[{}]", objects.join(", "))
}
