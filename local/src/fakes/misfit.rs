//! A fake Misfit cloud and a fake Amazon SNS on loopback, for tests and the local stack.
//!
//! [`FakeMisfit`] serves Misfit's OAuth (consent page and code exchange), the profile and the
//! daily activity summary, scripted faults, and the ways a retired cloud can be dead (Fossil
//! withdrew Misfit in 2023). [`FakeSns`] is Amazon SNS as Misfit uses it for notifications:
//! messages signed per SNS SignatureVersion 1 with a certificate it serves, and a
//! `ConfirmSubscription` endpoint. Faithful to the "Misfit (legacy)" notes in
//! ../shared/PROVIDERS.md and to the shapes in ../shared/fixtures/misfit/.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use jiff::civil::Date;
use rand::Rng;
use reqwest::Url;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Serialize;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use super::common::{
    Calls, IntoCivilDate, Serving, account_picker, bearer_token, decision_forms, escape_html, first, found,
    hidden_inputs, http_url, lock, page, query_pairs, random_token, status_or_zero, subscriber_client,
};

pub const DEFAULT_CLIENT_ID: &str = "fake-misfit-client";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-misfit-secret";
/// Every scope Misfit knows, comma-separated as its authorize URL takes them.
pub const ALL_SCOPES: &str = "public,birthday,email,tracking,session,sleeps";
/// Epoch seconds at which a 429's rate limit resets.
pub const RATE_LIMIT_RESET_HEADER: &str = "x-ratelimit-reset";
/// The header SNS names the message type in (`SubscriptionConfirmation`, `Notification`).
pub const MESSAGE_TYPE_HEADER: &str = "x-amz-sns-message-type";
/// The content type SNS posts with, although the body is JSON.
pub const SNS_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

pub const AUTHORIZE_PATH: &str = "/auth/dialog/authorize";
pub const CONSENT_PATH: &str = "/auth/dialog/consent";
pub const TOKEN_PATH: &str = "/auth/tokens/exchange";
pub const PROFILE_PATH: &str = "/move/resource/v1/user/me/profile";
pub const SUMMARY_PATH: &str = "/move/resource/v1/user/me/activity/summary";
pub const CERT_PATH: &str = "/SimpleNotificationService-fake.pem";

