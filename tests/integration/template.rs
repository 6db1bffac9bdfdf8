//! `template.yaml` and the code agree: every function has a binary and every binary a
//! function; every HttpApi route is served by its function's handler and every handler route
//! is in the template, and each answers exactly as expected; every sample in `events/` reaches
//! its handler and gets exactly its expected answer.

use functions::sync_worker::WorkerResult;
use lambda_http::{Body, Request, Response};
use std::collections::BTreeSet;
use stepsync::domain::UserId;
use stepsync_local::fakes::google_health::FakeGoogleHealth;
use stepsync_local::harness::{self, Backend, TestEnv, body_json, request_from_sample};

fn template() -> &'static stepsync_local::template::Template {
    stepsync_local::template::template().expect("template.yaml parses")
}

/// (logical id, binary) of every function in the template.
fn template_functions() -> Vec<(String, String)> {
    template().functions.iter().map(|f| (f.logical_id.clone(), f.binary.clone())).collect()
}

/// (binary, method, path) of every HttpApi route in the template.
fn template_routes() -> BTreeSet<(String, String, String)> {
    template().routes().map(|(f, r)| (f.binary.clone(), r.method.clone(), r.path.clone())).collect()
}

fn binaries() -> BTreeSet<String> {
    let dir = stepsync_local::workspace_root().join("functions/src/bin");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_str().unwrap().to_owned())
        .collect()
}

/// The routes each HTTP function's handler serves, as the handlers declare them.
fn handler_routes() -> BTreeSet<(String, String, String)> {
    let mut routes = BTreeSet::new();
    for (binary, table) in [
        ("oauth", functions::oauth::ROUTES),
        ("provider-webhook", functions::webhook::ROUTES),
        ("manual-sync", functions::manual_sync::ROUTES),
        ("challenges", functions::challenges::ROUTES),
    ] {
        for (method, path) in table {
            routes.insert((binary.to_owned(), method.to_string(), path.to_string()));
        }
    }
    routes
}

async fn dispatch(app: &functions::app::App, binary: &str, req: Request) -> Response<Body> {
    match binary {
        "oauth" => functions::oauth::handle(app, req).await,
        "provider-webhook" => functions::webhook::handle(app, req).await,
        "manual-sync" => functions::manual_sync::handle(app, req).await,
        "challenges" => functions::challenges::handle(app, req).await,
        other => panic!("no HTTP handler for {other}"),
    }
}

#[test]
fn every_function_has_a_binary_and_every_binary_a_function() {
    let declared: BTreeSet<String> = template_functions().into_iter().map(|(_, binary)| binary).collect();
    assert_eq!(declared, binaries());
    for (id, binary) in template_functions() {
        let expected: String = binary.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect();
        assert_eq!(id, expected, "the logical id matches the binary {binary}");
    }
}

#[test]
fn every_template_route_is_a_handler_route_and_back() {
    assert_eq!(template_routes(), handler_routes());
}

/// What each template route answers when a person without the admin claim, a connection or a
/// challenge calls it with the placeholders filled in (`google_health`, an unknown challenge)
/// and nothing else: the handler's own answer, never "route not found". The local stack's
/// test (`local_stack`) expects the same over HTTP.
pub(crate) const ROUTE_ANSWERS: &[(&str, &str, u16)] = &[
    ("POST", "/v1/connections/{provider}/authorize", 200), // the start link
    ("GET", "/oauth/{provider}/start", 400),               // no ticket
    ("GET", "/oauth/{provider}/callback", 400),            // no state
    ("DELETE", "/v1/connections/{provider}", 404),         // no connection to delete
    ("DELETE", "/v1/people/{user}", 403),                  // someone else, and not an admin
    ("GET", "/webhooks/{provider}", 400),                  // Google notifies by POST only
    ("POST", "/webhooks/{provider}", 401),                 // unsigned
    ("HEAD", "/webhooks/{provider}", 400),
    ("POST", "/v1/sync", 200),                // nothing connected, nothing to sync
    ("GET", "/v1/sync/status", 200),          // no connections
    ("GET", "/v1/steps", 400),                // no from and to
    ("POST", "/v1/steps/device-upload", 400), // no body
    ("POST", "/v1/challenges", 403),          // not an admin
    ("GET", "/v1/challenges", 200),           // none yet
    ("GET", "/v1/challenges/{id}", 404),      // no such challenge
    ("POST", "/v1/challenges/{id}/join", 404),
    ("DELETE", "/v1/challenges/{id}/join", 404),
    ("GET", "/v1/challenges/{id}/leaderboard", 404),
    ("GET", "/v1/challenges/{id}/sync-health", 403), // not an admin
    ("GET", "/v1/challenges/{id}/export", 403),
    ("POST", "/v1/challenges/{id}/reminders", 403),
];

