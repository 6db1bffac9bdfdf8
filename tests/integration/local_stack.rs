//! The local stack over real HTTP: health, local tokens, every API route behind the local
//! authorizer answering exactly as the handler does, a person connected through the sandbox consent page whose steps then sync
//! through the in-process bus, and their revoked grant reaching the local reminder target.

use crate::template::ROUTE_ANSWERS;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use stepsync_local::dynoxide::EmbeddedDynamo;
use stepsync_local::stack::{LocalStack, StackOptions, StoreTarget};

async fn stack() -> LocalStack {
    LocalStack::start(StackOptions { tick: Duration::from_secs(3600), ..StackOptions::default() }, |_| {})
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_stack_answers_health_tokens_and_every_route() {
    let stack = stack().await;
    let http = client();
    let base = &stack.base_url;
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), StatusCode::OK);
    let info: Value = http.get(format!("{base}/dev/info")).send().await.unwrap().json().await.unwrap();
    assert!(info["google_health"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let bad = http.post(format!("{base}/dev/token")).json(&json!({"user": "a#b"})).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let token: Value = http
        .post(format!("{base}/dev/token"))
        .json(&json!({"user": "alice", "admin": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    let tables = [
        functions::oauth::ROUTES,
        functions::webhook::ROUTES,
        functions::manual_sync::ROUTES,
        functions::challenges::ROUTES,
    ];
    for (method, path) in tables.iter().flat_map(|t| t.iter()) {
        let expected = ROUTE_ANSWERS.iter().find(|(m, p, _)| m == method && p == path);
        let expected = expected.unwrap_or_else(|| panic!("{method} {path}: add its answer to ROUTE_ANSWERS")).2;
        let url = format!(
            "{base}{}",
            path.replace("{provider}", "google_health").replace("{id}", "nope").replace("{user}", "someone-else")
        );
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let jwt = !(path.starts_with("/webhooks/") || path.starts_with("/oauth/"));
        let answer = http.request(method.clone(), &url).bearer_auth(&token).send().await.unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: {status} is not JSON ({e}): {text}"))
        };
        assert!(body["error"]["message"] != "route not found", "{method} {path}: {status} {body}");
        assert_eq!(status.as_u16(), expected, "{method} {path}: {body}");
        if jwt {
            let anonymous = http.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{method} {path} without a token");
        }
    }
    stack.stop().await;
}

/// What a person's browser does to connect Google Health on the stack as the holder of `token`:
/// the start link (once only), the sandbox consent page as `account`, the callback.
async fn connect_google(stack: &LocalStack, http: &reqwest::Client, token: &str, account: &str) {
    let base = &stack.base_url;
    let authorize =
        http.post(format!("{base}/v1/connections/google_health/authorize")).bearer_auth(token).send().await.unwrap();
    assert_eq!(authorize.status(), StatusCode::OK);
    let link: Value = authorize.json().await.unwrap();
    let start_url = link["authorize_url"].as_str().unwrap();
    assert!(start_url.starts_with(&format!("{base}/oauth/google_health/start?ticket=")), "{start_url}");
    // The start link is opened by a browser: no token, and it works once.
    let start = http.get(start_url).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::FOUND);
    let consent = start.headers()["location"].to_str().unwrap().to_owned();
    let cookie = start.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(http.get(start_url).send().await.unwrap().status(), StatusCode::BAD_REQUEST, "single use");
    let back = stack.google.approve(&consent, account);
    assert!(back.starts_with(&format!("{base}/oauth/google_health/callback")), "{back}");
    let callback = http.get(&back).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(callback.status(), StatusCode::FOUND);
    assert!(callback.headers()["location"].to_str().unwrap().contains("connected=google_health"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_connects_through_the_sandbox_and_their_steps_arrive() {
    let stack = stack().await;
    let http = client();
    let base = &stack.base_url;
    stack.google.add_person("sandbox-walker", None);
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    stack.google.set_steps("sandbox-walker", today, 4321);
    let token = stack.token("walker", false);

    connect_google(&stack, &http, &token, "sandbox-walker").await;

    // The backfill runs through the in-process bus and the real sync-worker.
    let url = format!("{base}/v1/steps?from={}&to={}", today.yesterday().unwrap(), today);
    let mut days = Value::Null;
    for _ in 0..100 {
        days = http.get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if days["days"].as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(days["days"][0]["steps"], 4321, "{days}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_walks_syncs_and_shows_who_must_act() {
    let stack = std::sync::Arc::new(stack().await);
    let demo = tokio::spawn(stepsync_local::demo::run(stack.clone(), Duration::from_millis(100), false));
    let http = client();
    let token = stack.token("walker-01", false);
    let board_url = format!("{}/v1/challenges/{}/leaderboard", stack.base_url, stepsync_local::demo::DEMO_CHALLENGE);
    let mut board = Value::Null;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        board = http.get(&board_url).bearer_auth(&token).send().await.unwrap().json().await.unwrap_or(Value::Null);
        let moving =
            board["entries"].as_array().map_or(0, |e| e.iter().filter(|e| e["steps"].as_u64() > Some(0)).count());
        if moving >= 15 {
            break;
        }
    }
    let moving = board["entries"].as_array().map_or(0, |e| e.iter().filter(|e| e["steps"].as_u64() > Some(0)).count());
    assert!(moving >= 15, "people walked and synced through webhooks and uploads: {board}");

    let diagnosis = |user: &'static str| {
        let (http, base, token) = (http.clone(), stack.base_url.clone(), stack.token(user, false));
        async move {
            let status: Value = http
                .get(format!("{base}/v1/sync/status"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            status["connections"][0]["diagnosis"]["action"].as_str().unwrap_or("").to_owned()
        }
    };
    assert_eq!(diagnosis("walker-25").await, "grant_permission", "the silent phone");
    let mut revoked = String::new();
    for _ in 0..100 {
        revoked = diagnosis("walker-24").await;
        if revoked == "reconnect" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(revoked, "reconnect", "the revoked Google grant");
    // ... and its reminder reached the local reminder target, once.
    let mut reminded = 0;
    for _ in 0..50 {
        let received = stack.received.lock().unwrap().clone();
        reminded = received.iter().filter(|r| r["body"]["detail"]["user"] == "walker-24").count();
        if reminded > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reminded, 1, "walker-24's reminder at /dev/receiver");

    // walker-26's deleted walk: counted by the first sweep, then the deletion notice brings
    // yesterday back to what was walked.
    let yesterday = stepsync_local::demo::demo_today(&stack).add_days(-1);
    let steps_of = |user: &'static str| {
        let (http, base, token) = (http.clone(), stack.base_url.clone(), stack.token(user, false));
        async move {
            let url = format!("{base}/v1/steps?from={yesterday}&to={yesterday}");
            let days: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            days["days"][0]["steps"].as_u64()
        }
    };
    let mut deleted = None;
    for _ in 0..100 {
        deleted = steps_of("walker-26").await;
        if deleted == Some(6_000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deleted, Some(6_000), "the mistaken 25,000 is gone");
    // The stream reader publishes it a moment after the write.
    let mut announced = false;
    for _ in 0..50 {
        let feed = stack.feed.lock().unwrap().clone();
        announced = feed.iter().any(|e| {
            matches!(e, stepsync::events::Event::StepsUpdated(u)
                if u.user.as_str() == "walker-26" && u.old_total == 25_000 && u.new_total == 6_000)
        });
        if announced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let updates =
        stack.feed.lock().unwrap().iter().filter(|e| matches!(e, stepsync::events::Event::StepsUpdated(_))).count();
    assert!(announced, "the deletion reached the bus as a StepsUpdated ({updates} StepsUpdated in the feed)");

    // People on rings and watches too: their days arrived, and their sources' notices reached
    // the app through its own callbacks (Oura's app-level subscriptions, made by the daily run
    // at start; Withings' per-person one).
    for user in ["walker-28", "walker-31", "walker-34", "walker-37"] {
        let mut steps = None;
        for _ in 0..100 {
            steps = steps_of(user).await;
            if steps.is_some_and(|s| s > 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(steps.is_some_and(|s| s > 0), "{user}'s yesterday arrived");
    }
    let mut notified = (false, false, false, false);
    for _ in 0..100 {
        notified = (
            stack.oura.deliveries().iter().any(|d| d.outcome.status() == Some(204)),
            stack.withings.deliveries().iter().any(|d| d.outcome.status() == Some(204)),
            stack.polar.deliveries().iter().any(|d| d.outcome.status() == Some(204)),
            // Garmin wants a 200 for its pings.
            stack.garmin.deliveries().iter().any(|d| d.status == 200),
        );
        if notified == (true, true, true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(notified, (true, true, true, true), "Oura's, Withings', Polar's and Garmin's notices were taken");

    // walker-27, the traveller: the challenge counts one source over the window, never the
    // largest per day (which would count the Chicago walk on two dates).
    let standing = |board: &Value, user: &str| {
        board["entries"].as_array().unwrap().iter().find(|e| e["user_id"] == user).map(|e| e["steps"].as_u64().unwrap())
    };
    let board: Value = http.get(&board_url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let counted = standing(&board, "walker-27").expect("the traveller is on the board");
    let app = &stack.app;
    let c = stepsync::domain::ChallengeId::parse(stepsync_local::demo::DEMO_CHALLENGE).unwrap();
    let traveller = stepsync::domain::UserId::parse("walker-27").unwrap();
    let participant = app.services.ports.challenges.participant(&c, &traveller).await.unwrap().unwrap();
    let best_single = participant.sources.0.values().map(|t| t.total).max().unwrap();
    assert!(participant.sources.0.len() == 2, "both sources counted per source: {:?}", participant.sources);
    assert!(counted <= best_single, "{counted} ≤ the best single source {best_single}");
    let info: Value = http.get(format!("{}/dev/info", stack.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["stories"][1]["user"], "walker-27", "the console lists the stories");
    demo.abort();
    let _ = demo.await;
    if let Ok(stack) = std::sync::Arc::try_unwrap(stack) {
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_is_served_at_the_root_and_signs_in_with_its_cookie() {
    let stack = stack().await;
    let http = client();
    let base = &stack.base_url;
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    for asset in ["/console/console.js", "/console/console.css"] {
        assert!(html.contains(asset), "the page loads {asset}");
        let answer = http.get(format!("{base}{asset}")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{asset}");
        assert!(!answer.text().await.unwrap().is_empty());
    }
    let info: Value = http.get(format!("{base}/dev/info")).send().await.unwrap().json().await.unwrap();
    let connectable: Vec<&str> =
        info["connectable"].as_array().unwrap().iter().map(|c| c["provider"].as_str().unwrap()).collect();
    assert_eq!(connectable, ["google_health", "misfit", "oura", "withings", "polar", "garmin"]);

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_authorizer_reads_only_the_header_and_cors_admits_only_the_app_origin() {
    let stack = stack().await;
    let http = client();
    let base = &stack.base_url;
    let url = format!("{base}/v1/connections/google_health/authorize");
    let token = stack.token("cors-walker", false);

    // As API Gateway: a token anywhere but the Authorization header is no token.
    let cookie = format!("stepsync_local_jwt={token}");
    assert_eq!(http.post(&url).header("cookie", cookie).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(http.post(&url).bearer_auth("not.a.token").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // The example app's origin is allowed: the preflight passes (before any authorizer) and
    // the answer names the origin; no credentials are allowed.
    let app = stack.app_url.as_str();
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let allowed = preflight(app).await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], app);
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST") && methods.contains("DELETE"), "{methods}");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none());
    let answer = http
        .post(&url)
        .header("origin", app)
        .bearer_auth(&token)
        .json(&json!({"return_to": format!("{app}/")}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["access-control-allow-origin"], app);

    // Another origin gets no CORS headers, so a browser keeps the answer from its page.
    let other = preflight("http://evil.test").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let page = http.get(format!("{app}/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!(r#"const API = "{base}";"#)), "the app page calls this API");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stack_keeps_its_table_in_another_dynamodb_endpoint_when_told() {
    let other = EmbeddedDynamo::in_memory().await.unwrap();
    let options = StackOptions {
        tick: Duration::from_secs(3600),
        store: StoreTarget::Endpoint(other.endpoint().to_owned()),
        table: "elsewhere".into(),
        ..StackOptions::default()
    };
    let stack = LocalStack::start(options, |_| {}).await.unwrap();
    let http = client();
    let info: Value = http.get(format!("{}/dev/info", stack.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["dynamodb"], other.endpoint());
    let created = http
        .post(format!("{}/v1/challenges", stack.base_url))
        .bearer_auth(stack.token("boss", true))
        .json(&json!({"name": "Elsewhere", "start_date": "2026-01-05", "end_date": "2026-01-30"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    stack.stop().await;

    // The challenge is in the other endpoint's table.
    let direct = aws_sdk_dynamodb::Client::new(&stepsync::aws::local_sdk_config(other.endpoint()));
    let items = direct.scan().table_name("elsewhere").send().await.unwrap();
    assert!(
        items.items().iter().any(|item| item.values().any(|v| v.as_s().is_ok_and(|s| s == "Elsewhere"))),
        "{items:?}"
    );
    other.stop().await;
}

/// A person's Google grant is revoked; their "Sync steps" finds it, the status change goes
/// through the in-process bus to the real nudges handler, and its reminder reaches the local
/// receiver as the reminder rule's API destination would send it: a JSON body with the text a
/// chat webhook shows, the kind and the event's detail. The receiver lists newest first and
/// refuses a body without a text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_grant_reaches_the_local_reminder_target() {
    let stack = stack().await;
    let http = client();
    let base = &stack.base_url;
    let receiver = format!("{base}/dev/receiver");
    let refused = http.post(&receiver).json(&json!({"no": "text"})).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let hello = http.post(&receiver).json(&json!({"text": "hello"})).send().await.unwrap();
    assert_eq!(hello.status(), StatusCode::OK);
    stack.google.add_person("sandbox-lapsed", None);
    let token = stack.token("lapsed-walker", false);
    connect_google(&stack, &http, &token, "sandbox-lapsed").await;
    // The backfill's sync runs first, through the bus; then the person revokes the grant.
    let status_url = format!("{base}/v1/sync/status");
    for _ in 0..100 {
        let status: Value = http.get(&status_url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if status["connections"][0]["last_success_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.google.revoke_grant("sandbox-lapsed");

    let sync = http.post(format!("{base}/v1/sync")).bearer_auth(&token).send().await.unwrap();
    assert!(sync.status().is_success(), "Sync steps: {}", sync.status());

    let mut received = Value::Null;
    for _ in 0..100 {
        received = http.get(&receiver).send().await.unwrap().json().await.unwrap();
        if received["received"].as_array().is_some_and(|r| r.len() >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = received["received"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "the reminder and the hello: {received}");
    let reminder = &list[0]["body"];
    assert_eq!(reminder["kind"], "ReminderDue", "newest first: {received}");
    assert_eq!(
        reminder["text"],
        "Reminder for lapsed-walker (Fitbit / Google Health): Fitbit / Google Health access was revoked or expired. \
         Reconnect Fitbit / Google Health to keep your steps syncing."
    );
    let detail = &reminder["detail"];
    assert_eq!((&detail["user"], &detail["provider"]), (&json!("lapsed-walker"), &json!("google_health")));
    assert_eq!((&detail["code"], &detail["action"]), (&json!("token_revoked"), &json!("reconnect")));
    assert!(list[0]["received_at"].is_string());
    assert_eq!(list[1]["body"]["text"], "hello");
    let info: Value = http.get(format!("{base}/dev/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["receiver"], receiver);
    stack.stop().await;
}
