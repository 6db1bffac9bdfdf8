//! What the fake Polar knows: its one client (id and secret), the people and their days, codes
//! and tokens, who is registered to the client, the client's one webhook, and the request log
//! its rate limits count; and the OAuth rules that change them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use jiff::civil::Date;

use super::super::common::{bearer_token, first, random_token};
use super::super::server::Fake;
use super::faults::{Fault, FaultTarget};
use super::notifications::{Delivery, WebhookSender};
use super::wire::{Refusal, TOKEN_EXPIRES_IN, TokenJson, basic_credentials, oauth_error, unauthorized};

const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(600);
/// AccessLink's windows: a quarter hour and a day.
pub(super) const SHORT_WINDOW_SECS: i64 = 15 * 60;
pub(super) const LONG_WINDOW_SECS: i64 = 86_400;
/// Polar's limits: `500 + users × 20` a quarter hour and `5000 + users × 100` a day.
pub(super) const SHORT_BASE: u64 = 500;
pub(super) const SHORT_PER_USER: u64 = 20;
pub(super) const LONG_BASE: u64 = 5000;
pub(super) const LONG_PER_USER: u64 = 100;

/// What the fake's routes share: this state, the call counters and the scripted faults.
pub(super) type Shared = Arc<Fake<PolarState, Fault, FaultTarget>>;

pub(super) struct Person {
    /// Whether the person accepted Polar's mandatory consents: without them AccessLink answers 403.
    pub(super) consents_accepted: bool,
    pub(super) steps: BTreeMap<Date, u64>,
}

struct AuthCode {
    user_id: u64,
    /// As sent in the authorize request, if it was: the exchange must repeat it exactly.
    redirect_uri: Option<String>,
    issued_at: Instant,
    redeemed: bool,
}

pub(super) struct AccessToken {
    pub(super) user_id: u64,
    pub(super) revoked: bool,
}

pub(super) struct Registration {
    pub(super) member_id: String,
    pub(super) registered_at: Timestamp,
}

/// The client's one webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub events: Vec<String>,
    pub url: String,
    pub active: bool,
    /// Shown once, in the answer that created it.
    pub signature_secret_key: String,
}

/// Everything the fake Polar knows, behind the fake's one lock.
pub(super) struct PolarState {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) code_lifetime: Duration,
    /// The limits' bases (Polar's 500 and 5000 unless a test lowers them); each grows with
    /// the registered users.
    pub(super) short_base: u64,
    pub(super) long_base: u64,
    /// The client's requests, by the start of their quarter hour (Unix seconds).
    pub(super) requests_by_window: BTreeMap<i64, u64>,
    pub(super) people: BTreeMap<u64, Person>,
    codes: HashMap<String, AuthCode>,
    pub(super) access_tokens: HashMap<String, AccessToken>,
    pub(super) registrations: BTreeMap<u64, Registration>,
    pub(super) webhook: Option<Webhook>,
    pub(super) sender: Arc<WebhookSender>,
    /// Every notice sent, oldest first.
    pub(super) deliveries: Vec<Delivery>,
}