/// The app the route and sample checks call: the test's table, Google Health at a fake.
async fn app_with_google(env: &TestEnv) -> (functions::app::App, FakeGoogleHealth) {
    let google = FakeGoogleHealth::start().await;
    // The sample stream batch's `StepsUpdated` is published, as for a company app that subscribes;
    // reminders are on, so the status change sample reaches the use case.
    let on = vec![("STEPSYNC_STEPS_UPDATED", "true".to_owned()), ("STEPSYNC_NUDGES", "true".to_owned())];
    let vars = [harness::google_vars(&google), on].concat();
    (harness::app(env, vars), google)
}

#[tokio::test]
async fn every_route_is_served_by_its_handler() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let (app, _google) = app_with_google(&env).await;
    let user = UserId::parse("route-checker").unwrap();
    let routes: BTreeSet<(String, String)> = template_routes().into_iter().map(|(_, m, p)| (m, p)).collect();
    let listed: BTreeSet<(String, String)> =
        ROUTE_ANSWERS.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(routes, listed, "ROUTE_ANSWERS lists every template route, and only those");
    for (binary, method, path) in template_routes() {
        let concrete = path
            .replace("{provider}", "google_health")
            .replace("{id}", "no-such-challenge")
            .replace("{user}", "someone-else");
        let req = request_from_sample("sync_status.json", Some(&user), |e| {
            e["rawPath"] = concrete.clone().into();
            e["requestContext"]["http"]["method"] = method.clone().into();
            e["requestContext"]["http"]["path"] = concrete.clone().into();
            e["routeKey"] = format!("{method} {path}").into();
        });
        let res = dispatch(&app, &binary, req).await;
        let body = body_json(&res);
        let unrouted = res.status() == 404 && body["error"]["message"].as_str() == Some("route not found");
        assert!(!unrouted, "{binary} does not serve {method} {path}");
        let expected = ROUTE_ANSWERS.iter().find(|(m, p, _)| *m == method && *p == path).unwrap().2;
        assert_eq!(res.status(), expected, "{binary} {method} {path}: {body}");
    }
}

/// What each sample in `events/` gets from its handler, the placeholders a caller fills in
/// (`REPLACE-WITH-...`, ids nobody created) left as they are.
enum Answer {
    /// An HTTP sample: this status.
    Status(u16),
    /// A sync-worker sample: this result.
    Worker(WorkerResult),
    /// The scheduler's tick: it runs and finds no shard busy (the table is empty).
    Tick,
    /// The daily reconcile: it runs over an empty table and finds nothing to do.
    Reconcile,
    /// A stream batch for day-events: every record published, this `StepsUpdated` among them.
    DayEvents(u32, u32, u64),
    /// A status change for nudges: this outcome.
    Nudge(functions::nudges::NudgeOutcome),
}

fn sample_answers() -> Vec<(&'static str, Answer)> {
    use Answer::{DayEvents, Nudge, Reconcile, Status, Tick, Worker};
    use functions::nudges::NudgeOutcome;
    vec![
        ("connection_status_changed.json", Nudge(NudgeOutcome::NotNeeded { why: "no such connection".into() })),
        ("reconcile_tick.json", Reconcile),
        ("day_changed.json", DayEvents(8000, 8421, 2)),
        ("challenges_create.json", Status(201)), // the sample's user is an admin
        ("challenges_get.json", Status(404)),    // the sample's challenge was never created
        ("challenges_join.json", Status(404)),
        ("challenges_leaderboard.json", Status(404)),
        ("challenges_leave.json", Status(404)),
        ("challenges_list.json", Status(200)),
        ("challenges_sync_health.json", Status(404)), // an admin; the sample's challenge was never created
        ("challenges_export.json", Status(404)),
        ("challenges_reminders.json", Status(404)),
        ("device_upload.json", Status(200)),
        ("oauth_authorize.json", Status(200)),
        ("oauth_start.json", Status(400)),    // a ticket nobody issued
        ("oauth_callback.json", Status(400)), // a state nobody issued
        ("oauth_disconnect.json", Status(404)),
        ("scheduled_tick.json", Tick),
        ("steps.json", Status(200)),
        ("sync_now.json", Status(404)), // the challenge it names does not exist
        ("sync_requested.json", Worker(WorkerResult::Skipped { why: "no such connection".into() })),
        ("sync_shard.json", Worker(WorkerResult::Shard { synced: 0, failed: 0, stopped_early: false })),
        ("sync_status.json", Status(200)),
        ("webhook_google_health_notification.json", Status(401)), // REPLACE-WITH-SIGNATURE
        ("webhook_google_health_verification.json", Status(401)), // REPLACE-WITH-WEBHOOK-SECRET
    ]
}

