//! The DynamoDB adapter's store guarantees, on both local implementations: atomic conditional
//! writes (checked first, since every other concurrency test stands on them), encrypted
//! tokens, provider-account ownership, the refresh lease, and the batched reads of many
//! people's items.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use futures::future::join_all;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use stepsync::crypto::AesGcmTokenCipher;
use stepsync::domain::{Connection, Provider, TokenSet, UserId};
use stepsync::ports::{ConnectionStore, StoreError, SyncRecord, TokenCipher};
use stepsync_local::harness::{TestEnv, date, unique};
use stepsync_local::on_both_backends;

on_both_backends!(
    conditional_writes_and_transactions_are_atomic,
    stored_tokens_are_ciphertext_bound_to_their_owner,
    a_provider_account_feeds_one_person_only,
    exactly_one_of_ten_concurrent_lease_attempts_wins,
    a_stale_token_write_never_overwrites_a_newer_one,
    a_sync_outcome_lands_only_on_the_connection_it_synced,
    a_day_write_through_a_disconnected_connection_is_refused,
    erasing_a_person_deletes_every_item_of_theirs_and_nothing_else,
    a_slot_is_paged_in_key_order_and_a_backoff_moves_a_connection_to_a_due_time,
    a_sweep_cursor_round_trips,
    the_fetch_fence_covers_later_notices_only,
    storing_refreshed_tokens_frees_the_refresh_lease,
    a_missing_subscription_is_stored_on_the_connection_and_nothing_else_moves,
    many_peoples_items_are_read_by_key_a_hundred_keys_to_a_request,
);

fn user(name: &str) -> UserId {
    UserId::parse(&unique(name)).unwrap()
}

/// Given many writers racing on one key, when each puts conditionally (alone, or inside a
/// transaction), then exactly one wins each round. An emulator that checks and writes in two
/// steps lets several win, and every later concurrency result on it would mean nothing.
async fn conditional_writes_and_transactions_are_atomic(env: TestEnv) {
    let client = env.store.client().clone();
    for round in 0..5 {
        let pk = format!("RACE#{round}");
        let puts = (0..16).map(|writer| {
            let client = client.clone();
            let (table, pk) = (env.table.clone(), pk.clone());
            async move {
                client
                    .put_item()
                    .table_name(table)
                    .item("pk", AttributeValue::S(pk))
                    .item("sk", AttributeValue::S("X".into()))
                    .item("writer", AttributeValue::N(writer.to_string()))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await
                    .is_ok()
            }
        });
        let wins = join_all(puts).await.into_iter().filter(|won| *won).count();
        assert_eq!(wins, 1, "{:?}: conditional PutItem round {round}", env.backend);

        let transactions = (0..16).map(|writer| {
            let client = client.clone();
            let (table, pk) = (env.table.clone(), pk.clone());
            async move {
                let put = |sk: &str| {
                    Put::builder()
                        .table_name(&table)
                        .item("pk", AttributeValue::S(pk.clone()))
                        .item("sk", AttributeValue::S(sk.into()))
                        .item("writer", AttributeValue::N(writer.to_string()))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap()
                };
                client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put("T1")).build())
                    .transact_items(TransactWriteItem::builder().put(put("T2")).build())
                    .send()
                    .await
                    .is_ok()
            }
        });
        let wins = join_all(transactions).await.into_iter().filter(|won| *won).count();
        assert_eq!(wins, 1, "{:?}: TransactWriteItems round {round}", env.backend);
    }
}

fn tokens(access: &str) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: Some(SecretString::from("1//refresh-token-PLAINTEXT")),
        expires_at: "2026-11-25T19:00:00Z".parse().unwrap(),
        scope: None,
    }
}

