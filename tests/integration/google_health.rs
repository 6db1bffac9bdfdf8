//! Fitbit and Pixel through the Google Health API, end to end: the real `oauth`,
//! `provider-webhook` and `sync-worker` handlers, fed `lambda_http` requests built from the
//! samples in `events/`, against the fake Google Health server and local DynamoDB.

use crate::log_capture::{self, Secrets};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use functions::app::App;

use lambda_http::{Body, Request, Response};
use secrecy::ExposeSecret;

use functions::sync_worker::WorkerResult;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stepsync::config::Loads;
use stepsync::domain::{ChallengeId, ConnectionStatus, Provider, TokenSet, UserId};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{AuthorizeRequest, ConnectionStore, OAuthClient, ProviderError, ProviderIdentity, StepStore};
use stepsync::providers::google_health::GoogleHealthClient;
use stepsync_local::fakes::google_health::{FakeGoogleHealth, Fault, FaultTarget, Notification};
use stepsync_local::harness::{self, TestEnv, date, unique};
use stepsync_local::on_dynoxide;
use tokio::sync::oneshot;

on_dynoxide!(
    connect_callback_backfill_and_leaderboard_are_exact,
    the_callback_refuses_bad_states_and_stores_nothing,
    a_start_link_is_for_allowed_addresses_one_browser_and_one_minute,
    the_callback_refuses_denied_consent_missing_scope_and_token_errors,
    reconnecting_keeps_history_and_moves_the_token_version,
    a_second_person_cannot_connect_the_same_google_account,
    webhook_accepts_valid_signatures_and_refuses_the_rest,
    made_up_key_ids_cost_one_keyset_fetch_a_minute_and_a_rotated_key_still_arrives,
    each_function_works_with_only_the_part_it_loads,
    a_walk_deleted_at_google_leaves_the_day_and_the_leaderboard,
    twenty_duplicate_notifications_cause_one_provider_fetch,
    ten_concurrent_refreshes_make_one_token_call,
    a_rotated_token_key_opens_old_tokens_and_seals_them_again_on_refresh,
    a_revoked_refresh_token_asks_the_person_to_reconnect,
    rate_limits_back_off_without_a_hot_loop,
    a_disconnect_during_a_sync_stays_disconnected,
    connecting_through_google_retires_the_legacy_fitbit_connection,
);

const WEBHOOK_SECRET: &str = harness::TEST_WEBHOOK_SECRET;
const RETURN_TO: &str = "http://127.0.0.1:3000/challenges/nov-walk";

struct World {
    env: TestEnv,
    fake: FakeGoogleHealth,
    app: App,
    user: UserId,
    health_id: String,
    /// The app's Google Health client, as the app uses it.
    google: Arc<Witness>,
    secrets: Secrets,
}

/// Stands between the app and its Google Health client: remembers every token issued to the
/// app (for the log scan), and can hold a refresh after Google answered and before the engine
/// sees the answer, so that a test acts at exactly that point instead of guessing with sleeps.
struct Witness {
    inner: Arc<dyn OAuthClient>,
    secrets: Secrets,
    hold: Mutex<Option<Hold>>,
}

struct Hold {
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl Witness {
    fn remember(&self, tokens: &TokenSet) {
        self.secrets.remember(tokens.access_token.expose_secret());
        if let Some(refresh) = &tokens.refresh_token {
            self.secrets.remember(refresh.expose_secret());
        }
    }

    /// Holds the next refresh once Google answered: `reached` resolves then; the refresh goes
    /// on when `release` is sent (or dropped).
    fn hold_next_refresh(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached_tx, reached) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        *self.hold.lock().unwrap() = Some(Hold { reached: reached_tx, release: release_rx });
        (reached, release)
    }
}

#[async_trait]
impl OAuthClient for Witness {
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        self.inner.authorize_url(request)
    }

    fn required_scopes(&self) -> &[&str] {
        self.inner.required_scopes()
    }

    async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        let tokens = self.inner.exchange_code(code, verifier, redirect_uri).await;
        if let Ok(tokens) = &tokens {
            self.remember(tokens);
        }
        tokens
    }

    async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        let fresh = self.inner.refresh(tokens).await;
        if let Ok(fresh) = &fresh {
            self.remember(fresh);
        }
        let hold = self.hold.lock().unwrap().take();
        if let Some(Hold { reached, release }) = hold {
            let _ = reached.send(());
            let _ = release.await;
        }
        fresh
    }

    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        self.inner.identity(tokens).await
    }
}

impl World {
    async fn new(env: TestEnv) -> Self {
        log_capture::install();
        let fake = FakeGoogleHealth::start().await;
        let health_id = unique("health");
        fake.add_person(&health_id, None);
        let secrets = Secrets::default();
        secrets.remember(WEBHOOK_SECRET);
        secrets.remember(fake.client_secret());
        let mut witness = None;
        let app = harness::app_with(&env, harness::google_vars(&fake), |providers, config| {
            let settings = config.google.clone().expect("Google Health is configured");
            let inner = Arc::new(GoogleHealthClient::new(settings, env.clock.clone()).expect("the client builds"));
            let google = Arc::new(Witness { inner, secrets: secrets.clone(), hold: Mutex::new(None) });
            witness = Some(google.clone());
            providers.with_oauth(Provider::GoogleHealth, google)
        });
        let google = witness.expect("the registry was adjusted");
        let user = UserId::parse(&unique("walker")).unwrap();
        Self { env, fake, app, user, health_id, google, secrets }
    }

