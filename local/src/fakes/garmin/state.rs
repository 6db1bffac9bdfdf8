//! What the fake Garmin knows: its one app (client id and secret), the people (their days,
//! their device's offset from UTC, what they share), codes and tokens under Garmin's rules
//! (PKCE, day-long access tokens, rotating 90-day refresh tokens), every upload as it was
//! made (dailies are read by upload time), the pull tokens its pings handed out, the backfills
//! asked for and the days they cost a minute, and where pings go.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::super::common::{pkce_s256, random_token};
use super::super::server::Fake;
use super::{Fault, FaultTarget, HEALTH_EXPORT};

pub(super) type Shared = Arc<Fake<GarminState, Fault, FaultTarget>>;

pub(super) const ACCESS_LIFETIME_SECS: i64 = 86_400;
pub(super) const REFRESH_LIFETIME_SECS: i64 = 7_775_998;
const CODE_LIFETIME_SECS: i64 = 600;
/// How long a ping's pull token reads its window.
const PULL_TOKEN_LIFETIME_SECS: i64 = 86_400;

pub(super) struct Person {
    /// The device's display time minus UTC, in seconds.
    pub(super) offset: i64,
    pub(super) steps: BTreeMap<Date, u64>,
    pub(super) permissions: Vec<String>,
    /// Registered to the app (consented, not deregistered).
    pub(super) registered: bool,
}

impl Person {
    pub(super) fn shares_health(&self) -> bool {
        self.permissions.iter().any(|p| p == HEALTH_EXPORT)
    }
}

struct Code {
    user_id: String,
    challenge: String,
    redirect_uri: String,
    issued_at: i64,
}

pub(super) struct Grant {
    pub(super) user_id: String,
    pub(super) expires_at: i64,
    pub(super) revoked: bool,
}

/// One upload: the daily summaries a sync sent, at one second of upload time.
pub(super) struct Upload {
    pub(super) user_id: String,
    pub(super) at: i64,
    pub(super) summaries: Vec<Value>,
}

pub(super) struct PullToken {
    pub(super) user_id: String,
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) expires_at: i64,
}

pub(super) struct GarminState {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) people: BTreeMap<String, Person>,
    codes: HashMap<String, Code>,
    pub(super) access: HashMap<String, Grant>,
    pub(super) refresh: HashMap<String, Grant>,
    pub(super) uploads: Vec<Upload>,
    pub(super) pull_tokens: HashMap<String, PullToken>,
    /// (user, from, to) of every backfill asked for: the same again is a 409.
    pub(super) backfills: HashSet<(String, i64, i64)>,
    /// Days of backfill asked for per UTC minute, and the app's limit.
    pub(super) backfill_days: BTreeMap<i64, u64>,
    pub(super) backfill_days_per_minute: u64,
    /// Backfill requests per UTC minute, refused ones included.
    pub(super) backfill_requests: BTreeMap<i64, u64>,
    /// Where pings go (the app's endpoint configuration), if anywhere.
    pub(super) ping_url: Option<String>,
    /// `http://127.0.0.1:PORT`: the origin every ping's `callbackURL` names.
    pub(super) base_url: String,
    pub(super) deliveries: Vec<super::Delivery>,
}

