//! The fake Oura's own tests, over HTTP: consent and tokens, daily activity and its paging,
//! the rate limits, webhook subscriptions against a callback on loopback, and notifications
//! checked against the Python fixtures.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing;
use reqwest::Url;
use serde_json::{Value, json};

use super::super::common::{pkce_s256, random_token};
use super::super::server::{Fake, FakeServer};
use super::super::test_support::{self, http, query_param, sorted_keys};
use super::*;

const REDIRECT: &str = "http://127.0.0.1:9/oura/callback";
const PERSON: &str = SANDBOX_PEOPLE[0].0;

fn fixture(name: &str) -> Vec<u8> {
    test_support::fixture("oura", name)
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn authorize_url(fake: &FakeOura, scope: &str, challenge: Option<&str>) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-42"),
    ];
    if let Some(challenge) = challenge {
        params.extend([("code_challenge", challenge), ("code_challenge_method", "S256")]);
    }
    Url::parse_with_params(&fake.authorize_url(), params).unwrap().to_string()
}

async fn post_token(fake: &FakeOura, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http().post(fake.token_url()).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn exchange(fake: &FakeOura, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    post_token(fake, &form).await
}

async fn refresh(fake: &FakeOura, refresh_token: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ];
    post_token(fake, &form).await
}

async fn get(fake: &FakeOura, path_and_query: &str, token: &str) -> (u16, HeaderMap, Value) {
    let response = http().get(format!("{}{path_and_query}", fake.base_url())).bearer_auth(token).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

fn activity(start: &str, end: &str) -> String {
    format!("{DAILY_ACTIVITY_PATH}?start_date={start}&end_date={end}")
}

// --- consent and tokens ---

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<FakeOura>();
}

