//! A fake Withings Public API on loopback for tests and the local stack: the OAuth 2 consent
//! page and `/v2/oauth2` (codes valid 30 seconds, 3-hour access tokens, refresh tokens with
//! Withings' rotation rule, the signed `revoke`), `/v2/signature` nonces, `/v2/measure`
//! `getactivity` paged with `more`/`offset`, the app's 120 requests a minute with a request
//! log, and `/notify` subscriptions (a HEAD check first) with the form-encoded, unsigned
//! notices Withings POSTs when a person's activity changes. Everything answers HTTP 200 with
//! Withings' `{"status": .., "body": ..}` envelope. One port stands for both
//! `https://account.withings.com` and `https://wbsapi.withings.net`; every path is Withings'.

mod api;
mod consent;
mod faults;
mod notifications;
mod state;
#[cfg(test)]
mod tests;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

pub use super::common::IntoCivilDate;
use super::common::query_pairs;
pub use super::server::FakeError;
use super::server::FakeServer;
use consent::{AuthorizeRequest, Decision};
pub use faults::{Fault, FaultTarget};
use notifications::Sender;
pub use notifications::{Attempt, Delivery, NOTICE_CONTENT_TYPE};
pub use state::Subscription;
use state::{FAILURES_BEFORE_DROP, WithingsState};
pub use wire::{
    ACTIVITY_DATA_FIELDS, ALL_SCOPES, APPLI_ACTIVITY, AUTHORIZE_PATH, CONSENT_PATH, DeviceDay, MEASURE_PATH,
    NEVER_EXPIRES, NOTIFY_PATH, NoticeStyle, OAUTH2_PATH, Refusal, SCOPE_ACTIVITY, SCOPE_INFO, SCOPE_METRICS,
    SCOPE_SLEEPEVENTS, SIGNATURE_PATH, STATUS_CALLBACK_UNREACHABLE, STATUS_ERROR, STATUS_INVALID_PARAMS,
    STATUS_INVALID_TOKEN, STATUS_MISSING_SCOPE, STATUS_NO_SUCH_SUBSCRIPTION, STATUS_NOT_IMPLEMENTED, STATUS_OK,
    STATUS_TOO_MANY_REQUESTS, STATUS_UNAUTHORIZED, signature,
};

pub const DEFAULT_CLIENT_ID: &str = "fake-withings-client";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-withings-secret";

/// The sandbox accounts every fake Withings starts with: (numeric user id, IANA time zone).
pub const SANDBOX_PEOPLE: [(&str, &str); 3] =
    [("31415926", "Europe/Paris"), ("27182818", "America/New_York"), ("16180339", "Asia/Tokyo")];

/// Tokens handed out by [`FakeWithings::grant_tokens`], for tests that skip the consent dance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A running fake Withings; stops serving when dropped or on [`FakeWithings::stop`].
pub struct FakeWithings {
    server: FakeServer<WithingsState, Fault, FaultTarget>,
    sender: Arc<Sender>,
}

impl FakeWithings {
    /// Serves on an ephemeral loopback port with the default client id and secret.
    ///
    /// # Panics
    /// If loopback cannot be bound: a broken test machine, not something a test can handle.
    pub async fn start() -> Self {
        Self::start_with_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await
    }

    /// Serves on an ephemeral loopback port, accepting only this app.
    pub async fn start_with_client(client_id: &str, client_secret: &str) -> Self {
        Self::serve(client_id, client_secret, 0).await.unwrap_or_else(|e| panic!("fake Withings: {e}"))
    }

    /// Serves on `port` (0: any free port), for the local stack where the URL must be stable.
    pub async fn start_on_port(port: u16) -> Result<Self, FakeError> {
        Self::serve(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, port).await
    }

    async fn serve(client_id: &str, client_secret: &str, port: u16) -> Result<Self, FakeError> {
        let sender = Arc::new(Sender::new()?);
        let mut state = WithingsState::new(client_id, client_secret, sender.clone());
        for (userid, zone) in SANDBOX_PEOPLE {
            state.person_mut(userid, Some(zone));
        }
        let server = FakeServer::start("fake Withings", port, state, api::router).await?;
        Ok(Self { server, sender })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    // --- URLs ---

    /// `http://127.0.0.1:PORT`, standing for both `https://account.withings.com` and
    /// `https://wbsapi.withings.net`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.base_url())
    }

    /// `/v2/oauth2`: `requesttoken` and `revoke`.
    pub fn token_url(&self) -> String {
        format!("{}{OAUTH2_PATH}", self.base_url())
    }

