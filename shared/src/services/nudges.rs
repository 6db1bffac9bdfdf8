//! Reminders: a connection that needs its person (a revoked grant, a missing permission) turns
//! into at most one reminder per person, source and diagnosis per period, and a challenge's
//! organizer digest into at most one per challenge per period. Each is one `ReminderDue` or
//! `DigestDue` event on the bus, which a rule hands to the company's delivery target (an
//! EventBridge API destination: a chat webhook or their own service).
//!
//! One conditional write decides each (`ReminderStore::claim_reminder`), never a read first: a
//! redelivered event, a connection flapping between active and reconnect_required, and two
//! invocations at once send one reminder a period, never a storm. A claim whose event could not
//! be handed to the bus is given back, so the retry sends it; a function that dies between the
//! claim and the bus loses that period's reminder (at most one, never two, is the rule).
//!
//! With no delivery target configured (`NudgeSettings::enabled` false) nothing is read,
//! recorded or sent.

use super::ServiceError;
use crate::clock::Clock;
use crate::diagnosis::{Action, Diagnosis, diagnose};
use crate::domain::{ConnectionStatus, DiagnosisCode, ParseError, Provider, UserId};
use crate::events::{ChallengeRef, ConnectionStatusChanged, DigestDue, DigestLine, Event, ReminderDue};
use crate::ports::{ConnectionStore, EventPublisher, ReminderClaim, ReminderStore, ReminderSubject, StoreError};
use futures::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use std::time::Duration;

/// The default period: one reminder a day at most.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// The most people a digest event names (an EventBridge event holds 256 KB); `total` counts all.
pub const DIGEST_MAX_PEOPLE: usize = 500;
/// The lines of a digest's text (a chat message stays readable); the rest is "and N more".
const DIGEST_TEXT_LINES: usize = 50;
/// Claims made at once by a batch of reminders.
const CLAIMS_AT_ONCE: usize = 16;

/// What the reminders need to know from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NudgeSettings {
    /// Whether a delivery target is configured (`STEPSYNC_NUDGES`); off, nothing is read,
    /// recorded or sent.
    pub enabled: bool,
    /// At most one reminder per person, source and diagnosis, and one digest per challenge,
    /// in this long (`STEPSYNC_NUDGE_PERIOD_HOURS`).
    pub period: Duration,
}

impl Default for NudgeSettings {
    fn default() -> Self {
        Self { enabled: false, period: DEFAULT_PERIOD }
    }
}

/// One person to remind: a diagnosis of their connection to one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderEntry {
    pub user: UserId,
    pub provider: Provider,
    pub code: DiagnosisCode,
    pub action: Action,
    /// The diagnosis's sentence for the person.
    pub message: String,
    /// Since when the person has been asked to act, where known.
    pub since: Option<Timestamp>,
}

impl ReminderEntry {
    /// The entry for `diagnosis` (`diagnosis::diagnose`) of `user`'s connection to `provider`.
    pub fn from_diagnosis(
        user: UserId,
        provider: Provider,
        diagnosis: &Diagnosis,
        since: Option<Timestamp>,
    ) -> Result<Self, ParseError> {
        Ok(Self {
            user,
            provider,
            code: DiagnosisCode::parse(diagnosis.code)?,
            action: diagnosis.action,
            message: diagnosis.message.clone(),
            since,
        })
    }

    fn subject(&self) -> ReminderSubject {
        ReminderSubject::Person { user: self.user.clone(), provider: self.provider, code: self.code.clone() }
    }

    fn event(&self, challenge: Option<&ChallengeRef>) -> Event {
        Event::ReminderDue(ReminderDue {
            user: self.user.clone(),
            provider: self.provider,
            code: self.code.clone(),
            action: self.action,
            message: self.message.clone(),
            since: self.since,
            challenge: challenge.cloned(),
            text: reminder_text(self, challenge),
        })
    }
}

/// What one `ConnectionStatusChanged` led to (also the function's answer and log line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum NudgeOutcome {
    /// No delivery target is configured: nothing was read, recorded or sent.
    Off,
    /// Nothing asks the person to act (`why`): nothing recorded or sent.
    NotNeeded { why: String },
    /// This reminder went out at `at`, within the period: nothing sent now.
    AlreadySent { code: DiagnosisCode, at: Timestamp },
    /// A `ReminderDue` is on the bus for the target.
    Sent { code: DiagnosisCode },
}

