//! Connecting: the consent redirect, every way a callback can end, reconnecting, the legacy
//! Fitbit hand-over, the backfill window and disconnecting.

use super::*;
use crate::domain::ConnectionStatus;
use crate::events::SyncReason;
use crate::ports::{EphemeralStore, ProviderError, StoreError};
use crate::services::{Callback, CallbackQuery, ConsentStart};
use crate::testing::Refusable;
use crate::testing::SCRIPTED_ISSUER;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

const REDIRECT_URI: &str = "http://127.0.0.1:3000/oauth/google_health/callback";

/// Given: alice started connecting Google Health (her app opened the start link; a state is
/// stored and her browser holds its cookie).
async fn started(w: &World) -> ConsentStart {
    started_as(w, &user("alice")).await
}

async fn started_as(w: &World, who: &UserId) -> ConsentStart {
    let link = w.connecting.authorize(who, Provider::GoogleHealth, None).await.unwrap();
    w.connecting.start(Provider::GoogleHealth, Some(ticket_in(&link.url))).await.unwrap()
}

fn ticket_in(url: &str) -> &str {
    url.split_once("?ticket=").expect("a start link with a ticket").1
}

/// When: the same browser comes back with `code`.
async fn comes_back(w: &World, start: &ConsentStart, code: &str) -> Result<Callback, ServiceError> {
    comes_back_with(w, start, Some(code), None).await
}

/// When: the same browser comes back with what the provider put in the query.
async fn comes_back_with(
    w: &World,
    start: &ConsentStart,
    code: Option<&str>,
    error: Option<&str>,
) -> Result<Callback, ServiceError> {
    let query = CallbackQuery { state: Some(&start.state_id), cookie: Some(&start.state_id), code, error, iss: None };
    w.connecting.callback(Provider::GoogleHealth, query).await
}

/// Then: alice has no Google connection and nothing was announced.
async fn nothing_connected(w: &World) {
    assert_eq!(w.connection(&user("alice"), Provider::GoogleHealth).await, None);
    assert_eq!(w.publisher.events(), []);
}

fn sent_back(key: &'static str, value: &str) -> Callback {
    Callback { return_to: HOME.into(), key, value: value.into() }
}

fn challenge_in(location: &str) -> &str {
    let (_, rest) = location.split_once("code_challenge=").expect("a PKCE challenge");
    rest.split('&').next().unwrap()
}

#[tokio::test]
async fn authorize_answers_a_one_time_start_link_bound_to_the_person_for_a_minute() {
    let w = World::new();
    let alice = user("alice");

    let link = w.connecting.authorize(&alice, Provider::GoogleHealth, None).await.unwrap();

    assert!(link.url.starts_with("http://127.0.0.1:3000/oauth/google_health/start?ticket="), "{}", link.url);
    assert_eq!(link.expires_at, "2026-11-25T18:01:00Z".parse::<Timestamp>().unwrap());
    let ticket = ticket_in(&link.url);
    assert!(ticket.len() >= 43, "32 random bytes");
    let consent = w.connecting.start(Provider::GoogleHealth, Some(ticket)).await.unwrap();
    let state = w.store.take_oauth_state(&consent.state_id).await.unwrap().expect("a consent state");
    assert_eq!((state.user, state.provider), (alice, Provider::GoogleHealth), "bound to the person who asked");
    let again = w.connecting.start(Provider::GoogleHealth, Some(ticket)).await;
    assert_eq!(
        refused(again),
        r#"Invalid { field: "ticket", message: "is unknown, used or expired; start connecting again from the app" }"#,
        "single use"
    );
}

