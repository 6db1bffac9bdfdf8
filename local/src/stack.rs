//! The local stack: the real handlers behind a router with exactly the HttpApi's routes, the
//! embedded DynamoDB, an in-process bus that hands the same EventBridge JSON to `sync-worker`
//! and `nudges`, a receiver standing in for the reminder target (`/dev/receiver`), the
//! scheduler ticking, and the provider sandboxes (fake Google Health, Misfit, SNS, Oura, Withings, Polar and Garmin).

use crate::auth::LocalAuth;
use crate::dynoxide::EmbeddedDynamo;
use crate::fakes::garmin::FakeGarmin;
use crate::fakes::google_health::FakeGoogleHealth;
use crate::fakes::misfit::FakeMisfit;
use crate::fakes::oura::FakeOura;
use crate::fakes::polar::FakePolar;
use crate::fakes::sns::FakeSns;
use crate::fakes::withings::FakeWithings;
use crate::stream::TableStream;
use crate::table;
use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, get, on, post};
use axum::{Json, Router};
use base64::Engine;
use functions::app::App;
use lambda_http::Body as LambdaBody;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stepsync::domain::Provider;
use stepsync::events::Event;
use stepsync::ports::{EventPublisher, PublishError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// `STEPSYNC_PORT` (default 3000; 0 picks a free port).
    pub port: u16,
    /// The example company app's port, another origin than the API (`STEPSYNC_APP_PORT`,
    /// default the API's port + 1; 0 picks a free port).
    pub app_port: u16,
    /// The embedded DynamoDB's port (`STEPSYNC_DYNAMO_PORT`; 0 picks a free port).
    pub dynamo_port: u16,
    /// `None`: an in-memory database (tests); else the folder that keeps data across restarts.
    pub data_dir: Option<PathBuf>,
    pub table: String,
    /// How often the scheduler ticks.
    pub tick: Duration,
    pub store: StoreTarget,
    /// Whether the table has its change stream and `day-events` reads it (`make dev`, the
    /// tests). The bench's freshness run turns it off: `table::Stream::Off` says why.
    pub stream: table::Stream,
}

/// Which DynamoDB the stack keeps its table in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// dynoxide in-process: in memory, or on a file in `data_dir`.
    Embedded,
    /// Another DynamoDB-compatible endpoint (DynamoDB Local, moto, dynoxide's server), with
    /// dummy credentials, as local endpoints take.
    Endpoint(String),
    /// Real AWS: region, credentials and endpoint from the usual AWS settings.
    Aws,
}

impl StoreTarget {
    /// `Endpoint` when `AWS_ENDPOINT_URL_DYNAMODB` is set, `Aws` with
    /// `STEPSYNC_LOCAL_DYNAMODB=aws`, otherwise the embedded store.
    pub fn from_env() -> Self {
        match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            Ok(url) if !url.is_empty() => Self::Endpoint(url),
            _ if std::env::var("STEPSYNC_LOCAL_DYNAMODB").is_ok_and(|v| v == "aws") => Self::Aws,
            _ => Self::Embedded,
        }
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            port: 0,
            app_port: 0,
            dynamo_port: 0,
            data_dir: None,
            table: "stepsync".into(),
            tick: Duration::from_secs(60),
            store: StoreTarget::Embedded,
            stream: table::Stream::AsTemplate,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("local stack: {0}")]
pub struct StackError(String);

fn failed(e: impl std::fmt::Display) -> StackError {
    StackError(e.to_string())
}

/// The in-process bus: events go to a queue that a task drains, handing sync work to the
/// real `sync-worker` handler, status changes to the real `nudges` handler, reminders to the
/// local receiver (as the template's rules do), and keeping the rest for the console.
struct LocalBus {
    sender: mpsc::UnboundedSender<Event>,
}

#[async_trait]
impl EventPublisher for LocalBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        for event in events {
            self.sender.send(event.clone()).map_err(|_| PublishError::Failed {
                failed: 1,
                total: events.len(),
                reason: "the local bus stopped".into(),
            })?;
        }
        Ok(())
    }
}

