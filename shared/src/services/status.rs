//! What a person sees of their own sync: each connection with its diagnosis, and their day
//! records with the source each total comes from.

use super::ServiceError;
use crate::clock::Clock;
use crate::diagnosis::{Action, Diagnosis, diagnose, subscription_lapsed};
use crate::domain::{
    Connection, ConnectionStatus, DayRecord, LastError, LocalDate, Provider, UserId, local_today, resolved_source,
};
use crate::engine::{phase_index, phase_start};
use crate::ports::{ConnectionStore, StepStore, StoredSubscriptions, SweepCursor};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// The longest range of days answered at once.
pub const MAX_DAYS_RANGE: i32 = 93;
/// How far back a connection's newest data is looked for (its diagnosis needs a day or two).
const RECENT_DAYS: i32 = 14;

/// The newest date with steps from `provider`, and when its value last changed (a pulled value
/// is stamped with the start of the fetch that brought it), among `days`.
fn recent_data(days: &BTreeMap<LocalDate, DayRecord>, provider: Provider) -> (Option<LocalDate>, Option<Timestamp>) {
    let values = days.values().filter_map(|d| d.sources.get(&provider).map(|v| (d.date, v)));
    let newest = values.clone().filter(|(_, v)| v.steps.get() > 0).map(|(date, _)| date).max();
    let changed = values.filter_map(|(_, v)| v.observed_at).max();
    (newest, changed)
}

/// When the sweep next takes a connection in phase `phase` of a `cycle`-phase cycle: the next
/// start of that phase not swept yet.
fn next_sweep(cycle: u32, phase: u32, through: Option<i64>, now: Timestamp) -> Timestamp {
    let cycle = i64::from(cycle.max(1));
    let current = phase_index(now);
    let mut index = current + (i64::from(phase) - current).rem_euclid(cycle);
    if through.is_some_and(|t| t >= index) {
        index += cycle;
    }
    phase_start(index)
}

#[derive(Debug, Serialize)]
pub struct ConnectionStatusView {
    pub provider: Provider,
    pub status: ConnectionStatus,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub newest_data_date: Option<LocalDate>,
    pub last_device_sync_at: Option<Timestamp>,
    pub next_sync_at: Option<Timestamp>,
    pub last_error: Option<LastError>,
    pub diagnosis: Diagnosis,
}

#[derive(Debug, Serialize)]
pub struct DayView {
    pub local_date: LocalDate,
    pub steps: u32,
    /// The source the total comes from (the primary source, else the largest).
    pub source: Option<Provider>,
    pub sources: BTreeMap<Provider, u32>,
}

pub struct Status<'a> {
    pub connections: &'a dyn ConnectionStore,
    pub steps: &'a dyn StepStore,
    pub clock: &'a dyn Clock,
}

/// The days a connection's newest data is looked for in, at `now`: the last `RECENT_DAYS`
/// before the day after UTC's today (a day ahead of UTC covers every zone's today). They also
/// hold every zone's yesterday and today.
pub(crate) fn recent_days(now: Timestamp) -> (LocalDate, LocalDate) {
    let end = local_today(now, &jiff::tz::TimeZone::UTC).add_days(1);
    (end.add_days(-RECENT_DAYS), end)
}

/// One connection as the status answer sees it: its stored fields with what a healthy
/// connection does not write filled in, when it is next synced, and its diagnosis.
pub(crate) struct Seen {
    pub connection: Connection,
    pub next_sync_at: Option<Timestamp>,
    pub diagnosis: Diagnosis,
}

impl From<Seen> for ConnectionStatusView {
    fn from(seen: Seen) -> Self {
        let Seen { connection: c, next_sync_at, diagnosis } = seen;
        ConnectionStatusView {
            provider: c.provider,
            status: c.status,
            last_attempt_at: c.last_attempt_at,
            last_success_at: c.last_success_at,
            newest_data_date: c.last_data_date,
            last_device_sync_at: c.last_device_sync_at,
            next_sync_at: next_sync_at.filter(|_| c.status == ConnectionStatus::Active),
            diagnosis,
            last_error: c.last_error,
        }
    }
}

/// Sees connections as the person's own status answer does. What a diagnosis needs beyond the
/// connection and its person's recent days (its slot's sweep cursor, its source's app-level
/// subscriptions) is read once for every connection seen through one `Seeing`: a person's
/// answer and a whole challenge's sync health share the same few reads.
pub(crate) struct Seeing<'a> {
    connections: &'a dyn ConnectionStore,
    now: Timestamp,
    cursors: BTreeMap<(u16, u32), Option<SweepCursor>>,
    /// Per source with app-level subscriptions: since when they are known lapsed, if they are.
    lapsed: BTreeMap<Provider, Option<Timestamp>>,
}

impl<'a> Seeing<'a> {
    pub(crate) fn new(connections: &'a dyn ConnectionStore, now: Timestamp) -> Self {
        Self { connections, now, cursors: BTreeMap::new(), lapsed: BTreeMap::new() }
    }