async fn stored_tokens_are_ciphertext_bound_to_their_owner(env: TestEnv) {
    let cipher = AesGcmTokenCipher::new(&[9u8; 32]);
    let alice = user("alice");
    let mallory = user("mallory");
    env.store.create_connection(&Connection::new(alice.clone(), Provider::GoogleHealth, env.now())).await.unwrap();
    let sealed = cipher.encrypt(&alice, Provider::GoogleHealth, 1, &tokens("ya29.access-PLAINTEXT")).unwrap();
    let version = env.store.store_tokens(&alice, Provider::GoogleHealth, &sealed, 0).await.unwrap();
    assert_eq!(version, 1);

    let raw = env
        .store
        .client()
        .get_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S(format!("USER#{alice}")))
        .key("sk", AttributeValue::S("CONN#google_health".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let everything = format!("{raw:?}");
    assert!(!everything.contains("PLAINTEXT"), "plaintext token in the stored item");

    let stored = env.store.get_connection(&alice, Provider::GoogleHealth).await.unwrap().unwrap();
    let sealed = stored.tokens.unwrap();
    let opened = cipher.decrypt(&alice, Provider::GoogleHealth, stored.token_version, &sealed).unwrap();
    assert_eq!(opened.access_token.expose_secret(), "ya29.access-PLAINTEXT");
    assert!(cipher.decrypt(&mallory, Provider::GoogleHealth, 1, &sealed).is_err(), "decrypts as another user");
}

async fn a_provider_account_feeds_one_person_only(env: TestEnv) {
    let (alice, bob) = (user("alice"), user("bob"));
    let account = unique("health-user");
    env.store.claim_provider_account(Provider::GoogleHealth, &account, &alice).await.unwrap();
    env.store.claim_provider_account(Provider::GoogleHealth, &account, &alice).await.expect("re-claim by the owner");
    let err = env.store.claim_provider_account(Provider::GoogleHealth, &account, &bob).await.unwrap_err();
    assert!(matches!(err, StoreError::AccountOwnedByAnother), "got {err:?}");
    assert_eq!(env.store.provider_account_owner(Provider::GoogleHealth, &account).await.unwrap(), Some(alice.clone()));

    // Bob releasing what he does not own changes nothing; Alice releasing frees it for Bob,
    // who counts only the days after hers.
    let (nov20, nov21) = (date("2026-11-20"), date("2026-11-21"));
    env.store.release_provider_account(Provider::GoogleHealth, &account, &bob, nov20).await.unwrap();
    assert_eq!(env.store.provider_account_owner(Provider::GoogleHealth, &account).await.unwrap(), Some(alice.clone()));
    env.store.release_provider_account(Provider::GoogleHealth, &account, &alice, nov20).await.unwrap();
    assert_eq!(env.store.provider_account_owner(Provider::GoogleHealth, &account).await.unwrap(), None);
    let claim = env.store.claim_provider_account(Provider::GoogleHealth, &account, &bob).await.unwrap();
    assert_eq!(claim.counts_from, Some(nov21));
    let again = env.store.claim_provider_account(Provider::GoogleHealth, &account, &bob).await.unwrap();
    assert_eq!(again.counts_from, Some(nov21), "Bob's floor stays on a repeated claim");
    let err = env.store.claim_provider_account(Provider::GoogleHealth, &account, &alice).await.unwrap_err();
    assert!(matches!(err, StoreError::AccountOwnedByAnother), "got {err:?}");

    // Two people claiming one released account at once: exactly one holds it.
    let contested = unique("contested");
    let claims = (0..8).map(|i| {
        let (store, contested) = (env.store.clone(), contested.clone());
        async move {
            let who = UserId::parse(&format!("claimant-{i}")).unwrap();
            store.claim_provider_account(Provider::GoogleHealth, &contested, &who).await.is_ok()
        }
    });
    assert_eq!(join_all(claims).await.into_iter().filter(|won| *won).count(), 1, "{:?}", env.backend);
}

async fn exactly_one_of_ten_concurrent_lease_attempts_wins(env: TestEnv) {
    let alice = user("alice");
    env.store.create_connection(&Connection::new(alice.clone(), Provider::GoogleHealth, env.now())).await.unwrap();
    let now = env.now();
    let ttl = Duration::from_secs(30);
    let attempts =
        (0..10).map(|i| {
            let store = env.store.clone();
            let alice = alice.clone();
            async move {
                store.acquire_lease(&alice, Provider::GoogleHealth, &format!("lambda-{i}"), now, ttl).await.unwrap()
            }
        });
    let holders = join_all(attempts).await.into_iter().filter(|won| *won).count();
    assert_eq!(holders, 1);

    let later = now.checked_add(Duration::from_secs(29)).unwrap();
    assert!(!env.store.acquire_lease(&alice, Provider::GoogleHealth, "late", later, ttl).await.unwrap());
    let expired = now.checked_add(Duration::from_secs(31)).unwrap();
    assert!(
        env.store.acquire_lease(&alice, Provider::GoogleHealth, "late", expired, ttl).await.unwrap(),
        "expired lease taken over"
    );
    env.store.release_lease(&alice, Provider::GoogleHealth, "late").await.unwrap();
    assert!(
        env.store.acquire_lease(&alice, Provider::GoogleHealth, "next", expired, ttl).await.unwrap(),
        "released lease is free"
    );
}

async fn a_stale_token_write_never_overwrites_a_newer_one(env: TestEnv) {
    let alice = user("alice");
    let cipher = AesGcmTokenCipher::new(&[9u8; 32]);
    env.store.create_connection(&Connection::new(alice.clone(), Provider::GoogleHealth, env.now())).await.unwrap();
    let first = cipher.encrypt(&alice, Provider::GoogleHealth, 1, &tokens("first")).unwrap();
    let second = cipher.encrypt(&alice, Provider::GoogleHealth, 1, &tokens("second")).unwrap();
    assert_eq!(env.store.store_tokens(&alice, Provider::GoogleHealth, &first, 0).await.unwrap(), 1);
    let stale = env.store.store_tokens(&alice, Provider::GoogleHealth, &second, 0).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict), "got {stale:?}");
    let kept = env.store.get_connection(&alice, Provider::GoogleHealth).await.unwrap().unwrap();
    assert_eq!(kept.tokens, Some(first));
    assert_eq!(kept.token_version, 1);
}

