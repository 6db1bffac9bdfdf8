//! The integration tests' and the benchmarks' harness: an isolated table per test on the embedded DynamoDB (dynoxide, its own
//! in-memory database and port per test) or on the shared moto server, with a request counter
//! on the client and the sync engine wired to the real adapter.

use crate::dynoxide::EmbeddedDynamo;
use crate::moto::MotoServer;
use crate::table;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use stepsync::aws::{DynamoStore, RequestCounter, local_sdk_config};
use stepsync::crypto::AesGcmTokenCipher;
use stepsync::domain::{Challenge, ChallengeId, LocalDate, StepLimits};
use stepsync::engine::SyncEngine;
use stepsync::ports::ChallengeStore;
use stepsync::services::Challenges;
use stepsync::testing::{FixedClock, RecordingPublisher};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Dynoxide,
    Moto,
}

pub struct TestEnv {
    pub backend: Backend,
    pub endpoint: String,
    pub table: String,
    pub store: Arc<DynamoStore>,
    pub counter: RequestCounter,
    pub clock: Arc<FixedClock>,
    pub publisher: Arc<RecordingPublisher>,
    pub engine: SyncEngine,
    /// The table's change stream, opened on first use (`day_events`).
    stream: tokio::sync::Mutex<Option<crate::stream::TableStream>>,
    /// Whether the table has its stream (`table::Stream::Off` until `enable_stream`).
    streaming: std::sync::atomic::AtomicBool,
    /// What `settle` handled and `day_events` has not returned yet.
    handled: std::sync::Mutex<Vec<stepsync::events::StepsUpdated>>,
    _embedded: Option<EmbeddedDynamo>,
}

/// Unique names within one process (moto is shared by a test binary's tests).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// "Now" for the tests: mid-challenge for the challenges `TestEnv::challenge` makes.
pub const NOW: &str = "2026-11-25T18:00:00Z";

impl TestEnv {
    pub async fn new(backend: Backend) -> Self {
        Self::new_with(backend, table::Stream::AsTemplate).await
    }

    /// A `TestEnv` whose table has no change stream until [`Self::enable_stream`] (runs that
    /// write a lot and read no stream: `table::Stream::Off` says why).
    pub async fn new_with(backend: Backend, stream: table::Stream) -> Self {
        let (endpoint, embedded) = match backend {
            Backend::Dynoxide => {
                let db = EmbeddedDynamo::in_memory().await.expect("embedded DynamoDB starts");
                (db.endpoint().to_owned(), Some(db))
            }
            Backend::Moto => {
                (MotoServer::shared().expect("moto starts (make test installs it)").endpoint().to_owned(), None)
            }
        };
        let counter = RequestCounter::default();
        let sdk = local_sdk_config(&endpoint);
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(counter.clone()).build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let table = unique("steps");
        table::create_table_with(&client, &table, stream).await.expect("table from template.yaml");
        counter.reset();
        let store = Arc::new(DynamoStore::new(client, table.clone()));
        let clock = Arc::new(FixedClock::at(NOW));
        let publisher = Arc::new(RecordingPublisher::default());
        let engine = SyncEngine {
            steps: store.clone(),
            connections: store.clone(),
            publisher: publisher.clone(),
            cipher: Arc::new(AesGcmTokenCipher::new(&[42u8; 32])),
            clock: clock.clone(),
            limits: StepLimits::default(),
            schedule: stepsync::engine::Schedule::default(),
            // The retired Fitbit Web API is the one source the engine cases pull.
            providers: stepsync::ports::Providers::default()
                .with_source(Arc::new(stepsync::providers::FitbitLegacy::default())),
        };
        let streaming = (stream == table::Stream::AsTemplate).into();
        let stream = tokio::sync::Mutex::new(None);
        let handled = std::sync::Mutex::default();
        Self {
            backend,
            endpoint,
            table,
            store,
            counter,
            clock,
            publisher,
            engine,
            stream,
            streaming,
            handled,
            _embedded: embedded,
        }
    }

