//! Standings: a challenge's ranked leaderboard, one page at a time, and where one person
//! stands in it. Computed here once for every caller ("Sync steps" and the leaderboard).

use super::ServiceError;
use super::challenges::{ChallengeError, rank};
use crate::domain::{ChallengeId, LeaderboardEntry, LeaderboardPage, Participant, UserId};
use crate::ports::ChallengeStore;
use serde::Serialize;

/// A person's place in a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub challenge_id: ChallengeId,
    pub rank: u32,
    pub steps: u64,
    pub participants: u32,
}

/// One page of the leaderboard and the caller's own entry, from one read so they agree.
#[derive(Debug, Clone)]
pub struct Leaderboard {
    pub page: LeaderboardPage,
    pub me: Option<LeaderboardEntry>,
}

pub struct Standings<'a> {
    pub challenges: &'a dyn ChallengeStore,
}

/// The entry of `user` among everyone, ranked.
fn entry_of(participants: Vec<Participant>, user: &UserId) -> Result<(Option<LeaderboardEntry>, u32), ChallengeError> {
    let everyone = rank(participants, usize::MAX, None)?;
    Ok((everyone.entries.into_iter().find(|e| &e.user == user), everyone.participants))
}

impl Standings<'_> {
    /// `NotFound` for an unknown challenge; `Invalid` for a cursor this leaderboard never gave.
    pub async fn leaderboard(
        &self,
        id: &ChallengeId,
        user: &UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Leaderboard, ServiceError> {
        if self.challenges.get_challenge(id).await?.is_none() {
            return Err(ChallengeError::NotFound.into());
        }
        let participants = self.challenges.participants(id).await?;
        let page = rank(participants.clone(), limit, cursor)?;
        let (me, _) = entry_of(participants, user)?;
        Ok(Leaderboard { page, me })
    }

    /// Where `user` stands in the challenge; `None` when not a participant.
    pub async fn standing(&self, id: &ChallengeId, user: &UserId) -> Result<Option<Standing>, ServiceError> {
        let participants = self.challenges.participants(id).await?;
        let (me, participants) = entry_of(participants, user)?;
        Ok(me.map(|e| Standing { challenge_id: id.clone(), rank: e.rank, steps: e.total, participants }))
    }
}
