//! What the fake Oura knows: its one app (client id and secret), the people and their days,
//! codes, grants and tokens, the app's request log for the rate limits, and the webhook
//! subscriptions; and the OAuth rules that change them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::super::common::{bearer_token, first, pkce_s256, random_token};
use super::super::server::Fake;
use super::faults::{Fault, FaultTarget};
use super::notifications::{Delivery, WebhookSender};
use super::wire::{
    EventType, Refusal, TokenJson, basic_credentials, invalid_client, invalid_grant, invalid_request, oauth_error,
    unauthorized,
};

const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(600);
const DEFAULT_PAGE_SIZE: usize = 50;
const DEFAULT_SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
pub(super) const DEFAULT_PER_MINUTE: u64 = 300;
pub(super) const DEFAULT_PER_DAY: u64 = 5000;

/// What the fake's routes share: this state, the call counters and the scripted faults.
pub(super) type Shared = Arc<Fake<OuraState, Fault, FaultTarget>>;

pub(super) struct Person {
    pub(super) time_zone: TimeZone,
    pub(super) zone_name: String,
    pub(super) age: u32,
    pub(super) weight: f64,
    pub(super) height: f64,
    pub(super) biological_sex: &'static str,
    pub(super) email: String,
    pub(super) membership_active: bool,
    pub(super) steps: BTreeMap<Date, u64>,
}

struct AuthCode {
    user_id: String,
    scopes: Vec<String>,
    /// As sent in the authorize request, if it was: the exchange must repeat it exactly.
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    issued_at: Instant,
    redeemed: bool,
}

pub(super) struct Grant {
    pub(super) user_id: String,
    pub(super) scopes: Vec<String>,
    pub(super) revoked: bool,
}

pub(super) struct AccessToken {
    pub(super) grant: usize,
    pub(super) expires_at: Instant,
}

pub(super) struct RefreshToken {
    grant: usize,
    /// Oura's refresh tokens are single-use.
    used: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub callback_url: String,
    pub verification_token: String,
    pub event_type: EventType,
    pub data_type: String,
    pub expiration_time: Timestamp,
}

impl Subscription {
    pub fn is_live(&self) -> bool {
        self.expiration_time > Timestamp::now()
    }
}

/// Everything the fake Oura knows, behind the fake's one lock.
pub(super) struct OuraState {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) access_token_lifetime: Duration,
    pub(super) code_lifetime: Duration,
    pub(super) page_size: usize,
    pub(super) subscription_lifetime: Duration,
    pub(super) end_date_inclusive: bool,
    pub(super) per_minute: u64,
    pub(super) per_day: u64,
    /// Requests the app made, by Unix minute (the consent page is not the app's).
    pub(super) requests_by_minute: BTreeMap<i64, u64>,
    pub(super) people: BTreeMap<String, Person>,
    codes: HashMap<String, AuthCode>,
    pub(super) grants: Vec<Grant>,
    pub(super) refresh_tokens: HashMap<String, RefreshToken>,
    pub(super) access_tokens: HashMap<String, AccessToken>,
    pub(super) subscriptions: Vec<Subscription>,
    /// Oura's calls to subscribers (verification GETs), shared with the handle's deliveries.
    pub(super) sender: Arc<WebhookSender>,
    /// Every notification sent, oldest first.
    pub(super) deliveries: Vec<Delivery>,
}