    /// Turns on the table's stream for an env made with `table::Stream::Off`; `settle` reads
    /// the changes made from here on.
    pub async fn enable_stream(&self) {
        let client = aws_sdk_dynamodb::Client::new(&local_sdk_config(&self.endpoint));
        table::enable_stream(&client, &self.table).await.expect("the template's stream on");
        self.streaming.store(true, Ordering::Relaxed);
    }

    /// Does what `day-events` does deployed: reads the table's stream from where the last call
    /// stopped, counts each committed day change into its challenges (those the writer did not)
    /// and publishes one `StepsUpdated` per change on `publisher`. Request counts are restored:
    /// what a test counts is its own requests, not the stream's (`settle_counted` keeps them).
    pub async fn settle(&self) {
        let counted = self.counter.snapshot();
        self.settle_counted().await;
        self.counter.restore(counted);
    }

    /// `settle`, with the stream handler's own requests left on the counter (what `day-events`
    /// costs, for the bench). A table without its stream has nothing to hand on.
    pub async fn settle_counted(&self) {
        if !self.streaming.load(Ordering::Relaxed) {
            return;
        }
        let mut stream = self.stream.lock().await;
        if stream.is_none() {
            let sdk = local_sdk_config(&self.endpoint);
            *stream = Some(crate::stream::TableStream::open(&sdk, &self.table).await.expect("the stream"));
        }
        let changes = stream.as_mut().expect("opened").read().await.expect("stream records");
        let events = stepsync::services::DayEvents {
            steps: self.store.clone(),
            challenges: self.store.clone(),
            publisher: Some(self.publisher.clone()),
        };
        events.handle(&changes).await.expect("handled");
        let updates = changes.iter().filter_map(stepsync::services::day_events::steps_updated);
        self.handled.lock().unwrap().extend(updates);
    }

    /// `settle`, then every `StepsUpdated` published since the last call.
    pub async fn day_events(&self) -> Vec<stepsync::events::StepsUpdated> {
        self.settle().await;
        std::mem::take(&mut *self.handled.lock().unwrap())
    }

    pub fn challenges(&self) -> Challenges<'_> {
        Challenges { steps: self.store.as_ref(), store: self.store.as_ref() }
    }

    /// Creates a challenge over `start..=end` (UTC, a week of grace, so none of the test
    /// dates' challenges is final at `NOW`) and returns its id.
    pub async fn challenge(&self, start: &str, end: &str) -> ChallengeId {
        self.challenge_with(start, end, 7).await
    }

    pub async fn challenge_with(&self, start: &str, end: &str, grace_days: u32) -> ChallengeId {
        let id = ChallengeId::parse(&unique("chal")).unwrap();
        let c = Challenge::new(id.clone(), "Test walk", date(start), date(end), "UTC", grace_days).unwrap();
        self.store.create_challenge(&c).await.unwrap();
        id
    }

    pub fn now(&self) -> jiff::Timestamp {
        use stepsync::clock::Clock;
        self.clock.now()
    }
}

/// The 32-byte token key the tests' apps use (base64).
pub const TEST_TOKEN_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
/// The webhook secret the tests' Google subscriber uses.
pub const TEST_WEBHOOK_SECRET: &str = "hook-secret-do-not-log";

