//! Reminders on the in-memory store: one per person, source and diagnosis per period whatever
//! the bus and the connection do (redelivery, flapping, concurrent deliveries), none for a
//! change that asks nothing of the person, a new one once the period has passed, and nothing
//! at all, read or written, while no delivery target is configured.

use super::*;
use crate::diagnosis::Action;
use crate::domain::{ConnectionStatus, DiagnosisCode, FailureCode, LastError};
use crate::events::{ChallengeRef, DigestDue, DigestLine, ReminderDue};
use crate::ports::{ProviderError, ReminderSubject, StoreError, SyncRecord};
use crate::services::nudges::{DIGEST_MAX_PEOPLE, NudgeSettings, Nudges, ReminderEntry};
use crate::services::{DigestOutcome, NudgeError, NudgeOutcome, RemindersReport};
use crate::testing::Refusable;

const DAY: Duration = Duration::from_secs(24 * 3600);

impl World {
    /// The reminders use case over this world, its delivery target on or off, a day's period.
    fn nudges(&self, enabled: bool) -> Nudges<'_> {
        Nudges {
            connections: self.ports.connections.as_ref(),
            reminders: self.ports.reminders.as_ref(),
            publisher: self.ports.publisher.as_ref(),
            clock: self.ports.clock.as_ref(),
            settings: NudgeSettings { enabled, period: DAY },
        }
    }

    /// The connection's status set as a sync would leave it (with `error` recorded), and the
    /// event that announces the move.
    async fn moved(
        &self,
        user: &UserId,
        provider: Provider,
        to: ConnectionStatus,
        error: Option<FailureCode>,
    ) -> ConnectionStatusChanged {
        let before = self.connection(user, provider).await.expect("a connection").status;
        let record = SyncRecord {
            attempted_at: Some(self.now()),
            status: Some(to),
            last_error: Some(error.map(|code| LastError { code, message: "recorded".into() })),
            ..SyncRecord::default()
        };
        self.store.record_sync(user, provider, &record).await.unwrap();
        ConnectionStatusChanged {
            user: user.clone(),
            provider,
            old_status: before,
            new_status: to,
            reason: error.map_or("connected", FailureCode::as_str).to_owned(),
            action: "what the sync said".into(),
        }
    }

    fn reminders_due(&self) -> Vec<ReminderDue> {
        let events = self.publisher.events().into_iter();
        events.filter_map(|e| if let Event::ReminderDue(r) = e { Some(r) } else { None }).collect()
    }

    fn digests_due(&self) -> Vec<DigestDue> {
        let events = self.publisher.events().into_iter();
        events.filter_map(|e| if let Event::DigestDue(d) = e { Some(d) } else { None }).collect()
    }
}

fn code(raw: &str) -> DiagnosisCode {
    DiagnosisCode::parse(raw).unwrap()
}

fn sent(raw: &str) -> NudgeOutcome {
    NudgeOutcome::Sent { code: code(raw) }
}

/// Given a revoked Google grant found by a real sync, the status change it published becomes
/// one reminder carrying the diagnosis the status answer shows: its code, its action and its
/// sentence, since the event's time, with a one-line text for a chat webhook.
#[tokio::test]
async fn a_revoked_grant_found_by_a_sync_becomes_one_reminder_with_its_diagnosis() {
    let w = World::new();
    let alice = user("alice");
    let connection = w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    *w.google.answer.lock().unwrap() = Err(ProviderError::ReconnectRequired { reason: "invalid_grant".into() });
    w.syncing.sync_connection(&connection, None, None).await.unwrap();
    let changes = w.status_changes();
    assert_eq!(changes.len(), 1, "the sync announced the move");
    let at = w.now() - jiff::SignedDuration::from_secs(5);

    let outcome = w.nudges(true).on_status_changed(&changes[0], Some(at)).await.unwrap();

    assert_eq!(outcome, sent("token_revoked"));
    let reminders = w.reminders_due();
    assert_eq!(reminders.len(), 1);
    let reminder = &reminders[0];
    let shown = w.status().connections(&alice).await.unwrap();
    let diagnosis = &shown[0].diagnosis;
    assert_eq!((reminder.code.as_str(), reminder.action), (diagnosis.code, diagnosis.action));
    assert_eq!(reminder.message, diagnosis.message);
    assert_eq!((&reminder.user, reminder.provider, reminder.since), (&alice, Provider::GoogleHealth, Some(at)));
    assert_eq!(
        reminder.text,
        "Reminder for alice (Fitbit / Google Health): Fitbit / Google Health access was revoked or expired. \
         Reconnect Fitbit / Google Health to keep your steps syncing."
    );
    assert_eq!(reminder.challenge, None);
    let subject =
        ReminderSubject::Person { user: alice, provider: Provider::GoogleHealth, code: code("token_revoked") };
    assert_eq!(w.store.reminders(), [(subject, w.now())], "one record: when it was sent");
}

