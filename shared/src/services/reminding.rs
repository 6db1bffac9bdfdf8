//! Reminding a challenge's people: who needs to act (the organizer's view, `Organizer`), each of
//! them reminded under the once-per-period rule, and one digest for the organizers
//! (`Nudges`). Two callers: the organizer's "send reminders now"
//! (`POST /v1/challenges/{id}/reminders`) and the daily run, for every challenge whose grace
//! period ends within `BEFORE_CLOSE` (late data still counts until then; after it, it never will).

use super::organizer::{NeedsAction, Organizer};
use super::{DigestOutcome, Nudges, ReminderEntry, RemindersReport, ServiceError};
use crate::domain::{Challenge, ChallengeId, ChallengeState, DiagnosisCode, MAX_GRACE_DAYS, local_today};
use crate::events::{ChallengeRef, DigestLine};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// What `require_admin` says to someone else who asks to send reminders.
pub const REMIND: &str = "send a challenge's reminders";
/// How long before a challenge's grace period ends the daily run reminds its people: a day's
/// run falls in it at least once, and each person has a day left to act.
pub const BEFORE_CLOSE: SignedDuration = SignedDuration::from_hours(48);
/// How far back the daily run looks for challenges (their window's end): past the longest
/// grace period, with a day each side for the zones.
const GRACE_LOOKBACK_DAYS: i32 = MAX_GRACE_DAYS as i32 + 2;

/// What reminding one challenge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChallengeReminders {
    pub challenge_id: ChallengeId,
    /// Participants whose steps do not sync by themselves (`wait` included: asked nothing).
    pub needing_action: usize,
    /// Of them, people with no source at all: no connection to remind them about, so they
    /// are named in the organizers' digest only.
    pub without_source: usize,
    /// The people's reminders: `sent`, `already_sent` (this period), `not_needed` (`wait`),
    /// `off` (no delivery target: nothing read beyond the challenge, nothing sent).
    #[serde(flatten)]
    pub people: RemindersReport,
    /// The organizers' digest.
    pub digest: DigestOutcome,
}

pub struct Reminding<'a> {
    pub organizer: Organizer<'a>,
    pub nudges: Nudges<'a>,
}

impl Reminding<'_> {
    /// Reminds `id`'s people who need to act and sends its organizers the digest. `NotFound`
    /// for an unknown challenge; with no delivery target, answers `off` having read nothing
    /// more than the challenge.
    pub async fn remind(&self, id: &ChallengeId, now: Timestamp) -> Result<ChallengeReminders, ServiceError> {
        let challenge = self
            .organizer
            .challenges
            .get_challenge(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("challenge".into()))?;
        self.remind_challenge(&challenge, now).await
    }

    /// The daily run's part: every challenge whose grace period ends within `BEFORE_CLOSE`
    /// of `now` (and has not ended) is reminded; the once-per-period rule keeps a second
    /// run inside the window from sending again. Nothing is read with no delivery target.
    pub async fn before_close(&self, now: Timestamp) -> Result<Vec<ChallengeReminders>, ServiceError> {
        if !self.nudges.enabled() {
            return Ok(Vec::new());
        }
        let ending_from = local_today(now, &jiff::tz::TimeZone::UTC).add_days(-GRACE_LOOKBACK_DAYS);
        let mut done = Vec::new();
        for challenge in self.organizer.challenges.list_challenges(ending_from).await? {
            let closing = challenge.state(now) != ChallengeState::Final && now + BEFORE_CLOSE >= challenge.closes_at();
            if closing {
                done.push(self.remind_challenge(&challenge, now).await?);
            }
        }
        Ok(done)
    }

    async fn remind_challenge(
        &self,
        challenge: &Challenge,
        now: Timestamp,
    ) -> Result<ChallengeReminders, ServiceError> {
        let id = challenge.id.clone();
        if !self.nudges.enabled() {
            let people = RemindersReport { off: true, ..RemindersReport::default() };
            return Ok(ChallengeReminders {
                challenge_id: id,
                needing_action: 0,
                without_source: 0,
                people,
                digest: DigestOutcome::Off,
            });
        }
        // The challenge is read already: the survey reads its participants, not it again.
        let needing = self.organizer.needing_action_in(challenge, now).await?;
        let entries: Vec<ReminderEntry> = needing.iter().filter_map(entry).collect();
        let about = ChallengeRef { id: id.clone(), name: challenge.name.clone() };
        let people = self.nudges.remind(&entries, Some(&about)).await?;
        let lines: Vec<DigestLine> = needing.iter().filter_map(line).collect();
        let digest = self.nudges.send_digest(&about, &lines).await?;
        let without_source = needing.iter().filter(|n| n.provider.is_none()).count();
        tracing::info!(challenge = %id, needing = needing.len(), sent = people.sent, ?digest, "challenge reminded");
        Ok(ChallengeReminders { challenge_id: id, needing_action: needing.len(), without_source, people, digest })
    }
}

/// The reminder for one person who needs to act about one of their connections.
fn entry(n: &NeedsAction) -> Option<ReminderEntry> {
    Some(ReminderEntry {
        user: n.user.clone(),
        provider: n.provider?,
        code: DiagnosisCode::parse(n.code).ok()?,
        action: n.action,
        message: n.message.clone(),
        since: Some(n.since),
    })
}

fn line(n: &NeedsAction) -> Option<DigestLine> {
    Some(DigestLine {
        user: n.user.clone(),
        provider: n.provider,
        code: DiagnosisCode::parse(n.code).ok()?,
        action: n.action,
    })
}