    fn request(&self, sample: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Request {
        // Samples without a JWT (the callback, webhooks) stay without one.
        let has_claims = sample.starts_with("oauth_authorize") || sample.starts_with("oauth_disconnect");
        harness::request_from_sample(sample, has_claims.then_some(&self.user), edit)
    }

    async fn authorize(&self) -> (String, String) {
        harness::start_connecting(&self.app, &self.user, Provider::GoogleHealth).await
    }

    /// The callback request the browser makes after the consent page redirected it.
    fn callback_request(&self, redirect: &str, cookie: Option<&str>) -> Request {
        let url = reqwest::Url::parse(redirect).unwrap();
        let query: serde_json::Map<String, serde_json::Value> =
            url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned().into())).collect();
        for secret in ["code", "state"] {
            if let Some(value) = query.get(secret).and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
                self.secrets.remember(value);
            }
        }
        let raw_query = url.query().unwrap_or("").to_owned();
        let cookie = cookie.map(str::to_owned);
        self.request("oauth_callback.json", move |e| {
            e["queryStringParameters"] = query.into();
            e["rawQueryString"] = raw_query.into();
            match cookie {
                Some(c) => e["cookies"] = serde_json::json!([c]),
                None => e.as_object_mut().unwrap().remove("cookies").map(|_| ()).unwrap_or(()),
            }
        })
    }

    /// Authorize, approve at the fake consent page, and return the callback's answer.
    async fn connect(&self) -> Response<Body> {
        let (location, cookie) = self.authorize().await;
        let redirect = self.fake.approve(&location, &self.health_id);
        functions::oauth::handle(&self.app, self.callback_request(&redirect, Some(&cookie))).await
    }

    /// Runs every `SyncRequested` published so far (and not yet run) through the worker.
    async fn run_sync_requests(&self, already: &mut usize) -> usize {
        let events = self.env.publisher.events();
        let mut ran = 0;
        for event in &events[*already..] {
            if let Event::SyncRequested(_) = event {
                functions::sync_worker::handle(&self.app, serde_json::to_value(event).unwrap()).await.unwrap();
                ran += 1;
            }
        }
        *already = events.len();
        ran
    }

    fn sync_requests(&self) -> Vec<SyncRequested> {
        self.env
            .publisher
            .events()
            .into_iter()
            .filter_map(|e| if let Event::SyncRequested(r) = e { Some(r) } else { None })
            .collect()
    }

    async fn connection(&self) -> Option<stepsync::domain::Connection> {
        self.env.store.get_connection(&self.user, Provider::GoogleHealth).await.unwrap()
    }

    /// The scheduled sync of the person's connection over Nov 20-25, as the worker receives it.
    fn scheduled_sync(&self) -> serde_json::Value {
        let event = Event::SyncRequested(SyncRequested {
            user: self.user.clone(),
            provider: Provider::GoogleHealth,
            reason: SyncReason::Schedule,
            start: Some(date("2026-11-20")),
            end: Some(date("2026-11-25")),
            noticed_at: None,
            notice_id: None,
            upload: None,
        });
        serde_json::to_value(&event).unwrap()
    }

    async fn sync_now(&self) -> functions::sync_worker::WorkerResult {
        functions::sync_worker::handle(&self.app, self.scheduled_sync()).await.unwrap()
    }

    async fn webhook(&self, body: &[u8], headers: &[(&str, &str)]) -> Response<Body> {
        functions::webhook::handle(&self.app, self.webhook_request(body, headers)).await
    }

    fn webhook_request(&self, body: &[u8], headers: &[(&str, &str)]) -> Request {
        let body = String::from_utf8(body.to_vec()).unwrap();
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.request("webhook_google_health_notification.json", move |e| {
            let map = e["headers"].as_object_mut().unwrap();
            map.remove("x-healthapi-signature");
            for (k, v) in headers {
                map.insert(k, v.into());
            }
            e["body"] = body.into();
        })
    }

    /// No secret this test saw (chose, was issued, or passes in `extra`) appears in any log line.
    async fn assert_no_secret_logged(&self, extra: &[String]) {
        for secret in extra {
            self.secrets.remember(secret.as_str());
        }
        self.secrets.assert_none_logged();
    }
}

