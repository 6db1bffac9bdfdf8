//! `template.yaml` and the code agree: every function has a binary and every binary a
//! function; every HttpApi route is served by its function's handler and every handler route
//! is in the template; every sample in `events/` is accepted by its handler.

use lambda_http::{Body, Request, Response};
use std::collections::BTreeSet;
use stepsync::domain::UserId;
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

#[tokio::test]
async fn every_route_is_served_by_its_handler() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let app = harness::app(&env, vec![]);
    let user = UserId::parse("route-checker").unwrap();
    for (binary, method, path) in template_routes() {
        let concrete = path.replace("{provider}", "google_health").replace("{id}", "no-such-challenge");
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
    }
}

/// Each sample, with the placeholders a caller fills in left as they are, reaches its
/// handler's logic: the answer is never "no such route" nor a server error.
#[tokio::test]
async fn every_sample_event_is_accepted_by_its_handler() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let app = harness::app(&env, vec![]);
    let dir = stepsync_local::workspace_root().join("events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
        if event.get("detail-type").is_some() {
            let result = functions::sync_worker::handle(&app, event.clone()).await;
            assert!(result.is_ok(), "{name}: {result:?}");
        } else if event.get("version").and_then(|v| v.as_str()) == Some("2.0") {
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
            assert!(res.status() != 500, "{name}: {body}");
            assert!(body["error"]["message"].as_str() != Some("route not found"), "{name}: {body}");
        } else {
            let busy = functions::scheduled_sync::tick(&app).await;
            assert!(busy.is_ok(), "{name}: {busy:?}");
        }
    }
    assert!(seen >= 15, "samples found: {seen}");
}
