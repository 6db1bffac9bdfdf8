//! The fake Withings' own tests, over HTTP: consent and codes, the refresh rotation rule both
//! ways, signed nonces and revoke, getactivity paging, scopes, the app's rate limit, notify
//! subscriptions against a callback on loopback, and the Python fixtures reproduced.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::routing;
use reqwest::Url;
use serde_json::Value;

use super::super::server::{Fake, FakeServer};
use super::super::test_support::{self, http, query_param, sorted_keys};
use super::*;

const REDIRECT: &str = "http://127.0.0.1:9/withings/callback";
const PERSON: &str = SANDBOX_PEOPLE[0].0;

fn fixture(name: &str) -> Vec<u8> {
    test_support::fixture("withings", name)
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn authorize_url(fake: &FakeWithings, scope: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("scope", scope),
        ("redirect_uri", REDIRECT),
        ("state", "st-42"),
    ];
    Url::parse_with_params(&fake.authorize_url(), params).unwrap().to_string()
}

/// POSTs `form` to `path` (with a Bearer token if given); the envelope.
async fn call(fake: &FakeWithings, path: &str, form: &[(&str, &str)], token: Option<&str>) -> Value {
    let mut request = http().post(format!("{}{path}", fake.base_url())).form(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "Withings answers HTTP 200, errors included");
    response.json().await.unwrap()
}

async fn exchange(fake: &FakeWithings, code: &str) -> Value {
    let form = [
        ("action", "requesttoken"),
        ("grant_type", "authorization_code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    call(fake, OAUTH2_PATH, &form, None).await
}

async fn refresh(fake: &FakeWithings, refresh_token: &str) -> Value {
    let form = [
        ("action", "requesttoken"),
        ("grant_type", "refresh_token"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
        ("refresh_token", refresh_token),
    ];
    call(fake, OAUTH2_PATH, &form, None).await
}

async fn activity(fake: &FakeWithings, token: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("action", "getactivity")];
    form.extend_from_slice(extra);
    call(fake, MEASURE_PATH, &form, Some(token)).await
}

fn dates<'a>(start: &'a str, end: &'a str) -> [(&'a str, &'a str); 2] {
    [("startdateymd", start), ("enddateymd", end)]
}

fn keys_of(value: &Value) -> Vec<String> {
    sorted_keys(value)
}

// --- consent and tokens ---

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<FakeWithings>();
}

