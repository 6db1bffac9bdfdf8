//! Withings end to end, real handlers against the fake Withings: connect through its consent
//! page (the token answer names the account), the person's notification subscription made
//! behind Withings' HEAD check, the backfill, an unsigned notice bound by our callback's secret
//! raising a day and moving the leaderboard, a correction and a deletion lowering it, the
//! refresh token rotated under Withings' rule, a revoked grant diagnosed, forged notices
//! refused, the app-wide budget held in a sweep of 2,000 connections, and disconnect giving
//! back the subscription and the grant (a signed nonce). The syncs check each person's
//! subscription now and then: one Withings dropped, or one whose subscribe failed on connect,
//! is diagnosed `subscription_lapsed` until a later sync makes it again, within the app's budget.

use functions::app::App;
use std::sync::Arc;
use stepsync::domain::{ConnectionStatus, LocalDate, Provider, TokenSet, UserId, local_today};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{ChallengeStore, ConnectionStore, StepStore, SubscriptionCheck};
use stepsync_local::fakes::withings::FakeWithings;
use stepsync_local::harness::{
    self, TestEnv, WebhookForwarder, body_json, request_from_sample, unique, webhook_request,
};
use stepsync_local::on_dynoxide;

on_dynoxide!(
    connect_subscribe_notify_correct_and_leaderboard,
    the_refresh_token_rotates_and_a_revoked_grant_asks_to_reconnect,
    notices_without_our_secret_are_refused_and_strangers_ignored,
    a_sweep_of_two_thousand_connections_never_exceeds_the_app_budget,
    disconnect_gives_back_the_subscription_and_the_grant,
    a_dropped_subscription_is_diagnosed_and_made_again_by_a_later_sync,
    a_subscribe_that_failed_on_connect_is_diagnosed_and_made_by_a_later_sync,
    the_syncs_checks_stay_within_the_app_budget,
);

const NOTIFY_TOKEN: &str = "withings-notify-token-for-tests";

struct World {
    env: TestEnv,
    fake: FakeWithings,
    app: Arc<App>,
    user: UserId,
    withings_id: String,
    forwarder: WebhookForwarder,
}

impl World {
    async fn new(env: TestEnv) -> Self {
        env.clock.set(jiff::Timestamp::now());
        let fake = FakeWithings::start().await;
        let forwarder = WebhookForwarder::start().await;
        let app = Arc::new(harness::app(&env, Self::vars(&fake, &forwarder.base, None)));
        forwarder.serve(app.clone());
        let withings_id = format!("{}", 10_000_000 + rand_id());
        fake.add_person(&withings_id, "Europe/Paris");
        Self { env, fake, app, user: UserId::parse(&unique("walker")).unwrap(), withings_id, forwarder }
    }

