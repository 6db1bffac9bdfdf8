//! A fake Google Health on loopback for tests and the local stack: Google OAuth (consent page,
//! token and revoke endpoints), the Health API's identity and daily steps roll-up, the webhook
//! keyset, and Google's side of the webhooks (verification, signed notifications with retries).
//! Faithful to the "Google Health API" notes in ../shared/PROVIDERS.md and to the shapes in
//! ../shared/fixtures/google_health/.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use rand::Rng;
use reqwest::Url;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use super::common::IntoCivilDate;
use super::common::{
    Calls, Serving, account_picker, bearer_token, decision_forms, escape_html, first, found, hidden_inputs, http_url,
    lock, page, query_pairs, random_token, status_or_zero, subscriber_client,
};

/// The scope that reads steps; `dailyRollUp` answers 403 `MISSING_OAUTH_SCOPE` without it.
pub const ACTIVITY_SCOPE: &str = "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly";
/// The optional scope for the user's IANA time zone.
pub const SETTINGS_SCOPE: &str = "https://www.googleapis.com/auth/googlehealth.settings.readonly";
pub const DEFAULT_CLIENT_ID: &str = "fake-client-id";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-client-secret";
/// The header Google signs webhooks in (one guide says `GOOGLE-HEALTH-API-SIGNATURE`).
pub const SIGNATURE_HEADER: &str = "X-HEALTHAPI-SIGNATURE";
/// The subscription name notifications carry unless a `Notification` sets another.
pub const DEFAULT_SUBSCRIPTION_NAME: &str = "5e0b8a4c-7d21-4f6e-9a3b-c1d2e3f4a5b6";
/// The handshake body, byte for byte as fixtures/google_health/verification.json.
pub const VERIFICATION_BODY: &str = r#"{"type": "verification"}"#;

const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(600);
const DEFAULT_PAGE_SIZE: usize = 5;
const MAX_ROLLUP_DAYS: i64 = 90;
const HEALTH_DOMAIN: &str = "health.googleapis.com";
const TINK_ECDSA_PUBLIC_KEY: &str = "type.googleapis.com/google.crypto.tink.EcdsaPublicKey";

const AUTH_PATH: &str = "/o/oauth2/v2/auth";
const CONSENT_PATH: &str = "/o/oauth2/consent";
const TOKEN_PATH: &str = "/token";
const REVOKE_PATH: &str = "/revoke";
const KEYSET_PATH: &str = "/keyset";
const IDENTITY_PATH: &str = "/v4/users/me/identity";
const ROLLUP_PATH: &str = "/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp";

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("building the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Which endpoints a scripted fault hits: the Health API (identity and `dailyRollUp`), the
/// token endpoint, or the keyset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    Api,
    Token,
    Keyset,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `RESOURCE_EXHAUSTED`; the `Retry-After` header only when given (Google does not document it).
    RateLimited { retry_after: Option<u64> },
    /// 500 `INTERNAL` in the Google error shape.
    ServerError,
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

/// Tokens handed out by [`FakeGoogleHealth::grant_tokens`], for tests that skip the consent dance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

// ---------------------------------------------------------------------------------------------
// Shared state

struct Person {
    legacy_user_id: Option<String>,
    steps: BTreeMap<Date, u64>,
}

#[derive(Clone)]
struct GrantTerms {
    health_user_id: String,
    scopes: Vec<String>,
    offline: bool,
}

struct AuthCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    terms: GrantTerms,
    issued_at: Instant,
    redeemed: bool,
}

struct Grant {
    health_user_id: String,
    client_id: String,
    scopes: Vec<String>,
    revoked: bool,
}

struct AccessToken {
    grant: usize,
    expires_at: Instant,
}

struct WebhookKey {
    key_id: u32,
    signing_key: SigningKey,
}

struct Shared {
    client_id: String,
    client_secret: String,
    access_token_lifetime: Duration,
    code_lifetime: Duration,
    page_size: usize,
    people: BTreeMap<String, Person>,
    codes: HashMap<String, AuthCode>,
    grants: Vec<Grant>,
    refresh_tokens: HashMap<String, usize>,
    access_tokens: HashMap<String, AccessToken>,
    faults: HashMap<FaultTarget, VecDeque<Fault>>,
    calls: Calls,
    /// Oldest first; the last one is the primary (signing) key.
    keys: Vec<WebhookKey>,
    publish_newest_key: bool,
}

type SharedState = Arc<Mutex<Shared>>;

fn new_signing_key() -> SigningKey {
    // p256 0.13 wants rand_core 0.6, so draw the scalar with rand 0.9 and retry the
    // (astronomically rare) zero or out-of-range value.
    loop {
        let bytes: [u8; 32] = rand::rng().random();
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

impl Shared {
    fn new(client_id: String, client_secret: String) -> Self {
        let mut shared = Self {
            client_id,
            client_secret,
            access_token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            code_lifetime: DEFAULT_CODE_LIFETIME,
            page_size: DEFAULT_PAGE_SIZE,
            people: BTreeMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            faults: HashMap::new(),
            calls: Calls::default(),
            keys: Vec::new(),
            publish_newest_key: true,
        };
        shared.add_key();
        shared
    }

    fn add_key(&mut self) -> u32 {
        let key_id = loop {
            let id: u32 = rand::rng().random();
            if id != 0 && self.keys.iter().all(|k| k.key_id != id) {
                break id;
            }
        };
        self.keys.push(WebhookKey { key_id, signing_key: new_signing_key() });
        key_id
    }

    fn primary_key(&self) -> &WebhookKey {
        // `keys` is never empty: `new` adds one and `drop_old_keys` keeps the primary.
        &self.keys[self.keys.len() - 1]
    }

    fn sign(&self, body: &[u8]) -> String {
        let key = self.primary_key();
        let signature: Signature = key.signing_key.sign(body);
        let mut out = Vec::with_capacity(80);
        out.push(0x01); // Tink's TINK output prefix
        out.extend_from_slice(&key.key_id.to_be_bytes());
        out.extend_from_slice(signature.to_der().as_bytes());
        STANDARD.encode(out)
    }

    fn keyset_json(&self) -> Value {
        let published = if self.publish_newest_key { &self.keys[..] } else { &self.keys[..self.keys.len() - 1] };
        let keys: Vec<Value> = published
            .iter()
            .map(|key| {
                json!({
                    "keyData": {
                        "typeUrl": TINK_ECDSA_PUBLIC_KEY,
                        "value": STANDARD.encode(tink_ecdsa_public_key(key.signing_key.verifying_key())),
                        "keyMaterialType": "ASYMMETRIC_PUBLIC",
                    },
                    "status": "ENABLED",
                    "keyId": key.key_id,
                    "outputPrefixType": "TINK",
                })
            })
            .collect();
        let primary = published.last().map_or(0, |k| k.key_id);
        json!({ "primaryKeyId": primary, "key": keys })
    }

    fn person_mut(&mut self, health_user_id: &str) -> &mut Person {
        self.people
            .entry(health_user_id.to_owned())
            .or_insert_with(|| Person { legacy_user_id: None, steps: BTreeMap::new() })
    }

    fn new_grant(&mut self, health_user_id: &str, scopes: Vec<String>) -> usize {
        let client_id = self.client_id.clone();
        self.grants.push(Grant { health_user_id: health_user_id.to_owned(), client_id, scopes, revoked: false });
        self.grants.len() - 1
    }

    fn issue_access_token(&mut self, grant: usize) -> String {
        let token = random_token("ya29.fake-");
        let expires_at = Instant::now() + self.access_token_lifetime;
        self.access_tokens.insert(token.clone(), AccessToken { grant, expires_at });
        token
    }

    fn issue_refresh_token(&mut self, grant: usize) -> String {
        let token = random_token("1//fake-");
        self.refresh_tokens.insert(token.clone(), grant);
        token
    }

    fn grants_of<'a>(&'a mut self, health_user_id: &'a str) -> impl Iterator<Item = (usize, &'a mut Grant)> + 'a {
        self.grants.iter_mut().enumerate().filter(move |(_, g)| g.health_user_id == health_user_id)
    }

    /// The consent decision, shared by the HTML form and the test helpers: the redirect Location.
    fn decide(&mut self, request: &AuthorizeRequest, decision: Decision) -> Result<String, ConsentError> {
        let mut location = request.redirect_uri.clone();
        match decision {
            Decision::Deny => {
                let mut query = location.query_pairs_mut();
                query.append_pair("error", "access_denied");
                if let Some(state) = &request.state {
                    query.append_pair("state", state);
                }
            }
            Decision::Approve { health_user_id, granted } => {
                if !self.people.contains_key(&health_user_id) {
                    return Err(ConsentError::new(
                        "invalid_request",
                        format!("No account {health_user_id:?} on this fake: add_person first."),
                    ));
                }
                // The user can only untick what was asked for, never add to it.
                let scopes: Vec<String> = request.scopes.iter().filter(|s| granted.contains(s)).cloned().collect();
                let code = random_token("4/0fake-");
                let terms = GrantTerms { health_user_id, scopes: scopes.clone(), offline: request.offline };
                self.codes.insert(
                    code.clone(),
                    AuthCode {
                        client_id: request.client_id.clone(),
                        redirect_uri: request.redirect_uri_raw.clone(),
                        code_challenge: request.code_challenge.clone(),
                        terms,
                        issued_at: Instant::now(),
                        redeemed: false,
                    },
                );
                let mut query = location.query_pairs_mut();
                if let Some(state) = &request.state {
                    query.append_pair("state", state);
                }
                query.append_pair("code", &code);
                query.append_pair("scope", &scopes.join(" "));
            }
        }
        Ok(location.to_string())
    }

    fn client_from(&self, headers: &HeaderMap, fields: &[(String, String)]) -> Result<(), Refusal> {
        let (id, secret) = basic_credentials(headers).unwrap_or_else(|| {
            (
                first(fields, "client_id").unwrap_or_default().to_owned(),
                first(fields, "client_secret").map(str::to_owned),
            )
        });
        if id != self.client_id {
            return Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found."));
        }
        if secret.as_deref() != Some(self.client_secret.as_str()) {
            return Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized"));
        }
        Ok(())
    }

    fn exchange_code(&mut self, fields: &[(String, String)]) -> Result<Response, Refusal> {
        let Some(code) = first(fields, "code") else {
            return Err(invalid_request("Missing required parameter: code"));
        };
        let client_id = self.client_id.clone();
        let code_lifetime = self.code_lifetime;
        let Some(record) = self.codes.get_mut(code) else {
            return Err(invalid_grant("Malformed auth code."));
        };
        if record.redeemed {
            return Err(invalid_grant("The authorization code has already been redeemed."));
        }
        if record.issued_at.elapsed() >= code_lifetime {
            return Err(invalid_grant("The authorization code has expired."));
        }
        if record.client_id != client_id {
            return Err(invalid_grant("The authorization code was issued to another client."));
        }
        match first(fields, "redirect_uri") {
            None => {
                return Err(invalid_request("Missing required parameter: redirect_uri"));
            }
            Some(uri) if uri != record.redirect_uri => {
                return Err(invalid_grant("redirect_uri does not match the one in the authorization request."));
            }
            Some(_) => {}
        }
        let Some(verifier) = first(fields, "code_verifier") else {
            return Err(invalid_grant("Missing code verifier."));
        };
        if !is_valid_code_verifier(verifier) || pkce_s256(verifier) != record.code_challenge {
            return Err(invalid_grant("Invalid code verifier."));
        }
        // Redeemed only on success, so a client bug (say a wrong verifier) can be retried in a test.
        record.redeemed = true;
        let terms = record.terms.clone();
        let grant = self.new_grant(&terms.health_user_id, terms.scopes.clone());
        let access_token = self.issue_access_token(grant);
        // Google hands out a refresh token only for access_type=offline.
        let refresh_token = terms.offline.then(|| self.issue_refresh_token(grant));
        Ok(token_response(access_token, refresh_token, &terms.scopes, self.access_token_lifetime))
    }

    fn refresh(&mut self, fields: &[(String, String)]) -> Result<Response, Refusal> {
        let Some(token) = first(fields, "refresh_token") else {
            return Err(invalid_request("Missing required parameter: refresh_token"));
        };
        let Some(&grant) = self.refresh_tokens.get(token) else {
            return Err(invalid_grant("Token has been expired or revoked."));
        };
        if self.grants[grant].revoked {
            return Err(invalid_grant("Token has been expired or revoked."));
        }
        if self.grants[grant].client_id != self.client_id {
            return Err(invalid_grant("The refresh token was issued to another client."));
        }
        let scopes = self.grants[grant].scopes.clone();
        let access_token = self.issue_access_token(grant);
        // No rotation: the answer carries no refresh_token, so the client keeps the old one.
        Ok(token_response(access_token, None, &scopes, self.access_token_lifetime))
    }

    /// The grant behind a Bearer token, or the 401 Google answers for a missing, unknown,
    /// expired or revoked one.
    fn bearer_grant(&self, headers: &HeaderMap) -> Result<&Grant, Refusal> {
        let grant = bearer_token(headers)
            .and_then(|t| self.access_tokens.get(t))
            .filter(|t| t.expires_at > Instant::now())
            .map(|t| &self.grants[t.grant])
            .filter(|g| !g.revoked);
        grant.ok_or_else(unauthenticated)
    }
}