#[tokio::test]
async fn consent_gives_a_code_whose_token_is_in_the_fixtures_shape_with_the_ticked_scopes() {
    let fake = FakeWithings::start().await;
    let url = authorize_url(&fake, "user.info,user.metrics,user.activity");
    let picker = http().get(&url).send().await.unwrap().text().await.unwrap();
    for (id, _) in SANDBOX_PEOPLE {
        assert!(picker.contains(&format!(r#"data-user-id="{id}""#)), "{picker}");
    }
    let page = http().get(format!("{url}&login_hint={PERSON}")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"value="user.activity" checked"#) && page.contains(&format!(r#"action="{CONSENT_PATH}""#)));

    // What a browser posts from the approve form, with user.info unticked.
    let form = [
        ("response_type", "code"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("scope", "user.info,user.metrics,user.activity"),
        ("redirect_uri", REDIRECT),
        ("state", "st-42"),
        ("login_hint", PERSON),
        ("granted_scope", "user.metrics"),
        ("granted_scope", "user.activity"),
        ("decision", "approve"),
    ];
    let response = http().post(format!("{}{CONSENT_PATH}", fake.base_url())).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-42"));
    let code = query_param(&location, "code").unwrap();

    let token = exchange(&fake, &code).await;
    assert_eq!(token["status"], 0, "{token}");
    assert_eq!(keys_of(&token["body"]), keys_of(&fixture_json("token.json")["body"]));
    assert_eq!(token["body"]["userid"], PERSON, "a string, as in Withings' examples");
    assert_eq!(token["body"]["scope"], "user.metrics,user.activity");
    assert_eq!(
        (token["body"]["expires_in"].as_u64(), token["body"]["token_type"].as_str()),
        (Some(10_800), Some("Bearer"))
    );
    let again = exchange(&fake, &code).await;
    assert_eq!(again["status"], STATUS_INVALID_PARAMS, "a code is single-use: {again}");
    assert_eq!((fake.calls("authorize"), fake.calls("consent"), fake.calls("token")), (2, 1, 2));
    assert_eq!(fake.max_requests_in_any_minute(), 2, "the consent page is not the app's");

    fake.set_userid_as_number(true);
    let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
    assert_eq!(exchange(&fake, &code).await["body"]["userid"], 31_415_926);

    let denied = fake.deny(&url);
    assert_eq!(denied, format!("{REDIRECT}?error=access_denied&state=st-42"));
}

#[tokio::test]
async fn a_code_expires_after_30_seconds_or_the_configured_lifetime() {
    let fake = FakeWithings::start().await;
    let url = authorize_url(&fake, "user.activity");
    let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
    fake.advance(Duration::from_secs(31));
    let expired = exchange(&fake, &code).await;
    assert_eq!(
        (expired["status"].as_i64(), expired["error"].as_str()),
        (Some(503), Some("Invalid Params: code expired"))
    );

    let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
    fake.advance(Duration::from_secs(29));
    assert_eq!(exchange(&fake, &code).await["status"], 0);

    fake.set_code_lifetime(Duration::from_secs(120));
    let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
    fake.advance(Duration::from_secs(90));
    assert_eq!(exchange(&fake, &code).await["status"], 0);
}

#[tokio::test]
async fn the_old_refresh_token_lives_until_the_new_access_token_is_used() {
    let fake = FakeWithings::start().await;
    let first = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]);

    let second = refresh(&fake, &first.refresh_token).await;
    assert_eq!(second["status"], 0, "{second}");
    assert_eq!(keys_of(&second["body"]), keys_of(&fixture_json("token_refresh.json")["body"]));
    assert_ne!(second["body"]["refresh_token"].as_str(), Some(first.refresh_token.as_str()));
    // Within the window and before the new access token is used, the old one refreshes again.
    let third = refresh(&fake, &first.refresh_token).await;
    assert_eq!(third["status"], 0, "{third}");

    let new_access = second["body"]["access_token"].as_str().unwrap();
    assert_eq!(activity(&fake, new_access, &dates("2026-11-21", "2026-11-23")).await["status"], 0);
    let refused = refresh(&fake, &first.refresh_token).await;
    assert_eq!(refused, fixture_json("token_invalid.json"), "the new access token was used");
    assert_eq!(refresh(&fake, second["body"]["refresh_token"].as_str().unwrap()).await["status"], 0);
    assert_eq!((fake.calls("refresh"), fake.calls("token")), (4, 0));
}

#[tokio::test]
async fn the_old_refresh_token_dies_8_hours_after_its_successor_was_issued() {
    let fake = FakeWithings::start().await;
    let first = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]);
    let second = refresh(&fake, &first.refresh_token).await;
    fake.advance(Duration::from_secs(8 * 3600 - 60));
    assert_eq!(refresh(&fake, &first.refresh_token).await["status"], 0, "still within 8 hours");
    fake.advance(Duration::from_secs(61));
    assert_eq!(refresh(&fake, &first.refresh_token).await["status"], STATUS_INVALID_PARAMS, "8 hours passed");
    assert_eq!(refresh(&fake, second["body"]["refresh_token"].as_str().unwrap()).await["status"], 0);

    // Access tokens expire after 3 hours of the fake's clock, or when a test says so.
    let fresh = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]);
    fake.advance(Duration::from_secs(10_801));
    let expired = activity(&fake, &fresh.access_token, &dates("2026-11-21", "2026-11-23")).await;
    assert_eq!(expired, fixture_json("error_401.json"));
    let other = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]);
    fake.expire_access_tokens(PERSON);
    assert_eq!(activity(&fake, &other.access_token, &dates("2026-11-21", "2026-11-23")).await["status"], 401);
    assert_eq!(refresh(&fake, &other.refresh_token).await["status"], 0, "refresh tokens keep working");
}

// --- signatures and revoke ---