/// The same event delivered three times (EventBridge delivers at least once): one reminder,
/// and the later deliveries say when it went out.
#[tokio::test]
async fn a_redelivered_event_is_one_reminder() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let change = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::MissingPermission),
        )
        .await;
    let first = w.now();
    let nudges = w.nudges(true);

    assert_eq!(nudges.on_status_changed(&change, None).await.unwrap(), sent("missing_permission"));
    w.clock.advance(Duration::from_secs(90));
    for _ in 0..2 {
        let again = nudges.on_status_changed(&change, None).await.unwrap();
        assert_eq!(again, NudgeOutcome::AlreadySent { code: code("missing_permission"), at: first });
    }
    assert_eq!(w.reminders_due().len(), 1);
    assert_eq!(w.reminders_due()[0].action, Action::GrantPermission);
}

/// A connection flapping between active and reconnect_required twenty times in a day is one
/// reminder in that day (the moves back to active ask nothing); a minute before the period ends
/// still none; once it has passed, the next move is reminded again, once.
#[tokio::test]
async fn a_flapping_connection_is_reminded_once_per_period_and_again_after_it() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let nudges = w.nudges(true);
    let flap = |times: usize| {
        let (w, alice, nudges) = (&w, &alice, &nudges);
        async move {
            let mut outcomes = Vec::new();
            for _ in 0..times {
                let broke = w
                    .moved(
                        alice,
                        Provider::GoogleHealth,
                        ConnectionStatus::ReconnectRequired,
                        Some(FailureCode::ReconnectRequired),
                    )
                    .await;
                outcomes.push(nudges.on_status_changed(&broke, None).await.unwrap());
                w.clock.advance(Duration::from_secs(30 * 60));
                let healed = w.moved(alice, Provider::GoogleHealth, ConnectionStatus::Active, None).await;
                let back = nudges.on_status_changed(&healed, None).await.unwrap();
                assert_eq!(back, NudgeOutcome::NotNeeded { why: "the connection moved to active".into() });
                w.clock.advance(Duration::from_secs(30 * 60));
            }
            outcomes
        }
    };
    let start = w.now();

    let day_one = flap(20).await;
    assert_eq!(day_one[0], sent("token_revoked"));
    assert!(
        day_one[1..].iter().all(|o| *o == NudgeOutcome::AlreadySent { code: code("token_revoked"), at: start }),
        "{day_one:?}"
    );
    assert_eq!(w.reminders_due().len(), 1, "twenty breaks in twenty hours: one reminder");

    w.clock.set(start + jiff::SignedDuration::from_hours(24) - jiff::SignedDuration::from_mins(1));
    assert!(matches!(flap(1).await[..], [NudgeOutcome::AlreadySent { .. }]), "a minute before the period ends");
    assert_eq!(w.reminders_due().len(), 1);

    w.clock.set(start + jiff::SignedDuration::from_hours(24));
    assert_eq!(flap(3).await[0], sent("token_revoked"), "the period has passed");
    assert_eq!(w.reminders_due().len(), 2, "one more, for the new period");
}

/// Eight deliveries of the same change at once: one conditional write decides, one reminder.
#[tokio::test]
async fn concurrent_deliveries_send_one_reminder() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let change = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::ReconnectRequired),
        )
        .await;
    let nudges = w.nudges(true);

    let outcomes = futures::future::join_all((0..8).map(|_| nudges.on_status_changed(&change, None))).await;

    let sent_count = outcomes.iter().filter(|o| matches!(o, Ok(NudgeOutcome::Sent { .. }))).count();
    let already = outcomes.iter().filter(|o| matches!(o, Ok(NudgeOutcome::AlreadySent { .. }))).count();
    assert_eq!((sent_count, already), (1, 7));
    assert_eq!(w.reminders_due().len(), 1);
}

