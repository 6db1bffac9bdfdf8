//! Challenges: creating (administrators), the open list, one challenge for its caller,
//! joining and leaving exactly against concurrent day writes, ranking and recomputing.

use super::ServiceError;
use crate::domain::{
    Challenge, ChallengeId, ChallengeState, LeaderboardEntry, LeaderboardPage, LocalDate, MAX_GRACE_DAYS,
    MAX_OPEN_CHALLENGES, Participant, SourceTotals, UserId, local_today,
};
use crate::ports::{ChallengeStore, JoinWrite, LeaveWrite, StepStore, StoreError, UserDays};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use std::collections::BTreeMap;

/// Re-read rounds a join or leave takes against concurrent day writes before giving up.
const MAX_ROUNDS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("challenge not found")]
    NotFound,
    #[error("the challenge is final; it can no longer be joined or left")]
    Final,
    #[error("not a participant of this challenge")]
    NotParticipant,
    #[error("you are in {MAX_OPEN_CHALLENGES} open challenges, the most one person can be in; leave one first")]
    TooManyOpen,
    #[error("the leaderboard cursor is not valid")]
    BadCursor,
}

impl From<ChallengeError> for ServiceError {
    fn from(e: ChallengeError) -> Self {
        match e {
            ChallengeError::NotFound => ServiceError::NotFound("challenge".into()),
            ChallengeError::Final => ServiceError::Conflict(e.to_string()),
            ChallengeError::TooManyOpen => ServiceError::LimitReached(e.to_string()),
            ChallengeError::NotParticipant => ServiceError::NotFound("your place in this challenge".into()),
            ChallengeError::BadCursor => ServiceError::Invalid {
                field: "page_token",
                message: "is not valid; start again from the first page".into(),
            },
            ChallengeError::Store(e) => e.into(),
        }
    }
}

/// How far before today (UTC) the open list looks for challenge ends. A challenge stays open
/// for up to `MAX_GRACE_DAYS` after its last day, and its zone may be a day off UTC.
const LIST_LOOKBACK_DAYS: i32 = MAX_GRACE_DAYS as i32 + 2;

/// Only company administrators create challenges, and read a challenge's sync health and
/// results (`what` they do, for the message).
pub fn require_admin(admin: bool, what: &str) -> Result<(), ServiceError> {
    if admin { Ok(()) } else { Err(ServiceError::Forbidden(format!("only administrators {what}"))) }
}

/// What `require_admin` says to someone else who tries to create one.
pub const CREATE: &str = "create challenges";

/// What an administrator asks for; the id is made here.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub name: String,
    pub start: LocalDate,
    pub end: LocalDate,
    pub time_zone: String,
    pub grace_days: u32,
}

/// A person's numbers per source in a challenge, straight from their day records.
pub fn totals_in_window(challenge: &Challenge, window: &UserDays) -> SourceTotals {
    let mut totals = SourceTotals::default();
    for day in window.days.values().filter(|d| challenge.start <= d.date && d.date <= challenge.end) {
        for (source, value) in &day.sources {
            totals.add(*source, i64::from(value.steps.get()), i64::from(value.steps.get() > 0));
        }
    }
    totals
}

/// The version of each day record in the challenge's window: what numbers computed from
/// `window` count (`Participant::counted`).
pub fn counted_in_window(challenge: &Challenge, window: &UserDays) -> BTreeMap<LocalDate, u64> {
    window
        .days
        .values()
        .filter(|d| challenge.start <= d.date && d.date <= challenge.end)
        .map(|d| (d.date, d.version))
        .collect()
}

pub struct Challenges<'a> {
    pub steps: &'a dyn StepStore,
    pub store: &'a dyn ChallengeStore,
}

