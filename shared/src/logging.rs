//! Structured JSON logs, one line per event, for every binary.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON subscriber; `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init() {
    init_with_default("info");
}

/// The same with another default filter (the local stack quiets its embedded emulator).
pub fn init_with_default(directives: &str) {
    let filter =
        std::env::var("RUST_LOG").ok().and_then(|var| parse(&var)).or_else(|| parse(directives)).unwrap_or_default();
    let json = tracing_subscriber::fmt::layer().json().with_current_span(true).with_target(false);
    let _ = tracing_subscriber::registry().with(json).with(filter).try_init();
}

/// A comma-separated list of `level`, `target=level` and bare `target` (= `trace`) directives,
/// as `RUST_LOG` has always been read here (the longest matching target wins; targets not
/// named are off unless a bare level is given). `None` when any directive is invalid, so that
/// a typo falls back to the default instead of silencing the logs. Span and field filters
/// (`target[span{field}]=level`) are not supported: `Targets` is the static half of
/// `EnvFilter`, without its regular-expression engine (about 0.2 MB of every binary).
fn parse(directives: &str) -> Option<Targets> {
    let directives: Vec<&str> = directives.split(',').filter(|d| !d.is_empty()).collect();
    if directives.is_empty() {
        return Some(Targets::new());
    }
    if directives.iter().any(|d| d.contains('[')) {
        return None;
    }
    directives.join(",").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse;
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn reads_levels_and_targets_like_env_filter() {
        let filter = parse("warn,stepsync=debug,stepsync::aws=error").unwrap();
        assert!(filter.would_enable("stepsync::engine", &Level::DEBUG));
        assert!(!filter.would_enable("stepsync::engine", &Level::TRACE));
        assert!(!filter.would_enable("stepsync::aws::dynamo", &Level::WARN));
        assert!(filter.would_enable("hyper", &Level::WARN));
        assert!(!filter.would_enable("hyper", &Level::INFO));
        assert_eq!(parse("INFO").unwrap().default_level(), Some(LevelFilter::INFO));
        assert!(parse("functions").unwrap().would_enable("functions::runtime", &Level::TRACE));
        assert!(!parse("functions=info,").unwrap().would_enable("stepsync", &Level::ERROR));
    }

    #[test]
    fn an_empty_list_is_silent_and_a_bad_one_is_refused() {
        assert!(!parse("").unwrap().would_enable("stepsync", &Level::ERROR));
        assert!(parse("stepsync=loud").is_none());
        assert!(parse("a=info=b").is_none());
        assert!(parse("stepsync[sync]=debug").is_none());
    }
}