#[tokio::test]
async fn the_fake_reproduces_the_fixture_signatures() {
    let fake = FakeWithings::start().await;
    for name in ["signature_getnonce.json", "signature_revoke.json"] {
        let known = fixture_json(name);
        let values: Vec<(&str, &str)> =
            known["values"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
        assert_eq!(known["client_secret"], DEFAULT_CLIENT_SECRET);
        assert_eq!(fake.sign(&values), known["signature"].as_str().unwrap(), "{name}");
        let mut reversed = values.clone();
        reversed.reverse();
        assert_eq!(signature(DEFAULT_CLIENT_SECRET, &reversed), known["signature"].as_str().unwrap(), "key order");
        assert_ne!(signature("another-secret", &values), known["signature"].as_str().unwrap());
    }
}

async fn get_nonce(fake: &FakeWithings, secret: &str) -> Value {
    let timestamp = fake.now().as_second().to_string();
    let fields = [("action", "getnonce"), ("client_id", DEFAULT_CLIENT_ID), ("timestamp", timestamp.as_str())];
    let signed = signature(secret, &fields);
    let mut form = fields.to_vec();
    form.push(("signature", &signed));
    call(fake, SIGNATURE_PATH, &form, None).await
}

async fn revoke(fake: &FakeWithings, nonce: &str, secret: &str) -> Value {
    let fields = [("action", "revoke"), ("client_id", DEFAULT_CLIENT_ID), ("nonce", nonce)];
    let signed = signature(secret, &fields);
    let mut form = fields.to_vec();
    form.extend([("signature", signed.as_str()), ("userid", PERSON)]);
    call(fake, OAUTH2_PATH, &form, None).await
}

#[tokio::test]
async fn a_signed_revoke_with_a_fresh_nonce_kills_the_grant_and_its_subscriptions() {
    let fake = FakeWithings::start().await;
    let tokens = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]);
    fake.subscribe_unchecked(PERSON, "http://127.0.0.1:9/hook", APPLI_ACTIVITY);

    assert_eq!(get_nonce(&fake, "wrong-secret").await["status"], STATUS_UNAUTHORIZED);
    let nonce = get_nonce(&fake, DEFAULT_CLIENT_SECRET).await;
    assert_eq!(nonce["status"], 0, "{nonce}");
    let nonce = nonce["body"]["nonce"].as_str().unwrap().to_owned();

    assert_eq!(revoke(&fake, &nonce, "wrong-secret").await["status"], STATUS_UNAUTHORIZED);
    assert_eq!(revoke(&fake, &nonce, DEFAULT_CLIENT_SECRET).await, serde_json::json!({"status": 0, "body": {}}));
    assert_eq!(revoke(&fake, &nonce, DEFAULT_CLIENT_SECRET).await["status"], STATUS_INVALID_PARAMS, "single-use");

    assert_eq!(activity(&fake, &tokens.access_token, &dates("2026-11-21", "2026-11-23")).await["status"], 401);
    assert_eq!(refresh(&fake, &tokens.refresh_token).await["status"], STATUS_INVALID_PARAMS);
    assert!(fake.subscriptions(PERSON).is_empty());
    assert_eq!((fake.calls("getnonce"), fake.calls("revoke")), (2, 3));

    let other = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]);
    fake.revoke_grant(PERSON);
    assert_eq!(activity(&fake, &other.access_token, &dates("2026-11-21", "2026-11-23")).await["status"], 401);
}

// --- getactivity ---

