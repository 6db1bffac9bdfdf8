//! Oura end to end, real handlers against the fake Oura cloud: connect through its consent
//! page, the backfill, a signed notification raising a day and moving the leaderboard, a
//! deletion lowering it, the single-use refresh token rotated, a revoked grant diagnosed, an
//! expired subscription diagnosed and renewed by the daily run, forged notifications refused,
//! the app-wide budget never exceeded at Oura in a sweep of 2,000 connections, and disconnect
//! revoking the grant. Oura delivers its notifications over HTTP: a loopback forwarder hands
//! them (and its verification GETs) to the real webhook handler.

use functions::app::App;
use jiff::Timestamp;
use std::sync::Arc;
use stepsync::domain::{ConnectionStatus, LocalDate, Provider, TokenSet, UserId, local_today};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{ChallengeStore, ConnectionStore, StepStore};
use stepsync_local::fakes::oura::{EventType, FakeOura, Notification};
use stepsync_local::harness::{
    self, TestEnv, WebhookForwarder, body_json, request_from_sample, unique, webhook_request,
};
use stepsync_local::on_dynoxide;

on_dynoxide!(
    connect_backfill_notify_delete_and_leaderboard,
    the_single_use_refresh_token_rotates_and_a_revoked_grant_asks_to_reconnect,
    an_expired_subscription_is_diagnosed_and_renewed_by_the_daily_run,
    forged_and_replayed_notifications_are_refused_and_nothing_is_synced,
    a_sweep_of_two_thousand_connections_never_exceeds_the_app_budget,
    disconnect_revokes_the_grant_at_oura,
);

const VERIFICATION_TOKEN: &str = "oura-verification-token-for-tests";

struct World {
    env: TestEnv,
    fake: FakeOura,
    app: Arc<App>,
    user: UserId,
    oura_id: String,
    _forwarder: WebhookForwarder,
}

impl World {
    async fn new(env: TestEnv) -> Self {
        // The fake signs notifications with the real time; the app checks them against its own.
        env.clock.set(Timestamp::now());
        let fake = FakeOura::start().await;
        // Oura calls back (verification GETs, notifications) at the app's public URL.
        let forwarder = WebhookForwarder::start().await;
        let app = Arc::new(harness::app(
            &env,
            vec![
                ("STEPSYNC_OURA_CLIENT_ID", fake.client_id()),
                ("STEPSYNC_OURA_CLIENT_SECRET", fake.client_secret()),
                ("STEPSYNC_OURA_VERIFICATION_TOKEN", VERIFICATION_TOKEN.to_owned()),
                ("STEPSYNC_OURA_AUTH_URL", fake.authorize_url()),
                ("STEPSYNC_OURA_TOKEN_URL", fake.token_url()),
                ("STEPSYNC_OURA_REVOKE_URL", fake.revoke_url()),
                ("STEPSYNC_OURA_API_BASE", fake.base_url().to_owned()),
                ("STEPSYNC_PUBLIC_URL", forwarder.base.clone()),
            ],
        ));
        forwarder.serve(app.clone());
        let oura_id = unique("oura");
        fake.add_person(&oura_id, "Europe/Helsinki");
        Self { env, fake, app, user: UserId::parse(&unique("walker")).unwrap(), oura_id, _forwarder: forwarder }
    }

    fn today(&self) -> LocalDate {
        local_today(self.env.now(), &jiff::tz::TimeZone::UTC)
    }

    /// Connects the person (authorize, the fake's consent, callback) and checks they are.
    async fn connect(&self) {
        let (location, cookie) = harness::start_connecting(&self.app, &self.user, Provider::Oura).await;
        let redirect = self.fake.approve(&location, &self.oura_id);
        harness::finish_connecting(&self.app, Provider::Oura, &redirect, &cookie).await;
        let connection = self.env.store.get_connection(&self.user, Provider::Oura).await.unwrap();
        assert_eq!(connection.map(|c| c.status), Some(ConnectionStatus::Active));
    }

    /// Runs the `SyncRequested` events published since `*from` through the worker.
    async fn run_syncs(&self, from: &mut usize) -> usize {
        harness::run_sync_requests(&self.app, &self.env.publisher, from).await
    }