    fn vars(fake: &FakeWithings, public_url: &str, per_minute: Option<u64>) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("STEPSYNC_WITHINGS_CLIENT_ID", fake.client_id()),
            ("STEPSYNC_WITHINGS_CLIENT_SECRET", fake.client_secret()),
            ("STEPSYNC_WITHINGS_NOTIFY_TOKEN", NOTIFY_TOKEN.to_owned()),
            ("STEPSYNC_WITHINGS_AUTH_URL", fake.authorize_url()),
            ("STEPSYNC_WITHINGS_API_BASE", fake.base_url().to_owned()),
            ("STEPSYNC_PUBLIC_URL", public_url.to_owned()),
        ];
        if let Some(limit) = per_minute {
            vars.push(("STEPSYNC_WITHINGS_REQUESTS_PER_MINUTE", limit.to_string()));
        }
        vars
    }

    fn today(&self) -> LocalDate {
        local_today(self.env.now(), &jiff::tz::TimeZone::UTC)
    }

    async fn connect(&self) {
        let (location, cookie) = harness::start_connecting(&self.app, &self.user, Provider::Withings).await;
        let redirect = self.fake.approve(&location, &self.withings_id);
        harness::finish_connecting(&self.app, Provider::Withings, &redirect, &cookie).await;
        let connection = self.env.store.get_connection(&self.user, Provider::Withings).await.unwrap().unwrap();
        assert_eq!(connection.status, ConnectionStatus::Active);
        assert_eq!(
            connection.provider_user_id.as_deref(),
            Some(self.withings_id.as_str()),
            "the token answer's userid"
        );
    }

    async fn run_syncs(&self, from: &mut usize) -> usize {
        harness::run_sync_requests(&self.app, &self.env.publisher, from).await
    }

    async fn scheduled_sync(&self) -> functions::sync_worker::WorkerResult {
        let event =
            Event::SyncRequested(SyncRequested::whole(self.user.clone(), Provider::Withings, SyncReason::Schedule));
        functions::sync_worker::handle(&self.app, serde_json::to_value(&event).unwrap()).await.unwrap()
    }

    async fn total(&self, day: LocalDate) -> u32 {
        let days = self.env.store.load_user_days(&self.user, &[day]).await.unwrap().days;
        days.get(&day).map_or(0, |d| d.total.get())
    }

    async fn status(&self) -> serde_json::Value {
        harness::connection_status(&self.app, &self.user, Provider::Withings).await
    }

    /// Makes the person's subscription look last checked `ago` before now: their next sync asks.
    async fn checked_ago(&self, ago: jiff::SignedDuration) {
        let check = SubscriptionCheck { checked_at: self.env.now() - ago, lapsed_since: None };
        self.env.store.record_subscription_check(&self.user, Provider::Withings, &check).await.unwrap();
    }

    /// The callback URL connecting subscribes with.
    fn callback(&self) -> String {
        format!("{}/webhooks/withings?token={NOTIFY_TOKEN}", self.forwarder.base)
    }

    async fn post_notice(&self, query: &str, body: &str) -> u16 {
        let headers = [("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
        let req = webhook_request(Provider::Withings, "POST", query, &headers, body.as_bytes());
        functions::webhook::handle(&self.app, req).await.status().as_u16()
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    u64::from(std::process::id()) * 1000 + NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn connect_subscribe_notify_correct_and_leaderboard(env: TestEnv) {
    let w = World::new(env).await;
    let today = w.today();
    let challenge = w.env.challenge(&today.add_days(-10).to_string(), &today.add_days(10).to_string()).await;
    w.env.challenges().join(&challenge, &w.user, w.env.now()).await.unwrap();
    let yesterday = today.add_days(-1);
    w.fake.seed_steps(&w.withings_id, yesterday.date(), 8_100);
    w.connect().await;
    // Connecting subscribed the person, after Withings' HEAD check reached our webhook.
    let subscriptions = w.fake.subscriptions(&w.withings_id);
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    assert!(subscriptions[0].callbackurl.starts_with(&format!("{}/webhooks/withings?token=", w.forwarder.base)));
    assert_eq!(w.fake.calls("head_check"), 1);
    let mut seen = 0;
    assert_eq!(w.run_syncs(&mut seen).await, 1, "the backfill");
    assert_eq!(w.total(yesterday).await, 8_100);

    let deliveries = w.fake.set_steps(&w.withings_id, today.date(), 4_321).await;
    assert!(deliveries.len() == 1 && deliveries[0].outcome.status() == Some(204), "{deliveries:?}");
    let fetches = w.fake.calls("getactivity");
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.fake.calls("getactivity") - fetches, 1, "one fetch for the notice");
    assert_eq!(w.total(today).await, 4_321);
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 8_100 + 4_321);

    // A correction lowers today; yesterday is deleted at Withings.
    w.env.clock.set(jiff::Timestamp::now());
    w.fake.set_steps(&w.withings_id, today.date(), 4_000).await;
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    w.env.clock.set(jiff::Timestamp::now());
    w.fake.delete_day(&w.withings_id, yesterday.date()).await;
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(yesterday).await, 0);
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 4_000);
    assert_eq!(
        w.env.store.participant(&challenge, &w.user).await.unwrap().unwrap().sources,
        w.env.challenges().recompute(&challenge, &w.user).await.unwrap()
    );
}

