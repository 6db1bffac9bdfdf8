//! `docs/openapi.yaml` and the code agree: the spec's routes are exactly the handlers'
//! `ROUTES`, each under the function that serves it; JWT security exactly where the HttpApi
//! authorizer applies; every status the integration tests observe is declared; every `$ref`
//! resolves; every error answer is the shared `Error` schema, whose codes are `ApiError`'s.
//!
//! Each check returns the problems it found rather than panicking, so that
//! `the_checks_notice_what_is_on_one_side_only` can run them on doctored copies of the
//! document (a path removed, a path added, a handler route added, ...) and see each one
//! reported: that is how we know this test fails when a route is added to a handler or to the
//! spec alone.

use functions::http::ApiError;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use stepsync::diagnosis::Action;
use stepsync::domain::{ChallengeState, Connection, ConnectionStatus, LastError, Provider, UserId};
use stepsync_local::harness;

/// (METHOD, path), spelled as the handlers' `ROUTES` spell them.
type Route = (String, String);

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const ERROR_REF: &str = "#/components/schemas/Error";

/// The routes that are not behind the JWT authorizer: a browser opens the start link (its
/// ticket says who) and comes back from the provider's consent page without a token, and
/// providers sign their webhooks instead.
const PUBLIC_ROUTES: [(&str, &str); 5] = [
    ("GET", "/oauth/{provider}/start"),
    ("GET", "/oauth/{provider}/callback"),
    ("GET", "/webhooks/{provider}"),
    ("POST", "/webhooks/{provider}"),
    ("HEAD", "/webhooks/{provider}"),
];

/// The statuses the integration tests observe, route by route, and the tests that do.
const OBSERVED: &[(&str, &str, &[u16], &str)] = &[
    ("POST", "/v1/connections/{provider}/authorize", &[200, 400, 401, 413], "google_health.rs, misfit.rs, sync_api.rs"),
    ("GET", "/oauth/{provider}/start", &[302, 400], "google_health.rs, misfit.rs, local_stack.rs"),
    ("GET", "/oauth/{provider}/callback", &[302, 400], "google_health.rs, misfit.rs"),
    ("DELETE", "/v1/connections/{provider}", &[204, 401, 404], "google_health.rs, sync_api.rs"),
    ("DELETE", "/v1/people/{user}", &[200, 403], "sync_api.rs, template.rs"),
    ("POST", "/webhooks/{provider}", &[200, 201, 204, 400, 401, 413], "google_health.rs, misfit.rs"),
    ("POST", "/v1/sync", &[200, 202, 401, 413, 429], "sync_api.rs"),
    ("GET", "/v1/sync/status", &[200, 401], "sync_api.rs"),
    ("GET", "/v1/steps", &[200, 400, 401], "sync_api.rs"),
    ("POST", "/v1/steps/device-upload", &[200, 400, 409, 413, 429], "device_upload.rs"),
    ("POST", "/v1/challenges", &[201, 400, 401, 403, 413], "challenges_api.rs"),
    ("GET", "/v1/challenges", &[200, 401], "challenges_api.rs"),
    ("GET", "/v1/challenges/{id}", &[200, 401, 404], "challenges_api.rs"),
    ("POST", "/v1/challenges/{id}/join", &[200, 401, 404, 409], "challenges_api.rs"),
    ("DELETE", "/v1/challenges/{id}/join", &[204, 401, 404, 409], "challenges_api.rs"),
    ("GET", "/v1/challenges/{id}/leaderboard", &[200, 400, 401, 404], "challenges_api.rs"),
    ("GET", "/v1/challenges/{id}/sync-health", &[200, 400, 401, 403, 404], "organizer_api.rs, challenges_api.rs"),
    ("GET", "/v1/challenges/{id}/export", &[200, 400, 401, 403, 404], "organizer_api.rs, challenges_api.rs"),
    ("POST", "/v1/challenges/{id}/reminders", &[200, 401, 403, 404], "organizer_api.rs, challenges_api.rs"),
];