/// A running local stack.
pub struct LocalStack {
    pub base_url: String,
    /// The example company app: a page on another origin that calls the API through CORS.
    pub app_url: String,
    pub app: Arc<App>,
    pub google: FakeGoogleHealth,
    pub misfit: FakeMisfit,
    pub oura: FakeOura,
    pub withings: FakeWithings,
    pub polar: FakePolar,
    pub garmin: FakeGarmin,
    pub sns: FakeSns,
    auth: Arc<LocalAuth>,
    /// Events the bus delivered that are for the company's app (StepsUpdated, ...), newest last.
    pub feed: Arc<Mutex<Vec<Event>>>,
    /// What reached the local reminder target (`POST /dev/receiver`), newest first.
    pub received: Received,
    dynamo: Option<EmbeddedDynamo>,
    shutdown: Option<(oneshot::Sender<()>, oneshot::Sender<()>)>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Clone)]
struct Shared {
    app: Arc<App>,
    auth: Arc<LocalAuth>,
    info: Arc<Value>,
    received: Received,
}

/// The bodies the local reminder target received, newest first, each with when it came.
pub type Received = Arc<Mutex<std::collections::VecDeque<Value>>>;

/// How many bodies the receiver keeps.
const RECEIVED_KEPT: usize = 500;

/// The reminder rule's own transformer (`template.yaml`, `NudgeTargetRule`) applied to
/// `event`, posted to the local receiver as the API destination would post it.
async fn deliver_reminder(http: &reqwest::Client, receiver: &str, event: &Event) {
    let Some(transformer) = crate::template::template().ok().and_then(|t| t.reminder_transformer.as_ref()) else {
        tracing::warn!("local bus: template.yaml has no reminder rule; the reminder stays on the bus");
        return;
    };
    let mut envelope = serde_json::to_value(event).unwrap_or(Value::Null);
    envelope["source"] = json!(stepsync::events::EVENT_SOURCE);
    envelope["time"] = json!(jiff::Timestamp::now().to_string());
    let body = match transformer.apply(&envelope) {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "local bus: the reminder could not be transformed");
            return;
        }
    };
    let sent = http.post(receiver).header(header::CONTENT_TYPE, "application/json").body(body).send().await;
    match sent.map(|r| r.status()) {
        Ok(status) if status.is_success() => {}
        Ok(status) => tracing::warn!(%status, "local bus: the receiver refused a reminder"),
        Err(error) => tracing::warn!(%error, "local bus: the receiver could not be reached"),
    }
}

