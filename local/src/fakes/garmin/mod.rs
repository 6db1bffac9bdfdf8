//! A fake Garmin on loopback for tests and the local stack: Garmin Connect's consent page
//! (PKCE S256 required), the token endpoint (day-long access tokens, 90-day refresh tokens
//! that rotate), the Health API's user id, registration (deleted on disconnect) and
//! permissions, the daily summaries read by upload window (at most 24 hours, only with the
//! pull token of a ping that named it), backfill requests (at most 90 days, the same range
//! once, a limit of days a minute) answered 202 and then pinged, and the unsigned pings it
//! POSTs to the app's endpoint: a changed day is a new upload (a correction may lower it), a
//! deregistration, a permission change. One port stands for `connect.garmin.com`,
//! `diauth.garmin.com` and `apis.garmin.com`; every path is Garmin's.

mod api;
mod state;
#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

pub use super::common::IntoCivilDate;
use super::common::{query_pairs, subscriber_client};
pub use super::server::FakeError;
use super::server::{FakeServer, FaultAnswer, InjectedFault};
use state::{GarminState, Shared};

pub const DEFAULT_CLIENT_ID: &str = "fake-garmin-client";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-garmin-secret";

pub const AUTHORIZE_PATH: &str = "/oauth2Confirm";
pub const CONSENT_PATH: &str = "/oauth2Confirm/decision";
pub const TOKEN_PATH: &str = "/di-oauth2-service/oauth/token";
pub const USER_ID_PATH: &str = "/wellness-api/rest/user/id";
pub const REGISTRATION_PATH: &str = "/wellness-api/rest/user/registration";
pub const PERMISSIONS_PATH: &str = "/wellness-api/rest/user/permissions";
pub const DAILIES_PATH: &str = "/wellness-api/rest/dailies";
pub const BACKFILL_PATH: &str = "/wellness-api/rest/backfill/dailies";

/// The permission the dailies need.
pub const HEALTH_EXPORT: &str = "HEALTH_EXPORT";
/// A production key's backfill limit: days of data asked for a minute.
pub const PRODUCTION_BACKFILL_DAYS_PER_MINUTE: u64 = 10_000;

/// The sandbox accounts every fake Garmin starts with: (user id, device offset from UTC).
pub const SANDBOX_PEOPLE: [(&str, i64); 3] = [
    ("5e1c7a0b92f4d3e6a8b1c2d3e4f5a6b7", -25_200),
    ("6f2d8b1ca3e5f4a7b9c2d3e4f5a6b7c8", 3_600),
    ("7a3e9c2db4f6a5b8cad3e4f5a6b7c8d9", 32_400),
];