async fn the_refresh_token_rotates_and_a_revoked_grant_asks_to_reconnect(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let today = w.today();
    w.fake.seed_steps(&w.withings_id, today.date(), 2_500);
    let version = w.env.store.get_connection(&w.user, Provider::Withings).await.unwrap().unwrap().token_version;

    w.fake.expire_access_tokens(&w.withings_id);
    let refreshes = w.fake.calls("refresh");
    assert!(matches!(w.scheduled_sync().await, functions::sync_worker::WorkerResult::Synced { .. }));
    assert_eq!(w.fake.calls("refresh") - refreshes, 1);
    assert!(w.env.store.get_connection(&w.user, Provider::Withings).await.unwrap().unwrap().token_version > version);
    assert_eq!(w.total(today).await, 2_500);
    // The new refresh token is the one kept: a second expiry refreshes with it.
    w.fake.expire_access_tokens(&w.withings_id);
    assert!(matches!(w.scheduled_sync().await, functions::sync_worker::WorkerResult::Synced { .. }));

    w.fake.revoke_grant(&w.withings_id);
    let result = w.scheduled_sync().await;
    assert!(matches!(result, functions::sync_worker::WorkerResult::Failed { .. }), "{result:?}");
    let connection = w.env.store.get_connection(&w.user, Provider::Withings).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
    let diagnosis = stepsync::diagnosis::diagnose(&connection, w.env.now());
    assert_eq!(diagnosis.action, stepsync::diagnosis::Action::Reconnect);
}

async fn notices_without_our_secret_are_refused_and_strangers_ignored(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let published = w.env.publisher.events().len();
    let body = w.fake.notice_body(&w.withings_id, w.today().date());
    let ours = format!("token={NOTIFY_TOKEN}");
    assert_eq!(w.post_notice("", &body).await, 401, "no token");
    assert_eq!(w.post_notice("token=guess", &body).await, 401, "a guessed token");
    assert_eq!(w.post_notice(&format!("token={NOTIFY_TOKEN}x"), &body).await, 401, "a longer token");
    assert_eq!(w.post_notice(&ours, "userid=&appli=16").await, 400, "malformed");
    let oversized = "a".repeat(17 * 1024);
    assert_eq!(w.post_notice(&ours, &oversized).await, 413);
    let head = webhook_request(Provider::Withings, "HEAD", "token=guess", &[], b"");
    assert_eq!(functions::webhook::handle(&w.app, head).await.status(), 401);
    // A genuine notice about an account nobody connected: taken, nothing synced.
    let stranger = body.replace(&w.withings_id, "99999999");
    assert_eq!(w.post_notice(&ours, &stranger).await, 204);
    let new: Vec<_> = w.env.publisher.events()[published..].to_vec();
    assert!(new.iter().all(|e| !matches!(e, Event::SyncRequested(_))), "nothing was synced: {new:?}");
    assert_eq!(w.post_notice(&ours, &body).await, 204);
    assert!(w.env.publisher.events()[published..].iter().any(|e| matches!(e, Event::SyncRequested(_))));
}

async fn a_sweep_of_two_thousand_connections_never_exceeds_the_app_budget(env: TestEnv) {
    const PER_MINUTE: u64 = 120;
    let w = World::new(env).await;
    w.fake.set_rate_limit(PER_MINUTE);
    let app = harness::app(&w.env, World::vars(&w.fake, &w.forwarder.base, Some(PER_MINUTE)));
    let now = w.env.now();
    let next = std::sync::atomic::AtomicU64::new(20_000_000);
    let grant = |_: &str| {
        // Withings' user ids are numbers: each sweeper gets one at the fake.
        let userid = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
        w.fake.add_person(&userid, "UTC");
        let pair = w.fake.grant_tokens(&userid, &["user.activity"]);
        TokenSet {
            access_token: pair.access_token.into(),
            refresh_token: Some(pair.refresh_token.into()),
            expires_at: now + jiff::SignedDuration::from_hours(2),
            scope: Some("user.activity".into()),
        }
    };
    let counted = || crate::budget::Counted {
        fetches: w.fake.calls("getactivity"),
        max_in_a_window: w.fake.max_requests_in_any_minute(),
    };
    crate::budget::a_sweep_stays_within_the_budget(
        &w.env,
        &app,
        Provider::Withings,
        (PER_MINUTE, std::time::Duration::from_secs(60)),
        grant,
        counted,
    )
    .await;
}

