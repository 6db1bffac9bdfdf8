//! Limits on what a webhook request can make a verifier fetch (Google's keyset, SNS signing
//! certificates): each fetch is short, the same thing is fetched at most once a minute, and
//! a request never queues behind another request's fetch.

use jiff::{SignedDuration, Timestamp};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// One instance fetches the same thing again at most this often, by the injected clock: a
/// stream of made-up key ids or certificate URLs costs a fetch a minute, not one a request.
pub(super) const REFETCH_INTERVAL: SignedDuration = SignedDuration::from_mins(1);

/// How long a request waits for another request's fetch before it is refused: long enough
/// for a healthy fetch to land, far shorter than one that is timing out.
pub(super) const MAX_WAIT_FOR_FETCH: Duration = Duration::from_millis(250);

/// A key or certificate fetch gets at most this to connect, and this in all (less when the
/// provider's settings say less). `provider-webhook` has 10 s (template.yaml) and an SNS
/// confirmation may need a certificate fetch and the confirmation itself before it answers.
pub(super) const KEY_FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub(super) const KEY_FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The fetch lock once the fetch in progress (if any) is done, or `None` when that takes
/// longer than `MAX_WAIT_FOR_FETCH`: the caller is refused rather than queued.
pub(super) async fn turn_to_fetch(lock: &Mutex<()>) -> Option<MutexGuard<'_, ()>> {
    tokio::time::timeout(MAX_WAIT_FOR_FETCH, lock.lock()).await.ok()
}

/// Keys remembered until each one's own expiry, at most `capacity` of them: when full, the
/// expired go first, then the one closest to expiring, so a flood of new keys cannot grow it.
#[derive(Debug)]
pub(super) struct Expiring<K> {
    until: HashMap<K, Timestamp>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> Expiring<K> {
    pub fn new(capacity: usize) -> Self {
        Self { until: HashMap::new(), capacity: capacity.max(1) }
    }

    /// Whether `key` is remembered and not yet expired at `now`.
    pub fn contains<Q>(&self, key: &Q, now: Timestamp) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.until.get(key).is_some_and(|until| now < *until)
    }

    /// Remembers `key` until `until` (replacing an earlier expiry).
    pub fn remember(&mut self, key: K, until: Timestamp, now: Timestamp) {
        if self.until.len() >= self.capacity && !self.until.contains_key(&key) {
            self.until.retain(|_, expiry| now < *expiry);
            if self.until.len() >= self.capacity {
                let soonest = self.until.iter().min_by_key(|(_, expiry)| **expiry).map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    self.until.remove(&soonest);
                }
            }
        }
        self.until.insert(key, until);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_764_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_key_is_remembered_until_its_expiry_and_not_after() {
        let mut recent = Expiring::new(4);
        recent.remember("a", at(60), at(0));
        assert!(recent.contains(&"a", at(59)));
        assert!(!recent.contains(&"a", at(60)));
        assert!(!recent.contains(&"b", at(0)));
        recent.remember("a", at(120), at(60));
        assert!(recent.contains(&"a", at(100)), "remembering again extends it");
    }

    #[test]
    fn when_full_the_expired_go_first_then_the_one_closest_to_expiring() {
        let mut recent = Expiring::new(3);
        recent.remember(1, at(10), at(0));
        recent.remember(2, at(50), at(0));
        recent.remember(3, at(30), at(0));
        recent.remember(4, at(70), at(20));
        assert_eq!(recent.len(), 3);
        assert!(!recent.contains(&1, at(0)), "expired by then, so it went");
        assert!(recent.contains(&2, at(20)) && recent.contains(&3, at(20)) && recent.contains(&4, at(20)));

        recent.remember(5, at(90), at(20));
        assert_eq!(recent.len(), 3);
        assert!(!recent.contains(&3, at(20)), "nothing had expired: the one closest to expiring went");
        assert!(recent.contains(&2, at(20)) && recent.contains(&4, at(20)) && recent.contains(&5, at(20)));

        for key in 100..10_000 {
            recent.remember(key, at(1000), at(20));
        }
        assert_eq!(recent.len(), 3, "a flood never grows it");
    }

    #[tokio::test]
    async fn a_turn_is_refused_rather_than_queued_while_another_fetch_holds_the_lock() {
        let lock = Mutex::new(());
        let held = lock.lock().await;
        let started = std::time::Instant::now();
        let turn = tokio::time::timeout(Duration::from_secs(5), turn_to_fetch(&lock)).await;
        assert!(matches!(turn, Ok(None)), "refused, not queued");
        let waited = started.elapsed();
        assert!(waited >= MAX_WAIT_FOR_FETCH && waited < MAX_WAIT_FOR_FETCH * 4, "waited {waited:?}");
        drop(held);
        assert!(turn_to_fetch(&lock).await.is_some());
    }
}