#[tokio::test]
async fn the_consent_page_lists_the_sandbox_accounts_then_shows_every_scope_with_the_requested_ticked() {
    let fake = FakeOura::start().await;
    let url = authorize_url(&fake, "daily personal", None);
    let query = Url::parse(&url).unwrap().query().unwrap().to_owned();

    let picker = http().get(format!("{}{AUTHORIZE_PATH}?{query}", fake.base_url())).send().await.unwrap();
    let picker = picker.text().await.unwrap();
    for (id, _) in SANDBOX_PEOPLE {
        assert!(picker.contains(&format!(r#"data-user-id="{id}""#)), "{picker}");
    }

    let page = http().get(format!("{}{AUTHORIZE_PATH}?{query}&login_hint={PERSON}", fake.base_url())).send().await;
    let page = page.unwrap().text().await.unwrap();
    assert!(page.contains(r#"value="daily" checked"#) && page.contains(r#"value="personal" checked"#), "{page}");
    for scope in ["email", "heartrate", "workout", "tag", "session", "spo2Daily"] {
        assert!(page.contains(&format!(r#"value="{scope}" disabled"#)), "{scope}: {page}");
    }
    assert!(page.contains(r#"id="approve""#) && page.contains(r#"id="deny""#));
    assert!(page.contains(&format!(r#"action="{CONSENT_PATH}""#)));
    assert_eq!((fake.calls("authorize"), fake.requests_today()), (2, 0), "the consent page is not the app's");

    let unknown = url.replace(DEFAULT_CLIENT_ID, "someone-else");
    let query = Url::parse(&unknown).unwrap().query().unwrap().to_owned();
    let refused = http().get(format!("{}{AUTHORIZE_PATH}?{query}", fake.base_url())).send().await.unwrap();
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn consent_with_pkce_gives_a_code_whose_token_carries_the_ticked_scopes() {
    let fake = FakeOura::start().await;
    let verifier = random_token("verifier-0123456789-");
    let challenge = pkce_s256(&verifier);
    // What a browser posts from the approve form, with `email` unticked.
    let form = [
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "email personal daily"),
        ("state", "st-42"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("login_hint", PERSON),
        ("granted_scope", "personal"),
        ("granted_scope", "daily"),
        ("decision", "approve"),
    ];
    let response = http().post(format!("{}{CONSENT_PATH}", fake.base_url())).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{REDIRECT}?code=")), "{location}");
    assert_eq!(query_param(&location, "scope").as_deref(), Some("personal daily"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-42"));
    let code = query_param(&location, "code").unwrap();

    let (status, body) = exchange(&fake, &code, Some("a-wrong-verifier-that-is-long-enough-0123456789")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "PKCE mismatch");
    let (status, body) = exchange(&fake, &code, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "no verifier");

    let (status, token) = exchange(&fake, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(sorted_keys(&token), sorted_keys(&fixture_json("token.json")));
    assert_eq!((token["token_type"].as_str(), token["expires_in"].as_u64()), (Some("bearer"), Some(86_400)));
    assert_eq!(token["scope"], "personal daily");
    let (status, body) = exchange(&fake, &code, Some(&verifier)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "a code is single-use");

    let (status, _, info) = get(&fake, PERSONAL_INFO_PATH, token["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(sorted_keys(&info), sorted_keys(&fixture_json("personal_info.json")));
    assert_eq!((info["id"].as_str(), &info["email"]), (Some(PERSON), &Value::Null), "email was not granted");
    assert_eq!(info["age"], 34);
    assert_eq!((fake.calls("token"), fake.calls("personal_info")), (4, 1));
}

#[tokio::test]
async fn denying_redirects_with_access_denied_and_the_state() {
    let fake = FakeOura::start().await;
    let location = fake.deny(&authorize_url(&fake, "daily", None));
    assert_eq!(location, format!("{REDIRECT}?error=access_denied&state=st-42"));
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_and_the_old_one_is_refused_while_the_old_access_token_lives() {
    let fake = FakeOura::start().await;
    let code = query_param(&fake.approve(&authorize_url(&fake, "daily personal", None), PERSON), "code").unwrap();
    let (_, first) = exchange(&fake, &code, None).await;
    let old_access = first["access_token"].as_str().unwrap();
    let old_refresh = first["refresh_token"].as_str().unwrap();

    let (status, second) = refresh(&fake, old_refresh).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["scope"], "daily personal");

    let (status, body) = refresh(&fake, old_refresh).await;
    assert_eq!(status, 400);
    assert_eq!(sorted_keys(&body), sorted_keys(&fixture_json("token_invalid_grant.json")));
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(get(&fake, PERSONAL_INFO_PATH, old_access).await.0, 200, "the old access token still works");

    fake.expire_access_tokens(PERSON);
    let (status, _, body) = get(&fake, PERSONAL_INFO_PATH, old_access).await;
    assert_eq!(status, 401);
    assert_eq!(sorted_keys(&body), sorted_keys(&fixture_json("error_401.json")));

    // HTTP Basic instead of the body; a wrong secret is 401 invalid_client.
    let new_refresh = second["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", new_refresh)];
    let wrong =
        http().post(fake.token_url()).basic_auth(DEFAULT_CLIENT_ID, Some("wrong")).form(&form).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");
    let basic = http()
        .post(fake.token_url())
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200, "a refused client did not use the refresh token");
}

#[tokio::test]
async fn revoking_kills_the_whole_grant_and_unknown_tokens_revoke_quietly() {
    let fake = FakeOura::start().await;
    let tokens = fake.grant_tokens(PERSON, &["daily"]);
    let revoke = |token: String| {
        let url = format!("{}?access_token={token}", fake.revoke_url());
        async move { http().get(url).send().await.unwrap().status().as_u16() }
    };

    assert_eq!(revoke(tokens.access_token.clone()).await, 200);
    assert_eq!(get(&fake, PERSONAL_INFO_PATH, &tokens.access_token).await.0, 401);
    assert_eq!(refresh(&fake, &tokens.refresh_token).await.1["error"], "invalid_grant");
    assert_eq!(revoke("never-issued".to_owned()).await, 200);
    assert_eq!(fake.calls("revoke"), 2);

    let other = fake.grant_tokens(PERSON, &["daily"]);
    fake.revoke_grant(PERSON);
    assert_eq!(get(&fake, PERSONAL_INFO_PATH, &other.access_token).await.0, 401);
    assert_eq!(refresh(&fake, &other.refresh_token).await.1["error"], "invalid_grant");
}

// --- daily activity ---

#[tokio::test]
async fn daily_activity_pages_with_next_token_in_the_fixtures_shape_and_a_date_end_is_exclusive() {
    let fake = FakeOura::start().await;
    fake.set_page_size(2);
    let token = fake.grant_tokens(PERSON, &["daily"]).access_token;
    for (day, steps) in [("2026-11-20", 1), ("2026-11-21", 10234), ("2026-11-22", 3987), ("2026-11-23", 0)] {
        fake.seed_steps(PERSON, day, steps);
    }
    fake.seed_steps(PERSON, "2026-11-24", 500);

    let mut days = Vec::new();
    let mut path = activity("2026-11-21", "2026-11-24");
    let mut pages = 0;
    loop {
        let (status, _, page) = get(&fake, &path, &token).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let model = &fixture_json("daily_activity_page1.json")["data"][0];
        for doc in page["data"].as_array().unwrap() {
            let extra: Vec<String> =
                sorted_keys(doc).into_iter().filter(|k| model.get(k).is_none()).collect::<Vec<_>>();
            assert!(extra.is_empty(), "fields Oura does not send: {extra:?}");
            let day = doc["day"].as_str().unwrap().to_owned();
            assert_eq!(doc["timestamp"], format!("{day}T04:00:00+02:00"), "04:00 in Helsinki");
            assert_eq!(doc["id"].as_str().unwrap(), fake.document_id(PERSON, day.as_str()));
            days.push((day, doc["steps"].as_u64().unwrap()));
        }
        match page["next_token"].as_str() {
            Some(next) => path = format!("{}&next_token={next}", activity("2026-11-21", "2026-11-24")),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    let expected: Vec<(String, u64)> =
        [("2026-11-21", 10234), ("2026-11-22", 3987), ("2026-11-23", 0)].map(|(d, s)| (d.to_owned(), s)).into();
    assert_eq!(days, expected, "2026-11-24 is the end_date: its document is left out");

    fake.set_end_date_inclusive(true);
    let (_, _, page) = get(&fake, &activity("2026-11-24", "2026-11-24"), &token).await;
    assert_eq!(page["data"][0]["steps"], 500);

    // A correction keeps the document id.
    let id = fake.document_id(PERSON, "2026-11-24");
    fake.seed_steps(PERSON, "2026-11-24", 750);
    let (_, _, page) = get(&fake, &activity("2026-11-24", "2026-11-24"), &token).await;
    assert_eq!((page["data"][0]["id"].as_str(), &page["data"][0]["steps"]), (Some(id.as_str()), &json!(750)));
}

#[tokio::test]
async fn daily_activity_refuses_a_missing_scope_bad_dates_a_lapsed_membership_and_a_bad_token() {
    let fake = FakeOura::start().await;
    let personal_only = fake.grant_tokens(PERSON, &["personal"]).access_token;
    let (status, _, body) = get(&fake, &activity("2026-11-21", "2026-11-24"), &personal_only).await;
    assert_eq!((status, body["title"].as_str()), (401, Some("Missing Scopes")), "{body}");

    let token = fake.grant_tokens(PERSON, &["daily"]).access_token;
    let (status, _, body) = get(&fake, &activity("2026-11-24", "2026-11-21"), &token).await;
    assert_eq!((status, body["status"].as_u64()), (400, Some(400)), "reversed: {body}");
    let (status, _, body) = get(&fake, &activity("24-11-2026", "2026-11-25"), &token).await;
    assert_eq!((status, &body["detail"][0]["loc"]), (422, &json!(["query", "start_date"])), "{body}");

    fake.set_membership_active(PERSON, false);
    assert_eq!(get(&fake, &activity("2026-11-21", "2026-11-24"), &token).await.0, 403);
    assert_eq!(get(&fake, PERSONAL_INFO_PATH, &token).await.0, 403);
    fake.set_membership_active(PERSON, true);
    assert_eq!(get(&fake, &activity("2026-11-21", "2026-11-24"), &token).await.0, 200);
    assert_eq!(get(&fake, &activity("2026-11-21", "2026-11-24"), "made-up").await.0, 401);
}

// --- rate limits and faults ---

#[tokio::test]
async fn over_the_apps_per_minute_limit_every_request_gets_429_and_the_log_shows_the_minute() {
    let fake = FakeOura::start().await;
    fake.set_rate_limits(5, 5000);
    let token = fake.grant_tokens(PERSON, &["daily"]).access_token;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..7 {
        let (status, headers, body) = get(&fake, &activity("2026-11-21", "2026-11-24"), &token).await;
        if status == 429 {
            assert_eq!(sorted_keys(&body), sorted_keys(&fixture_json("error_429.json")));
            retry_after = headers.get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
        statuses.push(status);
    }
    // The minute may roll over mid-test; within one minute the first five pass.
    if fake.requests_by_minute().len() == 1 {
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
        assert_eq!(fake.max_requests_in_any_minute(), 7);
        assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)), "{retry_after:?}");
    }
    assert_eq!((fake.requests_today(), fake.calls("daily_activity")), (7, 7));
    fake.reset_requests();
    assert_eq!(fake.max_requests_in_any_minute(), 0);
}

#[tokio::test]
async fn scripted_faults_hit_their_target_in_order_then_it_recovers() {
    let fake = FakeOura::start().await;
    let token = fake.grant_tokens(PERSON, &["daily"]).access_token;
    fake.fail_next(FaultTarget::Api, Fault::RateLimited { retry_after: Some(30) }, 1);
    fake.fail_next(FaultTarget::Api, Fault::ServerError, 1);
    fake.fail_next(FaultTarget::Api, Fault::MembershipLapsed, 1);
    fake.fail_next(FaultTarget::Token, Fault::Unavailable, 1);
    let path = activity("2026-11-21", "2026-11-24");

    let (status, headers, _) = get(&fake, &path, &token).await;
    assert_eq!((status, headers[header::RETRY_AFTER].to_str().unwrap()), (429, "30"));
    assert_eq!(get(&fake, &path, &token).await.0, 500);
    assert_eq!(get(&fake, PERSONAL_INFO_PATH, &token).await.0, 403);
    assert_eq!(get(&fake, &path, &token).await.0, 200);
    assert_eq!(refresh(&fake, "whatever").await.0, 503);
}

// --- webhooks ---

/// How the test callback answers Oura's verification GET.
#[derive(Clone, Copy)]
enum Answer {
    Echo,
    WrongChallenge,
    Status(u16),
}

struct Callback {
    answer: Answer,
    verifications: Vec<Vec<(String, String)>>,
    posts: Vec<(HeaderMap, Vec<u8>)>,
}

type CallbackState = Arc<Fake<Callback>>;

async fn callback_get(State(fake): State<CallbackState>, Query(params): Query<Vec<(String, String)>>) -> Response {
    let mut callback = fake.lock();
    callback.verifications.push(params.clone());
    let challenge = params.iter().find(|(k, _)| k == "challenge").map(|(_, v)| v.clone()).unwrap_or_default();
    match callback.answer {
        Answer::Echo => Json(json!({ "challenge": challenge })).into_response(),
        Answer::WrongChallenge => Json(json!({ "challenge": "something-else" })).into_response(),
        Answer::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
    }
}

async fn callback_post(State(fake): State<CallbackState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut callback = fake.lock();
    callback.posts.push((headers, body.to_vec()));
    match callback.answer {
        Answer::Status(status) => StatusCode::from_u16(status).unwrap(),
        _ => StatusCode::OK,
    }
}

/// A subscriber's callback on loopback: `(server, callback_url)`.
async fn callback(answer: Answer) -> (FakeServer<Callback>, String) {
    let state = Callback { answer, verifications: Vec::new(), posts: Vec::new() };
    let server = FakeServer::start("test Oura callback", 0, state, |fake| {
        Router::new().route("/oura", routing::get(callback_get).post(callback_post)).with_state(fake)
    })
    .await
    .unwrap();
    let url = format!("{}/oura", server.base_url());
    (server, url)
}

fn app(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header(CLIENT_ID_HEADER, DEFAULT_CLIENT_ID).header(CLIENT_SECRET_HEADER, DEFAULT_CLIENT_SECRET)
}

async fn create(fake: &FakeOura, callback_url: &str, event_type: &str) -> (u16, Value) {
    let body = json!({
        "callback_url": callback_url,
        "verification_token": "vt-123",
        "event_type": event_type,
        "data_type": "daily_activity",
    });
    let response =
        app(http().post(format!("{}{SUBSCRIPTION_PATH}", fake.base_url()))).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_subscription_is_created_only_after_its_callback_echoes_the_challenge() {
    let fake = FakeOura::start().await;
    let (server, url) = callback(Answer::Echo).await;

    let (status, created) = create(&fake, &url, "update").await;

    assert_eq!(status, 201, "{created}");
    assert_eq!(sorted_keys(&created), sorted_keys(&fixture_json("subscription.json")));
    assert_eq!((created["event_type"].as_str(), created["data_type"].as_str()), (Some("update"), Some(DAILY_ACTIVITY)));
    let verifications = server.lock().verifications.clone();
    assert_eq!(verifications.len(), 1);
    assert!(verifications[0].contains(&("verification_token".to_owned(), "vt-123".to_owned())));
    assert!(verifications[0].iter().any(|(k, v)| k == "challenge" && !v.is_empty()));

    for answer in [Answer::WrongChallenge, Answer::Status(500)] {
        let (_bad_server, bad_url) = callback(answer).await;
        let (status, body) = create(&fake, &bad_url, "create").await;
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(fake.subscriptions().len(), 1, "failed verifications create nothing");

    let no_headers = http().get(format!("{}{SUBSCRIPTION_PATH}", fake.base_url())).send().await.unwrap();
    assert_eq!(no_headers.status(), 401);
    let wrong = http()
        .get(format!("{}{SUBSCRIPTION_PATH}", fake.base_url()))
        .header(CLIENT_ID_HEADER, DEFAULT_CLIENT_ID)
        .header(CLIENT_SECRET_HEADER, "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    assert_eq!(fake.calls("subscription_create"), 3);
}

#[tokio::test]
async fn subscriptions_are_listed_renewed_updated_and_deleted_and_expired_ones_are_listed_in_the_past() {
    let fake = FakeOura::start().await;
    let (_server, url) = callback(Answer::Echo).await;
    let (_, created) = create(&fake, &url, "create").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let base = format!("{}{SUBSCRIPTION_PATH}", fake.base_url());

    fake.expire_subscriptions();
    let listed: Value = app(http().get(&base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let expired: jiff::Timestamp = listed[0]["expiration_time"].as_str().unwrap().parse().unwrap();
    assert!(expired < jiff::Timestamp::now());

    let renewed = app(http().put(format!("{base}/renew/{id}"))).send().await.unwrap();
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    let expiration: jiff::Timestamp = renewed["expiration_time"].as_str().unwrap().parse().unwrap();
    assert!(expiration > jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24 * 89)).unwrap());
    assert_eq!(app(http().put(format!("{base}/renew/unknown"))).send().await.unwrap().status(), 404);

    let updated = app(http().put(format!("{base}/{id}")))
        .json(&json!({ "verification_token": "vt-2", "event_type": "update" }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.json::<Value>().await.unwrap()["event_type"], "update");
    let one: Value = app(http().get(format!("{base}/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["id"], id.as_str());

    assert_eq!(app(http().delete(format!("{base}/{id}"))).send().await.unwrap().status(), 204);
    assert_eq!(app(http().delete(format!("{base}/{id}"))).send().await.unwrap().status(), 404);
    assert!(fake.subscriptions().is_empty());
    let counts = ["subscription_list", "subscription_renew", "subscription_update", "subscription_delete"]
        .map(|k| fake.calls(k));
    assert_eq!(counts, [1, 2, 1, 2]);
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let timestamp = headers[TIMESTAMP_HEADER].to_str().unwrap();
    headers[SIGNATURE_HEADER].to_str().unwrap() == signature(DEFAULT_CLIENT_SECRET, timestamp, body)
}

#[tokio::test]
async fn changing_data_notifies_matching_live_subscriptions_with_signed_bodies() {
    let fake = FakeOura::start().await;
    let (server, url) = callback(Answer::Echo).await;
    for event_type in ["create", "update", "delete"] {
        assert_eq!(create(&fake, &url, event_type).await.0, 201);
    }

    let created = fake.set_steps(PERSON, "2026-11-23", 4000).await;
    let updated = fake.set_steps(PERSON, "2026-11-23", 4100).await;
    let unchanged = fake.set_steps(PERSON, "2026-11-23", 4100).await;
    let deleted = fake.delete_day(PERSON, "2026-11-23").await;

    assert_eq!((created.len(), updated.len(), unchanged.len(), deleted.len()), (1, 1, 0, 1));
    let posts = server.lock().posts.clone();
    assert_eq!(posts.len(), 3);
    let object_id = fake.document_id(PERSON, "2026-11-23");
    for ((headers, body), event_type) in posts.iter().zip(["create", "update", "delete"]) {
        assert!(verify(headers, body), "the signature verifies");
        let notice: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            sorted_keys(&notice),
            sorted_keys(&serde_json::from_slice(&fixture("notification_daily_activity.json")).unwrap())
        );
        assert_eq!(
            (notice["event_type"].as_str(), notice["object_id"].as_str(), notice["user_id"].as_str()),
            (Some(event_type), Some(object_id.as_str()), Some(PERSON))
        );
        let timestamp: i64 = headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
        assert!((timestamp - jiff::Timestamp::now().as_second()).abs() < 60);
    }
    assert!(created[0].delivered() && deleted[0].delivered());
    assert_eq!(fake.deliveries().len(), 3);

    fake.expire_subscriptions();
    assert!(fake.set_steps(PERSON, "2026-11-25", 1).await.is_empty(), "expired subscriptions deliver nothing");
    assert_eq!(server.lock().posts.len(), 3);
}

#[tokio::test]
async fn a_failing_callback_is_recorded_without_retries() {
    let fake = FakeOura::start().await;
    let (server, url) = callback(Answer::Status(503)).await;
    fake.subscribe_unverified(&url, EventType::Create, DAILY_ACTIVITY);
    let dead = fake.subscribe_unverified("http://127.0.0.1:9/nobody", EventType::Create, DAILY_ACTIVITY);

    let deliveries = fake.set_steps(PERSON, "2026-11-23", 10).await;

    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].outcome, Attempt::Status(503));
    assert!(matches!(&deliveries[1].outcome, Attempt::Failed(_)) && deliveries[1].subscription_id == dead.id);
    assert_eq!(server.lock().posts.len(), 1);
}

#[tokio::test]
async fn the_fake_signs_the_fixture_notice_to_the_fixture_signature() {
    let fake = FakeOura::start().await;
    let body = fixture("notification_daily_activity.json");
    let headers = fixture_json("notification_daily_activity.headers.json");
    let timestamp = headers[TIMESTAMP_HEADER].as_str().unwrap();
    let expected = headers[SIGNATURE_HEADER].as_str().unwrap();

    assert_eq!(fake.sign(timestamp, &body), expected);

    // The same notice built by the fake: the fixture's bytes and signature exactly.
    let fields: Value = serde_json::from_slice(&body).unwrap();
    let notice = Notification {
        event_type: EventType::parse(fields["event_type"].as_str().unwrap()).unwrap(),
        data_type: fields["data_type"].as_str().unwrap().to_owned(),
        object_id: fake.document_id(PERSON, "2026-11-23"),
        event_time: fields["event_time"].as_str().unwrap().to_owned(),
        user_id: PERSON.to_owned(),
    };
    let signed = fake.signed_notification(&notice, timestamp.parse().unwrap());
    assert_eq!(signed.body, body);
    assert_eq!((signed.timestamp.as_str(), signed.signature.as_str()), (timestamp, expected));

    // Tampering with the body or the timestamp changes the signature.
    let mut tampered = body.clone();
    tampered[2] ^= 1;
    assert_ne!(fake.sign(timestamp, &tampered), expected);
    assert_ne!(fake.sign("1795504330", &body), expected);
    let other = FakeOura::start_with_client("another-app", "another-secret").await;
    assert_ne!(other.sign(timestamp, &body), expected);
}