#[tokio::test]
async fn getactivity_pages_with_more_and_offset_in_the_fixtures_shape_with_both_dates_included() {
    let fake = FakeWithings::start().await;
    fake.set_page_size(2);
    let token = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]).access_token;
    for (day, steps) in [("2026-11-20", 1), ("2026-11-21", 10234), ("2026-11-22", 3987), ("2026-11-23", 0)] {
        fake.seed_steps(PERSON, day, steps);
    }
    fake.seed_steps(PERSON, "2026-11-24", 500);

    let page1 = activity(&fake, &token, &dates("2026-11-21", "2026-11-23")).await;
    let expected1 = fixture_json("getactivity_page1.json");
    assert_eq!(
        (&page1["body"]["more"], &page1["body"]["offset"]),
        (&expected1["body"]["more"], &expected1["body"]["offset"])
    );
    assert_eq!(keys_of(&page1["body"]["activities"][0]), keys_of(&expected1["body"]["activities"][0]));
    assert_eq!(
        page1["body"]["activities"],
        expected1["body"]["activities"]
            .clone()
            .as_array()
            .map(|a| {
                // The fixture's `modified` is a fixed instant; the fake's is when the test seeded.
                let mut a = a.clone();
                for (entry, got) in a.iter_mut().zip(page1["body"]["activities"].as_array().unwrap()) {
                    entry["modified"] = got["modified"].clone();
                }
                Value::Array(a)
            })
            .unwrap()
    );
    let mut form = dates("2026-11-21", "2026-11-23").to_vec();
    form.push(("offset", "2"));
    let page2 = activity(&fake, &token, &form).await;
    assert_eq!((&page2["body"]["more"], &page2["body"]["offset"]), (&Value::Bool(false), &Value::from(0)));
    assert_eq!(page2["body"]["activities"][0]["steps"], 0, "a true zero: the entry is there");
    assert_eq!(page2["body"]["activities"].as_array().unwrap().len(), 1, "2026-11-23 included, 2026-11-24 not");

    let steps_only = activity(
        &fake,
        &token,
        &[("startdateymd", "2026-11-24"), ("enddateymd", "2026-11-24"), ("data_fields", "steps")],
    )
    .await;
    let entry = &steps_only["body"]["activities"][0];
    assert_eq!((entry["steps"].as_u64(), entry.get("distance")), (Some(500), None));

    // Another device's activity on the same date is a second entry.
    fake.seed_device_steps(PERSON, "2026-11-24", "phone", 800);
    let both = activity(&fake, &token, &dates("2026-11-24", "2026-11-24")).await;
    let devices: Vec<&str> =
        both["body"]["activities"].as_array().unwrap().iter().map(|a| a["hash_deviceid"].as_str().unwrap()).collect();
    assert_eq!(devices, [fake.device_id(PERSON, "main"), fake.device_id(PERSON, "phone")]);

    fake.advance(Duration::from_secs(60));
    let since = fake.now().as_second();
    fake.seed_steps(PERSON, "2026-11-22", 4000);
    let changed = activity(&fake, &token, &[("lastupdate", since.to_string().as_str())]).await;
    assert_eq!(changed["body"]["activities"].as_array().unwrap().len(), 1);
    assert_eq!(changed["body"]["activities"][0]["date"], "2026-11-22");
}

#[tokio::test]
async fn getactivity_refuses_a_missing_scope_bad_params_and_unknown_actions() {
    let fake = FakeWithings::start().await;
    let metrics_only = fake.grant_tokens(PERSON, &[SCOPE_METRICS]).access_token;
    let refused = activity(&fake, &metrics_only, &dates("2026-11-21", "2026-11-23")).await;
    assert_eq!(refused["status"], STATUS_MISSING_SCOPE, "{refused}");

    let token = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]).access_token;
    assert_eq!(activity(&fake, &token, &dates("2026-11-23", "2026-11-21")).await["status"], 503, "reversed");
    assert_eq!(activity(&fake, &token, &dates("23-11-2026", "2026-11-24")).await["status"], 503);
    assert_eq!(activity(&fake, &token, &[]).await["status"], 503, "no dates nor lastupdate");
    let other = call(&fake, MEASURE_PATH, &[("action", "getmeas")], Some(&token)).await;
    assert_eq!(other["status"], STATUS_NOT_IMPLEMENTED);
    assert_eq!(activity(&fake, "made-up", &dates("2026-11-21", "2026-11-23")).await["status"], 401);
}

// --- the rate limit and faults ---

#[tokio::test]
async fn over_the_apps_limit_every_call_gets_601_until_the_minute_rolls_over() {
    let fake = FakeWithings::start().await;
    fake.set_rate_limit(5);
    let token = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]).access_token;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let answer = activity(&fake, &token, &dates("2026-11-21", "2026-11-23")).await;
        if answer["status"] == 601 {
            assert_eq!(answer, fixture_json("error_601.json"));
        }
        statuses.push(answer["status"].as_i64().unwrap());
    }
    // The minute may roll over mid-test; within one minute the first five pass.
    if fake.requests_by_minute().len() == 1 {
        assert_eq!(statuses, [0, 0, 0, 0, 0, 601, 601]);
        assert_eq!(fake.max_requests_in_any_minute(), 7);
    }
    // The next minute of the fake's clock starts afresh.
    fake.advance(Duration::from_secs(60));
    assert_eq!(activity(&fake, &token, &dates("2026-11-21", "2026-11-23")).await["status"], 0);
    assert_eq!(fake.calls("getactivity"), 8);
    fake.reset_requests();
    assert_eq!(fake.max_requests_in_any_minute(), 0);
}

