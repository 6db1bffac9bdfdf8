//! Polar end to end, real handlers against the fake Polar: connect through Polar Flow's consent
//! page (the token answer names the account; the person is registered to our client), the
//! backfill, a signed notice raising a day and moving the leaderboard, a correction lowering
//! it, the one webhook switched off by Polar diagnosed and switched back on by the daily run,
//! forged notices refused, a revoked grant (no refresh token exists) asking to reconnect, the
//! client's budget held in a sweep of 2,000 connections, and disconnect deregistering.

use functions::app::App;
use std::sync::Arc;
use stepsync::domain::{ConnectionStatus, LocalDate, Provider, TokenSet, UserId, local_today};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{ChallengeStore, ConnectionStore, StepStore};
use stepsync_local::fakes::polar::{FakePolar, Fault, FaultTarget};
use stepsync_local::harness::{
    self, TestEnv, WebhookForwarder, body_json, request_from_sample, unique, webhook_request,
};
use stepsync_local::on_dynoxide;

on_dynoxide!(
    connect_register_backfill_notify_and_leaderboard,
    a_switched_off_webhook_is_diagnosed_and_switched_back_on,
    forged_notices_are_refused_and_a_revoked_grant_asks_to_reconnect,
    a_sweep_of_two_thousand_connections_never_exceeds_the_budget,
    disconnect_deregisters_the_person,
);

struct World {
    env: TestEnv,
    fake: FakePolar,
    app: Arc<App>,
    user: UserId,
    polar_id: u64,
    _forwarder: WebhookForwarder,
}

fn vars(fake: &FakePolar, public_url: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STEPSYNC_POLAR_CLIENT_ID", fake.client_id()),
        ("STEPSYNC_POLAR_CLIENT_SECRET", fake.client_secret()),
        ("STEPSYNC_POLAR_WEBHOOK_SECRET", secret.to_owned()),
        ("STEPSYNC_POLAR_AUTH_URL", fake.authorize_url()),
        ("STEPSYNC_POLAR_TOKEN_URL", fake.token_url()),
        ("STEPSYNC_POLAR_API_BASE", fake.base_url().to_owned()),
        ("STEPSYNC_PUBLIC_URL", public_url.to_owned()),
    ]
}

fn polar_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    u64::from(std::process::id()) * 1000 + NEXT.fetch_add(1, Ordering::Relaxed)
}

impl World {
    async fn new(env: TestEnv) -> Self {
        env.clock.set(jiff::Timestamp::now());
        let fake = FakePolar::start().await;
        let forwarder = WebhookForwarder::start().await;
        // The operator's step: the one webhook, made once, its key put in the secret store.
        let secret = fake.create_webhook_unverified(&format!("{}/webhooks/polar", forwarder.base));
        let app = Arc::new(harness::app(&env, vars(&fake, &forwarder.base, &secret)));
        forwarder.serve(app.clone());
        let polar_id = polar_id();
        fake.add_person(polar_id);
        Self { env, fake, app, user: UserId::parse(&unique("walker")).unwrap(), polar_id, _forwarder: forwarder }
    }

    fn today(&self) -> LocalDate {
        local_today(self.env.now(), &jiff::tz::TimeZone::UTC)
    }

    async fn connect(&self) {
        let (location, cookie) = harness::start_connecting(&self.app, &self.user, Provider::Polar).await;
        let redirect = self.fake.approve(&location, self.polar_id);
        harness::finish_connecting(&self.app, Provider::Polar, &redirect, &cookie).await;
        let connection = self.env.store.get_connection(&self.user, Provider::Polar).await.unwrap().unwrap();
        assert_eq!(connection.status, ConnectionStatus::Active);
        assert_eq!(connection.provider_user_id, Some(self.polar_id.to_string()), "the token answer's x_user_id");
        assert!(self.fake.member_id(self.polar_id).is_some(), "registered to our client");
    }

