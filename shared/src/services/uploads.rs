//! Phone uploads: daily totals the phone read from Apple Health or Health Connect. An
//! idempotent overwrite per (person, source, date): the same day uploaded twice, or from two
//! phones, never adds up. Valid days are applied; each invalid one is reported.

use super::{Ports, ServiceError};
use crate::domain::{Connection, ConnectionStatus, DailyValue, LocalDate, Provider, UserId, local_today};
use crate::engine::SyncEngine;
use crate::ports::{StoreError, SyncRecord};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::sync::Arc;

/// How far ahead of ours a phone's clock may be.
const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// An upload, parsed at the edge: the days that had the right shape, and those that did not.
#[derive(Debug, Clone)]
pub struct DeviceUpload {
    pub platform: Provider,
    /// The app installation that read the values: each keeps its own value per day.
    pub install_id: String,
    /// When the phone read the values; an older reading never replaces a newer one.
    pub observed_at: Option<Timestamp>,
    /// The phone's IANA zone, by name and resolved.
    pub zone: String,
    pub tz: TimeZone,
    pub values: Vec<DailyValue>,
    pub rejected: Vec<RejectedDay>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppliedDay {
    pub local_date: LocalDate,
    pub steps: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectedDay {
    /// As sent, when it was not a date.
    pub local_date: serde_json::Value,
    pub error: String,
}

/// What an upload did. Nothing applied means nothing was usable: nothing changed at all.
#[derive(Debug, Clone, Serialize)]
pub struct UploadReport {
    pub applied: Vec<AppliedDay>,
    pub rejected: Vec<RejectedDay>,
}

pub struct DeviceUploads {
    pub ports: Ports,
    pub engine: Arc<SyncEngine>,
    /// Uploads one person may send in a minute, all their phones together.
    pub per_minute: u32,
}

impl DeviceUploads {
    /// One person's phones may send `per_minute` uploads a minute that change days (a fixed
    /// minute): a phone stuck in a loop, or a stolen token, cannot make us write without end.
    /// Beyond it every upload is refused, 429 with the seconds until the next minute. The
    /// check is one read; only an upload that changed something is counted (it writes anyway),
    /// so re-sending unchanged days stays free of writes.
    async fn rate_window(&self, user: &UserId) -> Result<(String, Timestamp), ServiceError> {
        let now = self.ports.clock.now();
        let window_end = Timestamp::from_second((now.as_second() / 60 + 1) * 60).map_err(ServiceError::internal)?;
        let key = format!("upload#{user}");
        if self.ports.ephemeral.window_count(&key, window_end).await? < self.per_minute {
            return Ok((key, window_end));
        }
        let wait = window_end.as_second().saturating_sub(now.as_second()).max(1);
        Err(ServiceError::TooSoon {
            message: format!("too many uploads that changed your days this minute; send again in {wait} seconds"),
            retry_after: std::time::Duration::from_secs(wait.unsigned_abs()),
        })
    }

    pub async fn upload(&self, user: &UserId, upload: DeviceUpload) -> Result<UploadReport, ServiceError> {
        let (window_key, window_end) = self.rate_window(user).await?;
        let DeviceUpload { platform, install_id, observed_at, zone, tz, values, mut rejected } = upload;
        let now = self.ports.clock.now();
        // A phone's clock may run a little fast; a reading from later than that is refused.
        if observed_at.is_some_and(|at| at > now + CLOCK_SKEW) {
            return Err(ServiceError::Invalid { field: "observed_at", message: "is in the future".into() });
        }
        let values: Vec<DailyValue> = values.into_iter().map(|v| DailyValue { observed_at, ..v }).collect();
        // Value checks first (they need no connection): an upload with nothing usable changes
        // nothing at all, not even the connection.
        let today = local_today(now, &tz);
        let limits = self.engine.limits;
        let (values, refused): (Vec<DailyValue>, Vec<DailyValue>) =
            values.into_iter().partition(|v| limits.validate(v, today).is_ok());
        rejected.extend(refused.iter().filter_map(|v| {
            let error = limits.validate(v, today).err()?;
            Some(RejectedDay { local_date: v.date.to_string().into(), error: error.code().to_owned() })
        }));
        if values.is_empty() {
            return Ok(UploadReport { applied: Vec::new(), rejected });
        }
        let (connection, moved) = self.ensure_connection(user, platform, &zone, now).await?;
        let last_heard = if moved { None } else { connection.last_success_at };
        if moved {
            self.learn_zone(user, &zone).await;
        }
        // The installation feeds this person only from its first countable day: days it may
        // have counted for someone before are refused.
        let counts_from = self.bind_install(&connection, &install_id).await?;
        let (values, earlier): (Vec<DailyValue>, Vec<DailyValue>) =
            values.into_iter().partition(|v| counts_from.is_none_or(|first| v.date >= first));
        rejected.extend(
            earlier.iter().map(|v| RejectedDay {
                local_date: v.date.to_string().into(),
                error: "before_device_linked".to_owned(),
            }),
        );
        if values.is_empty() {
            return Ok(UploadReport { applied: Vec::new(), rejected });
        }
        let report =
            self.engine.apply_from_install(user, platform, &install_id, &tz, &values).await.map_err(|e| match e {
                crate::engine::SyncError::Store(StoreError::Disconnected) => ServiceError::Conflict(format!(
                    "{} was turned off for your account while this upload ran; turn it on again to count these days",
                    platform.display_name()
                )),
                other => ServiceError::internal(other),
            })?;
        let applied: Vec<AppliedDay> =
            values.iter().map(|v| AppliedDay { local_date: v.date, steps: v.steps }).collect();

        // Re-uploading unchanged days costs no write: the "last heard" stamp is refreshed only
        // when something changed or it is more than an hour old (the 48-hour silence check
        // needs no finer grain).
        let stale = last_heard.is_none_or(|at| now.duration_since(at).as_secs() >= 3600);
        // The days are written: a counter that cannot be moved only lets one more upload in.
        if !report.changed.is_empty()
            && let Err(error) = self.ports.ephemeral.count_in_window(&window_key, window_end).await
        {
            tracing::warn!(%error, "upload rate: not counted");
        }
        if !report.changed.is_empty() || stale {
            let record = SyncRecord {
                attempted_at: Some(now),
                succeeded_at: Some(now),
                last_data_date: connection.newer_data_date(applied.iter().map(|a| (a.local_date, a.steps))),
                last_new_data_at: (!report.changed.is_empty()).then_some(now),
                last_error: Some(None),
                ..SyncRecord::default()
            };
            match self.ports.connections.record_sync(user, platform, &record).await {
                Ok(()) | Err(StoreError::Disconnected) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(
            user = %user,
            source = %platform,
            applied = applied.len(),
            rejected = rejected.len(),
            changed = report.changed.len(),
            "device upload"
        );
        Ok(UploadReport { applied, rejected })
    }

    /// The phone's zone becomes the person's: the zone of "today" and of the pull windows of
    /// their connections whose provider does not say its own. Best effort: the steps are
    /// already counted, and the next upload tries again.
    async fn learn_zone(&self, user: &UserId, zone: &str) {
        for _ in 0..5 {
            let profile = match self.ports.steps.load_user_days(user, &[]).await {
                Ok(days) => days.profile,
                Err(error) => return tracing::warn!(user = %user, %error, "time zone not learned"),
            };
            if profile.time_zone.as_deref() == Some(zone) {
                return;
            }
            match self.ports.steps.set_time_zone(user, zone, profile.rev).await {
                Ok(()) => return tracing::info!(user = %user, zone, "time zone learned from the phone"),
                Err(StoreError::Conflict) => continue,
                Err(error) => return tracing::warn!(user = %user, %error, "time zone not learned"),
            }
        }
    }

    /// Binds the app installation to the person, once: like a provider account, an
    /// installation feeds one person at a time. Bound installations are kept on the phone
    /// connection, so only a new one costs the claim. Returns the installation's first
    /// countable day (the day after it last counted for someone else).
    async fn bind_install(&self, connection: &Connection, install: &str) -> Result<Option<LocalDate>, ServiceError> {
        if let Some(counts_from) = connection.installs.get(install) {
            return Ok(*counts_from);
        }
        let connections = &self.ports.connections;
        let (user, platform) = (&connection.user, connection.provider);
        let claim = match connections.claim_provider_account(platform, install, user).await {
            Ok(claim) => claim,
            Err(StoreError::AccountOwnedByAnother) => {
                tracing::warn!(user = %user, source = %platform, "upload from an installation bound to someone else");
                return Err(ServiceError::Conflict(format!(
                    "this device's {} is linked to another StepSync account: turn off {} there first",
                    platform.display_name(),
                    platform.display_name()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut bound = connection.clone();
        bound.installs.insert(install.to_owned(), claim.counts_from);
        bound.token_version += 1;
        match connections.save_connection(&bound, Some(connection.token_version)).await {
            // A racing upload changed the connection: the claim holds; the next upload records it.
            Ok(()) | Err(StoreError::Conflict) => Ok(claim.counts_from),
            Err(e) => Err(e.into()),
        }
    }

    /// The phone source's connection: created on the first upload, and active again after the
    /// person turned it off and the app uploads anew (the upload is the person's act). Returns
    /// it, and whether it was written now (new, back on, or a new zone).
    async fn ensure_connection(
        &self,
        user: &UserId,
        platform: Provider,
        zone: &str,
        now: Timestamp,
    ) -> Result<(Connection, bool), ServiceError> {
        let connections = &self.ports.connections;
        let existing = connections.get_connection(user, platform).await?;
        let fresh = Connection { time_zone: Some(zone.to_owned()), ..Connection::new(user.clone(), platform, now) };
        let (result, written) = match existing {
            None => (connections.create_connection(&fresh).await, fresh),
            Some(c) if c.status == ConnectionStatus::Active && c.time_zone.as_deref() == Some(zone) => {
                return Ok((c, false));
            }
            Some(c) => {
                let updated = Connection {
                    status: ConnectionStatus::Active,
                    time_zone: Some(zone.to_owned()),
                    token_version: c.token_version + 1,
                    ..c.clone()
                };
                (connections.save_connection(&updated, Some(c.token_version)).await, updated)
            }
        };
        match result {
            Ok(()) => Ok((written, true)),
            // A concurrent upload made or changed it: either way there is one now.
            Err(StoreError::AlreadyExists(_)) | Err(StoreError::Conflict) => {
                let now_stored = connections.get_connection(user, platform).await?;
                Ok((now_stored.ok_or(StoreError::NotFound("connection"))?, true))
            }
            Err(e) => Err(e.into()),
        }
    }
}
