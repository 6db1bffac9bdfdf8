//! Garmin end to end, real handlers against the fake Garmin: connect through Garmin Connect's
//! consent page (PKCE), the backfill asked at connect and delivered by a ping, a ping raising a
//! day and moving the leaderboard, a correction lowering it and a replayed older ping changing
//! nothing, the refresh token rotated under Garmin's rule, a revoked grant and a deregistration
//! diagnosed reconnect, a withdrawn permission diagnosed, forged pings refused or harmless, the
//! backfill budget held in a sweep of 2,000 connections, and disconnect deregistering.

use functions::app::App;
use functions::sync_worker::WorkerResult;
use std::sync::Arc;
use stepsync::diagnosis::{Action, diagnose};
use stepsync::domain::{ConnectionStatus, LocalDate, Provider, TokenSet, UserId, local_today};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{ChallengeStore, ConnectionStore, StepStore};
use stepsync_local::fakes::garmin::{FakeGarmin, Fault, FaultTarget};
use stepsync_local::harness::{
    self, TestEnv, WebhookForwarder, body_json, request_from_sample, unique, webhook_request,
};
use stepsync_local::on_dynoxide;

on_dynoxide!(
    connect_backfill_ping_correct_replay_and_leaderboard,
    the_refresh_token_rotates_and_a_revoked_grant_asks_to_reconnect,
    a_deregistration_and_a_withdrawn_permission_are_diagnosed,
    forged_pings_are_refused_and_strangers_ignored,
    a_window_garmin_could_not_serve_is_retried_not_lost,
    a_sweep_of_two_thousand_connections_never_exceeds_the_backfill_budget,
    disconnect_deregisters_the_person,
);

const NOTIFY_TOKEN: &str = "garmin-notify-token-for-tests";

struct World {
    env: TestEnv,
    fake: FakeGarmin,
    app: Arc<App>,
    user: UserId,
    garmin_id: String,
    forwarder: WebhookForwarder,
}

fn vars(fake: &FakeGarmin, public_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STEPSYNC_GARMIN_CLIENT_ID", fake.client_id()),
        ("STEPSYNC_GARMIN_CLIENT_SECRET", fake.client_secret()),
        ("STEPSYNC_GARMIN_NOTIFY_TOKEN", NOTIFY_TOKEN.to_owned()),
        ("STEPSYNC_GARMIN_AUTH_URL", fake.authorize_url()),
        ("STEPSYNC_GARMIN_TOKEN_URL", fake.token_url()),
        ("STEPSYNC_GARMIN_API_BASE", fake.base_url().to_owned()),
        ("STEPSYNC_PUBLIC_URL", public_url.to_owned()),
    ]
}

