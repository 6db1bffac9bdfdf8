//! Misfit end to end: connect, an SNS notification, the fetch, the leaderboard; and the SNS
//! checks that keep forged or foreign messages out. Real handlers, the fake Misfit cloud and
//! a fake SNS that signs with its own certificate.

use functions::app::App;
use jiff::Timestamp;
use lambda_http::{Body, Response};
use stepsync::domain::{ConnectionStatus, Provider, UserId};
use stepsync::events::Event;
use stepsync::ports::{ChallengeStore, ConnectionStore, StepStore};
use stepsync_local::fakes::misfit::{Dead, EventAction, FakeMisfit, Fault, MisfitEvent};
use stepsync_local::fakes::sns::{FakeSns, SignatureVersion};
use stepsync_local::harness::{self, TestEnv, date, request_from_sample, unique};
use stepsync_local::on_dynoxide;

on_dynoxide!(
    connect_notify_fetch_and_leaderboard,
    a_dead_misfit_cloud_asks_the_person_to_reconnect,
    forged_and_foreign_sns_messages_are_refused_and_nothing_is_fetched,
    a_rate_limit_with_its_reset_time_is_honoured,
);

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:misfit-fake";

struct World {
    env: TestEnv,
    fake: FakeMisfit,
    sns: FakeSns,
    app: App,
    user: UserId,
    misfit_id: String,
}

impl World {
    async fn new(env: TestEnv) -> Self {
        let fake = FakeMisfit::start().await;
        // The fake dates its messages by the test's clock, as the app's verifier does.
        let mut sns = FakeSns::start_with_clock(env.clock.clone()).await;
        // Messages name an https host, as real SNS does; the app maps it to the loopback fake.
        sns.advertise_as("https://sns.fake.test");
        let app = harness::app(
            &env,
            vec![
                ("STEPSYNC_MISFIT_CLIENT_ID", fake.client_id()),
                ("STEPSYNC_MISFIT_CLIENT_SECRET", fake.client_secret()),
                ("STEPSYNC_MISFIT_BASE_URL", fake.base_url().to_owned()),
                ("STEPSYNC_MISFIT_SNS_HOSTS", "sns.fake.test".to_owned()),
                ("STEPSYNC_MISFIT_TOPIC_ARNS", TOPIC.to_owned()),
                ("STEPSYNC_MISFIT_ALLOW_AWS_SNS", "false".to_owned()),
                ("STEPSYNC_MISFIT_SNS_URL_REWRITES", format!("https://sns.fake.test/|{}/", sns.base_url())),
            ],
        );
        let misfit_id = unique("misfit");
        fake.add_person(&misfit_id);
        Self { env, fake, sns, app, user: UserId::parse(&unique("walker")).unwrap(), misfit_id }
    }

    /// Connects the person (authorize, consent, callback) and checks the callback's answer: the
    /// redirect back with `connected=misfit`, so what a test checks next stands on a connection.
    async fn connect(&self) {
        let res = self.callback().await;
        let location = res.headers().get("location").map_or(String::new(), |l| l.to_str().unwrap().to_owned());
        assert_eq!(res.status(), 302, "the callback: {location}");
        let query: Vec<(String, String)> = reqwest::Url::parse(&location)
            .unwrap_or_else(|e| panic!("the callback redirects to a URL ({e}): {location}"))
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(query, [("connected".to_owned(), "misfit".to_owned())], "the callback: {location}");
        let connection = self.env.store.get_connection(&self.user, Provider::Misfit).await.unwrap();
        assert_eq!(connection.map(|c| c.status), Some(ConnectionStatus::Active), "connected");
    }

