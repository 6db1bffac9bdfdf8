//! Freshness: a provider notification → the new total visible through the leaderboard API,
//! on the local stack (real handlers behind the HttpApi routes, the in-process bus handing
//! `SyncRequested` to the real `sync-worker`, embedded DynamoDB, fake Google Health).

use crate::error::BenchError;
use crate::stats::Summary;
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

#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    pub notifications: usize,
    pub people: usize,
    pub poll_every_ms: f64,
    /// Notification sent → the person's new total in `GET /v1/challenges/{id}/leaderboard`.
    pub visible_ms: Summary,
    /// The webhook request alone (signed POST → 204).
    pub webhook_ms: Summary,
}

fn failed(step: &'static str) -> impl Fn(String) -> BenchError {
    move |why| BenchError::measurement(step, why)
}

pub async fn run(notifications: usize, progress: &dyn Fn(&str)) -> Result<Freshness, BenchError> {
    let options = StackOptions { tick: Duration::from_secs(24 * 3600), ..StackOptions::default() };
    let stack = LocalStack::start(options, |step| progress(&format!("  local stack: {step}")))
        .await
        .map_err(|e| BenchError::setup("the local stack", e))?;
    let result = measure(&stack, notifications, progress).await;
    stack.stop().await;
    result
}

async fn measure(stack: &LocalStack, notifications: usize, progress: &dyn Fn(&str)) -> Result<Freshness, BenchError> {
    let app = &stack.app;
    let now = app.services.ports.clock.now();
    let today = local_today(now, &jiff::tz::TimeZone::UTC);
    let id = ChallengeId::parse("bench-walk").map_err(|e| BenchError::setup("freshness", e))?;
    let challenge = Challenge::new(id.clone(), "Bench walk", today.add_days(-6), today.add_days(21), "UTC", 3)
        .map_err(|e| BenchError::setup("freshness", e))?;
    app.services.ports.challenges.create_challenge(&challenge).await.map_err(|e| BenchError::setup("freshness", e))?;
    let challenges = app.services.challenges();
    let mut people = Vec::new();
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

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| BenchError::setup("an HTTP client", e))?;
    let webhook_url = format!("{}/webhooks/google_health", stack.base_url);
    let leaderboard_url = format!("{}/v1/challenges/{id}/leaderboard?limit=100", stack.base_url);
    let (mut visible, mut webhook) = (Vec::with_capacity(notifications), Vec::with_capacity(notifications));
    for i in 0..notifications {
        let (account, token, steps) = &mut people[i % PEOPLE];
        *steps += 100 + i as u64;
        stack.google.set_steps(account, today.date(), *steps);
        let started = Instant::now();
        let delivery = stack.google.notify(&webhook_url, Notification::upsert(account, [today.date()])).await;
        webhook.push(started.elapsed().as_secs_f64() * 1e3);
        if !delivery.delivered() {
            return Err(failed("freshness")(format!("webhook answered {:?}", delivery.last_status())));
        }
        loop {
            let answer = http.get(&leaderboard_url).bearer_auth(&*token).send().await;
            let body: serde_json::Value = match answer {
                Ok(response) if response.status().is_success() => response.json().await.unwrap_or_default(),
                Ok(response) => return Err(failed("freshness")(format!("leaderboard answered {}", response.status()))),
                Err(error) => return Err(failed("freshness")(error.to_string())),
            };
            if body["me"]["steps"].as_u64() == Some(*steps) {
                visible.push(started.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if started.elapsed() > GIVE_UP_AFTER {
                return Err(failed("freshness")(format!("notice {i}: {steps} steps not visible after 15 s: {body}")));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        if (i + 1) % 50 == 0 {
            progress(&format!("  {}/{notifications} notifications visible", i + 1));
        }
    }
    let summary = |samples: &[f64]| Summary::of(samples).ok_or_else(|| failed("freshness")("no samples".into()));
    Ok(Freshness {
        notifications,
        people: PEOPLE,
        poll_every_ms: POLL_EVERY.as_secs_f64() * 1e3,
        visible_ms: summary(&visible)?,
        webhook_ms: summary(&webhook)?,
    })
}