const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(600);
// Misfit takes `me` or the user's own id in these paths.
const PROFILE_ROUTE: &str = "/move/resource/v1/user/{user}/profile";
const SUMMARY_ROUTE: &str = "/move/resource/v1/user/{user}/activity/summary";
const USER_PATH_PREFIX: &str = "/move/resource/v1/user/";
const INVALID_TOKEN: &str = "Invalid access token";
const SNS_CERT_SUBJECT: &str = "CN=sns.fake.invalid";
const SNS_XML_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("building the delivery HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("generating the SNS signing key: {0}")]
    Key(String),
    #[error("making the SNS certificate: {0}")]
    Certificate(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `x-ratelimit-reset` (epoch seconds, now + `reset_in_secs`) and a `{code, message}` body.
    RateLimited { reset_in_secs: u64 },
    /// 500 with an `{error_code, error_message}` body.
    ServerError,
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

/// How the retired Misfit cloud is dead (PROVIDERS.md: its status is unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dead {
    /// 410 on every endpoint, as reported for Fitbit's legacy API.
    Gone,
    /// 404 on every endpoint.
    NotFound,
    /// Nothing listens on the port: connections are refused.
    Refused,
}

// ---------------------------------------------------------------------------------------------
// Misfit: shared state

struct Person {
    name: String,
    steps: BTreeMap<Date, u64>,
}

struct AuthCode {
    user_id: String,
    client_id: String,
    /// As sent in the authorize request: the exchange must repeat it exactly.
    redirect_uri: String,
    issued_at: Instant,
    redeemed: bool,
}

struct Shared {
    client_id: String,
    client_secret: String,
    code_lifetime: Duration,
    people: BTreeMap<String, Person>,
    codes: HashMap<String, AuthCode>,
    /// Access token → user id. Misfit's tokens do not expire and there is no refresh.
    tokens: HashMap<String, String>,
    faults: VecDeque<Fault>,
    dead: Option<Dead>,
    calls: Calls,
}

type SharedState = Arc<Mutex<Shared>>;

impl Shared {
    fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            code_lifetime: DEFAULT_CODE_LIFETIME,
            people: BTreeMap::new(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            faults: VecDeque::new(),
            dead: None,
            calls: Calls::default(),
        }
    }

    fn person_mut(&mut self, user_id: &str) -> &mut Person {
        self.people
            .entry(user_id.to_owned())
            .or_insert_with(|| Person { name: format!("Fake Misfit {user_id}"), steps: BTreeMap::new() })
    }

    fn issue_token(&mut self, user_id: &str) -> String {
        let token = random_token("fake-misfit-");
        self.tokens.insert(token.clone(), user_id.to_owned());
        token
    }

    /// The consent decision, shared by the HTML form and the test helpers: the redirect Location.
    fn decide(&mut self, request: &AuthorizeRequest, decision: Decision) -> Result<String, ConsentError> {
        let mut location = request.redirect_uri.clone();
        {
            let mut query = location.query_pairs_mut();
            match decision {
                Decision::Deny => {
                    query.append_pair("error", "access_denied");
                }
                Decision::Approve { user_id } => {
                    if !self.people.contains_key(&user_id) {
                        return Err(ConsentError(format!(
                            "No Misfit user {user_id:?} on this fake: add_person first."
                        )));
                    }
                    let code = random_token("fake-code-");
                    self.codes.insert(
                        code.clone(),
                        AuthCode {
                            user_id,
                            client_id: request.client_id.clone(),
                            redirect_uri: request.redirect_uri_raw.clone(),
                            issued_at: Instant::now(),
                            redeemed: false,
                        },
                    );
                    query.append_pair("code", &code);
                }
            }
            if let Some(state) = &request.state {
                query.append_pair("state", state);
            }
        }
        Ok(location.to_string())
    }

    fn exchange(&mut self, fields: &[(String, String)]) -> Result<TokenJson, Refusal> {
        match first(fields, "grant_type") {
            Some("authorization_code") => {}
            None => return Err(Refusal::bad_request("Missing parameter: grant_type")),
            Some(_) => return Err(Refusal::bad_request("Unsupported grant_type")),
        }
        if first(fields, "client_id") != Some(self.client_id.as_str())
            || first(fields, "client_secret") != Some(self.client_secret.as_str())
        {
            return Err(Refusal::bad_request("Invalid client_id or client_secret"));
        }
        let Some(code) = first(fields, "code").filter(|c| !c.is_empty()) else {
            return Err(Refusal::bad_request("Missing parameter: code"));
        };
        let Some(redirect_uri) = first(fields, "redirect_uri") else {
            return Err(Refusal::bad_request("Missing parameter: redirect_uri"));
        };
        let (client_id, code_lifetime) = (self.client_id.clone(), self.code_lifetime);
        let Some(record) = self.codes.get_mut(code) else {
            return Err(Refusal::bad_request("Invalid authorization code"));
        };
        if record.redeemed {
            return Err(Refusal::bad_request("Authorization code has already been used"));
        }
        if record.issued_at.elapsed() >= code_lifetime {
            return Err(Refusal::bad_request("Authorization code has expired"));
        }
        if record.client_id != client_id {
            return Err(Refusal::bad_request("Authorization code was issued to another client"));
        }
        if record.redirect_uri != redirect_uri {
            return Err(Refusal::bad_request("redirect_uri does not match the authorization request"));
        }
        // Redeemed only on success, so a client bug (say a wrong redirect_uri) can be retried in a test.
        record.redeemed = true;
        let user_id = record.user_id.clone();
        Ok(TokenJson { access_token: self.issue_token(&user_id), token_type: "bearer" })
    }

    /// The user behind the Bearer token, when `path_user` (`me` or an id) is theirs.
    fn bearer_user(&self, headers: &HeaderMap, path_user: &str) -> Result<String, Refusal> {
        let user_id = bearer_token(headers)
            .and_then(|t| self.tokens.get(t))
            .ok_or(Refusal { status: StatusCode::UNAUTHORIZED, message: INVALID_TOKEN.to_owned() })?;
        if path_user != "me" && path_user != user_id {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: "The access token does not belong to this user".to_owned(),
            });
        }
        Ok(user_id.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Misfit: the handle

/// A running fake Misfit cloud; stops serving when dropped or on [`FakeMisfit::stop`].
pub struct FakeMisfit {
    state: SharedState,
    /// Closed while the cloud is `Dead::Refused`.
    serving: Serving,
}

impl FakeMisfit {
    /// Serves on an ephemeral loopback port with the default client id and secret.
    ///
    /// # Panics
    /// If loopback cannot be bound: a broken test machine, not something a test can handle.
    pub async fn start() -> Self {
        Self::start_with_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await
    }

    /// Serves on an ephemeral loopback port, accepting only this OAuth client.
    pub async fn start_with_client(client_id: &str, client_secret: &str) -> Self {
        Self::serve(client_id, client_secret, 0).await.unwrap_or_else(|e| panic!("fake Misfit: {e}"))
    }

    /// Serves on `port` (0: any free port), for the local stack where the URL must be stable.
    pub async fn start_on_port(port: u16) -> Result<Self, FakeError> {
        Self::serve(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, port).await
    }

    async fn serve(client_id: &str, client_secret: &str, port: u16) -> Result<Self, FakeError> {
        let state: SharedState = Arc::new(Mutex::new(Shared::new(client_id, client_secret)));
        let serving = Serving::start("fake Misfit", port, router(state.clone()))
            .await
            .map_err(|source| FakeError::Bind { port, source })?;
        Ok(Self { state, serving })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.serving.stop().await;
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.state)
    }

    /// `http://127.0.0.1:PORT`, standing for `https://api.misfitwearables.com`: every path is as Misfit's.
    pub fn base_url(&self) -> &str {
        self.serving.base_url()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    // --- configuration ---

    pub fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.lock().client_secret.clone()
    }

    /// How long an authorization code can be exchanged; default 10 minutes. Checked at exchange time.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.lock().code_lifetime = lifetime;
    }

    // --- people and their steps ---

    /// Adds a Misfit user who can consent (their profile name is "Fake Misfit {user_id}").
    /// Adding someone again keeps their steps.
    pub fn add_person(&self, user_id: &str) {
        self.lock().person_mut(user_id);
    }

    /// Sets the day's step count (points, calories and distance follow from it); the person is
    /// added if unknown.
    pub fn set_steps(&self, user_id: &str, date: impl IntoCivilDate, steps: u64) {
        let date = date.into_civil_date();
        self.lock().person_mut(user_id).steps.insert(date, steps);
    }

    /// Removes the day: the summary then leaves it out ("no data", not zero).
    pub fn clear_steps(&self, user_id: &str, date: impl IntoCivilDate) {
        let date = date.into_civil_date();
        if let Some(person) = self.lock().people.get_mut(user_id) {
            person.steps.remove(&date);
        }
    }

    // --- consent without a browser ---

    /// Approves `authorize_url` (as built by the client) as `user_id`; returns the redirect
    /// Location (`redirect_uri?code=..&state=..`).
    ///
    /// # Panics
    /// Where the consent page would answer an error page (bad client or redirect, unknown person).
    pub fn approve(&self, authorize_url: &str, user_id: &str) -> String {
        let request = self.parse_authorize_url(authorize_url);
        self.decide(authorize_url, &request, Decision::Approve { user_id: user_id.to_owned() })
    }

    /// Denies `authorize_url`: the Location is `redirect_uri?error=access_denied&state=..`.
    ///
    /// # Panics
    /// Where the consent page would answer an error page.
    pub fn deny(&self, authorize_url: &str) -> String {
        let request = self.parse_authorize_url(authorize_url);
        self.decide(authorize_url, &request, Decision::Deny)
    }

    fn decide(&self, authorize_url: &str, request: &AuthorizeRequest, decision: Decision) -> String {
        self.lock().decide(request, decision).unwrap_or_else(|e| panic!("consent for {authorize_url}: {}", e.0))
    }

    fn parse_authorize_url(&self, authorize_url: &str) -> AuthorizeRequest {
        AuthorizeRequest::parse(&query_pairs(authorize_url), &self.client_id())
            .unwrap_or_else(|e| panic!("the consent page would refuse {authorize_url}: {}", e.0))
    }

    /// An access token for `user_id` as if they had consented: for tests that are not about OAuth.
    pub fn grant_token(&self, user_id: &str) -> String {
        let mut shared = self.lock();
        shared.person_mut(user_id);
        shared.issue_token(user_id)
    }

    /// The user disconnected the app: every token they hold now gets 401.
    pub fn revoke_person(&self, user_id: &str) {
        self.lock().tokens.retain(|_, owner| owner != user_id);
    }

    // --- faults, death and counters ---

    /// The next `times` requests to the token, profile or summary endpoints (in arrival order)
    /// get `fault`, queued after faults already scripted. Consent pages are never faulted.
    pub fn fail_next(&self, fault: Fault, times: u32) {
        self.lock().faults.extend(std::iter::repeat_n(fault, times as usize));
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Kills the cloud (`Some`) or brings it back (`None`). `Gone` and `NotFound` answer every
    /// request with that status and a small HTML page (what a decommissioned host's proxy
    /// sends; clients must go by the status). `Refused` closes the listening socket, so
    /// connections are refused; `None` (or another mode) listens again on the same port, with
    /// every person, token and counter kept. A client that pooled a connection may see it
    /// closed rather than refused.
    ///
    /// # Panics
    /// If the port cannot be bound again (another process took it meanwhile).
    pub async fn set_dead(&self, mode: Option<Dead>) {
        self.lock().dead = mode;
        if mode == Some(Dead::Refused) {
            self.serving.close().await;
            return;
        }
        let port = self.serving.port();
        if let Err(source) = self.serving.listen_again().await {
            panic!("fake Misfit listening again: {}", FakeError::Bind { port, source });
        }
    }

    pub fn dead(&self) -> Option<Dead> {
        self.lock().dead
    }

    /// Requests received of `kind`, faulted and dead-answered ones included: "authorize",
    /// "consent", "token", "profile", "summary", "other" (anything else). Refused connections
    /// never arrive, so they are not counted.
    pub fn calls(&self, kind: &str) -> u64 {
        self.lock().calls.get(kind)
    }

    pub fn reset_calls(&self) {
        self.lock().calls.reset();
    }
}