#[tokio::test]
async fn a_start_link_is_refused_when_expired_missing_for_another_provider_or_used_as_a_state() {
    let w = World::new();
    let alice = user("alice");
    let unusable =
        r#"Invalid { field: "ticket", message: "is unknown, used or expired; start connecting again from the app" }"#;

    let late = w.connecting.authorize(&alice, Provider::GoogleHealth, None).await.unwrap();
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(refused(w.connecting.start(Provider::GoogleHealth, Some(ticket_in(&late.url))).await), unusable);

    assert_eq!(
        refused(w.connecting.start(Provider::GoogleHealth, None).await),
        r#"Invalid { field: "ticket", message: "is missing" }"#
    );
    assert_eq!(
        refused(w.connecting.start(Provider::GoogleHealth, Some("")).await),
        r#"Invalid { field: "ticket", message: "is missing" }"#
    );

    let elsewhere = w.connecting.authorize(&alice, Provider::GoogleHealth, None).await.unwrap();
    assert_eq!(
        refused(w.connecting.start(Provider::Misfit, Some(ticket_in(&elsewhere.url))).await),
        r#"NotFound("an OAuth connection for misfit")"#
    );

    // A ticket is not a consent state: sent straight to the callback (cookie and all), it is refused.
    let ticket = w.connecting.authorize(&alice, Provider::GoogleHealth, None).await.unwrap();
    let id = ticket_in(&ticket.url);
    let query = CallbackQuery { state: Some(id), cookie: Some(id), code: Some("code-1"), error: None, iss: None };
    assert_eq!(
        refused(w.connecting.callback(Provider::GoogleHealth, query).await),
        r#"Invalid { field: "state", message: "is unknown or was already used; start connecting again" }"#
    );
    nothing_connected(&w).await;
}

#[tokio::test]
async fn starting_stores_a_single_use_state_and_sends_to_consent_with_an_s256_challenge() {
    let w = World::new();

    let start = started(&w).await;

    assert!(start.location.starts_with(&format!("https://consent.test/authorize?state={}&", start.state_id)));
    assert!(start.location.contains("&code_challenge_method=S256&"), "{}", start.location);
    assert!(start.location.ends_with(&format!("redirect_uri={REDIRECT_URI}")), "{}", start.location);
    let state = w.store.take_oauth_state(&start.state_id).await.unwrap().expect("the state is stored");
    assert_eq!((state.user, state.provider, state.return_to.as_str()), (user("alice"), Provider::GoogleHealth, HOME));
    assert_eq!(state.expires_at, "2026-11-25T18:10:00Z".parse::<Timestamp>().unwrap(), "ten minutes to consent");
    let verifier = state.verifier.expose_secret();
    assert_eq!(challenge_in(&start.location), URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())));
    assert_ne!(started(&w).await.state_id, start.state_id, "every start has its own state");
}