    /// Authorize, approve at the fake consent page, and return the callback's answer.
    async fn callback(&self) -> Response<Body> {
        let (location, cookie) = harness::start_connecting(&self.app, &self.user, Provider::Misfit).await;
        let redirect = self.fake.approve(&location, &self.misfit_id);
        let url = reqwest::Url::parse(&redirect).unwrap();
        let query: serde_json::Map<String, serde_json::Value> =
            url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned().into())).collect();
        let raw = url.query().unwrap_or("").to_owned();
        let req = request_from_sample("oauth_callback.json", None, |e| {
            e["rawPath"] = "/oauth/misfit/callback".into();
            e["requestContext"]["http"]["path"] = "/oauth/misfit/callback".into();
            e["pathParameters"]["provider"] = "misfit".into();
            e["queryStringParameters"] = query.into();
            e["rawQueryString"] = raw.into();
            e["cookies"] = serde_json::json!([cookie]);
        });
        functions::oauth::handle(&self.app, req).await
    }

    async fn deliver(&self, body: &str, message_type: &str) -> u16 {
        let body = body.to_owned();
        let message_type = message_type.to_owned();
        let req = request_from_sample("webhook_google_health_notification.json", None, |e| {
            e["rawPath"] = "/webhooks/misfit".into();
            e["requestContext"]["http"]["path"] = "/webhooks/misfit".into();
            e["pathParameters"]["provider"] = "misfit".into();
            let headers = e["headers"].as_object_mut().unwrap();
            headers.remove("x-healthapi-signature");
            headers.insert("content-type".into(), "text/plain; charset=UTF-8".into());
            headers.insert("x-amz-sns-message-type".into(), message_type.into());
            e["body"] = body.into();
        });
        functions::webhook::handle(&self.app, req).await.status().as_u16()
    }

    /// Runs the `SyncRequested` events published since `*from` through the worker.
    async fn run_syncs(&self, from: &mut usize) -> usize {
        let events = self.env.publisher.events();
        let mut ran = 0;
        for event in &events[*from..] {
            if matches!(event, Event::SyncRequested(_)) {
                functions::sync_worker::handle(&self.app, serde_json::to_value(event).unwrap()).await.unwrap();
                ran += 1;
            }
        }
        *from = events.len();
        ran
    }

    /// One scheduled sync of the person's Misfit connection, through the worker.
    async fn scheduled_sync(&self) -> functions::sync_worker::WorkerResult {
        let event = Event::SyncRequested(stepsync::events::SyncRequested {
            user: self.user.clone(),
            provider: Provider::Misfit,
            reason: stepsync::events::SyncReason::Schedule,
            start: None,
            end: None,
            noticed_at: None,
            notice_id: None,
            upload: None,
        });
        functions::sync_worker::handle(&self.app, serde_json::to_value(&event).unwrap()).await.unwrap()
    }

    fn event(&self, action: EventAction) -> MisfitEvent {
        MisfitEvent {
            updated_at: self.env.now(),
            ..MisfitEvent::new("activities", &unique("a"), &self.misfit_id, action)
        }
    }
}

async fn connect_notify_fetch_and_leaderboard(env: TestEnv) {
    let w = World::new(env).await;
    let challenge = w.env.challenge("2026-11-01", "2026-11-30").await;
    w.env.challenges().join(&challenge, &w.user, w.env.now()).await.unwrap();
    w.fake.set_steps(&w.misfit_id, "2026-11-22", 9823);
    w.connect().await;
    let mut seen = 0;
    assert_eq!(w.run_syncs(&mut seen).await, 1, "the backfill");
    assert_eq!(w.env.challenges().recompute(&challenge, &w.user).await.unwrap().best().total, 9823);

    // The subscription handshake, then a notification about today.
    let status = w.deliver(&w.sns.subscription_confirmation(TOPIC), "SubscriptionConfirmation").await;
    assert_eq!(status, 200);
    assert_eq!(w.sns.confirmed().len(), 1, "confirmed at the allow-listed host");
    w.fake.set_steps(&w.misfit_id, "2026-11-25", 3011);
    let before = w.fake.calls("summary");
    assert_eq!(w.deliver(&w.sns.notification(TOPIC, &[w.event(EventAction::Updated)]), "Notification").await, 204);
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.fake.calls("summary") - before, 1, "one fetch for the notice");
    let day = w.env.store.load_user_days(&w.user, &[date("2026-11-25")]).await.unwrap().days;
    assert_eq!(day[&date("2026-11-25")].total.get(), 3011);
    let board = w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap();
    assert_eq!(board.entries[0].total, 9823 + 3011);
    assert_eq!(
        w.env.store.participant(&challenge, &w.user).await.unwrap().unwrap().sources,
        w.env.challenges().recompute(&challenge, &w.user).await.unwrap()
    );

    // A deleted activity re-reads the days: the count may drop. The topic now signs with
    // SignatureVersion 2 (SHA-256), as a topic set to it does.
    w.sns.set_signature_version(SignatureVersion::V2);
    w.fake.set_steps(&w.misfit_id, "2026-11-25", 2000);
    w.env.clock.advance(std::time::Duration::from_secs(1));
    // Inside the coalescing window, but after the last sync started: it asks for its own sync.
    assert_eq!(w.deliver(&w.sns.notification(TOPIC, &[w.event(EventAction::Deleted)]), "Notification").await, 204);
    assert_eq!(w.run_syncs(&mut seen).await, 1);
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 9823 + 2000);
}

