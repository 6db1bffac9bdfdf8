//! Keeping the sources' notification subscriptions alive (the daily run). App-level ones (Oura,
//! Polar): each source renews what is about to expire and creates what is missing; what it
//! left is stored for the status answer, which diagnoses a lapsed subscription on every
//! connection of that source. Per-person ones (Withings): a share of the source's people is
//! checked each run, in their sweep slots' order from where the last run stopped, and a
//! missing subscription made again; one that stays missing is stored on the connection, whose
//! status then says so.

use super::ServiceError;
use crate::domain::{Connection, ConnectionStatus, DueSlot, Provider, UserId};
use crate::engine::{SyncEngine, SyncError};
use crate::ports::{ConnectionStore, PersonSubscriptions, ProviderError, StoredSubscriptions, SubscriptionState};
use jiff::Timestamp;
use serde::Serialize;

/// People one run takes, per source (asked about or skipped). Each check is a token refresh (the
/// daily run finds most tokens expired), a list and, when missing, a subscribe: at most 90
/// requests, inside one minute of Withings' 120 and leaving the sweeps the rest. The app's
/// budget still counts every one: the run stops at its first refusal.
pub const PEOPLE_PER_RUN: usize = 30;
/// Connections read from a slot at once.
const PAGE: usize = 100;
/// The topic the per-person walk is stored under: its `id` is where the next run goes on.
const PEOPLE_TOPIC: &str = "people";

/// What one run left, per source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionsReport {
    /// Sources whose subscriptions are all live after the run.
    pub live: Vec<Provider>,
    /// Sources with a subscription that is not (or that could not be asked).
    pub lapsed: Vec<Provider>,
    /// The per-person check of each source that subscribes people.
    pub people: Vec<PeopleChecked>,
}

/// One run's per-person check of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeopleChecked {
    pub provider: Provider,
    /// People asked about (their subscription listed).
    pub checked: usize,
    /// Found missing and made again.
    pub renewed: usize,
    /// Found missing and could not be made again: diagnosed until a later run makes it.
    pub lapsed: usize,
    /// The walk reached the last slot: the next run starts over.
    pub finished: bool,
}

pub struct Subscriptions<'a> {
    pub connections: &'a dyn ConnectionStore,
    pub engine: &'a SyncEngine,
}

/// Where a source's walk over its people stands: the slot, and the last connection done in it.
struct Position {
    slot: DueSlot,
    after: Option<UserId>,
}

impl Position {
    fn encode(&self) -> String {
        let after = self.after.as_ref().map(UserId::as_str).unwrap_or("");
        format!("{}#{}#{after}", self.slot.shard, self.slot.phase)
    }

    fn decode(text: &str, cycle: u32) -> Option<Self> {
        let mut parts = text.splitn(3, '#');
        let shard = parts.next()?.parse().ok()?;
        let phase = parts.next()?.parse().ok()?;
        let after = parts.next().filter(|u| !u.is_empty()).map(UserId::parse).transpose().ok()?;
        Some(Self { slot: DueSlot { shard, cycle, phase }, after })
    }
}

/// What checking one person came to.
enum Checked {
    Live,
    Renewed,
    Lapsed,
    /// Not asked (no usable tokens, or the source failed): the sweep diagnoses the grant.
    Skipped,
    /// The app's budget is spent: the walk stops before this person.
    Budget,
}

impl Subscriptions<'_> {
    pub async fn keep(&self, now: Timestamp) -> Result<SubscriptionsReport, ServiceError> {
        let mut report = SubscriptionsReport::default();
        for (provider, people) in self.engine.providers.person_subscriptions() {
            report.people.push(self.check_people(provider, people, now).await?);
        }
        for (provider, keeper) in self.engine.providers.keepers() {
            match keeper.keep(now).await {
                Ok(states) => {
                    let live = states.iter().all(|s| s.live(now));
                    for state in &states {
                        tracing::info!(provider = %provider, topic = state.topic, note = state.note, expires_at = ?state.expires_at, "subscription");
                    }
                    self.connections
                        .save_subscriptions(provider, &StoredSubscriptions { checked_at: now, states })
                        .await?;
                    if live { report.live.push(provider) } else { report.lapsed.push(provider) }
                }
                // The app's request budget was spent this minute: tomorrow's run (or the
                // week of margin before an expiry) tries again; no operator needs waking.
                Err(error @ ProviderError::RateLimited { .. }) => {
                    tracing::warn!(provider = %provider, %error, "subscriptions not checked: the request budget is spent");
                    report.lapsed.push(provider);
                }
                Err(error) => {
                    // What was stored stays: it expires on its own dates, and the status
                    // answer reads those.
                    tracing::error!(alarm = "subscription_not_kept", provider = %provider, %error, "subscriptions could not be listed");
                    report.lapsed.push(provider);
                }
            }
        }
        report.live.sort();
        report.lapsed.sort();
        Ok(report)
    }
}