fn header(res: &Response<Body>, name: &str) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn body_text(res: &Response<Body>) -> String {
    match res.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn query_of(location: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(location).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

async fn join(world: &World, start: &str, end: &str) -> ChallengeId {
    let c = world.env.challenge(start, end).await;
    world.env.challenges().join(&c, &world.user, world.env.now()).await.unwrap();
    c
}

async fn connect_callback_backfill_and_leaderboard_are_exact(env: TestEnv) {
    let w = World::new(env).await;
    let challenge = join(&w, "2026-11-01", "2026-11-30").await;
    for (day, steps) in [("2026-10-30", 5000), ("2026-11-20", 8000), ("2026-11-21", 0), ("2026-11-24", 12_345)] {
        w.fake.set_steps(&w.health_id, day, steps);
    }
    let res = w.connect().await;
    assert_eq!(res.status(), 302);
    let location = header(&res, "location");
    assert_eq!(query_of(&location, "connected").as_deref(), Some("google_health"), "{location}");
    assert!(location.starts_with(RETURN_TO));
    assert!(header(&res, "set-cookie").contains("Max-Age=0"), "the state cookie is cleared");

    let connection = w.connection().await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active);
    assert_eq!(connection.provider_user_id.as_deref(), Some(w.health_id.as_str()));
    assert_eq!(connection.token_version, 1);
    let backfill = w.sync_requests();
    assert_eq!(backfill.len(), 1);
    assert_eq!((backfill[0].reason, backfill[0].start), (SyncReason::Connect, Some(date("2026-11-01"))));

    assert_eq!(w.run_sync_requests(&mut 0).await, 1);
    let days = w.env.store.load_user_window(&w.user, date("2026-10-01"), date("2026-11-30")).await.unwrap().days;
    let got: Vec<(String, u32)> = days.values().map(|d| (d.date.to_string(), d.total.get())).collect();
    assert_eq!(got, [("2026-11-20".to_owned(), 8000), ("2026-11-21".to_owned(), 0), ("2026-11-24".to_owned(), 12_345)]);
    let board = w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap();
    assert_eq!(board.entries[0].total, 20_345);
    assert_eq!(board.entries[0].days, 2);
    assert_eq!(w.env.challenges().recompute(&challenge, &w.user).await.unwrap().best().total, 20_345);
    w.assert_no_secret_logged(&[query_of(&w.fake.approve(&w.authorize().await.0, &w.health_id), "code").unwrap()])
        .await;
}

/// Nothing of the connection was stored: no connection item, no account owner.
async fn assert_nothing_stored(w: &World) {
    assert!(w.connection().await.is_none(), "a connection was stored");
    let owner = w.env.store.provider_account_owner(Provider::GoogleHealth, &w.health_id).await.unwrap();
    assert!(owner.is_none(), "the account was claimed");
}

async fn a_start_link_is_for_allowed_addresses_one_browser_and_one_minute(env: TestEnv) {
    let w = World::new(env).await;
    let ask = |body: &str| {
        let body = body.to_owned();
        w.request("oauth_authorize.json", move |e| e["body"] = body.into())
    };
    let refused = |res: Response<Body>| {
        assert_eq!(res.status(), 400, "{}", body_text(&res));
        serde_json::from_str::<serde_json::Value>(&body_text(&res)).unwrap()["error"].clone()
    };

    // Off-site return addresses, however dressed up, are refused before anything is stored.
    for off_site in [
        "https://evil.test/",
        "http://127.0.0.1:3000.evil.test/",
        "http://127.0.0.1:3000@evil.test/",
        "http://user:pw@127.0.0.1:3000/",
        "http://127.0.0.1:3001/",
        "https://127.0.0.1:3000/",
    ] {
        let error = refused(functions::oauth::handle(&w.app, ask(&format!(r#"{{"return_to": "{off_site}"}}"#))).await);
        assert_eq!(error["field"], "return_to", "{off_site}");
    }
    let error = refused(functions::oauth::handle(&w.app, ask(r#"{"return_to": "x", "user": "bob"}"#)).await);
    assert_eq!(error["code"], "bad_request", "unknown fields are refused, the caller is the token's");

    // An allowed one: the link answers no-store, opens once, and only within a minute.
    let res = functions::oauth::handle(&w.app, ask(&format!(r#"{{"return_to": "{RETURN_TO}"}}"#))).await;
    assert_eq!((res.status().as_u16(), header(&res, "cache-control").as_str()), (200, "no-store"));
    let link: serde_json::Value = serde_json::from_str(&body_text(&res)).unwrap();
    let ticket = query_of(link["authorize_url"].as_str().unwrap(), "ticket").unwrap();
    let open = |ticket: &str| {
        let ticket = ticket.to_owned();
        w.request("oauth_start.json", move |e| {
            e["rawQueryString"] = format!("ticket={ticket}").into();
            e["queryStringParameters"]["ticket"] = ticket.into();
        })
    };
    w.env.clock.advance(Duration::from_secs(59));
    assert_eq!(functions::oauth::handle(&w.app, open(&ticket)).await.status(), 302);
    let again = refused(functions::oauth::handle(&w.app, open(&ticket)).await);
    assert_eq!(again["field"], "ticket");
    assert!(!again["message"].as_str().unwrap().contains(&ticket), "the error never echoes the ticket");

    let late = functions::oauth::handle(&w.app, ask("")).await;
    let late: serde_json::Value = serde_json::from_str(&body_text(&late)).unwrap();
    w.env.clock.advance(Duration::from_secs(60));
    let ticket = query_of(late["authorize_url"].as_str().unwrap(), "ticket").unwrap();
    assert_eq!(refused(functions::oauth::handle(&w.app, open(&ticket)).await)["field"], "ticket", "expired");
    assert_nothing_stored(&w).await;
}

async fn the_callback_refuses_bad_states_and_stores_nothing(env: TestEnv) {
    let w = World::new(env).await;
    let (location, cookie) = w.authorize().await;
    let redirect = w.fake.approve(&location, &w.health_id);
    let state = query_of(&redirect, "state").unwrap();

    let expect_400 = |res: Response<Body>, why: &str| {
        assert_eq!(res.status(), 400, "{why}: {}", body_text(&res));
        let body: serde_json::Value = serde_json::from_str(&body_text(&res)).unwrap();
        assert_eq!(body["error"]["field"], "state", "{why}");
        assert!(!body_text(&res).contains(&state), "{why}: the error echoes the state");
    };
    let missing = redirect.replace(&format!("state={state}"), "state=");
    expect_400(functions::oauth::handle(&w.app, w.callback_request(&missing, Some(&cookie))).await, "missing state");
    let forged = redirect.replace(&state, "forged-state");
    let res =
        functions::oauth::handle(&w.app, w.callback_request(&forged, Some("stepsync_oauth_state=forged-state"))).await;
    expect_400(res, "forged state");
    expect_400(functions::oauth::handle(&w.app, w.callback_request(&redirect, None)).await, "missing cookie");
    let res = functions::oauth::handle(&w.app, w.callback_request(&redirect, Some("stepsync_oauth_state=other"))).await;
    expect_400(res, "wrong cookie");
    assert_nothing_stored(&w).await;

    // Expired: eleven minutes on the consent page.
    w.env.clock.advance(Duration::from_secs(11 * 60));
    expect_400(functions::oauth::handle(&w.app, w.callback_request(&redirect, Some(&cookie))).await, "expired state");
    assert_nothing_stored(&w).await;
    w.env.clock.set(harness::NOW.parse().unwrap());

    // Reused: the first use connects, the second is refused.
    let (location, cookie) = w.authorize().await;
    let redirect = w.fake.approve(&location, &w.health_id);
    assert_eq!(functions::oauth::handle(&w.app, w.callback_request(&redirect, Some(&cookie))).await.status(), 302);
    let state = query_of(&redirect, "state").unwrap();
    let res = functions::oauth::handle(&w.app, w.callback_request(&redirect, Some(&cookie))).await;
    assert_eq!(res.status(), 400, "reused state");
    assert!(!body_text(&res).contains(&state));
    w.assert_no_secret_logged(&[query_of(&redirect, "code").unwrap()]).await;
}

async fn the_callback_refuses_denied_consent_missing_scope_and_token_errors(env: TestEnv) {
    let w = World::new(env).await;
    let error_of = |res: &Response<Body>| query_of(&header(res, "location"), "error");

    let (location, cookie) = w.authorize().await;
    let res = functions::oauth::handle(&w.app, w.callback_request(&w.fake.deny(&location), Some(&cookie))).await;
    assert_eq!((res.status().as_u16(), error_of(&res).as_deref()), (302, Some("access_denied")));

    let (location, cookie) = w.authorize().await;
    let unticked = w.fake.approve_with_scopes(&location, &w.health_id, &[]);
    let res = functions::oauth::handle(&w.app, w.callback_request(&unticked, Some(&cookie))).await;
    assert_eq!((res.status().as_u16(), error_of(&res).as_deref()), (302, Some("missing_permission")));

    let (location, cookie) = w.authorize().await;
    let redirect = w.fake.approve(&location, &w.health_id);
    w.fake.fail_next(FaultTarget::Token, Fault::ServerError, 1);
    let res = functions::oauth::handle(&w.app, w.callback_request(&redirect, Some(&cookie))).await;
    assert_eq!((res.status().as_u16(), error_of(&res).as_deref()), (302, Some("provider_error")));
    assert!(header(&res, "location").starts_with(RETURN_TO));
    assert_nothing_stored(&w).await;
    assert!(w.sync_requests().is_empty());
    w.assert_no_secret_logged(&[query_of(&redirect, "code").unwrap()]).await;
}

async fn reconnecting_keeps_history_and_moves_the_token_version(env: TestEnv) {
    let w = World::new(env).await;
    w.fake.set_steps(&w.health_id, "2026-11-24", 4000);
    assert_eq!(w.connect().await.status(), 302);
    w.run_sync_requests(&mut 0).await;
    let first = w.connection().await.unwrap();
    assert_eq!(w.connect().await.status(), 302);
    let second = w.connection().await.unwrap();
    assert_eq!(second.token_version, first.token_version + 1);
    assert_ne!(second.tokens, first.tokens);
    let days = w.env.store.load_user_days(&w.user, &[date("2026-11-24")]).await.unwrap().days;
    assert_eq!(days[&date("2026-11-24")].total.get(), 4000, "history kept");
}

async fn a_second_person_cannot_connect_the_same_google_account(env: TestEnv) {
    let mut w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    let first = w.user.clone();
    w.user = UserId::parse(&unique("other")).unwrap();
    let res = w.connect().await;
    assert_eq!(query_of(&header(&res, "location"), "error").as_deref(), Some("account_in_use"));
    assert!(w.connection().await.is_none());
    let owner = w.env.store.provider_account_owner(Provider::GoogleHealth, &w.health_id).await.unwrap();
    assert_eq!(owner, Some(first));
}

async fn webhook_accepts_valid_signatures_and_refuses_the_rest(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);

    // The handshake, both ways.
    let verification = br#"{"type": "verification"}"#;
    assert_eq!(w.webhook(verification, &[("authorization", WEBHOOK_SECRET)]).await.status(), 201);
    assert_eq!(w.webhook(verification, &[]).await.status(), 401);
    assert_eq!(w.webhook(verification, &[("authorization", "wrong")]).await.status(), 401);

    let array = Notification::upsert(&w.health_id, ["2026-11-24"]);
    let object = Notification::upsert(&w.health_id, ["2026-11-23"]).single_object();
    for (body, header_name) in [(array.body(), "X-HEALTHAPI-SIGNATURE"), (object.body(), "google-health-api-signature")]
    {
        let signature = w.fake.sign(&body);
        let res = w.webhook(&body, &[(header_name, &signature)]).await;
        assert_eq!(res.status(), 204, "{header_name}: {}", body_text(&res));
    }
    let dates: Vec<_> = w.sync_requests().iter().filter(|r| r.reason == SyncReason::Webhook).map(|r| r.start).collect();
    assert_eq!(dates, [Some(date("2026-11-24")), Some(date("2026-11-23"))]);

    let body = Notification::upsert(&w.health_id, ["2026-11-22"]).body();
    let signature = w.fake.sign(&body);
    let forged = w.fake.sign(b"something else");
    assert_eq!(w.webhook(&body, &[("x-healthapi-signature", &forged)]).await.status(), 401, "forged");
    let reserialised = serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    assert_eq!(w.webhook(&reserialised, &[("x-healthapi-signature", &signature)]).await.status(), 401, "re-serialised");
    assert_eq!(w.webhook(&body, &[]).await.status(), 401, "missing signature");
    let huge = vec![b' '; 300 * 1024];
    assert_eq!(w.webhook(&huge, &[("x-healthapi-signature", &w.fake.sign(&huge))]).await.status(), 413, "oversized");
    let garbage = b"{not json";
    assert_eq!(
        w.webhook(garbage, &[("x-healthapi-signature", &w.fake.sign(garbage))]).await.status(),
        400,
        "malformed"
    );
    assert_eq!(w.sync_requests().len(), 3, "no refused request asked for a sync");

    // A key the verifier has not seen, a minute after its last fetch: exactly one refetch of
    // the keyset, then accepted.
    w.env.clock.advance(Duration::from_secs(60));
    let before = w.fake.calls("keyset");
    w.fake.rotate_key();
    let body = Notification::upsert(&w.health_id, ["2026-11-21"]).body();
    assert_eq!(w.webhook(&body, &[("x-healthapi-signature", &w.fake.sign(&body))]).await.status(), 204);
    assert_eq!(w.fake.calls("keyset") - before, 1);
    // A key nobody publishes: one refetch, then refused; sent again later, refused unasked.
    w.env.clock.advance(Duration::from_secs(60));
    w.fake.set_publish_newest_key(false);
    w.fake.rotate_key();
    let before = w.fake.calls("keyset");
    let body = Notification::upsert(&w.health_id, ["2026-11-20"]).body();
    let unpublished = w.fake.sign(&body);
    assert_eq!(w.webhook(&body, &[("x-healthapi-signature", &unpublished)]).await.status(), 401);
    assert_eq!(w.fake.calls("keyset") - before, 1);
    w.env.clock.advance(Duration::from_secs(60));
    assert_eq!(w.webhook(&body, &[("x-healthapi-signature", &unpublished)]).await.status(), 401);
    assert_eq!(w.fake.calls("keyset") - before, 1, "the id the refetch did not find is remembered");
    w.assert_no_secret_logged(&[signature, forged, unpublished]).await;
}

/// The signature header `signature` with its Tink key id replaced by `key_id`.
fn with_key_id(signature: &str, key_id: u32) -> String {
    let mut raw = STANDARD.decode(signature).unwrap();
    raw[1..5].copy_from_slice(&key_id.to_be_bytes());
    STANDARD.encode(raw)
}

async fn made_up_key_ids_cost_one_keyset_fetch_a_minute_and_a_rotated_key_still_arrives(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    let body = Notification::upsert(&w.health_id, ["2026-11-24"]).body();
    let genuine = w.fake.sign(&body);
    assert_eq!(w.webhook(&body, &[("x-healthapi-signature", &genuine)]).await.status(), 204, "the keyset is in");
    w.env.clock.advance(Duration::from_secs(60));

    // A hundred notifications under key ids nobody published, over the next 50 seconds.
    let before = w.fake.calls("keyset");
    for n in 0..100u32 {
        let made_up = with_key_id(&genuine, 0x5eed_0000 + n);
        assert_eq!(w.webhook(&body, &[("x-healthapi-signature", &made_up)]).await.status(), 401, "key id {n}");
        w.env.clock.advance(Duration::from_millis(500));
    }
    assert_eq!(w.fake.calls("keyset") - before, 1, "one keyset fetch for a hundred made-up key ids");

    // Google rotates within that minute: its first notification under the new key waits...
    w.fake.rotate_key();
    let rotated = Notification::upsert(&w.health_id, ["2026-11-23"]).body();
    let signature = w.fake.sign(&rotated);
    assert_eq!(w.webhook(&rotated, &[("x-healthapi-signature", &signature)]).await.status(), 401);
    assert_eq!(w.fake.calls("keyset") - before, 1);
    // ... and Google's retry after the minute is accepted, with one more fetch.
    w.env.clock.advance(Duration::from_secs(10));
    assert_eq!(w.webhook(&rotated, &[("x-healthapi-signature", &signature)]).await.status(), 204);
    assert_eq!(w.fake.calls("keyset") - before, 2);
    let dates: Vec<_> = w.sync_requests().iter().filter(|r| r.reason == SyncReason::Webhook).map(|r| r.start).collect();
    assert_eq!(dates, [Some(date("2026-11-24")), Some(date("2026-11-23"))], "only the genuine notices");
}

/// Deployed, each function loads only its part: the public webhook verifies and hands over
/// with no token key and no client secret; the worker syncs without the endpoint secret; the
/// sweep holds no secret at all. Each is refused what it did not load.
async fn each_function_works_with_only_the_part_it_loads(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    let function = |loads| harness::app_loading(&w.env, harness::google_vars(&w.fake), loads, |p, _| p);
    let (webhook, worker, sweep) = (function(Loads::VERIFIERS), function(Loads::CLIENTS), function(Loads::STORE_ONLY));
    assert!(webhook.config.token_key().is_none() && sweep.config.token_key().is_none());
    assert!(webhook.config.google.as_ref().is_some_and(|g| g.client_secret.is_none()));
    assert!(worker.config.google.as_ref().is_some_and(|g| g.webhook_secret.is_none()));

    let body = Notification::upsert(&w.health_id, ["2026-11-24"]).body();
    let signed = |app| {
        functions::webhook::handle(app, w.webhook_request(&body, &[("x-healthapi-signature", &w.fake.sign(&body))]))
    };
    assert_eq!(signed(&worker).await.status(), 404, "the worker has no webhook verifier");
    assert_eq!(signed(&webhook).await.status(), 204);
    let request =
        w.sync_requests().into_iter().rfind(|r| r.reason == SyncReason::Webhook).expect("a sync was asked for");
    assert_eq!(request.start, Some(date("2026-11-24")));

    let event = serde_json::to_value(Event::SyncRequested(request)).unwrap();
    let skipped = functions::sync_worker::handle(&webhook, event.clone()).await.unwrap();
    assert!(matches!(skipped, WorkerResult::Skipped { ref why } if why.contains("not pulled")), "{skipped:?}");
    let synced = functions::sync_worker::handle(&worker, event).await.unwrap();
    assert!(matches!(synced, WorkerResult::Synced { .. }), "{synced:?}");
    assert!(functions::scheduled_sync::tick(&sweep).await.is_ok(), "the sweep needs no secret");
}

/// End to end through the real client, webhook and worker: the person deletes a walk in the
/// Fitbit app; Google signs a `DELETE` notice and its roll-up no longer has the day; the sync
/// the notice asks for removes Google's value and the leaderboard follows.
async fn a_walk_deleted_at_google_leaves_the_day_and_the_leaderboard(env: TestEnv) {
    let w = World::new(env).await;
    let challenge = join(&w, "2026-11-01", "2026-11-30").await;
    w.fake.set_steps(&w.health_id, "2026-11-23", 6000);
    w.fake.set_steps(&w.health_id, "2026-11-24", 4000);
    assert_eq!(w.connect().await.status(), 302);
    let mut ran = 0;
    assert_eq!(w.run_sync_requests(&mut ran).await, 1);
    assert_eq!(w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap().entries[0].total, 10_000);

    w.fake.clear_steps(&w.health_id, "2026-11-23");
    let body = Notification::delete(&w.health_id, ["2026-11-23"]).body();
    assert_eq!(w.webhook(&body, &[("x-healthapi-signature", &w.fake.sign(&body))]).await.status(), 204);
    assert_eq!(w.run_sync_requests(&mut ran).await, 1);

    let days = w.env.store.load_user_days(&w.user, &[date("2026-11-23")]).await.unwrap().days;
    let day = &days[&date("2026-11-23")];
    assert_eq!((day.total.get(), day.sources.len()), (0, 0), "Google's value is gone");
    let board = w.env.challenges().leaderboard(&challenge, 10, None).await.unwrap();
    assert_eq!((board.entries[0].total, board.entries[0].days), (4000, 1));
    assert_eq!(w.env.challenges().recompute(&challenge, &w.user).await.unwrap().best().total, 4000);
    let announced = w.env.day_events().await;
    let removed = announced.iter().any(|u| u.date == date("2026-11-23") && u.old_total == 6000 && u.new_total == 0);
    assert!(removed, "the deletion is announced like any change: {announced:?}");
    assert!(w.env.publisher.events().iter().any(|e| matches!(e, Event::StepsUpdated(u) if u.new_total == 0)));
}

async fn twenty_duplicate_notifications_cause_one_provider_fetch(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    let mut ran = w.env.publisher.events().len();
    w.fake.set_steps(&w.health_id, "2026-11-24", 7777);
    let body = Notification::upsert(&w.health_id, ["2026-11-24"]).body();
    let signature = w.fake.sign(&body);
    // All twenty at the same moment: the webhook writes nothing.
    let headers = [("x-healthapi-signature", signature.as_str())];
    let notices = (0..20).map(|_| w.webhook(&body, &headers));
    for answer in futures::future::join_all(notices).await {
        assert_eq!(answer.status(), 204);
    }
    w.fake.reset_calls();
    // Each notice asks for a sync; the worker starts them a moment later, and the first
    // fence covers the other nineteen (one conditional write each, no fetch).
    w.env.clock.advance(Duration::from_secs(1));
    assert_eq!(w.run_sync_requests(&mut ran).await, 20);
    assert_eq!(w.fake.calls("rollup"), 1);
    let days = w.env.store.load_user_days(&w.user, &[date("2026-11-24")]).await.unwrap().days;
    assert_eq!(days[&date("2026-11-24")].total.get(), 7777);

    // An account nobody connected: accepted, ignored.
    let stranger = Notification::upsert("nobody-we-know", ["2026-11-24"]).body();
    assert_eq!(w.webhook(&stranger, &[("x-healthapi-signature", &w.fake.sign(&stranger))]).await.status(), 204);
    assert_eq!(w.run_sync_requests(&mut ran).await, 0);
}

async fn ten_concurrent_refreshes_make_one_token_call(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    w.fake.set_steps(&w.health_id, "2026-11-24", 1234);
    w.env.clock.advance(Duration::from_secs(3600)); // our copy of the access token expired
    w.fake.reset_calls();
    let syncs = (0..10).map(|_| w.sync_now());
    let results = futures::future::join_all(syncs).await;
    assert_eq!(w.fake.calls("token_refresh"), 1, "single flight across concurrent syncs");
    for result in results {
        assert!(matches!(result, functions::sync_worker::WorkerResult::Synced { .. }), "{result:?}");
    }
    let connection = w.connection().await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active, "no false reconnect_required");
    assert_eq!(connection.token_version, 2);
    w.assert_no_secret_logged(&[]).await;
}

/// The token key rotated without a flag day: the functions get the new key with the old one
/// as previous; tokens sealed before still open, and the next refresh seals them with the new
/// key, after which the old key can go.
async fn a_rotated_token_key_opens_old_tokens_and_seals_them_again_on_refresh(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    let base64 = |key: &[u8; 32]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
    let (old, new) = ([42u8; 32], [43u8; 32]);
    assert_eq!(base64(&old), harness::TEST_TOKEN_KEY, "the world seals with the test key");
    let sealed_with =
        |c: &stepsync::domain::Connection| c.tokens.as_ref().unwrap().0.split(':').nth(1).unwrap().to_owned();
    assert_eq!(sealed_with(&w.connection().await.unwrap()), stepsync::crypto::key_id(&old));

    let rotating = harness::app(
        &w.env,
        [
            harness::google_vars(&w.fake),
            vec![("STEPSYNC_TOKEN_KEY", base64(&new)), ("STEPSYNC_TOKEN_KEY_PREVIOUS", base64(&old))],
        ]
        .concat(),
    );
    w.fake.set_steps(&w.health_id, "2026-11-24", 4321);
    w.env.clock.advance(Duration::from_secs(3600)); // the access token expired: a refresh
    let event = w.scheduled_sync();
    let synced = functions::sync_worker::handle(&rotating, event.clone()).await.unwrap();
    assert!(matches!(synced, functions::sync_worker::WorkerResult::Synced { changed: 1, .. }), "{synced:?}");
    let connection = w.connection().await.unwrap();
    assert_eq!((connection.token_version, sealed_with(&connection)), (2, stepsync::crypto::key_id(&new)));

    let rotated =
        harness::app(&w.env, [harness::google_vars(&w.fake), vec![("STEPSYNC_TOKEN_KEY", base64(&new))]].concat());
    let again = functions::sync_worker::handle(&rotated, event).await.unwrap();
    assert!(
        matches!(again, functions::sync_worker::WorkerResult::Synced { .. }),
        "the old key is no longer needed: {again:?}"
    );
    assert_eq!(w.connection().await.unwrap().status, ConnectionStatus::Active);
}

async fn a_revoked_refresh_token_asks_the_person_to_reconnect(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    w.fake.revoke_grant(&w.health_id);
    w.env.clock.advance(Duration::from_secs(3600));
    let result = w.sync_now().await;
    assert_eq!(
        result,
        functions::sync_worker::WorkerResult::Failed { code: stepsync::domain::FailureCode::ReconnectRequired }
    );
    let connection = w.connection().await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::ReconnectRequired);
    let changed: Vec<_> = w
        .env
        .publisher
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ConnectionStatusChanged(c) if c.new_status == ConnectionStatus::ReconnectRequired => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].action.contains("Reconnect"), "{}", changed[0].action);
}

async fn rate_limits_back_off_without_a_hot_loop(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    for retry_after in [Some(30), None] {
        w.fake.reset_calls();
        w.fake.fail_next(FaultTarget::Api, Fault::RateLimited { retry_after }, 1);
        let result = w.sync_now().await;
        assert_eq!(
            result,
            functions::sync_worker::WorkerResult::Failed { code: stepsync::domain::FailureCode::RateLimited }
        );
        assert_eq!(w.fake.calls("rollup"), 1, "one call, no retry loop");
        let connection = w.connection().await.unwrap();
        assert_eq!(connection.status, ConnectionStatus::Active);
        // What the provider asked for, else the default backoff (5 minutes, less at most 10 % jitter).
        let wait = retry_after.unwrap_or(270) as i64;
        let next = connection.next_sync_at.expect("the next try is scheduled");
        assert!(next >= w.env.now() + jiff::SignedDuration::from_secs(wait), "{next} for {retry_after:?}");
    }
}

async fn a_disconnect_during_a_sync_stays_disconnected(env: TestEnv) {
    let w = World::new(env).await;
    assert_eq!(w.connect().await.status(), 302);
    w.env.clock.advance(Duration::from_secs(3600)); // the sync will refresh
    // Google has answered the sync's refresh; the person disconnects before the sync stores
    // the new tokens.
    let (reached, release) = w.google.hold_next_refresh();
    let disconnect = async {
        reached.await.expect("the sync refreshed");
        let res = functions::oauth::handle(&w.app, w.request("oauth_disconnect.json", |_| {})).await;
        release.send(()).expect("the refresh is still held");
        res
    };
    let (sync, res) = tokio::join!(w.sync_now(), disconnect);
    assert_eq!(res.status(), 204);
    assert_eq!(
        sync,
        functions::sync_worker::WorkerResult::Skipped { why: "connection is disconnected".into() },
        "the late refresh found the connection gone"
    );
    let connection = w.connection().await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Disconnected, "the late sync did not reactivate it");
    assert!(connection.tokens.is_none(), "the late refresh did not resurrect tokens");
    assert!(w.env.store.provider_account_owner(Provider::GoogleHealth, &w.health_id).await.unwrap().is_none());
    assert_eq!(w.fake.calls("revoke"), 1, "revoked at the provider");
    let again = w.sync_now().await;
    assert_eq!(again, functions::sync_worker::WorkerResult::Skipped { why: "connection is disconnected".into() });
}

async fn connecting_through_google_retires_the_legacy_fitbit_connection(env: TestEnv) {
    let w = World::new(env).await;
    let legacy = unique("228S");
    let health = unique("health-legacy");
    w.fake.add_person(&health, Some(&legacy));
    let fitbit = stepsync::domain::Connection {
        provider_user_id: Some(legacy.clone()),
        ..stepsync::domain::Connection::new(w.user.clone(), Provider::Fitbit, w.env.now())
    };
    w.env.store.create_connection(&fitbit).await.unwrap();
    w.env.store.claim_provider_account(Provider::Fitbit, &legacy, &w.user).await.unwrap();
    w.env
        .engine
        .apply(
            &w.user,
            Provider::Fitbit,
            &jiff::tz::TimeZone::UTC,
            &[stepsync::domain::DailyValue { date: date("2026-11-02"), steps: 3210, observed_at: None }],
        )
        .await
        .unwrap();

    let (location, cookie) = w.authorize().await;
    let redirect = w.fake.approve(&location, &health);
    let res = functions::oauth::handle(&w.app, w.callback_request(&redirect, Some(&cookie))).await;
    assert_eq!(query_of(&header(&res, "location"), "connected").as_deref(), Some("google_health"));
    let old = w.env.store.get_connection(&w.user, Provider::Fitbit).await.unwrap().unwrap();
    assert_eq!(old.status, ConnectionStatus::Disconnected, "retired");
    assert!(w.env.store.provider_account_owner(Provider::Fitbit, &legacy).await.unwrap().is_none());
    let days = w.env.store.load_user_days(&w.user, &[date("2026-11-02")]).await.unwrap().days;
    assert_eq!(days[&date("2026-11-02")].total.get(), 3210, "history kept");
}
