//! The fake Garmin over HTTP: PKCE checked at the exchange, refresh tokens rotating, a changed
//! day pinged and read back only by its window and pull token, the 24-hour limit, backfills
//! pinged once and limited, deregistration.

use serde_json::Value;

use super::super::common::pkce_s256;
use super::super::test_support::{self, http, query_param};
use super::*;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/garmin/callback";

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&test_support::fixture("garmin", name)).unwrap()
}

async fn form(fake: &FakeGarmin, fields: &[(&str, &str)]) -> (u16, Value) {
    let answer = http().post(fake.token_url()).form(fields).send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

#[tokio::test]
async fn the_known_answer_challenge_is_checked_at_the_exchange_and_refresh_tokens_rotate() {
    let fake = FakeGarmin::start().await;
    let pkce = fixture("pkce.json");
    let (verifier, challenge) = (pkce["code_verifier"].as_str().unwrap(), pkce["code_challenge"].as_str().unwrap());
    assert_eq!(pkce_s256(verifier), challenge, "the fake's S256 is the fixture's");
    let authorize = format!(
        "{}?response_type=code&client_id={DEFAULT_CLIENT_ID}&code_challenge={challenge}&code_challenge_method=S256&redirect_uri={REDIRECT}&state=s1",
        fake.authorize_url()
    );
    let user = SANDBOX_PEOPLE[0].0;
    let code = query_param(&fake.approve(&authorize, user), "code").unwrap();
    let exchange = |verifier: &'static str, code: String| {
        let fake = &fake;
        async move {
            let fields = [
                ("grant_type", "authorization_code"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
                ("code", code.as_str()),
                ("code_verifier", verifier),
                ("redirect_uri", REDIRECT),
            ];
            form(fake, &fields).await
        }
    };
    assert_eq!(exchange("another-verifier-another-verifier-another-verifier", code.clone()).await.0, 400);
    let code = query_param(&fake.approve(&authorize, user), "code").unwrap();
    let verifier: &'static str = Box::leak(verifier.to_owned().into_boxed_str());
    let (status, tokens) = exchange(verifier, code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["expires_in"], 86_400);
    assert!(fake.registered(user));
    let refresh = |token: String| {
        let fake = &fake;
        async move {
            let fields = [
                ("grant_type", "refresh_token"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
                ("refresh_token", token.as_str()),
            ];
            form(fake, &fields).await
        }
    };
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(first.clone()).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["refresh_token"], first.as_str());
    assert_eq!(refresh(first).await, (400, serde_json::json!({ "error": "invalid_grant" })), "spent");
}

#[tokio::test]
async fn a_changed_day_is_pinged_and_read_back_only_through_its_window_and_pull_token() {
    let fake = FakeGarmin::start().await;
    let receiver = test_support::receiver(|_, _| 200).await;
    fake.set_ping_url(&receiver.url);
    let user = SANDBOX_PEOPLE[1].0;
    let (access, _) = fake.grant_tokens(user);
    let deliveries = fake.set_steps(user, "2026-12-02", 4_321).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, 200);
    let callback = deliveries[0].body["dailies"][0]["callbackURL"].as_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}{DAILIES_PATH}?", fake.base_url())));
    assert_eq!(receiver.requests()[0].headers["garmin-client-id"], DEFAULT_CLIENT_ID);

    let get = |url: String| {
        let access = access.clone();
        async move {
            let answer = http().get(url).bearer_auth(access).send().await.unwrap();
            (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
        }
    };
    let (status, dailies) = get(callback.clone()).await;
    assert_eq!(status, 200);
    assert_eq!((dailies[0]["calendarDate"].as_str(), dailies[0]["steps"].as_u64()), (Some("2026-12-02"), Some(4_321)));
    let without_token = callback.split("&token=").next().unwrap().to_owned();
    assert_eq!(get(without_token).await.0, 400, "no pull token, no data");
    let start = query_param(&callback, "uploadStartTimeInSeconds").unwrap().parse::<i64>().unwrap();
    let token = query_param(&callback, "token").unwrap();
    let too_long = format!(
        "{}{DAILIES_PATH}?uploadStartTimeInSeconds={start}&uploadEndTimeInSeconds={}&token={token}",
        fake.base_url(),
        start + 86_401
    );
    assert_eq!(get(too_long).await.0, 400, "24 hours at most");
    assert_eq!(fake.calls("dailies"), 3);
}

#[tokio::test]
async fn a_backfill_pings_the_days_once_within_the_limit_and_deregistration_ends_the_grant() {
    let fake = FakeGarmin::start().await;
    let receiver = test_support::receiver(|_, _| 200).await;
    fake.set_ping_url(&receiver.url);
    let user = SANDBOX_PEOPLE[2].0;
    fake.seed_steps(user, "2026-11-20", 8_000);
    let (access, _) = fake.grant_tokens(user);
    let backfill = |from: i64, to: i64| {
        let access = access.clone();
        let url =
            format!("{}{BACKFILL_PATH}?summaryStartTimeInSeconds={from}&summaryEndTimeInSeconds={to}", fake.base_url());
        async move { http().get(url).bearer_auth(access).send().await.unwrap().status().as_u16() }
    };
    let (from, to) = (1_795_000_000, 1_795_000_000 + 30 * 86_400);
    assert_eq!(backfill(from, to).await, 202);
    assert_eq!(fake.deliveries().len(), 1, "the seeded day, pinged");
    assert_eq!(backfill(from, to).await, 409, "asked already");
    assert_eq!(backfill(from, from + 91 * 86_400).await, 400, "90 days at most");
    fake.set_backfill_days_per_minute(fake.max_backfill_days_in_any_minute());
    assert_eq!(backfill(to, to + 86_400).await, 429, "the minute's days are spent");

    let answer = http().delete(format!("{}{REGISTRATION_PATH}", fake.base_url())).bearer_auth(&access).send().await;
    assert_eq!(answer.unwrap().status().as_u16(), 204);
    assert!(!fake.registered(user));
    let last = fake.deliveries().last().cloned().unwrap();
    assert_eq!(last.body["deregistrations"][0]["userId"], user);
    let answer = http().get(format!("{}{USER_ID_PATH}", fake.base_url())).bearer_auth(&access).send().await;
    assert_eq!(answer.unwrap().status().as_u16(), 403, "the grant is gone");
}
