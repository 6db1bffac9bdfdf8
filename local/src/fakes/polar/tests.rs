//! The fake Polar's own tests, over HTTP: consent and tokens, registration, the activity
//! summaries and their limits, the rate limits, the webhook against a receiver on loopback,
//! signed notices checked against the Python fixtures, and StepSync's own Polar client driven
//! against the fake end to end.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use reqwest::Url;
use serde_json::{Value, json};
use stepsync::clock::SystemClock;
use stepsync::domain::{Connection, LocalDate, Provider, UserId};
use stepsync::ports::{AuthorizeRequest, OAuthClient, Revoker, StepSource, SubscriptionKeeper, WebhookVerifier};
use stepsync::providers::polar::{PolarClient, PolarSettings, PolarWebhookKeeper, PolarWebhooks};
use stepsync::providers::quota::AppQuota;
use stepsync::testing::InMemoryStore;

use super::super::test_support::{self, http, query_param, receiver, sorted_keys};
use super::*;

const REDIRECT: &str = "http://127.0.0.1:9/polar/callback";
const PERSON: u64 = SANDBOX_PEOPLE[0];

fn fixture(name: &str) -> Vec<u8> {
    test_support::fixture("polar", name)
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn authorize_url(fake: &FakePolar) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", SCOPE_READ_ALL),
        ("state", "st-42"),
    ];
    Url::parse_with_params(&fake.authorize_url(), params).unwrap().to_string()
}

async fn exchange(fake: &FakePolar, code: &str, secret: &str) -> (u16, Value) {
    let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)];
    let response =
        http().post(fake.token_url()).basic_auth(DEFAULT_CLIENT_ID, Some(secret)).form(&form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A request's status, headers and body (JSON, a string, or null when empty).
async fn read(request: reqwest::RequestBuilder) -> (u16, HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.text().await.unwrap();
    let body = if body.is_empty() { Value::Null } else { serde_json::from_str(&body).unwrap_or(Value::String(body)) };
    (status, headers, body)
}

fn api(fake: &FakePolar, path: &str) -> String {
    format!("{}{path}", fake.base_url())
}

fn client_auth(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
}

// --- consent and tokens ---

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<FakePolar>();
}

