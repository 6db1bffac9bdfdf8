//! What the fake Withings holds: its clock, people and their days, codes, grants and tokens
//! with Withings' refresh-token rotation rule, nonces, the app's request log for the rate
//! limit, and the notify subscriptions; and the OAuth rules that change them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::super::common::{bearer_token, first, random_token};
use super::super::server::Fake;
use super::faults::{Fault, FaultTarget};
use super::notifications::{Delivery, Sender};
use super::wire::{
    DeviceDay, NoticeStyle, Refusal, STATUS_MISSING_SCOPE, device_hash, invalid_params, invalid_token, refusal,
    token_body, too_many_requests, unauthorized,
};

const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(10_800);
const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(30);
/// An old refresh token stays valid this long after its successor is issued (unless the
/// successor's access token is used first).
const DEFAULT_OLD_REFRESH_GRACE: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
const DEFAULT_PAGE_SIZE: usize = 50;
pub(super) const DEFAULT_PER_MINUTE: u64 = 120;
/// How far a `getnonce` timestamp may be from the fake's clock.
const NONCE_TIMESTAMP_WINDOW: i64 = 600;
/// Consecutive failed deliveries after which Withings drops a subscription.
pub(super) const FAILURES_BEFORE_DROP: u32 = 4;

/// What the fake's routes share: this state, the call counters and the scripted faults.
pub(super) type Shared = Arc<Fake<WithingsState, Fault, FaultTarget>>;

pub(super) struct Person {
    pub(super) time_zone: TimeZone,
    pub(super) zone_name: String,
    /// Each date's activities, one per device (the first is the person's main tracker).
    pub(super) days: BTreeMap<Date, Vec<DeviceDay>>,
}

struct AuthCode {
    userid: String,
    scopes: Vec<String>,
    redirect_uri: String,
    issued_at: Timestamp,
    redeemed: bool,
}

pub(super) struct Grant {
    pub(super) userid: String,
    pub(super) scopes: Vec<String>,
    pub(super) revoked: bool,
}

pub(super) struct AccessToken {
    pub(super) grant: usize,
    pub(super) expires_at: Timestamp,
    /// Used at least once on the API: from then on the refresh token it replaced is dead.
    pub(super) used: bool,
}

struct RefreshToken {
    grant: usize,
    expires_at: Timestamp,
    /// When a refresh with this token first issued a successor: it lives 8 hours more at most.
    superseded_at: Option<Timestamp>,
    /// Access tokens issued by refreshing with this token: the first use of any kills this one.
    successors: Vec<String>,
}

/// One notify subscription: Withings keys them by (user, callback URL, appli).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub userid: String,
    pub callbackurl: String,
    pub appli: i64,
    pub comment: String,
    /// Deliveries failed in a row; at four Withings drops the subscription.
    pub failures: u32,
}

/// Everything the fake Withings knows, behind the fake's one lock.
pub(super) struct WithingsState {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    /// Added to the real clock by `advance`.
    pub(super) clock_offset: SignedDuration,
    pub(super) access_token_lifetime: Duration,
    pub(super) code_lifetime: Duration,
    pub(super) old_refresh_grace: Duration,
    pub(super) page_size: usize,
    pub(super) per_minute: u64,
    pub(super) userid_as_number: bool,
    pub(super) notice_style: NoticeStyle,
    /// Requests the app made, by Unix minute of the fake's clock (the consent page is not the app's).
    pub(super) requests_by_minute: BTreeMap<i64, u64>,
    pub(super) people: BTreeMap<String, Person>,
    codes: HashMap<String, AuthCode>,
    pub(super) grants: Vec<Grant>,
    refresh_tokens: HashMap<String, RefreshToken>,
    pub(super) access_tokens: HashMap<String, AccessToken>,
    /// Nonces handed out by `getnonce` and not used yet.
    nonces: HashMap<String, Timestamp>,
    pub(super) subscriptions: Vec<Subscription>,
    /// Subscribes whose HEAD check of the callback URL fails before the real one is made.
    pub(super) failing_head_checks: u32,
    pub(super) sender: Arc<Sender>,
    pub(super) deliveries: Vec<Delivery>,
}