#[tokio::test]
async fn a_return_address_is_kept_only_when_it_is_on_the_allow_list() {
    let w = World::new();
    let alice = user("alice");

    let allowed = w.connecting.authorize(&alice, Provider::GoogleHealth, Some("stepsync://connected")).await.unwrap();
    let elsewhere = w.connecting.authorize(&alice, Provider::GoogleHealth, Some("https://evil.test/")).await;

    let state = w.store.take_oauth_state(ticket_in(&allowed.url)).await.unwrap().unwrap();
    assert_eq!(state.return_to, "stepsync://connected");
    assert_eq!(refused(elsewhere), r#"Invalid { field: "return_to", message: "is not an allowed return address" }"#);
}

#[tokio::test]
async fn a_source_without_oauth_cannot_be_connected() {
    let w = World::new();

    let authorize = w.connecting.authorize(&user("alice"), Provider::Misfit, None).await;
    let callback = w.connecting.callback(Provider::Misfit, CallbackQuery::default()).await;

    assert_eq!(refused(authorize), r#"NotFound("an OAuth connection for misfit")"#);
    assert_eq!(refused(callback), r#"NotFound("an OAuth connection for misfit")"#);
}

#[tokio::test]
async fn a_callback_connects_with_encrypted_tokens_claims_the_account_and_asks_for_a_backfill() {
    let w = World::new();
    let alice = user("alice");
    let start = started(&w).await;

    let answer = comes_back(&w, &start, "code-1").await.unwrap();

    assert_eq!(answer, sent_back("connected", "google_health"));
    let exchange = &w.oauth.exchanges()[0];
    assert_eq!((exchange.code.as_str(), exchange.redirect_uri.as_str()), ("code-1", REDIRECT_URI));
    assert_eq!(challenge_in(&start.location), URL_SAFE_NO_PAD.encode(Sha256::digest(exchange.verifier.as_bytes())));
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active);
    assert_eq!(connection.provider_user_id.as_deref(), Some("g-alice"));
    assert_eq!((connection.token_version, connection.next_sync_at), (1, Some(w.now())));
    let sealed = connection.tokens.expect("tokens are stored");
    assert!(!sealed.0.contains("access-1"), "stored encrypted, never in clear");
    let tokens = w.cipher.decrypt(&alice, Provider::GoogleHealth, 1, &sealed).unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "access-1");
    assert_eq!(w.owner(Provider::GoogleHealth, "g-alice").await, Some(alice.clone()));
    assert_eq!(
        w.publisher.events(),
        [
            Event::ConnectionStatusChanged(ConnectionStatusChanged {
                user: alice.clone(),
                provider: Provider::GoogleHealth,
                old_status: ConnectionStatus::Disconnected,
                new_status: ConnectionStatus::Active,
                reason: "connected".into(),
                action: "None.".into(),
            }),
            // Not in any challenge: the last 30 days, to local tomorrow in the zones ahead of UTC.
            Event::SyncRequested(SyncRequested {
                user: alice,
                provider: Provider::GoogleHealth,
                reason: SyncReason::Connect,
                start: Some(date("2026-10-28")),
                end: Some(date("2026-11-26")),
                noticed_at: None,
                notice_id: None,
                upload: None,
            }),
        ]
    );
}

#[tokio::test]
async fn a_callback_without_a_state_or_from_another_browser_is_refused_and_the_state_survives() {
    let w = World::new();
    let start = started(&w).await;
    let code = Some("code-1");

    let missing = w.connecting.callback(Provider::GoogleHealth, CallbackQuery { code, ..Default::default() }).await;
    let empty = CallbackQuery { state: Some(""), cookie: Some(""), code, error: None, iss: None };
    let empty = w.connecting.callback(Provider::GoogleHealth, empty).await;
    let foreign =
        CallbackQuery { state: Some(&start.state_id), cookie: Some("someone-else"), code, error: None, iss: None };
    let foreign = w.connecting.callback(Provider::GoogleHealth, foreign).await;
    let no_cookie = CallbackQuery { state: Some(&start.state_id), cookie: None, code, error: None, iss: None };
    let no_cookie = w.connecting.callback(Provider::GoogleHealth, no_cookie).await;

    assert_eq!(refused(missing), r#"Invalid { field: "state", message: "is missing" }"#);
    assert_eq!(refused(empty), r#"Invalid { field: "state", message: "is missing" }"#);
    let not_yours = r#"Invalid { field: "state", message: "does not belong to this browser; start connecting again" }"#;
    assert_eq!(refused(foreign), not_yours);
    assert_eq!(refused(no_cookie), not_yours);
    assert!(w.oauth.exchanges().is_empty(), "no code was exchanged");
    assert_eq!(comes_back(&w, &start, "code-1").await.unwrap(), sent_back("connected", "google_health"));
}

#[tokio::test]
async fn a_state_is_used_once() {
    let w = World::new();
    let start = started(&w).await;
    comes_back(&w, &start, "code-1").await.unwrap();

    let replay = comes_back(&w, &start, "code-1").await;

    assert_eq!(
        refused(replay),
        r#"Invalid { field: "state", message: "is unknown or was already used; start connecting again" }"#
    );
    assert_eq!(w.oauth.exchanges().len(), 1);
}

/// RFC 9207: a response naming another issuer than the provider's came from somewhere else
/// (a mix-up attack): its code is never exchanged, the state is used up. The provider's own
/// issuer, or none (a provider that sends none), connects.
#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused_before_any_exchange() {
    fn with_iss<'a>(start: &'a ConsentStart, iss: Option<&'a str>) -> CallbackQuery<'a> {
        CallbackQuery {
            state: Some(&start.state_id),
            cookie: Some(&start.state_id),
            code: Some("code-1"),
            error: None,
            iss,
        }
    }
    let w = World::new();
    let start = started(&w).await;

    let mixed_up = w.connecting.callback(Provider::GoogleHealth, with_iss(&start, Some("https://evil.test"))).await;

    assert_eq!(mixed_up.unwrap(), sent_back("error", "provider_error"));
    assert_eq!(w.oauth.exchanges().len(), 0, "no code was exchanged");
    nothing_connected(&w).await;
    let ours = started(&w).await;
    let answer = w.connecting.callback(Provider::GoogleHealth, with_iss(&ours, Some(SCRIPTED_ISSUER))).await;
    assert_eq!(answer.unwrap(), sent_back("connected", "google_health"));
}

#[tokio::test]
async fn a_state_expires_after_ten_minutes() {
    let w = World::new();
    let (fresh, late) = (started(&w).await, started(&w).await);

    w.clock.advance(Duration::from_secs(599));
    let in_time = comes_back(&w, &fresh, "code-1").await.unwrap();
    w.clock.advance(Duration::from_secs(1));
    let expired = comes_back(&w, &late, "code-2").await;

    assert_eq!(in_time, sent_back("connected", "google_health"));
    assert_eq!(refused(expired), r#"Invalid { field: "state", message: "has expired; start connecting again" }"#);
    assert_eq!(w.oauth.exchanges().len(), 1, "the late code was never exchanged");
}

#[tokio::test]
async fn a_person_who_refuses_consent_is_sent_back_with_access_denied() {
    let w = World::new();
    let (denied, failed) = (started(&w).await, started(&w).await);

    let denied = comes_back_with(&w, &denied, None, Some("access_denied")).await.unwrap();
    let failed = comes_back_with(&w, &failed, None, Some("server_error")).await.unwrap();

    assert_eq!(denied, sent_back("error", "access_denied"));
    assert_eq!(failed, sent_back("error", "provider_error"));
    assert!(w.oauth.exchanges().is_empty());
    nothing_connected(&w).await;
}

#[tokio::test]
async fn a_callback_without_a_code_is_sent_back_with_missing_code() {
    let w = World::new();
    let (empty, absent) = (started(&w).await, started(&w).await);

    let empty = comes_back(&w, &empty, "").await.unwrap();
    let absent = comes_back_with(&w, &absent, None, None).await.unwrap();

    assert_eq!((empty, absent), (sent_back("error", "missing_code"), sent_back("error", "missing_code")));
    assert!(w.oauth.exchanges().is_empty());
}

#[tokio::test]
async fn a_failed_code_exchange_is_a_provider_error_and_connects_nothing() {
    let w = World::new();
    w.oauth.answer_exchange(Err(ProviderError::Unavailable("token endpoint down".into())));
    let start = started(&w).await;

    let answer = comes_back(&w, &start, "code-1").await.unwrap();

    assert_eq!(answer, sent_back("error", "provider_error"));
    assert_eq!(w.owner(Provider::GoogleHealth, "g-alice").await, None);
    nothing_connected(&w).await;
}

#[tokio::test]
async fn a_grant_without_the_required_scope_is_revoked_and_asks_for_permission() {
    let w = World::new();
    w.oauth.answer_exchange(Ok(issued_tokens("access-narrow", "profile")));
    let start = started(&w).await;

    let answer = comes_back(&w, &start, "code-1").await.unwrap();

    assert_eq!(answer, sent_back("error", "missing_permission"));
    assert_eq!(w.revoker.revoked(), ["access-narrow"]);
    assert_eq!(w.owner(Provider::GoogleHealth, "g-alice").await, None);
    nothing_connected(&w).await;
}

#[tokio::test]
async fn an_account_connected_to_someone_else_is_refused_and_the_grant_revoked() {
    let w = World::new();
    let bob = user("bob");
    w.connected(&bob, Provider::GoogleHealth, "g-alice").await;
    let start = started(&w).await;

    let answer = comes_back(&w, &start, "code-1").await.unwrap();

    assert_eq!(answer, sent_back("error", "account_in_use"));
    assert_eq!(w.revoker.revoked(), ["access-1"]);
    assert_eq!(w.owner(Provider::GoogleHealth, "g-alice").await, Some(bob));
    nothing_connected(&w).await;
}

#[tokio::test]
async fn reconnecting_with_another_account_frees_the_old_one() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-old").await;
    let start = started(&w).await;

    let answer = comes_back(&w, &start, "code-1").await.unwrap();

    assert_eq!(answer, sent_back("connected", "google_health"));
    assert_eq!(w.owner(Provider::GoogleHealth, "g-old").await, None);
    assert_eq!(w.owner(Provider::GoogleHealth, "g-alice").await, Some(alice.clone()));
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!((connection.provider_user_id.as_deref(), connection.token_version), (Some("g-alice"), 2));
    assert_eq!(w.status_changes(), [], "it was active already");
    assert_eq!(w.sync_requests().len(), 1);
}

#[tokio::test]
async fn connecting_the_same_fitbit_through_google_retires_the_legacy_connection() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::Fitbit, "fb-123").await;
    w.oauth.answer_identity("g-alice", Some("fb-123"));
    let start = started(&w).await;

    comes_back(&w, &start, "code-1").await.unwrap();

    let legacy = w.connection(&alice, Provider::Fitbit).await.unwrap();
    assert_eq!((legacy.status, legacy.tokens), (ConnectionStatus::Disconnected, None));
    assert_eq!(w.owner(Provider::Fitbit, "fb-123").await, None);
    let retired = ConnectionStatusChanged {
        user: alice.clone(),
        provider: Provider::Fitbit,
        old_status: ConnectionStatus::Active,
        new_status: ConnectionStatus::Disconnected,
        reason: "replaced_by_google_health".into(),
        action: "None: Fitbit now syncs through Google.".into(),
    };
    let changes = w.status_changes();
    assert_eq!(changes.iter().map(|c| c.provider).collect::<Vec<_>>(), [Provider::GoogleHealth, Provider::Fitbit]);
    assert_eq!(changes[1], retired);
}