/// An outcome recorded for token version 1 after a reconnect made version 2 is refused
/// (`Conflict`), and changes nothing; the current version's is stored.
async fn a_sync_outcome_lands_only_on_the_connection_it_synced(env: TestEnv) {
    let alice = user("alice");
    let provider = Provider::GoogleHealth;
    let v1 = Connection { token_version: 1, ..Connection::new(alice.clone(), provider, env.now()) };
    env.store.create_connection(&v1).await.unwrap();
    let v2 = Connection { token_version: 2, ..v1.clone() };
    env.store.save_connection(&v2, Some(1)).await.unwrap();
    let outcome = |version: u64| SyncRecord {
        attempted_at: Some(env.now()),
        status: Some(stepsync::domain::ConnectionStatus::ReconnectRequired),
        token_version: Some(version),
        ..SyncRecord::default()
    };
    let stale = env.store.record_sync(&alice, provider, &outcome(1)).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict), "{:?}: {stale:?}", env.backend);
    let kept = env.store.get_connection(&alice, provider).await.unwrap().unwrap();
    assert_eq!((kept.status, kept.last_attempt_at), (stepsync::domain::ConnectionStatus::Active, None));
    env.store.record_sync(&alice, provider, &outcome(2)).await.unwrap();
    let stored = env.store.get_connection(&alice, provider).await.unwrap().unwrap();
    assert_eq!(stored.status, stepsync::domain::ConnectionStatus::ReconnectRequired);
}

