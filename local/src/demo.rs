//! Demo mode for the local stack: a company with a running challenge and about 30 people on
//! Google Health, Apple Health uploads, Misfit, Oura, Withings, Polar and Garmin, one with a revoked Google grant and one whose
//! phone stopped uploading. People walk; their devices sync at random, so webhooks arrive,
//! phones upload, and the leaderboard moves. Two more tell a story each (`STORIES`): walker-26
//! deletes yesterday's mistaken 25,000-step "walk" at Google (the day drops back once the
//! deletion notice is synced), and walker-27 flew from Chicago to Tokyo (their watch counts on
//! Chicago's dates, their phone on Tokyo's: the challenge counts one source, never both).

use crate::fakes::google_health::{ACTIVITY_SCOPE, FakeGoogleHealth, Notification};
use crate::fakes::misfit::{EventAction, MisfitEvent};
use crate::stack::LocalStack;
use functions::app::App;
use rand::Rng;
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use stepsync::domain::{Challenge, ChallengeId, Connection, LocalDate, Provider, TokenSet, UserId, local_today};
use stepsync::ports::StoreError;

/// The demo's challenge id.
pub const DEMO_CHALLENGE: &str = "demo-walk";
const PEOPLE: usize = 39;
/// The people with a story to look at in the console, and what it is.
pub const STORIES: [(&str, &str); 2] = [
    ("walker-26", "deleted yesterday's mistaken 25,000-step walk at Google: the day drops back"),
    (
        "walker-27",
        "flew Chicago → Tokyo: watch and phone put a walk on different days; the challenge counts one source",
    ),
];
/// The deleted walk's steps, and what the day really was.
const MISTAKEN_WALK: u64 = 25_000;
const REAL_DAY: u64 = 6_000;
/// The topic the local Misfit notifies through (the stack accepts it, and only it).
pub const SNS_TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:misfit-local";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Google,
    Phone,
    Misfit,
    /// Google, with the grant revoked: the next sync turns it into "reconnect".
    RevokedGoogle,
    /// A phone that stopped uploading three days ago: "allow Health access".
    SilentPhone,
    /// Google, with yesterday's mistaken walk deleted after the first sweep counted it.
    DeletedWalk,
    /// Google on Chicago time and a phone already on Tokyo time.
    Traveller,
    /// An Oura ring: notices through the app's webhook subscriptions.
    Oura,
    /// A Withings watch: notices through the person's own subscription.
    Withings,
    /// A Polar watch: notices through the app's one webhook.
    Polar,
    /// A Garmin watch: pings naming upload windows, read back with their pull tokens.
    Garmin,
}

struct Walker {
    user: UserId,
    source: Source,
    /// The id at the provider (Google health id, Misfit user id).
    account: String,
    today: u64,
}

/// The days before today that the demo's people walked (the challenge began six days ago).
const HISTORY_DAYS: i32 = 6;

/// A plausible step total for a whole past day.
fn past_day_steps() -> u64 {
    rand::rng().random_range(3_000..14_000)
}

/// The phone app's upload of `days`, as the real app sends it.
async fn upload(stack: &LocalStack, http: &reqwest::Client, user: &UserId, days: &[(LocalDate, u64)]) {
    upload_in(stack, http, user, "UTC", days).await;
}

/// As `upload`, from a phone set to `zone`.
async fn upload_in(stack: &LocalStack, http: &reqwest::Client, user: &UserId, zone: &str, days: &[(LocalDate, u64)]) {
    let days: Vec<_> = days.iter().map(|(date, steps)| json!({"local_date": date, "steps": steps})).collect();
    let body = json!({
        "platform": "apple_health", "install_id": format!("iphone-{user}"), "time_zone": zone, "days": days,
    });
    let sent = http
        .post(format!("{}/v1/steps/device-upload", stack.base_url))
        .bearer_auth(stack.token(user.as_str(), false))
        .json(&body)
        .send()
        .await;
    if let Err(error) = sent {
        tracing::warn!(%error, %user, "demo: phone upload failed");
    }
}