/// The settings that point an app's Google Health client at the fake server.
pub fn google_vars(fake: &crate::fakes::google_health::FakeGoogleHealth) -> Vec<(&'static str, String)> {
    vec![
        ("STEPSYNC_GOOGLE_CLIENT_ID", fake.client_id()),
        ("STEPSYNC_GOOGLE_CLIENT_SECRET", fake.client_secret()),
        ("STEPSYNC_GOOGLE_AUTH_URL", fake.auth_url()),
        ("STEPSYNC_GOOGLE_TOKEN_URL", fake.token_url()),
        ("STEPSYNC_GOOGLE_REVOKE_URL", fake.revoke_url()),
        ("STEPSYNC_GOOGLE_API_BASE", fake.api_base().to_owned()),
        ("STEPSYNC_GOOGLE_KEYSET_URL", fake.keyset_url()),
        ("STEPSYNC_GOOGLE_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET.to_owned()),
    ]
}

/// The real functions' `App` over this test's table, publisher and clock, with `extra`
/// settings on top of the defaults.
pub fn app(env: &TestEnv, extra: Vec<(&'static str, String)>) -> functions::app::App {
    app_with(env, extra, |providers, _| providers)
}

/// As `app`, with the provider registry the settings give passed through `adjust` first (a
/// test wraps a client to watch or hold it).
pub fn app_with(
    env: &TestEnv,
    extra: Vec<(&'static str, String)>,
    adjust: impl FnOnce(stepsync::ports::Providers, &stepsync::config::Config) -> stepsync::ports::Providers,
) -> functions::app::App {
    app_loading(env, extra, stepsync::config::Loads::EVERYTHING, adjust)
}

/// As `app_with`, built as a deployed function that `loads` only part: the secret settings it
/// does not load are taken out first, as SSM would never have fetched them.
pub fn app_loading(
    env: &TestEnv,
    extra: Vec<(&'static str, String)>,
    loads: stepsync::config::Loads,
    adjust: impl FnOnce(stepsync::ports::Providers, &stepsync::config::Config) -> stepsync::ports::Providers,
) -> functions::app::App {
    let mut vars: std::collections::HashMap<String, String> = [
        ("STEPSYNC_TABLE", env.table.clone()),
        ("STEPSYNC_TOKEN_KEY", TEST_TOKEN_KEY.to_owned()),
        ("STEPSYNC_PUBLIC_URL", "https://api.stepsync.example".to_owned()),
        ("STEPSYNC_RETURN_TO_ALLOWLIST", "http://127.0.0.1:3000/".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let loaded = loads.secret_settings();
    vars.retain(|name, _| !stepsync::aws::SECRET_SETTINGS.contains(&name.as_str()) || loaded.contains(&name.as_str()));
    let config = stepsync::config::Config::loading(&vars, loads).expect("test configuration");
    let clock: Arc<dyn stepsync::clock::Clock> = env.clock.clone();
    let providers = stepsync::providers::registry(config.sources(), env.store.clone(), clock.clone())
        .expect("the provider clients build");
    let providers = adjust(providers, &config);
    functions::app::App::with_providers(config, env.store.clone(), env.publisher.clone(), clock, providers)
}

/// A `lambda_http` request from a sample in `events/`, as `user` (no claims for `None`),
/// after `edit` changed the JSON.
pub fn request_from_sample(
    sample: &str,
    user: Option<&stepsync::domain::UserId>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> lambda_http::Request {
    let path = crate::workspace_root().join("events").join(sample);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
    match user {
        Some(user) => event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = user.as_str().into(),
        None => {
            event["requestContext"].as_object_mut().unwrap().remove("authorizer");
        }
    }
    edit(&mut event);
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// What a person's app and browser do to start connecting `provider` through the real
/// handler: the app asks for a start link as `user`, the browser opens it. Answers the consent
/// page's URL and the state cookie (`name=value`) the browser now holds.
pub async fn start_connecting(
    app: &functions::app::App,
    user: &stepsync::domain::UserId,
    provider: stepsync::domain::Provider,
) -> (String, String) {
    let on_provider = |e: &mut serde_json::Value, path: &str| {
        e["rawPath"] = path.into();
        e["requestContext"]["http"]["path"] = path.into();
        e["pathParameters"]["provider"] = provider.as_str().into();
    };
    let ask = request_from_sample("oauth_authorize.json", Some(user), |e| {
        on_provider(e, &format!("/v1/connections/{provider}/authorize"));
    });
    let res = functions::oauth::handle(app, ask).await;
    assert_eq!(res.status(), 200, "the start link: {}", body_json(&res));
    let link = body_json(&res)["authorize_url"].as_str().expect("an authorize_url").to_owned();
    let url = reqwest::Url::parse(&link).expect("the start link is a URL");
    assert_eq!(url.path(), format!("/oauth/{provider}/start"));
    let ticket = url.query_pairs().find(|(k, _)| k == "ticket").map(|(_, v)| v.into_owned()).expect("a ticket");
    let open = request_from_sample("oauth_start.json", None, |e| {
        on_provider(e, &format!("/oauth/{provider}/start"));
        e["queryStringParameters"]["ticket"] = ticket.as_str().into();
        e["rawQueryString"] = format!("ticket={ticket}").into();
    });
    let res = functions::oauth::handle(app, open).await;
    assert_eq!(res.status(), 302, "opening the start link");
    let header = |name: &str| res.headers()[name].to_str().unwrap().to_owned();
    let cookie = header("set-cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"), "{cookie}");
    (header("location"), cookie.split(';').next().unwrap().to_owned())
}

/// `user`'s connection to `provider` as the status answer (`GET /v1/sync/status`) shows it.
pub async fn connection_status(
    app: &functions::app::App,
    user: &stepsync::domain::UserId,
    provider: stepsync::domain::Provider,
) -> serde_json::Value {
    let req = request_from_sample("sync_status.json", Some(user), |_| {});
    let res = functions::manual_sync::handle(app, req).await;
    assert_eq!(res.status(), 200, "{}", body_json(&res));
    let body = body_json(&res);
    let connections = body["connections"].as_array().cloned().unwrap_or_default();
    connections
        .into_iter()
        .find(|c| c["provider"] == provider.as_str())
        .unwrap_or_else(|| panic!("no {provider} connection in {body}"))
}

/// A response body as JSON (`null` when empty). A body that is not JSON fails loudly, with the
/// body: an answer the API documents as JSON must be JSON, never quietly `null`.
pub fn body_json(res: &lambda_http::Response<lambda_http::Body>) -> serde_json::Value {
    let bytes: &[u8] = match res.body() {
        lambda_http::Body::Empty => return serde_json::Value::Null,
        lambda_http::Body::Text(t) => t.as_bytes(),
        lambda_http::Body::Binary(b) => b,
        other => panic!("a {} answer with an unexpected body: {other:?}", res.status()),
    };
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!("a {} answer whose body is not JSON ({e}): {}", res.status(), String::from_utf8_lossy(bytes))
    })
}

pub fn date(raw: &str) -> LocalDate {
    LocalDate::parse(raw).unwrap()
}

/// Runs each named `async fn(TestEnv)` against both local DynamoDB implementations: for the
/// DynamoDB adapter's contract (the store and the engine over it), which must hold on each.
/// The cases are named `dynoxide::case` and `moto::case`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        $crate::on_backend!(dynoxide, Dynoxide, $($case),*);
        $crate::on_backend!(moto, Moto, $($case),*);
    };
}

/// Runs each named `async fn(TestEnv)` on dynoxide only: for the handlers and end-to-end
/// cases, which stand on the adapter contract `on_both_backends!` already proves on both.
/// The cases are named `dynoxide::case`.
#[macro_export]
macro_rules! on_dynoxide {
    ($($case:ident),* $(,)?) => {
        $crate::on_backend!(dynoxide, Dynoxide, $($case),*);
    };
}

/// One `#[tokio::test]` per case in `mod $module`, each on a fresh `TestEnv` on `$backend`.
#[doc(hidden)]
#[macro_export]
macro_rules! on_backend {
    ($module:ident, $backend:ident, $($case:ident),*) => {
        mod $module {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::harness::TestEnv::new($crate::harness::Backend::$backend).await).await;
                }
            )*
        }
    };
}