/// A 32-byte key kept in the data folder (so stored tokens stay readable across restarts),
/// or a fresh one in memory.
fn key(data_dir: Option<&PathBuf>, name: &str) -> Result<Vec<u8>, StackError> {
    use rand::RngCore;
    if let Some(dir) = data_dir {
        let path = dir.join(name);
        if let Ok(bytes) = std::fs::read(&path)
            && bytes.len() == 32
        {
            return Ok(bytes);
        }
        let mut fresh = vec![0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        std::fs::create_dir_all(dir).map_err(failed)?;
        std::fs::write(&path, &fresh).map_err(failed)?;
        return Ok(fresh);
    }
    let mut fresh = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    Ok(fresh)
}

impl LocalStack {
    /// Starts everything; `progress` hears each step.
    pub async fn start(options: StackOptions, progress: impl Fn(&str)) -> Result<Self, StackError> {
        let (dynamo, sdk, dynamo_endpoint) = match &options.store {
            StoreTarget::Embedded => {
                progress("starting DynamoDB (embedded dynoxide)");
                let dynamo = match &options.data_dir {
                    Some(dir) => EmbeddedDynamo::on_file(&dir.join("stepsync.db"), options.dynamo_port).await,
                    None => EmbeddedDynamo::in_memory().await,
                }
                .map_err(failed)?;
                let sdk = stepsync::aws::local_sdk_config(dynamo.endpoint());
                let endpoint = dynamo.endpoint().to_owned();
                (Some(dynamo), sdk, endpoint)
            }
            StoreTarget::Endpoint(url) => {
                progress(&format!("starting DynamoDB (the endpoint {url})"));
                (None, stepsync::aws::local_sdk_config(url), url.clone())
            }
            StoreTarget::Aws => {
                progress("starting DynamoDB (AWS, from the usual AWS settings)");
                let config = stepsync::aws::load_sdk_config().await;
                let region = config.region().map_or_else(|| "no region set".to_owned(), ToString::to_string);
                (None, config, format!("AWS DynamoDB ({region})"))
            }
        };
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        table::ensure_table(&client, &options.table, options.stream).await.map_err(failed)?;

        progress("starting the provider sandboxes (Google Health, Misfit, SNS, Oura, Withings, Polar, Garmin)");
        let google = FakeGoogleHealth::start().await;
        let misfit = FakeMisfit::start().await;
        let oura = FakeOura::start().await;
        let withings = FakeWithings::start().await;
        let polar = FakePolar::start().await;
        let garmin = FakeGarmin::start().await;
        // One clock for the app and the fake SNS, whose messages the app's verifier dates by it.
        let clock: Arc<dyn stepsync::clock::Clock> = Arc::new(stepsync::clock::SystemClock);
        let mut sns = FakeSns::start_with_clock(clock.clone()).await;
        sns.advertise_as("https://sns.local.test");

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await.map_err(failed)?;
        let base_url = format!("http://{}", listener.local_addr().map_err(failed)?);
        let app_listener = tokio::net::TcpListener::bind(("127.0.0.1", options.app_port)).await.map_err(failed)?;
        let app_url = format!("http://{}", app_listener.local_addr().map_err(failed)?);
        // The operator's step for Polar: its one webhook, made once, its key then configured.
        let polar_webhook_secret = polar.create_webhook_unverified(&format!("{base_url}/webhooks/polar"));
        // And for Garmin: our endpoint, with its secret, in Garmin's endpoint configuration.
        garmin.set_ping_url(&format!("{base_url}/webhooks/garmin?token=local-garmin-notify-token"));
        let token_key = base64::engine::general_purpose::STANDARD.encode(key(options.data_dir.as_ref(), "token.key")?);
        let vars: HashMap<String, String> = [
            ("STEPSYNC_TABLE", options.table.clone()),
            ("STEPSYNC_TOKEN_KEY", token_key),
            ("STEPSYNC_PUBLIC_URL", base_url.clone()),
            ("STEPSYNC_RETURN_TO_ALLOWLIST", format!("{base_url}/,{app_url}/")),
            ("STEPSYNC_GOOGLE_CLIENT_ID", google.client_id()),
            ("STEPSYNC_GOOGLE_CLIENT_SECRET", google.client_secret()),
            ("STEPSYNC_GOOGLE_AUTH_URL", google.auth_url()),
            ("STEPSYNC_GOOGLE_TOKEN_URL", google.token_url()),
            ("STEPSYNC_GOOGLE_REVOKE_URL", google.revoke_url()),
            ("STEPSYNC_GOOGLE_API_BASE", google.api_base().to_owned()),
            ("STEPSYNC_GOOGLE_KEYSET_URL", google.keyset_url()),
            ("STEPSYNC_GOOGLE_WEBHOOK_SECRET", "local-webhook-secret".to_owned()),
            ("STEPSYNC_MISFIT_CLIENT_ID", misfit.client_id()),
            ("STEPSYNC_MISFIT_CLIENT_SECRET", misfit.client_secret()),
            ("STEPSYNC_MISFIT_BASE_URL", misfit.base_url().to_owned()),
            ("STEPSYNC_MISFIT_SNS_HOSTS", "sns.local.test".to_owned()),
            ("STEPSYNC_MISFIT_TOPIC_ARNS", crate::demo::SNS_TOPIC.to_owned()),
            ("STEPSYNC_MISFIT_ALLOW_AWS_SNS", "false".to_owned()),
            ("STEPSYNC_MISFIT_SNS_URL_REWRITES", format!("https://sns.local.test/|{}/", sns.base_url())),
            // The daily run (at start) subscribes the app at the fake Oura, which verifies the
            // callback with a GET to this stack's /webhooks/oura before it sends anything.
            ("STEPSYNC_OURA_CLIENT_ID", oura.client_id()),
            ("STEPSYNC_OURA_CLIENT_SECRET", oura.client_secret()),
            ("STEPSYNC_OURA_VERIFICATION_TOKEN", "local-oura-verification-token".to_owned()),
            ("STEPSYNC_OURA_AUTH_URL", oura.authorize_url()),
            ("STEPSYNC_OURA_TOKEN_URL", oura.token_url()),
            ("STEPSYNC_OURA_REVOKE_URL", oura.revoke_url()),
            ("STEPSYNC_OURA_API_BASE", oura.base_url().to_owned()),
            // Each person connecting Withings is subscribed at this stack's /webhooks/withings
            // (the fake checks it with a HEAD first); notices carry this token in the URL.
            ("STEPSYNC_WITHINGS_CLIENT_ID", withings.client_id()),
            ("STEPSYNC_WITHINGS_CLIENT_SECRET", withings.client_secret()),
            ("STEPSYNC_WITHINGS_NOTIFY_TOKEN", "local-withings-notify-token".to_owned()),
            ("STEPSYNC_WITHINGS_AUTH_URL", withings.authorize_url()),
            ("STEPSYNC_WITHINGS_API_BASE", withings.base_url().to_owned()),
            ("STEPSYNC_POLAR_CLIENT_ID", polar.client_id()),
            ("STEPSYNC_POLAR_CLIENT_SECRET", polar.client_secret()),
            ("STEPSYNC_POLAR_WEBHOOK_SECRET", polar_webhook_secret),
            ("STEPSYNC_POLAR_AUTH_URL", polar.authorize_url()),
            ("STEPSYNC_POLAR_TOKEN_URL", polar.token_url()),
            ("STEPSYNC_POLAR_API_BASE", polar.base_url().to_owned()),
            ("STEPSYNC_GARMIN_CLIENT_ID", garmin.client_id()),
            ("STEPSYNC_GARMIN_CLIENT_SECRET", garmin.client_secret()),
            ("STEPSYNC_GARMIN_NOTIFY_TOKEN", "local-garmin-notify-token".to_owned()),
            ("STEPSYNC_GARMIN_AUTH_URL", garmin.authorize_url()),
            ("STEPSYNC_GARMIN_TOKEN_URL", garmin.token_url()),
            ("STEPSYNC_GARMIN_API_BASE", garmin.base_url().to_owned()),
            // The console's feed shows them, as a company's app subscribed to them would.
            ("STEPSYNC_STEPS_UPDATED", "true".to_owned()),
            // Reminders go to the local receiver (/dev/receiver), the stand-in for NudgeTargetUrl.
            ("STEPSYNC_NUDGES", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(std::env::vars().filter(|(k, _)| k.starts_with("STEPSYNC_") && k != "STEPSYNC_TABLE"))
        .collect();
        let config = stepsync::config::Config::from_vars(&vars).map_err(failed)?;
        let store = Arc::new(stepsync::aws::DynamoStore::new(client, options.table.clone()));
        let (sender, mut receiver) = mpsc::unbounded_channel::<Event>();
        let app = Arc::new(App::from_parts(config, store, Arc::new(LocalBus { sender }), clock).map_err(failed)?);

        progress("starting the bus and the scheduler");
        let feed: Arc<Mutex<Vec<Event>>> = Arc::default();
        let received: Received = Arc::default();
        let mut tasks = Vec::new();
        let (bus_app, bus_feed) = (app.clone(), feed.clone());
        let receiver_url = format!("{base_url}/dev/receiver");
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(failed)?;
        tasks.push(tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                match &event {
                    // The nudges rule: deployed, it passes moves to reconnect_required only;
                    // the handler drops the rest before reading anything.
                    Event::ConnectionStatusChanged(_) => {
                        let app = bus_app.clone();
                        let mut payload = serde_json::to_value(&event).unwrap_or(Value::Null);
                        payload["source"] = json!(stepsync::events::EVENT_SOURCE);
                        payload["time"] = json!(jiff::Timestamp::now().to_string());
                        tokio::spawn(async move {
                            if let Err(error) = functions::nudges::handle(&app, payload).await {
                                tracing::warn!(%error, "local bus: nudges failed");
                            }
                        });
                    }
                    // The reminder rule, to the API destination's stand-in.
                    Event::ReminderDue(_) | Event::DigestDue(_) => {
                        let (http, url, event) = (http.clone(), receiver_url.clone(), event.clone());
                        tokio::spawn(async move { deliver_reminder(&http, &url, &event).await });
                    }
                    _ => {}
                }
                match event {
                    Event::SyncRequested(_) | Event::SyncShard(_) => {
                        let app = bus_app.clone();
                        // Like EventBridge: each event its own invocation, concurrently.
                        tokio::spawn(async move {
                            let payload = serde_json::to_value(&event).unwrap_or(Value::Null);
                            if let Err(error) = functions::sync_worker::handle(&app, payload).await {
                                tracing::warn!(%error, "local bus: sync-worker failed");
                            }
                        });
                    }
                    other => {
                        let mut feed = bus_feed.lock().unwrap_or_else(|e| e.into_inner());
                        feed.push(other);
                        let overflow = feed.len().saturating_sub(1000);
                        feed.drain(..overflow);
                    }
                }
            }
        }));
        // What DayEvents does deployed: the table's stream, each committed day write one
        // StepsUpdated on the bus (and so in the console's feed).
        let (stream_app, stream_table) = (app.clone(), options.table.clone());
        let reads_stream = options.stream == table::Stream::AsTemplate;
        tasks.extend(reads_stream.then(|| {
            tokio::spawn(async move {
                let mut stream = None;
                let mut interval = tokio::time::interval(Duration::from_millis(250));
                loop {
                    interval.tick().await;
                    if stream.is_none() {
                        match TableStream::open(&sdk, &stream_table).await {
                            Ok(opened) => stream = Some(opened),
                            Err(error) => {
                                tracing::warn!(%error, "local stream: not open yet");
                                continue;
                            }
                        }
                    }
                    let Some(open) = stream.as_mut() else { continue };
                    match open.read().await {
                        Ok(changes) if changes.is_empty() => {}
                        Ok(changes) => {
                            if let Err(first) = stream_app.services.day_events().handle(&changes).await {
                                tracing::warn!(first, "local stream: day changes not handled");
                            }
                        }
                        Err(error) => tracing::warn!(%error, "local stream: read failed"),
                    }
                }
            })
        }));
        // The daily reconcile, as its schedule runs it deployed: once now, then every day.
        let reconcile_app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(24 * 3600));
            loop {
                interval.tick().await;
                match functions::reconcile::run(&reconcile_app).await {
                    Ok(report) => tracing::info!(?report, "local reconcile"),
                    Err(error) => tracing::warn!(%error, "local reconcile failed"),
                }
            }
        }));
        let tick_app = app.clone();
        let every = options.tick;
        tasks.push(tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                if let Err(error) = functions::scheduled_sync::tick(&tick_app).await {
                    tracing::warn!(%error, "local scheduler tick failed");
                }
            }
        }));

        progress("starting the API router");
        let auth = Arc::new(LocalAuth::new(key(options.data_dir.as_ref(), "jwt.key")?));
        let connectable = [
            Provider::GoogleHealth,
            Provider::Misfit,
            Provider::Oura,
            Provider::Withings,
            Provider::Polar,
            Provider::Garmin,
        ]
        .map(|p| json!({"provider": p.as_str(), "name": p.display_name()}));
        let info = Arc::new(json!({
            "api": base_url,
            "app": app_url,
            "dynamodb": dynamo_endpoint,
            "google_health": google.base_url(),
            "misfit": misfit.base_url(),
            "oura": oura.base_url(),
            "withings": withings.base_url(),
            "polar": polar.base_url(),
            "garmin": garmin.base_url(),
            "sns": sns.base_url(),
            // The stand-in for the reminder target: what the reminder rule delivered, newest first.
            "receiver": format!("{base_url}/dev/receiver"),
            "webhooks": {
                "google_health": format!("{base_url}/webhooks/google_health"),
                "misfit": format!("{base_url}/webhooks/misfit"),
                "oura": format!("{base_url}/webhooks/oura"),
                "withings": format!("{base_url}/webhooks/withings"),
                "polar": format!("{base_url}/webhooks/polar"),
                "garmin": format!("{base_url}/webhooks/garmin"),
            },
            // The providers a person connects through an OAuth consent page (the console's buttons).
            "connectable": connectable,
            // The demo's people with a story (the console lists those on the board).
            "stories": crate::demo::STORIES.map(|(user, what)| json!({"user": user, "what": what})),
        }));
        let shared = Shared { app: app.clone(), auth: auth.clone(), info, received: received.clone() };
        let router = router(shared).layer(cors(&[app_url.as_str()])?);
        let app_page = CONSOLE_APP_HTML.replace("{{API}}", &base_url);
        let app_router = Router::new().route("/", get(move || async move { Html(app_page) }));
        let (tx, rx) = oneshot::channel::<()>();
        let (app_tx, app_rx) = oneshot::channel::<()>();
        for (name, listener, router, stop) in
            [("API", listener, router, rx), ("example app", app_listener, app_router, app_rx)]
        {
            tasks.push(tokio::spawn(async move {
                let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
                    let _ = stop.await;
                });
                if let Err(error) = serving.await {
                    tracing::error!(%error, name, "local router stopped");
                }
            }));
        }
        let shutdown = Some((tx, app_tx));
        Ok(Self {
            base_url,
            app_url,
            app,
            google,
            misfit,
            oura,
            withings,
            polar,
            garmin,
            sns,
            auth,
            feed,
            received,
            dynamo,
            shutdown,
            tasks,
        })
    }

    /// A JWT for `user`, as `POST /dev/token` gives.
    pub fn token(&self, user: &str, admin: bool) -> String {
        self.auth.issue(user, admin, jiff::Timestamp::now().as_second(), 12 * 3600)
    }

    /// Stops the router, the tasks, the sandboxes and the database.
    pub async fn stop(mut self) {
        if let Some((api, app)) = self.shutdown.take() {
            let _ = api.send(());
            let _ = app.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Some(dynamo) = self.dynamo.take() {
            dynamo.stop().await;
        }
    }
}