impl Subscriptions<'_> {
    /// Up to `PEOPLE_PER_RUN` active connections of `provider`, walked slot by slot (shards,
    /// then phases of its sweep cycle) from where the last run stopped. Connections backing off
    /// (not in a slot) wait for a run after they are back in one.
    async fn check_people(
        &self,
        provider: Provider,
        people: &dyn PersonSubscriptions,
        now: Timestamp,
    ) -> Result<PeopleChecked, ServiceError> {
        let schedule = &self.engine.schedule;
        let cycle = schedule.cycle_for(provider);
        let stored = self.connections.subscriptions(provider).await?;
        let start = stored
            .and_then(|s| s.states.into_iter().find(|s| s.topic == PEOPLE_TOPIC))
            .and_then(|s| Position::decode(s.id.as_deref()?, cycle))
            .filter(|p| p.slot.shard < schedule.shards && p.slot.phase < cycle);
        let slots: Vec<DueSlot> = (0..schedule.shards)
            .flat_map(|shard| (0..cycle).map(move |phase| DueSlot { shard, cycle, phase }))
            .collect();
        let first = start.as_ref().and_then(|p| slots.iter().position(|s| *s == p.slot)).unwrap_or(0);
        let mut after: Option<(UserId, Provider)> = start.and_then(|p| p.after).map(|user| (user, provider));
        let mut report = PeopleChecked { provider, checked: 0, renewed: 0, lapsed: 0, finished: false };
        // People taken, asked about or not: the share holds even when none can be asked.
        let mut taken = 0;
        let mut stopped: Option<Position> = None;
        'walk: for slot in &slots[first..] {
            loop {
                let page = self.connections.slot_connections(*slot, after.as_ref(), PAGE).await?;
                for c in &page {
                    if c.provider == provider && c.status == ConnectionStatus::Active {
                        if taken == PEOPLE_PER_RUN {
                            stopped = Some(Position { slot: *slot, after: after.map(|(user, _)| user) });
                            break 'walk;
                        }
                        taken += 1;
                        match self.check_person(people, c, now).await? {
                            Checked::Budget => {
                                tracing::warn!(provider = %provider, "subscriptions: the request budget is spent; the next run goes on from here");
                                stopped = Some(Position { slot: *slot, after: after.map(|(user, _)| user) });
                                break 'walk;
                            }
                            Checked::Skipped => {}
                            Checked::Live => report.checked += 1,
                            Checked::Renewed => {
                                (report.checked, report.renewed) = (report.checked + 1, report.renewed + 1)
                            }
                            Checked::Lapsed => {
                                (report.checked, report.lapsed) = (report.checked + 1, report.lapsed + 1)
                            }
                        }
                    }
                    after = Some((c.user.clone(), c.provider));
                }
                if page.len() < PAGE {
                    break;
                }
            }
            after = None;
        }
        report.finished = stopped.is_none();
        let note = format!("checked {}, renewed {}, lapsed {}", report.checked, report.renewed, report.lapsed);
        tracing::info!(provider = %provider, checked = report.checked, renewed = report.renewed, lapsed = report.lapsed, finished = report.finished, "subscriptions of people");
        let state =
            SubscriptionState { topic: PEOPLE_TOPIC.into(), id: stopped.map(|p| p.encode()), expires_at: None, note };
        self.connections
            .save_subscriptions(provider, &StoredSubscriptions { checked_at: now, states: vec![state] })
            .await?;
        Ok(report)
    }

    /// Asks whether one person's subscription is there, makes it again if not, and stores
    /// on the connection whether it is missing.
    async fn check_person(
        &self,
        people: &dyn PersonSubscriptions,
        c: &Connection,
        now: Timestamp,
    ) -> Result<Checked, ServiceError> {
        let (user, provider) = (&c.user, c.provider);
        let tokens = match self.engine.tokens_for(c).await {
            Ok(Some(tokens)) => tokens,
            Ok(None) => return Ok(Checked::Skipped),
            Err(SyncError::Provider(ProviderError::RateLimited { .. })) => return Ok(Checked::Budget),
            Err(error) => {
                tracing::warn!(user = %user, provider = %provider, %error, "subscription not checked: no usable tokens");
                return Ok(Checked::Skipped);
            }
        };
        let checked = match people.subscribed(&tokens).await {
            Ok(true) => Checked::Live,
            Ok(false) => match people.subscribe(&tokens).await {
                Ok(()) => Checked::Renewed,
                Err(ProviderError::RateLimited { .. }) => {
                    // Found missing: diagnosed now, made again by a later run.
                    self.record(c, Some(c.subscription_lapsed_at.unwrap_or(now))).await?;
                    return Ok(Checked::Budget);
                }
                Err(error) => {
                    tracing::warn!(user = %user, provider = %provider, %error, "subscription missing and not made again");
                    Checked::Lapsed
                }
            },
            Err(ProviderError::RateLimited { .. }) => return Ok(Checked::Budget),
            Err(error) => {
                tracing::warn!(user = %user, provider = %provider, %error, "subscription could not be listed");
                return Ok(Checked::Skipped);
            }
        };
        let lapsed_at = matches!(checked, Checked::Lapsed).then(|| c.subscription_lapsed_at.unwrap_or(now));
        if matches!(checked, Checked::Renewed) {
            tracing::info!(user = %user, provider = %provider, "subscription found missing and made again");
        }
        self.record(c, lapsed_at).await?;
        Ok(checked)
    }

    /// Stores the finding on the connection when it changed it; a connection gone meanwhile
    /// needs none.
    async fn record(&self, c: &Connection, lapsed_at: Option<Timestamp>) -> Result<(), ServiceError> {
        if lapsed_at == c.subscription_lapsed_at {
            return Ok(());
        }
        match self.connections.set_lapsed(&c.user, c.provider, lapsed_at).await {
            Ok(()) | Err(crate::ports::StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