/// A `lambda_http` request for `/webhooks/{provider}` as API Gateway hands it over: `method`,
/// the raw `query`, `headers` (names lower-cased) and `body`.
pub fn webhook_request(
    provider: stepsync::domain::Provider,
    method: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> lambda_http::Request {
    request_from_sample("webhook_google_health_notification.json", None, |e| {
        let path = format!("/webhooks/{provider}");
        e["rawPath"] = path.as_str().into();
        e["requestContext"]["http"]["path"] = path.as_str().into();
        e["requestContext"]["http"]["method"] = method.into();
        e["pathParameters"]["provider"] = provider.as_str().into();
        e["rawQueryString"] = query.into();
        let parsed = reqwest::Url::parse(&format!("http://query.invalid/?{query}")).expect("a query string");
        let pairs: serde_json::Map<String, serde_json::Value> =
            parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned().into())).collect();
        e["queryStringParameters"] = pairs.into();
        let map = e["headers"].as_object_mut().expect("the sample has headers");
        map.clear();
        for (name, value) in headers {
            map.insert(name.to_ascii_lowercase(), value.clone().into());
        }
        e["body"] = String::from_utf8_lossy(body).into_owned().into();
        e["isBase64Encoded"] = false.into();
    })
}

/// A loopback server handing `/webhooks/{provider}` to the real webhook handler, as API
/// Gateway does deployed: the fakes of providers that call back (Oura's verification GET,
/// Withings' HEAD check, their notifications) reach the app through it. The app's public URL
/// is this server's, so the app is handed over once built (`serve`); until then it answers 503.
pub struct WebhookForwarder {
    pub base: String,
    app: Arc<std::sync::OnceLock<Arc<functions::app::App>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl WebhookForwarder {
    pub async fn start() -> Self {
        use axum::body::Bytes;
        use axum::extract::Path;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        let app: Arc<std::sync::OnceLock<Arc<functions::app::App>>> = Arc::default();
        let cell = app.clone();
        let route = move |Path(provider): Path<String>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let cell = cell.clone();
            async move {
                let (Some(app), Ok(provider)) = (cell.get().cloned(), provider.parse()) else {
                    return (StatusCode::SERVICE_UNAVAILABLE, Vec::new());
                };
                let headers: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let req = webhook_request(provider, method.as_str(), uri.query().unwrap_or(""), &headers, &body);
                let res = functions::webhook::handle(&app, req).await;
                let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                let body = match res.into_body() {
                    lambda_http::Body::Text(text) => text.into_bytes(),
                    lambda_http::Body::Binary(bytes) => bytes,
                    _ => Vec::new(),
                };
                (status, body)
            }
        };
        let router = axum::Router::new().route("/webhooks/{provider}", axum::routing::any(route));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let base = format!("http://{}", listener.local_addr().expect("a bound address"));
        let _task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { base, app, _task }
    }