fn spec() -> Value {
    let path = stepsync_local::workspace_root().join("docs/openapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

fn route(method: &str, path: &str) -> Route {
    (method.to_owned(), path.to_owned())
}

/// Every handler route, with the function (binary) whose handler serves it.
fn handler_routes() -> BTreeMap<Route, &'static str> {
    let tables = [
        ("oauth", functions::oauth::ROUTES),
        ("provider-webhook", functions::webhook::ROUTES),
        ("manual-sync", functions::manual_sync::ROUTES),
        ("challenges", functions::challenges::ROUTES),
    ];
    let mut routes = BTreeMap::new();
    for (function, table) in tables {
        for (method, path) in table {
            let before = routes.insert(route(method, path), function);
            assert!(before.is_none(), "{method} {path} is in the ROUTES of both {} and {function}", before.unwrap());
        }
    }
    routes
}

/// The routes template.yaml exempts from its default (JWT) authorizer.
fn template_public_routes() -> BTreeSet<Route> {
    let template = stepsync_local::template::template().expect("template.yaml parses");
    let default = template.default_authorizer.as_deref();
    assert_eq!(default, Some("JwtAuthorizer"), "the HttpApi's default authorizer is the JWT one");
    template.routes().filter(|(_, r)| r.public).map(|(_, r)| route(&r.method, &r.path)).collect()
}

/// Every operation of the document, by route.
fn operations(doc: &Value) -> BTreeMap<Route, &Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_mapping().into_iter().flatten() {
        let Some(path) = path.as_str() else { continue };
        for method in HTTP_METHODS {
            if let Some(op) = item.get(method) {
                ops.insert(route(&method.to_uppercase(), path), op);
            }
        }
    }
    ops
}

/// The node a local `$ref` (`#/a/b~1c`) points at.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix("#/")?;
    pointer.split('/').try_fold(doc, |node, token| {
        let token = token.replace("~1", "/").replace("~0", "~");
        match node {
            Value::Sequence(items) => items.get(token.parse::<usize>().ok()?),
            _ => node.get(token.as_str()),
        }
    })
}

/// `node`, or what its `$ref` points at (responses and headers may be references).
fn deref<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..8 {
        match node.get("$ref").and_then(Value::as_str).and_then(|r| resolve(doc, r)) {
            Some(target) => node = target,
            None => break,
        }
    }
    node
}

/// Whether a schema is the `Error` schema, refers to it, or composes it (`allOf`, or one of
/// the alternatives in `oneOf`/`anyOf`).
fn uses_error_schema(doc: &Value, schema: &Value, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference == ERROR_REF || resolve(doc, reference).is_some_and(|s| uses_error_schema(doc, s, depth + 1));
    }
    ["allOf", "oneOf", "anyOf"].into_iter().any(|key| {
        schema
            .get(key)
            .and_then(Value::as_sequence)
            .is_some_and(|all| all.iter().any(|s| uses_error_schema(doc, s, depth + 1)))
    })
}

/// Each declared response of an operation: (status as written, the resolved response).
fn responses<'a>(doc: &'a Value, op: &'a Value) -> Vec<(&'a Value, &'a Value)> {
    op["responses"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(status, response)| (status, deref(doc, response)))
        .collect()
}

fn status_of(key: &Value) -> Option<u16> {
    key.as_str().filter(|s| s.len() == 3).and_then(|s| s.parse().ok())
}

fn has_header(response: &Value, name: &str) -> bool {
    response["headers"]
        .as_mapping()
        .is_some_and(|h| h.keys().any(|k| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(name))))
}