#[tokio::test]
async fn scripted_faults_hit_their_service_in_order_then_it_recovers() {
    let fake = FakeWithings::start().await;
    let token = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]).access_token;
    fake.fail_next(FaultTarget::Measure, Fault::TooManyRequests, 1);
    fake.fail_next(FaultTarget::Measure, Fault::Status(522), 1);
    fake.fail_next(FaultTarget::Measure, Fault::Http(502), 1);
    fake.fail_next(FaultTarget::OAuth2, Fault::UnknownError, 1);
    assert_eq!(activity(&fake, &token, &dates("2026-11-21", "2026-11-23")).await["status"], 601);
    assert_eq!(activity(&fake, &token, &dates("2026-11-21", "2026-11-23")).await["status"], 522);
    let bare =
        http().post(fake.measure_url()).bearer_auth(&token).form(&[("action", "getactivity")]).send().await.unwrap();
    assert_eq!(bare.status(), 502);
    assert_eq!(activity(&fake, &token, &dates("2026-11-21", "2026-11-23")).await["status"], 0);
    assert_eq!(refresh(&fake, "whatever").await["status"], STATUS_ERROR);
}

// --- notify ---

/// What the test callback saw: (method, path and query, content type, body).
type Seen = (Method, String, Option<String>, String);

struct Callback {
    status: u16,
    seen: Vec<Seen>,
}

type CallbackState = Arc<Fake<Callback>>;

async fn record(
    State(fake): State<CallbackState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut callback = fake.lock();
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let path = uri.path_and_query().map(ToString::to_string).unwrap_or_default();
    callback.seen.push((method, path, content_type, String::from_utf8(body.to_vec()).unwrap()));
    StatusCode::from_u16(callback.status).unwrap()
}

/// A subscriber's callback on loopback answering `status`: `(server, base URL of /withings)`.
async fn callback(status: u16) -> (FakeServer<Callback>, String) {
    let server = FakeServer::start("test Withings callback", 0, Callback { status, seen: Vec::new() }, |fake| {
        Router::new().route("/withings", routing::get(record).post(record)).with_state(fake)
    })
    .await
    .unwrap();
    let url = format!("{}/withings", server.base_url());
    (server, url)
}

async fn notify(fake: &FakeWithings, token: &str, form: &[(&str, &str)]) -> Value {
    call(fake, NOTIFY_PATH, form, Some(token)).await
}

#[tokio::test]
async fn subscribing_needs_a_2xx_to_the_head_check_then_list_get_and_revoke_work() {
    let fake = FakeWithings::start().await;
    let token = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]).access_token;
    let (server, base) = callback(200).await;
    let url = format!("{base}?token=SECRET");

    let made = notify(
        &fake,
        &token,
        &[("action", "subscribe"), ("callbackurl", &url), ("appli", "16"), ("comment", "stepsync")],
    )
    .await;
    assert_eq!(made, serde_json::json!({"status": 0, "body": {}}));
    let seen = server.lock().seen.clone();
    assert_eq!((&seen[0].0, seen[0].1.as_str()), (&Method::HEAD, "/withings?token=SECRET"));

    let (_bad, bad_base) = callback(404).await;
    let refused = notify(&fake, &token, &[("action", "subscribe"), ("callbackurl", &bad_base), ("appli", "16")]).await;
    assert_eq!(refused["status"], STATUS_CALLBACK_UNREACHABLE, "{refused}");
    let dead = notify(
        &fake,
        &token,
        &[("action", "subscribe"), ("callbackurl", "http://127.0.0.1:9/nobody"), ("appli", "16")],
    )
    .await;
    assert_eq!(dead["status"], STATUS_CALLBACK_UNREACHABLE);
    assert_eq!(fake.subscriptions(PERSON).len(), 1, "failed checks subscribe nothing");

    let listed = notify(&fake, &token, &[("action", "list"), ("appli", "16")]).await;
    let profile = &listed["body"]["profiles"][0];
    assert_eq!(keys_of(profile), keys_of(&fixture_json("notify_list.json")["body"]["profiles"][0]));
    assert_eq!((profile["callbackurl"].as_str(), profile["appli"].as_i64()), (Some(url.as_str()), Some(16)));
    let got = notify(&fake, &token, &[("action", "get"), ("callbackurl", &url), ("appli", "16")]).await;
    assert_eq!(got["body"]["comment"], "stepsync");

    let metrics_only = fake.grant_tokens(PERSON, &[SCOPE_METRICS]).access_token;
    let no_scope =
        notify(&fake, &metrics_only, &[("action", "subscribe"), ("callbackurl", &url), ("appli", "16")]).await;
    assert_eq!(no_scope["status"], STATUS_MISSING_SCOPE);

    let revoked = notify(&fake, &token, &[("action", "revoke"), ("callbackurl", &url), ("appli", "16")]).await;
    assert_eq!(revoked["status"], 0);
    let again = notify(&fake, &token, &[("action", "revoke"), ("callbackurl", &url), ("appli", "16")]).await;
    assert_eq!(again["status"], STATUS_NO_SUCH_SUBSCRIPTION);
    assert!(fake.subscriptions(PERSON).is_empty());
    let counts = ["subscribe", "head_check", "list", "get", "unsubscribe"].map(|k| fake.calls(k));
    assert_eq!(counts, [4, 3, 1, 1, 2]);
}