// ---------------------------------------------------------------------------------------------
// Misfit: consent

struct AuthorizeRequest {
    client_id: String,
    redirect_uri: Url,
    redirect_uri_raw: String,
    /// Comma-separated as sent; Misfit's scopes do not gate the fake's endpoints.
    scope: String,
    state: Option<String>,
    login_hint: Option<String>,
}

enum Decision {
    Approve { user_id: String },
    Deny,
}

#[derive(Debug)]
struct ConsentError(String);

impl AuthorizeRequest {
    fn parse(params: &[(String, String)], accepted_client_id: &str) -> Result<Self, ConsentError> {
        let client_id = first(params, "client_id").unwrap_or_default();
        if client_id.is_empty() {
            return Err(ConsentError("Missing parameter: client_id".to_owned()));
        }
        if client_id != accepted_client_id {
            return Err(ConsentError(format!("Unknown client_id {client_id:?}.")));
        }
        match first(params, "response_type") {
            Some("code") => {}
            None => return Err(ConsentError("Missing parameter: response_type".to_owned())),
            Some(other) => return Err(ConsentError(format!("Unsupported response_type {other:?}."))),
        }
        let redirect_uri_raw = first(params, "redirect_uri").unwrap_or_default();
        let redirect_uri = http_url(redirect_uri_raw)
            .ok_or_else(|| ConsentError("redirect_uri is missing or not an http(s) URL.".to_owned()))?;
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri,
            redirect_uri_raw: redirect_uri_raw.to_owned(),
            scope: first(params, "scope").unwrap_or_default().to_owned(),
            state: first(params, "state").map(str::to_owned),
            login_hint: first(params, "login_hint").filter(|h| !h.is_empty()).map(str::to_owned),
        })
    }

    fn params(&self) -> Vec<(&'static str, &str)> {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri_raw.as_str()),
            ("scope", self.scope.as_str()),
        ];
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        params
    }

    /// The request again, as hidden form fields (the consent POST re-validates all of it).
    fn hidden_fields(&self, user_id: Option<&str>) -> String {
        let mut params = self.params();
        if let Some(user_id) = user_id {
            params.push(("login_hint", user_id));
        }
        hidden_inputs(params)
    }

    /// This same request signed in as `user_id`: the person picker's links.
    fn href_as(&self, user_id: &str) -> String {
        let mut params = self.params();
        params.push(("login_hint", user_id));
        let query: String = Url::parse_with_params("http://fake.invalid/", &params)
            .ok()
            .and_then(|u| u.query().map(str::to_owned))
            .unwrap_or_default();
        format!("{AUTHORIZE_PATH}?{query}")
    }
}

fn error_page(error: &ConsentError) -> Response {
    let body = format!("<h1>Authorization error</h1>\n<p id=\"error\">{}</p>", escape_html(&error.0));
    (StatusCode::BAD_REQUEST, Html(page("Error (fake Misfit)", &body))).into_response()
}

fn picker_page(request: &AuthorizeRequest, people: &BTreeMap<String, Person>) -> String {
    let accounts = people.keys().map(|id| (id.as_str(), request.href_as(id)));
    account_picker("Log in (fake Misfit)", "Log in to Misfit", "data-user-id", accounts)
}

fn consent_page(request: &AuthorizeRequest, user_id: &str) -> String {
    let approve = request.hidden_fields(Some(user_id));
    let deny = request.hidden_fields(None);
    let body = format!(
        r#"<h1>Misfit (fake)</h1>
<p id="account">Logged in as <b>{user}</b></p>
<p><b>{client}</b> would like to access: <span id="scope">{scope}</span></p>
{forms}"#,
        user = escape_html(user_id),
        client = escape_html(&request.client_id),
        scope = escape_html(&request.scope),
        forms = decision_forms(CONSENT_PATH, &approve, &deny, "Deny"),
    );
    page("Authorize (fake Misfit)", &body)
}

// ---------------------------------------------------------------------------------------------
// Misfit: HTTP

fn router(state: SharedState) -> Router {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize_page))
        .route(CONSENT_PATH, post(consent))
        .route(TOKEN_PATH, post(token))
        .route(PROFILE_ROUTE, get(profile))
        .route(SUMMARY_ROUTE, get(summary))
        .fallback(|| async { Refusal { status: StatusCode::NOT_FOUND, message: "Not found".to_owned() } })
        .layer(middleware::from_fn_with_state(state.clone(), gatekeeper))
        .with_state(state)
}

fn kind_of(path: &str) -> &'static str {
    match path {
        AUTHORIZE_PATH => "authorize",
        CONSENT_PATH => "consent",
        TOKEN_PATH => "token",
        p if p.starts_with(USER_PATH_PREFIX) && p.ends_with("/profile") => "profile",
        p if p.starts_with(USER_PATH_PREFIX) && p.ends_with("/activity/summary") => "summary",
        _ => "other",
    }
}