impl PolarState {
    pub(super) fn new(client_id: &str, client_secret: &str, sender: Arc<WebhookSender>) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            code_lifetime: DEFAULT_CODE_LIFETIME,
            short_base: SHORT_BASE,
            long_base: LONG_BASE,
            requests_by_window: BTreeMap::new(),
            people: BTreeMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            registrations: BTreeMap::new(),
            webhook: None,
            sender,
            deliveries: Vec::new(),
        }
    }

    /// The person, added (consents accepted, no days) if unknown.
    pub(super) fn person_mut(&mut self, user_id: u64) -> &mut Person {
        self.people.entry(user_id).or_insert_with(|| Person { consents_accepted: true, steps: BTreeMap::new() })
    }

    // --- the client's rate limits ---

    /// The quarter-hour and day limits now: each grows with the registered users.
    pub(super) fn limits(&self) -> (u64, u64) {
        let users = self.registrations.len() as u64;
        (self.short_base + users * SHORT_PER_USER, self.long_base + users * LONG_PER_USER)
    }

    /// Requests in the window of `length` seconds that `now` falls in.
    pub(super) fn requests_in(&self, now: i64, length: i64) -> u64 {
        let start = now.div_euclid(length) * length;
        self.requests_by_window.range(start..start + length).map(|(_, n)| n).sum()
    }

    /// Records one request of the client now and answers whether it is over a limit (then the
    /// 429 to send, with the window's usage, limit and seconds to its end).
    pub(super) fn record_request(&mut self) -> Option<Refusal> {
        let now = Timestamp::now().as_second();
        *self.requests_by_window.entry(now.div_euclid(SHORT_WINDOW_SECS) * SHORT_WINDOW_SECS).or_default() += 1;
        let (short, long) = self.limits();
        for (length, limit) in [(LONG_WINDOW_SECS, long), (SHORT_WINDOW_SECS, short)] {
            let usage = self.requests_in(now, length);
            if usage > limit {
                let reset = u64::try_from(length - now.rem_euclid(length)).unwrap_or(1);
                return Some(Refusal::RateLimited { usage, limit, reset });
            }
        }
        None
    }

    // --- OAuth ---

    pub(super) fn issue_code(&mut self, user_id: u64, redirect_uri: Option<String>) -> String {
        let code = random_token("fake-polar-code-");
        let record = AuthCode { user_id, redirect_uri, issued_at: Instant::now(), redeemed: false };
        self.codes.insert(code.clone(), record);
        code
    }

    /// A new access token for `user_id`, as the token endpoint answers it.
    pub(super) fn issue_token(&mut self, user_id: u64) -> TokenJson {
        let access_token = random_token("fake-polar-access-");
        self.access_tokens.insert(access_token.clone(), AccessToken { user_id, revoked: false });
        TokenJson { access_token, token_type: "bearer", x_user_id: user_id, expires_in: TOKEN_EXPIRES_IN }
    }

    /// The client of HTTP Basic; 401 `invalid_client` if it is not ours (the token endpoint
    /// takes no credentials in the form).
    pub(super) fn authenticate_client(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        match basic_credentials(headers) {
            Some((id, secret)) if id == self.client_id && secret == self.client_secret => Ok(()),
            _ => Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Bad client credentials")),
        }
    }

    pub(super) fn token(&mut self, headers: &HeaderMap, fields: &[(String, String)]) -> Result<TokenJson, Refusal> {
        self.authenticate_client(headers)?;
        let invalid_grant = |d| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
        match first(fields, "grant_type") {
            Some("authorization_code") => {}
            None => return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing grant type")),
            // Polar issues no refresh tokens.
            Some(_) => {
                return Err(oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant type"));
            }
        }
        let Some(code) = first(fields, "code").filter(|c| !c.is_empty()) else {
            return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing authorization code"));
        };
        let lifetime = self.code_lifetime;
        let Some(record) = self.codes.get_mut(code) else { return Err(invalid_grant("Invalid authorization code")) };
        if record.redeemed || record.issued_at.elapsed() >= lifetime {
            return Err(invalid_grant("Invalid authorization code"));
        }
        if let Some(expected) = &record.redirect_uri
            && first(fields, "redirect_uri") != Some(expected.as_str())
        {
            return Err(invalid_grant("Redirect URI mismatch"));
        }
        record.redeemed = true;
        let user_id = record.user_id;
        Ok(self.issue_token(user_id))
    }

    /// The person behind a Bearer token, or AccessLink's 401 for a missing, unknown or revoked one.
    pub(super) fn bearer_user(&self, headers: &HeaderMap) -> Result<u64, Refusal> {
        let token = bearer_token(headers).ok_or_else(unauthorized)?;
        match self.access_tokens.get(token) {
            Some(access) if !access.revoked => Ok(access.user_id),
            _ => Err(unauthorized()),
        }
    }

    /// The person behind a Bearer token who may read data: registered to the client (404
    /// otherwise) with the consents accepted (403 otherwise).
    pub(super) fn reader(&self, headers: &HeaderMap) -> Result<u64, Refusal> {
        let user_id = self.bearer_user(headers)?;
        if !self.people.get(&user_id).is_some_and(|p| p.consents_accepted) {
            return Err(super::wire::consents_missing());
        }
        if !self.registrations.contains_key(&user_id) {
            return Err(super::wire::not_found("User not registered to this client"));
        }
        Ok(user_id)
    }

    /// Every access token of `user_id` stops working.
    pub(super) fn revoke_tokens(&mut self, user_id: u64) {
        for token in self.access_tokens.values_mut().filter(|t| t.user_id == user_id) {
            token.revoked = true;
        }
    }
}