/// The web console (plain HTML, CSS and JS; no build step), compiled in.
const CONSOLE_HTML: &str = include_str!("../console/index.html");
const CONSOLE_JS: &str = include_str!("../console/console.js");
const CONSOLE_CSS: &str = include_str!("../console/console.css");
/// The example company app, served on its own origin.
const CONSOLE_APP_HTML: &str = include_str!("../console/app.html");

/// The caller's token, from the `Authorization: Bearer` header only, as API Gateway's JWT
/// authorizer reads it (`IdentitySource: $request.header.Authorization`).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
}

/// What the HttpApi's `CorsConfiguration` does deployed: preflights answered before any
/// authorizer, the listed origins only, the token in a header (no credentials).
fn cors(origins: &[&str]) -> Result<tower_http::cors::CorsLayer, StackError> {
    let origins =
        origins.iter().map(|o| o.parse::<header::HeaderValue>().map_err(failed)).collect::<Result<Vec<_>, _>>()?;
    Ok(tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600)))
}

/// Which function serves a route, and whether API Gateway checks a JWT first.
struct RouteTarget {
    function: &'static str,
    jwt: bool,
}

fn router(shared: Shared) -> Router {
    let tables: [(&'static str, &'static [(&'static str, &'static str)]); 4] = [
        ("oauth", functions::oauth::ROUTES),
        ("provider-webhook", functions::webhook::ROUTES),
        ("manual-sync", functions::manual_sync::ROUTES),
        ("challenges", functions::challenges::ROUTES),
    ];
    let mut by_path: HashMap<&'static str, Vec<(&'static str, RouteTarget)>> = HashMap::new();
    for (function, routes) in tables {
        for (method, path) in routes {
            let jwt = !(path.starts_with("/webhooks/") || path.starts_with("/oauth/"));
            by_path.entry(path).or_default().push((method, RouteTarget { function, jwt }));
        }
    }
    let mut router = Router::new()
        .route("/", get(|| async { Html(CONSOLE_HTML) }))
        .route(
            "/console/console.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], CONSOLE_JS) }),
        )
        .route(
            "/console/console.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CONSOLE_CSS) }),
        )
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .route("/dev/token", post(dev_token))
        .route("/dev/info", get(|State(s): State<Shared>| async move { Json((*s.info).clone()) }))
        .route("/dev/receiver", post(receive_reminder).get(list_received));
    for (path, methods) in by_path {
        let mut method_router = axum::routing::MethodRouter::new();
        for (method, target) in methods {
            let filter = match method {
                "GET" => MethodFilter::GET,
                "POST" => MethodFilter::POST,
                "DELETE" => MethodFilter::DELETE,
                "HEAD" => MethodFilter::HEAD,
                other => panic!("a route with method {other} needs a filter here"),
            };
            let (function, jwt) = (target.function, target.jwt);
            method_router = method_router.merge(on(
                filter,
                move |State(s): State<Shared>,
                      Path(params): Path<HashMap<String, String>>,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    invoke(&s, function, jwt, path, params, method, uri, headers, body).await
                },
            ));
        }
        router = router.route(path, method_router);
    }
    router.with_state(shared)
}

