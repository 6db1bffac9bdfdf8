//! Each person's own subscription (Withings), kept by their syncs: found missing, it is made
//! again, or stored on the connection and diagnosed until a later sync makes it; found in
//! place, it is not asked about again for a week.

use super::*;
use crate::diagnosis::Action;
use crate::engine::{SUBSCRIPTION_CHECK_EVERY, SUBSCRIPTION_RETRY_AFTER, SyncOutcome};
use crate::ports::{PersonSubscriptions, ProviderError};
use async_trait::async_trait;
use secrecy::ExposeSecret;
use std::collections::BTreeSet;
use std::sync::Mutex;
/// A source's per-person subscriptions, by access token, behind a request budget.
#[derive(Default)]
struct People {
    missing: Mutex<BTreeSet<String>>,
    refuse_subscribe: Mutex<bool>,
    /// Requests left this window; `None` for no limit.
    budget: Mutex<Option<usize>>,
    /// Every request: (action, access token).
    calls: Mutex<Vec<(&'static str, String)>>,
}

impl People {
    fn take(&self, action: &'static str, tokens: &TokenSet) -> Result<String, ProviderError> {
        let mut budget = self.budget.lock().unwrap();
        if *budget == Some(0) {
            return Err(ProviderError::RateLimited { retry_after: None });
        }
        *budget = budget.map(|left| left - 1);
        let token = tokens.access_token.expose_secret().to_owned();
        self.calls.lock().unwrap().push((action, token.clone()));
        Ok(token)
    }

    fn listed(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().filter(|(a, _)| *a == "list").map(|(_, t)| t.clone()).collect()
    }
}

#[async_trait]
impl PersonSubscriptions for People {
    async fn subscribed(&self, tokens: &TokenSet) -> Result<bool, ProviderError> {
        let token = self.take("list", tokens)?;
        Ok(!self.missing.lock().unwrap().contains(&token))
    }

    async fn subscribe(&self, tokens: &TokenSet) -> Result<(), ProviderError> {
        let token = self.take("subscribe", tokens)?;
        if *self.refuse_subscribe.lock().unwrap() {
            return Err(ProviderError::Unavailable("notify subscribe answered status 2555".into()));
        }
        self.missing.lock().unwrap().remove(&token);
        Ok(())
    }
}

struct Check {
    store: Arc<InMemoryStore>,
    clock: Arc<FixedClock>,
    cipher: Arc<dyn TokenCipher>,
    syncing: Syncing,
    people: Arc<People>,
    source: Arc<ScriptedProvider>,
}

impl Check {
    fn new() -> Self {
        let store = Arc::new(InMemoryStore::default());
        let clock = Arc::new(FixedClock::at(NOW));
        let cipher: Arc<dyn TokenCipher> = Arc::new(AesGcmTokenCipher::new(&[7; 32]));
        let people = Arc::new(People::default());
        let source = Arc::new(ScriptedProvider::new(Provider::Withings, Ok(Vec::new())));
        let providers = Providers::default()
            .with_source(source.clone())
            .with_person_subscriptions(Provider::Withings, people.clone())
            .with_oauth(Provider::Withings, Arc::new(ScriptedOAuth::granting("user.activity", "w-1")));
        let ports = Ports::over(store.clone(), Arc::new(RecordingPublisher::default()), clock.clone());
        let Services { syncing, .. } = Services::new(ports, cipher.clone(), providers, crate::testing::settings());
        Self { store, clock, cipher, syncing, people, source }
    }

    /// A healthy Withings connection made (and subscribed) `ago` before now, its tokens
    /// `access-{name}`.
    async fn connected(&self, name: &str, ago: jiff::SignedDuration) -> UserId {
        let (who, now) = (user(name), self.clock.now());
        let tokens = issued_tokens(&format!("access-{name}"), "user.activity");
        let connection = Connection {
            tokens: Some(self.cipher.encrypt(&who, Provider::Withings, 1, &tokens).unwrap()),
            token_version: 1,
            last_success_at: Some(now),
            last_new_data_at: Some(now),
            ..Connection::new(who.clone(), Provider::Withings, now - ago)
        };
        self.store.create_connection(&connection).await.unwrap();
        who
    }

    async fn sync(&self, who: &UserId) -> SyncOutcome {
        let connection = self.connection(who).await;
        self.syncing.sync_connection(&connection, None, None).await.unwrap()
    }

    async fn connection(&self, who: &UserId) -> Connection {
        self.store.get_connection(who, Provider::Withings).await.unwrap().unwrap()
    }

    async fn diagnosis(&self, who: &UserId) -> crate::diagnosis::Diagnosis {
        let status =
            Status { connections: self.store.as_ref(), steps: self.store.as_ref(), clock: self.clock.as_ref() };
        status.connections(who).await.unwrap().remove(0).diagnosis
    }