/// Each sample, with the placeholders a caller fills in left as they are, reaches its
/// handler's logic and gets exactly the answer listed in `sample_answers`.
#[tokio::test]
async fn every_sample_event_gets_its_exact_answer_from_its_handler() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let (app, _google) = app_with_google(&env).await;
    let answers = sample_answers();
    let dir = stepsync_local::workspace_root().join("events");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = &answers
            .iter()
            .find(|(sample, _)| *sample == name)
            .unwrap_or_else(|| panic!("{name}: add its expected answer to sample_answers"))
            .1;
        seen.insert(name.clone());
        match expected {
            Answer::Worker(result) => {
                assert!(event.get("detail-type").is_some(), "{name}: not an EventBridge event");
                let got = functions::sync_worker::handle(&app, event.clone()).await;
                assert_eq!(got.as_ref().ok(), Some(result), "{name}: {got:?}");
            }
            Answer::Status(status) => {
                assert_eq!(event.get("version").and_then(|v| v.as_str()), Some("2.0"), "{name}: not an HttpApi event");
                let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                let route = event["routeKey"].as_str().unwrap();
                let (method, path) = route.split_once(' ').unwrap();
                let binary = template_routes()
                    .into_iter()
                    .find(|(_, m, p)| m == method && p == path)
                    .map(|(b, _, _)| b)
                    .unwrap_or_else(|| panic!("{name}: route {route} is not in the template"));
                let res = dispatch(&app, &binary, req).await;
                let body = body_json(&res);
                assert!(body["error"]["message"].as_str() != Some("route not found"), "{name}: {body}");
                assert_eq!(res.status(), *status, "{name}: {body}");
            }
            Answer::DayEvents(old_total, new_total, version) => {
                let answer = functions::day_events::handle(&app, event.clone()).await.unwrap();
                assert_eq!(answer, functions::day_events::BatchAnswer::default(), "{name}: nothing to retry");
                let published = env.publisher.events();
                let update = published.iter().find_map(|e| match e {
                    stepsync::events::Event::StepsUpdated(u) => Some((u.old_total, u.new_total, u.version, u.source)),
                    _ => None,
                });
                let expected = (*old_total, *new_total, *version, stepsync::domain::Provider::GoogleHealth);
                assert_eq!(update, Some(expected), "{name}: {published:?}");
            }
            Answer::Nudge(outcome) => {
                let got = functions::nudges::handle(&app, event.clone()).await;
                assert_eq!(got.as_ref().ok(), Some(outcome), "{name}: {got:?}");
            }
            Answer::Reconcile => {
                let report = functions::reconcile::run(&app).await.unwrap();
                assert_eq!(report.challenges, stepsync::services::ReconcileReport::default(), "{name}");
                assert_eq!(report.subscriptions, stepsync::services::SubscriptionsReport::default(), "{name}");
            }
            Answer::Tick => {
                let busy = functions::scheduled_sync::tick(&app).await;
                assert_eq!(busy.as_ref().ok(), Some(&Vec::new()), "{name}: {busy:?}");
            }
        }
    }
    let listed: BTreeSet<String> = answers.iter().map(|(sample, _)| sample.to_string()).collect();
    assert_eq!(seen, listed, "every listed sample exists in events/");
}

/// Every route that takes a body refuses one past its cap with 413 before parsing it: the JSON
/// routes at `MAX_JSON_BODY`, the webhooks at `MAX_WEBHOOK_BODY`.
#[tokio::test]
async fn every_route_with_a_body_refuses_an_oversized_one_before_parsing() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let (app, _google) = app_with_google(&env).await;
    let json_cap = functions::http::MAX_JSON_BODY;
    let webhook_cap = stepsync::services::intake::MAX_WEBHOOK_BODY;
    let samples = [
        ("oauth_authorize.json", json_cap),
        ("sync_now.json", json_cap),
        ("device_upload.json", json_cap),
        ("challenges_create.json", json_cap),
        ("webhook_google_health_notification.json", webhook_cap),
    ];
    for (name, cap) in samples {
        let path = stepsync_local::workspace_root().join("events").join(name);
        let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Valid JSON, one byte over the cap: only the size can refuse it.
        let padding = "x".repeat(cap);
        event["body"] = serde_json::json!({"padding": padding}).to_string().into();
        let route = event["routeKey"].as_str().unwrap().to_owned();
        let (method, path) = route.split_once(' ').unwrap();
        let binary = template_routes().into_iter().find(|(_, m, p)| m == method && p == path).unwrap().0;
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let res = dispatch(&app, &binary, req).await;
        assert_eq!(res.status(), 413, "{name}: {}", body_json(&res));
        assert_eq!(body_json(&res)["error"]["code"], "too_large", "{name}");
    }
}

