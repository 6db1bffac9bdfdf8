//! Start and size: each function's release binary, started as Lambda starts it, against a
//! minimal Runtime API emulator on loopback, with DynamoDB embedded (dynoxide), fake Google
//! Health and a PutEvents stub for EventBridge; nothing leaves 127.0.0.1. Beside them, the
//! same for a hello-world `lambda_runtime` binary built with the same profile (`hello/`): each
//! function's start and peak RSS are reported as a ratio to it, measured in the same run.

use crate::error::BenchError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stepsync::domain::{Challenge, ChallengeId, LocalDate, Provider, UserId, local_today};

use stepsync_local::demo::{google_tokens, store_connection};
use stepsync_local::dynoxide::EmbeddedDynamo;
use stepsync_local::fakes::google_health::{FakeGoogleHealth, SIGNATURE_HEADER};
use stepsync_local::harness;
use tokio::task::JoinHandle;

/// Each function and the sample from `events/` it is fed (events/README.md).
pub const FUNCTIONS: [(&str, &str); 9] = [
    ("sync-worker", "sync_requested.json"),
    ("scheduled-sync", "scheduled_tick.json"),
    ("manual-sync", "sync_now.json"),
    ("oauth", "oauth_authorize.json"),
    ("provider-webhook", "webhook_google_health_notification.json"),
    ("challenges", "challenges_leaderboard.json"),
    ("day-events", "day_changed.json"),
    ("reconcile", "reconcile_tick.json"),
    ("nudges", "connection_status_changed.json"),
];
const TABLE: &str = "stepsync";
/// walker-1's Google Health account in the fake, as the samples' person.
const SAMPLE_ACCOUNT: &str = "health-walker-1";
/// How long a function may take to answer its first invocation before it counts as failed.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// The baseline binary (`hello/`, package `stepsync-hello-world`), fed any event.
pub const HELLO_WORLD: (&str, &str) = ("hello-world", "scheduled_tick.json");
/// Starts per binary: the first answers its sample, the others stop at the first poll; the
/// reported start is their median, the runs interleaved across binaries so that a busy moment
/// of this shared machine lands on all of them alike.
pub const STARTS: usize = 7;

#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub function: &'static str,
    pub sample: String,
    pub binary_bytes: u64,
    /// The same function's `bootstrap` as `sam build` (`make release`) left it in
    /// `.aws-sam/build/{LogicalId}/`, when there is one.
    pub sam_build_bytes: Option<u64>,
    /// Process start → its first `GET .../invocation/next` (init done): the median of
    /// [`STARTS`] starts.
    pub to_first_poll_ms: f64,
    /// Each start's, in the order they ran.
    pub first_poll_runs_ms: Vec<f64>,
    /// Process start → the first invocation's answer posted (the first start).
    pub to_first_answer_ms: f64,
    /// The answer (an HTTP status, or the event function's result), or the error reported.
    pub outcome: String,
    /// VmHWM just before the process was stopped, after its answer (the first start).
    pub peak_rss_kib: u64,
}

/// The functions and the baseline, measured in one run.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStarts {
    pub hello_world: ColdStart,
    pub functions: Vec<ColdStart>,
}

impl ColdStart {
    /// Start → first poll over hello-world's.
    pub fn poll_ratio(&self, hello: &ColdStart) -> f64 {
        self.to_first_poll_ms / hello.to_first_poll_ms
    }

    /// Peak RSS over hello-world's.
    pub fn rss_ratio(&self, hello: &ColdStart) -> f64 {
        self.peak_rss_kib as f64 / hello.peak_rss_kib as f64
    }
}