    async fn run_syncs(&self, from: &mut usize) -> usize {
        harness::run_sync_requests(&self.app, &self.env.publisher, from).await
    }

    async fn scheduled_sync(&self) -> functions::sync_worker::WorkerResult {
        let event =
            Event::SyncRequested(SyncRequested::whole(self.user.clone(), Provider::Polar, SyncReason::Schedule));
        functions::sync_worker::handle(&self.app, serde_json::to_value(&event).unwrap()).await.unwrap()
    }

    async fn total(&self, day: LocalDate) -> u32 {
        let days = self.env.store.load_user_days(&self.user, &[day]).await.unwrap().days;
        days.get(&day).map_or(0, |d| d.total.get())
    }

    async fn diagnosis_code(&self) -> String {
        let req = request_from_sample("sync_status.json", Some(&self.user), |_| {});
        let body = body_json(&functions::manual_sync::handle(&self.app, req).await);
        body["connections"][0]["diagnosis"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

async fn connect_register_backfill_notify_and_leaderboard(env: TestEnv) {
    let w = World::new(env).await;
    let today = w.today();
    let challenge = w.env.challenge(&today.add_days(-10).to_string(), &today.add_days(10).to_string()).await;
    w.env.challenges().join(&challenge, &w.user, w.env.now()).await.unwrap();
    let yesterday = today.add_days(-1);
    w.fake.seed_steps(w.polar_id, yesterday.date(), 7_700);
    w.connect().await;
    let mut seen = 0;
    assert_eq!(w.run_syncs(&mut seen).await, 1, "the backfill");
    assert_eq!(w.total(yesterday).await, 7_700);

    let deliveries = w.fake.set_steps(w.polar_id, today.date(), 5_005).await;
    assert!(deliveries.len() == 1 && deliveries[0].outcome.status() == Some(204), "{deliveries:?}");
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(today).await, 5_005);
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 7_700 + 5_005);

    // A correction lowers the day.
    w.env.clock.set(jiff::Timestamp::now());
    w.fake.set_steps(w.polar_id, today.date(), 4_000).await;
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 7_700 + 4_000);
    assert_eq!(
        w.env.store.participant(&challenge, &w.user).await.unwrap().unwrap().sources,
        w.env.challenges().recompute(&challenge, &w.user).await.unwrap()
    );
}

async fn a_switched_off_webhook_is_diagnosed_and_switched_back_on(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let mut seen = 0;
    w.run_syncs(&mut seen).await;
    let report = functions::reconcile::run(&w.app).await.unwrap();
    assert_eq!(report.subscriptions.live, [Provider::Polar], "{report:?}");
    assert_eq!(w.diagnosis_code().await, "healthy");

    // A week of failed deliveries: Polar switches the webhook off, and Polar is down when the
    // daily run tries to switch it on.
    w.fake.deactivate_webhook();
    w.fake.fail_next(FaultTarget::WebhookActivation, Fault::Unavailable, 1);
    let report = functions::reconcile::run(&w.app).await.unwrap();
    assert_eq!(report.subscriptions.lapsed, [Provider::Polar], "{report:?}");
    assert_eq!(w.diagnosis_code().await, "subscription_lapsed");

    // The next run switches it back on; notices flow again.
    let report = functions::reconcile::run(&w.app).await.unwrap();
    assert_eq!(report.subscriptions.live, [Provider::Polar], "{report:?}");
    assert!(w.fake.webhook().is_some_and(|hook| hook.active));
    assert_eq!(w.diagnosis_code().await, "healthy");
    let deliveries = w.fake.set_steps(w.polar_id, w.today().date(), 3_210).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(w.today()).await, 3_210);
}