async fn disconnect_gives_back_the_subscription_and_the_grant(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    assert_eq!(w.fake.subscriptions(&w.withings_id).len(), 1);
    let req = request_from_sample("oauth_disconnect.json", Some(&w.user), |e| {
        e["rawPath"] = "/v1/connections/withings".into();
        e["requestContext"]["http"]["path"] = "/v1/connections/withings".into();
        e["pathParameters"]["provider"] = "withings".into();
    });
    let res = functions::oauth::handle(&w.app, req).await;
    assert!(res.status().is_success(), "{}", body_json(&res));
    assert!(w.fake.subscriptions(&w.withings_id).is_empty(), "unsubscribed");
    assert_eq!((w.fake.calls("getnonce"), w.fake.calls("revoke")), (1, 1), "the grant revoked with a signed nonce");
    let connection = w.env.store.get_connection(&w.user, Provider::Withings).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::Disconnected);
}

async fn a_dropped_subscription_is_diagnosed_and_made_again_by_a_later_sync(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let mut seen = 0;
    assert_eq!(w.run_syncs(&mut seen).await, 1, "the backfill");
    assert_eq!(w.fake.calls("list"), 0, "connect subscribed them: nothing to ask yet");
    w.checked_ago(stepsync::engine::SUBSCRIPTION_CHECK_EVERY).await;
    w.scheduled_sync().await;
    assert_eq!(w.fake.calls("list"), 1, "a week on, a sync asks");
    assert_eq!(w.status().await["diagnosis"]["code"], "healthy");
    w.scheduled_sync().await;
    assert_eq!(w.fake.calls("list"), 1, "and not again that week");

    // Withings dropped the subscription (its deliveries kept failing): no notice arrives, and
    // while our callback does not answer Withings' HEAD check it cannot be made again.
    w.fake.drop_subscriptions(&w.withings_id);
    assert!(w.fake.set_steps(&w.withings_id, w.today().date(), 1_234).await.is_empty());
    w.fake.fail_callback_checks(1);
    let subscribes = w.fake.calls("subscribe");
    w.checked_ago(stepsync::engine::SUBSCRIPTION_CHECK_EVERY).await;
    w.scheduled_sync().await;
    assert_eq!(w.total(w.today()).await, 1_234, "the sync itself brought the day");
    let status = w.status().await;
    assert_eq!(status["diagnosis"]["code"], "subscription_lapsed", "{status}");
    assert_eq!(status["diagnosis"]["action"], "wait");
    assert!(status["diagnosis"]["message"].as_str().unwrap().contains("next sync"), "{status}");

    // A sync an hour on makes it again: healthy, and a notice reaches the app.
    w.env.clock.set(w.env.now() + stepsync::engine::SUBSCRIPTION_RETRY_AFTER);
    w.scheduled_sync().await;
    assert_eq!(w.fake.calls("subscribe") - subscribes, 2, "one refused, one made");
    let subscriptions = w.fake.subscriptions(&w.withings_id);
    assert!(subscriptions.len() == 1 && subscriptions[0].callbackurl == w.callback(), "{subscriptions:?}");
    assert_ne!(w.status().await["diagnosis"]["code"], "subscription_lapsed");
    let deliveries = w.fake.set_steps(&w.withings_id, w.today().date(), 2_345).await;
    assert!(deliveries.len() == 1 && deliveries[0].delivered(), "{deliveries:?}");
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(w.today()).await, 2_345);
}

async fn a_subscribe_that_failed_on_connect_is_diagnosed_and_made_by_a_later_sync(env: TestEnv) {
    let w = World::new(env).await;
    w.fake.fail_callback_checks(1);
    w.connect().await;
    assert!(w.fake.subscriptions(&w.withings_id).is_empty(), "the subscribe was refused");
    let mut seen = 0;
    assert_eq!(w.run_syncs(&mut seen).await, 1, "connected all the same: the backfill");
    let status = w.status().await;
    assert_eq!(status["diagnosis"]["code"], "subscription_lapsed", "{status}");
    assert_eq!(w.fake.calls("subscribe"), 1, "the backfill, within the hour, does not ask again");

    w.env.clock.set(w.env.now() + stepsync::engine::SUBSCRIPTION_RETRY_AFTER);
    w.scheduled_sync().await;
    assert_eq!(w.fake.subscriptions(&w.withings_id).len(), 1);
    assert_eq!(w.status().await["diagnosis"]["code"], "healthy");
}