/// Values that came through a connection are written only while it is not disconnected: before
/// its first write the engine reads the connection's status (consistently; an unchanged sync
/// reads nothing more than its days), and refuses (`Disconnected`, nothing written) once it is
/// disconnected; values with no such connection at all are written.
async fn a_day_write_through_a_disconnected_connection_is_refused(env: TestEnv) {
    use stepsync::domain::DailyValue;
    use stepsync::ports::StepStore;
    let alice = user("alice");
    let provider = Provider::GoogleHealth;
    let tz = jiff::tz::TimeZone::UTC;
    let pull = |raw: &str, steps: i64| {
        let values = vec![DailyValue { date: date(raw), steps, observed_at: None }];
        (values, Some((date(raw), date(raw), env.now())))
    };
    let (values, window) = pull("2026-11-20", 100);
    env.engine.apply_window(&alice, provider, &tz, &values, window).await.unwrap();
    env.store.create_connection(&Connection::new(alice.clone(), provider, env.now())).await.unwrap();
    let (values, window) = pull("2026-11-21", 100);
    env.engine.apply_window(&alice, provider, &tz, &values, window).await.unwrap();
    env.store.disconnect(&alice, provider).await.unwrap();
    env.counter.reset();
    let (values, window) = pull("2026-11-21", 100);
    env.engine.apply_window(&alice, provider, &tz, &values, window).await.unwrap();
    assert_eq!(env.counter.total(), 1, "{:?}: nothing to write, nothing more read", env.backend);
    let (values, window) = pull("2026-11-22", 100);
    let refused = env.engine.apply_window(&alice, provider, &tz, &values, window).await.unwrap_err();
    assert!(
        matches!(refused, stepsync::engine::SyncError::Store(StoreError::Disconnected)),
        "{:?}: {refused:?}",
        env.backend
    );
    let days = env.store.load_user_days(&alice, &[date("2026-11-20"), date("2026-11-21"), date("2026-11-22")]).await;
    assert_eq!(days.unwrap().days.len(), 2, "nothing written after the disconnect");
    env.engine.apply(&alice, provider, &tz, &pull("2026-11-22", 100).0).await.unwrap();
}

/// Erasing through DynamoDB: more items than one `BatchWriteItem` takes (40 days, the profile,
/// the membership, a connection), the participant row; a neighbour's items stay.
async fn erasing_a_person_deletes_every_item_of_theirs_and_nothing_else(env: TestEnv) {
    use stepsync::domain::DailyValue;
    use stepsync::ports::{ChallengeStore, StepStore};
    let (alice, bob) = (user("alice"), user("bob"));
    let month = env.challenge("2026-10-01", "2026-11-30").await;
    for who in [&alice, &bob] {
        env.challenges().join(&month, who, env.now()).await.unwrap();
        let days: Vec<DailyValue> = (0..40)
            .map(|i| DailyValue { date: date("2026-10-10").add_days(i), steps: 1000 + i64::from(i), observed_at: None })
            .collect();
        env.engine.apply(who, Provider::AppleHealth, &jiff::tz::TimeZone::UTC, &days).await.unwrap();
    }
    env.store.create_connection(&Connection::new(alice.clone(), Provider::GoogleHealth, env.now())).await.unwrap();

    env.store.erase_participant(&month, &alice).await.unwrap();
    let erased = env.store.erase_user(&alice).await.unwrap();

    assert_eq!(erased, 42, "40 days, the profile (with its memberships), the connection");
    let items = env.store.client().scan().table_name(&env.table).send().await.unwrap().items.unwrap_or_default();
    let mentions = |who: &UserId| {
        items
            .iter()
            .filter(|item| item.values().any(|v| v.as_s().is_ok_and(|s| s.ends_with(&format!("#{who}")))))
            .count()
    };
    assert_eq!(mentions(&alice), 0, "nothing of alice's is left");
    assert!(mentions(&bob) >= 42, "bob's days, profile and row stay");
    assert_eq!(env.store.participant(&month, &bob).await.unwrap().unwrap().totals().days, 40);
    assert_eq!(env.store.erase_user(&alice).await.unwrap(), 0, "a second erasure finds nothing");
}

