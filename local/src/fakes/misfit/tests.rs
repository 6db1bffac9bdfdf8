//! The fake Misfit's own tests: consent and tokens, profile and summary, faults and death.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use jiff::Timestamp;
use reqwest::Url;
use serde_json::{Value, json};

use super::super::test_support::{self, http, query_param, sorted_keys};
use super::*;

const REDIRECT: &str = "http://127.0.0.1:9/misfit/callback";
const PERSON: &str = "51a4189acf12e53f80000001";

fn fixture(name: &str) -> String {
    String::from_utf8(test_support::fixture("misfit", name)).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// A JSON number's kind, to compare shapes: integer or decimal.
fn number_kind(value: &Value) -> &'static str {
    match value {
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "decimal",
        Value::String(_) => "string",
        _ => "other",
    }
}

fn authorize_url(fake: &FakeMisfit, state: &str) -> String {
    Url::parse_with_params(
        &fake.authorize_url(),
        [
            ("response_type", "code"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", ALL_SCOPES),
            ("state", state),
        ],
    )
    .unwrap()
    .to_string()
}

fn query_of(url: &str) -> String {
    Url::parse(url).unwrap().query().unwrap().to_owned()
}

async fn exchange_with(fake: &FakeMisfit, code: &str, redirect_uri: &str, secret: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", secret),
    ];
    let response = http().post(fake.token_url()).form(&form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn exchange(fake: &FakeMisfit, code: &str) -> (u16, Value) {
    exchange_with(fake, code, REDIRECT, DEFAULT_CLIENT_SECRET).await
}

async fn get(fake: &FakeMisfit, path_and_query: &str, token: Option<&str>) -> (u16, HeaderMap, String) {
    let mut request = http().get(format!("{}{path_and_query}", fake.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

async fn get_json(fake: &FakeMisfit, path_and_query: &str, token: &str) -> (u16, Value) {
    let (status, _, body) = get(fake, path_and_query, Some(token)).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}")))
}

fn summary_path(start: &str, end: &str) -> String {
    format!("{SUMMARY_PATH}?start_date={start}&end_date={end}&detail=true")
}

// --- consent and tokens ---

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<FakeMisfit>();
}

#[tokio::test]
async fn the_consent_page_offers_approve_and_deny_forms_posting_to_the_consent_endpoint() {
    let fake = FakeMisfit::start().await;
    fake.add_person(PERSON);

    let (status, _, html) =
        get(&fake, &format!("{AUTHORIZE_PATH}?{}&login_hint={PERSON}", query_of(&authorize_url(&fake, "st-1"))), None)
            .await;

    assert_eq!(status, 200);
    assert!(html.contains(r#"id="approve""#) && html.contains(r#"id="deny""#), "{html}");
    assert!(html.contains(&format!(r#"action="{CONSENT_PATH}""#)), "{html}");
    assert!(html.contains(r#"<input type="hidden" name="state" value="st-1">"#), "{html}");
    assert!(html.contains(&format!(r#"<input type="hidden" name="login_hint" value="{PERSON}">"#)), "{html}");
    assert_eq!(fake.calls("authorize"), 1);
}

#[tokio::test]
async fn without_a_login_hint_the_page_lists_the_people_to_log_in_as() {
    let fake = FakeMisfit::start().await;
    fake.add_person("alice-1");
    fake.add_person("bob-2");

    let (status, _, html) =
        get(&fake, &format!("{AUTHORIZE_PATH}?{}", query_of(&authorize_url(&fake, "s"))), None).await;

    assert_eq!(status, 200);
    assert!(html.contains(r#"id="account-0" data-user-id="alice-1""#), "{html}");
    assert!(html.contains(r#"id="account-1" data-user-id="bob-2""#), "{html}");
    assert!(html.contains("login_hint=bob-2"), "{html}");
}

#[tokio::test]
async fn the_consent_page_refuses_an_unknown_client_another_response_type_a_bad_redirect_or_person() {
    let fake = FakeMisfit::start().await;
    fake.add_person(PERSON);
    let good = query_of(&authorize_url(&fake, "s"));
    let bad = [
        good.replace("client_id=fake-misfit-client", "client_id=someone-else"),
        good.replace("response_type=code", "response_type=token"),
        good.replace("redirect_uri=http", "redirect_uri=ftp"),
        format!("{good}&login_hint=nobody"),
    ];
    for query in bad {
        let (status, _, html) = get(&fake, &format!("{AUTHORIZE_PATH}?{query}"), None).await;
        assert_eq!(status, 400, "{query}");
        assert!(html.contains(r#"id="error""#), "{html}");
    }
}

#[tokio::test]
async fn approving_the_form_redirects_with_a_code_that_buys_a_token_shaped_like_the_fixture() {
    let fake = FakeMisfit::start().await;
    fake.add_person(PERSON);
    // What a browser posts from the consent page's approve form.
    let form = [
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", ALL_SCOPES),
        ("state", "st-42"),
        ("login_hint", PERSON),
        ("decision", "approve"),
    ];

    let response = http().post(format!("{}{CONSENT_PATH}", fake.base_url())).form(&form).send().await.unwrap();

    assert_eq!(response.status(), 302);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{REDIRECT}?code=")), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-42"));
    let (status, token) = exchange(&fake, &query_param(&location, "code").unwrap()).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(sorted_keys(&token), sorted_keys(&fixture_json("token.json")));
    assert_eq!(token["token_type"], "bearer");
    let (status, profile) = get_json(&fake, PROFILE_PATH, token["access_token"].as_str().unwrap()).await;
    assert_eq!((status, &profile["userId"]), (200, &json!(PERSON)));
    assert_eq!((fake.calls("consent"), fake.calls("token"), fake.calls("profile")), (1, 1, 1));
}

#[tokio::test]
async fn a_code_cannot_be_exchanged_twice() {
    let fake = FakeMisfit::start().await;
    fake.add_person(PERSON);
    let code = query_param(&fake.approve(&authorize_url(&fake, "s"), PERSON), "code").unwrap();
    assert_eq!(exchange(&fake, &code).await.0, 200);

    let (status, body) = exchange(&fake, &code).await;

    assert_eq!(status, 400);
    assert_eq!(body, json!({ "error_code": 400, "error_message": "Authorization code has already been used" }));
}

#[tokio::test]
async fn a_wrong_secret_another_redirect_an_unknown_or_expired_code_are_refused_with_400() {
    let fake = FakeMisfit::start().await;
    fake.add_person(PERSON);
    let code = query_param(&fake.approve(&authorize_url(&fake, "s"), PERSON), "code").unwrap();
    let attempts = [
        exchange_with(&fake, &code, REDIRECT, "wrong-secret").await,
        exchange_with(&fake, &code, "http://127.0.0.1:9/elsewhere", DEFAULT_CLIENT_SECRET).await,
        exchange(&fake, "made-up-code").await,
    ];
    for (status, body) in attempts {
        assert_eq!((status, &body["error_code"]), (400, &json!(400)), "{body}");
        assert!(body["error_message"].is_string(), "{body}");
    }

    fake.set_code_lifetime(Duration::ZERO);
    let (status, body) = exchange(&fake, &code).await;

    assert_eq!((status, body["error_message"].as_str()), (400, Some("Authorization code has expired")));
}

#[tokio::test]
async fn denying_redirects_with_access_denied_and_the_state() {
    let fake = FakeMisfit::start().await;
    let form = [
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", ALL_SCOPES),
        ("state", "st-7"),
        ("decision", "deny"),
    ];

    let response = http().post(format!("{}{CONSENT_PATH}", fake.base_url())).form(&form).send().await.unwrap();

    assert_eq!(response.status(), 302);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert_eq!(location, format!("{REDIRECT}?error=access_denied&state=st-7"));
    assert_eq!(fake.deny(&authorize_url(&fake, "st-7")), location);
}

// --- profile and summary ---

#[tokio::test]
async fn the_profile_names_the_person_behind_the_token() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);

    let (status, profile) = get_json(&fake, PROFILE_PATH, &token).await;

    assert_eq!(status, 200);
    assert_eq!(profile, json!({ "userId": PERSON, "name": format!("Fake Misfit {PERSON}") }));
    let own_id = format!("/move/resource/v1/user/{PERSON}/profile");
    assert_eq!(get_json(&fake, &own_id, &token).await.0, 200);
    let (status, body) = get_json(&fake, "/move/resource/v1/user/someone-else/profile", &token).await;
    assert_eq!((status, &body["error_code"]), (403, &json!(403)));
}

#[tokio::test]
async fn the_detailed_summary_has_the_fixtures_shape_for_days_with_data_in_the_inclusive_range() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);
    fake.set_steps(PERSON, "2026-11-21", 500);
    fake.set_steps(PERSON, "2026-11-22", 9823);
    fake.set_steps(PERSON, "2026-11-23", 3011);
    fake.set_steps(PERSON, "2026-11-25", 0);
    fake.set_steps(PERSON, "2026-11-26", 700);

    let (status, body) = get_json(&fake, &summary_path("2026-11-22", "2026-11-25"), &token).await;

    assert_eq!(status, 200);
    let fixture = fixture_json("summary_detail.json");
    assert_eq!(sorted_keys(&body), sorted_keys(&fixture));
    let days = body["summary"].as_array().unwrap();
    let dates: Vec<&str> = days.iter().map(|d| d["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2026-11-22", "2026-11-23", "2026-11-25"], "11-24 has no data: left out");
    let steps: Vec<u64> = days.iter().map(|d| d["steps"].as_u64().unwrap()).collect();
    assert_eq!(steps, [9823, 3011, 0]);
    let model = &fixture["summary"][0];
    for day in days {
        assert_eq!(sorted_keys(day), sorted_keys(model));
        for (key, value) in model.as_object().unwrap() {
            assert_eq!(number_kind(&day[key]), number_kind(value), "{key} in {day}");
        }
    }
    assert_eq!(fake.calls("summary"), 1);
}

#[tokio::test]
async fn without_detail_the_summary_is_the_ranges_totals() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);
    fake.set_steps(PERSON, "2026-11-22", 9823);
    fake.set_steps(PERSON, "2026-11-23", 3011);

    let (status, body) =
        get_json(&fake, &format!("{SUMMARY_PATH}?start_date=2026-11-01&end_date=2026-11-30"), &token).await;

    assert_eq!(status, 200);
    assert_eq!(body["steps"], 12834);
    assert_eq!(sorted_keys(&body), ["activityCalories", "calories", "distance", "points", "steps"]);
}

#[tokio::test]
async fn a_summary_with_missing_malformed_or_reversed_dates_is_refused_with_400() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);
    let queries = [
        "?end_date=2026-11-22&detail=true",
        "?start_date=22-11-2026&end_date=2026-11-22&detail=true",
        "?start_date=2026-11-22T00:00&end_date=2026-11-22&detail=true",
        "?start_date=2026-11-23&end_date=2026-11-22&detail=true",
    ];
    for query in queries {
        let (status, body) = get_json(&fake, &format!("{SUMMARY_PATH}{query}"), &token).await;
        assert_eq!((status, &body["error_code"]), (400, &json!(400)), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_missing_unknown_or_revoked_token_gets_the_fixtures_401() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);
    fake.revoke_person(PERSON);
    let path = summary_path("2026-11-22", "2026-11-23");

    for token in [None, Some("made-up"), Some(token.as_str())] {
        let (status, _, body) = get(&fake, &path, token).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), fixture_json("error_401.json"));
    }
    let (status, _, _) = get(&fake, PROFILE_PATH, Some("made-up")).await;
    assert_eq!(status, 401);
    assert_eq!(get_json(&fake, &path, &fake.grant_token(PERSON)).await.0, 200, "a new grant works");
}

// --- faults and death ---

#[tokio::test]
async fn scripted_faults_hit_the_next_requests_in_order_then_it_recovers() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);
    fake.fail_next(Fault::RateLimited { reset_in_secs: 90 }, 1);
    fake.fail_next(Fault::ServerError, 1);
    fake.fail_next(Fault::Slow(Duration::from_millis(200)), 1);
    let path = summary_path("2026-11-22", "2026-11-23");

    let (status, headers, body) = get(&fake, &path, Some(&token)).await;
    assert_eq!(status, 429);
    let reset: i64 = headers[RATE_LIMIT_RESET_HEADER].to_str().unwrap().parse().unwrap();
    assert!((reset - (Timestamp::now().as_second() + 90)).abs() <= 2, "{reset}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({ "code": 429, "message": "Rate limit exceeded" }));

    let (status, body) = get_json(&fake, PROFILE_PATH, &token).await;
    assert_eq!((status, &body["error_code"]), (500, &json!(500)));

    let started = Instant::now();
    assert_eq!(get_json(&fake, &path, &token).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(get_json(&fake, &path, &token).await.0, 200);
    assert_eq!((fake.calls("summary"), fake.calls("profile")), (3, 1));
}

#[tokio::test]
async fn the_token_endpoint_takes_faults_too_and_the_consent_page_never_does() {
    let fake = FakeMisfit::start().await;
    fake.add_person(PERSON);
    fake.fail_next(Fault::ServerError, 1);
    let code = query_param(&fake.approve(&authorize_url(&fake, "s"), PERSON), "code").unwrap();
    let (status, _, _) = get(&fake, &format!("{AUTHORIZE_PATH}?{}", query_of(&authorize_url(&fake, "s"))), None).await;
    assert_eq!(status, 200);

    assert_eq!(exchange(&fake, &code).await.0, 500);
    assert_eq!(exchange(&fake, &code).await.0, 200, "the faulted attempt did not use the code");
}

#[tokio::test]
async fn a_gone_or_missing_cloud_answers_every_endpoint_with_that_status() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);
    let paths = [PROFILE_PATH.to_owned(), summary_path("2026-11-22", "2026-11-23"), AUTHORIZE_PATH.to_owned()];

    for (mode, expected) in [(Dead::Gone, 410), (Dead::NotFound, 404)] {
        fake.set_dead(Some(mode)).await;
        for path in &paths {
            assert_eq!(get(&fake, path, Some(&token)).await.0, expected, "{mode:?} {path}");
        }
        let response =
            http().post(fake.token_url()).form(&[("grant_type", "authorization_code")]).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    assert_eq!((fake.calls("profile"), fake.calls("token")), (2, 2), "dead answers are counted");

    fake.set_dead(None).await;
    assert_eq!(get(&fake, PROFILE_PATH, Some(&token)).await.0, 200);
}

#[tokio::test]
async fn a_refused_cloud_refuses_connections_until_it_listens_again_on_the_same_port() {
    let fake = FakeMisfit::start().await;
    let token = fake.grant_token(PERSON);
    assert_eq!(get(&fake, PROFILE_PATH, Some(&token)).await.0, 200);

    fake.set_dead(Some(Dead::Refused)).await;

    let error = http().get(format!("{}{PROFILE_PATH}", fake.base_url())).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(fake.dead(), Some(Dead::Refused));

    fake.set_dead(None).await;
    assert_eq!(get(&fake, PROFILE_PATH, Some(&token)).await.0, 200, "same port, same tokens");
    fake.stop().await;
}