/// Reminders are off by default and then not deployed at all: every resource of theirs (the
/// function and its rule, the API destination, its connection, role and rule, both dead-letter
/// queues, the log group, the alarms, the outputs) carries `NudgesEnabled`, which is
/// "NudgeTargetUrl is not empty", and that parameter is empty by default. Deployed, each
/// rule retries and dead-letters, and each dead-letter queue has its alarm.
#[test]
fn reminders_are_deployed_only_with_a_target_and_every_rule_retries_and_dead_letters() {
    let doc: serde_norway::Value = serde_norway::from_str(stepsync_local::template::TEMPLATE).unwrap();
    let written = |v: &serde_norway::Value| format!("{v:?}");
    assert_eq!(template().parameter_defaults.get("NudgeTargetUrl").map(String::as_str), Some(""));
    let enabled = written(&doc["Conditions"]["NudgesEnabled"]);
    assert!(enabled.contains("Not") && enabled.contains("Equals") && enabled.contains("NudgeTargetUrl"), "{enabled}");
    let resources = doc["Resources"].as_mapping().unwrap();
    let ours: Vec<&str> = resources.keys().filter_map(|k| k.as_str()).filter(|id| id.starts_with("Nudge")).collect();
    for expected in [
        "Nudges",
        "NudgesDeadLetterQueue",
        "NudgesDeadLetterQueuePolicy",
        "NudgeTargetConnection",
        "NudgeTarget",
        "NudgeTargetRole",
        "NudgeTargetRule",
        "NudgeTargetDeadLetterQueue",
        "NudgeTargetDeadLetterQueuePolicy",
        "NudgesLogGroup",
        "NudgesErrorsAlarm",
        "NudgesDeadLetterAlarm",
        "NudgeTargetDeadLetterAlarm",
    ] {
        assert!(ours.contains(&expected), "{expected} is in the template");
    }
    for id in &ours {
        assert_eq!(doc["Resources"][*id]["Condition"].as_str(), Some("NudgesEnabled"), "{id}");
    }
    for (id, output) in doc["Outputs"].as_mapping().unwrap() {
        if id.as_str().is_some_and(|id| id.starts_with("Nudge")) {
            assert_eq!(output["Condition"].as_str(), Some("NudgesEnabled"), "{id:?}");
        }
    }
    // The function's rule: only moves to reconnect_required, retried, dead-lettered.
    let rule = &doc["Resources"]["Nudges"]["Properties"]["Events"]["StatusChanged"]["Properties"];
    assert_eq!(
        written(&rule["Pattern"]["detail"]["new_status"]),
        written(&serde_norway::from_str("[reconnect_required]").unwrap())
    );
    assert!(written(&rule["DeadLetterConfig"]).contains("NudgesDeadLetterQueue"));
    assert!(rule["RetryPolicy"]["MaximumRetryAttempts"].as_u64().is_some());
    // The reminder rule: both kinds, to the destination, retried, dead-lettered.
    let target = &doc["Resources"]["NudgeTargetRule"]["Properties"]["Targets"][0];
    assert!(written(&target["Arn"]).contains("NudgeTarget"));
    assert!(written(&target["DeadLetterConfig"]).contains("NudgeTargetDeadLetterQueue"));
    assert!(target["RetryPolicy"]["MaximumEventAgeInSeconds"].as_u64().is_some());
    let kinds = written(&doc["Resources"]["NudgeTargetRule"]["Properties"]["EventPattern"]["detail-type"]);
    assert!(kinds.contains("ReminderDue") && kinds.contains("DigestDue"), "{kinds}");
    for queue in ["NudgesDeadLetterQueue", "NudgeTargetDeadLetterQueue"] {
        let alarmed = resources.values().any(|r| {
            r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && written(&r["Properties"]["Dimensions"]).contains(&format!("{queue}.QueueName"))
        });
        assert!(alarmed, "{queue} has an alarm");
    }
}