fn garmin_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:08x}{:024x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl World {
    async fn new(env: TestEnv) -> Self {
        env.clock.set(jiff::Timestamp::now());
        let fake = FakeGarmin::start().await;
        let forwarder = WebhookForwarder::start().await;
        let app = Arc::new(harness::app(&env, vars(&fake, &forwarder.base)));
        forwarder.serve(app.clone());
        // The operator's step: our endpoint, with its secret, in Garmin's endpoint configuration.
        fake.set_ping_url(&format!("{}/webhooks/garmin?token={NOTIFY_TOKEN}", forwarder.base));
        let garmin_id = garmin_id();
        // A device seven hours behind UTC.
        fake.add_person(&garmin_id, -7 * 3600);
        Self { env, fake, app, user: UserId::parse(&unique("walker")).unwrap(), garmin_id, forwarder }
    }

    fn today(&self) -> LocalDate {
        local_today(self.env.now(), &jiff::tz::TimeZone::UTC)
    }

    async fn connect(&self) {
        let (location, cookie) = harness::start_connecting(&self.app, &self.user, Provider::Garmin).await;
        let redirect = self.fake.approve(&location, &self.garmin_id);
        harness::finish_connecting(&self.app, Provider::Garmin, &redirect, &cookie).await;
        let connection = self.connection().await;
        assert_eq!(connection.status, ConnectionStatus::Active);
        assert_eq!(connection.provider_user_id.as_deref(), Some(self.garmin_id.as_str()), "the Health API's user id");
        assert!(self.fake.registered(&self.garmin_id));
    }

    async fn connection(&self) -> stepsync::domain::Connection {
        self.env.store.get_connection(&self.user, Provider::Garmin).await.unwrap().unwrap()
    }

    async fn run_syncs(&self, from: &mut usize) -> usize {
        harness::run_sync_requests(&self.app, &self.env.publisher, from).await
    }

    async fn scheduled_sync(&self) -> WorkerResult {
        let event =
            Event::SyncRequested(SyncRequested::whole(self.user.clone(), Provider::Garmin, SyncReason::Schedule));
        functions::sync_worker::handle(&self.app, serde_json::to_value(&event).unwrap()).await.unwrap()
    }

    async fn total(&self, day: LocalDate) -> u32 {
        let days = self.env.store.load_user_days(&self.user, &[day]).await.unwrap().days;
        days.get(&day).map_or(0, |d| d.total.get())
    }

    async fn post(&self, query: &str, body: &[u8]) -> u16 {
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let req = webhook_request(Provider::Garmin, "POST", query, &headers, body);
        functions::webhook::handle(&self.app, req).await.status().as_u16()
    }

    fn syncs_since(&self, published: usize) -> usize {
        self.env.publisher.events()[published..].iter().filter(|e| matches!(e, Event::SyncRequested(_))).count()
    }
}

async fn connect_backfill_ping_correct_replay_and_leaderboard(env: TestEnv) {
    let w = World::new(env).await;
    let today = w.today();
    let challenge = w.env.challenge(&today.add_days(-10).to_string(), &today.add_days(10).to_string()).await;
    w.env.challenges().join(&challenge, &w.user, w.env.now()).await.unwrap();
    let yesterday = today.add_days(-1);
    w.fake.seed_steps(&w.garmin_id, yesterday.date(), 7_700);
    w.connect().await;
    let mut seen = 0;
    assert_eq!(w.run_syncs(&mut seen).await, 1, "the connect sync asks for a backfill");
    assert!(w.fake.calls("backfill") >= 1 && w.fake.deliveries().len() == 1, "which Garmin delivers as a ping");
    assert_eq!(w.fake.deliveries()[0].status, 200, "Garmin wants a 200");
    assert_eq!(w.run_syncs(&mut seen).await, 1, "the ping's window, read");
    assert_eq!(w.total(yesterday).await, 7_700);

    let first = w.fake.set_steps(&w.garmin_id, today.date(), 5_005).await;
    assert!(first.len() == 1 && first[0].status == 200, "{first:?}");
    let pulls = w.fake.calls("dailies");
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.fake.calls("dailies") - pulls, 1, "one read of the ping's window");
    assert_eq!(w.total(today).await, 5_005);
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 7_700 + 5_005);

    // A correction lowers the day: a later upload replaces the earlier one, never adds to it.
    w.fake.set_steps(&w.garmin_id, today.date(), 4_000).await;
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(today).await, 4_000);
    // The first ping again (a replay, or Garmin's retry arriving late): its older upload
    // is read again and changes nothing.
    let replay = serde_json::to_vec(&first[0].body).unwrap();
    assert_eq!(w.post(&format!("token={NOTIFY_TOKEN}"), &replay).await, 200);
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.total(today).await, 4_000, "the older upload never replaces the later one");
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 7_700 + 4_000);
    assert_eq!(
        w.env.store.participant(&challenge, &w.user).await.unwrap().unwrap().sources,
        w.env.challenges().recompute(&challenge, &w.user).await.unwrap()
    );
    // A reconcile by dates asks for a backfill (Garmin pings no range twice) and takes no day away.
    assert!(matches!(w.scheduled_sync().await, WorkerResult::Synced { .. }));
    assert_eq!((w.total(yesterday).await, w.total(today).await), (7_700, 4_000));
}