/// The local reminder target: takes the body the reminder rule's API destination would send
/// (JSON with a `text`), as a chat webhook would.
async fn receive_reminder(State(s): State<Shared>, body: Bytes) -> Response {
    let Some(body) = serde_json::from_slice::<Value>(&body).ok().filter(|b| b["text"].is_string()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "a JSON body with a \"text\" is expected"})))
            .into_response();
    };
    let mut received = s.received.lock().unwrap_or_else(|e| e.into_inner());
    received.push_front(json!({"received_at": jiff::Timestamp::now().to_string(), "body": body}));
    received.truncate(RECEIVED_KEPT);
    StatusCode::OK.into_response()
}

/// What the local reminder target received, newest first.
async fn list_received(State(s): State<Shared>) -> Json<Value> {
    let received = s.received.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({"received": received.iter().cloned().collect::<Vec<_>>()}))
}

async fn dev_token(State(s): State<Shared>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(user) = request.get("user").and_then(Value::as_str).filter(|u| stepsync::domain::UserId::parse(u).is_ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "invalid", "message": "user: a user id is required", "field": "user"}})),
        )
            .into_response();
    };
    let admin = request.get("admin").and_then(Value::as_bool).unwrap_or(false);
    let token = s.auth.issue(user, admin, jiff::Timestamp::now().as_second(), 12 * 3600);
    Json(json!({"token": token, "user": user, "admin": admin})).into_response()
}

