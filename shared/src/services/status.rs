//! What a person sees of their own sync: each connection with its diagnosis, and their day
//! records with the source each total comes from.

use super::ServiceError;
use crate::clock::Clock;
use crate::diagnosis::{Diagnosis, diagnose};
use crate::domain::{ConnectionStatus, LastError, LocalDate, Provider, UserId, resolved_source};
use crate::ports::{ConnectionStore, StepStore};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// The longest range of days answered at once.
pub const MAX_DAYS_RANGE: i32 = 93;

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

impl Status<'_> {
    /// Every connection of `user`, each with what is wrong and the one action that fixes it.
    pub async fn connections(&self, user: &UserId) -> Result<Vec<ConnectionStatusView>, ServiceError> {
        let now = self.clock.now();
        let connections = self.connections.list_connections(user).await?;
        Ok(connections
            .into_iter()
            .map(|c| ConnectionStatusView {
                provider: c.provider,
                status: c.status,
                last_attempt_at: c.last_attempt_at,
                last_success_at: c.last_success_at,
                newest_data_date: c.last_data_date,
                last_device_sync_at: c.last_device_sync_at,
                next_sync_at: c.next_sync_at.filter(|_| c.status == ConnectionStatus::Active),
                diagnosis: diagnose(&c, now),
                last_error: c.last_error,
            })
            .collect())
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