// ---------------------------------------------------------------------------------------------
// The handle

/// A running fake Google Health; stops serving when dropped or on [`FakeGoogleHealth::stop`].
pub struct FakeGoogleHealth {
    state: SharedState,
    http: reqwest::Client,
    serving: Serving,
}

impl FakeGoogleHealth {
    /// Serves on an ephemeral loopback port with the default client id and secret.
    ///
    /// # Panics
    /// If loopback cannot be bound: a broken test machine, not something a test can handle.
    pub async fn start() -> Self {
        Self::start_with_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await
    }

    /// Serves on an ephemeral loopback port, accepting only this OAuth client.
    pub async fn start_with_client(client_id: &str, client_secret: &str) -> Self {
        Self::serve(client_id, client_secret, 0).await.unwrap_or_else(|e| panic!("fake Google Health: {e}"))
    }

    /// Serves on `port` (0: any free port), for the local stack where the URL must be stable.
    pub async fn start_on_port(port: u16) -> Result<Self, FakeError> {
        Self::serve(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, port).await
    }

    async fn serve(client_id: &str, client_secret: &str, port: u16) -> Result<Self, FakeError> {
        let http = subscriber_client(Duration::from_secs(10)).build().map_err(FakeError::Client)?;
        let state: SharedState = Arc::new(Mutex::new(Shared::new(client_id.to_owned(), client_secret.to_owned())));
        let serving = Serving::start("fake Google Health", port, router(state.clone()))
            .await
            .map_err(|source| FakeError::Bind { port, source })?;
        Ok(Self { state, http, serving })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.serving.stop().await;
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.state)
    }

    // --- URLs ---

    pub fn base_url(&self) -> &str {
        self.serving.base_url()
    }

    pub fn auth_url(&self) -> String {
        format!("{}{AUTH_PATH}", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    pub fn revoke_url(&self) -> String {
        format!("{}{REVOKE_PATH}", self.base_url())
    }

    /// The Health API base: the API itself lives under `/v4/...`.
    pub fn api_base(&self) -> &str {
        self.serving.base_url()
    }

    pub fn keyset_url(&self) -> String {
        format!("{}{KEYSET_PATH}", self.base_url())
    }

    // --- configuration ---

    pub fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.lock().client_secret.clone()
    }

    /// Changes the one OAuth client the fake accepts (codes and tokens already issued keep their client).
    pub fn set_client(&self, client_id: &str, client_secret: &str) {
        let mut shared = self.lock();
        shared.client_id = client_id.to_owned();
        shared.client_secret = client_secret.to_owned();
    }

    /// Lifetime of access tokens issued from now on (`expires_in`); default 3599 s.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.lock().access_token_lifetime = lifetime;
    }

    /// How long an authorization code can be exchanged; default 10 minutes. Checked at exchange time.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.lock().code_lifetime = lifetime;
    }

    /// At most this many points per `dailyRollUp` page (default 5; 0 counts as 1).
    pub fn set_page_size(&self, page_size: usize) {
        self.lock().page_size = page_size.max(1);
    }

    // --- people and their steps ---

    /// Adds a person who can consent (or updates their legacy Fitbit id, keeping their steps).
    pub fn add_person(&self, health_user_id: &str, legacy_user_id: Option<&str>) {
        self.lock().person_mut(health_user_id).legacy_user_id = legacy_user_id.map(str::to_owned);
    }

    /// Sets the day's roll-up total; the person is added if unknown.
    pub fn set_steps(&self, health_user_id: &str, date: impl IntoCivilDate, steps: u64) {
        let date = date.into_civil_date();
        self.lock().person_mut(health_user_id).steps.insert(date, steps);
    }

    /// Removes the day's entry: `dailyRollUp` then leaves it out ("no data", not zero).
    pub fn clear_steps(&self, health_user_id: &str, date: impl IntoCivilDate) {
        let date = date.into_civil_date();
        if let Some(person) = self.lock().people.get_mut(health_user_id) {
            person.steps.remove(&date);
        }
    }

    // --- consent without a browser ---

    /// Approves `authorize_url` (as built by the client) as `health_user_id` with every requested
    /// scope; returns the redirect Location (`redirect_uri?state=..&code=..&scope=..`).
    ///
    /// # Panics
    /// Where the consent page would answer an error page (bad client, no PKCE S256, unknown person).
    pub fn approve(&self, authorize_url: &str, health_user_id: &str) -> String {
        let request = self.parse_authorize_url(authorize_url);
        let granted = request.scopes.clone();
        self.decide(authorize_url, &request, Decision::Approve { health_user_id: health_user_id.to_owned(), granted })
    }

    /// Approves with only `scopes` left ticked: requested scopes not listed are unticked (an
    /// empty slice unticks them all), and scopes never requested are ignored.
    pub fn approve_with_scopes(&self, authorize_url: &str, health_user_id: &str, scopes: &[&str]) -> String {
        let request = self.parse_authorize_url(authorize_url);
        let granted = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.decide(authorize_url, &request, Decision::Approve { health_user_id: health_user_id.to_owned(), granted })
    }

    /// Denies `authorize_url`: the Location carries `error=access_denied` and the state.
    pub fn deny(&self, authorize_url: &str) -> String {
        let request = self.parse_authorize_url(authorize_url);
        self.decide(authorize_url, &request, Decision::Deny)
    }

    fn decide(&self, authorize_url: &str, request: &AuthorizeRequest, decision: Decision) -> String {
        self.lock().decide(request, decision).unwrap_or_else(|e| panic!("consent for {authorize_url}: {e}"))
    }

    fn parse_authorize_url(&self, authorize_url: &str) -> AuthorizeRequest {
        AuthorizeRequest::parse(&query_pairs(authorize_url), &self.client_id())
            .unwrap_or_else(|e| panic!("the consent page would refuse {authorize_url}: {e}"))
    }

    /// Tokens for `health_user_id` with `scopes`, as if they had consented: for tests that are
    /// not about OAuth.
    pub fn grant_tokens(&self, health_user_id: &str, scopes: &[&str]) -> TokenPair {
        let mut shared = self.lock();
        shared.person_mut(health_user_id);
        let grant = shared.new_grant(health_user_id, scopes.iter().map(|s| (*s).to_owned()).collect());
        TokenPair { access_token: shared.issue_access_token(grant), refresh_token: shared.issue_refresh_token(grant) }
    }

    // --- grant controls ---

    /// The user revoked access: refresh tokens then get `invalid_grant`, access tokens 401.
    pub fn revoke_grant(&self, health_user_id: &str) {
        for (_, grant) in self.lock().grants_of(health_user_id) {
            grant.revoked = true;
        }
    }

    /// Every access token of `health_user_id` expires now (refresh tokens keep working).
    pub fn expire_access_tokens(&self, health_user_id: &str) {
        let mut shared = self.lock();
        let grants: Vec<usize> = shared.grants_of(health_user_id).map(|(i, _)| i).collect();
        let now = Instant::now();
        for token in shared.access_tokens.values_mut().filter(|t| grants.contains(&t.grant)) {
            token.expires_at = now;
        }
    }

    // --- faults and counters ---

    /// The next `times` requests to `target` get `fault` (queued after faults already scripted).
    pub fn fail_next(&self, target: FaultTarget, fault: Fault, times: u32) {
        let mut shared = self.lock();
        let queue = shared.faults.entry(target).or_default();
        queue.extend(std::iter::repeat_n(fault, times as usize));
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Requests received of `kind`, faulted ones included: "authorize", "consent", "token_code",
    /// "token_refresh", "token_other", "revoke", "identity", "rollup", "keyset".
    pub fn calls(&self, kind: &str) -> u64 {
        self.lock().calls.get(kind)
    }

    pub fn reset_calls(&self) {
        self.lock().calls.reset();
    }

    // --- webhook keys ---

    pub fn primary_key_id(&self) -> u32 {
        self.lock().primary_key().key_id
    }

    /// Every signing key id, oldest first (the last is the primary).
    pub fn key_ids(&self) -> Vec<u32> {
        self.lock().keys.iter().map(|k| k.key_id).collect()
    }

    pub fn verifying_key(&self, key_id: u32) -> Option<VerifyingKey> {
        self.lock().keys.iter().find(|k| k.key_id == key_id).map(|k| *k.signing_key.verifying_key())
    }

    /// A new signing key with a fresh random id becomes primary; older keys stay published.
    pub fn rotate_key(&self) -> u32 {
        self.lock().add_key()
    }

    /// Keeps only the primary key, in the keyset and for signing.
    pub fn drop_old_keys(&self) {
        let mut shared = self.lock();
        let keep = shared.keys.len() - 1;
        shared.keys.drain(..keep);
    }

    /// With `false`, `/keyset` leaves out the newest key (still used for signing), as a keyset
    /// served from a cache that predates a rotation.
    pub fn set_publish_newest_key(&self, publish: bool) {
        self.lock().publish_newest_key = publish;
    }

    /// What `/keyset` serves right now.
    pub fn keyset_json(&self) -> Value {
        self.lock().keyset_json()
    }

    /// The signature header value for `body` with the primary key: base64 of `0x01`, the
    /// big-endian key id and the DER ECDSA P-256 SHA-256 signature.
    pub fn sign(&self, body: &[u8]) -> String {
        self.lock().sign(body)
    }

    // --- the webhook sender ---

    /// One verification POST (`{"type": "verification"}`), with `Authorization` when given.
    /// Returns the status, or 0 when no HTTP answer came (refused, timed out).
    pub async fn send_verification(&self, url: &str, authorization: Option<&str>) -> u16 {
        let mut request = self.http.post(url).header(header::CONTENT_TYPE, "application/json").body(VERIFICATION_BODY);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        status_or_zero(request, url, "verification POST").await
    }

    /// Google's handshake: (status with the secret, status without it); a subscriber passes
    /// with (201, 401 or 403).
    pub async fn verify_endpoint(&self, url: &str, secret: &str) -> (u16, u16) {
        let with = self.send_verification(url, Some(secret)).await;
        let without = self.send_verification(url, None).await;
        (with, without)
    }

    /// Sends one signed notification, retrying (with doubling backoff) until a 204 or
    /// `max_attempts`, as Google does.
    pub async fn notify(&self, url: &str, notice: Notification) -> Delivery {
        let body = notice.body();
        self.deliver(url, body, &notice).await
    }

    /// Several notifications in one array body (Google sends up to 99); headers, retries and
    /// authorization come from the first notice (defaults when empty).
    pub async fn notify_many(&self, url: &str, notices: &[Notification]) -> Delivery {
        let objects: Vec<NotificationEnvelope<'_>> = notices.iter().map(Notification::envelope).collect();
        let body = serde_json::to_vec(&objects).unwrap_or_default();
        match notices.first() {
            Some(options) => self.deliver(url, body, options).await,
            None => self.deliver(url, body, &Notification::upsert("", Vec::<Date>::new())).await,
        }
    }

    /// One POST of `body` with exactly `headers` (plus `Content-Type: application/json` unless
    /// given): no signature added, no retry. Sign with [`FakeGoogleHealth::sign`] as needed.
    pub async fn notify_raw(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        let mut request = self.http.post(url);
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Attempt::from_result(request.body(body).send().await)
    }

    async fn deliver(&self, url: &str, body: Vec<u8>, options: &Notification) -> Delivery {
        let signature = self.sign(&body);
        let max_attempts = options.max_attempts.max(1);
        let mut statuses = Vec::new();
        let mut backoff = options.backoff;
        for attempt in 1..=max_attempts {
            let mut request = self
                .http
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(options.header_name.as_str(), signature.as_str());
            if let Some(value) = &options.authorization {
                request = request.header(header::AUTHORIZATION, value.as_str());
            }
            let outcome = Attempt::from_result(request.body(body.clone()).send().await);
            let delivered = outcome == Attempt::Status(204);
            statuses.push(outcome);
            if delivered || attempt == max_attempts {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
        Delivery { attempts: statuses.len() as u32, statuses, body, signature }
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Upsert,
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "UPSERT",
            Operation::Delete => "DELETE",
        }
    }
}

/// The changed span of each date a notification names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Local midnight to the next local midnight.
    WholeDay,
    /// From `start` to `end` on the same civil date.
    Between(Time, Time),
}