#[tokio::test]
async fn a_legacy_fitbit_account_of_someone_else_is_left_alone() {
    let w = World::new();
    let bob = user("bob");
    w.connected(&bob, Provider::Fitbit, "fb-123").await;
    w.oauth.answer_identity("g-alice", Some("fb-123"));
    let start = started(&w).await;

    comes_back(&w, &start, "code-1").await.unwrap();

    assert_eq!(w.connection(&bob, Provider::Fitbit).await.unwrap().status, ConnectionStatus::Active);
    assert_eq!(w.owner(Provider::Fitbit, "fb-123").await, Some(bob));
    assert_eq!(w.status_changes().len(), 1, "only alice's Google connection changed");
}

#[tokio::test]
async fn the_backfill_covers_the_open_challenges_up_to_tomorrow_else_the_configured_days() {
    let w = World::new();
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    let since_october = w.challenge("since-october", "2026-10-20", "2026-11-20").await;
    let next_year = w.challenge("next-year", "2027-01-01", "2027-01-31").await;
    let summer = w.challenge_with_grace("summer", "2026-07-01", "2026-08-31", 0).await;
    for id in [&november, &since_october, &next_year] {
        w.join(id, &alice).await;
    }
    w.join(&since_october, &carol).await;
    // Joined while open; final now (its window closed months ago).
    w.clock.set("2026-08-15T00:00:00Z".parse().unwrap());
    w.join(&summer, &bob).await;
    w.clock.set(NOW.parse().unwrap());

    let in_challenges = w.connecting.backfill_window(&alice, w.now()).await.unwrap();
    let in_grace = w.connecting.backfill_window(&carol, w.now()).await.unwrap();
    let only_final = w.connecting.backfill_window(&bob, w.now()).await.unwrap();

    assert_eq!(in_challenges, (date("2026-10-20"), date("2026-11-26")), "upcoming ones wait for their start");
    assert_eq!(in_grace, (date("2026-10-20"), date("2026-11-20")));
    assert_eq!(only_final, (date("2026-10-28"), date("2026-11-26")), "the last 30 days");
}

