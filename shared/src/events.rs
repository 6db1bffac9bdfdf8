//! StepSync's EventBridge events (source `stepsync`): one type per detail-type.

use crate::diagnosis::Action;
use crate::domain::{ChallengeId, ConnectionStatus, DiagnosisCode, LocalDate, Provider, UploadWindow, UserId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The `source` of every event StepSync puts on the bus.
pub const EVENT_SOURCE: &str = "stepsync";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncReason {
    Schedule,
    Manual,
    Webhook,
    Connect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequested {
    pub user: UserId,
    pub provider: Provider,
    pub reason: SyncReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<LocalDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<LocalDate>,
    /// When the webhook notice arrived (reason `webhook`): the worker's fence compares it with
    /// the last fetch's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noticed_at: Option<Timestamp>,
    /// The notice's own id (random, per request the webhook accepted): a retry of this event
    /// carries it again, and its fence goes ahead again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_id: Option<String>,
    /// What a source that is read by upload time (Garmin) said was uploaded: this sync reads
    /// that window instead of dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadWindow>,
}

impl SyncRequested {
    /// A sync of the connection's default window for `reason`, with no notice behind it.
    pub fn whole(user: UserId, provider: Provider, reason: SyncReason) -> Self {
        Self { user, provider, reason, start: None, end: None, noticed_at: None, notice_id: None, upload: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncShard {
    pub shard: u16,
    pub tick: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepsUpdated {
    pub user: UserId,
    pub date: LocalDate,
    pub old_total: u32,
    pub new_total: u32,
    /// The day's version after the change: `(user, date, version)` names one committed change,
    /// so a consumer drops a duplicate and orders by it.
    pub version: u64,
    /// The source whose value changed.
    pub source: Provider,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatusChanged {
    pub user: UserId,
    pub provider: Provider,
    pub old_status: ConnectionStatus,
    pub new_status: ConnectionStatus,
    pub reason: String,
    /// What the person should do, in plain words.
    pub action: String,
}

/// A challenge a reminder is about, as organizers and people know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRef {
    pub id: ChallengeId,
    pub name: String,
}

/// A reminder for one person to act on one source (`nudges`): at most one per person,
/// source and diagnosis per period. The delivery target (docs/OPERATIONS.md, "Reminders")
/// gets `text`; the rest is for a service that routes it to the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderDue {
    pub user: UserId,
    pub provider: Provider,
    /// The diagnosis's stable code (`token_revoked`, `missing_permission`, ...).
    pub code: DiagnosisCode,
    /// What the person is asked to do, from the diagnosis's catalogue.
    pub action: Action,
    /// The diagnosis's sentence for the person.
    pub message: String,
    /// Since when the person has been asked to act, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// The challenge the reminder was sent for, where one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<ChallengeRef>,
    /// The whole reminder in one line of plain text (Slack-escaped), for a chat webhook.
    pub text: String,
}

/// One person who still needs to act, in an organizer's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestLine {
    pub user: UserId,
    /// The connection that needs it; `None` for someone with no source at all (`no_source`).
    pub provider: Option<Provider>,
    pub code: DiagnosisCode,
    pub action: Action,
}

/// A challenge's organizer digest: who still needs to act. At most one per challenge per period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestDue {
    pub challenge: ChallengeRef,
    /// Everyone who still needs to act, or the first `DIGEST_MAX_PEOPLE` of them.
    pub people: Vec<DigestLine>,
    /// How many still need to act (more than `people` holds when it was cut).
    pub total: usize,
    /// The digest as plain text (Slack-escaped), for a chat webhook.
    pub text: String,
}

/// An event as it travels: the variant is the EventBridge `detail-type`, the payload its
/// `detail`. Deserialising an EventBridge envelope (which has more fields) gives the same value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum Event {
    SyncRequested(SyncRequested),
    SyncShard(SyncShard),
    StepsUpdated(StepsUpdated),
    ConnectionStatusChanged(ConnectionStatusChanged),
    ReminderDue(ReminderDue),
    DigestDue(DigestDue),
}

impl Event {
    pub fn detail_type(&self) -> &'static str {
        match self {
            Event::SyncRequested(_) => "SyncRequested",
            Event::SyncShard(_) => "SyncShard",
            Event::StepsUpdated(_) => "StepsUpdated",
            Event::ConnectionStatusChanged(_) => "ConnectionStatusChanged",
            Event::ReminderDue(_) => "ReminderDue",
            Event::DigestDue(_) => "DigestDue",
        }
    }

    pub fn detail_json(&self) -> String {
        let detail = match self {
            Event::SyncRequested(d) => serde_json::to_string(d),
            Event::SyncShard(d) => serde_json::to_string(d),
            Event::StepsUpdated(d) => serde_json::to_string(d),
            Event::ConnectionStatusChanged(d) => serde_json::to_string(d),
            Event::ReminderDue(d) => serde_json::to_string(d),
            Event::DigestDue(d) => serde_json::to_string(d),
        };
        // Plain structs of strings and numbers always serialise.
        detail.unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eventbridge_envelope_parses_into_the_event() {
        let envelope = serde_json::json!({
            "version": "0", "id": "6a7e8feb", "detail-type": "SyncRequested", "source": "stepsync",
            "account": "123456789012", "time": "2026-11-25T12:00:00Z", "region": "us-east-1",
            "resources": [],
            "detail": {"user": "u1", "provider": "google_health", "reason": "webhook", "start": "2026-11-24", "end": "2026-11-24"}
        });
        let event: Event = serde_json::from_value(envelope).unwrap();
        let Event::SyncRequested(req) = &event else { panic!("wrong variant: {event:?}") };
        assert_eq!(req.reason, SyncReason::Webhook);
        assert_eq!(event.detail_type(), "SyncRequested");
        assert!(event.detail_json().contains("\"google_health\""));
    }
}
