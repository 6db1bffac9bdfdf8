//! The table's change stream, record by record: every committed day change counted into the
//! challenges it moves (`engine::counting`: the writer counted it already unless it died or lost
//! a race; this makes sure, exactly once), then, where a company's app subscribes, one
//! `StepsUpdated` carrying the day's version.
//!
//! Neither is done only by the write that commits the day: a function that dies right after its
//! commit (or a "Sync steps" past its deadline) would lose them, and the retry sees the day
//! unchanged. The stream (DynamoDB Streams, `DayEventsFunction` in `template.yaml`; the local
//! stack polls the same stream) has one record per committed write, in commit order per day,
//! retried until handled. A record delivered twice counts nothing twice (counts are
//! conditioned on the version they come from) and publishes the same event twice; `(user, date,
//! version)` identifies it, so consumers drop the second and order by `version`.

use super::challenges::Challenges;
use crate::domain::{Provider, UserId, UserProfile, resolved_source};
use crate::engine::counting::{self, Standing};
use crate::events::{Event, StepsUpdated};
pub use crate::ports::DayChange;
use crate::ports::{ChallengeStore, DayCount, EventPublisher, StepStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// Rounds one count takes against racing counts and rebuilds before the record is handed back.
const MAX_COUNT_ROUNDS: u32 = 20;

/// EventBridge takes at most 10 entries per call: a failed call names its first record.
const EVENTS_PER_CALL: usize = 10;

/// The event for one committed change: the source whose value the write changed (a write
/// changes one), else the platform whose installation it changed, else the day's resolved one.
pub fn steps_updated(change: &DayChange) -> Option<StepsUpdated> {
    let (old, new) = (change.old.as_ref(), &change.new);
    let before = |p: &Provider| old.and_then(|o| o.sources.get(p));
    let moved_source = Provider::ALL.into_iter().find(|p| before(p) != new.sources.get(p));
    let moved_install = new
        .installs
        .iter()
        .find(|(key, value)| old.and_then(|o| o.installs.get(*key)) != Some(*value))
        .map(|((platform, _), _)| *platform);
    let source = moved_source.or(moved_install).or_else(|| resolved_source(&new.sources, None))?;
    Some(StepsUpdated {
        user: new.user.clone(),
        date: new.date,
        old_total: old.map_or(0, |o| o.total.get()),
        new_total: new.total.get(),
        version: new.version,
        source,
    })
}

pub struct DayEvents {
    pub steps: Arc<dyn StepStore>,
    pub challenges: Arc<dyn ChallengeStore>,
    /// Where `StepsUpdated` goes; `None` when no app subscribes (`STEPSYNC_STEPS_UPDATED`): an
    /// event nobody reads still costs one PutEvents entry per changed day.
    pub publisher: Option<Arc<dyn EventPublisher>>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handled {
    /// Counts applied here (the writer had not).
    pub counted: usize,
    /// Participants rebuilt from their days (a chain of versions that could not be completed).
    pub rebuilt: usize,
    pub published: usize,
}

impl DayEvents {
    /// Counts every change, then publishes one `StepsUpdated` per change, in order. On a
    /// failure returns the id of the first change not known to be handled: the stream hands it
    /// and every later record back (`ReportBatchItemFailures`), so nothing is lost; what is
    /// handled twice counts nothing twice and publishes the same version again.
    pub async fn handle(&self, changes: &[DayChange]) -> Result<Handled, String> {
        let mut handled = Handled::default();
        // Read once per person per batch, after every record of the batch was committed: a join
        // that commits after this read catches up on those days itself (`Challenges::join`).
        let mut profiles: HashMap<UserId, UserProfile> = HashMap::new();
        for (at, change) in changes.iter().enumerate() {
            if let Err(error) = self.count_change(change, &mut profiles, &mut handled).await {
                tracing::warn!(%error, record = %change.id, "day change not counted; the stream retries from it");
                // What was counted before it is announced now: the retry starts at this record.
                self.publish(&changes[..at]).await?;
                return Err(change.id.clone());
            }
        }
        handled.published += self.publish(changes).await?;
        Ok(handled)
    }

    async fn count_change(
        &self,
        change: &DayChange,
        profiles: &mut HashMap<UserId, UserProfile>,
        handled: &mut Handled,
    ) -> Result<(), StoreError> {
        let user = &change.new.user;
        if !profiles.contains_key(user) {
            let profile = self.steps.load_user_days(user, &[]).await?.profile;
            profiles.insert(user.clone(), profile);
        }
        for count in counting::day_counts(&profiles[user], change) {
            self.count(&count, handled).await?;
        }
        Ok(())
    }

    /// One `StepsUpdated` per change where configured (`Ok(0)` otherwise).
    async fn publish(&self, changes: &[DayChange]) -> Result<usize, String> {
        match &self.publisher {
            Some(publisher) => publish(publisher.as_ref(), changes).await,
            None => Ok(0),
        }
    }

    /// Applies one count unless the participant is past it; a participant behind it (an
    /// earlier change of the day it never counted) is rebuilt from the day records.
    async fn count(&self, count: &DayCount, handled: &mut Handled) -> Result<(), StoreError> {
        let mut refused_at: Option<u64> = None;
        for _ in 0..MAX_COUNT_ROUNDS {
            let Some(participant) = self.challenges.participant(&count.challenge, &count.user).await? else {
                return Ok(()); // left the challenge: nothing to count
            };
            if participant.sealed {
                return Ok(());
            }
            // Refused though nothing moved it since: not a race but a participant the condition
            // cannot hold for (one stored before counting by version): rebuild it.
            if refused_at == Some(participant.rev) {
                return self.rebuild(count, handled).await;
            }
            match counting::standing(participant.counted.get(&count.date).copied(), count) {
                Standing::Past => return Ok(()),
                Standing::Ready => match self.steps.count_day(count).await {
                    Ok(()) => {
                        handled.counted += 1;
                        return Ok(());
                    }
                    Err(StoreError::Conflict) => refused_at = Some(participant.rev),
                    Err(e) => return Err(e),
                },
                Standing::Behind => {
                    tracing::warn!(challenge = %count.challenge, user = %count.user, date = %count.date, "a day change was never counted: rebuilding");
                    return self.rebuild(count, handled).await;
                }
            }
        }
        Err(StoreError::Unavailable("too many concurrent changes while counting".into()))
    }

    /// Rebuilds as of the change (the challenge was open when it was written).
    async fn rebuild(&self, count: &DayCount, handled: &mut Handled) -> Result<(), StoreError> {
        let (challenge, user) = (&count.challenge, &count.user);
        let challenges = Challenges { steps: self.steps.as_ref(), store: self.challenges.as_ref() };
        match challenges.rebuild(challenge, user, count.written_at).await {
            Ok(_) => {
                handled.rebuilt += 1;
                Ok(())
            }
            Err(super::challenges::ChallengeError::Store(e)) => Err(e),
            // Final (the seal takes its numbers from the days), left, or gone: nothing to repair.
            Err(other) => {
                tracing::info!(%challenge, %user, reason = %other, "not rebuilt");
                Ok(())
            }
        }
    }
}

/// Publishes one `StepsUpdated` per change, in order, ten to a call.
async fn publish(publisher: &dyn EventPublisher, changes: &[DayChange]) -> Result<usize, String> {
    let mut published = 0;
    for chunk in changes.chunks(EVENTS_PER_CALL) {
        let events: Vec<Event> = chunk.iter().filter_map(steps_updated).map(Event::StepsUpdated).collect();
        if events.is_empty() {
            continue;
        }
        if let Err(error) = publisher.publish(&events).await {
            tracing::error!(%error, first = %chunk[0].id, "day changes not published; the stream retries them");
            return Err(chunk[0].id.clone());
        }
        published += events.len();
    }
    Ok(published)
}