/// Counts every request, then answers for a dead cloud before any handler runs.
async fn gatekeeper(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let dead = {
        let mut shared = lock(&state);
        shared.calls.count(kind_of(request.uri().path()));
        shared.dead
    };
    match dead {
        Some(Dead::Gone) => retired(StatusCode::GONE),
        Some(Dead::NotFound) => retired(StatusCode::NOT_FOUND),
        Some(Dead::Refused) | None => next.run(request).await,
    }
}

fn retired(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or_default();
    let title = format!("{} {reason}", status.as_u16());
    (status, Html(format!("<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n")))
        .into_response()
}

async fn take_fault(state: &SharedState) -> Option<Response> {
    let fault = lock(state).faults.pop_front()?;
    match fault {
        Fault::Slow(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
        Fault::ServerError => Some(
            Refusal { status: StatusCode::INTERNAL_SERVER_ERROR, message: "Internal server error".to_owned() }
                .into_response(),
        ),
        Fault::RateLimited { reset_in_secs } => {
            let reset = Timestamp::now().as_second().saturating_add(i64::try_from(reset_in_secs).unwrap_or(i64::MAX));
            let body = json!({ "code": 429, "message": "Rate limit exceeded" });
            Some(
                (StatusCode::TOO_MANY_REQUESTS, [(RATE_LIMIT_RESET_HEADER, HeaderValue::from(reset))], Json(body))
                    .into_response(),
            )
        }
    }
}

async fn authorize_page(
    State(state): State<SharedState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let shared = lock(&state);
    let Ok(Query(params)) = query else {
        return error_page(&ConsentError("The query string is malformed.".to_owned()));
    };
    let request = match AuthorizeRequest::parse(&params, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    match &request.login_hint {
        None => Html(picker_page(&request, &shared.people)).into_response(),
        Some(user) if !shared.people.contains_key(user) => {
            error_page(&ConsentError(format!("No Misfit user {user:?} on this fake.")))
        }
        Some(user) => Html(consent_page(&request, user)).into_response(),
    }
}

async fn consent(
    State(state): State<SharedState>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let mut shared = lock(&state);
    let Ok(Form(fields)) = form else {
        return error_page(&ConsentError("The consent form is malformed.".to_owned()));
    };
    let request = match AuthorizeRequest::parse(&fields, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    let decision = match first(&fields, "decision") {
        Some("deny") => Decision::Deny,
        Some("approve") => match request.login_hint.clone() {
            Some(user_id) => Decision::Approve { user_id },
            None => return error_page(&ConsentError("No account was chosen.".to_owned())),
        },
        _ => return error_page(&ConsentError("decision must be approve or deny.".to_owned())),
    };
    match shared.decide(&request, decision) {
        Ok(location) => found(&location)
            .unwrap_or_else(|| error_page(&ConsentError("The redirect URL is not a valid header value.".to_owned()))),
        Err(e) => error_page(&e),
    }
}

async fn token(State(state): State<SharedState>, form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Response {
    if let Some(response) = take_fault(&state).await {
        return response;
    }
    let Ok(Form(fields)) = form else {
        return Refusal::bad_request("The body must be application/x-www-form-urlencoded").into_response();
    };
    match lock(&state).exchange(&fields) {
        Ok(token) => ([(header::CACHE_CONTROL, "no-store")], Json(token)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn profile(State(state): State<SharedState>, Path(user): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = take_fault(&state).await {
        return response;
    }
    let shared = lock(&state);
    let user_id = match shared.bearer_user(&headers, &user) {
        Ok(user_id) => user_id,
        Err(refusal) => return refusal.into_response(),
    };
    let name = shared.people.get(&user_id).map(|p| p.name.clone()).unwrap_or_default();
    Json(json!({ "userId": user_id, "name": name })).into_response()
}

async fn summary(
    State(state): State<SharedState>,
    Path(user): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    if let Some(response) = take_fault(&state).await {
        return response;
    }
    let shared = lock(&state);
    let user_id = match shared.bearer_user(&headers, &user) {
        Ok(user_id) => user_id,
        Err(refusal) => return refusal.into_response(),
    };
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let (start, end) = match (query_date(&params, "start_date"), query_date(&params, "end_date")) {
        (Ok(start), Ok(end)) if start <= end => (start, end),
        (Ok(_), Ok(_)) => return Refusal::bad_request("start_date must not be after end_date").into_response(),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
    };
    let days: Vec<DaySummary> = shared
        .people
        .get(&user_id)
        .map(|p| p.steps.range(start..=end).map(|(date, steps)| DaySummary::new(*date, *steps)).collect())
        .unwrap_or_default();
    if first(&params, "detail") == Some("true") {
        return Json(json!({ "summary": days })).into_response();
    }
    // Without detail Misfit answers the range's totals as one object.
    let total = |f: fn(&DaySummary) -> f64| round_to(days.iter().map(f).sum(), 2);
    Json(json!({
        "points": total(|d| d.points),
        "steps": days.iter().map(|d| d.steps).sum::<u64>(),
        "calories": total(|d| d.calories),
        "activityCalories": total(|d| d.activity_calories),
        "distance": total(|d| d.distance),
    }))
    .into_response()
}

fn query_date(params: &[(String, String)], name: &str) -> Result<Date, Refusal> {
    let Some(raw) = first(params, name) else {
        return Err(Refusal::bad_request(&format!("Missing parameter: {name}")));
    };
    // Exactly YYYY-MM-DD: jiff would also read a date out of a longer datetime.
    raw.parse::<Date>()
        .ok()
        .filter(|_| raw.len() == 10)
        .ok_or_else(|| Refusal::bad_request(&format!("{name} must be a YYYY-MM-DD date")))
}

#[derive(Serialize)]
struct TokenJson {
    access_token: String,
    token_type: &'static str,
}

/// One day of `summary?detail=true`: numbers as JSON numbers, steps an integer, the rest decimals.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DaySummary {
    date: String,
    points: f64,
    steps: u64,
    calories: f64,
    activity_calories: f64,
    distance: f64,
}

impl DaySummary {
    /// The other measures follow from the steps, near the fixture's ratios (distance in miles).
    fn new(date: Date, steps: u64) -> Self {
        let s = steps as f64;
        Self {
            date: date.to_string(),
            points: round_to(s * 0.04, 1),
            steps,
            calories: round_to(1800.0 + s * 0.042, 1),
            activity_calories: round_to(s * 0.042, 1),
            distance: round_to(s * 0.000_449, 2),
        }
    }
}

fn round_to(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// A Misfit error answer: `{"error_code", "error_message"}` with the status.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn bad_request(message: &str) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.to_owned() }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error_code": self.status.as_u16(), "error_message": self.message })))
            .into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// SNS: messages

/// One change Misfit announces; a notification's `Message` is a JSON array of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MisfitEvent {
    /// The resource: "sessions", "activities", "sleeps", "goals", "profiles", "devices".
    pub kind: String,
    pub id: String,
    pub owner_id: String,
    pub action: EventAction,
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventAction {
    Created,
    Updated,
    Deleted,
}

impl EventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Created => "created",
            EventAction::Updated => "updated",
            EventAction::Deleted => "deleted",
        }
    }
}

impl MisfitEvent {
    /// An event updated now.
    pub fn new(kind: &str, id: &str, owner_id: &str, action: EventAction) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.to_owned(),
            owner_id: owner_id.to_owned(),
            action,
            updated_at: Timestamp::now(),
        }
    }
}

/// A notification's `Message`: the events as a JSON array string, spaced as in
/// fixtures/misfit/sns_notification.json (`", "` and `": "`), keys in Misfit's order.
pub fn notification_message(events: &[MisfitEvent]) -> String {
    let quote = |s: &str| Value::String(s.to_owned()).to_string();
    let objects: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{{\"type\": {}, \"id\": {}, \"ownerId\": {}, \"action\": {}, \"updatedAt\": {}}}",
                quote(&e.kind),
                quote(&e.id),
                quote(&e.owner_id),
                quote(e.action.as_str()),
                quote(&e.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            )
        })
        .collect();
    format!("[{}]", objects.join(", "))
}

/// The string SNS SignatureVersion 1 signs: `key\nvalue\n` for each signed key in order. For
/// `Notification`: Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type;
/// for `SubscriptionConfirmation` and `UnsubscribeConfirmation`: Message, MessageId,
/// SubscribeURL, Timestamp, Token, TopicArn, Type. `None` for another type or a missing key.
pub fn canonical_string(message: &Value) -> Option<String> {
    let field = |key: &str| message.get(key).and_then(Value::as_str);
    let keys: &[&str] = match field("Type")? {
        "Notification" => &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        }
        _ => return None,
    };
    let mut canonical = String::new();
    for key in keys {
        match field(key) {
            Some(value) => {
                canonical.push_str(key);
                canonical.push('\n');
                canonical.push_str(value);
                canonical.push('\n');
            }
            None if *key == "Subject" => {}
            None => return None,
        }
    }
    Some(canonical)
}

/// `len_bytes` random bytes in hex, as SNS subscription tokens are.
fn random_hex(len_bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..len_bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// A random (version 4) UUID, as SNS message ids are.
fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// SNS's `Timestamp`: UTC with milliseconds, `2026-11-23T18:20:12.000Z`.
fn sns_timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// Field order as SNS sends them (and as the fixtures have them).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SubscriptionConfirmationJson {
    #[serde(rename = "Type")]
    kind: &'static str,
    message_id: String,
    token: String,
    topic_arn: String,
    message: String,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: String,
    timestamp: String,
    signature_version: &'static str,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    signature: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NotificationJson {
    #[serde(rename = "Type")]
    kind: &'static str,
    message_id: String,
    topic_arn: String,
    message: String,
    timestamp: String,
    signature_version: &'static str,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    signature: String,
}

fn new_rsa_key() -> Result<RsaPrivateKey, FakeError> {
    RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).map_err(|e| FakeError::Key(e.to_string()))
}