    /// Sees `c`, whose person's stored days in `recent_days(now)` are `days` (only a pulled
    /// source reads them). A healthy connection writes nothing when it syncs, so what it did
    /// is read here: its last success from its slot's sweep cursor, its newest data from the
    /// days.
    pub(crate) async fn see(
        &mut self,
        mut c: Connection,
        days: &BTreeMap<LocalDate, DayRecord>,
    ) -> Result<Seen, ServiceError> {
        let now = self.now;
        let mut next_sync_at = c.next_sync_at;
        if let Some(slot) = c.slot.filter(|_| c.next_sync_at.is_none()) {
            let cursor = match self.cursors.get(&(slot.shard, slot.cycle)) {
                Some(cursor) => cursor.clone(),
                None => {
                    let cursor = self.connections.sweep_cursor(slot.shard, slot.cycle).await?;
                    self.cursors.insert((slot.shard, slot.cycle), cursor.clone());
                    cursor
                }
            };
            let cursor = cursor.unwrap_or_default();
            // A sweep that began after the connection entered its slot (its last recorded
            // success) and finished: it synced the connection, which would carry an error
            // had that failed.
            let swept = cursor.swept.get(&slot.phase).copied();
            if c.last_error.is_none()
                && let (Some(entered), Some(swept)) = (c.last_success_at, swept)
                && swept > entered
            {
                c.last_success_at = Some(swept);
                c.last_attempt_at = c.last_attempt_at.max(Some(swept));
            }
            next_sync_at = Some(next_sweep(slot.cycle, slot.phase, cursor.through, now));
        }
        if !c.provider.is_phone_upload() {
            let (newest, changed) = recent_data(days, c.provider);
            c.last_data_date = c.last_data_date.max(newest);
            c.last_new_data_at = c.last_new_data_at.max(changed);
        }
        let mut diagnosis = diagnose(&c, now);
        // A lapsed subscription explains a quiet connection better than its device does.
        let quiet = diagnosis.action == Action::None || diagnosis.code == "no_new_data";
        if quiet && c.subscription_lapsed_at.is_some() {
            diagnosis = subscription_lapsed(&c);
            diagnosis.retry_at = next_sync_at;
        } else if quiet && c.provider.has_app_subscriptions() {
            let provider_lapsed = match self.lapsed.get(&c.provider) {
                Some(known) => *known,
                None => {
                    // No record yet (the daily run has not run since the source was turned
                    // on) is not a lapse: notices may well be flowing.
                    let stored = self.connections.subscriptions(c.provider).await?;
                    let known = stored.and_then(|s| lapsed_since(&s, now));
                    self.lapsed.insert(c.provider, known);
                    known
                }
            };
            if let Some(since) = provider_lapsed {
                diagnosis = subscription_lapsed(&c);
                diagnosis.retry_at = next_sync_at;
                diagnosis.since = Some(since);
            }
        }
        Ok(Seen { connection: c, next_sync_at, diagnosis })
    }
}

/// Since when a source's app-level subscriptions are known lapsed, if any is not live at
/// `now`: an expired one since its expiry, a missing one since the daily run found it so.
fn lapsed_since(stored: &StoredSubscriptions, now: Timestamp) -> Option<Timestamp> {
    stored
        .states
        .iter()
        .filter(|state| !state.live(now))
        .map(|state| match (&state.id, state.expires_at) {
            (Some(_), Some(expired)) => expired,
            _ => stored.checked_at,
        })
        .min()
}

impl Status<'_> {
    /// Every connection of `user`, each with what is wrong and the one action that fixes it.
    pub async fn connections(&self, user: &UserId) -> Result<Vec<ConnectionStatusView>, ServiceError> {
        let now = self.clock.now();
        let connections = self.connections.list_connections(user).await?;
        let pulled = connections.iter().any(|c| !c.provider.is_phone_upload());
        let days = match pulled {
            true => {
                let (start, end) = recent_days(now);
                self.steps.load_user_window(user, start, end).await?.days
            }
            false => BTreeMap::new(),
        };
        let mut seeing = Seeing::new(self.connections, now);
        let mut views = Vec::new();
        for c in connections {
            views.push(seeing.see(c, &days).await?.into());
        }
        Ok(views)
    }

    /// The stored days of `user` from `from` to `to` (at most `MAX_DAYS_RANGE` days).
    pub async fn days(&self, user: &UserId, from: LocalDate, to: LocalDate) -> Result<Vec<DayView>, ServiceError> {
        if to < from {
            return Err(ServiceError::Invalid { field: "to", message: "must not be before from".into() });
        }
        if from.add_days(MAX_DAYS_RANGE - 1) < to {
            return Err(ServiceError::Invalid {
                field: "to",
                message: format!("at most {MAX_DAYS_RANGE} days at once"),
            });
        }
        let window = self.steps.load_user_window(user, from, to).await?;
        let primary = window.profile.primary;
        Ok(window
            .days
            .into_values()
            .map(|d| DayView {
                local_date: d.date,
                steps: d.total.get(),
                source: resolved_source(&d.sources, primary),
                sources: d.sources.iter().map(|(p, v)| (*p, v.steps.get())).collect(),
            })
            .collect())
    }
}