/// What the emulator saw of one process.
#[derive(Default)]
struct Seen {
    event: Option<(String, Vec<u8>)>,
    polls: Vec<Instant>,
    answer: Option<(Instant, String)>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// `GET /2018-06-01/runtime/invocation/next`: the one event, then nothing (the runtime
/// waits, as between invocations).
async fn next(State(seen): State<Shared>) -> Response {
    let event = {
        let mut seen = lock(&seen);
        seen.polls.push(Instant::now());
        seen.event.take()
    };
    let Some((function, body)) = event else {
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let deadline = jiff::Timestamp::now().as_millisecond() + ANSWER_WITHIN.as_millis() as i64;
    let headers = [
        ("lambda-runtime-aws-request-id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", format!("arn:aws:lambda:us-east-1:000000000000:function:{function}")),
        (
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    let mut response = (StatusCode::OK, body).into_response();
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn answered(seen: &Shared, outcome: String) -> Response {
    let mut seen = lock(seen);
    if seen.answer.is_none() {
        seen.answer = Some((Instant::now(), outcome));
    }
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

/// An HTTP function's status, or an event function's answer.
fn response_summary(body: &[u8]) -> String {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match answer.get("statusCode").and_then(Value::as_u64) {
        Some(status) => format!("HTTP {status}"),
        None => summary(body),
    }
}

fn summary(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

fn runtime_api(seen: Shared) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(|State(s): State<Shared>, Path(_): Path<String>, body: Bytes| async move {
                answered(&s, response_summary(&body))
            }),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(|State(s): State<Shared>, Path(_): Path<String>, body: Bytes| async move {
                answered(&s, format!("error: {}", summary(&body)))
            }),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            post(|State(s): State<Shared>, body: Bytes| async move {
                answered(&s, format!("init error: {}", summary(&body)))
            }),
        )
        .with_state(seen)
}

/// EventBridge `PutEvents`, accepting every entry; any other AWS call is refused.
async fn aws_stub(headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if target.ends_with(".PutEvents") {
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let count = request["Entries"].as_array().map_or(0, Vec::len);
        let entries: Vec<Value> = (0..count).map(|i| json!({"EventId": format!("bench-{i}")})).collect();
        let answer = json!({"FailedEntryCount": 0, "Entries": entries}).to_string();
        return (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], answer).into_response();
    }
    let error = json!({"__type": "UnknownOperationException", "message": format!("the bench stub answers PutEvents only, not {target:?}")});
    (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.1")], error.to_string()).into_response()
}

async fn serve(router: Router) -> Result<(String, JoinHandle<()>), BenchError> {
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| BenchError::setup("a loopback server", e))?;
    let addr = listener.local_addr().map_err(|e| BenchError::setup("a loopback server", e))?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((addr.to_string(), task))
}

/// The settings every function gets: the app's own, then the AWS SDK's, all on loopback.
fn app_vars(google: &FakeGoogleHealth, dynamodb: &str, stub: &str) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("STEPSYNC_TABLE", TABLE.to_owned()),
        ("STEPSYNC_TOKEN_KEY", harness::TEST_TOKEN_KEY.to_owned()),
        ("STEPSYNC_PUBLIC_URL", "https://api.stepsync.example".to_owned()),
        // The samples return to the local app.
        ("STEPSYNC_RETURN_TO_ALLOWLIST", "http://127.0.0.1:3000/".to_owned()),
        // A reminder target configured, as `nudges` is only ever deployed with one.
        ("STEPSYNC_NUDGES", "true".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ("AWS_ENDPOINT_URL", format!("http://{stub}")),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", format!("http://{stub}")),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.extend(harness::google_vars(google).into_iter().map(|(k, v)| (k.to_owned(), v)));
    vars
}

/// The data the samples name: walker-1 on Google Health (account `health-walker-1`, steps
/// today) and on legacy Fitbit, in the challenges `nov-walk` and the leaderboard sample's.
async fn seed(vars: &HashMap<String, String>, google: &FakeGoogleHealth, dynamodb: &str) -> Result<(), BenchError> {
    let bad = |e: &dyn std::fmt::Display| BenchError::setup("the cold-start data", e.to_string());
    let client = aws_sdk_dynamodb::Client::new(&stepsync::aws::local_sdk_config(dynamodb));
    stepsync_local::table::ensure_table(&client, TABLE, stepsync_local::table::Stream::AsTemplate)
        .await
        .map_err(|e| bad(&e))?;
    let config = stepsync::config::Config::from_vars(vars).map_err(|e| bad(&e))?;
    let store = Arc::new(stepsync::aws::DynamoStore::new(client, TABLE.to_owned()));
    let app = functions::app::App::from_parts(
        config,
        store,
        Arc::new(stepsync::testing::RecordingPublisher::default()),
        Arc::new(stepsync::clock::SystemClock),
    )
    .map_err(|e| bad(&e))?;
    let now = app.services.ports.clock.now();
    let today = local_today(now, &jiff::tz::TimeZone::UTC);
    let user = UserId::parse("walker-1").map_err(|e| bad(&e))?;
    let tokens = google_tokens(google, SAMPLE_ACCOUNT, now + jiff::SignedDuration::from_hours(24));
    google.set_steps(SAMPLE_ACCOUNT, today.date(), 6_543);
    store_connection(&app, &user, Provider::GoogleHealth, SAMPLE_ACCOUNT, Some(&tokens), None, "UTC")
        .await
        .map_err(|e| bad(&e))?;
    store_connection(&app, &user, Provider::Fitbit, "walker-1-fitbit", None, None, "UTC").await.map_err(|e| bad(&e))?;
    let challenges = app.services.challenges();
    let start = LocalDate::parse("2026-11-01").map_err(|e| bad(&e))?;
    for raw in ["nov-walk", "Qm9yZWFsLVdhbGsx"] {
        let id = ChallengeId::parse(raw).map_err(|e| bad(&e))?;
        let challenge =
            Challenge::new(id.clone(), "Cold start walk", start, today.add_days(30), "UTC", 3).map_err(|e| bad(&e))?;
        app.services.ports.challenges.create_challenge(&challenge).await.map_err(|e| bad(&e))?;
        challenges.join(&id, &user, now).await.map_err(|e| bad(&e))?;
    }
    Ok(())
}

/// The provider a sample is pointed at instead of its own. `sync_requested.json` names a
/// retired Fitbit connection, whose answer is "reconnect" before any fetch; the start is
/// measured on the common path instead: a Google Health sync that fetches and writes a day.
fn sample_provider(file: &str) -> Option<&'static str> {
    (file == "sync_requested.json").then_some("google_health")
}

/// What the report calls a sample.
fn sample_label(file: &str) -> String {
    sample_provider(file).map_or_else(|| file.to_owned(), |p| format!("{file} (provider {p})"))
}

/// A sample as the function receives it; the webhook's body is signed by the fake's key.
fn sample(file: &str, google: &FakeGoogleHealth) -> Result<Vec<u8>, BenchError> {
    let path = stepsync_local::workspace_root().join("events").join(file);
    let text = std::fs::read_to_string(&path).map_err(BenchError::io(&path))?;
    let mut event: Value = serde_json::from_str(&text).map_err(|e| BenchError::setup("a sample event", e))?;
    if let Some(provider) = sample_provider(file) {
        event["detail"]["provider"] = Value::String(provider.to_owned());
        // The days the sample asks for have steps at the provider, so the sync writes them.
        let day = |key: &str| event["detail"][key].as_str().and_then(|d| LocalDate::parse(d).ok());
        if let (Some(start), Some(end)) = (day("start"), day("end")) {
            let mut date = start;
            while date <= end {
                google.set_steps(SAMPLE_ACCOUNT, date.date(), 5_000);
                date = date.add_days(1);
            }
        }
    }
    if let Some(body) = event["body"].as_str().filter(|_| file.starts_with("webhook_")) {
        event["headers"][SIGNATURE_HEADER.to_ascii_lowercase()] = Value::String(google.sign(body.as_bytes()));
    }
    serde_json::to_vec(&event).map_err(|e| BenchError::setup("a sample event", e))
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The release binaries' folder (`CARGO_TARGET_DIR` or `target/`).
pub fn release_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| stepsync_local::workspace_root().join("target"))
        .join("release")
}

/// `.aws-sam/build/{LogicalId}/bootstrap`'s size for the function that runs `binary`, if
/// `sam build` has made it.
fn sam_build_bytes(binary: &str) -> Option<u64> {
    let template = stepsync_local::template::template().ok()?;
    let function = template.functions.iter().find(|f| f.binary == binary)?;
    let path = stepsync_local::workspace_root().join(".aws-sam/build").join(&function.logical_id).join("bootstrap");
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// What one start showed.
struct Start {
    first_poll_ms: Option<f64>,
    answer: Option<(f64, String)>,
    peak_rss_kib: u64,
}

/// Starts `binary` once. With an `event`, it is the first invocation and the process runs
/// until it has answered and polled again; without, it is stopped at its first poll.
async fn start_once(
    function: &str,
    binary: &FsPath,
    vars: &HashMap<String, String>,
    event: Option<Vec<u8>>,
    memory_mb: u32,
    log_path: &FsPath,
) -> Result<Start, BenchError> {
    let answers = event.is_some();
    let seen: Shared = Arc::new(Mutex::new(Seen { event: event.map(|e| (function.to_owned(), e)), ..Seen::default() }));
    let (address, server) = serve(runtime_api(seen.clone())).await?;
    let log = std::fs::File::options().create(true).append(true).open(log_path).map_err(BenchError::io(log_path))?;
    let log_err = log.try_clone().map_err(BenchError::io(log_path))?;
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .envs(vars)
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().map_err(BenchError::io(binary))?;
    let pid = child.id().unwrap_or(0);
    // Wait for the answer, then for the runtime to ask for the next event (or a moment);
    // without an event, for the first poll.
    loop {
        let (answered_at, polls) = {
            let seen = lock(&seen);
            (seen.answer.as_ref().map(|(at, _)| *at), seen.polls.len())
        };
        let done = if answers {
            polls >= 2 || answered_at.is_some_and(|at| at.elapsed() > Duration::from_millis(500))
        } else {
            polls >= 1
        };
        // The process ended (a crash at init, say): what it reported, if anything, is all.
        if done || matches!(child.try_wait(), Ok(Some(_))) || started.elapsed() > ANSWER_WITHIN {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let peak_rss_kib = peak_rss_kib(pid);
    let _ = child.kill().await;
    server.abort();
    let seen = lock(&seen);
    let ms = |at: Instant| at.duration_since(started).as_secs_f64() * 1e3;
    Ok(Start {
        first_poll_ms: seen.polls.first().map(|at| ms(*at)),
        answer: seen.answer.as_ref().map(|(at, outcome)| (ms(*at), outcome.clone())),
        peak_rss_kib,
    })
}

/// One binary's starts so far.
struct Measured {
    function: &'static str,
    file: &'static str,
    binary: PathBuf,
    log: PathBuf,
    first: Start,
    polls: Vec<f64>,
}

impl Measured {
    fn finish(self) -> Result<ColdStart, BenchError> {
        let Some((to_first_answer_ms, outcome)) = self.first.answer else {
            return Err(BenchError::measurement(
                "cold start",
                format!("{} did not answer its first invocation; see {}", self.function, self.log.display()),
            ));
        };
        let median = crate::stats::Summary::of(&self.polls).map_or(f64::NAN, |s| s.p50);
        Ok(ColdStart {
            function: self.function,
            sample: sample_label(self.file),
            binary_bytes: std::fs::metadata(&self.binary).map_err(BenchError::io(&self.binary))?.len(),
            sam_build_bytes: sam_build_bytes(self.function),
            to_first_poll_ms: median,
            first_poll_runs_ms: self.polls,
            to_first_answer_ms,
            outcome,
            peak_rss_kib: self.first.peak_rss_kib,
        })
    }
}

pub async fn run(memory_mb: u32, out: &FsPath, progress: &dyn Fn(&str)) -> Result<ColdStarts, BenchError> {
    let release = release_dir();
    let binaries: Vec<(&'static str, &'static str)> = std::iter::once(HELLO_WORLD).chain(FUNCTIONS).collect();
    if let Some((missing, _)) = binaries.iter().find(|(f, _)| !release.join(f).exists()) {
        return Err(BenchError::setup(
            "cold start",
            format!(
                "{} is missing: cargo build --release -p stepsync-functions -p stepsync-hello-world --bins (make bench does)",
                release.join(missing).display()
            ),
        ));
    }
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(BenchError::io(&logs))?;
    let dynamo = EmbeddedDynamo::in_memory().await.map_err(|e| BenchError::setup("dynoxide", e))?;
    let google = FakeGoogleHealth::start_on_port(0).await.map_err(|e| BenchError::setup("fake Google Health", e))?;
    let (stub, stub_task) = serve(Router::new().fallback(aws_stub)).await?;
    let vars = app_vars(&google, dynamo.endpoint(), &stub);
    seed(&vars, &google, dynamo.endpoint()).await?;
    let mut measured = Vec::new();
    for (function, file) in binaries {
        let binary = release.join(function);
        let log = logs.join(format!("{function}.log"));
        let _ = std::fs::remove_file(&log);
        let first = start_once(function, &binary, &vars, Some(sample(file, &google)?), memory_mb, &log).await?;
        let polls = first.first_poll_ms.into_iter().collect();
        measured.push(Measured { function, file, binary, log, first, polls });
    }
    for _ in 1..STARTS {
        for m in &mut measured {
            let start = start_once(m.function, &m.binary, &vars, None, memory_mb, &m.log).await?;
            m.polls.extend(start.first_poll_ms);
        }
    }
    stub_task.abort();
    dynamo.stop().await;
    let mut results = measured.into_iter().map(Measured::finish).collect::<Result<Vec<_>, _>>()?;
    let hello_world = results.remove(0);
    progress(&format!(
        "  {}: {:.2} MB, first poll {:.1} ms (median of {STARTS}), peak RSS {:.1} MB",
        hello_world.function,
        hello_world.binary_bytes as f64 / 1e6,
        hello_world.to_first_poll_ms,
        hello_world.peak_rss_kib as f64 / 1024.0
    ));
    for result in &results {
        progress(&format!(
            "  {}: {:.1} MB, first poll {:.1} ms ({:.2}x hello-world), first answer {:.1} ms ({}), peak RSS {:.1} MB ({:.2}x)",
            result.function,
            result.binary_bytes as f64 / 1e6,
            result.to_first_poll_ms,
            result.poll_ratio(&hello_world),
            result.to_first_answer_ms,
            result.outcome,
            result.peak_rss_kib as f64 / 1024.0,
            result.rss_ratio(&hello_world),
        ));
    }
    Ok(ColdStarts { hello_world, functions: results })
}
