//! Freshness: a provider notification → the new total visible through the leaderboard API,
//! on the local stack (real handlers behind the HttpApi routes, the in-process bus handing
//! `SyncRequested` to the real `sync-worker`, embedded DynamoDB, fake Google Health).

use crate::error::BenchError;
use crate::stats::Summary;
use futures::StreamExt;
use serde::Serialize;
use std::time::{Duration, Instant};
use stepsync::domain::{Challenge, ChallengeId, Provider, UserId, local_today};

use stepsync_local::demo::{google_tokens, store_connection};
use stepsync_local::fakes::google_health::Notification;
use stepsync_local::stack::{LocalStack, StackOptions};

/// People the notifications rotate over (a person's next notice waits for the last one's
/// total, so coalescing never merges two).
const PEOPLE: usize = 20;
const POLL_EVERY: Duration = Duration::from_millis(2);
/// A total not visible after this is a failure, not a slow sample.
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);
/// Load connections seeded at once.
const SEED_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    pub notifications: usize,
    pub people: usize,
    pub poll_every_ms: f64,
    /// Notification sent → the person's new total in `GET /v1/challenges/{id}/leaderboard`.
    pub visible_ms: Summary,
    /// The webhook request alone (signed POST → 204).
    pub webhook_ms: Summary,
    /// The same, timed while a sweep of many connections runs on the same stack.
    pub under_load: Option<UnderLoad>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnderLoad {
    /// Connections the sweep syncs (each with one changed day, in a challenge of their own).
    pub connections: usize,
    /// From the first tick to nothing due.
    pub sweep_ms: f64,
    pub sweep_per_second: f64,
    /// Notifications timed while the sweep ran (the loop stops when it ends).
    pub notifications: usize,
    pub visible_ms: Summary,
    pub webhook_ms: Summary,
}

fn failed(step: &'static str) -> impl Fn(String) -> BenchError {
    move |why| BenchError::measurement(step, why)
}

/// Times `notifications` one at a time on an idle stack, then (when `load` > 0) as many as fit
/// while a sweep of `load` connections runs on the same stack.
pub async fn run(notifications: usize, load: usize, progress: &dyn Fn(&str)) -> Result<Freshness, BenchError> {
    // No change stream: the freshness path is the webhook, the worker and its count, and the
    // load's tens of thousands of writes would each pay dynoxide's stream scan
    // (`stepsync_local::table::Stream::Off`).
    let options = StackOptions {
        tick: Duration::from_secs(24 * 3600),
        stream: stepsync_local::table::Stream::Off,
        ..StackOptions::default()
    };
    let stack = LocalStack::start(options, |step| progress(&format!("  local stack: {step}")))
        .await
        .map_err(|e| BenchError::setup("the local stack", e))?;
    let result = measure(&stack, notifications, load, progress).await;
    stack.stop().await;
    result
}

/// One of the people the notifications rotate over: account, token, steps so far.
type Walker = (String, String, u64);

async fn measure(
    stack: &LocalStack,
    notifications: usize,
    load: usize,
    progress: &dyn Fn(&str),
) -> Result<Freshness, BenchError> {
    let app = &stack.app;
    let now = app.services.ports.clock.now();
    let today = local_today(now, &jiff::tz::TimeZone::UTC);
    let id = ChallengeId::parse("bench-walk").map_err(|e| BenchError::setup("freshness", e))?;
    let challenge = Challenge::new(id.clone(), "Bench walk", today.add_days(-6), today.add_days(21), "UTC", 3)
        .map_err(|e| BenchError::setup("freshness", e))?;
    app.services.ports.challenges.create_challenge(&challenge).await.map_err(|e| BenchError::setup("freshness", e))?;
    let challenges = app.services.challenges();
    let mut people: Vec<Walker> = Vec::new();
    for i in 0..PEOPLE {
        let user = UserId::parse(&format!("fresh-{i:02}")).map_err(|e| BenchError::setup("freshness", e))?;
        let account = format!("fresh-account-{i:02}");
        let tokens = google_tokens(&stack.google, &account, now + jiff::SignedDuration::from_hours(24));
        store_connection(app, &user, Provider::GoogleHealth, &account, Some(&tokens), None, "UTC")
            .await
            .map_err(|e| BenchError::setup("freshness", e))?;
        challenges.join(&id, &user, now).await.map_err(|e| BenchError::setup("freshness", e))?;
        let token = stack.token(user.as_str(), false);
        people.push((account, token, 0u64));
    }
    let timer = Timer::new(stack, &id)?;
    let (visible, webhook) = timer.notify(&mut people, notifications, &|| false, progress).await?;
    let summary = |samples: &[f64]| Summary::of(samples).ok_or_else(|| failed("freshness")("no samples".into()));
    let under_load = match load {
        0 => None,
        load => Some(under_load(stack, &timer, &mut people, notifications, load, progress).await?),
    };
    Ok(Freshness {
        notifications,
        people: PEOPLE,
        poll_every_ms: POLL_EVERY.as_secs_f64() * 1e3,
        visible_ms: summary(&visible)?,
        webhook_ms: summary(&webhook)?,
        under_load,
    })
}