async fn forged_and_foreign_sns_messages_are_refused_and_nothing_is_fetched(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    let published = w.env.publisher.events().len();
    let certs = w.sns.calls("cert");

    let genuine = w.sns.notification(TOPIC, &[w.event(EventAction::Updated)]);
    assert_eq!(w.deliver(&w.sns.forge(&genuine), "Notification").await, 401, "forged signature");

    let mut foreign: serde_json::Value = serde_json::from_str(&genuine).unwrap();
    foreign["SigningCertURL"] = "https://evil.example/SimpleNotificationService-evil.pem".into();
    assert_eq!(w.deliver(&foreign.to_string(), "Notification").await, 401, "certificate off the allow-list");

    let mut confirmation: serde_json::Value = serde_json::from_str(&w.sns.subscription_confirmation(TOPIC)).unwrap();
    confirmation["SubscribeURL"] = "https://evil.example/?Action=ConfirmSubscription&Token=abc".into();
    assert_eq!(
        w.deliver(&confirmation.to_string(), "SubscriptionConfirmation").await,
        401,
        "SubscribeURL off the allow-list"
    );

    // A genuine message, delivered again after SNS's retries would have ended: a replay.
    let replayed = w.sns.notification(TOPIC, &[w.event(EventAction::Updated)]);
    w.env.clock.advance(std::time::Duration::from_secs(3601));
    assert_eq!(w.deliver(&replayed, "Notification").await, 401, "replayed after an hour");

    assert!(w.sns.confirmed().is_empty(), "nothing confirmed");
    assert!(w.sns.calls("cert") <= certs + 1, "at most the one allowed certificate was fetched");
    let new: Vec<_> = w.env.publisher.events()[published..].to_vec();
    assert!(new.iter().all(|e| !matches!(e, Event::SyncRequested(_))), "nothing was synced: {new:?}");
}

async fn a_rate_limit_with_its_reset_time_is_honoured(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    w.env.clock.set(Timestamp::now());
    w.fake.fail_next(Fault::RateLimited { reset_in_secs: 120 }, 1);
    let result = w.scheduled_sync().await;
    assert_eq!(
        result,
        functions::sync_worker::WorkerResult::Failed { code: stepsync::domain::FailureCode::RateLimited }
    );
    let connection = w.env.store.get_connection(&w.user, Provider::Misfit).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active);
    let wait = connection.next_sync_at.unwrap().duration_since(w.env.now()).as_secs();
    assert!((100..=125).contains(&wait), "the next try waits for the reset: {wait} s");
}

async fn a_dead_misfit_cloud_asks_the_person_to_reconnect(env: TestEnv) {
    let w = World::new(env).await;
    w.connect().await;
    for dead in [Dead::Gone, Dead::NotFound, Dead::Refused] {
        w.fake.set_dead(Some(dead)).await;
        let result = w.scheduled_sync().await;
        assert_eq!(
            result,
            functions::sync_worker::WorkerResult::Failed { code: stepsync::domain::FailureCode::ProviderRetired },
            "{dead:?}"
        );
        let connection = w.env.store.get_connection(&w.user, Provider::Misfit).await.unwrap().unwrap();
        assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
        let diagnosis = stepsync::diagnosis::diagnose(&connection, w.env.now());
        assert_eq!(diagnosis.action, stepsync::diagnosis::Action::Reconnect);
        // Reconnect for the next round.
        w.fake.set_dead(None).await;
        w.connect().await;
    }
}