/// Which requests a scripted fault hits: the Health API or the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    Api,
    Token,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After`.
    RateLimited { retry_after: u64 },
    /// 503: Garmin is down.
    Unavailable,
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

impl InjectedFault for Fault {
    fn answer(&self) -> FaultAnswer {
        use axum::response::IntoResponse;
        match self {
            Fault::Slow(wait) => FaultAnswer::After(*wait),
            Fault::RateLimited { retry_after } => FaultAnswer::Instead(
                ([("retry-after", retry_after.to_string())], api::error(StatusCode::TOO_MANY_REQUESTS, "Rate limited"))
                    .into_response(),
            ),
            Fault::Unavailable => FaultAnswer::Instead(api::error(StatusCode::SERVICE_UNAVAILABLE, "Unavailable")),
        }
    }
}

/// One ping POSTed to the app's endpoint (no retries), and the status it got (0: none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub body: Value,
    pub status: u16,
}

/// A running fake Garmin; stops serving when dropped or on [`FakeGarmin::stop`].
pub struct FakeGarmin {
    server: FakeServer<GarminState, Fault, FaultTarget>,
}

impl FakeGarmin {
    /// Serves on an ephemeral loopback port with the default client id and secret.
    ///
    /// # Panics
    /// If loopback cannot be bound: a broken test machine, not something a test can handle.
    pub async fn start() -> Self {
        Self::serve(0).await.unwrap_or_else(|e| panic!("fake Garmin: {e}"))
    }

    /// Serves on `port` (0: any free port), for the local stack where the URL must be stable.
    pub async fn start_on_port(port: u16) -> Result<Self, FakeError> {
        Self::serve(port).await
    }

    async fn serve(port: u16) -> Result<Self, FakeError> {
        let mut state = GarminState::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
        for (user, offset) in SANDBOX_PEOPLE {
            state.person_mut(user).offset = offset;
        }
        let server = FakeServer::start("fake Garmin", port, state, api::router).await?;
        server.lock().base_url = server.base_url().to_owned();
        Ok(Self { server })
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// `http://127.0.0.1:PORT`, standing for Garmin's three hosts.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    pub fn client_id(&self) -> String {
        self.server.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.server.lock().client_secret.clone()
    }

    /// The app's endpoint for dailies, deregistrations and permission changes, as an operator
    /// enters it in Garmin's endpoint configuration tool (pings go nowhere without one).
    pub fn set_ping_url(&self, url: &str) {
        self.server.lock().ping_url = Some(url.to_owned());
    }

    /// Days of backfill the app may ask for a minute (default a production key's 10,000).
    pub fn set_backfill_days_per_minute(&self, days: u64) {
        self.server.lock().backfill_days_per_minute = days;
    }

    /// The most days of backfill asked for in one minute (refused ones not counted).
    pub fn max_backfill_days_in_any_minute(&self) -> u64 {
        self.server.lock().backfill_days.values().copied().max().unwrap_or(0)
    }

    /// The most backfill requests the app sent in one minute (refused ones included).
    pub fn max_backfills_in_any_minute(&self) -> u64 {
        self.server.lock().backfill_requests.values().copied().max().unwrap_or(0)
    }

    // --- people and their days ---

    /// Adds an account who can consent, its device `offset` seconds from UTC.
    pub fn add_person(&self, user_id: &str, offset: i64) {
        self.server.lock().person_mut(user_id).offset = offset;
    }

    pub fn steps(&self, user_id: &str, day: impl IntoCivilDate) -> Option<u64> {
        let day = day.into_civil_date();
        self.server.lock().people.get(user_id).and_then(|p| p.steps.get(&day).copied())
    }

    /// Sets the day's steps without uploading them anywhere (for seeding what a backfill finds).
    pub fn seed_steps(&self, user_id: &str, day: impl IntoCivilDate, steps: u64) {
        self.server.lock().person_mut(user_id).steps.insert(day.into_civil_date(), steps);
    }

    /// The person's device syncs the day with these steps: a new upload and, when they
    /// changed and the person is registered, a ping naming its window.
    pub async fn set_steps(&self, user_id: &str, day: impl IntoCivilDate, steps: u64) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let (url, uploaded) = {
            let mut shared = self.server.lock();
            let person = shared.person_mut(user_id);
            if person.steps.insert(day, steps) == Some(steps) || !person.registered {
                return Vec::new();
            }
            (shared.ping_url.clone(), shared.upload(user_id, &[day]))
        };
        match (url, uploaded) {
            (Some(url), Some((start, end, token))) => {
                self.ping(&url, daily_ping(self.base_url(), user_id, start, end, &token)).await
            }
            _ => Vec::new(),
        }
    }

    /// Whether the person is registered to the app.
    pub fn registered(&self, user_id: &str) -> bool {
        self.server.lock().people.get(user_id).is_some_and(|p| p.registered)
    }

    // --- consent without a browser ---

    /// Approves `authorize_url` (as the client built it) as `user_id`; the redirect Location.
    ///
    /// # Panics
    /// Where the consent page would answer an error page.
    pub fn approve(&self, authorize_url: &str, user_id: &str) -> String {
        let client_id = self.client_id();
        let request = api::Authorize::parse(&query_pairs(authorize_url), &client_id)
            .unwrap_or_else(|why| panic!("the consent page would refuse {authorize_url}: {why}"));
        request.decide(&mut self.server.lock(), Some(user_id)).unwrap_or_else(|why| panic!("consent: {why}"))
    }

    /// Tokens for `user_id` as if they had consented: `(access, refresh)`.
    pub fn grant_tokens(&self, user_id: &str) -> (String, String) {
        let answer = self.server.lock().issue_tokens(user_id);
        let text = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
        (text("access_token"), text("refresh_token"))
    }

    // --- the grant ---

    /// The person removed the app's consent in Garmin Connect, quietly: their tokens get 403.
    pub fn revoke_grant(&self, user_id: &str) {
        self.server.lock().revoke(user_id);
    }

    /// The person's access tokens expire now (refresh tokens keep working).
    pub fn expire_access_tokens(&self, user_id: &str) {
        for grant in self.server.lock().access.values_mut().filter(|g| g.user_id == user_id) {
            grant.expires_at = 0;
        }
    }

    /// The person disconnected the app in Garmin Connect: the tokens stop working and the
    /// deregistration notice is sent.
    pub async fn deregister_user(&self, user_id: &str) -> Vec<Delivery> {
        let url = {
            let mut shared = self.server.lock();
            shared.revoke(user_id);
            shared.ping_url.clone()
        };
        match url {
            Some(url) => self.ping(&url, json!({ "deregistrations": [{ "userId": user_id }] })).await,
            None => Vec::new(),
        }
    }

    /// The person changed what they share: the permission-change notice is sent.
    pub async fn set_permissions(&self, user_id: &str, permissions: &[&str]) -> Vec<Delivery> {
        let url = {
            let mut shared = self.server.lock();
            shared.person_mut(user_id).permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
            shared.ping_url.clone()
        };
        let change = json!({ "userPermissionsChange": [{
            "userId": user_id, "summaryId": format!("x{user_id}-permissions"), "permissions": permissions,
            "changeTimeInSeconds": jiff::Timestamp::now().as_second(),
        }]});
        match url {
            Some(url) => self.ping(&url, change).await,
            None => Vec::new(),
        }
    }

    // --- faults and counters ---

    pub fn fail_next(&self, target: FaultTarget, fault: Fault, times: u32) {
        self.server.fail_next(target, fault, times);
    }

    /// Requests received of `kind`, faulted ones included: "authorize", "consent", "token",
    /// "user_id", "deregister", "permissions", "dailies", "backfill", "other".
    pub fn calls(&self, kind: &str) -> u64 {
        self.server.calls(kind)
    }

    pub fn reset_calls(&self) {
        self.server.reset_calls();
    }

    /// Every ping sent so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.server.lock().deliveries.clone()
    }

    async fn ping(&self, url: &str, body: Value) -> Vec<Delivery> {
        let delivery = post_ping(url, body).await;
        self.server.lock().deliveries.push(delivery.clone());
        vec![delivery]
    }

    /// The ping of an upload window, as Garmin would send it (for forgery tests): nothing is
    /// sent and no pull token is made.
    pub fn ping_body(&self, user_id: &str, start: i64, end: i64, token: &str) -> Value {
        daily_ping(self.base_url(), user_id, start, end, token)
    }
}

/// A dailies ping: the person and the `callbackURL` of the window, with its pull token.
fn daily_ping(base: &str, user_id: &str, start: i64, end: i64, token: &str) -> Value {
    let callback =
        format!("{base}{DAILIES_PATH}?uploadStartTimeInSeconds={start}&uploadEndTimeInSeconds={end}&token={token}");
    json!({ "dailies": [{ "userId": user_id, "callbackURL": callback }] })
}

/// POSTs `body` to the app's endpoint, as Garmin's ping service does.
async fn post_ping(url: &str, body: Value) -> Delivery {
    let client = subscriber_client(Duration::from_secs(30)).build();
    let status = match client {
        Ok(client) => {
            let request = client.post(url).header("garmin-client-id", DEFAULT_CLIENT_ID).json(&body);
            super::common::status_or_zero(request, url, "garmin ping").await
        }
        Err(_) => 0,
    };
    Delivery { body, status }
}

/// As `post_ping`, recorded in the fake's deliveries (for pings its routes send).
async fn send_ping(fake: &Shared, url: &str, body: Value) {
    let delivery = post_ping(url, body).await;
    fake.lock().deliveries.push(delivery);
}