/// Connections put in a slot are read back a page at a time in key order, each page after the
/// last connection of the one before; a failure's due time takes one out of its slot into the
/// due-time partition, read the same way; a success puts it back.
async fn a_slot_is_paged_in_key_order_and_a_backoff_moves_a_connection_to_a_due_time(env: TestEnv) {
    use stepsync::domain::DueSlot;
    let provider = Provider::GoogleHealth;
    let slot = DueSlot { shard: 1, cycle: 24, phase: 7 };
    let mut people: Vec<UserId> = (0..5).map(|i| user(&format!("slot{i}"))).collect();
    for who in &people {
        env.store.create_connection(&Connection::new(who.clone(), provider, env.now())).await.unwrap();
        let settled = SyncRecord { succeeded_at: Some(env.now()), slot: Some(slot), ..SyncRecord::default() };
        env.store.record_sync(who, provider, &settled).await.unwrap();
    }
    people.sort_by_key(|u| u.to_string());
    let mut seen = Vec::new();
    let mut after: Option<(UserId, Provider)> = None;
    loop {
        let page = env.store.slot_connections(slot, after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|c| (c.user.clone(), c.provider));
        seen.extend(page.into_iter().map(|c| c.user));
    }
    assert_eq!(seen, people, "{:?}: every connection of the slot once, in key order", env.backend);

    let retry_at = env.now() + jiff::SignedDuration::from_mins(5);
    let failed = SyncRecord { next_sync_at: Some(retry_at), ..SyncRecord::default() };
    env.store.record_sync(&people[2], provider, &failed).await.unwrap();
    assert_eq!(env.store.slot_connections(slot, None, 10).await.unwrap().len(), 4, "out of its slot");
    let shard = stepsync::domain::shard_of(&people[2], provider);
    assert!(env.store.due_connections(shard, env.now(), None, 10).await.unwrap().is_empty(), "not before its time");
    let due = env.store.due_connections(shard, retry_at, None, 10).await.unwrap();
    assert_eq!(due.iter().map(|c| &c.user).collect::<Vec<_>>(), [&people[2]]);
    assert!(env.store.due_connections(shard, retry_at, due.last(), 10).await.unwrap().is_empty(), "paged past it");

    let back = SyncRecord { last_error: Some(None), slot: Some(slot), ..SyncRecord::default() };
    env.store.record_sync(&people[2], provider, &back).await.unwrap();
    assert_eq!(env.store.slot_connections(slot, None, 10).await.unwrap().len(), 5, "back in its slot");
    let stored = env.store.get_connection(&people[2], provider).await.unwrap().unwrap();
    assert_eq!((stored.next_sync_at, stored.slot), (None, Some(slot)));
    assert!(env.store.due_connections(shard, retry_at, None, 10).await.unwrap().is_empty());
}

async fn a_sweep_cursor_round_trips(env: TestEnv) {
    use stepsync::ports::{PartialPhase, SweepCursor};
    assert_eq!(env.store.sweep_cursor(3, 24).await.unwrap(), None);
    let cursor = SweepCursor {
        through: Some(1_970_000),
        partial: Some(PartialPhase {
            index: 1_970_001,
            after: (user("alice"), Provider::GoogleHealth),
            started_at: env.now(),
        }),
        swept: [(4, env.now()), (23, env.now())].into(),
    };
    env.store.save_sweep_cursor(3, 24, &cursor).await.unwrap();
    assert_eq!(env.store.sweep_cursor(3, 24).await.unwrap(), Some(cursor));
    assert_eq!(env.store.sweep_cursor(3, 2).await.unwrap(), None, "one cursor per shard and cycle");
}