async fn forged_notices_are_refused_and_a_revoked_grant_asks_to_reconnect(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let published = w.env.publisher.events().len();
    let body = serde_json::json!({
        "event": "ACTIVITY_SUMMARY", "user_id": w.polar_id, "date": w.today().to_string(),
        "timestamp": jiff::Timestamp::now().to_string(),
        "url": format!("https://www.polaraccesslink.com/v3/users/activities/{}", w.today()),
    })
    .to_string();
    let post = |signature: Option<String>, body: String| {
        let app = w.app.clone();
        async move {
            let mut headers = vec![("polar-webhook-event".to_owned(), "ACTIVITY_SUMMARY".to_owned())];
            headers.extend(signature.map(|s| ("polar-webhook-signature".to_owned(), s)));
            let req = webhook_request(Provider::Polar, "POST", "", &headers, body.as_bytes());
            functions::webhook::handle(&app, req).await.status().as_u16()
        }
    };
    assert_eq!(post(None, body.clone()).await, 401, "unsigned");
    assert_eq!(post(Some("00".repeat(32)), body.clone()).await, 401, "forged");
    let signature = w.fake.sign(body.as_bytes());
    assert_eq!(post(Some(signature.clone()), body.replace("ACTIVITY", "ACTIVITZ")).await, 401, "tampered");
    let stranger = body.replace(&w.polar_id.to_string(), "999");
    assert_eq!(post(Some(w.fake.sign(stranger.as_bytes())), stranger).await, 204, "a stranger: taken, ignored");
    let new: Vec<_> = w.env.publisher.events()[published..].to_vec();
    assert!(new.iter().all(|e| !matches!(e, Event::SyncRequested(_))), "nothing was synced: {new:?}");
    assert_eq!(post(Some(signature), body).await, 204);

    // The person removes StepSync in Polar Flow: no refresh token exists, so: reconnect.
    w.fake.revoke_grant(w.polar_id);
    let result = w.scheduled_sync().await;
    assert!(matches!(result, functions::sync_worker::WorkerResult::Failed { .. }), "{result:?}");
    let connection = w.env.store.get_connection(&w.user, Provider::Polar).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
    assert_eq!(w.diagnosis_code().await, "token_revoked");
}

async fn a_sweep_of_two_thousand_connections_never_exceeds_the_budget(env: TestEnv) {
    const PER_QUARTER_HOUR: u64 = 120;
    let w = World::new(env).await;
    let mut settings = vars(&w.fake, "https://api.stepsync.example", "unused");
    settings.push(("STEPSYNC_POLAR_REQUESTS_PER_QUARTER_HOUR", PER_QUARTER_HOUR.to_string()));
    let app = harness::app(&w.env, settings);
    let next = std::sync::atomic::AtomicU64::new(70_000_000);
    let grant = |_: &str| {
        let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        w.fake.add_person(id);
        let token = w.fake.grant_registered(id, &format!("member-{id}"));
        TokenSet {
            access_token: token.into(),
            refresh_token: None,
            expires_at: "2036-01-01T00:00:00Z".parse().unwrap(),
            scope: Some("accesslink.read_all".into()),
        }
    };
    let counted = || crate::budget::Counted {
        fetches: w.fake.calls("activities"),
        max_in_a_window: w.fake.max_requests_in_any_quarter_hour(),
    };
    let window = (PER_QUARTER_HOUR, std::time::Duration::from_secs(15 * 60));
    crate::budget::a_sweep_stays_within_the_budget(&w.env, &app, Provider::Polar, window, grant, counted).await;
}

async fn disconnect_deregisters_the_person(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let req = request_from_sample("oauth_disconnect.json", Some(&w.user), |e| {
        e["rawPath"] = "/v1/connections/polar".into();
        e["requestContext"]["http"]["path"] = "/v1/connections/polar".into();
        e["pathParameters"]["provider"] = "polar".into();
    });
    let res = functions::oauth::handle(&w.app, req).await;
    assert!(res.status().is_success(), "{}", body_json(&res));
    assert!(w.fake.member_id(w.polar_id).is_none(), "deregistered from our client");
    let connection = w.env.store.get_connection(&w.user, Provider::Polar).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::Disconnected);
}
