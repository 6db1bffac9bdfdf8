//! Syncing: one connection (a `SyncRequested`), a shard's due connections (bounded
//! concurrency, stopping before the deadline), the scheduler's tick, and "Sync steps" with its
//! cooldown and inline deadline.

use super::standings::{Standing, Standings};
use super::{Ports, ServiceError, coalesce_key};
use crate::domain::{
    ChallengeId, Connection, ConnectionStatus, DUE_SHARDS, FailureCode, LastError, LocalDate, Provider, UserId,
    local_today,
};
use crate::engine::{SyncEngine, SyncError, SyncOutcome};
use crate::events::{Event, SyncReason, SyncRequested, SyncShard};
use crate::ports::StoreError;
use futures::StreamExt;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Due connections read per query of a shard.
const SHARD_PAGE: usize = 100;
/// How long a shard sweep's claim lasts: the sync-worker's timeout (template.yaml, 300 s), so
/// a worker that dies mid-shard frees the shard by the time its invocation could have ended.
const SHARD_SWEEP_LEASE: Duration = Duration::from_secs(300);

/// What syncing needs to know from configuration.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// The default pull window, in local days.
    pub window_days: u32,
    /// Connections one worker syncs at once.
    pub worker_concurrency: u32,
    /// One "Sync steps" per person per this long.
    pub manual_cooldown: Duration,
    /// How long "Sync steps" syncs inline before handing the rest to the worker.
    pub manual_deadline: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the event is not one this worker handles: {0}")]
    BadEvent(String),
    /// Returned to Lambda, which retries the event, then sends it to the dead-letter queue.
    #[error("sync failed and may succeed on retry: {0}")]
    Retryable(String),
}

/// What the worker reports for one event (also its log line).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WorkerResult {
    Synced {
        changed: usize,
        unchanged: usize,
        rejected: usize,
    },
    Skipped {
        why: String,
    },
    Failed {
        code: FailureCode,
    },
    /// A shard's sweep: how many connections it synced, and whether it stopped for time.
    Shard {
        synced: usize,
        failed: usize,
        stopped_early: bool,
    },
}

/// One connection's part in "Sync steps".
#[derive(Debug, Serialize)]
pub struct ConnectionSync {
    pub provider: Provider,
    /// `synced`, `queued` (still running: the worker finishes it), `failed` or `skipped`.
    pub outcome: &'static str,
    pub days_changed: usize,
    /// The new daily totals of the days that changed.
    pub days: Vec<DayTotal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<LastError>,
}

#[derive(Debug, Serialize)]
pub struct DayTotal {
    pub local_date: LocalDate,
    pub steps: u32,
}

/// What "Sync steps" did: each connection, the caller's standing, and whether part of it
/// was handed to the worker.
#[derive(Debug, Serialize)]
pub struct ManualSync {
    pub connections: Vec<ConnectionSync>,
    pub standing: Option<Standing>,
    pub message: Option<&'static str>,
    #[serde(skip)]
    pub queued: bool,
}

pub struct Syncing {
    pub ports: Ports,
    pub engine: Arc<SyncEngine>,
    pub settings: SyncSettings,
}

fn out_of_time(stop_at: Option<Instant>) -> bool {
    stop_at.is_some_and(|at| Instant::now() >= at)
}

fn retryable(e: StoreError) -> WorkerError {
    WorkerError::Retryable(e.to_string())
}

fn retryable_sync(e: &SyncError) -> WorkerError {
    WorkerError::Retryable(e.to_string())
}

impl Syncing {
    /// Syncs one connection over `start..=end`, by default the last `window_days` local days.
    pub async fn sync_connection(
        &self,
        connection: &Connection,
        start: Option<LocalDate>,
        end: Option<LocalDate>,
    ) -> Result<SyncOutcome, SyncError> {
        let tz = self.person_zone(connection).await?;
        let today = local_today(self.ports.clock.now(), &tz);
        let end = end.unwrap_or(today);
        let start = start.unwrap_or_else(|| end.add_days(1 - self.settings.window_days as i32)).min(end);
        self.engine.sync_connection(connection, &tz, start, end).await
    }

    /// The zone of a connection's days: the provider's own where it says it (Google Health's
    /// settings), else the person's (their phone's), else UTC. Only a connection without its
    /// own zone costs the profile read.
    async fn person_zone(&self, connection: &Connection) -> Result<TimeZone, SyncError> {
        if connection.time_zone.is_some() || self.engine.providers.source(connection.provider).is_none() {
            return Ok(connection.tz());
        }
        let profile = self.ports.steps.load_user_days(&connection.user, &[]).await?.profile;
        Ok(profile.time_zone.as_deref().and_then(|z| TimeZone::get(z).ok()).unwrap_or(TimeZone::UTC))
    }

    /// The worker's event: one `SyncRequested` or one `SyncShard`. `stop_at` is the Lambda's
    /// deadline less a margin: no new connection starts after it.
    pub async fn handle_event(&self, event: Event, stop_at: Option<Instant>) -> Result<WorkerResult, WorkerError> {
        match event {
            Event::SyncRequested(request) => self.sync_requested(&request).await,
            Event::SyncShard(shard) => self.sync_shard(&shard, stop_at).await,
            other => Err(WorkerError::BadEvent(format!("{} is not handled here", other.detail_type()))),
        }
    }