/// The fence a webhook's sync writes before it fetches: a notice that arrived before the last
/// recorded fetch began, about dates it covered, is covered; a later notice, other dates, or
/// the same notice again (a retry) go ahead.
async fn the_fetch_fence_covers_later_notices_only(env: TestEnv) {
    use stepsync::ports::{Fenced, FetchFence};
    let alice = user("alice");
    let provider = Provider::GoogleHealth;
    let at = |secs: i64| env.now() + jiff::SignedDuration::from_secs(secs);
    let fence = |noticed: i64, start: &str, end: &str, now: i64| FetchFence {
        noticed_at: at(noticed),
        notice_id: format!("notice-{noticed}"),
        start: date(start),
        end: date(end),
        now: at(now),
    };
    let nobody = env.store.fence_fetch(&alice, provider, &fence(0, "2026-11-25", "2026-11-25", 1)).await.unwrap();
    assert_eq!(nobody, Fenced::NoConnection);
    env.store.create_connection(&Connection::new(alice.clone(), provider, env.now())).await.unwrap();

    let first = env.store.fence_fetch(&alice, provider, &fence(0, "2026-11-24", "2026-11-25", 10)).await.unwrap();
    assert!(matches!(first, Fenced::Fetch(ref c) if c.user == alice), "{:?}: {first:?}", env.backend);
    let before = env.store.fence_fetch(&alice, provider, &fence(5, "2026-11-25", "2026-11-25", 11)).await.unwrap();
    assert_eq!(before, Fenced::Covered, "arrived before the fetch began, about a day it covers");
    let retry = env.store.fence_fetch(&alice, provider, &fence(0, "2026-11-24", "2026-11-25", 12)).await.unwrap();
    assert!(matches!(retry, Fenced::Fetch(_)), "the same notice again: a retry fetches");
    let other = env.store.fence_fetch(&alice, provider, &fence(5, "2026-11-20", "2026-11-25", 13)).await.unwrap();
    assert!(matches!(other, Fenced::Fetch(_)), "a day the last fetch did not cover");
    let later = env.store.fence_fetch(&alice, provider, &fence(14, "2026-11-25", "2026-11-25", 15)).await.unwrap();
    assert!(matches!(later, Fenced::Fetch(_)), "arrived after the last fetch began");
}

/// New tokens stored free the refresh lease in the same write: a peer can take it at once.
async fn storing_refreshed_tokens_frees_the_refresh_lease(env: TestEnv) {
    let alice = user("alice");
    let provider = Provider::GoogleHealth;
    let cipher = AesGcmTokenCipher::new(&[9u8; 32]);
    env.store.create_connection(&Connection::new(alice.clone(), provider, env.now())).await.unwrap();
    let ttl = Duration::from_secs(30);
    assert!(env.store.acquire_lease(&alice, provider, "refresher", env.now(), ttl).await.unwrap());
    assert!(!env.store.acquire_lease(&alice, provider, "peer", env.now(), ttl).await.unwrap(), "held");
    let sealed = cipher.encrypt(&alice, provider, 1, &tokens("fresh")).unwrap();
    env.store.store_tokens(&alice, provider, &sealed, 0).await.unwrap();
    assert!(env.store.acquire_lease(&alice, provider, "peer", env.now(), ttl).await.unwrap(), "freed by the store");
}

/// A subscription check's finding lands on the connection alone: the tokens' version, the slot
/// (and so the sweep's index) stay, the slot's page carries it, and a later check clears it.
async fn a_missing_subscription_is_stored_on_the_connection_and_nothing_else_moves(env: TestEnv) {
    use stepsync::domain::DueSlot;
    use stepsync::ports::SubscriptionCheck;
    let (provider, who) = (Provider::Withings, user("unsubscribed"));
    let slot = DueSlot { shard: 2, cycle: 24, phase: 3 };
    let connection = Connection { token_version: 4, ..Connection::new(who.clone(), provider, env.now()) };
    env.store.create_connection(&connection).await.unwrap();
    let settled = SyncRecord { succeeded_at: Some(env.now()), slot: Some(slot), ..SyncRecord::default() };
    env.store.record_sync(&who, provider, &settled).await.unwrap();

    let since = env.now();
    let lapsed = SubscriptionCheck { checked_at: since, lapsed_since: Some(since) };
    env.store.record_subscription_check(&who, provider, &lapsed).await.unwrap();
    let stored = env.store.get_connection(&who, provider).await.unwrap().unwrap();
    assert_eq!(
        (stored.subscription_lapsed_at, stored.subscription_checked_at, stored.token_version, stored.slot),
        (Some(since), Some(since), 4, Some(slot))
    );
    let paged = env.store.slot_connections(slot, None, 10).await.unwrap();
    assert_eq!(paged.iter().map(|c| c.subscription_lapsed_at).collect::<Vec<_>>(), [Some(since)], "{:?}", env.backend);

    let later = since + jiff::SignedDuration::from_hours(1);
    let live = SubscriptionCheck { checked_at: later, lapsed_since: None };
    env.store.record_subscription_check(&who, provider, &live).await.unwrap();
    let stored = env.store.get_connection(&who, provider).await.unwrap().unwrap();
    assert_eq!((stored.subscription_lapsed_at, stored.subscription_checked_at), (None, Some(later)));
    let nobody = env.store.record_subscription_check(&user("nobody"), provider, &lapsed).await;
    assert!(matches!(nobody, Err(StoreError::NotFound(_))), "{nobody:?}");
}