    fn advance(&self, by: jiff::SignedDuration) {
        self.clock.advance(by.unsigned_abs());
    }
}

const DAY: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

#[tokio::test]
async fn a_missing_subscription_is_diagnosed_until_a_later_sync_makes_it_again() {
    let c = Check::new();
    let week = SUBSCRIPTION_CHECK_EVERY;
    let (alice, bob) = (c.connected("alice", week).await, c.connected("bob", week).await);
    c.people.missing.lock().unwrap().insert("access-bob".into());
    *c.people.refuse_subscribe.lock().unwrap() = true;

    assert!(matches!(c.sync(&alice).await, SyncOutcome::Synced(_)));
    assert!(matches!(c.sync(&bob).await, SyncOutcome::Synced(_)), "a failed subscribe never fails the sync");
    let lapsed = c.diagnosis(&bob).await;
    assert_eq!((lapsed.code, lapsed.action), ("subscription_lapsed", Action::Wait));
    assert!(lapsed.message.contains("Withings"), "{}", lapsed.message);
    assert_eq!(c.diagnosis(&alice).await.code, "healthy");
    let stored = c.connection(&bob).await;
    assert_eq!(
        (stored.subscription_lapsed_at, stored.subscription_checked_at),
        (Some(c.clock.now()), Some(c.clock.now()))
    );

    // Within the hour a sync leaves it be; after it, Withings takes the subscribe.
    *c.people.refuse_subscribe.lock().unwrap() = false;
    c.advance(SUBSCRIPTION_RETRY_AFTER - jiff::SignedDuration::from_secs(1));
    c.sync(&bob).await;
    assert_eq!(c.people.calls.lock().unwrap().len(), 3, "alice's list, bob's list and subscribe, nothing more");
    c.advance(jiff::SignedDuration::from_secs(1));
    c.sync(&bob).await;
    assert!(c.people.missing.lock().unwrap().is_empty());
    assert_ne!(c.diagnosis(&bob).await.code, "subscription_lapsed");
    let stored = c.connection(&bob).await;
    assert_eq!((stored.subscription_lapsed_at, stored.subscription_checked_at), (None, Some(c.clock.now())));
    let subscribes = c.people.calls.lock().unwrap().iter().filter(|(a, _)| *a == "subscribe").count();
    assert_eq!(subscribes, 2, "one refused, one made");
}

#[tokio::test]
async fn a_subscription_in_place_is_asked_about_once_a_week_and_never_without_a_read() {
    let c = Check::new();
    let fresh = c.connected("fresh", DAY).await;
    let old = c.connected("old", SUBSCRIPTION_CHECK_EVERY + DAY).await;
    for _ in 0..3 {
        c.sync(&fresh).await;
        c.sync(&old).await;
    }
    assert_eq!(c.people.listed(), ["access-old"], "connect subscribed the fresh one; the old one asked once");

    // A read that fails asks nothing: the sync's own failure is what the person is told.
    c.advance(SUBSCRIPTION_CHECK_EVERY);
    c.source.answer_next([Err(ProviderError::Unavailable("down".into()))]);
    assert!(matches!(c.sync(&fresh).await, SyncOutcome::Failed { .. }));
    assert_eq!(c.people.listed().len(), 1);
    c.sync(&fresh).await;
    c.sync(&old).await;
    assert_eq!(c.people.listed(), ["access-old", "access-fresh", "access-old"]);
}

#[tokio::test]
async fn a_budget_that_refuses_the_check_records_nothing_and_a_later_sync_asks() {
    let c = Check::new();
    let who = c.connected("walker", SUBSCRIPTION_CHECK_EVERY).await;
    *c.people.budget.lock().unwrap() = Some(0);
    assert!(matches!(c.sync(&who).await, SyncOutcome::Synced(_)));
    let stored = c.connection(&who).await;
    assert_eq!((stored.subscription_checked_at, stored.subscription_lapsed_at), (None, None));

    *c.people.budget.lock().unwrap() = None;
    c.sync(&who).await;
    assert_eq!(c.people.listed(), ["access-walker"]);
    assert_eq!(c.connection(&who).await.subscription_checked_at, Some(c.clock.now()));
}

#[tokio::test]
async fn many_people_are_checked_by_their_own_syncs_each_once() {
    let c = Check::new();
    let mut everyone = BTreeSet::new();
    let mut people = Vec::new();
    for i in 0..50 {
        people.push(c.connected(&format!("walker-{i:03}"), SUBSCRIPTION_CHECK_EVERY).await);
        everyone.insert(format!("access-walker-{i:03}"));
    }
    for _ in 0..2 {
        for who in &people {
            c.sync(who).await;
        }
    }
    let listed = c.people.listed();
    assert_eq!(listed.len(), everyone.len(), "nobody twice within the week");
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), everyone);
}
