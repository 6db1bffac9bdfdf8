//! The reconcile job (daily): seals every challenge that closed (its final numbers frozen with
//! the day values they came from) and recomputes every open challenge from the day records,
//! repairing drift with `Challenges::rebuild`. What it repaired is logged with
//! `alarm = "reconcile_repaired"` and counted: `ReconcileRepairedAlarm` fires when it is not
//! zero, since drift means a write path lost a delta.

use super::ServiceError;
use super::challenges::{ChallengeError, Challenges};
use crate::domain::{ChallengeId, ChallengeState, MAX_GRACE_DAYS, UserId, local_today};
use crate::engine::{Sealed, seal_membership};
use crate::ports::{ChallengeStore, StepStore};
use jiff::Timestamp;
use serde::Serialize;

/// How far back (in days before today, UTC) the job looks for challenges that ended: a
/// challenge closes up to `MAX_GRACE_DAYS` after its end, and a job that did not run for a
/// few weeks still seals it.
const LOOKBACK_DAYS: i32 = MAX_GRACE_DAYS as i32 + 35;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Open challenges recomputed.
    pub open_challenges: u32,
    /// Their participants checked.
    pub participants: u32,
    /// Participants whose stored numbers differed from their day records, now rebuilt.
    pub repaired: u32,
    /// Participants of closed challenges sealed by this run.
    pub sealed: u32,
    /// Of those, the ones whose frozen numbers differed from their day values (set to the
    /// snapshot's at the seal).
    pub repaired_at_seal: u32,
}

pub struct Reconcile<'a> {
    pub steps: &'a dyn StepStore,
    pub store: &'a dyn ChallengeStore,
}

impl Reconcile<'_> {
    fn challenges(&self) -> Challenges<'_> {
        Challenges { steps: self.steps, store: self.store }
    }

    /// Seals the closed challenges, then repairs the open ones.
    pub async fn run(&self, now: Timestamp) -> Result<ReconcileReport, ServiceError> {
        let ending_from = local_today(now, &jiff::tz::TimeZone::UTC).add_days(-LOOKBACK_DAYS);
        let mut report = ReconcileReport::default();
        for challenge in self.store.list_challenges(ending_from).await? {
            match challenge.state(now) {
                ChallengeState::Final => self.seal(&challenge.id, now, &mut report).await?,
                _ => self.repair(&challenge.id, now, &mut report).await?,
            }
        }
        if report.repaired + report.repaired_at_seal > 0 {
            tracing::error!(
                alarm = "reconcile_repaired",
                repaired = report.repaired,
                repaired_at_seal = report.repaired_at_seal,
                "participant totals had drifted from the day records and were rebuilt"
            );
        }
        tracing::info!(?report, "reconcile finished");
        Ok(report)
    }

    async fn seal(&self, id: &ChallengeId, now: Timestamp, report: &mut ReconcileReport) -> Result<(), ServiceError> {
        for participant in self.store.participants(id).await?.into_iter().filter(|p| !p.sealed) {
            if let Sealed::Now(snapshot) = seal_membership(self.steps, &participant.user, id, now).await? {
                report.sealed += 1;
                if snapshot.totals != participant.sources {
                    report.repaired_at_seal += 1;
                    tracing::warn!(challenge = %id, user = %participant.user, "frozen totals differed from the day values");
                }
            }
        }
        Ok(())
    }

    async fn repair(&self, id: &ChallengeId, now: Timestamp, report: &mut ReconcileReport) -> Result<(), ServiceError> {
        report.open_challenges += 1;
        for participant in self.store.participants(id).await?.into_iter().filter(|p| !p.sealed) {
            report.participants += 1;
            if self.drifted(id, &participant.user, &participant.sources).await? {
                match self.challenges().rebuild(id, &participant.user, now).await {
                    Ok(_) => {
                        report.repaired += 1;
                        tracing::warn!(challenge = %id, user = %participant.user, "participant totals rebuilt");
                    }
                    // Left or closed meanwhile: nothing to repair any more.
                    Err(ChallengeError::NotParticipant | ChallengeError::Final) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Whether the stored numbers differ from the day records, looked at twice: a day write
    /// landing between the two reads of the first look is not drift.
    async fn drifted(
        &self,
        id: &ChallengeId,
        user: &UserId,
        stored: &crate::domain::SourceTotals,
    ) -> Result<bool, ServiceError> {
        if self.challenges().recompute(id, user).await? == *stored {
            return Ok(false);
        }
        let Some(again) = self.store.participant(id, user).await? else { return Ok(false) };
        Ok(self.challenges().recompute(id, user).await? != again.sources)
    }

    /// A closed challenge against its snapshots: the participants whose numbers differ from
    /// their snapshot's, whose snapshot does not add up, or who have none.
    pub async fn check_closed(&self, id: &ChallengeId) -> Result<Vec<UserId>, ServiceError> {
        let mut wrong = Vec::new();
        for participant in self.store.participants(id).await? {
            let ok = match self.store.snapshot(id, &participant.user).await? {
                Some(snapshot) => snapshot.is_consistent() && snapshot.totals == participant.sources,
                None => false,
            };
            if !ok {
                wrong.push(participant.user);
            }
        }
        Ok(wrong)
    }
}
