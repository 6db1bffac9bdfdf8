//! Structured JSON logs, one line per event, for every binary.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber; `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init() {
    init_with_default("info");
}

/// The same with another default filter (the local stack quiets its embedded emulator).
pub fn init_with_default(directives: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    let _ =
        tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(true).with_target(false).try_init();
}