/// What a batch of reminders did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemindersReport {
    /// Reminders handed to the target now.
    pub sent: usize,
    /// Entries whose reminder went out earlier in the period: nothing sent for them.
    pub already_sent: usize,
    /// Entries that ask nothing of the person (`wait`, `none`): never reminded.
    pub not_needed: usize,
    /// No delivery target is configured: nothing was recorded or sent.
    pub off: bool,
}

/// What an organizer digest did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DigestOutcome {
    /// No delivery target is configured: nothing was recorded or sent.
    Off,
    /// Nobody needs to act: no digest.
    NobodyToRemind,
    /// The challenge's digest went out at `at`, within the period.
    AlreadySent { at: Timestamp },
    /// A `DigestDue` naming `people` (of `total`) is on the bus for the target.
    Sent { people: usize, total: usize },
}

/// Why a status change could not be turned into its reminder.
#[derive(Debug, thiserror::Error)]
pub enum NudgeError {
    #[error("not an event nudges handles: {0}")]
    BadEvent(String),
    /// Returned to Lambda, which retries the event, then sends it to the dead-letter queue.
    #[error("the reminder could not be sent now and may be on a retry: {0}")]
    Retryable(String),
}

impl From<ServiceError> for NudgeError {
    fn from(error: ServiceError) -> Self {
        NudgeError::Retryable(error.to_string())
    }
}

pub struct Nudges<'a> {
    pub connections: &'a dyn ConnectionStore,
    pub reminders: &'a dyn ReminderStore,
    pub publisher: &'a dyn EventPublisher,
    pub clock: &'a dyn Clock,
    pub settings: NudgeSettings,
}