/// Every `ApiError`; the match makes a new variant a compile error here until it is listed.
fn every_api_error() -> Vec<ApiError> {
    let all = vec![
        ApiError::BadRequest("x".into()),
        ApiError::Invalid { field: "x", message: "x".into() },
        ApiError::Unauthenticated,
        ApiError::Forbidden("x".into()),
        ApiError::NotFound("x".into()),
        ApiError::Conflict("x".into()),
        ApiError::LimitReached("x".into()),
        ApiError::TooLarge,
        ApiError::TooManyRequests { message: "x".into(), retry_after: std::time::Duration::from_secs(1) },
        ApiError::Unavailable("x".into()),
        ApiError::Internal,
    ];
    for error in &all {
        match error {
            ApiError::BadRequest(_)
            | ApiError::Invalid { .. }
            | ApiError::Unauthenticated
            | ApiError::Forbidden(_)
            | ApiError::NotFound(_)
            | ApiError::Conflict(_)
            | ApiError::LimitReached(_)
            | ApiError::TooLarge
            | ApiError::TooManyRequests { .. }
            | ApiError::Unavailable(_)
            | ApiError::Internal => {}
        }
    }
    all
}

/// The statuses a handler can answer: `ApiError`'s, and the successes and redirects the
/// handlers and the providers' webhook handshakes build.
fn statuses_the_code_answers() -> BTreeSet<u16> {
    every_api_error().iter().map(ApiError::status).chain([200, 201, 202, 204, 302]).collect()
}

/// (a) The same routes on both sides, each under the function whose `ROUTES` has it, each
/// with a unique `operationId`.
fn route_problems(doc: &Value, handlers: &BTreeMap<Route, &str>) -> Vec<String> {
    let ops = operations(doc);
    let mut problems = Vec::new();
    for ((method, path), function) in handlers {
        match ops.get(&route(method, path)) {
            None => problems
                .push(format!("{method} {path}: the {function} handler's ROUTES has it, docs/openapi.yaml does not")),
            Some(op) => match op["x-stepsync-function"].as_str() {
                Some(named) if named == *function => {}
                named => problems.push(format!(
                    "{method} {path}: x-stepsync-function is {named:?}, but the {function} handler serves it"
                )),
            },
        }
    }
    for (method, path) in ops.keys() {
        if !handlers.contains_key(&route(method, path)) {
            problems.push(format!("{method} {path}: docs/openapi.yaml has it, no handler's ROUTES does"));
        }
    }
    let mut ids = BTreeSet::new();
    for ((method, path), op) in &ops {
        match op["operationId"].as_str() {
            Some(id) if !ids.insert(id) => problems.push(format!("{method} {path}: operationId {id} is used twice")),
            Some(_) => {}
            None => problems.push(format!("{method} {path}: no operationId")),
        }
    }
    problems
}