    pub fn signature_url(&self) -> String {
        format!("{}{SIGNATURE_PATH}", self.base_url())
    }

    pub fn measure_url(&self) -> String {
        format!("{}{MEASURE_PATH}", self.base_url())
    }

    pub fn notify_url(&self) -> String {
        format!("{}{NOTIFY_PATH}", self.base_url())
    }

    // --- configuration and the clock ---

    pub fn client_id(&self) -> String {
        self.server.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.server.lock().client_secret.clone()
    }

    /// Lifetime of access tokens issued from now on (`expires_in`); default 10800 s.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.server.lock().access_token_lifetime = lifetime;
    }

    /// How long an authorization code can be exchanged; default 30 seconds.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.server.lock().code_lifetime = lifetime;
    }

    /// How long a refresh token keeps working after a refresh issued its successor (unless the
    /// successor's access token is used first); default 8 hours.
    pub fn set_old_refresh_token_grace(&self, grace: Duration) {
        self.server.lock().old_refresh_grace = grace;
    }

    /// At most this many activities per `getactivity` page (default 50; 0 counts as 1).
    pub fn set_page_size(&self, page_size: usize) {
        self.server.lock().page_size = page_size.max(1);
    }

    /// The app's limit per clock minute (default 120), all users and services together; a
    /// request over it gets status 601.
    pub fn set_rate_limit(&self, per_minute: u64) {
        self.server.lock().per_minute = per_minute;
    }

    /// With `true`, the token answer's `userid` is a JSON number (as Withings' reference
    /// schema types it) instead of a string (as its examples and live answers write it).
    pub fn set_userid_as_number(&self, as_number: bool) {
        self.server.lock().userid_as_number = as_number;
    }

    /// How activity notices name their day (default [`NoticeStyle::Range`]).
    pub fn set_notice_style(&self, style: NoticeStyle) {
        self.server.lock().notice_style = style;
    }

    /// Moves the fake's clock forward: codes, tokens, the refresh grace and the rate-limit
    /// minutes all follow it.
    pub fn advance(&self, by: Duration) {
        let mut shared = self.server.lock();
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        shared.clock_offset = shared.clock_offset.saturating_add(by);
    }

    /// The fake's clock now.
    pub fn now(&self) -> Timestamp {
        self.server.lock().now()
    }

    // --- people and their days ---

    /// Adds an account who can consent, in `zone` (an IANA name), or moves a known one.
    ///
    /// # Panics
    /// If `zone` is not an IANA zone.
    pub fn add_person(&self, userid: &str, zone: &str) {
        self.server.lock().person_mut(userid, Some(zone));
    }

    /// The steps the person's main tracker counted on the day (`None`: no activity).
    pub fn steps(&self, userid: &str, day: impl IntoCivilDate) -> Option<u64> {
        let day = day.into_civil_date();
        let main = wire::device_hash(userid, "main");
        let shared = self.server.lock();
        let devices = shared.people.get(userid)?.days.get(&day)?;
        devices.iter().find(|d| d.hash_deviceid == main).map(|d| d.steps)
    }

    /// The `hash_deviceid` of one of the person's devices (`"main"`: the one `seed_steps` and
    /// `set_steps` use).
    pub fn device_id(&self, userid: &str, device: &str) -> String {
        wire::device_hash(userid, device)
    }

    /// Sets the day's steps on the person's main tracker without notifying anyone; the person
    /// is added (UTC) if unknown.
    pub fn seed_steps(&self, userid: &str, day: impl IntoCivilDate, steps: u64) {
        self.server.lock().put_steps(userid, day.into_civil_date(), None, steps);
    }

    /// Another device's activity for the day (a second tracker, a phone): `getactivity` then
    /// lists one entry per device for that date. No notice.
    pub fn seed_device_steps(&self, userid: &str, day: impl IntoCivilDate, device: &str, steps: u64) {
        self.server.lock().put_steps(userid, day.into_civil_date(), Some(device), steps);
    }

    /// Sets the day's steps and notifies the person's activity subscriptions (nothing if the
    /// count is unchanged).
    pub async fn set_steps(&self, userid: &str, day: impl IntoCivilDate, steps: u64) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let previous = self.server.lock().put_steps(userid, day, None, steps);
        if previous == Some(steps) {
            return Vec::new();
        }
        self.notify(userid, day).await
    }

    /// Removes the day's activity (every device's) and notifies (nothing if it had none).
    pub async fn delete_day(&self, userid: &str, day: impl IntoCivilDate) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let removed = self.server.lock().people.get_mut(userid).and_then(|p| p.days.remove(&day));
        match removed {
            Some(_) => self.notify(userid, day).await,
            None => Vec::new(),
        }
    }

    // --- consent without a browser ---

    /// Approves `authorize_url` (as built by the client) as `userid` with every requested
    /// scope; returns the redirect Location (`redirect_uri?code=..&state=..`).
    ///
    /// # Panics
    /// Where the consent page would answer an error page (bad client or redirect, unknown person).
    pub fn approve(&self, authorize_url: &str, userid: &str) -> String {
        let request = self.parse_authorize_url(authorize_url);
        let granted = request.scopes.clone();
        self.decide(authorize_url, &request, Decision::Approve { user_id: userid.to_owned(), granted })
    }

    /// Approves with only `scopes` left ticked (scopes never requested are ignored).
    pub fn approve_with_scopes(&self, authorize_url: &str, userid: &str, scopes: &[&str]) -> String {
        let request = self.parse_authorize_url(authorize_url);
        let granted = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.decide(authorize_url, &request, Decision::Approve { user_id: userid.to_owned(), granted })
    }

    /// Denies `authorize_url`: the Location is `redirect_uri?error=access_denied&state=..`.
    pub fn deny(&self, authorize_url: &str) -> String {
        let request = self.parse_authorize_url(authorize_url);
        self.decide(authorize_url, &request, Decision::Deny)
    }

    fn decide(&self, authorize_url: &str, request: &AuthorizeRequest, decision: Decision) -> String {
        consent::decide(&mut self.server.lock(), request, decision)
            .unwrap_or_else(|e| panic!("consent for {authorize_url}: {}", e.0))
    }

    fn parse_authorize_url(&self, authorize_url: &str) -> AuthorizeRequest {
        AuthorizeRequest::parse(&query_pairs(authorize_url), &self.client_id())
            .unwrap_or_else(|e| panic!("the consent page would refuse {authorize_url}: {}", e.0))
    }

    /// Tokens for `userid` with `scopes`, as if they had consented: for tests not about OAuth.
    pub fn grant_tokens(&self, userid: &str, scopes: &[&str]) -> TokenPair {
        let mut shared = self.server.lock();
        shared.person_mut(userid, None);
        let grant = shared.new_grant(userid, scopes.iter().map(|s| (*s).to_owned()).collect());
        let (access_token, refresh_token) = shared.issue_tokens(grant);
        TokenPair { access_token, refresh_token }
    }

    // --- grant controls ---

    /// The person removed the app at Withings: their tokens get status 401 (refreshes 503) and
    /// their subscriptions are gone.
    pub fn revoke_grant(&self, userid: &str) {
        let mut shared = self.server.lock();
        for (_, grant) in shared.grants_of(userid) {
            grant.revoked = true;
        }
        shared.subscriptions.retain(|s| s.userid != userid);
    }

    /// Every access token of `userid` expires now (refresh tokens keep working).
    pub fn expire_access_tokens(&self, userid: &str) {
        self.server.lock().expire_access_tokens(userid);
    }

    /// Withings' request signature of `fields` with this app's client secret (see [`signature`]).
    pub fn sign(&self, fields: &[(&str, &str)]) -> String {
        self.server.lock().sign(fields)
    }

    // --- faults, counters and the rate-limit log ---

    /// The next `times` calls to `target` get `fault` (queued after faults already scripted).
    pub fn fail_next(&self, target: FaultTarget, fault: Fault, times: u32) {
        self.server.fail_next(target, fault, times);
    }

    pub fn clear_faults(&self) {
        self.server.clear_faults();
    }

    /// Calls received of `kind`, faulted and rate-limited ones included: "authorize",
    /// "consent", "token", "refresh", "revoke", "getnonce", "getactivity", "subscribe",
    /// "list", "get", "unsubscribe", "head_check" (HEADs sent to callback URLs), and
    /// "oauth2_other", "signature_other", "measure_other", "notify_other" for other actions.
    pub fn calls(&self, kind: &str) -> u64 {
        self.server.calls(kind)
    }

    pub fn reset_calls(&self) {
        self.server.reset_calls();
    }

    /// The most requests the app made in one clock minute (refused ones included).
    pub fn max_requests_in_any_minute(&self) -> u64 {
        self.server.lock().requests_by_minute.values().copied().max().unwrap_or(0)
    }

    /// The app's requests by clock minute (the minute's start, on the fake's clock), oldest first.
    pub fn requests_by_minute(&self) -> Vec<(Timestamp, u64)> {
        let shared = self.server.lock();
        shared
            .requests_by_minute
            .iter()
            .filter_map(|(minute, n)| Timestamp::from_second(minute * 60).ok().map(|t| (t, *n)))
            .collect()
    }

    /// Forgets the request log (the limit then starts afresh).
    pub fn reset_requests(&self) {
        self.server.lock().requests_by_minute.clear();
    }

    // --- subscriptions and notices ---

    /// The person's subscriptions, oldest first.
    pub fn subscriptions(&self, userid: &str) -> Vec<Subscription> {
        self.server.lock().subscriptions.iter().filter(|s| s.userid == userid).cloned().collect()
    }

    /// Every subscription, oldest first.
    pub fn all_subscriptions(&self) -> Vec<Subscription> {
        self.server.lock().subscriptions.clone()
    }

    /// A subscription as if made through `/notify`, without the HEAD check: for tests not
    /// about subscribing.
    pub fn subscribe_unchecked(&self, userid: &str, callbackurl: &str, appli: i64) {
        let mut shared = self.server.lock();
        let exists =
            shared.subscriptions.iter().any(|s| s.userid == userid && s.callbackurl == callbackurl && s.appli == appli);
        if !exists {
            shared.subscriptions.push(Subscription {
                userid: userid.to_owned(),
                callbackurl: callbackurl.to_owned(),
                appli,
                comment: String::new(),
                failures: 0,
            });
        }
    }

    /// Withings dropped the person's subscriptions (as it does after four failed deliveries in
    /// a row): nothing is delivered until the app subscribes again.
    pub fn drop_subscriptions(&self, userid: &str) {
        self.server.lock().subscriptions.retain(|s| s.userid != userid);
    }

    /// The next `times` subscribes find our callback URL unreachable in Withings' HEAD check
    /// (as while our endpoint is down) and are refused with status 293.
    pub fn fail_callback_checks(&self, times: u32) {
        self.server.lock().failing_head_checks = times;
    }

    /// The form body of the activity notice for the person's day, as it would be sent now
    /// (for forgery tests): nothing is sent.
    pub fn notice_body(&self, userid: &str, day: impl IntoCivilDate) -> String {
        let day = day.into_civil_date();
        let mut shared = self.server.lock();
        let style = shared.notice_style;
        let zone = shared.person_mut(userid, None).time_zone.clone();
        wire::notice_body(userid, day, &zone, style)
    }

    /// POSTs the activity notice for the person's day to each of their appli 16
    /// subscriptions, without changing data. A subscription whose fourth delivery in a row
    /// fails is dropped, as Withings does. No retries.
    pub async fn notify(&self, userid: &str, day: impl IntoCivilDate) -> Vec<Delivery> {
        let body = self.notice_body(userid, day);
        let targets: Vec<String> = self
            .server
            .lock()
            .subscriptions
            .iter()
            .filter(|s| s.userid == userid && s.appli == APPLI_ACTIVITY)
            .map(|s| s.callbackurl.clone())
            .collect();
        let mut deliveries = Vec::with_capacity(targets.len());
        for callbackurl in targets {
            let outcome = self.sender.post(&callbackurl, body.clone().into_bytes(), &[]).await;
            let mut shared = self.server.lock();
            let mut dropped = false;
            let matches =
                |s: &Subscription| s.userid == userid && s.callbackurl == callbackurl && s.appli == APPLI_ACTIVITY;
            if let Some(subscription) = shared.subscriptions.iter_mut().find(|s| matches(s)) {
                if outcome.succeeded() {
                    subscription.failures = 0;
                } else {
                    subscription.failures += 1;
                    dropped = subscription.failures >= FAILURES_BEFORE_DROP;
                }
            }
            if dropped {
                shared.subscriptions.retain(|s| !matches(s));
            }
            let delivery = Delivery {
                userid: userid.to_owned(),
                appli: APPLI_ACTIVITY,
                callbackurl,
                body: body.clone(),
                outcome,
                dropped,
            };
            shared.deliveries.push(delivery.clone());
            deliveries.push(delivery);
        }
        deliveries
    }

    /// Every notice sent so far, oldest first, with what each got back.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.server.lock().deliveries.clone()
    }

    /// One POST of `body` with exactly `headers` (plus the form content type unless given).
    pub async fn post_raw(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        self.sender.post(url, body, headers).await
    }
}