impl Nudges<'_> {
    /// Whether a delivery target is configured (an admin route answers accordingly).
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// A connection's status moved (`at`: the event's time). Only a move to
    /// `reconnect_required` asks the person to act; back to active, a disconnect (the person's
    /// own, or Fitbit replaced by Google) does not. The connection is read again and diagnosed
    /// now: one that recovered meanwhile is not reminded, and the reminder carries the same
    /// code and sentence the status answer shows.
    pub async fn on_status_changed(
        &self,
        change: &ConnectionStatusChanged,
        at: Option<Timestamp>,
    ) -> Result<NudgeOutcome, NudgeError> {
        if !self.settings.enabled {
            return Ok(NudgeOutcome::Off);
        }
        if change.new_status != ConnectionStatus::ReconnectRequired {
            let why = format!("the connection moved to {}", change.new_status.as_str());
            return Ok(NudgeOutcome::NotNeeded { why });
        }
        let now = self.clock.now();
        let connection = self
            .connections
            .get_connection(&change.user, change.provider)
            .await
            .map_err(|e| NudgeError::Retryable(e.to_string()))?;
        let Some(connection) = connection else {
            return Ok(NudgeOutcome::NotNeeded { why: "no such connection".into() });
        };
        if connection.status != ConnectionStatus::ReconnectRequired {
            let why = format!("the connection is {} again", connection.status.as_str());
            return Ok(NudgeOutcome::NotNeeded { why });
        }
        let diagnosis = diagnose(&connection, now);
        if !diagnosis.action.asks_the_person() {
            return Ok(NudgeOutcome::NotNeeded { why: format!("{} asks nothing of the person", diagnosis.code) });
        }
        let entry = ReminderEntry::from_diagnosis(change.user.clone(), change.provider, &diagnosis, at)
            .map_err(|e| NudgeError::BadEvent(e.to_string()))?;
        let holder = holder();
        match self.claim(&entry.subject(), &holder, now).await? {
            ReminderClaim::SentAt(at) => {
                tracing::info!(user = %entry.user, provider = %entry.provider, code = %entry.code, sent_at = %at, "reminder already sent this period");
                Ok(NudgeOutcome::AlreadySent { code: entry.code, at })
            }
            ReminderClaim::Claimed => {
                self.hand_over(&[(entry.subject(), entry.event(None))], &holder).await?;
                tracing::info!(user = %entry.user, provider = %entry.provider, code = %entry.code, "reminder sent");
                Ok(NudgeOutcome::Sent { code: entry.code })
            }
        }
    }

    /// "Send reminders now" and the pre-deadline reminders: each entry that asks the person to
    /// act gets its reminder under the same once-per-period rule as a status change (an entry
    /// reminded earlier in the period, or twice in the list, is counted as already sent).
    /// `challenge` names the challenge they are sent for, if any. A failure to record or hand
    /// over gives back every claim this call made and is returned: calling again is safe.
    pub async fn remind(
        &self,
        entries: &[ReminderEntry],
        challenge: Option<&ChallengeRef>,
    ) -> Result<RemindersReport, ServiceError> {
        let mut report = RemindersReport::default();
        if !self.settings.enabled {
            report.off = true;
            return Ok(report);
        }
        let now = self.clock.now();
        let holder = holder();
        let (wanted, unwanted): (Vec<&ReminderEntry>, Vec<&ReminderEntry>) =
            entries.iter().partition(|e| e.action.asks_the_person());
        report.not_needed = unwanted.len();
        // Duplicates in the list claim one after the other (the second finds the first's record).
        let mut seen = std::collections::HashSet::new();
        let (first, repeated): (Vec<&ReminderEntry>, Vec<&ReminderEntry>) =
            wanted.into_iter().partition(|e| seen.insert(e.subject()));
        report.already_sent = repeated.len();
        // Each claim's future owns what it claims (no borrowed entry in a closure's argument:
        // the compiler cannot then prove the batch `Send` for every caller's lifetime).
        let (reminders, period) = (self.reminders, self.period());
        let subjects: Vec<ReminderSubject> = first.iter().map(|e| e.subject()).collect();
        let claiming = subjects.into_iter().enumerate().map(|(i, subject)| {
            let holder = holder.clone();
            async move { (i, reminders.claim_reminder(&subject, &holder, now, period).await) }
        });
        let claims: Vec<(usize, Result<ReminderClaim, StoreError>)> =
            futures::stream::iter(claiming).buffer_unordered(CLAIMS_AT_ONCE).collect().await;
        let mut to_send = Vec::new();
        let mut failed = None;
        for (i, claim) in claims {
            let entry = first[i];
            match claim {
                Ok(ReminderClaim::Claimed) => to_send.push((entry.subject(), entry.event(challenge))),
                Ok(ReminderClaim::SentAt(_)) => report.already_sent += 1,
                Err(error) => {
                    // It may have been written all the same (a timeout after the write).
                    self.give_back(&entry.subject(), &holder).await;
                    failed = Some(error);
                }
            }
        }
        if let Some(error) = failed {
            for (subject, _) in &to_send {
                self.give_back(subject, &holder).await;
            }
            return Err(error.into());
        }
        self.hand_over(&to_send, &holder).await?;
        report.sent = to_send.len();
        tracing::info!(
            sent = report.sent,
            already_sent = report.already_sent,
            not_needed = report.not_needed,
            challenge = challenge.map(|c| c.id.as_str()),
            "reminders sent"
        );
        Ok(report)
    }

    /// One digest for `challenge`'s organizers: who still needs to act (lines that ask the
    /// person nothing are left out). At most one per challenge per period, as reminders are.
    pub async fn send_digest(
        &self,
        challenge: &ChallengeRef,
        people: &[DigestLine],
    ) -> Result<DigestOutcome, ServiceError> {
        if !self.settings.enabled {
            return Ok(DigestOutcome::Off);
        }
        let needing: Vec<DigestLine> = people.iter().filter(|l| l.action.asks_the_person()).cloned().collect();
        if needing.is_empty() {
            return Ok(DigestOutcome::NobodyToRemind);
        }
        let now = self.clock.now();
        let subject = ReminderSubject::Digest { challenge: challenge.id.clone() };
        let holder = holder();
        match self.claim(&subject, &holder, now).await? {
            ReminderClaim::SentAt(at) => Ok(DigestOutcome::AlreadySent { at }),
            ReminderClaim::Claimed => {
                let total = needing.len();
                let text = digest_text(challenge, &needing);
                let people: Vec<DigestLine> = needing.into_iter().take(DIGEST_MAX_PEOPLE).collect();
                let named = people.len();
                let event = Event::DigestDue(DigestDue { challenge: challenge.clone(), people, total, text });
                self.hand_over(&[(subject, event)], &holder).await?;
                tracing::info!(challenge = %challenge.id, people = total, "organizer digest sent");
                Ok(DigestOutcome::Sent { people: named, total })
            }
        }
    }

    fn period(&self) -> Duration {
        self.settings.period
    }

    /// The once-per-period claim; an error gives the claim back first (a timeout may come after
    /// the write), so the retry is not taken for a reminder already sent.
    async fn claim(
        &self,
        subject: &ReminderSubject,
        holder: &str,
        now: Timestamp,
    ) -> Result<ReminderClaim, ServiceError> {
        match self.reminders.claim_reminder(subject, holder, now, self.period()).await {
            Ok(claim) => Ok(claim),
            Err(error) => {
                self.give_back(subject, holder).await;
                Err(error.into())
            }
        }
    }

    /// Publishes the claimed reminders' events; a bus that refuses them gets every claim back.
    async fn hand_over(&self, claimed: &[(ReminderSubject, Event)], holder: &str) -> Result<(), ServiceError> {
        if claimed.is_empty() {
            return Ok(());
        }
        let events: Vec<Event> = claimed.iter().map(|(_, event)| event.clone()).collect();
        if let Err(error) = self.publisher.publish(&events).await {
            for (subject, _) in claimed {
                self.give_back(subject, holder).await;
            }
            return Err(ServiceError::Unavailable(format!("reminders not handed to the bus: {error}")));
        }
        Ok(())
    }

    async fn give_back(&self, subject: &ReminderSubject, holder: &str) {
        if let Err(error) = self.reminders.release_reminder(subject, holder).await {
            // The record stays until its period ends: that reminder waits for the next one.
            tracing::warn!(%error, ?subject, "a reminder's claim could not be given back");
        }
    }
}