#[tokio::test]
async fn a_change_is_posted_unsigned_and_form_encoded_to_the_exact_callback_url() {
    let fake = FakeWithings::start().await;
    let token = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]).access_token;
    let (server, base) = callback(200).await;
    let url = format!("{base}?token=SECRET");
    assert_eq!(
        notify(&fake, &token, &[("action", "subscribe"), ("callbackurl", &url), ("appli", "16")]).await["status"],
        0
    );

    let created = fake.set_steps(PERSON, "2026-11-23", 4000).await;
    let unchanged = fake.set_steps(PERSON, "2026-11-23", 4000).await;
    let deleted = fake.delete_day(PERSON, "2026-11-23").await;
    assert_eq!((created.len(), unchanged.len(), deleted.len()), (1, 0, 1));
    assert!(created[0].delivered() && created[0].callbackurl == url);

    let posts: Vec<Seen> = server.lock().seen.iter().filter(|s| s.0 == Method::POST).cloned().collect();
    assert_eq!(posts.len(), 2);
    let notice = String::from_utf8(fixture("notification_activity.form")).unwrap();
    for (_, path, content_type, body) in &posts {
        assert_eq!(path, "/withings?token=SECRET", "the registered query string is kept");
        assert_eq!(content_type.as_deref(), Some(NOTICE_CONTENT_TYPE));
        assert_eq!(body, &notice, "the fixture's notice byte for byte");
    }
    assert_eq!(fake.notice_body(PERSON, "2026-11-23"), notice);
    fake.set_notice_style(NoticeStyle::Date);
    assert_eq!(fake.notice_body(PERSON, "2026-11-23"), format!("userid={PERSON}&appli=16&date=2026-11-23"));
    assert_eq!(fake.deliveries().len(), 2);

    // A forged notice goes out exactly as given.
    let forged = fake.post_raw(&url, b"userid=1&appli=16".to_vec(), &[("x-forged", "yes")]).await;
    assert_eq!(forged, Attempt::Status(200));
}

#[tokio::test]
async fn dropped_subscriptions_deliver_nothing_and_four_failures_in_a_row_drop_one() {
    let fake = FakeWithings::start().await;
    let (server, url) = callback(200).await;
    fake.subscribe_unchecked(PERSON, &url, APPLI_ACTIVITY);
    fake.drop_subscriptions(PERSON);
    assert!(fake.set_steps(PERSON, "2026-11-23", 1).await.is_empty());
    assert!(server.lock().seen.is_empty());

    let (_failing, failing_url) = callback(500).await;
    fake.subscribe_unchecked(PERSON, &failing_url, APPLI_ACTIVITY);
    for steps in 2..5 {
        let deliveries = fake.set_steps(PERSON, "2026-11-23", steps).await;
        assert_eq!((deliveries[0].outcome.clone(), deliveries[0].dropped), (Attempt::Status(500), false));
    }
    let fourth = fake.set_steps(PERSON, "2026-11-23", 5).await;
    assert!(fourth[0].dropped);
    assert!(fake.subscriptions(PERSON).is_empty());
    // While our callback does not answer Withings' HEAD check, subscribing again is refused.
    let token = fake.grant_tokens(PERSON, &[SCOPE_ACTIVITY]).access_token;
    fake.fail_callback_checks(1);
    let subscribe = [("action", "subscribe"), ("callbackurl", url.as_str()), ("appli", "16")];
    assert_eq!(notify(&fake, &token, &subscribe).await["status"], STATUS_CALLBACK_UNREACHABLE);
    assert!(fake.subscriptions(PERSON).is_empty());
    assert_eq!(notify(&fake, &token, &subscribe).await["status"], 0, "only the scripted check failed");
    assert_eq!(fake.subscriptions(PERSON).len(), 1);
}