/// Seeds `load` connections due now (each with a changed day, in a challenge of their own so
/// the timed leaderboard stays small), starts the sweep as the scheduler does (ticks publishing
/// `SyncShard` events, each handed to its own `sync-worker`), and times notifications until it
/// ends.
async fn under_load(
    stack: &LocalStack,
    timer: &Timer<'_>,
    people: &mut [Walker],
    notifications: usize,
    load: usize,
    progress: &dyn Fn(&str),
) -> Result<UnderLoad, BenchError> {
    let app = &stack.app;
    let now = app.services.ports.clock.now();
    let today = local_today(now, &jiff::tz::TimeZone::UTC);
    let id = ChallengeId::parse("load-walk").map_err(|e| BenchError::setup("load", e))?;
    let challenge = Challenge::new(id.clone(), "Load walk", today.add_days(-6), today.add_days(21), "UTC", 3)
        .map_err(|e| BenchError::setup("load", e))?;
    app.services.ports.challenges.create_challenge(&challenge).await.map_err(|e| BenchError::setup("load", e))?;
    progress(&format!("  under load: seeding {load} connections on the same stack"));
    let seeded = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..load)
        .map(|i| {
            let (id, seeded) = (&id, &seeded);
            async move {
                let user = UserId::parse(&format!("load-{i:05}")).map_err(|e| BenchError::setup("load", e))?;
                let account = format!("load-account-{i:05}");
                stack.google.set_steps(&account, today.date(), 5_000 + i as u64);
                let tokens = google_tokens(&stack.google, &account, now + jiff::SignedDuration::from_hours(24));
                store_connection(app, &user, Provider::GoogleHealth, &account, Some(&tokens), None, "UTC")
                    .await
                    .map_err(|e| BenchError::setup("load", e))?;
                app.services.challenges().join(id, &user, now).await.map_err(|e| BenchError::setup("load", e))?;
                let done = seeded.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if done % 2_000 == 0 {
                    progress(&format!("  under load: {done}/{load} seeded"));
                }
                Ok(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;

    progress(&format!("  under load: sweeping {load} connections while timing notifications"));
    let sweeping = std::sync::atomic::AtomicBool::new(true);
    let started = Instant::now();
    let sweep = async {
        // The scheduler's ticks, closer together than deployed (15 min) so the sweep's end is
        // seen at once: a shard still being swept is skipped by the next tick's worker.
        let result = loop {
            match app.services.syncing.tick().await {
                Ok(busy) if busy.is_empty() => break Ok(started.elapsed()),
                Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => break Err(failed("load")(e.to_string())),
            }
        };
        sweeping.store(false, std::sync::atomic::Ordering::SeqCst);
        result
    };
    let stopped = || !sweeping.load(std::sync::atomic::Ordering::SeqCst);
    let (elapsed, timed) = futures::join!(sweep, timer.notify(people, notifications, &stopped, progress));
    let elapsed = elapsed?;
    let (visible, webhook) = timed?;
    let summary = |samples: &[f64]| {
        Summary::of(samples).ok_or_else(|| failed("load")("the sweep ended before one notification was timed".into()))
    };
    Ok(UnderLoad {
        connections: load,
        sweep_ms: elapsed.as_secs_f64() * 1e3,
        sweep_per_second: load as f64 / elapsed.as_secs_f64().max(1e-9),
        notifications: visible.len(),
        visible_ms: summary(&visible)?,
        webhook_ms: summary(&webhook)?,
    })
}

/// Sends signed notifications and polls the leaderboard until each new total shows.
struct Timer<'a> {
    http: reqwest::Client,
    webhook_url: String,
    leaderboard_url: String,
    stack: &'a LocalStack,
    today: jiff::civil::Date,
}

impl<'a> Timer<'a> {
    fn new(stack: &'a LocalStack, id: &ChallengeId) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BenchError::setup("an HTTP client", e))?;
        let now = stack.app.services.ports.clock.now();
        Ok(Self {
            http,
            webhook_url: format!("{}/webhooks/google_health", stack.base_url),
            leaderboard_url: format!("{}/v1/challenges/{id}/leaderboard?limit=100", stack.base_url),
            stack,
            today: local_today(now, &jiff::tz::TimeZone::UTC).date(),
        })
    }

    /// Up to `count` notifications, one at a time, stopping early once `stop()` says so; the
    /// samples (visible, webhook) in ms.
    async fn notify(
        &self,
        people: &mut [Walker],
        count: usize,
        stop: &dyn Fn() -> bool,
        progress: &dyn Fn(&str),
    ) -> Result<(Vec<f64>, Vec<f64>), BenchError> {
        let (mut visible, mut webhook) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for i in 0..count {
            if stop() {
                break;
            }
            let (account, token, steps) = &mut people[i % PEOPLE];
            *steps += 100 + i as u64;
            self.stack.google.set_steps(account, self.today, *steps);
            let started = Instant::now();
            let delivery =
                self.stack.google.notify(&self.webhook_url, Notification::upsert(account, [self.today])).await;
            webhook.push(started.elapsed().as_secs_f64() * 1e3);
            if !delivery.delivered() {
                return Err(failed("freshness")(format!("webhook answered {:?}", delivery.last_status())));
            }
            loop {
                let answer = self.http.get(&self.leaderboard_url).bearer_auth(&*token).send().await;
                let body: serde_json::Value = match answer {
                    Ok(response) if response.status().is_success() => response.json().await.unwrap_or_default(),
                    Ok(response) => {
                        return Err(failed("freshness")(format!("leaderboard answered {}", response.status())));
                    }
                    Err(error) => return Err(failed("freshness")(error.to_string())),
                };
                if body["me"]["steps"].as_u64() == Some(*steps) {
                    visible.push(started.elapsed().as_secs_f64() * 1e3);
                    break;
                }
                if started.elapsed() > GIVE_UP_AFTER {
                    return Err(failed("freshness")(format!(
                        "notice {i}: {steps} steps not visible after 15 s: {body}"
                    )));
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
            if (i + 1) % 50 == 0 {
                progress(&format!("  {}/{count} notifications visible", i + 1));
            }
        }
        Ok((visible, webhook))
    }
}