/// The organizer's reads: each person's connections (any status) and their profile and days
/// among the dates asked, for many people, by key, 100 keys to a `BatchGetItem`; someone with
/// nothing stored is answered empty, and nobody else's items come back.
async fn many_peoples_items_are_read_by_key_a_hundred_keys_to_a_request(env: TestEnv) {
    use stepsync::domain::{ConnectionStatus, DailyValue};
    use stepsync::ports::StepStore;
    let people: Vec<UserId> = (0..12).map(|i| user(&format!("reader{i}"))).collect();
    let (stranger, nobody) = (user("stranger"), user("nobody"));
    for (i, who) in people.iter().chain([&stranger]).enumerate() {
        let providers = [Provider::GoogleHealth, Provider::AppleHealth, Provider::Garmin];
        for provider in providers.into_iter().take(i % 3 + 1) {
            let mut connection = Connection::new(who.clone(), provider, env.now());
            if provider == Provider::Garmin {
                connection.status = ConnectionStatus::Disconnected;
            }
            env.store.create_connection(&connection).await.unwrap();
        }
        let days = [("2026-11-23", 100), ("2026-11-24", 200 + i as i64), ("2026-11-25", 300)]
            .map(|(day, steps)| DailyValue { date: date(day), steps, observed_at: None });
        env.engine.apply(who, Provider::AppleHealth, &jiff::tz::TimeZone::UTC, &days).await.unwrap();
    }
    env.store.set_time_zone(&people[0], "Asia/Tokyo", 0).await.unwrap();
    let asked: Vec<UserId> = people.iter().cloned().chain([nobody.clone()]).collect();
    env.counter.reset();

    let connections = env.store.connections_of(&asked).await.unwrap();
    // 13 people, 9 keys each: 117 keys, two requests.
    assert_eq!(env.counter.count("BatchGetItem"), 2, "{:?}", env.backend);
    let mut expected: Vec<(UserId, Provider, ConnectionStatus)> = Vec::new();
    for (i, who) in people.iter().enumerate() {
        let providers = [Provider::GoogleHealth, Provider::AppleHealth, Provider::Garmin];
        for provider in providers.into_iter().take(i % 3 + 1) {
            let status =
                if provider == Provider::Garmin { ConnectionStatus::Disconnected } else { ConnectionStatus::Active };
            expected.push((who.clone(), provider, status));
        }
    }
    expected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let got: Vec<_> = connections.iter().map(|c| (c.user.clone(), c.provider, c.status)).collect();
    assert_eq!(got, expected, "{:?}: every one of theirs, no one else's", env.backend);

    env.counter.reset();
    let dates = [date("2026-11-24"), date("2026-11-25"), date("2026-11-26")];
    let read = env.store.load_people_days(&asked, &dates).await.unwrap();
    // 13 people, the profile and 3 dates each: 52 keys, one request.
    assert_eq!(env.counter.count("BatchGetItem"), 1, "{:?}", env.backend);
    let answered: std::collections::BTreeSet<&UserId> = read.keys().collect();
    assert_eq!(answered, asked.iter().collect(), "everyone asked for, the stranger not");
    for (i, who) in people.iter().enumerate() {
        let days = &read[who].days;
        let totals: Vec<_> = days.iter().map(|(d, r)| (d.to_string(), r.total.get())).collect();
        assert_eq!(totals, [("2026-11-24".to_owned(), 200 + i as u32), ("2026-11-25".to_owned(), 300)], "{who}");
        assert_eq!(read[who].days[&date("2026-11-24")].user, *who);
    }
    assert_eq!(read[&people[0]].profile.time_zone.as_deref(), Some("Asia/Tokyo"), "the profile");
    assert!(read[&nobody].days.is_empty() && read[&nobody].profile == Default::default(), "nothing stored");
}