async fn the_refresh_token_rotates_and_a_revoked_grant_asks_to_reconnect(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let version = w.connection().await.token_version;
    w.fake.expire_access_tokens(&w.garmin_id);
    let refreshes = w.fake.calls("token");
    // The sync's own read is refused (401), so the engine refreshes once and tries again.
    assert!(matches!(w.scheduled_sync().await, WorkerResult::Synced { .. }));
    assert_eq!(w.fake.calls("token") - refreshes, 1);
    assert!(w.connection().await.token_version > version);
    // The rotated refresh token is the one kept: the old one is spent at Garmin.
    w.fake.expire_access_tokens(&w.garmin_id);
    assert!(matches!(w.scheduled_sync().await, WorkerResult::Synced { .. }));
    assert_eq!(w.connection().await.status, ConnectionStatus::Active);

    // The person removes the app's consent in Garmin Connect: Garmin answers 403.
    w.fake.revoke_grant(&w.garmin_id);
    let result = w.scheduled_sync().await;
    assert!(matches!(result, WorkerResult::Failed { .. }), "{result:?}");
    let connection = w.connection().await;
    assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
    assert_eq!(diagnose(&connection, w.env.now()).action, Action::Reconnect);
}

async fn a_deregistration_and_a_withdrawn_permission_are_diagnosed(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let mut seen = w.env.publisher.events().len();
    // The person stops sharing health data: the notice leads to a sync that learns it.
    let notices = w.fake.set_permissions(&w.garmin_id, &["ACTIVITY_EXPORT"]).await;
    assert_eq!(notices[0].status, 200);
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    let connection = w.connection().await;
    assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
    let diagnosis = diagnose(&connection, w.env.now());
    assert_eq!((diagnosis.code, diagnosis.action), ("missing_permission", Action::GrantPermission), "{diagnosis:?}");

    // They reconnect sharing it again, then disconnect StepSync in Garmin Connect.
    w.fake.set_permissions(&w.garmin_id, &["ACTIVITY_EXPORT", "HEALTH_EXPORT"]).await;
    w.connect().await;
    let mut seen = w.env.publisher.events().len();
    let notices = w.fake.deregister_user(&w.garmin_id).await;
    assert_eq!(notices[0].status, 200);
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    let connection = w.connection().await;
    assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
    assert_eq!(diagnose(&connection, w.env.now()).action, Action::Reconnect);
}

async fn forged_pings_are_refused_and_strangers_ignored(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let published = w.env.publisher.events().len();
    let now = w.env.now().as_second();
    let ours = format!("token={NOTIFY_TOKEN}");
    let ping = |user: &str, start: i64, end: i64| serde_json::to_vec(&w.fake.ping_body(user, start, end, "t")).unwrap();
    let body = ping(&w.garmin_id, now - 60, now);
    assert_eq!(w.post("", &body).await, 401, "no token");
    assert_eq!(w.post("token=guess", &body).await, 401, "a guessed token");
    assert_eq!(w.post(&format!("{ours}x"), &body).await, 401, "a longer token");
    assert_eq!(w.post(&ours, b"{not json").await, 400, "malformed");
    assert_eq!(w.post(&ours, &ping(&w.garmin_id, now - 90_000, now)).await, 400, "a window over 24 hours");
    let elsewhere = String::from_utf8(body.clone()).unwrap().replace(w.fake.base_url(), "http://169.254.169.254");
    assert_eq!(w.post(&ours, elsewhere.as_bytes()).await, 400, "a callbackURL that is not our Garmin API");
    let oversized = vec![b' '; functions::webhook::MAX_WEBHOOK_BODY + 1];
    assert_eq!(w.post(&ours, &oversized).await, 413);
    assert_eq!(w.syncs_since(published), 0, "nothing refused was acted on");
    // A well-formed ping about an account nobody connected: taken (200), nothing synced.
    assert_eq!(w.post(&ours, &ping("0123456789abcdef", now - 60, now)).await, 200);
    assert_eq!(w.syncs_since(published), 0);
    // Ours, with a made-up pull token: a sync, whose read Garmin refuses, changing nothing.
    assert_eq!(w.post(&ours, &body).await, 200);
    assert_eq!(w.syncs_since(published), 1);
    let mut seen = published;
    w.run_syncs(&mut seen).await;
    assert_eq!(w.total(w.today()).await, 0);
    let head = webhook_request(Provider::Garmin, "GET", &ours, &[], b"");
    assert_eq!(functions::webhook::handle(&w.app, head).await.status(), 400, "Garmin only POSTs");
}