/// (b) `bearerAuth` exactly on the JWT routes; the others declare none and say how they are
/// protected instead (`x-stepsync-protection`).
fn security_problems(doc: &Value, public: &BTreeSet<Route>) -> Vec<String> {
    let mut problems = Vec::new();
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    let scheme_is_jwt = scheme["type"].as_str() == Some("http")
        && scheme["scheme"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
        && scheme["bearerFormat"].as_str() == Some("JWT");
    if !scheme_is_jwt {
        problems.push("components.securitySchemes.bearerAuth is not an http bearer JWT scheme".to_owned());
    }
    for ((method, path), op) in operations(doc) {
        // An operation's own `security` overrides the document's.
        let requirements = op.get("security").or(doc.get("security")).and_then(Value::as_sequence);
        let requirements = requirements.map(Vec::as_slice).unwrap_or_default();
        let only_bearer = matches!(requirements, [one] if one.as_mapping().is_some_and(|m| {
            m.len() == 1 && m.get("bearerAuth").and_then(Value::as_sequence).is_some_and(Vec::is_empty)
        }));
        if public.contains(&route(&method, &path)) {
            if !requirements.is_empty() {
                problems
                    .push(format!("{method} {path}: has no JWT authorizer, yet declares security {requirements:?}"));
            }
            if op["x-stepsync-protection"].as_str().is_none_or(str::is_empty) {
                problems.push(format!(
                    "{method} {path}: a route without JWT must say how it is protected (x-stepsync-protection)"
                ));
            }
        } else if !only_bearer {
            problems.push(format!("{method} {path}: a JWT route must declare exactly `security: [bearerAuth: []]`"));
        }
    }
    problems
}

/// (c) Statuses: written as quoted three-digit codes the code can answer; every status a test
/// observes declared; 401 on every JWT route; `Retry-After` on 429; `Location` and
/// `Set-Cookie` on the OAuth redirects.
fn status_problems(doc: &Value, public: &BTreeSet<Route>, observed: &[(&str, &str, &[u16], &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    let answerable = statuses_the_code_answers();
    let ops = operations(doc);
    let mut declared: BTreeMap<Route, BTreeSet<u16>> = BTreeMap::new();
    for ((method, path), op) in &ops {
        let statuses = declared.entry(route(method, path)).or_default();
        for (key, response) in responses(doc, op) {
            let Some(status) = status_of(key) else {
                problems.push(format!("{method} {path}: response key {key:?} is not a quoted status like '200'"));
                continue;
            };
            statuses.insert(status);
            if !answerable.contains(&status) {
                problems.push(format!("{method} {path}: declares {status}, which no handler answers"));
            }
            if status == 429 && !has_header(response, "Retry-After") {
                problems.push(format!("{method} {path}: 429 without a Retry-After header"));
            }
            if status == 302 {
                for header in ["Location", "Set-Cookie"] {
                    if !has_header(response, header) {
                        problems.push(format!("{method} {path}: 302 without a {header} header"));
                    }
                }
            }
        }
        if !public.contains(&route(method, path)) && !statuses.contains(&401) {
            problems.push(format!("{method} {path}: a JWT route must declare 401"));
        }
    }
    for (method, path, statuses, tests) in observed {
        let Some(declared) = declared.get(&route(method, path)) else {
            problems
                .push(format!("{method} {path}: observed by tests/integration/{tests} but not in docs/openapi.yaml"));
            continue;
        };
        for status in statuses.iter().filter(|s| !declared.contains(*s)) {
            problems.push(format!(
                "{method} {path}: tests/integration/{tests} observe {status}, docs/openapi.yaml does not declare it"
            ));
        }
    }
    problems
}

/// Every `$ref` anywhere in the document points inside it, at something that exists.
fn ref_problems(doc: &Value) -> Vec<String> {
    fn walk(doc: &Value, node: &Value, at: &str, problems: &mut Vec<String>) {
        match node {
            Value::Mapping(map) => {
                for (key, value) in map {
                    let key = key.as_str().map_or_else(|| format!("{key:?}"), str::to_owned);
                    if key == "$ref" {
                        match value.as_str() {
                            Some(r) if resolve(doc, r).is_some() => {}
                            other => {
                                problems.push(format!("{at}: $ref {other:?} does not resolve inside the document"))
                            }
                        }
                    } else {
                        walk(doc, value, &format!("{at}/{key}"), problems);
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(doc, item, &format!("{at}/{i}"), problems);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    walk(doc, doc, "#", &mut problems);
    problems
}

/// Every error response carries the `Error` schema as JSON (HEAD answers carry no body).
fn error_schema_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if resolve(doc, ERROR_REF).is_none() {
        problems.push(format!("{ERROR_REF} is missing"));
    }
    for ((method, path), op) in operations(doc) {
        for (key, response) in responses(doc, op) {
            let Some(status) = status_of(key).filter(|s| *s >= 400) else { continue };
            let content = &response["content"];
            if method == "HEAD" {
                if !content.is_null() {
                    problems.push(format!("{method} {path}: {status} declares a body; HEAD answers have none"));
                }
            } else if !uses_error_schema(doc, &content["application/json"]["schema"], 0) {
                problems
                    .push(format!("{method} {path}: {status} does not answer application/json with the Error schema"));
            }
        }
    }
    problems
}

/// All the checks on one document.
fn all_problems(doc: &Value, handlers: &BTreeMap<Route, &str>, public: &BTreeSet<Route>) -> Vec<String> {
    let mut problems = route_problems(doc, handlers);
    problems.extend(security_problems(doc, public));
    problems.extend(status_problems(doc, public, OBSERVED));
    problems.extend(ref_problems(doc));
    problems.extend(error_schema_problems(doc));
    problems
}

fn public_routes() -> BTreeSet<Route> {
    PUBLIC_ROUTES.iter().map(|(method, path)| route(method, path)).collect()
}

#[test]
fn the_spec_and_the_handlers_agree() {
    let doc = spec();
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true), "an OpenAPI 3.1 document");
    assert_eq!(
        template_public_routes(),
        public_routes(),
        "template.yaml exempts other routes from the JWT authorizer than the start link, the callback and the webhooks"
    );
    let problems = all_problems(&doc, &handler_routes(), &public_routes());
    assert!(problems.is_empty(), "docs/openapi.yaml disagrees with the code:\n  - {}", problems.join("\n  - "));
}

/// Each check, fed a doctored copy, reports what was doctored: this test would fail on a
/// route added to a handler or to the spec alone, a wrong function, a missing authorizer, a
/// missing 401, a dangling `$ref` or an error without the `Error` schema.
#[test]
fn the_checks_notice_what_is_on_one_side_only() {
    let doc = spec();
    let handlers = handler_routes();
    let public = public_routes();
    assert!(all_problems(&doc, &handlers, &public).is_empty(), "the real document must pass first");
    let reported = |problems: Vec<String>, expected: &str| {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?}, got {problems:#?}"
        );
    };

    // A path dropped from the spec (the handler still has it).
    let mut doctored = doc.clone();
    doctored["paths"].as_mapping_mut().unwrap().remove("/v1/steps");
    reported(route_problems(&doctored, &handlers), "GET /v1/steps: the manual-sync handler's ROUTES has it");
    reported(status_problems(&doctored, &public, OBSERVED), "GET /v1/steps: observed by tests/integration/sync_api.rs");

    // A route added to the spec alone.
    let mut doctored = doc.clone();
    let extra = doc["paths"]["/v1/sync/status"].clone();
    doctored["paths"].as_mapping_mut().unwrap().insert("/v1/sync/history".into(), extra);
    reported(route_problems(&doctored, &handlers), "GET /v1/sync/history: docs/openapi.yaml has it, no handler");

    // A route added to a handler alone.
    let mut grown = handlers.clone();
    grown.insert(route("PUT", "/v1/challenges/{id}"), "challenges");
    reported(route_problems(&doc, &grown), "PUT /v1/challenges/{id}: the challenges handler's ROUTES has it");

    // An operation under the wrong function.
    let mut doctored = doc.clone();
    doctored["paths"]["/v1/steps"]["get"]["x-stepsync-function"] = "challenges".into();
    reported(route_problems(&doctored, &handlers), "GET /v1/steps: x-stepsync-function is Some(\"challenges\")");

    // A JWT route without security, and a public one with it.
    let mut doctored = doc.clone();
    doctored["paths"]["/v1/challenges"]["get"].as_mapping_mut().unwrap().remove("security");
    reported(security_problems(&doctored, &public), "GET /v1/challenges: a JWT route must declare");
    let mut doctored = doc.clone();
    doctored["paths"]["/webhooks/{provider}"]["post"]["security"] =
        doc["paths"]["/v1/sync"]["post"]["security"].clone();
    reported(security_problems(&doctored, &public), "POST /webhooks/{provider}: has no JWT authorizer");

    // A JWT route without 401, and the 429 without Retry-After.
    let mut doctored = doc.clone();
    doctored["paths"]["/v1/challenges/{id}"]["get"]["responses"].as_mapping_mut().unwrap().remove("401");
    reported(status_problems(&doctored, &public, OBSERVED), "GET /v1/challenges/{id}: a JWT route must declare 401");
    let mut doctored = doc.clone();
    doctored["paths"]["/v1/sync"]["post"]["responses"]["429"].as_mapping_mut().unwrap().remove("headers");
    reported(status_problems(&doctored, &public, OBSERVED), "POST /v1/sync: 429 without a Retry-After header");

    // A dangling reference, and an error answered with another schema.
    let mut doctored = doc.clone();
    doctored["paths"]["/v1/steps"]["get"]["responses"]["400"]["content"]["application/json"]["schema"]["$ref"] =
        "#/components/schemas/Nope".into();
    reported(ref_problems(&doctored), "$ref Some(\"#/components/schemas/Nope\") does not resolve");
    let mut doctored = doc.clone();
    doctored["paths"]["/v1/steps"]["get"]["responses"]["400"]["content"]["application/json"]["schema"]["$ref"] =
        "#/components/schemas/Steps".into();
    reported(error_schema_problems(&doctored), "GET /v1/steps: 400 does not answer application/json with the Error");
}

fn enum_of(doc: &Value, schema: &str) -> BTreeSet<String> {
    let values = doc["components"]["schemas"][schema]["enum"].as_sequence();
    values
        .unwrap_or_else(|| panic!("schema {schema} has no enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The names values serialise to (each is a string).
fn names(values: impl IntoIterator<Item = serde_json::Value>) -> BTreeSet<String> {
    values.into_iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"].as_mapping().into_iter().flatten().map(|(k, _)| k.as_str().unwrap().to_owned()).collect()
}

fn object_keys(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn now_of_spec() -> jiff::Timestamp {
    harness::NOW.parse().unwrap()
}

/// The shared schemas say what the code says: the error body's shape and codes, the enums,
/// the names and limits the handlers check.
#[test]
fn the_shared_schemas_match_the_code() {
    let doc = spec();
    let schemas = &doc["components"]["schemas"];

    // The error body, as `ApiError` builds it.
    let answer = ApiError::Invalid { field: "to", message: "must not be before from".into() }.into_response();
    let body = harness::body_json(&answer);
    let error = &schemas["Error"];
    assert_eq!(object_keys(&body), property_names(error), "the error body's top level");
    assert_eq!(object_keys(&body["error"]), property_names(&error["properties"]["error"]), "the error object's fields");
    let codes: BTreeSet<String> = every_api_error().iter().map(|e| e.code().to_owned()).collect();
    let spec_codes: BTreeSet<String> = error["properties"]["error"]["properties"]["code"]["enum"]
        .as_sequence()
        .expect("Error.error.code has an enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(spec_codes, codes, "Error.error.code's enum is ApiError's codes");

    // Enums, exhaustively where the code has no list of its own.
    let states = [ChallengeState::Upcoming, ChallengeState::Active, ChallengeState::Grace, ChallengeState::Final];
    for state in states {
        match state {
            ChallengeState::Upcoming | ChallengeState::Active | ChallengeState::Grace | ChallengeState::Final => {}
        }
    }
    let statuses = [ConnectionStatus::Active, ConnectionStatus::ReconnectRequired, ConnectionStatus::Disconnected];
    for status in statuses {
        match status {
            ConnectionStatus::Active | ConnectionStatus::ReconnectRequired | ConnectionStatus::Disconnected => {}
        }
    }
    let actions =
        [Action::Reconnect, Action::GrantPermission, Action::SyncDevice, Action::Wait, Action::None, Action::Connect];
    for action in actions {
        match action {
            Action::Reconnect
            | Action::GrantPermission
            | Action::SyncDevice
            | Action::Wait
            | Action::None
            | Action::Connect => {}
        }
    }
    assert_eq!(enum_of(&doc, "Provider"), names(Provider::ALL.map(|p| serde_json::to_value(p).unwrap())), "Provider");
    assert_eq!(
        enum_of(&doc, "ChallengeState"),
        names(states.map(|s| serde_json::to_value(s).unwrap())),
        "ChallengeState"
    );
    assert_eq!(
        enum_of(&doc, "ConnectionStatus"),
        names(statuses.map(|s| serde_json::to_value(s).unwrap())),
        "ConnectionStatus"
    );
    let spec_actions: BTreeSet<String> = schemas["Diagnosis"]["properties"]["action"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    // A connection's diagnosis never asks to connect a source: only a person with none is.
    let connection_actions = actions.into_iter().filter(|a| *a != Action::Connect);
    assert_eq!(spec_actions, names(connection_actions.map(|a| serde_json::to_value(a).unwrap())), "Diagnosis.action");
    assert_eq!(enum_of(&doc, "Action"), names(actions.map(|a| serde_json::to_value(a).unwrap())), "Action");
    let mut codes = enum_of(&doc, "DiagnosisCode");
    assert!(codes.remove(stepsync::diagnosis::no_source(now_of_spec()).code), "DiagnosisCode has no_source");
    let connection_codes: BTreeSet<String> = schemas["Diagnosis"]["properties"]["code"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, connection_codes, "DiagnosisCode is Diagnosis.code and no_source");

    // The organizer's answer, as the service serialises it.
    let needing = stepsync::services::NeedsAction {
        user: UserId::parse("spec-reader").unwrap(),
        provider: None,
        code: "no_source",
        action: Action::Connect,
        since: now_of_spec(),
        message: String::new(),
    };
    let share = stepsync::services::organizer::Share { participants: 1, share: 1.0 };
    let health = stepsync::services::SyncHealth {
        challenge_id: stepsync::domain::ChallengeId::parse("c").unwrap(),
        as_of: now_of_spec(),
        participants: 1,
        by_code: [("no_source", 1)].into(),
        by_action: [(Action::Connect, 1)].into(),
        with_data: stepsync::services::organizer::DataShares { yesterday: share, today: share },
        needing_action_total: 1,
        needing_action: vec![needing],
        next_cursor: None,
    };
    let body = serde_json::to_value(&health).unwrap();
    assert_eq!(object_keys(&body), property_names(&schemas["SyncHealth"]), "SyncHealth fields");
    assert_eq!(object_keys(&body["needing_action"][0]), property_names(&schemas["NeedsAction"]), "NeedsAction fields");
    assert_eq!(object_keys(&body["with_data"]["today"]), property_names(&schemas["Share"]), "Share fields");
    let export = &doc["paths"]["/v1/challenges/{id}/export"]["get"]["parameters"];
    let limit = export.as_sequence().unwrap().iter().find(|p| p["name"].as_str() == Some("limit")).unwrap();
    assert_eq!(
        limit["schema"]["maximum"].as_u64(),
        Some(stepsync::services::organizer::MAX_EXPORT_ROWS as u64),
        "the export's page"
    );

    // A diagnosis as the status route serialises it, with and without `retry_at`.
    let now: jiff::Timestamp = harness::NOW.parse().unwrap();
    let user = UserId::parse("spec-reader").unwrap();
    let waiting = Connection {
        last_error: Some(LastError { code: stepsync::domain::FailureCode::RateLimited, message: String::new() }),
        next_sync_at: Some(now),
        ..Connection::new(user.clone(), Provider::GoogleHealth, now)
    };
    let mut keys = BTreeSet::new();
    for connection in [waiting, Connection::new(user, Provider::AppleHealth, now)] {
        keys.extend(object_keys(&serde_json::to_value(stepsync::diagnosis::diagnose(&connection, now)).unwrap()));
    }
    assert_eq!(keys, property_names(&schemas["Diagnosis"]), "Diagnosis fields");

    // Limits and names the handlers enforce.
    let days = &schemas["DeviceUpload"]["properties"]["days"];
    assert_eq!(days["minItems"].as_u64(), Some(1), "DeviceUpload.days minItems");
    assert_eq!(
        days["maxItems"].as_u64(),
        Some(functions::manual_sync::device_upload::MAX_UPLOAD_DAYS as u64),
        "DeviceUpload.days"
    );
    let grace = &schemas["NewChallenge"]["properties"]["grace_days"];
    assert_eq!(grace["maximum"].as_u64(), Some(u64::from(stepsync::domain::MAX_GRACE_DAYS)), "NewChallenge.grace_days");
    let callback = &doc["paths"]["/oauth/{provider}/callback"]["get"];
    let cookie = callback["parameters"].as_sequence().unwrap().iter().find(|p| p["in"].as_str() == Some("cookie"));
    assert_eq!(cookie.and_then(|p| p["name"].as_str()), Some(functions::oauth::STATE_COOKIE), "the state cookie");
}