/// One notification object and how to deliver it. Built with [`Notification::upsert`] or
/// [`Notification::delete`]; the defaults reproduce fixtures/google_health/notification_array.json
/// (array body, 09:05–10:10 in America/New_York, all three interval forms).
#[derive(Clone, Debug)]
pub struct Notification {
    pub health_user_id: String,
    pub dates: Vec<Date>,
    pub operation: Operation,
    /// An array of one object (as observed live) rather than a bare object.
    pub as_array: bool,
    /// The signature header; Google's name is `X-HEALTHAPI-SIGNATURE`, any case is allowed.
    pub header_name: String,
    /// Sent verbatim in `Authorization` (some live events lack it).
    pub authorization: Option<String>,
    pub max_attempts: u32,
    /// The wait before the first retry; doubles after each.
    pub backoff: Duration,
    pub subscription_name: String,
    /// Turns the civil window into `physicalTimeInterval`.
    pub time_zone: TimeZone,
    pub window: Window,
    /// `civilDateTimeInterval` and `civilIso8601TimeInterval` next to the physical one
    /// (the DELETE fixture has only the physical one).
    pub civil_intervals: bool,
}

impl Notification {
    pub fn upsert<D: IntoCivilDate>(health_user_id: &str, dates: impl IntoIterator<Item = D>) -> Self {
        Self::new(health_user_id, dates, Operation::Upsert)
    }

    pub fn delete<D: IntoCivilDate>(health_user_id: &str, dates: impl IntoIterator<Item = D>) -> Self {
        Self::new(health_user_id, dates, Operation::Delete)
    }

    fn new<D: IntoCivilDate>(health_user_id: &str, dates: impl IntoIterator<Item = D>, operation: Operation) -> Self {
        Self {
            health_user_id: health_user_id.to_owned(),
            dates: dates.into_iter().map(IntoCivilDate::into_civil_date).collect(),
            operation,
            as_array: true,
            header_name: SIGNATURE_HEADER.to_owned(),
            authorization: None,
            max_attempts: 3,
            backoff: Duration::from_millis(50),
            subscription_name: DEFAULT_SUBSCRIPTION_NAME.to_owned(),
            time_zone: TimeZone::get("America/New_York").unwrap_or(TimeZone::UTC),
            window: Window::Between(Time::constant(9, 5, 0, 0), Time::constant(10, 10, 0, 0)),
            civil_intervals: true,
        }
    }

    /// A bare object body instead of an array of one.
    pub fn single_object(mut self) -> Self {
        self.as_array = false;
        self
    }

    pub fn header_name(mut self, name: &str) -> Self {
        self.header_name = name.to_owned();
        self
    }

    pub fn authorization(mut self, value: &str) -> Self {
        self.authorization = Some(value.to_owned());
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    pub fn backoff(mut self, first_wait: Duration) -> Self {
        self.backoff = first_wait;
        self
    }

    pub fn subscription_name(mut self, name: &str) -> Self {
        self.subscription_name = name.to_owned();
        self
    }

    pub fn time_zone(mut self, time_zone: TimeZone) -> Self {
        self.time_zone = time_zone;
        self
    }

    pub fn whole_day(mut self) -> Self {
        self.window = Window::WholeDay;
        self
    }

    pub fn between(mut self, start: Time, end: Time) -> Self {
        self.window = Window::Between(start, end);
        self
    }

    pub fn physical_only(mut self) -> Self {
        self.civil_intervals = false;
        self
    }

    /// The exact bytes [`FakeGoogleHealth::notify`] sends: compact JSON, no trailing newline.
    pub fn body(&self) -> Vec<u8> {
        let envelope = self.envelope();
        let body = if self.as_array { serde_json::to_vec(&[envelope]) } else { serde_json::to_vec(&envelope) };
        // Serializing these plain structs cannot fail.
        body.unwrap_or_default()
    }

    fn envelope(&self) -> NotificationEnvelope<'_> {
        NotificationEnvelope {
            data: NotificationData {
                version: "1",
                client_provided_subscription_name: &self.subscription_name,
                health_user_id: &self.health_user_id,
                operation: self.operation.as_str(),
                data_type: "steps",
                intervals: self.dates.iter().map(|d| self.interval(*d)).collect(),
            },
        }
    }

    fn interval(&self, date: Date) -> IntervalJson {
        let (start, end) = match self.window {
            Window::WholeDay => {
                let next = date.tomorrow().unwrap_or(date);
                (date.to_datetime(Time::midnight()), next.to_datetime(Time::midnight()))
            }
            Window::Between(start, end) => (date.to_datetime(start), date.to_datetime(end)),
        };
        let physical = |dt: DateTime| {
            dt.to_zoned_datetime(self.time_zone.clone()).map(|z| z.timestamp().to_string()).unwrap_or_default()
        };
        IntervalJson {
            physical_time_interval: TimeInterval { start_time: physical(start), end_time: physical(end) },
            civil_date_time_interval: self.civil_intervals.then(|| CivilInterval {
                start_date_time: CivilDateTimeJson::from(start),
                end_date_time: CivilDateTimeJson::from(end),
            }),
            civil_iso8601_time_interval: self
                .civil_intervals
                .then(|| TimeInterval { start_time: start.to_string(), end_time: end.to_string() }),
        }
    }
}

