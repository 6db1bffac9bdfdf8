//! The edge's rule, checked on the sources: a handler parses, calls one service and maps the
//! result. It never touches a store or an adapter, and never imports another handler.

use std::path::Path;

/// The handler modules: one per function, each its own edge.
const HANDLERS: [&str; 7] =
    ["challenges", "manual_sync", "nudges", "oauth", "scheduled_sync", "sync_worker", "webhook"];

/// What a handler must not name: adapters and the store ports (reach them through a service).
const FORBIDDEN: [&str; 10] = [
    "stepsync::aws",
    "stepsync::providers",
    "DynamoStore",
    "StepStore",
    "ChallengeStore",
    "ConnectionStore",
    "EphemeralStore",
    ".ports.steps",
    ".ports.connections",
    ".ports.ephemeral",
];

fn handler_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    for handler in HANDLERS {
        let file = root.join(format!("{handler}.rs"));
        let dir = root.join(handler);
        let files: Vec<_> = if file.exists() {
            vec![file]
        } else {
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect()
        };
        for path in files {
            out.push((handler.to_owned(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

fn problems(handler: &str, text: &str) -> Vec<String> {
    let mut found: Vec<String> =
        FORBIDDEN.iter().filter(|name| text.contains(*name)).map(|name| format!("{handler} names `{name}`")).collect();
    for other in HANDLERS.iter().filter(|other| **other != handler) {
        if text.contains(&format!("crate::{other}")) || text.contains(&format!("super::{other}")) {
            found.push(format!("{handler} imports the handler {other}"));
        }
    }
    found
}

#[test]
fn handlers_call_services_never_a_store_an_adapter_or_another_handler() {
    let all: Vec<String> = handler_sources().iter().flat_map(|(handler, text)| problems(handler, text)).collect();
    assert!(all.is_empty(), "{}", all.join("\n"));
}

#[test]
fn the_check_catches_a_handler_that_reaches_past_its_service() {
    let text =
        "use crate::sync_worker::sync_connection;\nlet c = app.services.ports.connections.get_connection(&u, p);\n";
    assert_eq!(
        problems("manual_sync", text),
        ["manual_sync names `.ports.connections`", "manual_sync imports the handler sync_worker"]
    );
}