/// A self-signed certificate for `key` (sha256WithRSAEncryption, like SNS's and the fixture's), as PEM.
fn self_signed_pem(key: &RsaPrivateKey) -> Result<String, FakeError> {
    let broken = |e: &dyn std::fmt::Display| FakeError::Certificate(e.to_string());
    let issuer = SigningKey::<Sha256>::new(key.clone());
    let public_key = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).map_err(|e| broken(&e))?;
    let serial = SerialNumber::from(rand::rng().random::<u32>() | 1);
    // Valid from a month ago, as a real signing certificate is: tests run on clocks that
    // lag the machine's.
    let now = std::time::SystemTime::now();
    let month = Duration::from_secs(30 * 24 * 3600);
    let validity = Validity {
        not_before: x509_cert::time::Time::try_from(now - month).map_err(|e| broken(&e))?,
        not_after: x509_cert::time::Time::try_from(now + 12 * month).map_err(|e| broken(&e))?,
    };
    let subject = Name::from_str(SNS_CERT_SUBJECT).map_err(|e| broken(&e))?;
    let builder = CertificateBuilder::new(Profile::Root, serial, validity, subject, public_key, &issuer)
        .map_err(|e| broken(&e))?;
    let certificate = builder.build::<rsa::pkcs1v15::Signature>().map_err(|e| broken(&e))?;
    certificate.to_pem(LineEnding::LF).map_err(|e| broken(&e))
}

/// Base64 of the RSA PKCS#1 v1.5 SHA-1 signature of `canonical`: SNS SignatureVersion 1.
fn sign_with(key: &SigningKey<Sha1>, canonical: &str) -> String {
    STANDARD.encode(key.sign(canonical.as_bytes()).to_bytes())
}

/// A key that is not any fake's: made once per process, as key generation is slow.
fn forger() -> &'static SigningKey<Sha1> {
    static FORGER: OnceLock<SigningKey<Sha1>> = OnceLock::new();
    FORGER.get_or_init(|| SigningKey::new(new_rsa_key().unwrap_or_else(|e| panic!("fake SNS forger: {e}"))))
}

// ---------------------------------------------------------------------------------------------
// SNS: the handle

struct SnsShared {
    cert_pem: String,
    /// Subscription tokens handed out → their topic.
    issued: HashMap<String, String>,
    confirmed: Vec<String>,
    calls: Calls,
}

type SnsState = Arc<Mutex<SnsShared>>;

/// A running fake SNS with its own RSA key and self-signed certificate; stops serving when
/// dropped or on [`FakeSns::stop`].
pub struct FakeSns {
    /// The base the messages advertise (`SigningCertURL`, `SubscribeURL`); `base_url` unless
    /// set with `advertise_as`, so a verifier that insists on https hosts can be tested.
    public_base: Option<String>,
    host: String,
    signing_key: SigningKey<Sha1>,
    state: SnsState,
    http: reqwest::Client,
    serving: Serving,
}

impl FakeSns {
    /// Makes a key and certificate and serves on an ephemeral loopback port.
    ///
    /// # Panics
    /// If loopback cannot be bound or the key cannot be made: a broken test machine.
    pub async fn start() -> Self {
        Self::start_on_port(0).await.unwrap_or_else(|e| panic!("fake SNS: {e}"))
    }