    async fn scheduled_sync(&self, user: &UserId) -> functions::sync_worker::WorkerResult {
        let event = Event::SyncRequested(SyncRequested::whole(user.clone(), Provider::Oura, SyncReason::Schedule));
        functions::sync_worker::handle(&self.app, serde_json::to_value(&event).unwrap()).await.unwrap()
    }

    async fn total(&self, day: LocalDate) -> u32 {
        let days = self.env.store.load_user_days(&self.user, &[day]).await.unwrap().days;
        days.get(&day).map_or(0, |d| d.total.get())
    }

    async fn status(&self) -> serde_json::Value {
        harness::connection_status(&self.app, &self.user, Provider::Oura).await
    }

    /// The daily run (`reconcile`): its subscription keeping is what these tests look at.
    async fn daily_run(&self) -> functions::reconcile::DailyReport {
        functions::reconcile::run(&self.app).await.unwrap()
    }
}

async fn connect_backfill_notify_delete_and_leaderboard(env: TestEnv) {
    let w = World::new(env).await;
    let today = w.today();
    let challenge = w.env.challenge(&today.add_days(-10).to_string(), &today.add_days(10).to_string()).await;
    w.env.challenges().join(&challenge, &w.user, w.env.now()).await.unwrap();
    let yesterday = today.add_days(-1);
    w.fake.seed_steps(&w.oura_id, yesterday.date(), 9_823);
    w.connect().await;
    let mut seen = 0;
    assert_eq!(w.run_syncs(&mut seen).await, 1, "the backfill");
    assert_eq!(w.total(yesterday).await, 9_823);

    // The daily run subscribes the app (Oura verifies our callback with a GET first).
    let report = w.daily_run().await;
    assert_eq!(report.subscriptions.live, [Provider::Oura], "{report:?}");
    assert_eq!(w.fake.subscriptions().len(), 3, "create, update and delete of daily activity");

    // The ring syncs: Oura notifies, the worker fetches, the leaderboard moves.
    let deliveries = w.fake.set_steps(&w.oura_id, today.date(), 3_011).await;
    assert!(!deliveries.is_empty() && deliveries.iter().all(|d| d.outcome.status() == Some(204)), "{deliveries:?}");
    let fetches = w.fake.calls("daily_activity");
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.fake.calls("daily_activity") - fetches, 1, "one fetch for the notice");
    assert_eq!(w.total(today).await, 3_011);
    let board = w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap();
    assert_eq!(board.entries[0].total, 9_823 + 3_011);

    // A correction lowers a day; a deleted day drops out.
    w.env.clock.set(Timestamp::now());
    w.fake.set_steps(&w.oura_id, today.date(), 2_000).await;
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    w.env.clock.set(Timestamp::now());
    w.fake.delete_day(&w.oura_id, yesterday.date()).await;
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(yesterday).await, 0);
    let board = w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap();
    assert_eq!(board.entries[0].total, 2_000);
    assert_eq!(
        w.env.store.participant(&challenge, &w.user).await.unwrap().unwrap().sources,
        w.env.challenges().recompute(&challenge, &w.user).await.unwrap()
    );
    assert_eq!(w.status().await["diagnosis"]["code"], "healthy");
}

async fn the_single_use_refresh_token_rotates_and_a_revoked_grant_asks_to_reconnect(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let today = w.today();
    w.fake.seed_steps(&w.oura_id, today.date(), 4_000);
    let tokens_before = w.env.store.get_connection(&w.user, Provider::Oura).await.unwrap().unwrap().token_version;

    // The access token runs out at Oura: the worker refreshes once, stores the new refresh
    // token (the old one is spent), and the sync goes through.
    w.fake.expire_access_tokens(&w.oura_id);
    let refreshes = w.fake.calls("token");
    assert!(matches!(w.scheduled_sync(&w.user).await, functions::sync_worker::WorkerResult::Synced { .. }));
    assert_eq!(w.fake.calls("token") - refreshes, 1, "one refresh");
    let after = w.env.store.get_connection(&w.user, Provider::Oura).await.unwrap().unwrap();
    assert!(after.token_version > tokens_before, "the rotated tokens were stored");
    assert_eq!(w.total(today).await, 4_000);
    // And they work again next time: a second expiry refreshes with the stored (new) token.
    w.fake.expire_access_tokens(&w.oura_id);
    assert!(matches!(w.scheduled_sync(&w.user).await, functions::sync_worker::WorkerResult::Synced { .. }));

    // The person removes StepSync in the Oura app: the next sync asks them to reconnect.
    w.fake.revoke_grant(&w.oura_id);
    let result = w.scheduled_sync(&w.user).await;
    assert!(matches!(result, functions::sync_worker::WorkerResult::Failed { .. }), "{result:?}");
    let connection = w.env.store.get_connection(&w.user, Provider::Oura).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
    let status = w.status().await;
    assert_eq!(status["diagnosis"]["action"], "reconnect", "{status}");
}