#[tokio::test]
async fn disconnecting_revokes_the_grant_frees_the_account_and_keeps_the_history() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-alice").await;

    w.connecting.disconnect(&alice, Provider::GoogleHealth).await.unwrap();

    assert_eq!(w.revoker.revoked(), ["access-alice"]);
    let connection = w.connection(&alice, Provider::GoogleHealth).await.expect("the history stays");
    assert_eq!((connection.status, connection.tokens), (ConnectionStatus::Disconnected, None));
    assert_eq!(w.owner(Provider::GoogleHealth, "g-alice").await, None);
    assert_eq!(
        w.status_changes(),
        [ConnectionStatusChanged {
            user: alice.clone(),
            provider: Provider::GoogleHealth,
            old_status: ConnectionStatus::Active,
            new_status: ConnectionStatus::Disconnected,
            reason: "disconnected".into(),
            action: "None.".into(),
        }]
    );

    w.connecting.disconnect(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(w.status_changes().len(), 1, "disconnecting again changes nothing");
}

#[tokio::test]
async fn disconnecting_what_was_never_connected_is_not_found() {
    let w = World::new();

    let answer = w.connecting.disconnect(&user("alice"), Provider::GoogleHealth).await;

    assert_eq!(refused(answer), r#"NotFound("a google_health connection")"#);
    assert!(w.revoker.revoked().is_empty());
}

/// Alice's Google account counted Nov 20 and 24 for her. She disconnects, and Bob connects the
/// same account: neither his backfill nor any later sync reaches a day that may have counted
/// for Alice (through the release day's tomorrow where the date is latest on Earth: she may
/// have sent her local tomorrow); the days after it are his.
#[tokio::test]
async fn an_account_passed_on_never_counts_the_previous_holders_days_again() {
    let walked = ["2026-11-20", "2026-11-24", "2026-11-27", "2026-11-28"].map(|d| steps(d, 5000)).to_vec();
    let w = World::with(
        ScriptedProvider::new(Provider::GoogleHealth, Ok(walked)),
        ScriptedOAuth::granting(SCOPE, "g-shared"),
    );
    let (alice, bob) = (user("alice"), user("bob"));
    w.connected(&alice, Provider::GoogleHealth, "g-shared").await;
    let sync = |who: &UserId| {
        let event = Event::SyncRequested(SyncRequested {
            user: who.clone(),
            provider: Provider::GoogleHealth,
            reason: SyncReason::Schedule,
            start: Some(date("2026-11-01")),
            end: None,
            noticed_at: None,
            notice_id: None,
            upload: None,
        });
        w.syncing.handle_event(event, None)
    };
    sync(&alice).await.unwrap();
    assert_eq!(w.store.day(&alice, date("2026-11-24")).map(|d| d.total.get()), Some(5000));
    w.connecting.disconnect(&alice, Provider::GoogleHealth).await.unwrap();

    // Nov 25, 18:00 UTC is already Nov 26 at UTC+14, and Alice may have sent her local
    // tomorrow: released through Nov 27, Bob counts from Nov 28.
    let start = started_as(&w, &bob).await;
    let query = CallbackQuery {
        state: Some(&start.state_id),
        cookie: Some(&start.state_id),
        code: Some("code-b"),
        error: None,
        iss: None,
    };
    assert_eq!(w.connecting.callback(Provider::GoogleHealth, query).await.unwrap().key, "connected");
    let bobs = w.connection(&bob, Provider::GoogleHealth).await.unwrap();
    assert_eq!(bobs.counts_from, Some(date("2026-11-28")));
    for request in w.sync_requests().into_iter().filter(|r| r.user == bob) {
        w.syncing.handle_event(Event::SyncRequested(request), None).await.unwrap();
    }
    sync(&bob).await.unwrap();
    assert_eq!(w.store.day(&bob, date("2026-11-20")), None);
    assert_eq!(w.store.day(&bob, date("2026-11-24")), None);

    w.clock.set(w.now() + jiff::SignedDuration::from_hours(72));
    sync(&bob).await.unwrap();
    assert_eq!(w.store.day(&bob, date("2026-11-28")).map(|d| d.total.get()), Some(5000));
    assert_eq!(w.store.day(&bob, date("2026-11-27")), None, "Alice's local tomorrow at the release");
    assert_eq!(w.store.day(&bob, date("2026-11-24")), None, "still never Alice's days");
    assert_eq!(w.store.day(&alice, date("2026-11-24")).map(|d| d.total.get()), Some(5000), "hers stay");
}

/// Reconnecting with another account frees the old one only once the new connection is
/// saved: when the save loses a race, the person keeps the account they had.
#[tokio::test]
async fn a_reconnect_that_fails_to_save_keeps_the_old_account() {
    let w = World::new();
    let alice = user("alice");
    w.connected(&alice, Provider::GoogleHealth, "g-old").await;
    let start = started(&w).await;
    w.store.refuse_next(Refusable::SaveConnection, StoreError::Unavailable("throttled".into()));

    let answer = comes_back(&w, &start, "code-1").await;

    assert_eq!(refused(answer), r#"Unavailable("the store is unavailable: throttled")"#);
    assert_eq!(w.owner(Provider::GoogleHealth, "g-old").await, Some(alice.clone()), "still hers");
    let connection = w.connection(&alice, Provider::GoogleHealth).await.unwrap();
    assert_eq!(connection.provider_user_id.as_deref(), Some("g-old"));
}