/// Back to healthy, a disconnect the person chose, Fitbit replaced by Google, and a connection
/// that recovered before its event was handled: no reminder, no record.
#[tokio::test]
async fn a_change_that_asks_nothing_of_the_person_sends_nothing() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let nudges = w.nudges(true);
    let broke = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::ReconnectRequired),
        )
        .await;
    let healed = w.moved(&alice, Provider::GoogleHealth, ConnectionStatus::Active, None).await;
    let chosen = ConnectionStatusChanged {
        new_status: ConnectionStatus::Disconnected,
        reason: "disconnected".into(),
        ..healed.clone()
    };
    let replaced = ConnectionStatusChanged {
        provider: Provider::Fitbit,
        new_status: ConnectionStatus::Disconnected,
        reason: "replaced_by_google_health".into(),
        ..healed.clone()
    };

    assert_eq!(
        nudges.on_status_changed(&healed, None).await.unwrap(),
        NudgeOutcome::NotNeeded { why: "the connection moved to active".into() }
    );
    for disconnect in [&chosen, &replaced] {
        assert_eq!(
            nudges.on_status_changed(disconnect, None).await.unwrap(),
            NudgeOutcome::NotNeeded { why: "the connection moved to disconnected".into() }
        );
    }
    assert_eq!(
        nudges.on_status_changed(&broke, None).await.unwrap(),
        NudgeOutcome::NotNeeded { why: "the connection is active again".into() },
        "recovered before its event was handled"
    );
    let stranger = ConnectionStatusChanged { user: user("nobody"), ..broke.clone() };
    assert_eq!(
        nudges.on_status_changed(&stranger, None).await.unwrap(),
        NudgeOutcome::NotNeeded { why: "no such connection".into() }
    );
    assert!(w.reminders_due().is_empty());
    assert!(w.store.reminders().is_empty());
}

/// Two diagnoses of one connection are two reminders: a revoked grant, then (reconnected
/// without the activity permission) a missing permission, within the same day.
#[tokio::test]
async fn each_diagnosis_has_its_own_period() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let nudges = w.nudges(true);
    let revoked = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::ReconnectRequired),
        )
        .await;
    assert_eq!(nudges.on_status_changed(&revoked, None).await.unwrap(), sent("token_revoked"));
    w.moved(&alice, Provider::GoogleHealth, ConnectionStatus::Active, None).await;
    let missing = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::MissingPermission),
        )
        .await;
    assert_eq!(nudges.on_status_changed(&missing, None).await.unwrap(), sent("missing_permission"));
    let codes: Vec<String> = w.reminders_due().iter().map(|r| r.code.to_string()).collect();
    assert_eq!(codes, ["token_revoked", "missing_permission"]);
}

/// With no delivery target configured: a status change, "send reminders now" and a digest all
/// send nothing, and nothing is read or written (not a claim, not a record).
#[tokio::test]
async fn a_disabled_target_sends_nothing_and_writes_nothing() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let change = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::ReconnectRequired),
        )
        .await;
    let writes = w.store.writes();
    let published = w.publisher.events().len();
    let nudges = w.nudges(false);
    assert!(!nudges.enabled());
    // Were anything read, this refusal would be met and fail the call.
    w.store.refuse_next(Refusable::ClaimReminder, StoreError::Unavailable("must not be asked".into()));

    assert_eq!(nudges.on_status_changed(&change, None).await.unwrap(), NudgeOutcome::Off);
    let entry = ReminderEntry {
        user: alice.clone(),
        provider: Provider::GoogleHealth,
        code: code("token_revoked"),
        action: Action::Reconnect,
        message: "Reconnect.".into(),
        since: None,
    };
    let report = nudges.remind(&[entry], None).await.unwrap();
    assert_eq!(report, RemindersReport { off: true, ..RemindersReport::default() });
    let challenge = ChallengeRef { id: ChallengeId::parse("winter").unwrap(), name: "Winter walk".into() };
    let line = DigestLine {
        user: alice,
        provider: Some(Provider::GoogleHealth),
        code: code("token_revoked"),
        action: Action::Reconnect,
    };
    assert_eq!(nudges.send_digest(&challenge, &[line]).await.unwrap(), DigestOutcome::Off);

    assert_eq!(w.publisher.events().len(), published, "nothing sent");
    assert_eq!(w.store.writes(), writes, "nothing written");
    assert!(w.store.reminders().is_empty());
}

