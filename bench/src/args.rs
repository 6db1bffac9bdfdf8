//! Command-line options (`make bench BENCH_ARGS="..."`).

use crate::error::BenchError;
use std::path::PathBuf;

/// Which local DynamoDB the sweep and the request counts run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    Dynoxide,
    Moto,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// Connections due at once in the sweep.
    pub connections: usize,
    /// Webhook notifications timed for freshness.
    pub notifications: usize,
    /// Connections swept on the local stack while freshness is timed again (0: not).
    pub load_connections: usize,
    /// More sweeps, each on a fresh table of this many connections, to see whether the time
    /// per connection stays flat as the sweep grows (the sweep and its floors only).
    pub sweep_sizes: Vec<usize>,
    pub store: Store,
    /// The assumed device syncs (webhooks) per person per day in the cost model.
    pub webhooks_per_day: f64,
    pub skip_cold_start: bool,
    /// Section 5 alone, written to `cold-start.md` and `cold-start.json`.
    pub only_cold_start: bool,
    pub quick: bool,
    pub out: PathBuf,
}

impl Args {
    fn defaults() -> Self {
        Self {
            connections: 2_000,
            notifications: 200,
            load_connections: 10_000,
            sweep_sizes: Vec::new(),
            store: Store::Dynoxide,
            webhooks_per_day: 16.0,
            skip_cold_start: false,
            only_cold_start: false,
            quick: false,
            out: stepsync_local::workspace_root().join("bench/out"),
        }
    }

    /// Parses the arguments after the program name. `--quick` is a smoke run: 200
    /// connections, 20 notifications and a 1,000-connection load unless given explicitly.
    pub fn parse(raw: impl IntoIterator<Item = String>) -> Result<Self, BenchError> {
        let mut args = Self::defaults();
        let (mut connections, mut notifications, mut load, mut sizes) = (None, None, None, None);
        let mut raw = raw.into_iter();
        while let Some(flag) = raw.next() {
            let mut value = |name: &str| raw.next().ok_or_else(|| BenchError::Usage(format!("{name} needs a value")));
            match flag.as_str() {
                "--connections" => connections = Some(positive(&flag, &value("--connections")?)?),
                "--notifications" => notifications = Some(positive(&flag, &value("--notifications")?)?),
                "--load-connections" => {
                    let raw = value("--load-connections")?;
                    load = Some(raw.parse::<usize>().map_err(|_| {
                        BenchError::Usage(format!("--load-connections {raw:?}: a whole number (0: no load run)"))
                    })?);
                }
                "--sweep-sizes" => {
                    let raw = value("--sweep-sizes")?;
                    sizes = Some(if raw.is_empty() {
                        Vec::new()
                    } else {
                        raw.split(',').map(|n| positive(&flag, n.trim())).collect::<Result<_, _>>()?
                    });
                }
                "--store" => {
                    args.store = match value("--store")?.as_str() {
                        "dynoxide" => Store::Dynoxide,
                        "moto" => Store::Moto,
                        other => return Err(BenchError::Usage(format!("--store {other:?}: dynoxide or moto"))),
                    }
                }
                "--webhooks-per-day" => {
                    let raw = value("--webhooks-per-day")?;
                    args.webhooks_per_day = raw
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .ok_or_else(|| BenchError::Usage(format!("--webhooks-per-day {raw:?}: a number ≥ 0")))?;
                }
                "--quick" => args.quick = true,
                "--skip-cold-start" => args.skip_cold_start = true,
                "--only-cold-start" => args.only_cold_start = true,
                "--out" => args.out = PathBuf::from(value("--out")?),
                "-h" | "--help" => return Err(BenchError::Usage("StepSync benchmarks".into())),
                other => return Err(BenchError::Usage(format!("unknown option {other:?}"))),
            }
        }
        if args.skip_cold_start && args.only_cold_start {
            return Err(BenchError::Usage("--skip-cold-start and --only-cold-start exclude each other".into()));
        }
        let (quick_connections, quick_notifications, quick_load, quick_sizes) =
            if args.quick { (200, 20, 1_000, vec![]) } else { (2_000, 200, 10_000, DEFAULT_SWEEP_SIZES.to_vec()) };
        args.connections = connections.unwrap_or(quick_connections);
        args.notifications = notifications.unwrap_or(quick_notifications);
        args.load_connections = load.unwrap_or(quick_load);
        args.sweep_sizes = sizes.unwrap_or(quick_sizes);
        Ok(args)
    }
}

/// The sweeps beside the main one by default: the sizes issue 15 asks the time per
/// connection at (the main sweep is the 2,000).
const DEFAULT_SWEEP_SIZES: [usize; 2] = [10_000, 50_000];

fn positive(flag: &str, raw: &str) -> Result<usize, BenchError> {
    raw.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| BenchError::Usage(format!("{flag} {raw:?}: a whole number above 0")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, BenchError> {
        Args::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn defaults_quick_and_explicit_values() {
        let plain = parse(&[]).unwrap();
        assert_eq!((plain.connections, plain.notifications, plain.store), (2_000, 200, Store::Dynoxide));
        let quick = parse(&["--quick", "--store", "moto"]).unwrap();
        assert_eq!((quick.connections, quick.notifications, quick.store), (200, 20, Store::Moto));
        assert_eq!(parse(&["--quick", "--connections", "10000"]).unwrap().connections, 10_000);
        assert_eq!((plain.load_connections, quick.load_connections), (10_000, 1_000));
        assert_eq!(parse(&["--load-connections", "0"]).unwrap().load_connections, 0);
        assert_eq!(parse(&[]).unwrap().sweep_sizes, vec![10_000, 50_000]);
        assert_eq!(parse(&["--sweep-sizes", "3000, 4000"]).unwrap().sweep_sizes, vec![3_000, 4_000]);
        assert!(parse(&["--sweep-sizes", ""]).unwrap().sweep_sizes.is_empty());
        assert!(parse(&["--quick"]).unwrap().sweep_sizes.is_empty());
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert!(parse(&["--only-cold-start"]).unwrap().only_cold_start);
        for bad in [
            &["--connections", "0"][..],
            &["--connections"],
            &["--store", "sqlite"],
            &["--sweep-sizes", "10000,x"],
            &["--sweep-sizes", "0"],
            &["--fast"],
            &["--skip-cold-start", "--only-cold-start"],
        ] {
            assert!(matches!(parse(bad), Err(BenchError::Usage(_))), "{bad:?}");
        }
    }
}