    /// Hands requests to `app` from now on.
    pub fn serve(&self, app: Arc<functions::app::App>) {
        let _ = self.app.set(app);
    }
}

/// The provider's redirect back after consent (`redirect`, from a fake's consent page) handed to
/// the real `oauth` handler with the start's cookie; checks it answers the redirect that says
/// `connected={provider}`.
pub async fn finish_connecting(
    app: &functions::app::App,
    provider: stepsync::domain::Provider,
    redirect: &str,
    cookie: &str,
) {
    let url = reqwest::Url::parse(redirect).expect("the consent page redirects to a URL");
    let query: serde_json::Map<String, serde_json::Value> =
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned().into())).collect();
    let raw = url.query().unwrap_or("").to_owned();
    let path = format!("/oauth/{provider}/callback");
    let req = request_from_sample("oauth_callback.json", None, |e| {
        e["rawPath"] = path.as_str().into();
        e["requestContext"]["http"]["path"] = path.as_str().into();
        e["pathParameters"]["provider"] = provider.as_str().into();
        e["queryStringParameters"] = query.into();
        e["rawQueryString"] = raw.into();
        e["cookies"] = serde_json::json!([cookie]);
    });
    let res = functions::oauth::handle(app, req).await;
    let location = res.headers().get("location").map_or(String::new(), |l| l.to_str().unwrap_or("").to_owned());
    assert_eq!(res.status(), 302, "the callback: {location}");
    assert!(location.contains(&format!("connected={provider}")), "the callback: {location}");
}

/// Runs the `SyncRequested` events `publisher` received since `*from` through the real worker,
/// as the bus would; returns how many ran.
pub async fn run_sync_requests(
    app: &functions::app::App,
    publisher: &stepsync::testing::RecordingPublisher,
    from: &mut usize,
) -> usize {
    let events = publisher.events();
    let mut ran = 0;
    for event in &events[*from..] {
        if matches!(event, stepsync::events::Event::SyncRequested(_)) {
            let payload = serde_json::to_value(event).expect("an event is JSON");
            functions::sync_worker::handle(app, payload).await.expect("the worker answers");
            ran += 1;
        }
    }
    *from = events.len();
    ran
}