async fn an_expired_subscription_is_diagnosed_and_renewed_by_the_daily_run(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let mut seen = 0;
    w.run_syncs(&mut seen).await;
    assert_eq!(w.daily_run().await.subscriptions.live, [Provider::Oura]);
    assert_eq!(w.status().await["diagnosis"]["code"], "healthy");

    // Oura lets the subscriptions lapse (nobody renewed them): no notice arrives any more.
    w.fake.expire_subscriptions();
    let deliveries = w.fake.set_steps(&w.oura_id, w.today().date(), 1_234).await;
    assert!(deliveries.is_empty(), "an expired subscription delivers nothing");
    // The stored states still carry the old expiry: once it passes, the status says so.
    let stored = w.env.store.subscriptions(Provider::Oura).await.unwrap().unwrap();
    let past = stored.states.iter().filter_map(|s| s.expires_at).max().unwrap() + jiff::SignedDuration::from_secs(1);
    w.env.clock.set(past);
    let status = w.status().await;
    assert_eq!(status["diagnosis"]["code"], "subscription_lapsed", "{status}");
    assert_eq!(status["diagnosis"]["action"], "wait");

    // The daily run renews them; the status is healthy again and notices flow.
    w.env.clock.set(Timestamp::now());
    let renewals = w.fake.calls("subscription_renew");
    let report = w.daily_run().await;
    assert_eq!(report.subscriptions.live, [Provider::Oura], "{report:?}");
    assert_eq!(w.fake.calls("subscription_renew") - renewals, 3);
    assert!(w.fake.subscriptions().iter().all(|s| s.expiration_time > Timestamp::now()));
    assert_eq!(w.status().await["diagnosis"]["code"], "healthy");
    let deliveries = w.fake.set_steps(&w.oura_id, w.today().date(), 2_345).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(w.today()).await, 2_345);
}

async fn forged_and_replayed_notifications_are_refused_and_nothing_is_synced(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let published = w.env.publisher.events().len();
    let now = Timestamp::now();
    let notification = Notification {
        event_type: EventType::Update,
        data_type: "daily_activity".into(),
        object_id: w.fake.document_id(&w.oura_id, w.today().date()),
        event_time: now.to_string(),
        user_id: w.oura_id.clone(),
    };
    let send = |headers: Vec<(String, String)>, body: Vec<u8>| {
        let app = w.app.clone();
        async move {
            functions::webhook::handle(&app, webhook_request(Provider::Oura, "POST", "", &headers, &body))
                .await
                .status()
        }
    };
    let signed = w.fake.signed_notification(&notification, now.as_second());
    let headers = |signature: &str, timestamp: &str| {
        vec![
            ("x-oura-signature".to_owned(), signature.to_owned()),
            ("x-oura-timestamp".to_owned(), timestamp.to_owned()),
        ]
    };
    // Unsigned, a signature by another secret, a tampered body, a moved timestamp.
    assert_eq!(send(vec![], signed.body.clone()).await, 401);
    let forged = stepsync_local::fakes::oura::signature("not-the-secret", &signed.timestamp, &signed.body);
    assert_eq!(send(headers(&forged, &signed.timestamp), signed.body.clone()).await, 401);
    let mut tampered = signed.body.clone();
    let at = tampered.iter().position(|b| *b == b'u').unwrap();
    tampered[at] = b'v';
    assert_eq!(send(headers(&signed.signature, &signed.timestamp), tampered).await, 401);
    let moved = (now.as_second() - 1).to_string();
    assert_eq!(send(headers(&signed.signature, &moved), signed.body.clone()).await, 401);
    // A genuine notification replayed ten minutes later.
    let old = w.fake.signed_notification(&notification, now.as_second() - 600);
    assert_eq!(send(headers(&old.signature, &old.timestamp), old.body.clone()).await, 401);
    // A verification GET with a guessed token.
    let guess = functions::webhook::handle(
        &w.app,
        webhook_request(Provider::Oura, "GET", "verification_token=guess&challenge=abc", &[], b""),
    )
    .await;
    assert_eq!(guess.status(), 401);
    // A genuine one for an account nobody connected: accepted, nothing synced.
    let stranger = Notification { user_id: "someone-else".into(), ..notification.clone() };
    let genuine = w.fake.signed_notification(&stranger, now.as_second());
    assert_eq!(send(headers(&genuine.signature, &genuine.timestamp), genuine.body.clone()).await, 204);
    let new: Vec<_> = w.env.publisher.events()[published..].to_vec();
    assert!(new.iter().all(|e| !matches!(e, Event::SyncRequested(_))), "nothing was synced: {new:?}");
    // And the genuine one for our person is taken.
    assert_eq!(send(headers(&signed.signature, &signed.timestamp), signed.body.clone()).await, 204);
    assert!(w.env.publisher.events()[published..].iter().any(|e| matches!(e, Event::SyncRequested(_))));
}

