//! Sealing a participant at close: the final numbers frozen together with the day values they
//! came from (`Snapshot`), in one write conditioned on the profile's `rev`.
//!
//! A participant's numbers stop moving at `closes_at` (no count moves a membership final when
//! its day was written, nor a sealed participant). The snapshot must hold the day values *as
//! they were then*, so a writer that would change a day covered by a final membership not yet
//! sealed seals it first (`SyncEngine`), and the reconcile job seals the rest. Day writes no
//! longer move `rev`, so one written across the close instant by a writer that read the
//! profile just before it may land after the seal's read: the snapshot (and the sealed
//! numbers, equal to it) then leaves that value out, which is the boundary the close draws.

use crate::domain::{ChallengeId, Snapshot, UserId};
use crate::ports::{SealWrite, StepStore, StoreError};
use jiff::Timestamp;

/// Rounds of re-reading after a racing day write or join before giving up.
const MAX_ROUNDS: u32 = 100;

/// What sealing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealed {
    /// Sealed now, with this snapshot.
    Now(Snapshot),
    /// Already sealed, not final yet, or not a member (left): nothing to do.
    Nothing,
}

/// Seals `user`'s membership of `challenge` if it is final and not sealed yet.
pub async fn seal_membership(
    steps: &dyn StepStore,
    user: &UserId,
    challenge: &ChallengeId,
    now: Timestamp,
) -> Result<Sealed, StoreError> {
    for _ in 0..MAX_ROUNDS {
        let profile = steps.load_user_days(user, &[]).await?.profile;
        let Some(membership) = profile.memberships.get(challenge).filter(|m| m.needs_seal(now)) else {
            return Ok(Sealed::Nothing);
        };
        // The profile first, then the days; the seal is conditioned on `rev` against a racing
        // join, leave or seal.
        let window = steps.load_user_window(user, membership.start, membership.end).await?;
        let Some(membership) = window.profile.memberships.get(challenge).filter(|m| m.needs_seal(now)) else {
            return Ok(Sealed::Nothing);
        };
        let snapshot = Snapshot::of(membership, window.days.values(), now);
        let mut sealed_profile = window.profile.clone();
        if let Some(m) = sealed_profile.memberships.get_mut(challenge) {
            m.sealed = true;
        }
        sealed_profile.rev += 1;
        let write = SealWrite {
            challenge: challenge.clone(),
            user: user.clone(),
            snapshot: snapshot.clone(),
            profile: sealed_profile,
            expected_rev: window.profile.rev,
        };
        match steps.commit_seal(&write).await {
            Ok(()) => return Ok(Sealed::Now(snapshot)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable("too many concurrent changes while sealing".into()))
}