impl WithingsState {
    pub(super) fn new(client_id: &str, client_secret: &str, sender: Arc<Sender>) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            clock_offset: SignedDuration::ZERO,
            access_token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            code_lifetime: DEFAULT_CODE_LIFETIME,
            old_refresh_grace: DEFAULT_OLD_REFRESH_GRACE,
            page_size: DEFAULT_PAGE_SIZE,
            per_minute: DEFAULT_PER_MINUTE,
            userid_as_number: false,
            notice_style: NoticeStyle::Range,
            requests_by_minute: BTreeMap::new(),
            people: BTreeMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            nonces: HashMap::new(),
            subscriptions: Vec::new(),
            failing_head_checks: 0,
            sender,
            deliveries: Vec::new(),
        }
    }

    /// The fake's clock: real time plus whatever `advance` added.
    pub(super) fn now(&self) -> Timestamp {
        Timestamp::now().checked_add(self.clock_offset).unwrap_or(Timestamp::MAX)
    }

    fn later(&self, lifetime: Duration) -> Timestamp {
        let lifetime = SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::MAX);
        self.now().checked_add(lifetime).unwrap_or(Timestamp::MAX)
    }

    /// The person, added with `zone` (or UTC) if unknown; a known person keeps their zone
    /// unless `zone` is given.
    pub(super) fn person_mut(&mut self, userid: &str, zone: Option<&str>) -> &mut Person {
        let person = self.people.entry(userid.to_owned()).or_insert_with(|| Person {
            time_zone: TimeZone::UTC,
            zone_name: "UTC".to_owned(),
            days: BTreeMap::new(),
        });
        if let Some(zone) = zone {
            person.time_zone = TimeZone::get(zone).unwrap_or_else(|e| panic!("{zone:?} is not an IANA zone: {e}"));
            person.zone_name = zone.to_owned();
        }
        person
    }

    /// Sets the steps `device` (`None`: the person's main tracker) counted on `day`; the
    /// previous count, if any.
    pub(super) fn put_steps(&mut self, userid: &str, day: Date, device: Option<&str>, steps: u64) -> Option<u64> {
        let modified = self.now().as_second();
        let hash = device_hash(userid, device.unwrap_or("main"));
        let devices = self.person_mut(userid, None).days.entry(day).or_default();
        match devices.iter_mut().find(|d| d.hash_deviceid == hash) {
            Some(existing) => {
                let previous = existing.steps;
                existing.steps = steps;
                existing.modified = modified;
                Some(previous)
            }
            None => {
                devices.push(DeviceDay { hash_deviceid: hash, steps, modified });
                None
            }
        }
    }

    // --- the app's rate limit ---

    /// Records one request of the app now; the 601 to answer if it is over the limit.
    pub(super) fn record_request(&mut self) -> Option<Refusal> {
        let minute = self.now().as_second().div_euclid(60);
        let in_minute = self.requests_by_minute.entry(minute).or_default();
        *in_minute += 1;
        (*in_minute > self.per_minute).then(too_many_requests)
    }

    // --- OAuth ---

    pub(super) fn issue_code(&mut self, userid: &str, scopes: Vec<String>, redirect_uri: &str) -> String {
        let code = random_token("fake-withings-code-");
        let record = AuthCode {
            userid: userid.to_owned(),
            scopes,
            redirect_uri: redirect_uri.to_owned(),
            issued_at: self.now(),
            redeemed: false,
        };
        self.codes.insert(code.clone(), record);
        code
    }

    pub(super) fn new_grant(&mut self, userid: &str, scopes: Vec<String>) -> usize {
        self.grants.push(Grant { userid: userid.to_owned(), scopes, revoked: false });
        self.grants.len() - 1
    }

    /// A new access token and refresh token for `grant`: (access, refresh).
    pub(super) fn issue_tokens(&mut self, grant: usize) -> (String, String) {
        let access = random_token("fake-withings-access-");
        let expires_at = self.later(self.access_token_lifetime);
        self.access_tokens.insert(access.clone(), AccessToken { grant, expires_at, used: false });
        let refresh = random_token("fake-withings-refresh-");
        let expires_at = self.later(DEFAULT_REFRESH_TOKEN_LIFETIME);
        self.refresh_tokens
            .insert(refresh.clone(), RefreshToken { grant, expires_at, superseded_at: None, successors: Vec::new() });
        (access, refresh)
    }

    fn token_answer(&self, grant: usize, access: &str, refresh: &str) -> Value {
        let grant = &self.grants[grant];
        token_body(
            &grant.userid,
            self.userid_as_number,
            access,
            refresh,
            self.access_token_lifetime.as_secs(),
            &grant.scopes,
        )
    }

    pub(super) fn grants_of<'a>(&'a mut self, userid: &'a str) -> impl Iterator<Item = (usize, &'a mut Grant)> + 'a {
        self.grants.iter_mut().enumerate().filter(move |(_, g)| g.userid == userid)
    }

    fn check_client(&self, fields: &[(String, String)]) -> Result<(), Refusal> {
        let id = first(fields, "client_id").unwrap_or_default();
        let secret = first(fields, "client_secret").unwrap_or_default();
        if id.is_empty() || secret.is_empty() {
            return Err(invalid_params("missing client_id or client_secret"));
        }
        if id != self.client_id || secret != self.client_secret {
            return Err(invalid_params("invalid client_id or client_secret"));
        }
        Ok(())
    }

    /// `action=requesttoken`: the token body to answer.
    pub(super) fn request_token(&mut self, fields: &[(String, String)]) -> Result<Value, Refusal> {
        self.check_client(fields)?;
        match first(fields, "grant_type") {
            Some("authorization_code") => self.exchange_code(fields),
            Some("refresh_token") => self.refresh(fields),
            _ => Err(invalid_params("grant_type must be authorization_code or refresh_token")),
        }
    }

    fn exchange_code(&mut self, fields: &[(String, String)]) -> Result<Value, Refusal> {
        let code = first(fields, "code").filter(|c| !c.is_empty()).ok_or_else(|| invalid_params("missing code"))?;
        let now = self.now();
        let lifetime = SignedDuration::try_from(self.code_lifetime).unwrap_or(SignedDuration::MAX);
        let record = self.codes.get_mut(code).ok_or_else(|| invalid_params("invalid code"))?;
        if record.redeemed {
            return Err(invalid_params("code already used"));
        }
        if now.duration_since(record.issued_at) >= lifetime {
            return Err(invalid_params("code expired"));
        }
        if first(fields, "redirect_uri") != Some(record.redirect_uri.as_str()) {
            return Err(invalid_params("redirect_uri does not match"));
        }
        record.redeemed = true;
        let (userid, scopes) = (record.userid.clone(), record.scopes.clone());
        let grant = self.new_grant(&userid, scopes);
        let (access, refresh) = self.issue_tokens(grant);
        Ok(self.token_answer(grant, &access, &refresh))
    }

    /// Whether `token` can still refresh: alive, its grant not revoked, and, once superseded,
    /// within 8 hours of its successor's issue and before any successor access token is used.
    fn refresh_token_alive(&self, token: &RefreshToken) -> bool {
        let now = self.now();
        if self.grants[token.grant].revoked || token.expires_at <= now {
            return false;
        }
        let Some(superseded_at) = token.superseded_at else {
            return true;
        };
        let grace = SignedDuration::try_from(self.old_refresh_grace).unwrap_or(SignedDuration::MAX);
        let successor_used = token.successors.iter().any(|a| self.access_tokens.get(a).is_some_and(|t| t.used));
        now.duration_since(superseded_at) < grace && !successor_used
    }

    fn refresh(&mut self, fields: &[(String, String)]) -> Result<Value, Refusal> {
        let token = first(fields, "refresh_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_params("missing refresh_token"))?
            .to_owned();
        let alive = self.refresh_tokens.get(&token).is_some_and(|record| self.refresh_token_alive(record));
        if !alive {
            return Err(invalid_params("invalid refresh_token"));
        }
        let grant = self.refresh_tokens[&token].grant;
        let (access, refresh) = self.issue_tokens(grant);
        let now = self.now();
        if let Some(record) = self.refresh_tokens.get_mut(&token) {
            record.superseded_at.get_or_insert(now);
            record.successors.push(access.clone());
        }
        Ok(self.token_answer(grant, &access, &refresh))
    }

    // --- signed requests ---

    /// The fields' signature with this app's secret.
    pub(super) fn sign(&self, fields: &[(&str, &str)]) -> String {
        super::wire::signature(&self.client_secret, fields)
    }

    fn check_signature(&self, fields: &[(String, String)], signed: &[&str]) -> Result<(), Refusal> {
        if first(fields, "client_id") != Some(self.client_id.as_str()) {
            return Err(unauthorized("invalid client_id"));
        }
        let values: Vec<(&str, &str)> = signed.iter().map(|k| (*k, first(fields, k).unwrap_or_default())).collect();
        let given = first(fields, "signature").unwrap_or_default();
        if given.is_empty() || !given.eq_ignore_ascii_case(&self.sign(&values)) {
            return Err(unauthorized("invalid signature"));
        }
        Ok(())
    }

    /// `action=getnonce`: a fresh single-use nonce.
    pub(super) fn get_nonce(&mut self, fields: &[(String, String)]) -> Result<String, Refusal> {
        let timestamp = first(fields, "timestamp")
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| invalid_params("missing or invalid timestamp"))?;
        self.check_signature(fields, &["action", "client_id", "timestamp"])?;
        if (timestamp - self.now().as_second()).abs() > NONCE_TIMESTAMP_WINDOW {
            return Err(invalid_params("timestamp too far from now"));
        }
        let nonce = random_token("fake-withings-nonce-");
        self.nonces.insert(nonce.clone(), self.now());
        Ok(nonce)
    }

    /// `action=revoke` on `/v2/oauth2`: the user's grants die with their subscriptions.
    pub(super) fn revoke(&mut self, fields: &[(String, String)]) -> Result<(), Refusal> {
        self.check_signature(fields, &["action", "client_id", "nonce"])?;
        let nonce = first(fields, "nonce").unwrap_or_default();
        if self.nonces.remove(nonce).is_none() {
            return Err(invalid_params("invalid nonce"));
        }
        let userid =
            first(fields, "userid").filter(|u| !u.is_empty()).ok_or_else(|| invalid_params("missing userid"))?;
        let userid = userid.to_owned();
        let mut found = false;
        for (_, grant) in self.grants_of(&userid) {
            found |= !grant.revoked;
            grant.revoked = true;
        }
        if !found {
            return Err(invalid_params("no authorization for this userid"));
        }
        self.subscriptions.retain(|s| s.userid != userid);
        Ok(())
    }

    /// The grant behind the request's Bearer token (marking the token used), or status 401.
    pub(super) fn bearer_grant(&mut self, headers: &HeaderMap, fields: &[(String, String)]) -> Result<usize, Refusal> {
        // Withings also takes `access_token` as a parameter, from older integrations.
        let token = bearer_token(headers).or_else(|| first(fields, "access_token")).ok_or_else(invalid_token)?;
        let now = self.now();
        let access = self.access_tokens.get_mut(token).ok_or_else(invalid_token)?;
        if access.expires_at <= now || self.grants[access.grant].revoked {
            return Err(invalid_token());
        }
        access.used = true;
        Ok(access.grant)
    }

    /// Refuses a grant without `scope`.
    pub(super) fn require_scope(&self, grant: usize, scope: &str) -> Result<(), Refusal> {
        if self.grants[grant].scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(refusal(STATUS_MISSING_SCOPE, format!("invalid_token: the grant lacks the scope {scope}")))
        }
    }

    /// Every access token of `userid` expires now (refresh tokens keep working).
    pub(super) fn expire_access_tokens(&mut self, userid: &str) {
        let grants: Vec<usize> = self.grants_of(userid).map(|(i, _)| i).collect();
        let now = self.now();
        for token in self.access_tokens.values_mut().filter(|t| grants.contains(&t.grant)) {
            token.expires_at = now;
        }
    }
}
