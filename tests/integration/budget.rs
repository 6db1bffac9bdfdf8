//! The app-wide request budget of a source that counts per app (Oura, Withings), held in a
//! sweep: 2,000 connections due at once, the source's limit and the app's budget set to the
//! same low number, and the source's own count must never pass it. What a provider's test
//! supplies: how to grant an account at its fake, and how the fake counts.

use functions::app::App;
use futures::StreamExt;
use stepsync::domain::{FailureCode, Provider, TokenSet, UserId};
use stepsync::events::Event;
use stepsync::ports::ConnectionStore;
use stepsync_local::harness::TestEnv;

pub const PEOPLE: usize = 2_000;

/// What the fake counted.
pub struct Counted {
    /// Fetches of daily steps.
    pub fetches: u64,
    /// The most requests it received in any one of its windows.
    pub max_in_a_window: u64,
}

/// Seeds `PEOPLE` connections of `provider` (`grant` makes each account's tokens at the fake),
/// sweeps them, and checks that at most `limit` syncs went out, that the fake never saw more in
/// one of its windows (`window`, aligned as the app's budget aligns them), and that the rest
/// wait, diagnosed, for the next window.
pub async fn a_sweep_stays_within_the_budget(
    env: &TestEnv,
    app: &App,
    provider: Provider,
    (limit, window): (u64, std::time::Duration),
    grant: impl Fn(&str) -> TokenSet + Sync,
    counted: impl Fn() -> Counted,
) {
    let now = env.now();
    let people: Vec<(UserId, String)> = (0..PEOPLE)
        .map(|i| (UserId::parse(&format!("sweeper-{i:04}")).unwrap(), format!("{provider}-sweeper-{i:04}")))
        .collect();
    futures::stream::iter(people.iter())
        .for_each_concurrent(16, |(user, account)| {
            let tokens = grant(account);
            async move {
                stepsync_local::demo::store_connection(app, user, provider, account, Some(&tokens), None, "UTC")
                    .await
                    .unwrap();
            }
        })
        .await;
    let before = counted();

    // The scheduler's tick hands each shard with due connections to the worker; the shards
    // sweep at once, as their workers do deployed.
    let published = env.publisher.events().len();
    assert!(!functions::scheduled_sync::tick(app).await.unwrap().is_empty());
    let shards: Vec<Event> =
        env.publisher.events()[published..].iter().filter(|e| matches!(e, Event::SyncShard(_))).cloned().collect();
    let results: Vec<functions::sync_worker::WorkerResult> = futures::stream::iter(shards)
        .map(|event| async move {
            functions::sync_worker::handle(app, serde_json::to_value(&event).unwrap()).await.unwrap()
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let (mut synced, mut failed) = (0, 0);
    for result in &results {
        match result {
            functions::sync_worker::WorkerResult::Shard { synced: s, failed: f, .. } => {
                synced += s;
                failed += f;
            }
            other => panic!("a shard's sweep: {other:?}"),
        }
    }
    let after = counted();
    assert!(synced >= 1 && synced as u64 <= limit, "at most one window's budget went out: {synced}");
    assert_eq!(synced + failed, PEOPLE, "every connection was taken: {results:?}");
    assert!(after.max_in_a_window <= limit, "the source counted {} in a window", after.max_in_a_window);
    assert_eq!((after.fetches - before.fetches) as usize, synced, "no request was refused at the source");
    // The ones that waited say why, and are due again when the next window's budget opens.
    let mut waiting = 0;
    for (user, _) in &people {
        let connection = env.store.get_connection(user, provider).await.unwrap().unwrap();
        if let Some(error) = &connection.last_error {
            assert_eq!(error.code, FailureCode::RateLimited);
            let next = connection.next_sync_at.expect("due again");
            let wait = next.duration_since(now).as_secs().unsigned_abs();
            assert!(next > now && wait <= window.as_secs(), "back within the window: {next}");
            waiting += 1;
        }
    }
    assert_eq!(waiting, failed);
}