/// Turns an HTTP request into the API Gateway v2 event the Lambda would get, calls the real
/// handler, and turns its answer back.
#[allow(clippy::too_many_arguments)]
async fn invoke(
    s: &Shared,
    function: &str,
    jwt: bool,
    route: &str,
    params: HashMap<String, String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = jiff::Timestamp::now();
    let mut context = json!({
        "accountId": "000000000000", "apiId": "local", "domainName": "127.0.0.1", "domainPrefix": "local",
        "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local"},
        "requestId": format!("local-{}", now.as_nanosecond()), "routeKey": format!("{method} {route}"), "stage": "$default",
        "time": now.to_string(), "timeEpoch": now.as_millisecond(),
    });
    if jwt {
        let Some(claims) = bearer_token(&headers).and_then(|t| s.auth.verify(t, now.as_second())) else {
            // What API Gateway's JWT authorizer answers, before any handler runs.
            return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Unauthorized"}))).into_response();
        };
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    let mut header_map = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &headers {
        let Ok(value) = value.to_str() else { continue };
        if name == header::COOKIE {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_owned())));
        } else {
            header_map.insert(name.as_str().to_owned(), Value::String(value.to_owned()));
        }
    }
    let query: serde_json::Map<String, Value> = uri
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://local/?{q}"))
                .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let (body, encoded) = match std::str::from_utf8(&body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&body), true),
    };
    let mut event = json!({
        "version": "2.0", "routeKey": format!("{method} {route}"), "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""), "headers": header_map, "requestContext": context,
        "pathParameters": params, "isBase64Encoded": encoded,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("not a request API Gateway would pass on: {error}"))
                .into_response();
        }
    };
    let answer = match function {
        "oauth" => functions::oauth::handle(&s.app, request).await,
        "provider-webhook" => functions::webhook::handle(&s.app, request).await,
        "manual-sync" => functions::manual_sync::handle(&s.app, request).await,
        _ => functions::challenges::handle(&s.app, request).await,
    };
    let (parts, body) = answer.into_parts();
    let bytes: Vec<u8> = match body {
        LambdaBody::Text(t) => t.into_bytes(),
        LambdaBody::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut response = Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = parts.status;
    *response.headers_mut() = parts.headers;
    response
}