/// Who claims, for one call: only its own claims are given back.
fn holder() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// Slack reads `&`, `<` and `>` as markup (links, and mentions such as `<!channel>` in a name a
/// person chose): escaped as its documentation asks. Other targets read them as written.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn action_words(action: Action) -> String {
    action.as_str().replace('_', " ")
}

/// One line: whom it is for, the source and the diagnosis's sentence.
fn reminder_text(entry: &ReminderEntry, challenge: Option<&ChallengeRef>) -> String {
    let mut text = format!("Reminder for {} ({}): {}", entry.user, entry.provider.display_name(), entry.message);
    if let Some(challenge) = challenge {
        text.push_str(&format!(" Challenge: {}.", challenge.name));
    }
    slack_escape(&text)
}

/// A heading, then one line per person (the first `DIGEST_TEXT_LINES`).
fn digest_text(challenge: &ChallengeRef, people: &[DigestLine]) -> String {
    let count = people.len();
    let noun = if count == 1 { "person still needs" } else { "people still need" };
    let mut text = format!("{}: {count} {noun} to act so their steps count.", challenge.name);
    for line in people.iter().take(DIGEST_TEXT_LINES) {
        let what = match line.provider {
            Some(provider) => format!("{} {}", action_words(line.action), provider.display_name()),
            None => "connect a step source".to_owned(),
        };
        text.push_str(&format!("\n• {}: {what} ({})", line.user, line.code));
    }
    if count > DIGEST_TEXT_LINES {
        text.push_str(&format!("\n… and {} more", count - DIGEST_TEXT_LINES));
    }
    slack_escape(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_for_a_chat_webhook_escapes_what_slack_reads_as_markup() {
        let challenge = ChallengeRef {
            id: crate::domain::ChallengeId::parse("winter").unwrap(),
            name: "Walk & talk <!channel>".into(),
        };
        let line = |user: &str| DigestLine {
            user: UserId::parse(user).unwrap(),
            provider: Some(Provider::GoogleHealth),
            code: DiagnosisCode::parse("token_revoked").unwrap(),
            action: Action::Reconnect,
        };
        let text = digest_text(&challenge, &[line("ann"), line("bob")]);
        assert_eq!(
            text,
            "Walk &amp; talk &lt;!channel&gt;: 2 people still need to act so their steps count.\n\
             • ann: reconnect Fitbit / Google Health (token_revoked)\n\
             • bob: reconnect Fitbit / Google Health (token_revoked)"
        );
        let many: Vec<DigestLine> = (0..DIGEST_TEXT_LINES + 3).map(|i| line(&format!("p{i}"))).collect();
        let text = digest_text(&challenge, &many);
        assert_eq!(text.lines().count(), 1 + DIGEST_TEXT_LINES + 1, "{text}");
        assert!(text.ends_with("… and 3 more"), "{text}");
    }
}