    async fn sync_requested(&self, request: &SyncRequested) -> Result<WorkerResult, WorkerError> {
        let Some(connection) =
            self.ports.connections.get_connection(&request.user, request.provider).await.map_err(retryable)?
        else {
            return Ok(WorkerResult::Skipped { why: "no such connection".into() });
        };
        if self.engine.providers.source(request.provider).is_none() {
            return Ok(WorkerResult::Skipped { why: format!("{} is not pulled by the server", request.provider) });
        }
        if let (SyncReason::Webhook, Some(start), Some(end)) = (request.reason, request.start, request.end) {
            for date in start.through(end) {
                let key = coalesce_key(request.provider, &request.user, date);
                self.ports.ephemeral.release_claim(&key).await.map_err(retryable)?;
            }
        }
        let outcome = self.sync_connection(&connection, request.start, request.end).await;
        let result = match outcome {
            Ok(SyncOutcome::Synced(report)) => WorkerResult::Synced {
                changed: report.changed.len(),
                unchanged: report.unchanged,
                rejected: report.rejected.len(),
            },
            Ok(SyncOutcome::Skipped(status)) => {
                WorkerResult::Skipped { why: format!("connection is {}", status.as_str()) }
            }
            Ok(SyncOutcome::Failed { error, .. }) => WorkerResult::Failed { code: error.code },
            Err(SyncError::Tokens) => {
                self.engine.record_error(&connection, &SyncError::Tokens).await.map_err(|e| retryable_sync(&e))?;
                WorkerResult::Failed { code: FailureCode::TokensUnreadable }
            }
            // Refused by the store itself: a retry fails the same way, so the event is not retried.
            Err(e) if !e.is_retryable() => {
                tracing::error!(error = %e, "sync refused; not retried");
                self.engine.record_error(&connection, &e).await.map_err(|e| retryable_sync(&e))?;
                WorkerResult::Failed { code: FailureCode::SyncFailed }
            }
            Err(e) => return Err(WorkerError::Retryable(e.to_string())),
        };
        tracing::info!(user = %request.user, provider = %request.provider, ?result, "sync finished");
        Ok(result)
    }

    /// One sweep of a shard at a time: the same `SyncShard` delivered twice at once, or a
    /// sweep still running when the next tick's begins, would fetch every due connection twice
    /// (counted once, but twice the provider calls and quota). A claim on the shard, given back
    /// at the end, decides; a worker that dies leaves it to expire with the worker's timeout.
    async fn sync_shard(&self, shard: &SyncShard, stop_at: Option<Instant>) -> Result<WorkerResult, WorkerError> {
        let lease = format!("sweep#{}", shard.shard);
        let now = self.ports.clock.now();
        let claimed = match self.ports.ephemeral.claim_once(&lease, now, SHARD_SWEEP_LEASE).await {
            Ok(claimed) => claimed,
            Err(error) => {
                // It may have been taken all the same (a timeout after the write): give it back,
                // or the retry of this event would skip the shard until the claim ran out.
                let _ = self.ports.ephemeral.release_claim(&lease).await;
                return Err(retryable(error));
            }
        };
        if !claimed {
            tracing::info!(shard = shard.shard, "shard already being swept: this delivery skips it");
            return Ok(WorkerResult::Skipped { why: format!("shard {} is being swept already", shard.shard) });
        }
        let result = self.sweep(shard, stop_at).await;
        if let Err(error) = self.ports.ephemeral.release_claim(&lease).await {
            tracing::warn!(%error, shard = shard.shard, "shard sweep claim not given back; it expires by itself");
        }
        result
    }

    async fn sweep(&self, shard: &SyncShard, stop_at: Option<Instant>) -> Result<WorkerResult, WorkerError> {
        let concurrency = self.settings.worker_concurrency as usize;
        let mut attempted: HashSet<(UserId, Provider)> = HashSet::new();
        let (mut synced, mut failed, mut stopped_early) = (0, 0, false);
        loop {
            if out_of_time(stop_at) {
                stopped_early = true;
                break;
            }
            let now = self.ports.clock.now();
            let due = self.ports.connections.due_connections(shard.shard, now, SHARD_PAGE).await.map_err(retryable)?;
            // A connection whose sync failed without moving its due time is tried once per sweep.
            let fresh: Vec<Connection> =
                due.into_iter().filter(|c| attempted.insert((c.user.clone(), c.provider))).collect();
            if fresh.is_empty() {
                break;
            }
            let results: Vec<Option<bool>> = futures::stream::iter(fresh)
                .map(|connection| async move {
                    if out_of_time(stop_at) {
                        return None;
                    }
                    let outcome = self.sync_connection(&connection, None, None).await;
                    // An error of ours records nothing by itself: record it, so the
                    // connection's due time moves and the next page is not the same one.
                    if let Err(error) = &outcome
                        && let Err(unrecorded) = self.engine.record_error(&connection, error).await
                    {
                        tracing::warn!(error = %unrecorded, "a failed sync could not be recorded");
                    }
                    Some(matches!(outcome, Ok(SyncOutcome::Synced(_))))
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for result in results {
                match result {
                    Some(true) => synced += 1,
                    Some(false) => failed += 1,
                    None => stopped_early = true,
                }
            }
            if stopped_early {
                break;
            }
        }
        tracing::info!(shard = shard.shard, synced, failed, stopped_early, "shard sweep finished");
        Ok(WorkerResult::Shard { synced, failed, stopped_early })
    }

    /// The scheduler's tick: one `SyncShard` per shard with due work; returns those shards.
    /// A shard with nothing due costs one small query and nothing more.
    pub async fn tick(&self) -> Result<Vec<u16>, ServiceError> {
        let now = self.ports.clock.now();
        let mut busy = Vec::new();
        for shard in 0..DUE_SHARDS {
            if !self.ports.connections.due_connections(shard, now, 1).await?.is_empty() {
                busy.push(shard);
            }
        }
        let events: Vec<Event> = busy.iter().map(|&shard| Event::SyncShard(SyncShard { shard, tick: now })).collect();
        self.ports
            .publisher
            .publish(&events)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("publishing shard events failed: {e}")))?;
        tracing::info!(shards = ?busy, "tick");
        Ok(busy)
    }