fn source_of(i: usize) -> Source {
    match i {
        0..=11 => Source::Google,
        12..=18 => Source::Phone,
        19..=22 => Source::Misfit,
        23 => Source::RevokedGoogle,
        24 => Source::SilentPhone,
        25 => Source::DeletedWalk,
        26 => Source::Traveller,
        27..=29 => Source::Oura,
        30..=32 => Source::Withings,
        33..=35 => Source::Polar,
        _ => Source::Garmin,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn failed(e: impl std::fmt::Display) -> DemoError {
    DemoError(e.to_string())
}

/// Seeds the demo (again, after a restart: the sandboxes start empty) and returns the
/// walkers; idempotent for the data kept in DynamoDB.
async fn seed(stack: &LocalStack, http: &reqwest::Client) -> Result<Vec<Walker>, DemoError> {
    let app = &stack.app;
    let now = app.services.ports.clock.now();
    let today = local_today(now, &jiff::tz::TimeZone::UTC);
    let id = ChallengeId::parse(DEMO_CHALLENGE).map_err(failed)?;
    let challenge = Challenge::new(id.clone(), "Walk to the summit", today.add_days(-6), today.add_days(21), "UTC", 3)
        .map_err(failed)?;
    match app.services.ports.challenges.create_challenge(&challenge).await {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(failed(e)),
    }
    let challenges = app.services.challenges();
    let mut walkers = Vec::new();
    for i in 0..PEOPLE {
        let user = UserId::parse(&format!("walker-{:02}", i + 1)).map_err(failed)?;
        let source = source_of(i);
        let account = match source {
            // Withings' and Polar's user ids are numbers.
            Source::Withings | Source::Polar => format!("7770{:04}", i + 1),
            _ => format!("demo-account-{:02}", i + 1),
        };
        let provider = match source {
            Source::Google | Source::RevokedGoogle | Source::DeletedWalk | Source::Traveller => Provider::GoogleHealth,
            Source::Misfit => Provider::Misfit,
            Source::Oura => Provider::Oura,
            Source::Withings => Provider::Withings,
            Source::Polar => Provider::Polar,
            Source::Garmin => Provider::Garmin,
            Source::Phone | Source::SilentPhone => Provider::AppleHealth,
        };
        let tokens = match source {
            Source::Google | Source::RevokedGoogle | Source::DeletedWalk | Source::Traveller => {
                Some(google_tokens(&stack.google, &account, now + jiff::SignedDuration::from_mins(50)))
            }
            Source::Misfit => {
                stack.misfit.add_person(&account);
                Some(TokenSet {
                    access_token: SecretString::from(stack.misfit.grant_token(&account)),
                    refresh_token: None,
                    expires_at: now + jiff::SignedDuration::from_hours(24 * 365),
                    scope: Some("tracking".to_owned()),
                })
            }
            Source::Oura => {
                stack.oura.add_person(&account, "UTC");
                let granted = stack.oura.grant_tokens(&account, &["daily", "personal"]);
                Some(TokenSet {
                    access_token: SecretString::from(granted.access_token),
                    refresh_token: Some(SecretString::from(granted.refresh_token)),
                    expires_at: now + jiff::SignedDuration::from_hours(20),
                    scope: Some("daily personal".to_owned()),
                })
            }
            Source::Withings => {
                stack.withings.add_person(&account, "UTC");
                let granted = stack.withings.grant_tokens(&account, &["user.activity"]);
                Some(TokenSet {
                    access_token: SecretString::from(granted.access_token),
                    refresh_token: Some(SecretString::from(granted.refresh_token)),
                    expires_at: now + jiff::SignedDuration::from_hours(2),
                    scope: Some("user.activity".to_owned()),
                })
            }
            Source::Polar => {
                let id = polar_id(&account);
                stack.polar.add_person(id);
                let token = stack.polar.grant_registered(id, &format!("demo-member-{id}"));
                Some(TokenSet {
                    access_token: SecretString::from(token),
                    refresh_token: None,
                    expires_at: now + jiff::SignedDuration::from_hours(24 * 365),
                    scope: Some("accesslink.read_all".to_owned()),
                })
            }
            Source::Garmin => {
                stack.garmin.add_person(&account, 0);
                let (access, refresh) = stack.garmin.grant_tokens(&account);
                Some(TokenSet {
                    access_token: SecretString::from(access),
                    refresh_token: Some(SecretString::from(refresh)),
                    expires_at: now + jiff::SignedDuration::from_hours(20),
                    scope: None,
                })
            }
            Source::Phone | Source::SilentPhone => None,
        };
        let silent_since = (source == Source::SilentPhone).then(|| now - jiff::SignedDuration::from_hours(72));
        let zone = if source == Source::Traveller { "America/Chicago" } else { "UTC" };
        store_connection(app, &user, provider, &account, tokens.as_ref(), silent_since, zone).await?;
        challenges.join(&id, &user, now).await.map_err(failed)?;
        // The days already walked: at the provider (the first sweep fetches them) or uploaded
        // by the phone. The silent phone's history stays unsent, as its app stopped.
        let history: Vec<(LocalDate, u64)> =
            (-HISTORY_DAYS..0).map(|offset| (today.add_days(offset), past_day_steps())).collect();
        match source {
            Source::Google | Source::RevokedGoogle => {
                history.iter().for_each(|(date, steps)| stack.google.set_steps(&account, date.date(), *steps))
            }
            Source::Misfit => {
                history.iter().for_each(|(date, steps)| stack.misfit.set_steps(&account, date.date(), *steps))
            }
            Source::Oura => {
                history.iter().for_each(|(date, steps)| stack.oura.seed_steps(&account, date.date(), *steps))
            }
            Source::Polar => {
                history.iter().for_each(|(date, steps)| stack.polar.seed_steps(polar_id(&account), date.date(), *steps))
            }
            // The first sweep asks Garmin for a backfill, which Garmin delivers through pings.
            Source::Garmin => {
                history.iter().for_each(|(date, steps)| stack.garmin.seed_steps(&account, date.date(), *steps))
            }
            Source::Withings => {
                history.iter().for_each(|(date, steps)| stack.withings.seed_steps(&account, date.date(), *steps));
                // What connecting does: the person's notification subscription, behind the HEAD check.
                subscribe_withings(stack, &account).await;
            }
            Source::Phone => upload(stack, http, &user, &history).await,
            Source::SilentPhone => {}
            Source::DeletedWalk => {
                history.iter().for_each(|(date, steps)| stack.google.set_steps(&account, date.date(), *steps));
                stack.google.set_steps(&account, today.add_days(-1).date(), MISTAKEN_WALK);
            }
            Source::Traveller => {
                // A 10,000-step walk at 22:00 in Chicago two days ago, then the flight: the
                // watch (Chicago's dates) has it two days ago, the phone (Tokyo's) yesterday.
                let (walk_day, next_day) = (today.add_days(-2), today.add_days(-1));
                let mut watch = history.clone();
                watch.iter_mut().for_each(|(date, steps)| {
                    *steps = if *date == walk_day {
                        10_000
                    } else if *date == next_day {
                        3_000
                    } else {
                        *steps
                    }
                });
                watch.iter().for_each(|(date, steps)| stack.google.set_steps(&account, date.date(), *steps));
                stack.google.set_time_zone(&account, "America/Chicago");
                let phone: Vec<(LocalDate, u64)> = watch
                    .iter()
                    .map(|(date, steps)| {
                        let steps = if *date == walk_day {
                            1_500
                        } else if *date == next_day {
                            11_000
                        } else {
                            steps * 4 / 5
                        };
                        (*date, steps)
                    })
                    .collect();
                upload_in(stack, http, &user, "Asia/Tokyo", &phone).await;
            }
        }
        if source == Source::RevokedGoogle {
            stack.google.revoke_grant(&account);
        }
        walkers.push(Walker { user, source, account, today: 0 });
    }
    Ok(walkers)
}

/// walker-26's story: once the first sweep counted yesterday's 25,000 mistaken steps, the
/// person deletes that "walk" at Google; Google sends its `DELETE` notice and the re-read day
/// drops back to what was really walked.
async fn delete_the_mistaken_walk(stack: &LocalStack, walkers: &[Walker]) {
    let Some(walker) = walkers.iter().find(|w| w.source == Source::DeletedWalk) else { return };
    let yesterday = demo_today(stack).add_days(-1);
    let counted = |stack: &LocalStack| {
        let (user, app) = (walker.user.clone(), stack.app.clone());
        async move {
            let days = app.services.ports.steps.load_user_days(&user, &[yesterday]).await.ok()?.days;
            days.get(&yesterday).map(|d| u64::from(d.total.get()))
        }
    };
    // The sweep's syncs run on the bus: wait (briefly) until the mistaken walk is counted.
    for _ in 0..100 {
        if counted(stack).await == Some(MISTAKEN_WALK) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.google.set_steps(&walker.account, yesterday.date(), REAL_DAY);
    let webhook = format!("{}/webhooks/google_health", stack.base_url);
    stack.google.notify(&webhook, Notification::delete(&walker.account, [yesterday.date()])).await;
}

/// Tokens for `account` in the Google Health sandbox (the person is added there), as the app
/// holds them after consent, stored as expiring at `expires_at`. The demo and the benchmarks
/// seed people with it.
pub fn google_tokens(google: &FakeGoogleHealth, account: &str, expires_at: jiff::Timestamp) -> TokenSet {
    google.add_person(account, None);
    let pair = google.grant_tokens(account, &[ACTIVITY_SCOPE]);
    TokenSet {
        access_token: SecretString::from(pair.access_token),
        refresh_token: Some(SecretString::from(pair.refresh_token)),
        expires_at,
        scope: Some(ACTIVITY_SCOPE.to_owned()),
    }
}

/// Stores `user`'s connection to `provider` as `account` (its days in `zone`; tokens sealed;
/// due now when it has tokens) and claims the provider account. `silent_since`: the last
/// upload of a phone that went quiet. Repeating it after a restart replaces the connection.
pub async fn store_connection(
    app: &App,
    user: &UserId,
    provider: Provider,
    account: &str,
    tokens: Option<&TokenSet>,
    silent_since: Option<jiff::Timestamp>,
    zone: &str,
) -> Result<(), DemoError> {
    let now = app.services.ports.clock.now();
    let existing = app.services.ports.connections.get_connection(user, provider).await.map_err(failed)?;
    let version = existing.as_ref().map_or(1, |c| c.token_version + 1);
    let cipher = &app.services.engine.cipher;
    let sealed = tokens.map(|t| cipher.encrypt(user, provider, version, t)).transpose().map_err(failed)?;
    let connection = Connection {
        provider_user_id: tokens.map(|_| account.to_owned()),
        time_zone: Some(zone.to_owned()),
        tokens: sealed,
        token_version: version,
        next_sync_at: tokens.map(|_| now),
        last_success_at: silent_since,
        ..Connection::new(user.clone(), provider, silent_since.unwrap_or(now))
    };
    app.services
        .ports
        .connections
        .save_connection(&connection, existing.map(|c| c.token_version))
        .await
        .map_err(failed)?;
    if tokens.is_some() {
        app.services.ports.connections.claim_provider_account(provider, account, user).await.map_err(failed)?;
    }
    Ok(())
}

/// A demo Polar account's numeric id (the demo names it like the others).
fn polar_id(account: &str) -> u64 {
    account.parse().unwrap_or_default()
}

/// The subscription connecting makes for a Withings person (the demo stores its people's
/// connections directly): our callback with its token, checked by Withings' HEAD.
async fn subscribe_withings(stack: &LocalStack, account: &str) {
    let Some(settings) = stack.app.config.withings.as_ref() else { return };
    let Some(token) = settings.notify_token.as_ref() else { return };
    let mut callback = match reqwest::Url::parse(&settings.callback_base) {
        Ok(url) => url,
        Err(_) => return,
    };
    callback.query_pairs_mut().append_pair("token", secrecy::ExposeSecret::expose_secret(token));
    stack.withings.subscribe_unchecked(account, callback.as_str(), 16);
}

/// One step of the simulation: everybody walks a little; some devices sync.
async fn walk(stack: &LocalStack, walkers: &mut [Walker], http: &reqwest::Client) {
    let today = local_today(stack.app.services.ports.clock.now(), &jiff::tz::TimeZone::UTC);
    let (webhook_google, webhook_misfit) =
        (format!("{}/webhooks/google_health", stack.base_url), format!("{}/webhooks/misfit", stack.base_url));
    for walker in walkers.iter_mut() {
        let (steps, syncs) = {
            let mut rng = rand::rng();
            (rng.random_range(150..1200u64), rng.random_bool(0.4))
        };
        walker.today += steps;
        match walker.source {
            Source::Google | Source::RevokedGoogle | Source::DeletedWalk | Source::Traveller => {
                stack.google.set_steps(&walker.account, today.date(), walker.today);
                if syncs {
                    stack.google.notify(&webhook_google, Notification::upsert(&walker.account, [today.date()])).await;
                }
            }
            Source::Misfit => {
                stack.misfit.set_steps(&walker.account, today.date(), walker.today);
                if syncs {
                    let event = MisfitEvent::new(
                        "activities",
                        &format!("a-{}", walker.today),
                        &walker.account,
                        EventAction::Updated,
                    );
                    stack.sns.deliver(&webhook_misfit, &stack.sns.notification(SNS_TOPIC, &[event])).await;
                }
            }
            // The ring syncs to the phone; Oura then notifies every live subscription.
            Source::Oura if syncs => {
                stack.oura.set_steps(&walker.account, today.date(), walker.today).await;
            }
            Source::Oura => stack.oura.seed_steps(&walker.account, today.date(), walker.today),
            Source::Withings if syncs => {
                stack.withings.set_steps(&walker.account, today.date(), walker.today).await;
            }
            Source::Withings => stack.withings.seed_steps(&walker.account, today.date(), walker.today),
            Source::Polar if syncs => {
                stack.polar.set_steps(polar_id(&walker.account), today.date(), walker.today).await;
            }
            Source::Polar => stack.polar.seed_steps(polar_id(&walker.account), today.date(), walker.today),
            Source::Garmin if syncs => {
                stack.garmin.set_steps(&walker.account, today.date(), walker.today).await;
            }
            Source::Garmin => stack.garmin.seed_steps(&walker.account, today.date(), walker.today),
            Source::Phone if syncs => upload(stack, http, &walker.user, &[(today, walker.today)]).await,
            Source::Phone | Source::SilentPhone => {}
        }
    }
}

/// Provider accounts nobody has connected yet, with the last 14 days walked, so that anyone
/// trying the stack (demo or empty) can connect a person through a consent page. Returns
/// their ids as `(provider, account)`.
pub fn add_sandbox_accounts(stack: &LocalStack) -> Vec<(Provider, String)> {
    let today = demo_today(stack);
    let mut added = Vec::new();
    for n in 1..=3 {
        let (google, misfit, oura) =
            (format!("sandbox-google-{n}"), format!("sandbox-misfit-{n}"), format!("sandbox-oura-{n}"));
        let withings = format!("5550000{n}");
        let polar = 6_660_000 + n;
        let garmin = format!("sandbox-garmin-{n}");
        stack.google.add_person(&google, None);
        stack.misfit.add_person(&misfit);
        stack.oura.add_person(&oura, "UTC");
        stack.withings.add_person(&withings, "UTC");
        stack.polar.add_person(polar);
        stack.garmin.add_person(&garmin, 0);
        for offset in -13..=0 {
            let date = today.add_days(offset).date();
            stack.google.set_steps(&google, date, past_day_steps());
            stack.misfit.set_steps(&misfit, date, past_day_steps());
            stack.oura.seed_steps(&oura, date, past_day_steps());
            stack.withings.seed_steps(&withings, date, past_day_steps());
            stack.polar.seed_steps(polar, date, past_day_steps());
            stack.garmin.seed_steps(&garmin, date, past_day_steps());
        }
        added.extend([
            (Provider::GoogleHealth, google),
            (Provider::Misfit, misfit),
            (Provider::Oura, oura),
            (Provider::Withings, withings),
            (Provider::Polar, polar.to_string()),
            (Provider::Garmin, garmin),
        ]);
    }
    added
}

/// The leaderboard's top `n` as lines for the terminal.
async fn leaderboard(stack: &LocalStack, n: usize) -> Vec<String> {
    let challenges = stack.app.services.challenges();
    let Ok(id) = ChallengeId::parse(DEMO_CHALLENGE) else { return Vec::new() };
    match challenges.leaderboard(&id, n, None).await {
        Ok(page) => {
            page.entries.iter().map(|e| format!("{:>3}. {:<12} {:>8} steps", e.rank, e.user, e.total)).collect()
        }
        Err(error) => vec![format!("leaderboard unavailable: {error}")],
    }
}

/// Seeds, then walks every `every` until the task is dropped, printing the leaderboard.
pub async fn run(stack: Arc<LocalStack>, every: Duration, print: bool) -> Result<(), DemoError> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(failed)?;
    let mut walkers = seed(&stack, &http).await?;
    // The first sweep now, not at the next tick: it fetches the days already walked.
    if let Err(error) = functions::scheduled_sync::tick(&stack.app).await {
        tracing::warn!(%error, "demo: the first sweep failed");
    }
    delete_the_mistaken_walk(&stack, &walkers).await;
    if print {
        eprintln!("demo: {} people in {DEMO_CHALLENGE:?}; walking every {} s", walkers.len(), every.as_secs_f32());
    }
    let mut round = 0u64;
    loop {
        walk(&stack, &mut walkers, &http).await;
        round += 1;
        if print && round % 3 == 1 {
            let lines = leaderboard(&stack, 10).await;
            eprintln!("── leaderboard, {DEMO_CHALLENGE} (round {round}) ──\n{}", lines.join("\n"));
        }
        tokio::time::sleep(every).await;
    }
}

/// The day the demo walks on (for tests).
pub fn demo_today(stack: &LocalStack) -> LocalDate {
    local_today(stack.app.services.ports.clock.now(), &jiff::tz::TimeZone::UTC)
}
