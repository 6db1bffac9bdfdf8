//! The chaos run at a small size (`make chaos` runs 1,000 connections): every kind of fault
//! is injected at least once, and nothing is lost or counted twice.

use stepsync_local::chaos::{ChaosOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaos_run_injects_every_fault_and_loses_nothing() {
    let options = ChaosOptions { connections: 150, rounds: 8, seed: 7, fault_rate: 0.1 };
    let report = run(&options, |_| {}).await;
    println!("{}", report.summary());
    let kinds = [
        "bus: publish refused",
        "events: duplicated",
        "events: held back, delivered later",
        "events: reordered",
        "provider: 429",
        "provider: 5xx",
        "provider: timeout",
        "store: throttled (ThrottlingException)",
        "store: timed out after the write committed",
        "stream: bus down for StepsUpdated",
        "webhooks: replayed",
        "worker: stopped mid-shard",
    ];
    for kind in kinds {
        assert!(report.injected.get(kind).is_some_and(|n| *n > 0), "{kind} was never injected:\n{}", report.summary());
    }
    assert_eq!(report.problems(), 0, "{}", report.summary());
    assert!(report.day_changes > 0 && report.events >= report.day_changes);
}
