//! Syncing: one connection (a `SyncRequested`), a shard's due connections (bounded
//! concurrency, stopping before the deadline), the scheduler's tick, and "Sync steps" with its
//! cooldown and inline deadline.

use super::standings::{Standing, Standings};
use super::{Ports, ServiceError};
use crate::domain::{
    ChallengeId, Connection, ConnectionStatus, DUE_SHARDS, DueSlot, FailureCode, LastError, LocalDate, Provider,
    UploadWindow, UserId, local_today,
};
use crate::engine::phase_index;
use crate::engine::{Fetch, SyncEngine, SyncError, SyncOutcome};
use crate::events::{Event, SyncReason, SyncRequested, SyncShard};
use crate::ports::StoreError;
use crate::ports::{Fenced, FetchFence, PartialPhase, SweepCursor};
use futures::{SinkExt, StreamExt};
use jiff::tz::TimeZone;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Due connections read per query of a shard.
const SHARD_PAGE: usize = 100;
/// How much earlier than its clock says a webhook fetch is recorded to start: the margin for
/// the clocks of two Lambda hosts (Amazon Time Sync keeps them within a millisecond or so).
const FENCE_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_millis(100);
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

    /// Reads what the connection's source says was uploaded in `window` (Garmin's notices).
    pub async fn sync_upload(&self, connection: &Connection, window: &UploadWindow) -> Result<SyncOutcome, SyncError> {
        let tz = self.person_zone(connection).await?;
        self.engine.sync_fetch(connection, &tz, Fetch::Uploaded(window)).await
    }

    /// The zone of a connection's days: the provider's own where it says it (Google Health's
    /// settings), else the person's (their phone's), else UTC. Only a connection without its
    /// own zone costs the profile read.
    async fn person_zone(&self, connection: &Connection) -> Result<TimeZone, SyncError> {
        if connection.time_zone.is_some() || self.engine.providers.source(connection.provider).is_none() {
            return Ok(connection.tz());
        }
        Ok(self.ports.steps.load_user_days(&connection.user, &[]).await?.profile.zone())
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

    /// One connection's sync. A webhook's costs one write in all, its fence, and no notice is
    /// lost. The argument: let a notice arrive at `n` and name dates `D`. Its event's fence (one
    /// conditional write on the connection, `ConnectionStore::fence_fetch`) either
    /// - goes ahead, and this sync's fetch of `D` starts after the write, so after `n`; or
    /// - finds a fetch of a superset of `D` recorded as started at or after `n` (recorded a
    ///   little early, `FENCE_SKEW`): that fetch sees the data `n` announced. It either ends
    ///   well, or it recorded its failure and backs off to a retry that pulls the window again,
    ///   or its worker died and Lambda retries its event, whose fence goes ahead again (same
    ///   notice id) or is itself covered by a later-started fetch: by induction on the fence
    ///   time, the last in that chain fetches. Only an event that exhausts its retries lands
    ///   in the dead-letter queue, and the next reconciliation pull covers its days.
    ///
    /// So: a notice before the fetch starts is covered by it; one during or after it (its
    /// `n` later than the recorded start) gets a fetch of its own. The write also answers the
    /// connection, so the sync reads nothing else before its days.
    async fn sync_requested(&self, request: &SyncRequested) -> Result<WorkerResult, WorkerError> {
        if self.engine.providers.source(request.provider).is_none() {
            return Ok(WorkerResult::Skipped { why: format!("{} is not pulled by the server", request.provider) });
        }
        let notice = request.noticed_at.zip(request.notice_id.clone());
        let found = match (request.reason, request.start, request.end, notice) {
            (SyncReason::Webhook, Some(start), Some(end), Some((noticed_at, notice_id))) => {
                // The fetch starts after this write; recorded a little early so a worker clock
                // ahead of the webhook's never makes a fetch look later than it began.
                let now = self.ports.clock.now();
                let fence = FetchFence { noticed_at, notice_id, start, end, now: now - FENCE_SKEW };
                let connections = &self.ports.connections;
                match connections.fence_fetch(&request.user, request.provider, &fence).await.map_err(retryable)? {
                    Fenced::Fetch(connection) => Some(*connection),
                    Fenced::NoConnection => None,
                    Fenced::Covered => {
                        tracing::info!(user = %request.user, provider = %request.provider, "notice covered by a later fetch");
                        return Ok(WorkerResult::Skipped { why: "a fetch begun after the notice covers it".into() });
                    }
                }
            }
            _ => self.ports.connections.get_connection(&request.user, request.provider).await.map_err(retryable)?,
        };
        let Some(connection) = found else {
            return Ok(WorkerResult::Skipped { why: "no such connection".into() });
        };
        let outcome = match &request.upload {
            Some(window) => self.sync_upload(&connection, window).await,
            None => self.sync_connection(&connection, request.start, request.end).await,
        };
        let result = match outcome {
            Ok(SyncOutcome::Synced(report)) => WorkerResult::Synced {
                changed: report.changed.len(),
                unchanged: report.unchanged,
                rejected: report.rejected.len(),
            },
            Ok(SyncOutcome::Skipped(status)) => {
                WorkerResult::Skipped { why: format!("connection is {}", status.as_str()) }
            }
            // An upload window is named by one notice only: a failure that may pass is handed
            // back as the event's (Lambda retries it, then its dead-letter queue keeps it), so
            // the window is read again rather than lost.
            Ok(SyncOutcome::Failed { error, .. })
                if request.upload.is_some()
                    && matches!(error.code, FailureCode::RateLimited | FailureCode::ProviderUnavailable) =>
            {
                return Err(WorkerError::Retryable(format!("the upload window was not read: {}", error.code.as_str())));
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

    /// Sweeps a shard: first its connections with a due time (backing off, newly connected),
    /// then, per cycle, every phase begun since its cursor (at most one whole cycle: a late or
    /// missed tick delays, never skips). Pages are read ahead while the syncs of the current one
    /// run, so a page's tail never leaves the worker short of work. A healthy connection costs
    /// its reads and nothing more; each cycle's cursor is written once at the end: the phases
    /// finished (and when each began, which `Status` reads as those connections' last
    /// success), and where a phase stopped at the deadline, so the rest stays due.
    async fn sweep(&self, shard: &SyncShard, stop_at: Option<Instant>) -> Result<WorkerResult, WorkerError> {
        let concurrency = self.settings.worker_concurrency as usize;
        let connections = self.ports.connections.as_ref();
        let now = self.ports.clock.now();
        let current = phase_index(now);
        let mut plans = Vec::new();
        for cycle in self.engine.schedule.cycles() {
            let cursor = connections.sweep_cursor(shard.shard, cycle).await.map_err(retryable)?.unwrap_or_default();
            plans.push(CyclePlan::new(cycle, cursor, current, now));
        }

        let (sender, receiver) = futures::channel::mpsc::channel::<Work>(SHARD_PAGE);
        let sent = AtomicUsize::new(0);
        let producer = async {
            let mut sender = sender;
            let mut after: Option<Connection> = None;
            loop {
                let page = connections.due_connections(shard.shard, now, after.as_ref(), SHARD_PAGE).await?;
                let full = page.len() == SHARD_PAGE;
                after = page.last().cloned();
                for connection in page {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if sender.send(Work::Due(connection)).await.is_err() {
                        return Ok(false);
                    }
                }
                if !full {
                    break;
                }
            }
            for plan in &plans {
                for &index in &plan.phases {
                    let slot = plan.slot(shard.shard, index);
                    let mut after = plan.resume_after(index);
                    loop {
                        let page = connections.slot_connections(slot, after.as_ref(), SHARD_PAGE).await?;
                        let full = page.len() == SHARD_PAGE;
                        after = page.last().map(|c| (c.user.clone(), c.provider));
                        for connection in page {
                            sent.fetch_add(1, Ordering::Relaxed);
                            if sender.send(Work::Slot { cycle: plan.cycle, index, connection }).await.is_err() {
                                return Ok(false);
                            }
                        }
                        if !full {
                            break;
                        }
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    if sender.send(Work::PhaseEnd { cycle: plan.cycle, index }).await.is_err() {
                        return Ok(false);
                    }
                }
            }
            Ok::<bool, StoreError>(true)
        };
        let taken = AtomicUsize::new(0);
        let consumer = {
            let mut attempted: HashSet<(UserId, Provider)> = HashSet::new();
            let mut seq = 0usize;
            let taken = &taken;
            receiver
                // No new connection starts after the deadline; those started finish.
                .take_while(move |_| std::future::ready(!out_of_time(stop_at)))
                .map(move |work| {
                    taken.fetch_add(1, Ordering::Relaxed);
                    seq += 1;
                    let fresh = match &work {
                        Work::Due(c) | Work::Slot { connection: c, .. } => {
                            attempted.insert((c.user.clone(), c.provider))
                        }
                        Work::PhaseEnd { .. } => true,
                    };
                    let seq = seq;
                    async move {
                        let ended = match &work {
                            Work::PhaseEnd { .. } => Ended::PhaseEnd,
                            // Synced earlier in this sweep (due, then back in its slot).
                            _ if !fresh => Ended::Already,
                            Work::Due(connection) | Work::Slot { connection, .. } => self.sweep_one(connection).await,
                        };
                        (seq, work, ended)
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<_>>()
        };
        let (produced, mut results) = futures::join!(producer, consumer);
        results.sort_by_key(|(seq, ..)| *seq);

        let (mut synced, mut failed) = (0, 0);
        for (_, _, ended) in &results {
            match ended {
                Ended::Synced => synced += 1,
                Ended::Failed | Ended::Unrecorded => failed += 1,
                Ended::Already | Ended::PhaseEnd => {}
            }
        }
        for plan in &plans {
            let cursor = plan.advanced(&results);
            if cursor != plan.cursor
                && let Err(error) = connections.save_sweep_cursor(shard.shard, plan.cycle, &cursor).await
            {
                // The phases stay due: the next tick sweeps them again (no step counted twice).
                tracing::warn!(%error, shard = shard.shard, cycle = plan.cycle, "sweep cursor not saved");
            }
        }
        let stopped_early = match &produced {
            Ok(finished) => !finished || taken.load(Ordering::Relaxed) < sent.load(Ordering::Relaxed),
            Err(_) => false,
        };
        tracing::info!(shard = shard.shard, synced, failed, stopped_early, "shard sweep finished");
        produced.map_err(retryable)?;
        Ok(WorkerResult::Shard { synced, failed, stopped_early })
    }

    /// One connection of a sweep. An error of ours records nothing by itself: it is recorded
    /// here, so the connection backs off instead of staying due.
    async fn sweep_one(&self, connection: &Connection) -> Ended {
        match self.sync_connection(connection, None, None).await {
            Ok(SyncOutcome::Synced(_)) => Ended::Synced,
            Ok(_) => Ended::Failed,
            Err(error) => match self.engine.record_error(connection, &error).await {
                Ok(()) => Ended::Failed,
                Err(unrecorded) => {
                    tracing::warn!(error = %unrecorded, "a failed sync could not be recorded");
                    Ended::Unrecorded
                }
            },
        }
    }

    /// The scheduler's tick: one `SyncShard` per shard with due work (a connection due by time,
    /// or a phase begun since the shard's cursor that has connections); returns those shards.
    /// A quiet shard costs a few small reads and nothing more.
    pub async fn tick(&self) -> Result<Vec<u16>, ServiceError> {
        let now = self.ports.clock.now();
        let current = phase_index(now);
        let connections = self.ports.connections.as_ref();
        let mut busy = Vec::new();
        'shards: for shard in 0..self.engine.schedule.shards.max(DUE_SHARDS) {
            if !connections.due_connections(shard, now, None, 1).await?.is_empty() {
                busy.push(shard);
                continue;
            }
            for cycle in self.engine.schedule.cycles() {
                let cursor = connections.sweep_cursor(shard, cycle).await?.unwrap_or_default();
                let plan = CyclePlan::new(cycle, cursor, current, now);
                for &index in &plan.phases {
                    let after = plan.resume_after(index);
                    if !connections.slot_connections(plan.slot(shard, index), after.as_ref(), 1).await?.is_empty() {
                        busy.push(shard);
                        continue 'shards;
                    }
                }
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
                    queued.push(Event::SyncRequested(SyncRequested::whole(
                        user.clone(),
                        connection.provider,
                        SyncReason::Manual,
                    )));
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

/// One unit of a sweep, in page order.
enum Work {
    /// A connection with a due time (backing off, or new and due now).
    Due(Connection),
    /// A connection of phase `index` of `cycle`.
    Slot { cycle: u32, index: i64, connection: Connection },
    /// Phase `index` of `cycle` has no more connections.
    PhaseEnd { cycle: u32, index: i64 },
}

/// How one unit of a sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Synced,
    /// Failed, skipped or superseded, and recorded as such where there was anything to record.
    Failed,
    /// Failed, and the failure could not be recorded: its phase is not finished.
    Unrecorded,
    /// Already synced earlier in the same sweep.
    Already,
    PhaseEnd,
}

/// What one sweep does for one cycle: the phases begun since the cursor, oldest first.
struct CyclePlan {
    cycle: u32,
    cursor: SweepCursor,
    phases: Vec<i64>,
    /// When this sweep began (the start of every phase it finishes, unless resumed).
    now: jiff::Timestamp,
}

impl CyclePlan {
    fn new(cycle: u32, cursor: SweepCursor, current: i64, now: jiff::Timestamp) -> Self {
        // No cursor yet (a new shard, a first deploy): nobody sits in a slot before their
        // first sync, which comes through the due-time partition, so sweeping starts now.
        let oldest = current - i64::from(cycle) + 1;
        let from = cursor.through.map_or(current, |through| (through + 1).max(oldest));
        Self { cycle, cursor, phases: (from..=current).collect(), now }
    }

    fn slot(&self, shard: u16, index: i64) -> DueSlot {
        let phase = u32::try_from(index.rem_euclid(i64::from(self.cycle))).unwrap_or(0);
        DueSlot { shard, cycle: self.cycle, phase }
    }

    /// Where phase `index` resumes: after the connection a stopped sweep of it reached.
    fn resume_after(&self, index: i64) -> Option<(UserId, Provider)> {
        self.cursor.partial.as_ref().filter(|p| p.index == index).map(|p| p.after.clone())
    }

    /// The cursor after this sweep's `results` (in page order): each phase finished with every
    /// failure recorded moves `through` on and stamps when its sweep began; the first one not
    /// finished keeps how far it got (connections before it all ended, failures recorded).
    fn advanced(&self, results: &[(usize, Work, Ended)]) -> SweepCursor {
        let mut cursor = self.cursor.clone();
        for &index in &self.phases {
            let resumed = self.cursor.partial.as_ref().filter(|p| p.index == index);
            let started = resumed.map_or(self.now, |p| p.started_at);
            let mut reached: Option<(UserId, Provider)> = None;
            let mut finished = false;
            for (_, work, ended) in results {
                match work {
                    Work::Slot { cycle, index: i, connection } if *cycle == self.cycle && *i == index => {
                        if *ended == Ended::Unrecorded {
                            break;
                        }
                        reached = Some((connection.user.clone(), connection.provider));
                    }
                    Work::PhaseEnd { cycle, index: i } if *cycle == self.cycle && *i == index => {
                        finished = true;
                        break;
                    }
                    _ => {}
                }
            }
            if finished {
                cursor.through = Some(index);
                cursor.partial = None;
                cursor.swept.insert(self.slot(0, index).phase, started);
                continue;
            }
            if let Some(after) = reached {
                cursor.partial = Some(PartialPhase { index, after, started_at: started });
            }
            break;
        }
        cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn slot_work(index: i64, name: &str) -> Work {
        let connection = Connection::new(user(name), Provider::GoogleHealth, "2026-11-25T18:00:00Z".parse().unwrap());
        Work::Slot { cycle: 24, index, connection }
    }

    /// A phase stopped part-way keeps how far it got; one whose every connection ended, with
    /// each failure recorded, moves the cursor on; an unrecorded failure stops it there.
    #[test]
    fn the_cursor_moves_over_finished_phases_and_keeps_a_stopped_ones_place() {
        let now: jiff::Timestamp = "2026-11-25T18:01:00Z".parse().unwrap();
        let current = phase_index(now);
        let cursor = SweepCursor { through: Some(current - 3), ..SweepCursor::default() };
        let plan = CyclePlan::new(24, cursor, current, now);
        assert_eq!(plan.phases, [current - 2, current - 1, current]);
        let results = vec![
            (1, slot_work(current - 2, "a"), Ended::Synced),
            (2, Work::PhaseEnd { cycle: 24, index: current - 2 }, Ended::PhaseEnd),
            (3, slot_work(current - 1, "b"), Ended::Failed),
            (4, slot_work(current - 1, "c"), Ended::Synced),
        ];
        let advanced = plan.advanced(&results);
        assert_eq!(advanced.through, Some(current - 2));
        assert_eq!(advanced.swept.get(&(((current - 2).rem_euclid(24)) as u32)), Some(&now));
        let partial = advanced.partial.clone().expect("stopped in a phase");
        assert_eq!((partial.index, partial.after), (current - 1, (user("c"), Provider::GoogleHealth)));

        let resumed = CyclePlan::new(24, advanced, current, now);
        assert_eq!(resumed.phases[0], current - 1);
        assert_eq!(resumed.resume_after(current - 1), Some((user("c"), Provider::GoogleHealth)));

        let unrecorded = vec![
            (1, slot_work(current - 2, "a"), Ended::Synced),
            (2, slot_work(current - 2, "b"), Ended::Unrecorded),
            (3, slot_work(current - 2, "c"), Ended::Synced),
            (4, Work::PhaseEnd { cycle: 24, index: current - 2 }, Ended::PhaseEnd),
        ];
        let held = plan.advanced(&unrecorded);
        assert_eq!(held.through, Some(current - 3), "not finished: b's failure is not on record");
        assert_eq!(held.partial.map(|p| p.after), Some((user("a"), Provider::GoogleHealth)));
    }
}