async fn the_syncs_checks_stay_within_the_app_budget(env: TestEnv) {
    // Withings allows 120 a minute; the fake and the app's budget are set lower so that the
    // budget is what paces the syncs and their checks.
    const PER_MINUTE: u64 = 20;
    const PEOPLE: usize = 45;
    let w = World::new(env).await;
    w.fake.set_rate_limit(PER_MINUTE);
    let app = harness::app(&w.env, World::vars(&w.fake, &w.forwarder.base, Some(PER_MINUTE)));
    let (now, engine) = (w.env.now(), &app.services.engine);
    let mut missing = 0;
    let mut people = Vec::new();
    for i in 0..PEOPLE {
        let (user, userid) = (UserId::parse(&format!("checked-{i:03}")).unwrap(), format!("{}", 30_000_000 + i));
        w.fake.add_person(&userid, "UTC");
        let pair = w.fake.grant_tokens(&userid, &["user.activity"]);
        let tokens = TokenSet {
            access_token: pair.access_token.into(),
            refresh_token: Some(pair.refresh_token.into()),
            // Every fourth one's access token has expired: the sync refreshes it first.
            expires_at: now + jiff::SignedDuration::from_hours(if i % 4 == 0 { -1 } else { 2 }),
            scope: Some("user.activity".into()),
        };
        // A healthy connection made over a week ago; every third one's subscription is gone.
        let connection = stepsync::domain::Connection {
            provider_user_id: Some(userid.clone()),
            tokens: Some(engine.cipher.encrypt(&user, Provider::Withings, 1, &tokens).unwrap()),
            token_version: 1,
            last_success_at: Some(now),
            slot: engine.schedule.slot(&user, Provider::Withings),
            ..stepsync::domain::Connection::new(
                user.clone(),
                Provider::Withings,
                now - jiff::SignedDuration::from_hours(200),
            )
        };
        w.env.store.create_connection(&connection).await.unwrap();
        match i % 3 {
            0 => missing += 1,
            _ => w.fake.subscribe_unchecked(&userid, &w.callback(), 16),
        }
        people.push(user);
    }

    // Each minute, a sync of everyone not yet checked (as the sweep and its retries would).
    let mut minutes = 0;
    loop {
        let mut left = 0;
        for user in &people {
            let c = w.env.store.get_connection(user, Provider::Withings).await.unwrap().unwrap();
            if c.subscription_checked_at.is_some() {
                continue;
            }
            left += 1;
            let event =
                Event::SyncRequested(SyncRequested::whole(user.clone(), Provider::Withings, SyncReason::Schedule));
            functions::sync_worker::handle(&app, serde_json::to_value(&event).unwrap()).await.unwrap();
        }
        if left == 0 {
            break;
        }
        minutes += 1;
        assert!(minutes < 20, "the checks get on: {left} left after {minutes} minutes");
        w.env.clock.set(w.env.now() + jiff::SignedDuration::from_secs(61));
        w.fake.advance(std::time::Duration::from_secs(61));
    }
    assert!(minutes > 1, "one minute's budget does not cover everyone");
    assert!(w.fake.max_requests_in_any_minute() <= PER_MINUTE, "{:?}", w.fake.requests_by_minute());
    assert_eq!(w.fake.all_subscriptions().len(), PEOPLE, "the {missing} missing ones made again");
    // A sync whose budget ran out between finding one missing and making it again asks about
    // that one again next time: at most once per minute.
    let listed = w.fake.calls("list") as usize;
    assert!((PEOPLE..PEOPLE + minutes).contains(&listed), "{listed} lists in {minutes} minutes");
    assert!(w.fake.calls("refresh") >= PEOPLE.div_ceil(4) as u64, "the expired tokens were refreshed");
    for user in &people {
        let c = w.env.store.get_connection(user, Provider::Withings).await.unwrap().unwrap();
        assert_eq!(c.subscription_lapsed_at, None, "{c:?}");
    }
}
