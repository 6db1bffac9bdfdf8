//! Why a person's steps are (not) syncing, and the one thing that fixes it: a diagnosis per
//! connection from a fixed catalogue of actions, in plain language.

use crate::domain::{Connection, ConnectionStatus, FailureCode, Provider, local_today};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A phone source silent this long probably lost its Health permission (HealthKit never
/// says so: queries just come back empty).
pub const PHONE_SILENCE: Duration = Duration::from_secs(48 * 3600);
/// A healthy connection with no new data this long points at a device that is not syncing.
pub const NO_NEW_DATA: Duration = Duration::from_secs(24 * 3600);

/// The fixed catalogue of things a person can be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Reconnect,
    GrantPermission,
    SyncDevice,
    Wait,
    None,
    /// Connect a step source: a person with none at all ([`no_source`]). A connection's own
    /// diagnosis never asks it.
    Connect,
}

impl Action {
    /// Whether only the person can fix it (a reminder helps); `wait` and `none` ask nothing.
    pub fn asks_the_person(self) -> bool {
        matches!(self, Action::Reconnect | Action::GrantPermission | Action::SyncDevice | Action::Connect)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reconnect => "reconnect",
            Action::GrantPermission => "grant_permission",
            Action::SyncDevice => "sync_device",
            Action::Wait => "wait",
            Action::None => "none",
            Action::Connect => "connect",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// What is going on, as a stable code (`healthy`, `token_revoked`, `phone_silent`, ...).
    pub code: &'static str,
    pub action: Action,
    pub message: String,
    /// For `wait`: when the next try is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Timestamp>,
    /// Since when the condition is known, from what the connection stores (`None` when
    /// healthy). No field dates a change of status, so each condition is dated by the stored
    /// time nearest its start: the organizer's view sorts by it (`services::organizer`).
    #[serde(skip)]
    pub since: Option<Timestamp>,
}

fn diagnosis(code: &'static str, action: Action, message: String, since: Option<Timestamp>) -> Diagnosis {
    Diagnosis { code, action, message, retry_at: None, since }
}

/// A person with no step source at all (joined a challenge, never connected one), known since
/// `since`.
pub fn no_source(since: Timestamp) -> Diagnosis {
    diagnosis(
        "no_source",
        Action::Connect,
        "No step source is connected, so no steps count yet. Connect the app or tracker you use.".to_owned(),
        Some(since),
    )
}

fn older_than(at: Option<Timestamp>, age: Duration, now: Timestamp) -> bool {
    at.is_none_or(|at| now.duration_since(at).unsigned_abs() >= age && at <= now)
}

/// A phone that uploads but has had no day above zero in its last two whole local days
/// (HealthKit answers zero, not an error, when read permission is denied). A connection
/// younger than `PHONE_SILENCE` is given the time to show its first steps.
fn uploads_only_zeros(connection: &Connection, now: Timestamp) -> bool {
    if !older_than(Some(connection.created_at), PHONE_SILENCE, now) {
        return false;
    }
    let zone = connection.time_zone.as_deref().and_then(|z| jiff::tz::TimeZone::get(z).ok());
    let today = local_today(now, &zone.unwrap_or(jiff::tz::TimeZone::UTC));
    connection.last_data_date.is_none_or(|newest| newest < today.add_days(-2))
}

/// A healthy connection whose source stopped notifying the app (an expired Oura
/// subscription, a person's Withings one): the daily run (the syncs, for a person's own)
/// renews it; meanwhile the scheduled pull still brings steps,
/// only later.
pub fn subscription_lapsed(connection: &Connection) -> Diagnosis {
    let name = connection.provider.display_name();
    let message = match connection.subscription_lapsed_at {
        // A person's own subscription (Withings): only theirs is off.
        Some(_) => format!(
            "{name} is not telling us about your new data right now; we ask {name} again with your next sync after an hour. Nothing to do: your steps still arrive every few hours meanwhile."
        ),
        None => format!(
            "{name} stopped telling us about new data; we are renewing that. Nothing to do: your steps still arrive every few hours until it is fixed."
        ),
    };
    Diagnosis {
        code: "subscription_lapsed",
        action: Action::Wait,
        message,
        retry_at: connection.next_sync_at,
        // An app-level lapse is dated by its caller, from the source's stored subscriptions.
        since: connection.subscription_lapsed_at,
    }
}

/// The diagnosis for one connection at `now`.
pub fn diagnose(connection: &Connection, now: Timestamp) -> Diagnosis {
    let name = connection.provider.display_name();
    let error_code = connection.last_error.as_ref().map(|e| e.code);
    let created = connection.created_at;
    // The sync that recorded the failure: a connection waiting for its person is not synced
    // again, and one backing off is at most one retry later than when its trouble began.
    let failed_at = Some(connection.last_attempt_at.unwrap_or(created));
    match connection.status {
        // The disconnect itself is not dated: it came after the last time the connection was
        // known on (a sync, or new steps from it).
        ConnectionStatus::Disconnected => diagnosis(
            "disconnected",
            Action::Reconnect,
            format!("{name} is disconnected. Connect it again to sync its steps."),
            [connection.last_attempt_at, connection.last_success_at, connection.last_new_data_at, Some(created)]
                .into_iter()
                .flatten()
                .max(),
        ),
        ConnectionStatus::ReconnectRequired => match error_code {
            Some(FailureCode::LegacyRetired) => diagnosis(
                "legacy_retired",
                Action::Reconnect,
                "The old Fitbit connection stopped working when Fitbit moved to Google. Reconnect Fitbit through Google."
                    .to_owned(),
                failed_at,
            ),
            // Garmin's consent page lists what is shared by type: the steps are in the daily
            // health data, not in the activities.
            Some(FailureCode::MissingPermission) if connection.provider == Provider::Garmin => diagnosis(
                "missing_permission",
                Action::GrantPermission,
                format!("{name} does not share your daily health data with us. Reconnect and allow it."),
                failed_at,
            ),
            Some(FailureCode::MissingPermission) => diagnosis(
                "missing_permission",
                Action::GrantPermission,
                format!("{name} did not give us access to your activity. Reconnect and allow activity data."),
                failed_at,
            ),
            Some(FailureCode::ProviderRetired) => diagnosis(
                "provider_retired",
                Action::Reconnect,
                format!("{name} no longer answers. Connect another step source."),
                failed_at,
            ),
            _ => diagnosis(
                "token_revoked",
                Action::Reconnect,
                format!("{name} access was revoked or expired. Reconnect {name} to keep your steps syncing."),
                failed_at,
            ),
        },
        ConnectionStatus::Active => match error_code {
            Some(FailureCode::AppRefused) => Diagnosis {
                code: "app_refused",
                action: Action::Wait,
                message: format!(
                    "{name} is refusing StepSync itself, not your account. Nothing to do: we are fixing it, and your steps sync once it is fixed."
                ),
                retry_at: connection.next_sync_at,
                since: failed_at,
            },
            Some(code) if code.is_transient() => Diagnosis {
                code: if code == FailureCode::RateLimited { "rate_limited" } else { "provider_unavailable" },
                action: Action::Wait,
                message: format!("{name} is not answering right now. Nothing to do: we will try again automatically."),
                retry_at: connection.next_sync_at,
                since: failed_at,
            },
            _ if connection.provider.is_phone_upload() => {
                let store = if connection.provider == Provider::AppleHealth { "Health" } else { "Health Connect" };
                let heard = connection.last_success_at.unwrap_or(created);
                if older_than(Some(heard), PHONE_SILENCE, now) {
                    diagnosis(
                        "phone_silent",
                        Action::GrantPermission,
                        format!("We have not heard from {name} for 2 days. Open the app and allow {store} access to your steps."),
                        Some(heard),
                    )
                } else if uploads_only_zeros(connection, now) {
                    // Zeros since the day after its last day with steps began, in its zone.
                    let zeros_from = connection
                        .last_data_date
                        .and_then(|d| d.add_days(1).date().to_zoned_datetime(connection.tz()).ok())
                        .map(|z| z.timestamp());
                    diagnosis(
                        "phone_zero_steps",
                        Action::GrantPermission,
                        format!(
                            "{name} has sent no steps above zero for 2 days; that is what it answers when it may not read them. Open the app and allow {store} access to your steps."
                        ),
                        Some(zeros_from.map_or(created, |at| at.max(created))),
                    )
                } else {
                    diagnosis("healthy", Action::None, format!("{name} is syncing."), None)
                }
            }
            _ if older_than(connection.last_new_data_at.or(Some(created)), NO_NEW_DATA, now) => diagnosis(
                "no_new_data",
                Action::SyncDevice,
                format!("{name} has sent no new steps for a day. Open its app so your tracker syncs."),
                Some(connection.last_new_data_at.unwrap_or(created)),
            ),
            _ => diagnosis("healthy", Action::None, format!("{name} is syncing."), None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LastError, UserId};

    const NOW: &str = "2026-11-25T18:00:00Z";

    fn connection(provider: Provider, status: ConnectionStatus, error: Option<FailureCode>) -> Connection {
        let now: Timestamp = NOW.parse().unwrap();
        Connection {
            status,
            last_error: error.map(|c| LastError { code: c, message: String::new() }),
            last_success_at: Some(now),
            last_new_data_at: Some(now),
            ..Connection::new(UserId::parse("u").unwrap(), provider, now - jiff::SignedDuration::from_hours(72))
        }
    }

    fn action(c: &Connection, at: &str) -> (&'static str, Action) {
        let d = diagnose(c, at.parse().unwrap());
        (d.code, d.action)
    }

    #[test]
    fn every_state_gets_one_action_from_the_catalogue() {
        use ConnectionStatus::*;
        let g = Provider::GoogleHealth;
        assert_eq!(action(&connection(g, Active, None), NOW), ("healthy", Action::None));
        assert_eq!(
            action(&connection(g, ReconnectRequired, Some(FailureCode::ReconnectRequired)), NOW),
            ("token_revoked", Action::Reconnect)
        );
        assert_eq!(
            action(&connection(g, ReconnectRequired, Some(FailureCode::MissingPermission)), NOW),
            ("missing_permission", Action::GrantPermission)
        );
        let garmin = connection(Provider::Garmin, ReconnectRequired, Some(FailureCode::MissingPermission));
        let told = diagnose(&garmin, NOW.parse().unwrap());
        assert_eq!((told.code, told.action), ("missing_permission", Action::GrantPermission));
        assert!(told.message.contains("daily health data"), "Garmin's word for what holds the steps: {}", told.message);
        assert_eq!(
            action(&connection(Provider::Fitbit, ReconnectRequired, Some(FailureCode::LegacyRetired)), NOW),
            ("legacy_retired", Action::Reconnect)
        );
        assert_eq!(action(&connection(g, Active, Some(FailureCode::RateLimited)), NOW), ("rate_limited", Action::Wait));
        // A project-level refusal: the person waits; reconnecting would fix nothing.
        assert_eq!(action(&connection(g, Active, Some(FailureCode::AppRefused)), NOW), ("app_refused", Action::Wait));
        assert_eq!(action(&connection(g, Active, None), "2026-11-26T18:00:01Z"), ("no_new_data", Action::SyncDevice));
        let phone =
            Connection { last_data_date: Some(date("2026-11-25")), ..connection(Provider::AppleHealth, Active, None) };
        assert_eq!(action(&phone, "2026-11-27T17:59:00Z"), ("healthy", Action::None));
        assert_eq!(action(&phone, "2026-11-27T18:00:00Z"), ("phone_silent", Action::GrantPermission));
        assert!(diagnose(&phone, "2026-11-28T00:00:00Z".parse().unwrap()).message.contains("allow Health access"));
    }

    fn date(raw: &str) -> crate::domain::LocalDate {
        crate::domain::LocalDate::parse(raw).unwrap()
    }

    /// HealthKit answers zero when it may not read steps: a phone that keeps uploading, but
    /// nothing above zero for its last two whole local days, is asked to allow Health access.
    #[test]
    fn a_phone_that_uploads_only_zeros_asks_for_health_access() {
        let uploading = |newest: Option<&str>, zone: &str| Connection {
            last_data_date: newest.map(date),
            time_zone: Some(zone.to_owned()),
            ..connection(Provider::AppleHealth, ConnectionStatus::Active, None)
        };
        // Heard from at NOW (Nov 25, 18:00 UTC); steps last counted on Nov 22 in UTC.
        let zeros = uploading(Some("2026-11-22"), "UTC");
        assert_eq!(action(&zeros, NOW), ("phone_zero_steps", Action::GrantPermission));
        assert!(diagnose(&zeros, NOW.parse().unwrap()).message.contains("allow Health access"));
        assert_eq!(action(&uploading(None, "UTC"), NOW), ("phone_zero_steps", Action::GrantPermission));
        let android = Connection { provider: Provider::HealthConnect, ..uploading(None, "UTC") };
        assert!(diagnose(&android, NOW.parse().unwrap()).message.contains("allow Health Connect access"));
        // Steps on Nov 23 (the day before yesterday) or later: healthy.
        assert_eq!(action(&uploading(Some("2026-11-23"), "UTC"), NOW), ("healthy", Action::None));
        // Local days count: at 18:00 UTC it is already Nov 26 in Tokyo, so Nov 23 is too old.
        assert_eq!(
            action(&uploading(Some("2026-11-23"), "Asia/Tokyo"), NOW),
            ("phone_zero_steps", Action::GrantPermission)
        );
        // A phone connected a day ago has time to show its first steps.
        let new = Connection {
            created_at: NOW.parse::<Timestamp>().unwrap() - jiff::SignedDuration::from_hours(24),
            ..uploading(None, "UTC")
        };
        assert_eq!(action(&new, NOW), ("healthy", Action::None));
    }
}
