//! `make chaos`: the chaos run at full size (1,000 connections by default). Prints each fault
//! kind injected and the checks; exits non-zero if anything was lost or counted twice.
//! `STEPSYNC_CHAOS_CONNECTIONS`, `STEPSYNC_CHAOS_ROUNDS`, `STEPSYNC_CHAOS_SEED` and
//! `STEPSYNC_CHAOS_RATE` change its size, its dice and how hard it hits.

use stepsync_local::chaos::{ChaosOptions, run};

fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(raw) => raw.parse().map_err(|_| format!("{name}={raw:?} is not a valid value")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let defaults = ChaosOptions::default();
    let options = ChaosOptions {
        connections: setting("STEPSYNC_CHAOS_CONNECTIONS", defaults.connections)?,
        rounds: setting("STEPSYNC_CHAOS_ROUNDS", defaults.rounds)?,
        seed: setting("STEPSYNC_CHAOS_SEED", defaults.seed)?,
        fault_rate: setting("STEPSYNC_CHAOS_RATE", defaults.fault_rate)?,
    };
    eprintln!("chaos: {options:?}");
    let started = std::time::Instant::now();
    let report = run(&options, |step| eprintln!("chaos: {step}")).await;
    print!("{}", report.summary());
    eprintln!("chaos: {:.1} s", started.elapsed().as_secs_f64());
    if report.problems() > 0 {
        for line in report.wrong_days.iter().chain(&report.wrong_totals).chain(&report.unsynced).take(20) {
            eprintln!("  {line}");
        }
        return Err(format!("{} problems found", report.problems()));
    }
    Ok(())
}