// Field order matters: the body is compared byte for byte with the fixtures.
#[derive(Serialize)]
struct NotificationEnvelope<'a> {
    data: NotificationData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationData<'a> {
    version: &'a str,
    client_provided_subscription_name: &'a str,
    health_user_id: &'a str,
    operation: &'a str,
    data_type: &'a str,
    intervals: Vec<IntervalJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IntervalJson {
    physical_time_interval: TimeInterval,
    #[serde(skip_serializing_if = "Option::is_none")]
    civil_date_time_interval: Option<CivilInterval>,
    #[serde(rename = "civilIso8601TimeInterval", skip_serializing_if = "Option::is_none")]
    civil_iso8601_time_interval: Option<TimeInterval>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimeInterval {
    start_time: String,
    end_time: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CivilInterval {
    start_date_time: CivilDateTimeJson,
    end_date_time: CivilDateTimeJson,
}

#[derive(Serialize)]
struct CivilDateTimeJson {
    date: DateJson,
    time: TimeOfDayJson,
}

#[derive(Serialize)]
struct DateJson {
    year: i16,
    month: i8,
    day: i8,
}

/// google.type.TimeOfDay in proto3 JSON: zero fields are left out, so midnight is `{}`.
#[derive(Serialize)]
struct TimeOfDayJson {
    #[serde(skip_serializing_if = "is_zero_i8")]
    hours: i8,
    #[serde(skip_serializing_if = "is_zero_i8")]
    minutes: i8,
    #[serde(skip_serializing_if = "is_zero_i8")]
    seconds: i8,
    #[serde(skip_serializing_if = "is_zero_i32")]
    nanos: i32,
}

fn is_zero_i8(v: &i8) -> bool {
    *v == 0
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

impl From<DateTime> for CivilDateTimeJson {
    fn from(dt: DateTime) -> Self {
        Self {
            date: DateJson { year: dt.year(), month: dt.month(), day: dt.day() },
            time: TimeOfDayJson {
                hours: dt.hour(),
                minutes: dt.minute(),
                seconds: dt.second(),
                nanos: dt.subsec_nanosecond(),
            },
        }
    }
}

/// What one delivery attempt got: an HTTP status, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Status(u16),
    Failed(String),
}

impl Attempt {
    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Status(status) => Some(*status),
            Attempt::Failed(_) => None,
        }
    }

    fn from_result(result: Result<reqwest::Response, reqwest::Error>) -> Self {
        match result {
            Ok(response) => Attempt::Status(response.status().as_u16()),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }
}

/// How a notification went: every attempt in order, and the exact body and signature sent.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub statuses: Vec<Attempt>,
    pub attempts: u32,
    pub body: Vec<u8>,
    pub signature: String,
}

impl Delivery {
    /// The subscriber answered 204 in the end.
    pub fn delivered(&self) -> bool {
        self.statuses.last() == Some(&Attempt::Status(204))
    }

    pub fn last_status(&self) -> Option<u16> {
        self.statuses.last().and_then(Attempt::status)
    }
}

// ---------------------------------------------------------------------------------------------
// Consent

struct AuthorizeRequest {
    client_id: String,
    redirect_uri: Url,
    /// As sent: the token request must repeat it exactly.
    redirect_uri_raw: String,
    scopes: Vec<String>,
    access_type: Option<String>,
    prompt: Option<String>,
    offline: bool,
    state: Option<String>,
    code_challenge: String,
    login_hint: Option<String>,
}

enum Decision {
    Approve { health_user_id: String, granted: Vec<String> },
    Deny,
}

#[derive(Debug)]
struct ConsentError {
    error: &'static str,
    description: String,
}

impl ConsentError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }
}

impl std::fmt::Display for ConsentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl AuthorizeRequest {
    fn parse(params: &[(String, String)], accepted_client_id: &str) -> Result<Self, ConsentError> {
        let client_id = first(params, "client_id").unwrap_or_default();
        if client_id.is_empty() {
            return Err(ConsentError::new("invalid_request", "Missing required parameter: client_id"));
        }
        if client_id != accepted_client_id {
            return Err(ConsentError::new("invalid_client", "The OAuth client was not found."));
        }
        let redirect_uri_raw = first(params, "redirect_uri").unwrap_or_default();
        let redirect_uri = http_url(redirect_uri_raw)
            .ok_or_else(|| ConsentError::new("invalid_request", "redirect_uri is missing or not an http(s) URL."))?;
        match first(params, "response_type") {
            Some("code") => {}
            None => return Err(ConsentError::new("invalid_request", "Missing required parameter: response_type")),
            Some(other) => {
                return Err(ConsentError::new(
                    "unsupported_response_type",
                    format!("Unsupported response_type {other:?}."),
                ));
            }
        }
        let mut scopes: Vec<String> = Vec::new();
        for scope in first(params, "scope").unwrap_or_default().split_whitespace() {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.is_empty() {
            return Err(ConsentError::new("invalid_request", "Missing required parameter: scope"));
        }
        let code_challenge = first(params, "code_challenge").unwrap_or_default();
        if code_challenge.is_empty() {
            return Err(ConsentError::new("invalid_request", "Missing required parameter: code_challenge (PKCE)."));
        }
        if first(params, "code_challenge_method") != Some("S256") {
            return Err(ConsentError::new("invalid_request", "code_challenge_method must be S256."));
        }
        let access_type = first(params, "access_type").map(str::to_owned);
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri,
            redirect_uri_raw: redirect_uri_raw.to_owned(),
            scopes,
            offline: access_type.as_deref() == Some("offline"),
            access_type,
            prompt: first(params, "prompt").map(str::to_owned),
            state: first(params, "state").map(str::to_owned),
            code_challenge: code_challenge.to_owned(),
            login_hint: first(params, "login_hint").filter(|h| !h.is_empty()).map(str::to_owned),
        })
    }

    /// The request again, as hidden form fields (the consent POST re-validates all of it).
    fn hidden_fields(&self) -> String {
        let mut fields = vec![
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri_raw.as_str()),
            ("response_type", "code"),
            ("code_challenge", self.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let scope = self.scopes.join(" ");
        fields.push(("scope", &scope));
        for (name, value) in [
            ("access_type", &self.access_type),
            ("prompt", &self.prompt),
            ("state", &self.state),
            ("login_hint", &self.login_hint),
        ] {
            if let Some(value) = value {
                fields.push((name, value));
            }
        }
        hidden_inputs(fields)
    }

    /// This same request signed in as `health_user_id`: the person picker's links.
    fn href_as(&self, health_user_id: &str) -> String {
        let mut url = Url::parse("http://fake.invalid/").unwrap_or_else(|_| self.redirect_uri.clone());
        url.set_path(AUTH_PATH);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", &self.client_id);
            query.append_pair("redirect_uri", &self.redirect_uri_raw);
            query.append_pair("response_type", "code");
            query.append_pair("scope", &self.scopes.join(" "));
            query.append_pair("code_challenge", &self.code_challenge);
            query.append_pair("code_challenge_method", "S256");
            for (name, value) in [("access_type", &self.access_type), ("prompt", &self.prompt), ("state", &self.state)]
            {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
            query.append_pair("login_hint", health_user_id);
        }
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    }
}

fn error_page(error: &ConsentError) -> Response {
    let body = format!(
        "<h1>Error 400: {}</h1>\n<p id=\"error\">{}</p>\n<p id=\"error-description\">{}</p>",
        escape_html(error.error),
        escape_html(error.error),
        escape_html(&error.description)
    );
    (StatusCode::BAD_REQUEST, Html(page("Error 400 (fake Google)", &body))).into_response()
}

fn picker_page(request: &AuthorizeRequest, people: &BTreeMap<String, Person>) -> String {
    let accounts = people.keys().map(|id| (id.as_str(), request.href_as(id)));
    account_picker("Choose an account (fake Google)", "Choose an account", "data-health-user-id", accounts)
}

fn consent_page(request: &AuthorizeRequest, health_user_id: &str) -> String {
    let hidden = request.hidden_fields();
    let checkboxes: Vec<String> = request
        .scopes
        .iter()
        .enumerate()
        .map(|(i, scope)| {
            format!(
                r#"<label><input type="checkbox" id="scope-{i}" name="granted_scope" value="{s}" checked> {s}</label><br>"#,
                s = escape_html(scope)
            )
        })
        .collect();
    let approve = format!("{hidden}\n<fieldset id=\"scopes\">\n{}\n</fieldset>", checkboxes.join("\n"));
    let body = format!(
        r#"<h1>Sign in with Google (fake)</h1>
<p id="account">Signed in as <b>{user}</b></p>
<p><b>{client}</b> wants access to your Google Account:</p>
{forms}"#,
        user = escape_html(health_user_id),
        client = escape_html(&request.client_id),
        forms = decision_forms(CONSENT_PATH, &approve, &hidden, "Cancel"),
    );
    page("Sign in - Google Accounts (fake)", &body)
}

// ---------------------------------------------------------------------------------------------
// HTTP

fn router(state: SharedState) -> Router {
    Router::new()
        .route(AUTH_PATH, get(authorize_page))
        .route(CONSENT_PATH, post(consent))
        .route(TOKEN_PATH, post(token))
        .route(REVOKE_PATH, post(revoke))
        .route(KEYSET_PATH, get(keyset))
        .route(IDENTITY_PATH, get(identity))
        .route(ROLLUP_PATH, post(daily_roll_up))
        .fallback(|| async { google_error(StatusCode::NOT_FOUND, "Requested entity was not found.", None) })
        .with_state(state)
}

