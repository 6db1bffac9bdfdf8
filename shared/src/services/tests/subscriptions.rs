//! The daily check of each person's own subscription (Withings): found missing, it is made
//! again, or stored on the connection and diagnosed until a later run makes it; a run checks
//! a share of the people and the next goes on where it stopped.

use super::*;
use crate::diagnosis::Action;
use crate::ports::{PersonSubscriptions, ProviderError};
use crate::services::{PEOPLE_PER_RUN, Subscriptions, SubscriptionsReport};
use crate::testing::ScriptedOAuth;
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
    engine: Arc<SyncEngine>,
    people: Arc<People>,
    oauth: Arc<ScriptedOAuth>,
}

impl Check {
    fn new() -> Self {
        let store = Arc::new(InMemoryStore::default());
        let clock = Arc::new(FixedClock::at(NOW));
        let cipher: Arc<dyn TokenCipher> = Arc::new(AesGcmTokenCipher::new(&[7; 32]));
        let people = Arc::new(People::default());
        let oauth = Arc::new(ScriptedOAuth::granting("user.activity", "w-1"));
        let providers = Providers::default()
            .with_person_subscriptions(Provider::Withings, people.clone())
            .with_oauth(Provider::Withings, oauth.clone());
        let ports = Ports::over(store.clone(), Arc::new(RecordingPublisher::default()), clock.clone());
        let Services { engine, .. } = Services::new(ports, cipher.clone(), providers, crate::testing::settings());
        Self { store, clock, cipher, engine, people, oauth }
    }

    /// A healthy Withings connection in its sweep slot, its tokens `access-{name}`.
    async fn connected(&self, name: &str) -> UserId {
        self.connected_with(name, issued_tokens(&format!("access-{name}"), "user.activity")).await
    }

    async fn connected_with(&self, name: &str, tokens: TokenSet) -> UserId {
        let (who, now) = (user(name), self.clock.now());
        let connection = Connection {
            tokens: Some(self.cipher.encrypt(&who, Provider::Withings, 1, &tokens).unwrap()),
            token_version: 1,
            last_success_at: Some(now),
            last_new_data_at: Some(now),
            slot: self.engine.schedule.slot(&who, Provider::Withings),
            ..Connection::new(who.clone(), Provider::Withings, now)
        };
        self.store.create_connection(&connection).await.unwrap();
        who
    }

    async fn run(&self) -> SubscriptionsReport {
        let service = Subscriptions { connections: self.store.as_ref(), engine: &self.engine };
        service.keep(self.clock.now()).await.unwrap()
    }

    async fn diagnosis(&self, who: &UserId) -> crate::diagnosis::Diagnosis {
        let status =
            Status { connections: self.store.as_ref(), steps: self.store.as_ref(), clock: self.clock.as_ref() };
        status.connections(who).await.unwrap().remove(0).diagnosis
    }
}

#[tokio::test]
async fn a_missing_subscription_is_diagnosed_until_a_daily_run_makes_it_again() {
    let c = Check::new();
    let (alice, bob) = (c.connected("alice").await, c.connected("bob").await);
    c.people.missing.lock().unwrap().insert("access-bob".into());
    *c.people.refuse_subscribe.lock().unwrap() = true;

    let first = c.run().await.people.remove(0);
    assert_eq!((first.checked, first.renewed, first.lapsed, first.finished), (2, 0, 1, true));
    let lapsed = c.diagnosis(&bob).await;
    assert_eq!((lapsed.code, lapsed.action), ("subscription_lapsed", Action::Wait));
    assert!(lapsed.message.contains("Withings") && lapsed.message.contains("every day"), "{}", lapsed.message);
    assert_eq!(c.diagnosis(&alice).await.code, "healthy");
    let since = c.store.get_connection(&bob, Provider::Withings).await.unwrap().unwrap().subscription_lapsed_at;
    assert_eq!(since, Some(c.clock.now()));

    // The next day Withings takes the subscribe: bob's notices are on again.
    *c.people.refuse_subscribe.lock().unwrap() = false;
    c.clock.advance(Duration::from_secs(86_400));
    let second = c.run().await.people.remove(0);
    assert_eq!((second.checked, second.renewed, second.lapsed), (2, 1, 0));
    assert!(c.people.missing.lock().unwrap().is_empty());
    // A day on, neither walked: bob is diagnosed as alice is, no longer as lapsed.
    assert_eq!(c.diagnosis(&bob).await.code, c.diagnosis(&alice).await.code);
    assert_ne!(c.diagnosis(&bob).await.code, "subscription_lapsed");
    let subscribes = c.people.calls.lock().unwrap().iter().filter(|(a, _)| *a == "subscribe").count();
    assert_eq!(subscribes, 2, "one refused, one made");
}

#[tokio::test]
async fn a_run_checks_a_share_within_the_budget_and_the_next_goes_on_where_it_stopped() {
    let c = Check::new();
    let mut everyone = BTreeSet::new();
    for i in 0..(PEOPLE_PER_RUN + 20) {
        c.connected(&format!("walker-{i:03}")).await;
        everyone.insert(format!("access-walker-{i:03}"));
    }

    let first = c.run().await.people.remove(0);
    assert_eq!((first.checked, first.finished), (PEOPLE_PER_RUN, false), "a share, not everyone");
    // A budget spent after 7 requests: the run stops there, asking nothing more.
    *c.people.budget.lock().unwrap() = Some(7);
    let second = c.run().await.people.remove(0);
    assert_eq!((second.checked, second.finished), (7, false));
    *c.people.budget.lock().unwrap() = None;
    let third = c.run().await.people.remove(0);
    assert_eq!((third.checked, third.finished), (13, true));

    let listed = c.people.listed();
    assert_eq!(listed.len(), everyone.len(), "nobody twice before everyone once");
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), everyone);
    // The walk starts over after it reached the end.
    assert_eq!(c.run().await.people[0].checked, PEOPLE_PER_RUN);
}

#[tokio::test]
async fn a_refresh_the_budget_refuses_stops_the_run_and_leaves_the_connection_in_its_slot() {
    let c = Check::new();
    let expired = TokenSet {
        expires_at: c.clock.now() - jiff::SignedDuration::from_mins(1),
        ..issued_tokens("old", "user.activity")
    };
    let who = c.connected_with("expired", expired).await;
    c.oauth.answer_refresh(Err(ProviderError::RateLimited { retry_after: None }));

    let run = c.run().await.people.remove(0);
    assert_eq!((run.checked, run.finished), (0, false), "stopped before asking");
    assert!(c.people.calls.lock().unwrap().is_empty());
    let stored = c.store.get_connection(&who, Provider::Withings).await.unwrap().unwrap();
    assert!(stored.last_error.is_none() && stored.next_sync_at.is_none() && stored.slot.is_some(), "{stored:?}");

    // The next run's refresh goes through: the same person is asked about then.
    c.oauth.answer_refresh(Ok(issued_tokens("new", "user.activity")));
    let next = c.run().await.people.remove(0);
    assert_eq!((next.checked, next.finished), (1, true));
    assert_eq!(c.people.listed(), ["new"]);
}