async fn a_sweep_of_two_thousand_connections_never_exceeds_the_app_budget(env: TestEnv) {
    const PER_MINUTE: u64 = 120;
    let w = World::new(env).await;
    // Oura's app-wide limit, set low, and the app's budget set to the same.
    w.fake.set_rate_limits(PER_MINUTE, 100_000);
    let app = harness::app(
        &w.env,
        vec![
            ("STEPSYNC_OURA_CLIENT_ID", w.fake.client_id()),
            ("STEPSYNC_OURA_CLIENT_SECRET", w.fake.client_secret()),
            ("STEPSYNC_OURA_API_BASE", w.fake.base_url().to_owned()),
            ("STEPSYNC_OURA_TOKEN_URL", w.fake.token_url()),
            ("STEPSYNC_OURA_REQUESTS_PER_MINUTE", PER_MINUTE.to_string()),
        ],
    );
    let now = w.env.now();
    let grant = |account: &str| {
        w.fake.add_person(account, "UTC");
        let pair = w.fake.grant_tokens(account, &["daily", "personal"]);
        TokenSet {
            access_token: pair.access_token.into(),
            refresh_token: Some(pair.refresh_token.into()),
            expires_at: now + jiff::SignedDuration::from_hours(20),
            scope: Some("daily personal".into()),
        }
    };
    let counted = || crate::budget::Counted {
        fetches: w.fake.calls("daily_activity"),
        max_in_a_window: w.fake.max_requests_in_any_minute(),
    };
    crate::budget::a_sweep_stays_within_the_budget(
        &w.env,
        &app,
        Provider::Oura,
        (PER_MINUTE, std::time::Duration::from_secs(60)),
        grant,
        counted,
    )
    .await;
}

async fn disconnect_revokes_the_grant_at_oura(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let revokes = w.fake.calls("revoke");
    let req = request_from_sample("oauth_disconnect.json", Some(&w.user), |e| {
        e["rawPath"] = "/v1/connections/oura".into();
        e["requestContext"]["http"]["path"] = "/v1/connections/oura".into();
        e["pathParameters"]["provider"] = "oura".into();
    });
    let res = functions::oauth::handle(&w.app, req).await;
    assert!(res.status().is_success(), "{}", body_json(&res));
    assert_eq!(w.fake.calls("revoke") - revokes, 1, "revoked at Oura");
    let connection = w.env.store.get_connection(&w.user, Provider::Oura).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::Disconnected);
    // The grant is dead at Oura too: the old access token reads nothing.
    w.fake.seed_steps(&w.oura_id, w.today().date(), 100);
    assert!(matches!(w.scheduled_sync(&w.user).await, functions::sync_worker::WorkerResult::Skipped { .. }));
}
