//! The web console in headless Chromium (Debian's package, driven by playwright-core; both
//! installed by `scripts/setup-browser.sh`, which `make test` runs): a person joins the demo
//! challenge, connects Fitbit / Google Health through the sandbox's consent page, clicks
//! "Sync steps" once the provider has new steps, and the leaderboard shows them; then a person
//! connects from the example company app on another origin (CORS, the one-time start link),
//! with the local authorizer reading only the Authorization header as API Gateway's does; and
//! the organizer's view shows the demo's revoked grant and silent phone, and "Send reminders"
//! delivers them to the local receiver. The screenshots land in `tests/out/`.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use stepsync_local::demo::{DEMO_CHALLENGE, demo_today};
use stepsync_local::stack::{LocalStack, StackOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const PERSON: &str = "browser-walker";
const ACCOUNT: &str = "browser-account";
const APP_PERSON: &str = "app-walker";
const APP_ACCOUNT: &str = "app-account";
/// What the sandbox holds for the person's today when they connect: the backfill brings it.
const BACKFILL_STEPS: u64 = 2_500;

fn chromium() -> PathBuf {
    let path = std::env::var_os("STEPSYNC_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: run `make test` (scripts/setup-browser.sh installs Chromium)",
        path.display()
    );
    path
}

fn browser_dir() -> PathBuf {
    let dir = stepsync_local::workspace_root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `make test` (scripts/setup-browser.sh runs npm ci in tests/browser)"
    );
    dir
}

async fn leaderboard(stack: &LocalStack) -> Value {
    let url = format!("{}/v1/challenges/{DEMO_CHALLENGE}/leaderboard?limit=200", stack.base_url);
    let answer = reqwest::Client::new().get(url).bearer_auth(stack.token("observer", false)).send().await.unwrap();
    answer.json().await.unwrap()
}

fn steps_of(board: &Value, user: &str) -> Option<u64> {
    board["entries"].as_array()?.iter().find(|e| e["user_id"] == user)?["steps"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_connects_syncs_and_climbs_the_leaderboard_in_the_console() {
    let (chromium, dir) = (chromium(), browser_dir());
    let out = stepsync_local::workspace_root().join("tests/out");
    std::fs::create_dir_all(&out).unwrap();
    let screenshot = out.join("console.png");
    let _ = std::fs::remove_file(&screenshot);

    let stack = Arc::new(
        LocalStack::start(StackOptions { tick: Duration::from_secs(3600), ..StackOptions::default() }, |_| {})
            .await
            .unwrap(),
    );
    // The demo's people, walked once, so the page has a leaderboard to show.
    let demo = tokio::spawn(stepsync_local::demo::run(stack.clone(), Duration::from_secs(3600), false));
    for _ in 0..200 {
        if leaderboard(&stack).await["entries"].as_array().is_some_and(|e| e.len() >= 25) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let today = demo_today(&stack);
    stack.google.add_person(ACCOUNT, None);
    stack.google.add_person(APP_ACCOUNT, None);
    stack.google.set_steps(ACCOUNT, today.date(), BACKFILL_STEPS);

    let mut child = Command::new("node")
        .arg("console.mjs")
        .current_dir(&dir)
        .env("BASE_URL", &stack.base_url)
        .env("APP_URL", &stack.app_url)
        .env("APP_PERSON", APP_PERSON)
        .env("APP_ACCOUNT", APP_ACCOUNT)
        .env("PERSON", PERSON)
        .env("ACCOUNT", ACCOUNT)
        .env("BACKFILL_STEPS", BACKFILL_STEPS.to_string())
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/setup-browser.sh installs it when missing)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
        let line = line.expect("the browser answered within two minutes").unwrap();
        line.map_or(Value::Null, |l| serde_json::from_str(&l).unwrap_or(Value::Null))
    };

    // Connected through the consent page: the backfill brought today's 2,500 (the page waited
    // for the leaderboard to show them, the backfill's completion).
    let connected = next().await;
    assert_eq!(connected["connected"], BACKFILL_STEPS, "the backfill after connecting: {connected}");
    assert_eq!(steps_of(&leaderboard(&stack).await, PERSON), Some(BACKFILL_STEPS));

    // The person walks on; the provider has it, no webhook comes: "Sync steps" fetches it.
    stack.google.set_steps(ACCOUNT, today.date(), 9_876);
    stdin.write_all(format!("{}\n", json!({"expect": 9_876})).as_bytes()).await.unwrap();
    let done = next().await;
    assert_eq!(done["done"], 9_876, "the leaderboard after Sync steps: {done}");
    assert!(done["message"].as_str().is_some_and(|m| m.contains("1 day(s) changed")), "{done}");
    assert_eq!(steps_of(&leaderboard(&stack).await, PERSON), Some(9_876));
    assert_eq!(done["app"], "google_health: active", "connected from the other origin: {done}");
    // The organizer's view: the demo's revoked grant and silent phone, and "Send reminders".
    let organizer = &done["organizer"];
    assert_eq!(organizer["codes"], json!({"walker-24": "token_revoked", "walker-25": "phone_silent"}), "{done}");
    assert!(organizer["sent"].as_str().is_some_and(|m| m.contains("sent") && m.contains("digest")), "{done}");
    let digest = organizer["digest"].as_str().unwrap_or_default();
    assert!(digest.contains("walker-24") && digest.contains("walker-25"), "the digest names both: {done}");
    let export = &organizer["export"];
    assert_eq!(export["header"], "rank,user,total_steps,days_with_data,sources", "{done}");
    assert!(export["file"].as_str().is_some_and(|f| f.starts_with("stepsync-") && f.ends_with(".csv")), "{done}");
    let board = leaderboard(&stack).await;
    assert_eq!(
        export["rows"].as_u64(),
        board["entries"].as_array().map(|e| e.len() as u64),
        "a row per participant: {done}"
    );
    let url = format!("{}/v1/sync/status", stack.base_url);
    let answer = reqwest::Client::new().get(url).bearer_auth(stack.token(APP_PERSON, false)).send().await.unwrap();
    let status: Value = answer.json().await.unwrap();
    assert_eq!(status["connections"][0]["provider"], "google_health", "{status}");
    assert_eq!(status["connections"][0]["status"], "active", "{status}");

    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "the browser script failed: {status}");
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot: {} bytes", png.len());

    demo.abort();
    let _ = demo.await;
    if let Ok(stack) = Arc::try_unwrap(stack) {
        stack.stop().await;
    }
}