async fn a_window_garmin_could_not_serve_is_retried_not_lost(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let published = w.env.publisher.events().len();
    w.fake.set_steps(&w.garmin_id, w.today().date(), 6_100).await;
    let ping = w.env.publisher.events()[published..]
        .iter()
        .find(|e| matches!(e, Event::SyncRequested(r) if r.upload.is_some()))
        .cloned()
        .expect("the ping's sync");
    let payload = serde_json::to_value(&ping).unwrap();
    w.fake.fail_next(FaultTarget::Api, Fault::Unavailable, 1);
    assert!(functions::sync_worker::handle(&w.app, payload.clone()).await.is_err(), "handed back for a retry");
    assert_eq!(w.total(w.today()).await, 0);
    // Lambda's retry of the same event reads the window.
    assert!(matches!(functions::sync_worker::handle(&w.app, payload).await, Ok(WorkerResult::Synced { .. })));
    assert_eq!(w.total(w.today()).await, 6_100);
}

async fn a_sweep_of_two_thousand_connections_never_exceeds_the_backfill_budget(env: TestEnv) {
    const PER_MINUTE: u64 = 60;
    let w = World::new(env).await;
    let mut settings = vars(&w.fake, &w.forwarder.base);
    settings.push(("STEPSYNC_GARMIN_BACKFILLS_PER_MINUTE", PER_MINUTE.to_string()));
    let app = harness::app(&w.env, settings);
    let now = w.env.now();
    let grant = |account: &str| {
        w.fake.add_person(account, 0);
        let (access, refresh) = w.fake.grant_tokens(account);
        TokenSet {
            access_token: access.into(),
            refresh_token: Some(refresh.into()),
            expires_at: now + jiff::SignedDuration::from_hours(20),
            scope: None,
        }
    };
    let counted = || crate::budget::Counted {
        fetches: w.fake.calls("backfill"),
        max_in_a_window: w.fake.max_backfills_in_any_minute(),
    };
    let window = (PER_MINUTE, std::time::Duration::from_secs(60));
    crate::budget::a_sweep_stays_within_the_budget(&w.env, &app, Provider::Garmin, window, grant, counted).await;
}

async fn disconnect_deregisters_the_person(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let req = request_from_sample("oauth_disconnect.json", Some(&w.user), |e| {
        e["rawPath"] = "/v1/connections/garmin".into();
        e["requestContext"]["http"]["path"] = "/v1/connections/garmin".into();
        e["pathParameters"]["provider"] = "garmin".into();
    });
    let res = functions::oauth::handle(&w.app, req).await;
    assert!(res.status().is_success(), "{}", body_json(&res));
    assert_eq!(w.fake.calls("deregister"), 1);
    assert!(!w.fake.registered(&w.garmin_id), "the registration deleted at Garmin");
    assert_eq!(w.connection().await.status, ConnectionStatus::Disconnected);
    // Garmin's deregistration notice that follows is taken and changes nothing.
    let last = w.fake.deliveries().last().cloned().expect("the deregistration notice");
    assert_eq!(last.status, 200);
    let mut seen = 0;
    w.run_syncs(&mut seen).await;
    assert_eq!(w.connection().await.status, ConnectionStatus::Disconnected);
}