    /// Serves on `port` (0: any free port), for the local stack where the URL must be stable.
    pub async fn start_on_port(port: u16) -> Result<Self, FakeError> {
        // RSA key generation takes a while: keep it off the runtime's threads.
        let key = tokio::task::spawn_blocking(new_rsa_key).await.map_err(|e| FakeError::Key(e.to_string()))??;
        let cert_pem = self_signed_pem(&key)?;
        // SNS gives up on a subscriber that takes longer (PROVIDERS.md: answer within 15 s).
        let http = subscriber_client(Duration::from_secs(15))
            .user_agent("Amazon Simple Notification Service Agent")
            .build()
            .map_err(FakeError::Client)?;
        let state: SnsState = Arc::new(Mutex::new(SnsShared {
            cert_pem,
            issued: HashMap::new(),
            confirmed: Vec::new(),
            calls: Calls::default(),
        }));
        let serving = Serving::start("fake SNS", port, sns_router(state.clone()))
            .await
            .map_err(|source| FakeError::Bind { port, source })?;
        Ok(Self {
            public_base: None,
            host: format!("127.0.0.1:{}", serving.port()),
            signing_key: SigningKey::new(key),
            state,
            http,
            serving,
        })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.serving.stop().await;
    }

    fn lock(&self) -> MutexGuard<'_, SnsShared> {
        lock(&self.state)
    }

    pub fn base_url(&self) -> &str {
        self.serving.base_url()
    }

    /// `127.0.0.1:PORT`: the host a subscriber must allow for `SigningCertURL` and `SubscribeURL`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Where the certificate is served: every message's `SigningCertURL`.
    pub fn cert_url(&self) -> String {
        format!("{}{CERT_PATH}", self.advertised_base())
    }

    /// Messages name `public_base` (e.g. `https://sns.fake.test`) instead of the loopback URL;
    /// the subscriber maps it back with a URL rewrite, as the local stack does.
    pub fn advertise_as(&mut self, public_base: &str) {
        self.public_base = Some(public_base.trim_end_matches('/').to_owned());
    }

    fn advertised_base(&self) -> &str {
        self.public_base.as_deref().unwrap_or(self.serving.base_url())
    }

    /// The certificate as served (PEM).
    pub fn cert_pem(&self) -> String {
        self.lock().cert_pem.clone()
    }

    /// Subscription tokens confirmed through `SubscribeURL`, in order.
    pub fn confirmed(&self) -> Vec<String> {
        self.lock().confirmed.clone()
    }

    /// Requests received of `kind`: "cert", "confirm" (valid or not), "other".
    pub fn calls(&self, kind: &str) -> u64 {
        self.lock().calls.get(kind)
    }

    /// Base64 of this fake's RSA PKCS#1 v1.5 SHA-1 signature of `canonical` (see [`canonical_string`]).
    pub fn sign(&self, canonical: &str) -> String {
        sign_with(&self.signing_key, canonical)
    }

    /// A signed `SubscriptionConfirmation` for `topic_arn` (shape of
    /// fixtures/misfit/sns_subscription_confirmation.json) whose `SubscribeURL` confirms at this fake.
    pub fn subscription_confirmation(&self, topic_arn: &str) -> String {
        let token = random_hex(64);
        self.lock().issued.insert(token.clone(), topic_arn.to_owned());
        let mut message = SubscriptionConfirmationJson {
            kind: "SubscriptionConfirmation",
            message_id: random_uuid(),
            subscribe_url: format!("{}/?Action=ConfirmSubscription&Token={token}", self.advertised_base()),
            token,
            topic_arn: topic_arn.to_owned(),
            message: format!(
                "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
            ),
            timestamp: sns_timestamp(Timestamp::now()),
            signature_version: "1",
            signing_cert_url: self.cert_url(),
            signature: String::new(),
        };
        message.signature = self.sign_fields(&message);
        serde_json::to_string_pretty(&message).unwrap_or_default()
    }

    /// A signed `Notification` on `topic_arn` carrying `events` (shape of
    /// fixtures/misfit/sns_notification.json; `Message` as [`notification_message`]).
    pub fn notification(&self, topic_arn: &str, events: &[MisfitEvent]) -> String {
        let mut message = NotificationJson {
            kind: "Notification",
            message_id: random_uuid(),
            topic_arn: topic_arn.to_owned(),
            message: notification_message(events),
            timestamp: sns_timestamp(Timestamp::now()),
            signature_version: "1",
            signing_cert_url: self.cert_url(),
            signature: String::new(),
        };
        message.signature = self.sign_fields(&message);
        serde_json::to_string_pretty(&message).unwrap_or_default()
    }

    fn sign_fields(&self, message: &impl Serialize) -> String {
        let fields = serde_json::to_value(message).unwrap_or_default();
        canonical_string(&fields).map(|canonical| self.sign(&canonical)).unwrap_or_default()
    }

    /// `body` with its `Signature` replaced by a valid-looking one from another key: every
    /// other byte is unchanged, so only a verifier that checks against the served certificate
    /// tells. The other key is made on the first call in the process.
    ///
    /// # Panics
    /// If `body` is not an SNS message with a `Signature` (a test bug).
    pub fn forge(&self, body: &str) -> String {
        let message: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("forge: the body is not JSON: {e}"));
        let old = message
            .get("Signature")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("forge: the body has no Signature"));
        let canonical = canonical_string(&message).unwrap_or_else(|| panic!("forge: not a signable SNS message"));
        // Base64 needs no JSON escaping, so the value appears verbatim after its key.
        let at = body
            .find("\"Signature\"")
            .and_then(|key| body[key..].find(old).map(|offset| key + offset))
            .unwrap_or_else(|| panic!("forge: the Signature is not written verbatim"));
        format!("{}{}{}", &body[..at], sign_with(forger(), &canonical), &body[at + old.len()..])
    }

    /// POSTs `body` to a subscriber as SNS does (`x-amz-sns-message-type` from its `Type`,
    /// `text/plain; charset=UTF-8`, SNS's user agent and message headers). Returns the status,
    /// or 0 when no HTTP answer came (refused, timed out after 15 s).
    pub async fn deliver(&self, url: &str, body: &str) -> u16 {
        let mut request = self.http.post(url).header(header::CONTENT_TYPE, SNS_CONTENT_TYPE);
        if let Ok(message) = serde_json::from_str::<Value>(body) {
            let headers = [
                (MESSAGE_TYPE_HEADER, "Type"),
                ("x-amz-sns-message-id", "MessageId"),
                ("x-amz-sns-topic-arn", "TopicArn"),
            ];
            for (name, key) in headers {
                if let Some(value) = message.get(key).and_then(Value::as_str) {
                    request = request.header(name, value);
                }
            }
        }
        status_or_zero(request.body(body.to_owned()), url, "SNS delivery").await
    }
}