    /// "Sync steps": every active connection the server pulls, inline until the deadline,
    /// the rest handed to the worker; one per person per cooldown (one conditional write
    /// decides, so two taps at once still make one sync); with the caller's standing in
    /// `challenge` when asked.
    pub async fn sync_now(&self, user: &UserId, challenge: Option<&ChallengeId>) -> Result<ManualSync, ServiceError> {
        // An unknown challenge is refused before the cooldown is spent on it.
        if let Some(id) = challenge
            && self.ports.challenges.get_challenge(id).await?.is_none()
        {
            return Err(ServiceError::NotFound(format!("challenge {id}")));
        }
        let now = self.ports.clock.now();
        let cooldown = self.settings.manual_cooldown;
        let key = format!("manual#{user}");
        if !self.ports.ephemeral.claim_once(&key, now, cooldown).await? {
            let until = self.ports.ephemeral.claim_expiry(&key).await?;
            let wait =
                until.map_or(cooldown.as_secs(), |u| u.as_second().saturating_sub(now.as_second()).max(1) as u64);
            return Err(ServiceError::TooSoon {
                message: format!("you synced moments ago; try again in {wait} seconds"),
                retry_after: Duration::from_secs(wait),
            });
        }

        let connections: Vec<Connection> = self
            .ports
            .connections
            .list_connections(user)
            .await?
            .into_iter()
            .filter(|c| c.status == ConnectionStatus::Active && self.engine.providers.source(c.provider).is_some())
            .collect();
        let deadline = self.settings.manual_deadline;
        let runs = connections.iter().map(|c| tokio::time::timeout(deadline, self.sync_connection(c, None, None)));
        let results = futures::future::join_all(runs).await;

        let mut answers = Vec::new();
        let mut queued = Vec::new();
        for (connection, result) in connections.iter().zip(results) {
            let answer = |outcome, days: Vec<DayTotal>, error| ConnectionSync {
                provider: connection.provider,
                outcome,
                days_changed: days.len(),
                days,
                error,
            };
            answers.push(match result {
                // Past the deadline the sync is dropped between atomic writes; the worker redoes it.
                Err(_elapsed) => {
                    queued.push(Event::SyncRequested(SyncRequested {
                        user: user.clone(),
                        provider: connection.provider,
                        reason: SyncReason::Manual,
                        start: None,
                        end: None,
                    }));
                    answer("queued", vec![], None)
                }
                Ok(Ok(SyncOutcome::Synced(report))) => answer(
                    "synced",
                    report.changed.iter().map(|c| DayTotal { local_date: c.date, steps: c.new_total }).collect(),
                    None,
                ),
                Ok(Ok(SyncOutcome::Failed { error, .. })) => answer("failed", vec![], Some(error)),
                Ok(Ok(SyncOutcome::Skipped(_))) => answer("skipped", vec![], None),
                Ok(Err(e)) => {
                    tracing::warn!(user = %user, provider = %connection.provider, error = %e, "manual sync failed");
                    if let Err(unrecorded) = self.engine.record_error(connection, &e).await {
                        tracing::warn!(error = %unrecorded, "a failed sync could not be recorded");
                    }
                    answer("failed", vec![], Some(crate::engine::error_outcome(connection.provider, &e)))
                }
            });
        }
        if !queued.is_empty() {
            self.ports.publisher.publish(&queued).await.map_err(ServiceError::internal)?;
        }
        let standing = match challenge {
            Some(id) => Standings { challenges: self.ports.challenges.as_ref() }.standing(id, user).await?,
            None => None,
        };
        let message =
            (!queued.is_empty()).then_some("Some sources are still syncing; their steps will appear in a minute.");
        tracing::info!(user = %user, connections = answers.len(), queued = queued.len(), "manual sync");
        Ok(ManualSync { connections: answers, standing, message, queued: !queued.is_empty() })
    }
}