/// The bus refuses the reminder: the claim is given back and the event fails (Lambda retries
/// it); the retry sends the reminder. A claim the store refused is retried the same way.
#[tokio::test]
async fn a_reminder_the_bus_or_the_store_refused_is_sent_by_the_retry() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let change = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::ReconnectRequired),
        )
        .await;
    let nudges = w.nudges(true);

    w.publisher.fail(true);
    let refused = nudges.on_status_changed(&change, None).await;
    assert!(matches!(refused, Err(NudgeError::Retryable(_))), "{refused:?}");
    assert!(w.store.reminders().is_empty(), "the claim was given back");
    w.publisher.fail(false);
    w.store.refuse_next(Refusable::ClaimReminder, StoreError::Unavailable("ThrottlingException".into()));
    assert!(matches!(nudges.on_status_changed(&change, None).await, Err(NudgeError::Retryable(_))));

    assert_eq!(nudges.on_status_changed(&change, None).await.unwrap(), sent("token_revoked"));
    assert_eq!(w.reminders_due().len(), 1);
}

/// "Send reminders now" for a challenge: each person who must act is reminded once per
/// period, whoever asked first (a status change earlier, or the same person twice in the list);
/// people who only wait are never reminded. Asking again the same day sends nothing.
#[tokio::test]
async fn reminders_now_follow_the_same_once_per_period_rule() {
    let w = World::new();
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    w.connected(&bob, Provider::GoogleHealth, "g-bob").await;
    let change = w
        .moved(&bob, Provider::GoogleHealth, ConnectionStatus::ReconnectRequired, Some(FailureCode::MissingPermission))
        .await;
    let nudges = w.nudges(true);
    nudges.on_status_changed(&change, None).await.unwrap();
    let entry = |who: &UserId, raw: &str, action: Action| ReminderEntry {
        user: who.clone(),
        provider: Provider::GoogleHealth,
        code: code(raw),
        action,
        message: format!("{raw}: do something"),
        since: Some(w.now() - jiff::SignedDuration::from_hours(30)),
    };
    let entries = [
        entry(&alice, "token_revoked", Action::Reconnect),
        entry(&bob, "missing_permission", Action::GrantPermission),
        entry(&carol, "rate_limited", Action::Wait),
        entry(&alice, "token_revoked", Action::Reconnect),
    ];
    let challenge = ChallengeRef { id: ChallengeId::parse("winter").unwrap(), name: "Winter walk".into() };
    w.clock.advance(Duration::from_secs(3600));

    let report = nudges.remind(&entries, Some(&challenge)).await.unwrap();

    assert_eq!(report, RemindersReport { sent: 1, already_sent: 2, not_needed: 1, off: false });
    let reminders = w.reminders_due();
    assert_eq!(reminders.len(), 2, "bob's from the status change, alice's now");
    let alices = &reminders[1];
    assert_eq!((&alices.user, alices.code.as_str()), (&alice, "token_revoked"));
    assert_eq!(alices.challenge.as_ref(), Some(&challenge));
    assert_eq!(alices.since, entries[0].since);
    assert_eq!(
        alices.text,
        "Reminder for alice (Fitbit / Google Health): token_revoked: do something Challenge: Winter walk."
    );

    let again = nudges.remind(&entries, Some(&challenge)).await.unwrap();
    assert_eq!(again, RemindersReport { sent: 0, already_sent: 3, not_needed: 1, off: false });
    assert_eq!(w.reminders_due().len(), 2);
}