impl Challenges<'_> {
    async fn load(&self, id: &ChallengeId) -> Result<Challenge, ChallengeError> {
        self.store.get_challenge(id).await?.ok_or(ChallengeError::NotFound)
    }

    /// Creates a challenge under a fresh random id; only administrators may. A collision of
    /// ids is refused by the store, never overwritten.
    pub async fn create(&self, admin: bool, new: NewChallenge) -> Result<Challenge, ServiceError> {
        require_admin(admin, CREATE)?;
        let mut raw = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
        let id = ChallengeId::parse(&URL_SAFE_NO_PAD.encode(raw)).map_err(ServiceError::internal)?;
        let challenge = Challenge::new(id, &new.name, new.start, new.end, &new.time_zone, new.grace_days)?;
        self.store.create_challenge(&challenge).await?;
        Ok(challenge)
    }

    /// The challenges a person can still see and join (not final), by end date.
    pub async fn list_open(&self, now: Timestamp) -> Result<Vec<Challenge>, ServiceError> {
        let ending_from = local_today(now, &jiff::tz::TimeZone::UTC).add_days(-LIST_LOOKBACK_DAYS);
        let challenges = self.store.list_challenges(ending_from).await?;
        Ok(challenges.into_iter().filter(|c| c.state(now) != ChallengeState::Final).collect())
    }

    /// One challenge, and whether `user` joined it.
    pub async fn details(&self, id: &ChallengeId, user: &UserId) -> Result<(Challenge, bool), ServiceError> {
        let challenge = self.load(id).await?;
        let joined = self.store.participant(id, user).await?.is_some();
        Ok((challenge, joined))
    }

    /// Joins `user` to the challenge, starting from the day records already in the window.
    /// Joining twice returns the existing participant. The participant records the version of
    /// each day it counted; a day written while the join ran (its count found no membership
    /// yet) is caught by reading the window again after the join and rebuilding if it moved.
    pub async fn join(&self, id: &ChallengeId, user: &UserId, now: Timestamp) -> Result<Participant, ChallengeError> {
        let challenge = self.load(id).await?;
        if challenge.state(now) == ChallengeState::Final {
            return Err(ChallengeError::Final);
        }
        for _ in 0..MAX_ROUNDS {
            let window = self.steps.load_user_window(user, challenge.start, challenge.end).await?;
            if window.profile.memberships.contains_key(id) {
                return self.store.participant(id, user).await?.ok_or(ChallengeError::NotParticipant);
            }
            // Counted on the profile the join is conditioned on: two racing joins cannot both pass.
            if window.profile.memberships.values().filter(|m| !m.is_final(now)).count() >= MAX_OPEN_CHALLENGES {
                return Err(ChallengeError::TooManyOpen);
            }
            let participant = Participant {
                challenge: id.clone(),
                user: user.clone(),
                sources: totals_in_window(&challenge, &window),
                joined_at: now,
                sealed: false,
                counted: counted_in_window(&challenge, &window),
                rev: 0,
            };
            let mut profile = window.profile.clone();
            profile.memberships.insert(id.clone(), challenge.membership());
            profile.rev += 1;
            let write = JoinWrite { participant: participant.clone(), profile, expected_rev: window.profile.rev };
            match self.store.commit_join(&write).await {
                Ok(()) => return self.catch_up(&challenge, participant).await,
                // A racing join of the same person won: the next round reads its membership.
                Err(StoreError::Conflict | StoreError::AlreadyExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable("too many concurrent changes while joining".into()).into())
    }

    /// After a join: any day of the window written since the join read it is counted by
    /// rebuilding (its own count came before the membership existed, so it counted nothing).
    async fn catch_up(&self, challenge: &Challenge, joined: Participant) -> Result<Participant, ChallengeError> {
        let window = self.steps.load_user_window(&joined.user, challenge.start, challenge.end).await?;
        if counted_in_window(challenge, &window) == joined.counted {
            return Ok(joined);
        }
        tracing::info!(challenge = %challenge.id, user = %joined.user, "days written during the join: rebuilding");
        let sources = self.rebuild_numbers(challenge, &joined.user).await?;
        Ok(Participant { sources, ..joined })
    }

    /// Leaves the challenge; the person's days stay. A final challenge keeps its standings.
    pub async fn leave(&self, id: &ChallengeId, user: &UserId, now: Timestamp) -> Result<(), ChallengeError> {
        let challenge = self.load(id).await?;
        if challenge.state(now) == ChallengeState::Final {
            return Err(ChallengeError::Final);
        }
        for _ in 0..MAX_ROUNDS {
            let current = self.steps.load_user_days(user, &[]).await?.profile;
            if !current.memberships.contains_key(id) {
                return Err(ChallengeError::NotParticipant);
            }
            let mut profile = current.clone();
            profile.memberships.remove(id);
            profile.rev += 1;
            let write = LeaveWrite { challenge: id.clone(), user: user.clone(), profile, expected_rev: current.rev };
            match self.store.commit_leave(&write).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable("too many concurrent changes while leaving".into()).into())
    }

    /// What the participant's numbers should be, rebuilt from the day records.
    pub async fn recompute(&self, id: &ChallengeId, user: &UserId) -> Result<SourceTotals, ChallengeError> {
        let challenge = self.load(id).await?;
        let window = self.steps.load_user_window(user, challenge.start, challenge.end).await?;
        Ok(totals_in_window(&challenge, &window))
    }

    /// Rewrites the participant's numbers from the day records (the reconcile job's repair);
    /// returns the rebuilt totals. A final challenge is left as it is.
    pub async fn rebuild(
        &self,
        id: &ChallengeId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<SourceTotals, ChallengeError> {
        let challenge = self.load(id).await?;
        if challenge.state(now) == ChallengeState::Final {
            return Err(ChallengeError::Final);
        }
        self.rebuild_numbers(&challenge, user).await
    }

    /// Rewrites the participant's numbers and counted versions from the day records,
    /// conditioned on the participant's `rev` (read before the days, so a count that lands
    /// after that read fails the write and the next round sees it).
    async fn rebuild_numbers(&self, challenge: &Challenge, user: &UserId) -> Result<SourceTotals, ChallengeError> {
        let id = &challenge.id;
        for _ in 0..MAX_ROUNDS {
            let Some(participant) = self.store.participant(id, user).await? else {
                return Err(ChallengeError::NotParticipant);
            };
            // Frozen with its snapshot: never rewritten, whatever the clock says.
            if participant.sealed {
                return Err(ChallengeError::Final);
            }
            let window = self.steps.load_user_window(user, challenge.start, challenge.end).await?;
            match window.profile.memberships.get(id) {
                None => return Err(ChallengeError::NotParticipant),
                Some(m) if m.sealed => return Err(ChallengeError::Final),
                Some(_) => {}
            }
            let rebuilt = Participant {
                sources: totals_in_window(challenge, &window),
                counted: counted_in_window(challenge, &window),
                ..participant
            };
            match self.store.commit_totals(&rebuilt).await {
                Ok(()) => return Ok(rebuilt.sources),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable("too many concurrent changes while rebuilding".into()).into())
    }

    /// One page of the ranked leaderboard: highest total first, ties by user id.
    pub async fn leaderboard(
        &self,
        id: &ChallengeId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<LeaderboardPage, ChallengeError> {
        self.load(id).await?;
        let participants = self.store.participants(id).await?;
        rank(participants, limit, cursor)
    }
}

/// Ranks participants and cuts one page. The cursor names the last entry shown, so a page
/// boundary stays put when totals elsewhere in the list move.
pub fn rank(
    mut participants: Vec<Participant>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<LeaderboardPage, ChallengeError> {
    participants.sort_by(|a, b| b.totals().total.cmp(&a.totals().total).then_with(|| a.user.cmp(&b.user)));
    let after = cursor.map(decode_cursor).transpose()?;
    let count = participants.len() as u32;
    let mut entries = Vec::new();
    let mut rank = 0u32;
    let mut previous_total = None;
    let mut more = false;
    for (position, p) in participants.iter().enumerate() {
        let totals = p.totals();
        if previous_total != Some(totals.total) {
            rank = position as u32 + 1;
            previous_total = Some(totals.total);
        }
        if let Some((total, user)) = &after {
            let is_after = totals.total < *total || (totals.total == *total && p.user.as_str() > user.as_str());
            if !is_after {
                continue;
            }
        }
        if entries.len() == limit.max(1) {
            more = true;
            break;
        }
        entries.push(LeaderboardEntry { rank, user: p.user.clone(), total: totals.total, days: totals.days });
    }
    let next = more.then(|| entries.last().map(|e| encode_cursor(e.total, &e.user))).flatten();
    Ok(LeaderboardPage { entries, next, participants: count })
}

fn encode_cursor(total: u64, user: &UserId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{total}:{user}"))
}

fn decode_cursor(raw: &str) -> Result<(u64, UserId), ChallengeError> {
    let text =
        URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(ChallengeError::BadCursor)?;
    let (total, user) = text.split_once(':').ok_or(ChallengeError::BadCursor)?;
    Ok((
        total.parse().map_err(|_| ChallengeError::BadCursor)?,
        UserId::parse(user).map_err(|_| ChallengeError::BadCursor)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ParticipantTotals;

    fn p(user: &str, total: u64) -> Participant {
        Participant {
            challenge: ChallengeId::parse("c").unwrap(),
            user: UserId::parse(user).unwrap(),
            sources: SourceTotals([(crate::domain::Provider::Misfit, ParticipantTotals { total, days: 1 })].into()),
            joined_at: Timestamp::UNIX_EPOCH,
            sealed: false,
            counted: BTreeMap::new(),
            rev: 0,
        }
    }

    #[test]
    fn ties_share_a_rank_and_are_listed_by_user() {
        let page = rank(vec![p("d", 5), p("b", 9), p("c", 9), p("a", 1)], 10, None).unwrap();
        let got: Vec<_> = page.entries.iter().map(|e| (e.rank, e.user.as_str())).collect();
        assert_eq!(got, [(1, "b"), (1, "c"), (3, "d"), (4, "a")]);
        assert!(page.next.is_none());
    }

    #[test]
    fn pages_continue_after_the_cursor() {
        let all = vec![p("a", 3), p("b", 3), p("c", 2), p("d", 1), p("e", 0)];
        let first = rank(all.clone(), 2, None).unwrap();
        assert_eq!(first.entries.len(), 2);
        let second = rank(all.clone(), 2, first.next.as_deref()).unwrap();
        let users: Vec<_> = second.entries.iter().map(|e| e.user.as_str()).collect();
        assert_eq!(users, ["c", "d"]);
        assert_eq!(second.entries[0].rank, 3);
        let third = rank(all, 2, second.next.as_deref()).unwrap();
        assert_eq!(third.entries.len(), 1);
        assert!(third.next.is_none());
        assert!(matches!(rank(vec![], 2, Some("!!")), Err(ChallengeError::BadCursor)));
    }
}
