//! A source read by upload time (Garmin): its notices become syncs of their upload windows,
//! a later upload of a day replaces an earlier one whatever order they are read in, a read
//! that may succeed later is handed back for a retry, and a sync by dates takes no day away.

use super::*;
use crate::domain::UploadWindow;
use crate::events::SyncReason;
use crate::ports::{ProviderError, StepStore, UploadNotice, WebhookMessage};
use crate::services::{IntakeAnswer, WorkerError, WorkerResult};

/// The services over one in-memory store with a scripted Garmin (source, OAuth and verifier).
struct Garmin {
    store: Arc<InMemoryStore>,
    publisher: Arc<RecordingPublisher>,
    cipher: Arc<dyn TokenCipher>,
    source: Arc<ScriptedProvider>,
    webhooks: Arc<ScriptedWebhooks>,
    intake: WebhookIntake,
    syncing: Syncing,
}

impl Garmin {
    fn new() -> Self {
        let store = Arc::new(InMemoryStore::default());
        let publisher = Arc::new(RecordingPublisher::default());
        let clock = Arc::new(FixedClock::at(NOW));
        let cipher: Arc<dyn TokenCipher> = Arc::new(AesGcmTokenCipher::new(&[7; 32]));
        let source = Arc::new(ScriptedProvider::new(Provider::Garmin, Ok(vec![])));
        let webhooks = Arc::new(ScriptedWebhooks::answering(Ok(WebhookMessage::Uploads(vec![]))));
        let providers = Providers::default()
            .with_source(source.clone())
            .with_oauth(Provider::Garmin, Arc::new(ScriptedOAuth::granting(SCOPE, "garmin-alice")))
            .with_webhooks(Provider::Garmin, webhooks.clone());
        let ports = Ports::over(store.clone(), publisher.clone(), clock);
        let Services { intake, syncing, .. } =
            Services::new(ports, cipher.clone(), providers, crate::testing::settings());
        Self { store, publisher, cipher, source, webhooks, intake, syncing }
    }

    async fn connected(&self, who: &str, account: &str) {
        let user = user(who);
        let tokens = issued_tokens("access-alice", SCOPE);
        let connection = Connection {
            provider_user_id: Some(account.to_owned()),
            tokens: Some(self.cipher.encrypt(&user, Provider::Garmin, 1, &tokens).unwrap()),
            token_version: 1,
            ..Connection::new(user.clone(), Provider::Garmin, NOW.parse().unwrap())
        };
        self.store.create_connection(&connection).await.unwrap();
        self.store.claim_provider_account(Provider::Garmin, account, &user).await.unwrap();
    }

    async fn steps(&self, who: &str, day: &str) -> Option<u32> {
        let days = self.store.load_user_days(&user(who), &[date(day)]).await.unwrap().days;
        days.get(&date(day)).map(|d| d.total.get())
    }

    async fn read(&self, window: &UploadWindow) -> Result<WorkerResult, WorkerError> {
        let request = SyncRequested {
            upload: Some(window.clone()),
            ..SyncRequested::whole(user("alice"), Provider::Garmin, SyncReason::Webhook)
        };
        self.syncing.handle_event(Event::SyncRequested(request), None).await
    }
}

/// The five minutes of uploads starting `minutes` after NOW (before it, when negative).
fn window(minutes: i64) -> UploadWindow {
    let start = NOW.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_mins(minutes);
    UploadWindow { start, end: start + jiff::SignedDuration::from_mins(5), pull_token: Some(format!("pull-{minutes}")) }
}

/// The day's value as read from `window`: observed at its upload.
fn uploaded(day: &str, steps: i64, window: &UploadWindow) -> DailyValue {
    DailyValue { date: date(day), steps, observed_at: Some(window.end) }
}

#[tokio::test]
async fn an_upload_notice_is_one_sync_of_its_window_and_a_strangers_is_none() {
    let w = Garmin::new();
    w.connected("alice", "garmin-alice").await;
    let notices = vec![
        UploadNotice { account_id: "garmin-alice".into(), window: Some(window(0)) },
        UploadNotice { account_id: "garmin-stranger".into(), window: Some(window(0)) },
        UploadNotice { account_id: "garmin-alice".into(), window: None },
    ];
    w.webhooks.answer(Ok(WebhookMessage::Uploads(notices)));

    let answer = w.intake.receive_request(Provider::Garmin, "POST", "token=t", &[], b"{}").await.unwrap();

    assert_eq!(answer, IntakeAnswer::Accepted { notices: 3, syncs: 2 });
    let requests: Vec<SyncRequested> = w
        .publisher
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SyncRequested(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.user == user("alice") && r.reason == SyncReason::Webhook));
    assert_eq!(requests[0].upload, Some(window(0)), "the window, pull token and all");
    assert_eq!((requests[1].upload.as_ref(), requests[1].start), (None, None), "a grant notice: the default window");
}

#[tokio::test]
async fn a_later_upload_replaces_an_earlier_one_in_whichever_order_they_are_read() {
    let w = Garmin::new();
    w.connected("alice", "garmin-alice").await;
    let (first, correction) = (window(0), window(30));
    w.source.answer_uploads([
        Ok(vec![uploaded("2026-11-25", 4_000, &correction)]),
        Ok(vec![uploaded("2026-11-25", 5_005, &first)]),
    ]);

    // The correction's notice is read first, then the first upload's (late, or replayed).
    assert!(matches!(w.read(&correction).await.unwrap(), WorkerResult::Synced { changed: 1, .. }));
    assert!(matches!(w.read(&first).await.unwrap(), WorkerResult::Synced { changed: 0, .. }));

    assert_eq!(w.steps("alice", "2026-11-25").await, Some(4_000), "never the older upload, never a sum");
    assert_eq!(*w.source.upload_windows.lock().unwrap(), [correction, first]);
}

#[tokio::test]
async fn a_sync_by_dates_asks_again_and_takes_no_day_away() {
    let w = Garmin::new();
    w.connected("alice", "garmin-alice").await;
    // Uploaded two hours before the sweep: a pull by dates starting later would count its
    // absence as a deletion.
    let earlier = window(-120);
    w.source.answer_uploads([Ok(vec![uploaded("2026-11-25", 7_700, &earlier)])]);
    w.read(&earlier).await.unwrap();
    assert_eq!(w.steps("alice", "2026-11-25").await, Some(7_700));

    // The sweep's sync of the last days: the source asks for them to be delivered again and
    // answers nothing now (as Garmin's backfill does).
    let sweep = Event::SyncRequested(SyncRequested::whole(user("alice"), Provider::Garmin, SyncReason::Schedule));
    assert!(matches!(w.syncing.handle_event(sweep, None).await.unwrap(), WorkerResult::Synced { .. }));

    assert_eq!(*w.source.calls.lock().unwrap(), 1, "the days were asked for");
    assert_eq!(w.steps("alice", "2026-11-25").await, Some(7_700), "a day the answer lacks is not gone");
}

#[tokio::test]
async fn a_window_the_source_could_not_serve_is_handed_back_and_a_refused_one_is_not() {
    let w = Garmin::new();
    w.connected("alice", "garmin-alice").await;
    w.source.answer_uploads([
        Err(ProviderError::Unavailable("down".into())),
        Err(ProviderError::BadRequest("a pull token for another window".into())),
    ]);

    assert!(matches!(w.read(&window(0)).await, Err(WorkerError::Retryable(_))), "read again on the retry");
    assert!(matches!(w.read(&window(0)).await, Ok(WorkerResult::Failed { .. })), "the same again would fail");
}