/// One organizer digest per challenge per period, naming who must act (not who waits); after
/// the period, another. A list with nobody to act sends none; a long one names the first 500
/// and counts everyone.
#[tokio::test]
async fn one_organizer_digest_per_challenge_per_period() {
    let w = World::new();
    let nudges = w.nudges(true);
    let challenge = ChallengeRef { id: ChallengeId::parse("winter").unwrap(), name: "Winter walk".into() };
    let line = |who: &str, raw: &str, action: Action| DigestLine {
        user: user(who),
        provider: Some(Provider::GoogleHealth),
        code: code(raw),
        action,
    };
    let people = [
        line("alice", "token_revoked", Action::Reconnect),
        line("carol", "rate_limited", Action::Wait),
        line("dave", "phone_silent", Action::GrantPermission),
    ];
    let first = w.now();

    assert_eq!(nudges.send_digest(&challenge, &people).await.unwrap(), DigestOutcome::Sent { people: 2, total: 2 });
    w.clock.advance(Duration::from_secs(3600));
    assert_eq!(nudges.send_digest(&challenge, &people).await.unwrap(), DigestOutcome::AlreadySent { at: first });
    let digests = w.digests_due();
    assert_eq!(digests.len(), 1);
    let who: Vec<&str> = digests[0].people.iter().map(|l| l.user.as_str()).collect();
    assert_eq!(who, ["alice", "dave"]);
    assert_eq!(digests[0].challenge, challenge);
    assert_eq!(
        digests[0].text,
        "Winter walk: 2 people still need to act so their steps count.\n\
         • alice: reconnect Fitbit / Google Health (token_revoked)\n\
         • dave: grant permission Fitbit / Google Health (phone_silent)"
    );
    let other = ChallengeRef { id: ChallengeId::parse("spring").unwrap(), name: "Spring walk".into() };
    assert_eq!(nudges.send_digest(&other, &people[1..2]).await.unwrap(), DigestOutcome::NobodyToRemind);

    w.clock.advance(DAY);
    let crowd: Vec<DigestLine> =
        (0..DIGEST_MAX_PEOPLE + 100).map(|i| line(&format!("p{i}"), "token_revoked", Action::Reconnect)).collect();
    let outcome = nudges.send_digest(&challenge, &crowd).await.unwrap();
    assert_eq!(outcome, DigestOutcome::Sent { people: DIGEST_MAX_PEOPLE, total: DIGEST_MAX_PEOPLE + 100 });
    let latest = w.digests_due().pop().unwrap();
    assert_eq!((latest.people.len(), latest.total), (DIGEST_MAX_PEOPLE, DIGEST_MAX_PEOPLE + 100));
}

/// A person's reminder records are theirs: erasing them erases the records too.
#[tokio::test]
async fn erasing_a_person_erases_their_reminder_records() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;
    let change = w
        .moved(
            &alice,
            Provider::GoogleHealth,
            ConnectionStatus::ReconnectRequired,
            Some(FailureCode::ReconnectRequired),
        )
        .await;
    w.nudges(true).on_status_changed(&change, None).await.unwrap();
    assert_eq!(w.store.reminders().len(), 1);

    w.erasure().erase(&alice, false, &alice).await.unwrap();

    assert!(w.store.reminders().is_empty());
}

/// The daily run reminds the people of a challenge whose grace period ends within two days,
/// and digests them for its organizers; a challenge still running, or already final, is left
/// alone, and a second run inside the window sends nothing more.
#[tokio::test]
async fn the_daily_run_reminds_only_the_challenges_about_to_close() {
    use crate::services::Reminding;
    let w = World::new();
    let closing = w.challenge_with_grace("closing", "2026-11-01", "2026-11-24", 2).await;
    let running = w.challenge("running", "2026-11-20", "2026-12-20").await;
    let revoked = user("revoked");
    let connection = Connection {
        status: ConnectionStatus::ReconnectRequired,
        last_error: Some(LastError { code: FailureCode::ReconnectRequired, message: String::new() }),
        ..Connection::new(revoked.clone(), Provider::Misfit, w.now())
    };
    w.store.create_connection(&connection).await.unwrap();
    for id in [&closing, &running] {
        w.challenges().join(id, &revoked, w.now()).await.unwrap();
    }
    let reminding = |enabled| Reminding { organizer: w.organizer(), nudges: w.nudges(enabled) };

    assert!(reminding(false).before_close(w.now()).await.unwrap().is_empty(), "no target: nothing");
    assert!(w.publisher.events().is_empty());

    let done = reminding(true).before_close(w.now()).await.unwrap();
    assert_eq!(done.iter().map(|d| &d.challenge_id).collect::<Vec<_>>(), [&closing]);
    assert_eq!((done[0].people.sent, done[0].digest.clone()), (1, DigestOutcome::Sent { people: 1, total: 1 }));
    let reminders = w.reminders_due();
    assert_eq!(reminders.len(), 1);
    assert_eq!((&reminders[0].user, reminders[0].provider), (&revoked, Provider::Misfit));
    assert_eq!(reminders[0].challenge.as_ref().map(|c| &c.id), Some(&closing));
    assert_eq!(w.digests_due().len(), 1);

    // The next day's run, still before the close: nothing more within the period.
    w.clock.advance(Duration::from_secs(20 * 3600));
    let again = reminding(true).before_close(w.now()).await.unwrap();
    assert_eq!((again[0].people.already_sent, again[0].people.sent), (1, 0));
    assert_eq!((w.reminders_due().len(), w.digests_due().len()), (1, 1));
    // Once it is final, never again.
    w.clock.advance(Duration::from_secs(3 * 24 * 3600));
    assert!(reminding(true).before_close(w.now()).await.unwrap().iter().all(|d| d.challenge_id != closing));
}