async fn authorize_page(
    State(state): State<SharedState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let mut shared = lock(&state);
    shared.calls.count("authorize");
    let Ok(Query(params)) = query else {
        return error_page(&ConsentError::new("invalid_request", "The query string is malformed."));
    };
    let request = match AuthorizeRequest::parse(&params, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    match &request.login_hint {
        None => Html(picker_page(&request, &shared.people)).into_response(),
        Some(user) if !shared.people.contains_key(user) => {
            error_page(&ConsentError::new("invalid_request", format!("No account {user:?} on this fake.")))
        }
        Some(user) => Html(consent_page(&request, user)).into_response(),
    }
}

async fn consent(
    State(state): State<SharedState>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let mut shared = lock(&state);
    shared.calls.count("consent");
    let Ok(Form(fields)) = form else {
        return error_page(&ConsentError::new("invalid_request", "The consent form is malformed."));
    };
    let request = match AuthorizeRequest::parse(&fields, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    let decision = match first(&fields, "decision") {
        Some("deny") => Decision::Deny,
        Some("approve") => {
            let Some(health_user_id) = request.login_hint.clone() else {
                return error_page(&ConsentError::new("invalid_request", "No account was chosen."));
            };
            let granted = fields.iter().filter(|(k, _)| k == "granted_scope").map(|(_, v)| v.clone()).collect();
            Decision::Approve { health_user_id, granted }
        }
        _ => return error_page(&ConsentError::new("invalid_request", "decision must be approve or deny.")),
    };
    match shared.decide(&request, decision) {
        Ok(location) => found(&location).unwrap_or_else(|| {
            error_page(&ConsentError::new("invalid_request", "The redirect URL is not a valid header value."))
        }),
        Err(e) => error_page(&e),
    }
}

async fn token(
    State(state): State<SharedState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    let grant_type = first(&fields, "grant_type").map(str::to_owned);
    let kind = match grant_type.as_deref() {
        Some("authorization_code") => "token_code",
        Some("refresh_token") => "token_refresh",
        _ => "token_other",
    };
    lock(&state).calls.count(kind);
    if let Some(response) = take_fault(&state, FaultTarget::Token).await {
        return response;
    }
    let mut shared = lock(&state);
    let answer = shared.client_from(&headers, &fields).and_then(|()| match grant_type.as_deref() {
        Some("authorization_code") => shared.exchange_code(&fields),
        Some("refresh_token") => shared.refresh(&fields),
        None => Err(invalid_request("Missing required parameter: grant_type")),
        Some(_) => Err(oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Invalid grant_type.")),
    });
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn revoke(
    State(state): State<SharedState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let mut shared = lock(&state);
    shared.calls.count("revoke");
    // Google takes `token` in the form body or in the query string.
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let token = first(&form, "token").or_else(|| first(&query, "token")).unwrap_or_default();
    let grant = shared.refresh_tokens.get(token).copied().or_else(|| shared.access_tokens.get(token).map(|t| t.grant));
    match grant {
        Some(grant) if !shared.grants[grant].revoked => {
            shared.grants[grant].revoked = true;
            StatusCode::OK.into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "invalid_token", "Token expired or revoked").into_response(),
    }
}

async fn keyset(State(state): State<SharedState>) -> Response {
    lock(&state).calls.count("keyset");
    if let Some(response) = take_fault(&state, FaultTarget::Keyset).await {
        return response;
    }
    Json(lock(&state).keyset_json()).into_response()
}

async fn identity(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    lock(&state).calls.count("identity");
    if let Some(response) = take_fault(&state, FaultTarget::Api).await {
        return response;
    }
    let shared = lock(&state);
    let grant = match shared.bearer_grant(&headers) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    let legacy = shared.people.get(&grant.health_user_id).and_then(|p| p.legacy_user_id.clone()).unwrap_or_default();
    Json(json!({
        "name": "users/me/identity",
        "healthUserId": grant.health_user_id,
        "legacyUserId": legacy,
    }))
    .into_response()
}

async fn daily_roll_up(
    State(state): State<SharedState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Response {
    lock(&state).calls.count("rollup");
    if let Some(response) = take_fault(&state, FaultTarget::Api).await {
        return response;
    }
    let shared = lock(&state);
    let grant = match shared.bearer_grant(&headers) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    if !grant.scopes.iter().any(|s| s == ACTIVITY_SCOPE) {
        return google_error(
            StatusCode::FORBIDDEN,
            "The caller does not have the required scope.",
            Some(error_info("MISSING_OAUTH_SCOPE", Some(json!({ "method": "dailyRollUp" })))),
        )
        .into_response();
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let request = match RollupRequest::parse(&body, first(&query, "pageToken")) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let days: Vec<(Date, u64)> = shared
        .people
        .get(&grant.health_user_id)
        .map(|p| p.steps.range(request.start..request.end).map(|(d, s)| (*d, *s)).collect())
        .unwrap_or_default();
    let offset = match &request.page_token {
        None => 0,
        Some(token) => match decode_page_token(token, request.start, request.end) {
            Some(offset) if offset <= days.len() => offset,
            _ => return invalid_argument("Invalid page token.", None).into_response(),
        },
    };
    let end = days.len().min(offset + shared.page_size);
    let page = &days[offset..end];
    // Order is undocumented: evens then odds (the fixture's 21, 23, 22, 24), never sorted.
    let points: Vec<Value> =
        page.iter().step_by(2).chain(page.iter().skip(1).step_by(2)).map(|(d, s)| rollup_point(*d, *s)).collect();
    let mut answer = serde_json::Map::new();
    // proto3 JSON leaves out an empty repeated field: no day with data is `{}`.
    if !points.is_empty() {
        answer.insert("rollupDataPoints".into(), Value::Array(points));
    }
    if end < days.len() {
        answer.insert("nextPageToken".into(), Value::String(encode_page_token(end, request.start, request.end)));
    }
    Json(Value::Object(answer)).into_response()
}

struct RollupRequest {
    start: Date,
    end: Date,
    page_token: Option<String>,
}

impl RollupRequest {
    fn parse(body: &[u8], query_page_token: Option<&str>) -> Result<Self, Refusal> {
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| invalid_argument(&format!("Invalid JSON payload received. {e}"), None))?;
        let start = range_date(&body, "start")?;
        let end = range_date(&body, "end")?;
        if json_int(body.get("windowSizeDays")) != Some(1) {
            return Err(invalid_argument("windowSizeDays must be 1.", None));
        }
        if end <= start {
            return Err(invalid_argument("range.end must be after range.start.", None));
        }
        if start.duration_until(end).as_hours() / 24 > MAX_ROLLUP_DAYS {
            return Err(invalid_argument(
                "The requested range exceeds the maximum.",
                Some(error_info("INVALID_ROLLUP_QUERY_DURATION", None)),
            ));
        }
        let page_token = match body.get("pageToken") {
            None | Some(Value::Null) => query_page_token.map(str::to_owned),
            Some(Value::String(token)) => Some(token.clone()),
            Some(_) => return Err(invalid_argument("pageToken must be a string.", None)),
        };
        Ok(Self { start, end, page_token: page_token.filter(|t| !t.is_empty()) })
    }
}

fn range_date(body: &Value, which: &str) -> Result<Date, Refusal> {
    let bad = || invalid_argument(&format!("Invalid value at 'range.{which}.date'."), None);
    let date = body.get("range").and_then(|r| r.get(which)).and_then(|b| b.get("date")).ok_or_else(bad)?;
    let part = |name: &str| json_int(date.get(name));
    let (Some(year), Some(month), Some(day)) = (part("year"), part("month"), part("day")) else {
        return Err(bad());
    };
    let year = i16::try_from(year).map_err(|_| bad())?;
    let month = i8::try_from(month).map_err(|_| bad())?;
    let day = i8::try_from(day).map_err(|_| bad())?;
    Date::new(year, month, day).map_err(|_| bad())
}

/// An integer field as proto3 JSON allows it: a number or a decimal string.
fn json_int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One roll-up point. The forms vary by day so clients meet all of them, as in the fixtures:
/// odd days send `countSum` as a string (`"0"` a true zero), even days as a JSON number and a
/// zero as `steps: {}`; days ≡ 2 (mod 4) leave out `time` (midnight).
fn rollup_point(date: Date, steps: u64) -> Value {
    let next = date.tomorrow().unwrap_or(date);
    let civil = |d: Date| {
        let ymd = json!({ "year": d.year(), "month": d.month(), "day": d.day() });
        if date.day() % 4 == 2 { json!({ "date": ymd }) } else { json!({ "date": ymd, "time": {} }) }
    };
    let steps = match (date.day() % 2 == 0, steps) {
        (true, 0) => json!({}),
        (true, n) => json!({ "countSum": n }),
        (false, n) => json!({ "countSum": n.to_string() }),
    };
    json!({ "civilStartTime": civil(date), "civilEndTime": civil(next), "steps": steps })
}

// The page token is opaque to clients; it binds the offset to the range it was issued for.
fn encode_page_token(offset: usize, start: Date, end: Date) -> String {
    URL_SAFE_NO_PAD.encode(format!("rollup:{offset}:{start}:{end}"))
}

fn decode_page_token(token: &str, start: Date, end: Date) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = raw.split(':');
    let (tag, offset, token_start, token_end) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let same_range = token_start == start.to_string() && token_end == end.to_string();
    (tag == "rollup" && same_range && parts.next().is_none()).then(|| offset.parse().ok()).flatten()
}

async fn take_fault(state: &SharedState, target: FaultTarget) -> Option<Response> {
    let fault = lock(state).faults.get_mut(&target).and_then(VecDeque::pop_front)?;
    match fault {
        Fault::Slow(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
        Fault::ServerError => {
            Some(google_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error encountered.", None).into_response())
        }
        Fault::RateLimited { retry_after } => {
            let mut response = google_error(StatusCode::TOO_MANY_REQUESTS, "Quota exceeded.", None).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Some(response)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire formats

/// Tink's `EcdsaPublicKey` protobuf, written by hand: version 0; params {hash SHA256 = 3,
/// curve NIST_P256 = 2, encoding DER = 2}; x and y as 33 bytes with a leading zero, as Google's.
fn tink_ecdsa_public_key(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    // Uncompressed SEC1: 0x04 || x (32) || y (32).
    let bytes = point.as_bytes();
    let (x, y) = (bytes.get(1..33).unwrap_or_default(), bytes.get(33..65).unwrap_or_default());
    let mut out = vec![0x08, 0x00, 0x12, 0x06, 0x08, 0x03, 0x10, 0x02, 0x18, 0x02];
    for (tag, coordinate) in [(0x1a, x), (0x22, y)] {
        out.push(tag);
        out.push(33);
        out.push(0x00);
        out.extend_from_slice(coordinate);
    }
    out
}

fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636: 43 to 128 unreserved characters.
fn is_valid_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), Some(secret.to_owned())))
}

#[derive(Serialize)]
struct TokenJson<'a> {
    access_token: String,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    token_type: &'a str,
}

fn token_response(
    access_token: String,
    refresh_token: Option<String>,
    scopes: &[String],
    lifetime: Duration,
) -> Response {
    let body = TokenJson {
        access_token,
        expires_in: lifetime.as_secs(),
        refresh_token,
        scope: scopes.join(" "),
        token_type: "Bearer",
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// A refusal in one of Google's two error shapes, turned into a response at the edge.
#[derive(Debug)]
enum Refusal {
    /// The API shape: `{"error": {"code", "message", "status", "details"?}}`.
    Api { status: StatusCode, message: String, detail: Option<Value> },
    /// The OAuth shape: `{"error", "error_description"}`.
    OAuth { status: StatusCode, error: &'static str, description: &'static str },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::OAuth { status, error, description } => {
                (status, Json(json!({ "error": error, "error_description": description }))).into_response()
            }
            Refusal::Api { status, message, detail } => {
                let status_name = match status.as_u16() {
                    400 => "INVALID_ARGUMENT",
                    401 => "UNAUTHENTICATED",
                    403 => "PERMISSION_DENIED",
                    404 => "NOT_FOUND",
                    429 => "RESOURCE_EXHAUSTED",
                    _ => "INTERNAL",
                };
                let mut error = json!({ "code": status.as_u16(), "message": message, "status": status_name });
                if let Some(detail) = detail {
                    error["details"] = json!([detail]);
                }
                let mut response = (status, Json(json!({ "error": error }))).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(
                            r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#,
                        ),
                    );
                }
                response
            }
        }
    }
}

fn oauth_error(status: StatusCode, error: &'static str, description: &'static str) -> Refusal {
    Refusal::OAuth { status, error, description }
}

fn invalid_request(description: &'static str) -> Refusal {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: &'static str) -> Refusal {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn error_info(reason: &str, metadata: Option<Value>) -> Value {
    let mut info = json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": HEALTH_DOMAIN,
    });
    if let Some(metadata) = metadata {
        info["metadata"] = metadata;
    }
    info
}

fn google_error(status: StatusCode, message: &str, detail: Option<Value>) -> Refusal {
    Refusal::Api { status, message: message.to_owned(), detail }
}

fn invalid_argument(message: &str, detail: Option<Value>) -> Refusal {
    google_error(StatusCode::BAD_REQUEST, message, detail)
}

fn unauthenticated() -> Refusal {
    google_error(StatusCode::UNAUTHORIZED, "Request had invalid authentication credentials.", None)
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{self, http, query_param, receiver, sorted_keys};
    use super::*;
    use p256::ecdsa::signature::Verifier;

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
        let response = http()
            .get(format!("{}/v4/users/me/identity", fake.api_base()))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
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
                let date =
                    format!("{}-{:02}-{:02}", d["year"], d["month"].as_i64().unwrap(), d["day"].as_i64().unwrap());
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

    // --- consent ---

    #[test]
    fn the_handle_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<FakeGoogleHealth>();
        shareable::<Notification>();
    }

    #[test]
    fn dates_can_be_given_as_strings_slices_or_dates() {
        let from_slice = Notification::upsert(PERSON, &["2026-11-24", "2026-11-25"][..]);
        let from_dates = Notification::upsert(PERSON, vec![Date::constant(2026, 11, 24), Date::constant(2026, 11, 25)]);

        assert_eq!(from_slice.dates, from_dates.dates);
    }

    #[tokio::test]
    async fn the_consent_page_offers_approve_and_deny_with_every_requested_scope_ticked() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let url = format!("{}&login_hint={PERSON}", authorize_url(&fake, &pkce().1, &[ACTIVITY_SCOPE, SETTINGS_SCOPE]));

        let response = http().get(&url).send().await.unwrap();

        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        assert!(html.contains(r#"id="approve""#) && html.contains(r#"id="deny""#), "{html}");
        assert!(html.contains(&format!(r#"name="granted_scope" value="{ACTIVITY_SCOPE}" checked"#)), "{html}");
        assert!(html.contains(&format!(r#"name="granted_scope" value="{SETTINGS_SCOPE}" checked"#)), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="state" value="st-42">"#), "{html}");
        assert_eq!(fake.calls("authorize"), 1);
    }

    #[tokio::test]
    async fn without_a_login_hint_the_consent_page_lists_the_people_to_sign_in_as() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person("alice-1", None);
        fake.add_person("bob-2", Some("228S74"));

        let html =
            http().get(authorize_url(&fake, &pkce().1, &[ACTIVITY_SCOPE])).send().await.unwrap().text().await.unwrap();

        assert!(html.contains(r#"id="account-0" data-health-user-id="alice-1""#), "{html}");
        assert!(html.contains(r#"id="account-1" data-health-user-id="bob-2""#), "{html}");
        assert!(html.contains("login_hint=bob-2"), "{html}");
    }

    #[tokio::test]
    async fn the_consent_page_refuses_an_unknown_client_a_token_response_type_and_a_plain_challenge() {
        let fake = FakeGoogleHealth::start().await;
        let good = authorize_url(&fake, &pkce().1, &[ACTIVITY_SCOPE]);
        let bad_urls = [
            good.replace("client_id=fake-client-id", "client_id=someone-else"),
            good.replace("response_type=code", "response_type=token"),
            good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            good.replace("code_challenge_method=S256", ""),
        ];
        for url in bad_urls {
            let response = http().get(&url).send().await.unwrap();
            assert_eq!(response.status(), 400, "{url}");
            assert!(response.text().await.unwrap().contains(r#"id="error""#));
        }
    }

    #[tokio::test]
    async fn approving_the_form_redirects_with_a_code_the_state_and_only_the_ticked_scopes() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let (verifier, challenge) = pkce();
        let scope = format!("{ACTIVITY_SCOPE} {SETTINGS_SCOPE}");
        // What a browser posts with the settings box unticked.
        let form = [
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", scope.as_str()),
            ("access_type", "offline"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "st-42"),
            ("login_hint", PERSON),
            ("granted_scope", ACTIVITY_SCOPE),
            ("decision", "approve"),
        ];

        let response = http().post(format!("{}/o/oauth2/consent", fake.base_url())).form(&form).send().await.unwrap();

        assert_eq!(response.status(), 302);
        let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
        assert_eq!(query_param(&location, "state").as_deref(), Some("st-42"));
        let (status, token) = exchange(&fake, &query_param(&location, "code").unwrap(), &verifier).await;
        assert_eq!(status, 200);
        assert_eq!(token["scope"], ACTIVITY_SCOPE);
    }

    #[tokio::test]
    async fn denying_the_form_redirects_with_access_denied_and_the_state() {
        let fake = FakeGoogleHealth::start().await;
        let challenge = pkce().1;
        let form = [
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", ACTIVITY_SCOPE),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "st-42"),
            ("decision", "deny"),
        ];

        let response = http().post(format!("{}/o/oauth2/consent", fake.base_url())).form(&form).send().await.unwrap();

        assert_eq!(response.status(), 302);
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(location, format!("{REDIRECT}?error=access_denied&state=st-42"));
        assert_eq!(fake.deny(&authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE])), location);
    }

    // --- tokens ---

    #[tokio::test]
    async fn a_code_exchanged_with_the_right_verifier_answers_like_the_fixture_and_identifies_the_person() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, Some("228S74"));

        let token = connect(&fake, PERSON, Some(&[ACTIVITY_SCOPE])).await;

        assert_eq!(sorted_keys(&token), sorted_keys(&fixture_json("token_code_exchange.json")));
        assert_eq!(token["expires_in"], 3599);
        assert_eq!(token["token_type"], "Bearer");
        assert_eq!(token["scope"], ACTIVITY_SCOPE);
        let (status, identity) = get_identity(&fake, token["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(identity, fixture_json("identity.json"));
        assert_eq!(fake.calls("token_code"), 1);
        assert_eq!(fake.calls("identity"), 1);
    }

    #[tokio::test]
    async fn a_person_without_a_fitbit_past_has_an_empty_legacy_user_id() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person("pixel-only-7", None);
        let tokens = fake.grant_tokens("pixel-only-7", &[ACTIVITY_SCOPE]);

        let (_, identity) = get_identity(&fake, &tokens.access_token).await;

        assert_eq!(
            identity,
            json!({ "name": "users/me/identity", "healthUserId": "pixel-only-7", "legacyUserId": "" })
        );
    }

    #[tokio::test]
    async fn a_wrong_verifier_is_refused_with_invalid_grant_and_the_code_still_works_after() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let (verifier, challenge) = pkce();
        let location = fake.approve(&authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]), PERSON);
        let code = query_param(&location, "code").unwrap();

        let (status, body) = exchange(&fake, &code, &pkce().0).await;

        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        assert_eq!(sorted_keys(&body), sorted_keys(&fixture_json("token_invalid_grant.json")));
        assert_eq!(exchange(&fake, &code, &verifier).await.0, 200);
    }

    #[tokio::test]
    async fn a_code_cannot_be_exchanged_twice() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let (verifier, challenge) = pkce();
        let location = fake.approve(&authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]), PERSON);
        let code = query_param(&location, "code").unwrap();
        assert_eq!(exchange(&fake, &code, &verifier).await.0, 200);

        let (status, body) = exchange(&fake, &code, &verifier).await;

        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }

    #[tokio::test]
    async fn an_expired_code_or_another_redirect_uri_is_refused_with_invalid_grant() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let (verifier, challenge) = pkce();
        let url = authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]);
        let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
        let (status, body) = post_token(
            &fake,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", "http://127.0.0.1:9/oauth/callback/"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
            ],
        )
        .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

        fake.set_code_lifetime(Duration::ZERO);
        let (status, body) = exchange(&fake, &code, &verifier).await;

        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        assert_eq!(body["error_description"], "The authorization code has expired.");
    }

    #[tokio::test]
    async fn an_unknown_client_or_a_wrong_secret_gets_401_invalid_client() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
        let attempts = [("someone-else", DEFAULT_CLIENT_SECRET), (DEFAULT_CLIENT_ID, "wrong-secret")];
        for (client_id, secret) in attempts {
            let (status, body) = post_token(
                &fake,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &tokens.refresh_token),
                    ("client_id", client_id),
                    ("client_secret", secret),
                ],
            )
            .await;
            assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{client_id}");
        }
        // HTTP Basic client authentication works as well as the form fields.
        let response = http()
            .post(fake.token_url())
            .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens.refresh_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn a_refresh_gives_a_new_access_token_and_no_refresh_token_so_the_old_one_keeps_working() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let token = connect(&fake, PERSON, None).await;
        let refresh_token = token["refresh_token"].as_str().unwrap();

        let (status, first_refresh) = refresh(&fake, refresh_token).await;
        let (_, second_refresh) = refresh(&fake, refresh_token).await;

        assert_eq!(status, 200);
        assert_eq!(sorted_keys(&first_refresh), sorted_keys(&fixture_json("token_refresh.json")));
        assert_eq!(first_refresh["scope"], format!("{ACTIVITY_SCOPE} {SETTINGS_SCOPE}"));
        assert_ne!(first_refresh["access_token"], token["access_token"]);
        assert_ne!(second_refresh["access_token"], first_refresh["access_token"]);
        assert_eq!(get_identity(&fake, second_refresh["access_token"].as_str().unwrap()).await.0, 200);
        assert_eq!(fake.calls("token_refresh"), 2);
    }

    #[tokio::test]
    async fn a_revoked_grant_refuses_refresh_with_invalid_grant_and_its_access_tokens_with_401() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

        fake.revoke_grant(PERSON);

        let (status, body) = refresh(&fake, &tokens.refresh_token).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        let (status, body) = get_identity(&fake, &tokens.access_token).await;
        assert_eq!(status, 401);
        assert_eq!(body, fixture_json("error_401.json"));
    }

    #[tokio::test]
    async fn the_revoke_endpoint_revokes_the_grant_behind_the_token_it_is_given() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
        let other = fake.grant_tokens("someone-else", &[ACTIVITY_SCOPE]);

        let response = http().post(fake.revoke_url()).form(&[("token", &tokens.refresh_token)]).send().await.unwrap();

        assert_eq!(response.status(), 200);
        assert_eq!(get_identity(&fake, &tokens.access_token).await.0, 401);
        assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 400);
        assert_eq!(get_identity(&fake, &other.access_token).await.0, 200);
        let again = http().post(fake.revoke_url()).form(&[("token", &tokens.refresh_token)]).send().await.unwrap();
        assert_eq!(again.status(), 400);
        assert_eq!(fake.calls("revoke"), 2);
    }

    #[tokio::test]
    async fn an_expired_access_token_gets_401_until_refreshed() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

        fake.expire_access_tokens(PERSON);

        let (status, body) = get_identity(&fake, &tokens.access_token).await;
        assert_eq!((status, body), (401, fixture_json("error_401.json")));
        let (_, refreshed) = refresh(&fake, &tokens.refresh_token).await;
        assert_eq!(get_identity(&fake, refreshed["access_token"].as_str().unwrap()).await.0, 200);
        assert_eq!(get_identity(&fake, "ya29.never-issued").await.0, 401);
    }

    #[tokio::test]
    async fn without_access_type_offline_the_code_exchange_has_no_refresh_token() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let (verifier, challenge) = pkce();
        let url =
            authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]).replace("access_type=offline", "access_type=online");

        let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
        let (status, token) = exchange(&fake, &code, &verifier).await;

        assert_eq!(status, 200);
        assert!(token.get("refresh_token").is_none(), "{token}");
    }

    // --- dailyRollUp ---

    #[tokio::test]
    async fn a_token_without_the_activity_scope_gets_403_missing_oauth_scope_from_roll_up() {
        let fake = FakeGoogleHealth::start().await;
        fake.add_person(PERSON, None);
        let token = connect(&fake, PERSON, Some(&[SETTINGS_SCOPE])).await;
        assert_eq!(token["scope"], SETTINGS_SCOPE);

        let (status, body, _) =
            roll_up(&fake, token["access_token"].as_str().unwrap(), &range((2026, 11, 21), (2026, 11, 26))).await;

        assert_eq!(status, 403);
        assert_eq!(body, fixture_json("error_403_missing_scope.json"));
    }

    #[tokio::test]
    async fn roll_up_refuses_more_than_90_days_with_invalid_rollup_query_duration_but_takes_exactly_90() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

        let (status, body, _) = roll_up(&fake, &tokens.access_token, &range((2026, 1, 1), (2026, 4, 2))).await;
        assert_eq!(status, 400);
        assert_eq!(body, fixture_json("error_400_range.json"));

        let (status, _, _) = roll_up(&fake, &tokens.access_token, &range((2026, 1, 1), (2026, 4, 1))).await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn roll_up_refuses_an_empty_range_another_window_and_malformed_bodies_with_invalid_argument() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
        let mut weekly = range((2026, 11, 1), (2026, 11, 8));
        weekly["windowSizeDays"] = json!(7);
        let bodies = [
            range((2026, 11, 8), (2026, 11, 8)),
            range((2026, 11, 8), (2026, 11, 1)),
            weekly,
            range((2026, 2, 30), (2026, 3, 2)),
            json!({ "windowSizeDays": 1 }),
            json!("not an object"),
        ];
        for body in bodies {
            let (status, answer, _) = roll_up(&fake, &tokens.access_token, &body).await;
            assert_eq!((status, answer["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{body}");
            assert_eq!(error_reason(&answer), None);
        }
        let response = http()
            .post(format!("{}/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp", fake.api_base()))
            .bearer_auth(&tokens.access_token)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }

    #[tokio::test]
    async fn roll_up_reproduces_the_fixture_pages_for_the_fixture_days() {
        let fake = FakeGoogleHealth::start().await;
        for (day, steps) in [("2026-11-21", 11873), ("2026-11-22", 6240), ("2026-11-23", 0), ("2026-11-24", 0)] {
            fake.set_steps(PERSON, day, steps);
        }
        fake.set_steps(PERSON, Date::constant(2026, 11, 25), 4310);
        fake.set_page_size(4);
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

        let (_, page1, _) = roll_up(&fake, &tokens.access_token, &range((2026, 11, 21), (2026, 11, 27))).await;
        let mut next = range((2026, 11, 21), (2026, 11, 27));
        next["pageToken"] = page1["nextPageToken"].clone();
        let (_, page2, _) = roll_up(&fake, &tokens.access_token, &next).await;

        assert_eq!(page1["rollupDataPoints"], fixture_json("daily_rollup.json")["rollupDataPoints"]);
        assert!(page1["nextPageToken"].is_string());
        assert_eq!(page2, fixture_json("daily_rollup_page2.json"));
    }

    #[tokio::test]
    async fn roll_up_pages_only_days_with_data_out_of_order_and_in_every_count_form() {
        let fake = FakeGoogleHealth::start().await;
        let days = [("2026-03-01", 10), ("2026-03-02", 0), ("2026-03-03", 0), ("2026-03-04", 44), ("2026-03-06", 66)];
        for (day, steps) in days {
            fake.set_steps(PERSON, day, steps);
        }
        for day in 7..=9 {
            fake.set_steps(PERSON, Date::constant(2026, 3, day), 1000 + day as u64);
        }
        fake.set_steps(PERSON, "2026-02-28", 5); // outside the range
        fake.set_steps(PERSON, "2026-03-10", 5); // the exclusive end
        fake.clear_steps(PERSON, "2026-03-10");
        fake.set_steps(PERSON, "2026-03-10", 5);
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
        let body = range((2026, 3, 1), (2026, 3, 10));

        let (_, page1, _) = roll_up(&fake, &tokens.access_token, &body).await;
        // The token may come in the query string too.
        let token = page1["nextPageToken"].as_str().unwrap().to_owned();
        let response = http()
            .post(format!("{}/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp", fake.api_base()))
            .query(&[("pageToken", token.as_str())])
            .bearer_auth(&tokens.access_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let page2: Value = response.json().await.unwrap();

        let first = parsed_points(&page1);
        assert_eq!(first.len(), 5);
        let mut sorted = first.clone();
        sorted.sort();
        assert_ne!(first, sorted, "points come out of order");
        assert!(page2.get("nextPageToken").is_none());
        let mut all = [first, parsed_points(&page2)].concat();
        all.sort();
        let expected = [
            ("2026-03-01", 10),
            ("2026-03-02", 0),
            ("2026-03-03", 0),
            ("2026-03-04", 44),
            ("2026-03-06", 66),
            ("2026-03-07", 1007),
            ("2026-03-08", 1008),
            ("2026-03-09", 1009),
        ];
        assert_eq!(all, expected.map(|(d, s)| (d.to_owned(), s)).to_vec());
        let forms: Vec<&Value> = [&page1, &page2]
            .iter()
            .flat_map(|p| p["rollupDataPoints"].as_array().unwrap())
            .map(|p| &p["steps"])
            .collect();
        assert!(forms.iter().any(|s| s["countSum"].is_string()));
        assert!(forms.iter().any(|s| s["countSum"].is_number()));
        assert!(forms.iter().any(|s| s["countSum"] == "0"));
        assert!(forms.iter().any(|s| s.as_object().unwrap().is_empty()));
    }

    #[tokio::test]
    async fn roll_up_over_days_without_data_answers_an_empty_object() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

        let (status, body, _) = roll_up(&fake, &tokens.access_token, &range((2026, 3, 1), (2026, 3, 10))).await;

        assert_eq!((status, body), (200, json!({})));
    }

    #[tokio::test]
    async fn a_page_token_from_another_range_or_made_up_is_refused() {
        let fake = FakeGoogleHealth::start().await;
        for day in 1..=7 {
            fake.set_steps(PERSON, Date::constant(2026, 3, day), 100);
        }
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
        let (_, page1, _) = roll_up(&fake, &tokens.access_token, &range((2026, 3, 1), (2026, 3, 8))).await;

        for token in [page1["nextPageToken"].clone(), json!("garbage!")] {
            let mut other = range((2026, 3, 1), (2026, 3, 9));
            other["pageToken"] = token;
            let (status, body, _) = roll_up(&fake, &tokens.access_token, &other).await;
            assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
        }
    }

    // --- faults and counters ---

    #[tokio::test]
    async fn scripted_rate_limits_and_server_errors_hit_the_api_then_it_recovers() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
        fake.fail_next(FaultTarget::Api, Fault::RateLimited { retry_after: Some(7) }, 1);
        fake.fail_next(FaultTarget::Api, Fault::RateLimited { retry_after: None }, 1);
        fake.fail_next(FaultTarget::Api, Fault::ServerError, 1);
        let body = range((2026, 3, 1), (2026, 3, 2));

        let (status, answer, headers) = roll_up(&fake, &tokens.access_token, &body).await;
        assert_eq!((status, answer), (429, fixture_json("error_429.json")));
        assert_eq!(headers[header::RETRY_AFTER], "7");
        let (status, _, headers) = roll_up(&fake, &tokens.access_token, &body).await;
        assert_eq!(status, 429);
        assert!(headers.get(header::RETRY_AFTER).is_none());
        let (status, answer) = get_identity(&fake, &tokens.access_token).await;
        assert_eq!((status, answer["error"]["status"].as_str()), (500, Some("INTERNAL")));

        assert_eq!(roll_up(&fake, &tokens.access_token, &body).await.0, 200);
        assert_eq!((fake.calls("rollup"), fake.calls("identity")), (3, 1));
    }

    #[tokio::test]
    async fn token_faults_leave_the_api_alone_and_a_slow_answer_still_arrives() {
        let fake = FakeGoogleHealth::start().await;
        let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
        fake.fail_next(FaultTarget::Token, Fault::ServerError, 2);
        fake.fail_next(FaultTarget::Token, Fault::Slow(Duration::from_millis(200)), 1);

        assert_eq!(get_identity(&fake, &tokens.access_token).await.0, 200);
        assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 500);
        assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 500);
        let started = Instant::now();
        assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(fake.calls("token_refresh"), 3);
        assert_eq!(fake.calls("token_code"), 0);
    }

    // --- keyset and signatures ---

    #[tokio::test]
    async fn the_served_keyset_has_the_fixtures_tink_layout() {
        let fake = FakeGoogleHealth::start().await;

        let keyset = served_keyset(&fake).await;

        let fixture = fixture_json("webhook_keyset.json");
        assert_eq!(sorted_keys(&keyset), sorted_keys(&fixture));
        assert_eq!(sorted_keys(&keyset["key"][0]), sorted_keys(&fixture["key"][0]));
        assert_eq!(keyset["primaryKeyId"], fake.primary_key_id());
        let ours = STANDARD.decode(keyset["key"][0]["keyData"]["value"].as_str().unwrap()).unwrap();
        let theirs = STANDARD.decode(fixture["key"][0]["keyData"]["value"].as_str().unwrap()).unwrap();
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours[..13], theirs[..13], "version, params and the x header");
        assert_eq!(ours[45..48], theirs[45..48], "the y header");
        assert_eq!(keys_of(&keyset).len(), 1);
        assert_eq!(fake.calls("keyset"), 1);
    }

    #[tokio::test]
    async fn a_keyset_fault_fails_one_fetch_and_the_next_fetch_serves_the_keys() {
        let fake = FakeGoogleHealth::start().await;
        fake.fail_next(FaultTarget::Keyset, Fault::ServerError, 1);

        let failed = http().get(fake.keyset_url()).send().await.unwrap();

        assert_eq!(failed.status(), 500);
        assert_eq!(served_keyset(&fake).await["primaryKeyId"], fake.primary_key_id());
        assert_eq!(fake.calls("keyset"), 2);
    }

    #[test]
    fn the_fixture_signatures_verify_with_this_reading_of_tink_keysets() {
        let keys = keys_of(&fixture_json("webhook_keyset.json"));
        let signature = String::from_utf8(fixture("notification_array.signature")).unwrap();

        assert!(verifies(&keys, &fixture("notification_array.json"), &signature));
        assert!(!verifies(&keys, &fixture("notification_array_tampered.json"), &signature));
        let delete_signature = String::from_utf8(fixture("notification_object_delete.signature")).unwrap();
        assert!(verifies(&keys, &fixture("notification_object_delete.json"), &delete_signature));
    }

    #[test]
    fn notification_bodies_match_the_fixtures_byte_for_byte() {
        let upsert =
            Notification::upsert(PERSON, ["2026-11-24"]).subscription_name("8d0c3f7e-2b1a-4c55-9e61-3f0f4a2b9c10");
        let delete = Notification::delete(PERSON, ["2026-11-23"])
            .single_object()
            .whole_day()
            .physical_only()
            .subscription_name("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b");

        assert_eq!(
            String::from_utf8(upsert.body()).unwrap(),
            String::from_utf8(fixture("notification_array.json")).unwrap()
        );
        assert_eq!(
            String::from_utf8(delete.body()).unwrap(),
            String::from_utf8(fixture("notification_object_delete.json")).unwrap()
        );
    }

    #[tokio::test]
    async fn a_signed_notification_verifies_against_the_keyset_the_fake_serves() {
        let fake = FakeGoogleHealth::start().await;
        let subscriber = receiver(|_, _| 204).await;
        let notice = Notification::upsert(PERSON, ["2026-11-24", "2026-11-25"]).authorization("webhook-secret");

        let delivery = fake.notify(&subscriber.url, notice).await;

        assert!(delivery.delivered());
        assert_eq!((delivery.attempts, delivery.statuses.clone()), (1, vec![Attempt::Status(204)]));
        let received = &subscriber.requests()[0];
        assert_eq!(received.body, delivery.body);
        assert_eq!(received.headers[header::AUTHORIZATION], "webhook-secret");
        assert_eq!(received.headers[header::CONTENT_TYPE], "application/json");
        let signature = received.headers["x-healthapi-signature"].to_str().unwrap();
        let keys = keys_of(&served_keyset(&fake).await);
        assert!(verifies(&keys, &received.body, signature));
        assert!(!verifies(&keys, &[&received.body[..], b" "].concat(), signature));
        let body: Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(body[0]["data"]["intervals"].as_array().unwrap().len(), 2);
        assert_eq!(body[0]["data"]["healthUserId"], PERSON);
        assert_eq!(body[0]["data"]["intervals"][1]["civilDateTimeInterval"]["startDateTime"]["date"]["day"], 25);
    }

    #[tokio::test]
    async fn after_a_rotation_the_new_key_signs_and_a_stale_keyset_lacks_it_until_published() {
        let fake = FakeGoogleHealth::start().await;
        let old = fake.primary_key_id();
        let new = fake.rotate_key();
        fake.set_publish_newest_key(false);
        let body = br#"{"data":{}}"#;
        let signature = fake.sign(body);

        let stale = served_keyset(&fake).await;
        assert_eq!(stale["primaryKeyId"], old);
        assert!(!verifies(&keys_of(&stale), body, &signature));

        fake.set_publish_newest_key(true);
        let fresh = served_keyset(&fake).await;
        assert_eq!(fresh["primaryKeyId"], new);
        assert_eq!(keys_of(&fresh).len(), 2);
        assert!(verifies(&keys_of(&fresh), body, &signature));

        fake.drop_old_keys();
        assert_eq!(fake.key_ids(), vec![new]);
        assert!(fake.verifying_key(old).is_none());
    }

    #[tokio::test]
    async fn a_notification_is_retried_with_backoff_until_the_subscriber_answers_204() {
        let fake = FakeGoogleHealth::start().await;
        let subscriber = receiver(|i, _| {
            if i == 0 {
                500
            } else if i == 1 {
                200
            } else {
                204
            }
        })
        .await;
        let started = Instant::now();

        let delivery = fake.notify(&subscriber.url, Notification::upsert(PERSON, ["2026-11-24"])).await;

        assert_eq!(delivery.statuses, vec![Attempt::Status(500), Attempt::Status(200), Attempt::Status(204)]);
        assert_eq!(delivery.attempts, 3);
        assert!(started.elapsed() >= Duration::from_millis(150), "50 ms then 100 ms");
        let requests = subscriber.requests();
        assert!(requests.iter().all(|r| r.body == delivery.body), "every retry is the same body");
    }

    #[tokio::test]
    async fn a_notification_gives_up_after_max_attempts_reporting_connection_errors() {
        let fake = FakeGoogleHealth::start().await;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/webhook", listener.local_addr().unwrap())
        };

        let delivery = fake.notify(&closed, Notification::upsert(PERSON, ["2026-11-24"]).max_attempts(2)).await;

        assert_eq!(delivery.attempts, 2);
        assert!(delivery.statuses.iter().all(|a| matches!(a, Attempt::Failed(_))));
        assert!(!delivery.delivered());
    }

    #[tokio::test]
    async fn a_single_object_notification_can_use_the_other_header_name_in_any_case() {
        let fake = FakeGoogleHealth::start().await;
        let subscriber = receiver(|_, _| 204).await;
        let notice =
            Notification::delete(PERSON, ["2026-11-23"]).single_object().header_name("Google-Health-Api-Signature");

        let delivery = fake.notify(&subscriber.url, notice).await;

        let received = &subscriber.requests()[0];
        assert!(received.headers.get("x-healthapi-signature").is_none());
        assert_eq!(received.headers["google-health-api-signature"], delivery.signature.as_str());
        assert!(received.headers.get(header::AUTHORIZATION).is_none());
        let body: Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(body["data"]["operation"], "DELETE");
    }

    #[tokio::test]
    async fn many_notifications_go_in_one_array_body() {
        let fake = FakeGoogleHealth::start().await;
        let subscriber = receiver(|_, _| 204).await;
        let notices =
            [Notification::upsert("a-1", ["2026-11-24"]), Notification::upsert("b-2", ["2026-11-23", "2026-11-24"])];

        let delivery = fake.notify_many(&subscriber.url, &notices).await;

        let body: Value = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(body.as_array().unwrap().len(), 2);
        assert_eq!(body[1]["data"]["healthUserId"], "b-2");
        assert!(verifies(&keys_of(&fake.keyset_json()), &subscriber.requests()[0].body, &delivery.signature));
    }

    #[tokio::test]
    async fn a_raw_notification_is_sent_once_with_exactly_the_given_headers() {
        let fake = FakeGoogleHealth::start().await;
        let subscriber = receiver(|_, _| 401).await;
        let body = b"[{\"data\":{}}]".to_vec();
        let signature = fake.sign(&body);

        let attempt = fake.notify_raw(&subscriber.url, body.clone(), &[("X-HEALTHAPI-SIGNATURE", &signature)]).await;

        assert_eq!(attempt, Attempt::Status(401));
        let requests = subscriber.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].body, body);
        assert_eq!(requests[0].headers["x-healthapi-signature"], signature.as_str());
    }

    #[tokio::test]
    async fn verification_posts_the_handshake_with_and_without_the_secret() {
        let fake = FakeGoogleHealth::start().await;
        let subscriber =
            receiver(
                |_, headers| {
                    if headers.get(header::AUTHORIZATION).is_some_and(|v| v == "s3cret") { 201 } else { 401 }
                },
            )
            .await;

        let statuses = fake.verify_endpoint(&subscriber.url, "s3cret").await;

        assert_eq!(statuses, (201, 401));
        let requests = subscriber.requests();
        assert_eq!(requests[0].body, fixture("verification.json").trim_ascii_end());
        assert_eq!(requests[1].body, VERIFICATION_BODY.as_bytes());
        assert!(requests[1].headers.get(header::AUTHORIZATION).is_none());
    }
}