impl GarminState {
    pub(super) fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            people: BTreeMap::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            uploads: Vec::new(),
            pull_tokens: HashMap::new(),
            backfills: HashSet::new(),
            backfill_days: BTreeMap::new(),
            backfill_days_per_minute: super::PRODUCTION_BACKFILL_DAYS_PER_MINUTE,
            backfill_requests: BTreeMap::new(),
            ping_url: None,
            base_url: String::new(),
            deliveries: Vec::new(),
        }
    }

    pub(super) fn person_mut(&mut self, user_id: &str) -> &mut Person {
        self.people.entry(user_id.to_owned()).or_insert_with(|| Person {
            offset: 0,
            steps: BTreeMap::new(),
            permissions: vec!["ACTIVITY_EXPORT".to_owned(), HEALTH_EXPORT.to_owned()],
            registered: false,
        })
    }

    pub(super) fn issue_code(&mut self, user_id: &str, challenge: &str, redirect_uri: &str) -> String {
        let code = random_token("garmin-code-");
        let record = Code {
            user_id: user_id.to_owned(),
            challenge: challenge.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            issued_at: Timestamp::now().as_second(),
        };
        self.codes.insert(code.clone(), record);
        code
    }

    /// A fresh pair for the person, who is registered from now on.
    pub(super) fn issue_tokens(&mut self, user_id: &str) -> Value {
        let now = Timestamp::now().as_second();
        let (access, refresh) = (random_token("garmin-access-"), random_token("garmin-refresh-"));
        let grant = |lifetime| Grant { user_id: user_id.to_owned(), expires_at: now + lifetime, revoked: false };
        self.access.insert(access.clone(), grant(ACCESS_LIFETIME_SECS));
        self.refresh.insert(refresh.clone(), grant(REFRESH_LIFETIME_SECS));
        self.person_mut(user_id).registered = true;
        json!({
            "access_token": access, "token_type": "bearer", "expires_in": ACCESS_LIFETIME_SECS,
            "refresh_token": refresh, "refresh_token_expires_in": REFRESH_LIFETIME_SECS,
            "scope": "PARTNER_READ CONNECT_READ",
        })
    }

    /// The token endpoint: the code (once, with its PKCE verifier and redirect URI) or a refresh
    /// token (once: it rotates). `Err` is the OAuth error code.
    pub(super) fn token(&mut self, fields: &[(String, String)]) -> Result<Value, (u16, &'static str)> {
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if field("client_id") != Some(self.client_id.as_str())
            || field("client_secret") != Some(self.client_secret.as_str())
        {
            return Err((401, "invalid_client"));
        }
        let now = Timestamp::now().as_second();
        match field("grant_type") {
            Some("authorization_code") => {
                let code = self.codes.remove(field("code").unwrap_or_default()).ok_or((400, "invalid_grant"))?;
                let verified = field("code_verifier").is_some_and(|v| pkce_s256(v) == code.challenge);
                let fresh = now - code.issued_at <= CODE_LIFETIME_SECS;
                if !verified || !fresh || field("redirect_uri") != Some(code.redirect_uri.as_str()) {
                    return Err((400, "invalid_grant"));
                }
                Ok(self.issue_tokens(&code.user_id))
            }
            Some("refresh_token") => {
                let grant =
                    self.refresh.remove(field("refresh_token").unwrap_or_default()).ok_or((400, "invalid_grant"))?;
                let registered = self.people.get(&grant.user_id).is_some_and(|p| p.registered);
                if grant.revoked || grant.expires_at <= now || !registered {
                    return Err((400, "invalid_grant"));
                }
                Ok(self.issue_tokens(&grant.user_id))
            }
            _ => Err((400, "unsupported_grant_type")),
        }
    }

    /// Every token of the person stops working (a removed consent, a deregistration).
    pub(super) fn revoke(&mut self, user_id: &str) {
        for grant in self.access.values_mut().chain(self.refresh.values_mut()) {
            if grant.user_id == user_id {
                grant.revoked = true;
            }
        }
        if let Some(person) = self.people.get_mut(user_id) {
            person.registered = false;
        }
    }

    /// Records an upload of the person's `days` now (one second after the last upload at the
    /// latest, so windows never share a second) and the pull token of its ping.
    pub(super) fn upload(&mut self, user_id: &str, days: &[Date]) -> Option<(i64, i64, String)> {
        let person = self.people.get(user_id)?;
        let summaries: Vec<Value> = days
            .iter()
            .filter_map(|d| person.steps.get(d).map(|s| daily_summary(user_id, *d, person.offset, *s)))
            .collect();
        if summaries.is_empty() {
            return None;
        }
        let last = self.uploads.last().map_or(i64::MIN, |u| u.at);
        let at = Timestamp::now().as_second().max(last + 1);
        self.uploads.push(Upload { user_id: user_id.to_owned(), at, summaries });
        let token = random_token("garmin-pull-");
        let (start, end) = (at, at + 1);
        let pull = PullToken { user_id: user_id.to_owned(), start, end, expires_at: at + PULL_TOKEN_LIFETIME_SECS };
        self.pull_tokens.insert(token.clone(), pull);
        Some((start, end, token))
    }
}

/// The UTC second of the device's midnight starting `day`.
pub(super) fn day_start(day: Date, offset: i64) -> i64 {
    let midnight = day.to_zoned_datetime(TimeZone::UTC).map(|z| z.timestamp().as_second()).unwrap_or_default();
    midnight - offset
}

/// A daily summary of a whole (or, for today, a partial) day, as the Health API writes one.
pub(super) fn daily_summary(user_id: &str, day: Date, offset: i64, steps: u64) -> Value {
    let start = day_start(day, offset);
    let elapsed = Timestamp::now().as_second() - start;
    let duration = elapsed.clamp(1, 86_400);
    json!({
        "summaryId": format!("x{}-{start:x}-{duration:x}", &user_id[..user_id.len().min(6)]),
        "calendarDate": day.to_string(),
        "activityType": "GENERIC",
        "startTimeInSeconds": start,
        "startTimeOffsetInSeconds": offset,
        "durationInSeconds": duration,
        "steps": steps,
        "distanceInMeters": (steps as f64 * 0.76).round(),
    })
}

/// The person's days whose summaries started in `[from, to)`.
pub(super) fn days_started_in(person: &Person, from: i64, to: i64) -> Vec<Date> {
    person.steps.keys().copied().filter(|d| (from..to).contains(&day_start(*d, person.offset))).collect()
}

/// Whole days a backfill of `[from, to)` asks for, as Garmin counts them against the limit.
pub(super) fn backfill_days(from: i64, to: i64) -> u64 {
    u64::try_from((to - from + 86_399) / 86_400).unwrap_or(0)
}

pub(super) fn minute_of(at: i64) -> i64 {
    at.div_euclid(60)
}

pub(super) fn expired(at: i64) -> bool {
    at <= Timestamp::now().as_second()
}
