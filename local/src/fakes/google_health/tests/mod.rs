//! The fake Google Health's own tests, by concern, and the helpers they share: a client's side
//! of the OAuth dance, roll-up requests, and an independent reading of Tink keysets.

mod consent;
mod roll_up;
mod tokens;
mod webhooks;

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier;
use reqwest::Url;
use serde_json::json;

use super::super::common::{pkce_s256, random_token};
use super::super::test_support::{self, http, query_param, receiver, sorted_keys};
use super::wire::*;
use super::*;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
const PERSON: &str = "114477889900112233445";

fn fixture(name: &str) -> Vec<u8> {
    test_support::fixture("google_health", name)
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// (verifier, S256 challenge)
fn pkce() -> (String, String) {
    let verifier = random_token("test-verifier-");
    let challenge = pkce_s256(&verifier);
    (verifier, challenge)
}

fn authorize_url(fake: &FakeGoogleHealth, challenge: &str, scopes: &[&str]) -> String {
    let scope = scopes.join(" ");
    Url::parse_with_params(
        &fake.auth_url(),
        [
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", scope.as_str()),
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-42"),
        ],
    )
    .unwrap()
    .to_string()
}

async fn post_token(fake: &FakeGoogleHealth, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http().post(fake.token_url()).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn exchange(fake: &FakeGoogleHealth, code: &str, verifier: &str) -> (u16, Value) {
    post_token(
        fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", REDIRECT),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await
}

async fn refresh(fake: &FakeGoogleHealth, refresh_token: &str) -> (u16, Value) {
    post_token(
        fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await
}

/// The whole consent → code → token dance; returns the token answer.
async fn connect(fake: &FakeGoogleHealth, user: &str, granted: Option<&[&str]>) -> Value {
    let (verifier, challenge) = pkce();
    let url = authorize_url(fake, &challenge, &[ACTIVITY_SCOPE, SETTINGS_SCOPE]);
    let location = match granted {
        None => fake.approve(&url, user),
        Some(scopes) => fake.approve_with_scopes(&url, user, scopes),
    };
    let (status, token) = exchange(fake, &query_param(&location, "code").unwrap(), &verifier).await;
    assert_eq!(status, 200, "{token}");
    token
}

async fn get_identity(fake: &FakeGoogleHealth, access_token: &str) -> (u16, Value) {
    let response =
        http().get(format!("{}/v4/users/me/identity", fake.api_base())).bearer_auth(access_token).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn range(start: (i32, i32, i32), end: (i32, i32, i32)) -> Value {
    json!({
        "range": {
            "start": { "date": { "year": start.0, "month": start.1, "day": start.2 } },
            "end": { "date": { "year": end.0, "month": end.1, "day": end.2 } },
        },
        "windowSizeDays": 1,
    })
}

async fn roll_up(fake: &FakeGoogleHealth, access_token: &str, body: &Value) -> (u16, Value, HeaderMap) {
    let response = http()
        .post(format!("{}/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp", fake.api_base()))
        .bearer_auth(access_token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap(), headers)
}

/// (date, countSum as the client must read it) from one page.
fn parsed_points(page: &Value) -> Vec<(String, u64)> {
    let Some(points) = page.get("rollupDataPoints") else { return Vec::new() };
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let d = &p["civilStartTime"]["date"];
            let date = format!("{}-{:02}-{:02}", d["year"], d["month"].as_i64().unwrap(), d["day"].as_i64().unwrap());
            let steps = match &p["steps"]["countSum"] {
                Value::String(s) => s.parse().unwrap(),
                Value::Number(n) => n.as_u64().unwrap(),
                Value::Null => 0,
                other => panic!("countSum {other}"),
            };
            (date, steps)
        })
        .collect()
}

fn error_reason(body: &Value) -> Option<&str> {
    body["error"]["details"][0]["reason"].as_str()
}

// --- an independent reading of Tink keysets and signatures, as a subscriber would ---

fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = bytes[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    value
}

/// The protobuf fields of a message: (field number, varint or bytes).
fn proto_fields(bytes: &[u8]) -> Vec<(u64, Result<u64, Vec<u8>>)> {
    let mut at = 0;
    let mut fields = Vec::new();
    while at < bytes.len() {
        let tag = read_varint(bytes, &mut at);
        match tag & 7 {
            0 => fields.push((tag >> 3, Ok(read_varint(bytes, &mut at)))),
            2 => {
                let len = read_varint(bytes, &mut at) as usize;
                fields.push((tag >> 3, Err(bytes[at..at + len].to_vec())));
                at += len;
            }
            other => panic!("wire type {other}"),
        }
    }
    fields
}

fn keys_of(keyset: &Value) -> HashMap<u32, VerifyingKey> {
    let mut keys = HashMap::new();
    for key in keyset["key"].as_array().unwrap() {
        assert_eq!(key["keyData"]["typeUrl"], TINK_ECDSA_PUBLIC_KEY);
        assert_eq!(key["keyData"]["keyMaterialType"], "ASYMMETRIC_PUBLIC");
        assert_eq!(key["outputPrefixType"], "TINK");
        assert_eq!(key["status"], "ENABLED");
        let proto = STANDARD.decode(key["keyData"]["value"].as_str().unwrap()).unwrap();
        let fields = proto_fields(&proto);
        assert_eq!(fields[0], (1, Ok(0)), "version 0");
        let Err(params) = &fields[1].1 else { panic!("params") };
        assert_eq!(proto_fields(params), vec![(1, Ok(3)), (2, Ok(2)), (3, Ok(2))], "SHA256, NIST_P256, DER");
        let coordinate = |n: usize| {
            let Err(raw) = &fields[n].1 else { panic!("coordinate") };
            assert_eq!(raw.len(), 33);
            assert_eq!(raw[0], 0, "Google's coordinates carry a leading zero");
            raw[1..].to_vec()
        };
        let sec1 = [vec![0x04], coordinate(2), coordinate(3)].concat();
        keys.insert(key["keyId"].as_u64().unwrap() as u32, VerifyingKey::from_sec1_bytes(&sec1).unwrap());
    }
    keys
}

fn verifies(keys: &HashMap<u32, VerifyingKey>, body: &[u8], header_value: &str) -> bool {
    let raw = STANDARD.decode(header_value.trim()).unwrap();
    assert_eq!(raw[0], 0x01, "Tink prefix");
    let key_id = u32::from_be_bytes(raw[1..5].try_into().unwrap());
    let Some(key) = keys.get(&key_id) else { return false };
    let signature = Signature::from_der(&raw[5..]).unwrap();
    key.verify(body, &signature).is_ok()
}

async fn served_keyset(fake: &FakeGoogleHealth) -> Value {
    http().get(fake.keyset_url()).send().await.unwrap().json().await.unwrap()
}