// ---------------------------------------------------------------------------------------------
// SNS: HTTP

fn sns_router(state: SnsState) -> Router {
    Router::new()
        .route(CERT_PATH, get(serve_cert))
        .route("/", get(sns_action))
        .fallback(|State(state): State<SnsState>| async move {
            count_sns(&state, "other");
            (StatusCode::NOT_FOUND, "Not Found")
        })
        .with_state(state)
}

fn count_sns(state: &SnsState, kind: &'static str) {
    lock(state).calls.count(kind);
}

async fn serve_cert(State(state): State<SnsState>) -> Response {
    count_sns(&state, "cert");
    let pem = lock(&state).cert_pem.clone();
    ([(header::CONTENT_TYPE, "application/x-x509-ca-cert")], pem).into_response()
}

/// SNS's query API, as much of it as a subscriber uses: `Action=ConfirmSubscription&Token=..`.
async fn sns_action(
    State(state): State<SnsState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    count_sns(&state, "confirm");
    let params = query.map(|Query(q)| q).unwrap_or_default();
    if first(&params, "Action") != Some("ConfirmSubscription") {
        return sns_error("InvalidAction", "The action or operation requested is invalid.");
    }
    let token = first(&params, "Token").unwrap_or_default();
    let mut shared = lock(&state);
    let Some(topic_arn) = shared.issued.get(token).cloned() else {
        return sns_error("InvalidParameter", "Invalid parameter: Token");
    };
    shared.confirmed.push(token.to_owned());
    let body = format!(
        "<ConfirmSubscriptionResponse xmlns=\"{SNS_XML_NAMESPACE}\">\n  <ConfirmSubscriptionResult>\n    <SubscriptionArn>{}:{}</SubscriptionArn>\n  </ConfirmSubscriptionResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</ConfirmSubscriptionResponse>\n",
        escape_html(&topic_arn),
        random_uuid(),
        random_uuid(),
    );
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn sns_error(code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"{SNS_XML_NAMESPACE}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        escape_html(message),
        random_uuid(),
    );
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{self, Captured, http, query_param, receiver, sorted_keys};
    use super::*;
    use rsa::RsaPublicKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use x509_cert::Certificate;
    use x509_cert::der::{DecodePem, Encode};

    const REDIRECT: &str = "http://127.0.0.1:9/misfit/callback";
    const PERSON: &str = "51a4189acf12e53f80000001";
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:misfit-fake";

    fn fixture(name: &str) -> String {
        String::from_utf8(test_support::fixture("misfit", name)).unwrap()
    }

    fn fixture_json(name: &str) -> Value {
        serde_json::from_str(&fixture(name)).unwrap()
    }

    /// The keys of a JSON object text in the order they are written.
    fn keys_in_order(body: &str) -> Vec<String> {
        let value: Value = serde_json::from_str(body).unwrap();
        let mut keys: Vec<(usize, String)> =
            value.as_object().unwrap().keys().map(|k| (body.find(&format!("\"{k}\":")).unwrap(), k.clone())).collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
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
    fn the_handles_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<FakeMisfit>();
        shareable::<FakeSns>();
    }

    #[tokio::test]
    async fn the_consent_page_offers_approve_and_deny_forms_posting_to_the_consent_endpoint() {
        let fake = FakeMisfit::start().await;
        fake.add_person(PERSON);

        let (status, _, html) = get(
            &fake,
            &format!("{AUTHORIZE_PATH}?{}&login_hint={PERSON}", query_of(&authorize_url(&fake, "st-1"))),
            None,
        )
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
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({ "code": 429, "message": "Rate limit exceeded" })
        );

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
        let (status, _, _) =
            get(&fake, &format!("{AUTHORIZE_PATH}?{}", query_of(&authorize_url(&fake, "s"))), None).await;
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

    // --- SNS: an independent verifier, as a subscriber would verify ---

    fn public_key_of(pem: &str) -> RsaPublicKey {
        let certificate = Certificate::from_pem(pem.as_bytes()).unwrap();
        let spki = certificate.tbs_certificate.subject_public_key_info.to_der().unwrap();
        RsaPublicKey::from_public_key_der(&spki).unwrap()
    }

    /// SignatureVersion 1: RSA PKCS#1 v1.5 SHA-1 over the canonical string, with the certificate's key.
    fn verifies(pem: &str, body: &str) -> bool {
        let message: Value = serde_json::from_str(body).unwrap();
        assert_eq!(message["SignatureVersion"], "1");
        let Some(canonical) = canonical_string(&message) else { return false };
        let raw = STANDARD.decode(message["Signature"].as_str().unwrap()).unwrap();
        let signature = Signature::try_from(raw.as_slice()).unwrap();
        VerifyingKey::<Sha1>::new(public_key_of(pem)).verify(canonical.as_bytes(), &signature).is_ok()
    }

    fn with_field(body: &str, key: &str, value: &str) -> String {
        let mut message: Value = serde_json::from_str(body).unwrap();
        message[key] = json!(value);
        message.to_string()
    }

    fn fixture_event() -> MisfitEvent {
        MisfitEvent {
            kind: "sessions".to_owned(),
            id: "51a4189acf12e53f79000001".to_owned(),
            owner_id: PERSON.to_owned(),
            action: EventAction::Updated,
            updated_at: "2026-11-23T18:20:11Z".parse().unwrap(),
        }
    }

    async fn served_cert(sns: &FakeSns) -> String {
        let response = http().get(sns.cert_url()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    #[test]
    fn the_canonical_builder_verifies_both_fixtures_against_the_fixture_certificate() {
        let pem = fixture("sns_signing_cert.pem");
        for name in ["sns_notification.json", "sns_subscription_confirmation.json"] {
            let body = fixture(name);
            assert!(verifies(&pem, &body), "{name} must verify");
            for key in ["Message", "MessageId", "Timestamp", "TopicArn"] {
                assert!(!verifies(&pem, &with_field(&body, key, "changed")), "{name} with {key} changed");
            }
        }
        let confirmation = fixture("sns_subscription_confirmation.json");
        for key in ["Token", "SubscribeURL"] {
            assert!(!verifies(&pem, &with_field(&confirmation, key, "changed")), "{key} changed");
        }
        let notification = fixture("sns_notification.json");
        assert!(!verifies(&pem, &with_field(&notification, "Subject", "added")), "a Subject is signed when present");
    }

    #[test]
    fn the_canonical_string_puts_subject_between_message_id_and_timestamp_and_refuses_other_types() {
        let message = json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Subject": "s", "Message": "a\nb",
            "Timestamp": "ts", "SignatureVersion": "1", "Signature": "x", "UnsubscribeURL": "u",
        });

        assert_eq!(
            canonical_string(&message).unwrap(),
            "Message\na\nb\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
        );
        assert_eq!(canonical_string(&json!({ "Type": "Other", "Message": "m" })), None);
        assert_eq!(canonical_string(&json!({ "Type": "SubscriptionConfirmation", "Message": "m" })), None);
    }

    #[test]
    fn the_message_of_the_fixtures_event_is_the_fixtures_message_byte_for_byte() {
        assert_eq!(notification_message(&[fixture_event()]), fixture_json("sns_notification.json")["Message"]);
        let two = notification_message(&[fixture_event(), fixture_event()]);
        assert_eq!(serde_json::from_str::<Value>(&two).unwrap().as_array().unwrap().len(), 2);
    }

    #[test]
    fn timestamps_carry_milliseconds_like_snss() {
        let at: Timestamp = "2026-11-23T18:20:12.5Z".parse().unwrap();

        assert_eq!(sns_timestamp(at), "2026-11-23T18:20:12.500Z");
    }

    #[tokio::test]
    async fn the_served_certificate_is_pem_and_matches_the_signing_key() {
        let sns = FakeSns::start().await;

        let pem = served_cert(&sns).await;

        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        assert_eq!(pem, sns.cert_pem());
        let canonical = "Message\nhello\n";
        let signature = STANDARD.decode(sns.sign(canonical)).unwrap();
        let signature = Signature::try_from(signature.as_slice()).unwrap();
        assert!(VerifyingKey::<Sha1>::new(public_key_of(&pem)).verify(canonical.as_bytes(), &signature).is_ok());
        assert_eq!(sns.calls("cert"), 1);
        assert_eq!(sns.host(), sns.base_url().trim_start_matches("http://"));
    }

    #[tokio::test]
    async fn a_notification_has_the_fixtures_shape_and_verifies_with_the_served_certificate() {
        let sns = FakeSns::start().await;
        let pem = served_cert(&sns).await;

        let body = sns.notification(TOPIC, &[fixture_event()]);

        assert_eq!(keys_in_order(&body), keys_in_order(&fixture("sns_notification.json")));
        let message: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((&message["Type"], &message["TopicArn"]), (&json!("Notification"), &json!(TOPIC)));
        assert_eq!(message["SigningCertURL"], sns.cert_url());
        let events: Value = serde_json::from_str(message["Message"].as_str().unwrap()).unwrap();
        assert_eq!(
            events,
            json!([{ "type": "sessions", "id": "51a4189acf12e53f79000001", "ownerId": PERSON,
                     "action": "updated", "updatedAt": "2026-11-23T18:20:11Z" }])
        );
        assert!(verifies(&pem, &body));
        for key in ["Message", "MessageId", "Timestamp", "TopicArn", "Type"] {
            assert!(!verifies(&pem, &with_field(&body, key, "changed")), "{key} changed");
        }
        assert!(!verifies(&pem, &with_field(&body, "Subject", "added")));
    }

    #[tokio::test]
    async fn a_subscription_confirmation_verifies_and_its_subscribe_url_confirms_once_at_the_fake() {
        let sns = FakeSns::start().await;
        let pem = served_cert(&sns).await;

        let body = sns.subscription_confirmation(TOPIC);

        assert_eq!(keys_in_order(&body), keys_in_order(&fixture("sns_subscription_confirmation.json")));
        assert!(verifies(&pem, &body));
        for key in ["Token", "SubscribeURL", "Message"] {
            assert!(!verifies(&pem, &with_field(&body, key, "changed")), "{key} changed");
        }
        let message: Value = serde_json::from_str(&body).unwrap();
        let subscribe_url = Url::parse(message["SubscribeURL"].as_str().unwrap()).unwrap();
        assert_eq!(format!("{}:{}", subscribe_url.host_str().unwrap(), subscribe_url.port().unwrap()), sns.host());
        let response = http().get(subscribe_url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let xml = response.text().await.unwrap();
        assert!(xml.contains(&format!("<SubscriptionArn>{TOPIC}:")), "{xml}");
        assert_eq!(sns.confirmed(), [message["Token"].as_str().unwrap()]);
    }

    #[tokio::test]
    async fn confirming_an_unknown_token_or_another_action_is_refused() {
        let sns = FakeSns::start().await;

        for query in ["?Action=ConfirmSubscription&Token=made-up", "?Action=Subscribe&Token=x", ""] {
            let response = http().get(format!("{}/{query}", sns.base_url())).send().await.unwrap();
            assert_eq!(response.status(), 400, "{query}");
            assert!(response.text().await.unwrap().contains("<ErrorResponse"));
        }
        assert!(sns.confirmed().is_empty());
        assert_eq!(sns.calls("confirm"), 3);
    }

    #[tokio::test]
    async fn a_forged_message_changes_only_the_signature_and_fails_verification() {
        let sns = FakeSns::start().await;
        let pem = sns.cert_pem();
        let body = sns.notification(TOPIC, &[fixture_event()]);

        let forged = sns.forge(&body);

        assert!(!verifies(&pem, &forged));
        let (mut original, mut fake): (Value, Value) =
            (serde_json::from_str(&body).unwrap(), serde_json::from_str(&forged).unwrap());
        assert_ne!(original["Signature"], fake["Signature"]);
        original.as_object_mut().unwrap().remove("Signature");
        fake.as_object_mut().unwrap().remove("Signature");
        assert_eq!(original, fake);
    }

    #[tokio::test]
    async fn deliver_posts_the_body_as_sns_does_and_returns_the_status() {
        let sns = FakeSns::start().await;
        let subscriber = receiver(|_, _| 200).await;
        let body = sns.notification(TOPIC, &[fixture_event()]);

        let status = sns.deliver(&subscriber.url, &body).await;

        assert_eq!(status, 200);
        let Captured { headers, body: received } = subscriber.requests().pop().unwrap();
        assert_eq!(received, body.as_bytes());
        assert_eq!(headers[MESSAGE_TYPE_HEADER], "Notification");
        assert_eq!(headers[header::CONTENT_TYPE], SNS_CONTENT_TYPE);
        assert_eq!(headers["x-amz-sns-topic-arn"], TOPIC);
        assert_eq!(sns.deliver("http://127.0.0.1:9/", &body).await, 0, "no answer is 0");
    }
}