impl OuraState {
    pub(super) fn new(client_id: &str, client_secret: &str, sender: Arc<WebhookSender>) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            access_token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            code_lifetime: DEFAULT_CODE_LIFETIME,
            page_size: DEFAULT_PAGE_SIZE,
            subscription_lifetime: DEFAULT_SUBSCRIPTION_LIFETIME,
            end_date_inclusive: false,
            per_minute: DEFAULT_PER_MINUTE,
            per_day: DEFAULT_PER_DAY,
            requests_by_minute: BTreeMap::new(),
            people: BTreeMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            subscriptions: Vec::new(),
            sender,
            deliveries: Vec::new(),
        }
    }

    /// The person, added with `zone` (or UTC) if unknown; a known person keeps their zone
    /// unless `zone` is given.
    pub(super) fn person_mut(&mut self, user_id: &str, zone: Option<&str>) -> &mut Person {
        let person = self.people.entry(user_id.to_owned()).or_insert_with(|| Person {
            time_zone: TimeZone::UTC,
            zone_name: "UTC".to_owned(),
            age: 34,
            weight: 72.5,
            height: 1.78,
            biological_sex: "female",
            email: format!("{user_id}@sandbox.oura.test"),
            membership_active: true,
            steps: BTreeMap::new(),
        });
        if let Some(zone) = zone {
            let time_zone = TimeZone::get(zone).unwrap_or_else(|e| panic!("{zone:?} is not an IANA zone: {e}"));
            person.time_zone = time_zone;
            person.zone_name = zone.to_owned();
        }
        person
    }

    // --- the app's rate limits ---

    /// Records one request of the app now and answers whether it is over a limit (then the
    /// 429 to send, with `Retry-After` until the window that refused it rolls over).
    pub(super) fn record_request(&mut self) -> Option<Refusal> {
        let now = Timestamp::now().as_second();
        let minute = now.div_euclid(60);
        let in_minute = self.requests_by_minute.entry(minute).or_default();
        *in_minute += 1;
        let in_minute = *in_minute;
        let today = self.requests_on_day(now.div_euclid(86_400));
        if today > self.per_day {
            let retry_after = u64::try_from(86_400 - now.rem_euclid(86_400)).unwrap_or(1);
            return Some(Refusal::RateLimited { retry_after: Some(retry_after) });
        }
        if in_minute > self.per_minute {
            let retry_after = u64::try_from(60 - now.rem_euclid(60)).unwrap_or(1);
            return Some(Refusal::RateLimited { retry_after: Some(retry_after) });
        }
        None
    }

    /// Requests in the UTC day `day` (Unix days).
    pub(super) fn requests_on_day(&self, day: i64) -> u64 {
        self.requests_by_minute.range(day * 1440..(day + 1) * 1440).map(|(_, n)| n).sum()
    }

    // --- OAuth ---

    pub(super) fn issue_code(
        &mut self,
        user_id: &str,
        scopes: Vec<String>,
        redirect_uri: Option<String>,
        code_challenge: Option<String>,
    ) -> String {
        let code = random_token("fake-oura-code-");
        let record = AuthCode {
            user_id: user_id.to_owned(),
            scopes,
            redirect_uri,
            code_challenge,
            issued_at: Instant::now(),
            redeemed: false,
        };
        self.codes.insert(code.clone(), record);
        code
    }

    pub(super) fn new_grant(&mut self, user_id: &str, scopes: Vec<String>) -> usize {
        self.grants.push(Grant { user_id: user_id.to_owned(), scopes, revoked: false });
        self.grants.len() - 1
    }

    /// A new access token and a new refresh token for `grant`, as the token endpoint answers them.
    pub(super) fn issue_tokens(&mut self, grant: usize) -> TokenJson {
        let access_token = random_token("fake-oura-access-");
        let expires_at = Instant::now() + self.access_token_lifetime;
        self.access_tokens.insert(access_token.clone(), AccessToken { grant, expires_at });
        let refresh_token = random_token("fake-oura-refresh-");
        self.refresh_tokens.insert(refresh_token.clone(), RefreshToken { grant, used: false });
        TokenJson {
            token_type: "bearer",
            access_token,
            expires_in: self.access_token_lifetime.as_secs(),
            refresh_token,
            scope: self.grants[grant].scopes.join(" "),
        }
    }

    pub(super) fn grants_of<'a>(&'a mut self, user_id: &'a str) -> impl Iterator<Item = (usize, &'a mut Grant)> + 'a {
        self.grants.iter_mut().enumerate().filter(move |(_, g)| g.user_id == user_id)
    }

    /// The client from the form body or HTTP Basic; 401 `invalid_client` if it is not the app.
    pub(super) fn authenticate_client(&self, headers: &HeaderMap, fields: &[(String, String)]) -> Result<(), Refusal> {
        let (id, secret) = basic_credentials(headers).unwrap_or_else(|| {
            (
                first(fields, "client_id").unwrap_or_default().to_owned(),
                first(fields, "client_secret").unwrap_or_default().to_owned(),
            )
        });
        if id != self.client_id || secret != self.client_secret {
            return Err(invalid_client());
        }
        Ok(())
    }

    pub(super) fn token(&mut self, headers: &HeaderMap, fields: &[(String, String)]) -> Result<Response, Refusal> {
        self.authenticate_client(headers, fields)?;
        let tokens = match first(fields, "grant_type") {
            Some("authorization_code") => self.exchange_code(fields)?,
            Some("refresh_token") => self.refresh(fields)?,
            None => return Err(invalid_request("Missing grant_type.")),
            Some(_) => {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "Invalid grant_type. grant_type must be either authorization_code or refresh_token.",
                ));
            }
        };
        Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(tokens)).into_response())
    }

    fn exchange_code(&mut self, fields: &[(String, String)]) -> Result<TokenJson, Refusal> {
        let Some(code) = first(fields, "code").filter(|c| !c.is_empty()) else {
            return Err(invalid_request("Missing code."));
        };
        let code_lifetime = self.code_lifetime;
        let Some(record) = self.codes.get_mut(code) else {
            return Err(invalid_grant("Invalid authorization code."));
        };
        if record.redeemed {
            return Err(invalid_grant("Authorization code already used."));
        }
        if record.issued_at.elapsed() >= code_lifetime {
            return Err(invalid_grant("Authorization code expired."));
        }
        if let Some(expected) = &record.redirect_uri {
            match first(fields, "redirect_uri") {
                None => return Err(invalid_request("redirect_uri missing.")),
                Some(uri) if uri != expected => return Err(invalid_grant("Redirect URI does not match.")),
                Some(_) => {}
            }
        }
        if let Some(challenge) = &record.code_challenge {
            let verified = first(fields, "code_verifier").is_some_and(|v| pkce_s256(v) == *challenge);
            if !verified {
                return Err(invalid_grant("code_verifier does not match the code_challenge."));
            }
        }
        // Redeemed only on success, so a client bug (a wrong verifier, say) can be retried in a test.
        record.redeemed = true;
        let (user_id, scopes) = (record.user_id.clone(), record.scopes.clone());
        let grant = self.new_grant(&user_id, scopes);
        Ok(self.issue_tokens(grant))
    }

    fn refresh(&mut self, fields: &[(String, String)]) -> Result<TokenJson, Refusal> {
        let Some(token) = first(fields, "refresh_token").filter(|t| !t.is_empty()) else {
            return Err(invalid_request("Missing refresh_token."));
        };
        let Some(record) = self.refresh_tokens.get_mut(token) else {
            return Err(invalid_grant("Invalid refresh token."));
        };
        if record.used || self.grants[record.grant].revoked {
            return Err(invalid_grant("Token already used or revoked."));
        }
        record.used = true;
        let grant = record.grant;
        Ok(self.issue_tokens(grant))
    }

    /// `GET /oauth/revoke?access_token=..`: the token's whole grant dies (its access and refresh
    /// tokens). True if the token was known.
    pub(super) fn revoke(&mut self, token: &str) -> bool {
        let grant =
            self.access_tokens.get(token).map(|t| t.grant).or_else(|| self.refresh_tokens.get(token).map(|t| t.grant));
        match grant {
            Some(grant) => {
                self.grants[grant].revoked = true;
                true
            }
            None => false,
        }
    }

    /// The grant behind a Bearer token, or Oura's 401 for a missing, unknown, expired or
    /// revoked one.
    pub(super) fn bearer_grant(&self, headers: &HeaderMap) -> Result<&Grant, Refusal> {
        let Some(token) = bearer_token(headers) else {
            return Err(unauthorized("Access token not provided or is invalid."));
        };
        let Some(access) = self.access_tokens.get(token) else {
            return Err(unauthorized("Access token not provided or is invalid."));
        };
        let grant = &self.grants[access.grant];
        if grant.revoked {
            return Err(unauthorized("Token already used or revoked."));
        }
        if access.expires_at <= Instant::now() {
            return Err(unauthorized("Token has expired."));
        }
        Ok(grant)
    }

    /// The app's credentials of a `/v2/webhook/subscription` call: 401 without them, 403 for wrong ones.
    pub(super) fn webhook_client(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        use super::wire::{CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, problem};
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match (value(CLIENT_ID_HEADER), value(CLIENT_SECRET_HEADER)) {
            (Some(id), Some(secret)) if id == self.client_id && secret == self.client_secret => Ok(()),
            (Some(_), Some(_)) => {
                Err(problem(StatusCode::FORBIDDEN, "Forbidden", "Invalid x-client-id or x-client-secret."))
            }
            _ => Err(problem(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "The x-client-id and x-client-secret headers are required.",
            )),
        }
    }

    pub(super) fn subscription_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    pub(super) fn new_expiration(&self) -> Timestamp {
        let lifetime = jiff::SignedDuration::try_from(self.subscription_lifetime).unwrap_or(jiff::SignedDuration::ZERO);
        Timestamp::now().checked_add(lifetime).unwrap_or(Timestamp::MAX)
    }
}