#[tokio::test]
async fn consent_gives_a_single_use_code_whose_token_names_the_person_and_has_no_refresh_token() {
    let fake = FakePolar::start().await;
    let url = authorize_url(&fake);
    let query = Url::parse(&url).unwrap().query().unwrap().to_owned();
    let picker = http().get(format!("{}?{query}", fake.authorize_url())).send().await.unwrap().text().await.unwrap();
    for id in SANDBOX_PEOPLE {
        assert!(picker.contains(&format!(r#"data-user-id="{id}""#)), "{picker}");
    }
    let page = http().get(format!("{}?{query}&login_hint={PERSON}", fake.authorize_url())).send().await;
    let page = page.unwrap().text().await.unwrap();
    assert!(page.contains(r#"id="approve""#) && page.contains(r#"id="deny""#), "{page}");

    let person = PERSON.to_string();
    let form = [
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", SCOPE_READ_ALL),
        ("state", "st-42"),
        ("login_hint", person.as_str()),
        ("decision", "approve"),
    ];
    let response = http().post(api(&fake, CONSENT_PATH)).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-42"));
    let code = query_param(&location, "code").unwrap();

    let (status, body) = exchange(&fake, &code, "wrong").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, token) = exchange(&fake, &code, DEFAULT_CLIENT_SECRET).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(sorted_keys(&token), sorted_keys(&fixture_json("token.json")));
    assert_eq!((token["x_user_id"].as_u64(), token["token_type"].as_str()), (Some(PERSON), Some("bearer")));
    assert!(token.get("refresh_token").is_none());
    let (status, body) = exchange(&fake, &code, DEFAULT_CLIENT_SECRET).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "a code is single-use");

    let refresh = [("grant_type", "refresh_token"), ("refresh_token", "anything")];
    let refused = client_auth(http().post(fake.token_url())).form(&refresh).send().await.unwrap();
    assert_eq!(refused.status(), 400, "Polar has no refresh grant");
    assert_eq!(fake.deny(&url), format!("{REDIRECT}?error=access_denied&state=st-42"));
    assert_eq!(
        (fake.calls("token"), fake.requests_this_quarter_hour()),
        (4, 4),
        "the consent page is not the client's"
    );
}

// --- users ---

#[tokio::test]
async fn registration_is_needed_to_read_and_is_refused_twice_without_consents_or_for_a_taken_member_id() {
    let fake = FakePolar::start().await;
    let token = fake.grant_token(PERSON);
    let register = |token: String, member: &str| {
        let request = http().post(api(&fake, USERS_PATH)).bearer_auth(token).json(&json!({ "member-id": member }));
        read(request)
    };
    let activities = api(&fake, ACTIVITIES_PATH);
    assert_eq!(read(http().get(&activities).bearer_auth(&token)).await.0, 404, "not registered yet");

    fake.set_consents_accepted(PERSON, false);
    assert_eq!(register(token.clone(), "m-1").await.0, 403);
    fake.set_consents_accepted(PERSON, true);
    let (status, _, user) = register(token.clone(), "m-1").await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(sorted_keys(&user), sorted_keys(&fixture_json("user.json")));
    assert_eq!((user["polar-user-id"].as_u64(), user["member-id"].as_str()), (Some(PERSON), Some("m-1")));
    let (status, _, body) = register(token.clone(), "m-1").await;
    assert_eq!(status, 409);
    assert_eq!(sorted_keys(&body), sorted_keys(&fixture_json("error_409.json")));
    let other = fake.grant_token(SANDBOX_PEOPLE[1]);
    assert_eq!(register(other, "m-1").await.0, 409, "a member id names one person");
    assert_eq!(fake.member_id(PERSON).as_deref(), Some("m-1"));
    assert_eq!(read(http().get(&activities).bearer_auth(&token)).await.0, 200);

    let me = api(&fake, &format!("{USERS_PATH}/{PERSON}"));
    assert_eq!(read(http().get(&me).bearer_auth(&token)).await.0, 200);
    let someone = api(&fake, &format!("{USERS_PATH}/{}", SANDBOX_PEOPLE[1]));
    assert_eq!(read(http().delete(&someone).bearer_auth(&token)).await.0, 403, "only one's own registration");
    assert_eq!(read(http().delete(&me).bearer_auth(&token)).await.0, 204);
    assert_eq!(fake.member_id(PERSON), None);
    assert_eq!(read(http().get(&activities).bearer_auth(&token)).await.0, 401, "deregistering revokes the token");
    assert_eq!((fake.calls("register"), fake.calls("deregister")), (4, 2));
}

// --- activity summaries ---

#[tokio::test]
async fn activity_summaries_come_in_the_fixtures_shape_both_dates_included_within_28_days_and_a_year() {
    let fake = FakePolar::start().await;
    let token = fake.grant_registered(PERSON, "m-1");
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let day = |back: i64| today.checked_sub(jiff::Span::new().days(back)).unwrap();
    for (back, steps) in [(40, 1), (10, 10234), (9, 3987), (8, 0), (7, 500)] {
        fake.seed_steps(PERSON, day(back), steps);
    }
    let get =
        |query: String| read(http().get(format!("{}{ACTIVITIES_PATH}{query}", fake.base_url())).bearer_auth(&token));
    let (status, _, list) = get(format!("?from={}&to={}", day(10), day(8))).await;
    assert_eq!(status, 200, "{list}");
    let model = &fixture_json("activities.json")[0];
    let days: Vec<(String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(sorted_keys(s), sorted_keys(model), "the fixture's fields");
            (s["start_time"].as_str().unwrap()[..10].to_owned(), s["steps"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(days, [(day(10).to_string(), 10234), (day(9).to_string(), 3987), (day(8).to_string(), 0)]);

    let (_, _, recent) = get(String::new()).await;
    assert_eq!(recent.as_array().unwrap().len(), 4, "without dates, the last 28 days");
    assert_eq!(get(format!("?from={}&to={}", day(27), day(0))).await.0, 200, "28 days");
    assert_eq!(get(format!("?from={}&to={}", day(28), day(0))).await.0, 400, "29 days");
    assert_eq!(get(format!("?from={}&to={}", day(366), day(360))).await.0, 400, "older than a year");
    assert_eq!(get(format!("?from={}&to={}", day(8), day(10))).await.0, 400, "reversed");
    assert_eq!(get("?from=soon".to_owned()).await.0, 400);

    let one =
        |d: jiff::civil::Date| read(http().get(api(&fake, &format!("{ACTIVITIES_PATH}/{d}"))).bearer_auth(&token));
    let (status, _, summary) = one(day(7)).await;
    assert_eq!((status, summary["steps"].as_u64()), (200, Some(500)));
    assert_eq!(one(day(6)).await.0, 204, "no summary that day");
    assert!(fake.delete_day(PERSON, day(7)));
    assert_eq!(one(day(7)).await.0, 204);

    fake.set_consents_accepted(PERSON, false);
    assert_eq!(get(String::new()).await.0, 403);
    fake.set_consents_accepted(PERSON, true);
    fake.fail_next(FaultTarget::Api, Fault::ConsentsMissing, 1);
    assert_eq!(get(String::new()).await.0, 403);
    assert_eq!(get(String::new()).await.0, 200);
    assert_eq!(read(http().get(api(&fake, ACTIVITIES_PATH)).bearer_auth("made-up")).await.0, 401);
}

// --- rate limits ---

#[tokio::test]
async fn over_the_clients_quarter_hour_limit_every_request_gets_429_and_registered_users_raise_it() {
    let fake = FakePolar::start().await;
    fake.set_rate_limit_bases(3, 5000);
    assert_eq!(fake.rate_limits(), (3, 5000));
    let token = fake.grant_registered(PERSON, "m-1");
    assert_eq!(fake.rate_limits(), (23, 5100), "500 + users × 20 and 5000 + users × 100, scaled");
    fake.set_rate_limit_bases(0, 5000);
    let mut statuses = Vec::new();
    for _ in 0..22 {
        let (status, headers, body) = read(http().get(api(&fake, ACTIVITIES_PATH)).bearer_auth(&token)).await;
        if status == 429 {
            assert_eq!(sorted_keys(&body), sorted_keys(&fixture_json("error_429.json")));
            assert_eq!(headers["ratelimit-limit"], "20");
            let reset: u64 = headers["ratelimit-reset"].to_str().unwrap().parse().unwrap();
            assert!((1..=900).contains(&reset));
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20);
    assert_eq!(statuses[20..], [429, 429]);
    assert_eq!((fake.max_requests_in_any_quarter_hour(), fake.requests_today()), (22, 22));
    fake.reset_requests();
    assert_eq!(read(http().get(api(&fake, ACTIVITIES_PATH)).bearer_auth(&token)).await.0, 200);
}

// --- the webhook ---

#[tokio::test]
async fn the_webhook_is_created_behind_a_signed_ping_shows_its_key_once_and_is_one_per_client() {
    let fake = FakePolar::start().await;
    let hook = receiver(|_, _| 200).await;
    let body = json!({ "events": [ACTIVITY_SUMMARY], "url": hook.url });
    let (status, _, created) = read(client_auth(http().post(api(&fake, WEBHOOKS_PATH))).json(&body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(sorted_keys(&created["data"]), sorted_keys(&fixture_json("webhook_created.json")["data"]));
    let key = created["data"]["signature_secret_key"].as_str().unwrap().to_owned();
    let ping = &hook.requests()[0];
    assert_eq!(ping.headers[EVENT_HEADER], PING);
    assert_eq!(
        ping.headers[SIGNATURE_HEADER].to_str().unwrap(),
        signature(&key, &ping.body),
        "signed with the new key"
    );
    let sent: Value = serde_json::from_slice(&ping.body).unwrap();
    assert_eq!(sorted_keys(&sent), sorted_keys(&fixture_json("ping.json")));

    let (status, _, listed) = read(client_auth(http().get(api(&fake, WEBHOOKS_PATH)))).await;
    assert_eq!(status, 200);
    assert_eq!(sorted_keys(&listed["data"][0]), sorted_keys(&fixture_json("webhook_list.json")["data"][0]));
    assert!(listed["data"][0].get("signature_secret_key").is_none(), "the key is shown once");
    assert_eq!(read(client_auth(http().post(api(&fake, WEBHOOKS_PATH))).json(&body)).await.0, 409);
    assert_eq!(read(http().get(api(&fake, WEBHOOKS_PATH))).await.0, 401, "client credentials are required");

    let refusing = receiver(|_, _| 500).await;
    fake.server.lock().webhook = None;
    let body = json!({ "events": [ACTIVITY_SUMMARY], "url": refusing.url });
    assert_eq!(read(client_auth(http().post(api(&fake, WEBHOOKS_PATH))).json(&body)).await.0, 400);
    assert!(fake.webhook().is_none(), "a URL that fails the PING gets no webhook");
    assert_eq!(fake.calls("webhook_create"), 3);
}

#[tokio::test]
async fn a_switched_off_webhook_is_listed_inactive_delivers_nothing_and_is_activated_behind_a_ping() {
    let fake = FakePolar::start().await;
    let answer_500 = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = answer_500.clone();
    let hook = receiver(move |_, _| if flag.load(std::sync::atomic::Ordering::SeqCst) { 500 } else { 200 }).await;
    fake.create_webhook_unverified(&hook.url);
    fake.grant_registered(PERSON, "m-1");
    fake.deactivate_webhook();
    let (_, _, listed) = read(client_auth(http().get(api(&fake, WEBHOOKS_PATH)))).await;
    assert_eq!(listed["data"][0]["active"], false);
    assert!(fake.set_steps(PERSON, "2026-11-23", 10).await.is_empty(), "an inactive webhook delivers nothing");

    answer_500.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(read(client_auth(http().post(api(&fake, WEBHOOK_ACTIVATE_PATH)))).await.0, 400);
    answer_500.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(read(client_auth(http().post(api(&fake, WEBHOOK_ACTIVATE_PATH)))).await.0, 200);
    assert!(fake.webhook().unwrap().active);
    assert_eq!(fake.set_steps(PERSON, "2026-11-23", 11).await.len(), 1);

    let id = fake.webhook().unwrap().id;
    let one = api(&fake, &format!("{WEBHOOKS_PATH}/{id}"));
    let patched =
        read(client_auth(http().patch(&one)).json(&json!({ "events": ["EXERCISE", ACTIVITY_SUMMARY] }))).await;
    assert_eq!((patched.0, patched.2["data"][0]["events"].as_array().unwrap().len()), (200, 2));
    assert_eq!(read(client_auth(http().delete(&one))).await.0, 204);
    assert_eq!(read(client_auth(http().delete(&one))).await.0, 404);
    assert_eq!(read(client_auth(http().post(api(&fake, WEBHOOK_ACTIVATE_PATH)))).await.0, 204, "nothing to activate");
    fake.fail_next(FaultTarget::Webhook, Fault::RateLimited { reset: 60 }, 1);
    assert_eq!(read(client_auth(http().get(api(&fake, WEBHOOKS_PATH)))).await.0, 429);
}

#[tokio::test]
async fn a_changed_day_of_a_registered_person_is_notified_signed_and_unchanged_ones_are_not() {
    let fake = FakePolar::start().await;
    let hook = receiver(|_, _| 200).await;
    let key = fake.create_webhook_unverified(&hook.url);
    assert!(fake.set_steps(PERSON, "2026-11-23", 4000).await.is_empty(), "not registered: nothing sent");
    fake.grant_registered(PERSON, "m-1");
    let changed = fake.set_steps(PERSON, "2026-11-23", 4100).await;
    let unchanged = fake.set_steps(PERSON, "2026-11-23", 4100).await;
    assert_eq!((changed.len(), unchanged.len()), (1, 0));
    assert!(!fake.delete_day(PERSON, "2026-11-22") && fake.delete_day(PERSON, "2026-11-23"));
    let posts = hook.requests();
    assert_eq!(posts.len(), 1, "deleting a day sends nothing");
    assert!(changed[0].delivered());
    assert_eq!(posts[0].headers[SIGNATURE_HEADER].to_str().unwrap(), signature(&key, &posts[0].body));
    assert_eq!(posts[0].headers[EVENT_HEADER], ACTIVITY_SUMMARY);
    let notice: Value = serde_json::from_slice(&posts[0].body).unwrap();
    let model: Value = fixture_json("notification_activity_summary.json");
    assert_eq!(
        notice.as_object().unwrap().keys().collect::<Vec<_>>(),
        model.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_eq!((notice["user_id"].as_u64(), notice["date"].as_str()), (Some(PERSON), Some("2026-11-23")));
    assert_eq!(fake.deliveries().len(), 1);
}

#[tokio::test]
async fn the_fake_signs_the_fixture_notice_to_the_fixture_signature() {
    let body = fixture("notification_activity_summary.json");
    let expected = String::from_utf8(fixture("notification_activity_summary.signature")).unwrap();
    let key = fixture_json("webhook_created.json")["data"]["signature_secret_key"].as_str().unwrap().to_owned();
    assert_eq!(signature(&key, &body), expected);
    let fields: Value = serde_json::from_slice(&body).unwrap();
    let notice = Notification {
        user_id: fields["user_id"].as_u64().unwrap(),
        date: fields["date"].as_str().unwrap().to_owned(),
        timestamp: fields["timestamp"].as_str().unwrap().to_owned(),
        url: fields["url"].as_str().unwrap().to_owned(),
    };
    assert_eq!(notice.body(), body, "the fixture's bytes exactly");
    let mut tampered = body.clone();
    tampered[3] ^= 1;
    assert_ne!(signature(&key, &tampered), expected);
    assert_ne!(signature("another-key", &body), expected);
}

// --- StepSync's client against the fake ---

fn settings(fake: &FakePolar, callback: &str) -> PolarSettings {
    let mut settings =
        PolarSettings::new(DEFAULT_CLIENT_ID, secrecy::SecretString::from(DEFAULT_CLIENT_SECRET), callback.to_owned());
    settings.auth_url = fake.authorize_url();
    settings.token_url = fake.token_url();
    settings.api_base = fake.base_url().to_owned();
    settings
}

#[tokio::test]
async fn stepsyncs_client_connects_reads_verifies_keeps_and_disconnects_against_the_fake() {
    let fake = FakePolar::start().await;
    let hook = receiver(|_, _| 200).await;
    let mut settings = settings(&fake, &hook.url);
    let clock: Arc<dyn stepsync::clock::Clock> = Arc::new(SystemClock);
    let store = Arc::new(InMemoryStore::default());
    let quota = AppQuota::new("quota#polar", settings.quota.clone(), store, clock.clone());
    let client = PolarClient::new(settings.clone(), quota.clone(), clock.clone()).unwrap();

    let request =
        AuthorizeRequest { state: "st-1".into(), code_challenge: String::new(), redirect_uri: REDIRECT.into() };
    let location = fake.approve(&client.authorize_url(&request).unwrap(), PERSON);
    let tokens = client.exchange_code(&query_param(&location, "code").unwrap(), "", REDIRECT).await.unwrap();
    let identity = client.identity(&tokens).await.unwrap();
    assert_eq!(identity.account_id, PERSON.to_string());
    client.connected(&tokens, &identity).await.unwrap();
    client.connected(&tokens, &identity).await.unwrap();
    assert!(fake.member_id(PERSON).is_some_and(|m| m.len() == 32));

    let today = LocalDate::from_date(jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date());
    fake.seed_steps(PERSON, today.add_days(-40).date(), 777);
    fake.seed_steps(PERSON, today.add_days(-2).date(), 9000);
    let connection = Connection::new(UserId::parse("walker").unwrap(), Provider::Polar, jiff::Timestamp::now());
    let values = client.daily_steps(&connection, Some(&tokens), today.add_days(-59), today).await.unwrap();
    let got: Vec<(LocalDate, i64)> = values.iter().map(|v| (v.date, v.steps)).collect();
    assert_eq!(got, [(today.add_days(-40), 777), (today.add_days(-2), 9000)]);
    assert_eq!(fake.calls("activities"), 3, "sixty days in 28-day requests");

    let keeper = PolarWebhookKeeper::new(&settings, quota.clone()).unwrap();
    let states = keeper.keep(jiff::Timestamp::now()).await.unwrap();
    assert!(states[0].id.is_none() && states[0].note.starts_with("missing"), "{states:?}");
    let key = fake.create_webhook_unverified(&hook.url);
    fake.deactivate_webhook();
    let states = keeper.keep(jiff::Timestamp::now()).await.unwrap();
    assert_eq!(states[0].note, "reactivated");
    assert!(fake.webhook().unwrap().active);

    settings.webhook_secret = Some(secrecy::SecretString::from(key));
    let verifier = PolarWebhooks::new(&settings, clock.clone()).unwrap();
    let delivered = fake.set_steps(PERSON, today.add_days(-1).date(), 1234).await;
    let headers: Vec<(String, String)> =
        delivered[0].sent.headers().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let message = verifier.verify("POST", &headers, &delivered[0].sent.body).await.unwrap();
    let stepsync::ports::WebhookMessage::Notices(notices) = message else { panic!("expected notices") };
    assert_eq!(
        (notices[0].account_id.as_str(), notices[0].dates.as_slice()),
        (PERSON.to_string().as_str(), [today.add_days(-1)].as_slice())
    );

    client.revoke_account(&tokens, Some(&identity.account_id)).await.unwrap();
    assert_eq!(fake.member_id(PERSON), None);
    let refused = client.daily_steps(&connection, Some(&tokens), today, today).await.unwrap_err();
    assert!(matches!(refused, stepsync::ports::ProviderError::Unauthorized), "{refused:?}");
}
