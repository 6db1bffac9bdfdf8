//! A fake Oura cloud on loopback for tests and the local stack: Oura's OAuth (consent page, token
//! endpoint with single-use refresh tokens, revoke), the API v2 `personal_info` and
//! `daily_activity` (paged with `next_token`), the app's rate limits with a request log a test
//! can check, and the webhooks (subscriptions with their verification GET and expiry, and
//! HMAC-signed notifications when a person's data changes). One port stands for both
//! `https://cloud.ouraring.com` and `https://api.ouraring.com`; every path is Oura's.

mod api;
mod consent;
mod faults;
mod notifications;
mod state;
#[cfg(test)]
mod tests;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

pub use super::common::IntoCivilDate;
use super::common::query_pairs;
pub use super::server::FakeError;
use super::server::FakeServer;
use consent::{AuthorizeRequest, Decision};
pub use faults::{Fault, FaultTarget};
use notifications::WebhookSender;
pub use notifications::{Attempt, Delivery, Notification, SignedNotification};
use state::OuraState;
pub use state::Subscription;
pub use wire::{
    ALL_SCOPES, AUTHORIZE_PATH, CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, CONSENT_PATH, DAILY_ACTIVITY,
    DAILY_ACTIVITY_PATH, DATA_TYPES, EventType, PERSONAL_INFO_PATH, REVOKE_PATH, SCOPE_DAILY, SCOPE_EMAIL,
    SCOPE_PERSONAL, SIGNATURE_HEADER, SUBSCRIPTION_ID_ROUTE, SUBSCRIPTION_PATH, SUBSCRIPTION_RENEW_ROUTE,
    TIMESTAMP_HEADER, TOKEN_PATH, signature,
};

pub const DEFAULT_CLIENT_ID: &str = "fake-oura-client";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-oura-secret";

/// The sandbox accounts every fake Oura starts with: (user id, IANA time zone).
pub const SANDBOX_PEOPLE: [(&str, &str); 3] = [
    ("2f9a6c1e-5b3d-4e7f-8a90-1c2d3e4f5a6b", "Europe/Helsinki"),
    ("7b1e0d4c-9a2f-4c6b-b1d3-5e6f7a8b9c0d", "America/Los_Angeles"),
    ("c4d5e6f7-0a1b-4c2d-9e3f-405162738495", "Asia/Tokyo"),
];

/// Tokens handed out by [`FakeOura::grant_tokens`], for tests that skip the consent dance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A running fake Oura; stops serving when dropped or on [`FakeOura::stop`].
pub struct FakeOura {
    server: FakeServer<OuraState, Fault, FaultTarget>,
    sender: Arc<WebhookSender>,
}

impl FakeOura {
    /// Serves on an ephemeral loopback port with the default client id and secret.
    ///
    /// # Panics
    /// If loopback cannot be bound: a broken test machine, not something a test can handle.
    pub async fn start() -> Self {
        Self::start_with_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await
    }

    /// Serves on an ephemeral loopback port, accepting only this app.
    pub async fn start_with_client(client_id: &str, client_secret: &str) -> Self {
        Self::serve(client_id, client_secret, 0).await.unwrap_or_else(|e| panic!("fake Oura: {e}"))
    }

    /// Serves on `port` (0: any free port), for the local stack where the URL must be stable.
    pub async fn start_on_port(port: u16) -> Result<Self, FakeError> {
        Self::serve(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, port).await
    }

    async fn serve(client_id: &str, client_secret: &str, port: u16) -> Result<Self, FakeError> {
        let sender = Arc::new(WebhookSender::new()?);
        let mut state = OuraState::new(client_id, client_secret, sender.clone());
        for (user_id, zone) in SANDBOX_PEOPLE {
            state.person_mut(user_id, Some(zone));
        }
        let server = FakeServer::start("fake Oura", port, state, api::router).await?;
        Ok(Self { server, sender })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    // --- URLs ---

    /// `http://127.0.0.1:PORT`, standing for both `https://cloud.ouraring.com` and
    /// `https://api.ouraring.com`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    pub fn revoke_url(&self) -> String {
        format!("{}{REVOKE_PATH}", self.base_url())
    }

    // --- configuration ---

    pub fn client_id(&self) -> String {
        self.server.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.server.lock().client_secret.clone()
    }

    /// Lifetime of access tokens issued from now on (`expires_in`); default 86400 s.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.server.lock().access_token_lifetime = lifetime;
    }

    /// How long an authorization code can be exchanged; default 10 minutes. Checked at exchange time.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.server.lock().code_lifetime = lifetime;
    }

    /// At most this many documents per `daily_activity` page (default 50; 0 counts as 1).
    pub fn set_page_size(&self, page_size: usize) {
        self.server.lock().page_size = page_size.max(1);
    }

    /// With `true`, a date-only `end_date` includes that day's document. Default `false`: a
    /// date-only `end_date` is that day's midnight, so its document (timestamped 04:00 local)
    /// is left out, as observed against Oura.
    pub fn set_end_date_inclusive(&self, inclusive: bool) {
        self.server.lock().end_date_inclusive = inclusive;
    }

    /// The app's limits (default 300 a minute and 5000 a UTC day); a request over either gets
    /// 429 with `Retry-After` until its window rolls over.
    pub fn set_rate_limits(&self, per_minute: u64, per_day: u64) {
        let mut shared = self.server.lock();
        shared.per_minute = per_minute;
        shared.per_day = per_day;
    }

    /// Lifetime of subscriptions created or renewed from now on (default 90 days).
    pub fn set_subscription_lifetime(&self, lifetime: Duration) {
        self.server.lock().subscription_lifetime = lifetime;
    }

    // --- people and their days ---

    /// Adds an account who can consent, in `zone` (an IANA name), or moves a known one to
    /// `zone`, keeping their days.
    ///
    /// # Panics
    /// If `zone` is not an IANA zone.
    pub fn add_person(&self, user_id: &str, zone: &str) {
        self.server.lock().person_mut(user_id, Some(zone));
    }

    /// With `false`, the person's Oura membership has lapsed: `personal_info` and
    /// `daily_activity` answer 403 for them until it is active again.
    pub fn set_membership_active(&self, user_id: &str, active: bool) {
        self.server.lock().person_mut(user_id, None).membership_active = active;
    }

    /// The day's `daily_activity` document id: stable for (person, day), kept by corrections.
    pub fn document_id(&self, user_id: &str, day: impl IntoCivilDate) -> String {
        wire::document_id(user_id, day.into_civil_date())
    }

    /// The day's steps as the fake holds them (`None`: no document).
    pub fn steps(&self, user_id: &str, day: impl IntoCivilDate) -> Option<u64> {
        let day = day.into_civil_date();
        self.server.lock().people.get(user_id).and_then(|p| p.steps.get(&day).copied())
    }

    /// Sets the day's steps without notifying anyone (for seeding); the person is added (UTC)
    /// if unknown.
    pub fn seed_steps(&self, user_id: &str, day: impl IntoCivilDate, steps: u64) {
        let day = day.into_civil_date();
        self.server.lock().person_mut(user_id, None).steps.insert(day, steps);
    }

    /// Sets the day's steps and notifies every live subscription to `daily_activity` of the
    /// change: `create` for a new day, `update` for a changed one, nothing if unchanged.
    pub async fn set_steps(&self, user_id: &str, day: impl IntoCivilDate, steps: u64) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let previous = self.server.lock().person_mut(user_id, None).steps.insert(day, steps);
        match previous {
            None => self.notify(EventType::Create, user_id, day).await,
            Some(old) if old != steps => self.notify(EventType::Update, user_id, day).await,
            Some(_) => Vec::new(),
        }
    }

    /// Removes the day's document and notifies `delete` subscriptions (nothing if it had none).
    pub async fn delete_day(&self, user_id: &str, day: impl IntoCivilDate) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let removed = self.server.lock().people.get_mut(user_id).and_then(|p| p.steps.remove(&day));
        match removed {
            Some(_) => self.notify(EventType::Delete, user_id, day).await,
            None => Vec::new(),
        }
    }

    // --- consent without a browser ---

    /// Approves `authorize_url` (as built by the client) as `user_id` with every requested
    /// scope; returns the redirect Location (`redirect_uri?code=..&scope=..&state=..`).
    ///
    /// # Panics
    /// Where the consent page would answer an error page (bad client or redirect, unknown person).
    pub fn approve(&self, authorize_url: &str, user_id: &str) -> String {
        let request = self.parse_authorize_url(authorize_url);
        let granted = request.scopes.clone();
        self.decide(authorize_url, &request, Decision::Approve { user_id: user_id.to_owned(), granted })
    }

    /// Approves with only `scopes` left ticked (scopes never requested are ignored).
    pub fn approve_with_scopes(&self, authorize_url: &str, user_id: &str, scopes: &[&str]) -> String {
        let request = self.parse_authorize_url(authorize_url);
        let granted = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.decide(authorize_url, &request, Decision::Approve { user_id: user_id.to_owned(), granted })
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

    /// Tokens for `user_id` with `scopes`, as if they had consented: for tests not about OAuth.
    pub fn grant_tokens(&self, user_id: &str, scopes: &[&str]) -> TokenPair {
        let mut shared = self.server.lock();
        shared.person_mut(user_id, None);
        let grant = shared.new_grant(user_id, scopes.iter().map(|s| (*s).to_owned()).collect());
        let tokens = shared.issue_tokens(grant);
        TokenPair { access_token: tokens.access_token, refresh_token: tokens.refresh_token }
    }

    // --- grant controls ---

    /// The person removed the app in Oura: their access tokens get 401, refreshes `invalid_grant`.
    pub fn revoke_grant(&self, user_id: &str) {
        for (_, grant) in self.server.lock().grants_of(user_id) {
            grant.revoked = true;
        }
    }

    /// Every access token of `user_id` expires now (refresh tokens keep working).
    pub fn expire_access_tokens(&self, user_id: &str) {
        let mut shared = self.server.lock();
        let grants: Vec<usize> = shared.grants_of(user_id).map(|(i, _)| i).collect();
        let now = Instant::now();
        for token in shared.access_tokens.values_mut().filter(|t| grants.contains(&t.grant)) {
            token.expires_at = now;
        }
    }

    // --- faults, counters and the rate-limit log ---

    /// The next `times` requests to `target` get `fault` (queued after faults already scripted).
    pub fn fail_next(&self, target: FaultTarget, fault: Fault, times: u32) {
        self.server.fail_next(target, fault, times);
    }

    pub fn clear_faults(&self) {
        self.server.clear_faults();
    }

    /// Requests received of `kind`, faulted and rate-limited ones included: "authorize",
    /// "consent", "token", "revoke", "personal_info", "daily_activity", "subscription_create",
    /// "subscription_list", "subscription_get", "subscription_update", "subscription_renew",
    /// "subscription_delete", "other".
    pub fn calls(&self, kind: &str) -> u64 {
        self.server.calls(kind)
    }

    pub fn reset_calls(&self) {
        self.server.reset_calls();
    }

    /// The most requests the app made in one clock minute (everything but the consent page,
    /// refused ones included).
    pub fn max_requests_in_any_minute(&self) -> u64 {
        self.server.lock().requests_by_minute.values().copied().max().unwrap_or(0)
    }

    /// The app's requests so far in the current UTC day.
    pub fn requests_today(&self) -> u64 {
        self.server.lock().requests_on_day(Timestamp::now().as_second().div_euclid(86_400))
    }

    /// The app's requests by clock minute (the minute's start), oldest first.
    pub fn requests_by_minute(&self) -> Vec<(Timestamp, u64)> {
        let shared = self.server.lock();
        shared
            .requests_by_minute
            .iter()
            .filter_map(|(minute, n)| Timestamp::from_second(minute * 60).ok().map(|t| (t, *n)))
            .collect()
    }

    /// Forgets the request log (the limits then start afresh).
    pub fn reset_requests(&self) {
        self.server.lock().requests_by_minute.clear();
    }

    // --- webhook subscriptions and notifications ---

    /// Every subscription, expired ones included, oldest first.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.server.lock().subscriptions.clone()
    }

    /// A subscription as if created and verified, without the verification GET: for tests not
    /// about webhooks.
    pub fn subscribe_unverified(&self, callback_url: &str, event_type: EventType, data_type: &str) -> Subscription {
        let mut shared = self.server.lock();
        let subscription = Subscription {
            id: super::common::random_token("fake-oura-sub-"),
            callback_url: callback_url.to_owned(),
            verification_token: String::new(),
            event_type,
            data_type: data_type.to_owned(),
            expiration_time: shared.new_expiration(),
        };
        shared.subscriptions.push(subscription.clone());
        subscription
    }

    /// Every subscription expires: each `expiration_time` is set one hour in the past. Expired
    /// subscriptions are still listed but deliver nothing until renewed.
    pub fn expire_subscriptions(&self) {
        let past = Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(1)).unwrap_or(Timestamp::MIN);
        for subscription in &mut self.server.lock().subscriptions {
            subscription.expiration_time = past;
        }
    }

    /// The notification of `event_type` for the person's day, signed at `timestamp` (Unix
    /// seconds) with the client secret, not sent: for tests that forge or tamper.
    pub fn signed_notification(&self, notification: &Notification, timestamp: i64) -> SignedNotification {
        SignedNotification::new(&self.client_secret(), timestamp, notification.body())
    }

    /// `x-oura-signature` for `body` at `timestamp` (the `x-oura-timestamp` string).
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        signature(&self.client_secret(), timestamp, body)
    }

    /// Notifies every live subscription to (`event_type`, `daily_activity`) of the person's
    /// day now, without changing any data. No retries: each delivery's outcome is returned.
    pub async fn notify(&self, event_type: EventType, user_id: &str, day: impl IntoCivilDate) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let notification = Notification::new(event_type, DAILY_ACTIVITY, &wire::document_id(user_id, day), user_id);
        self.deliver(&notification).await
    }

    /// Sends `notification`, signed now, to every live subscription matching its event and data type.
    pub async fn deliver(&self, notification: &Notification) -> Vec<Delivery> {
        let (targets, secret) = {
            let shared = self.server.lock();
            let targets: Vec<Subscription> = shared
                .subscriptions
                .iter()
                .filter(|s| {
                    s.is_live() && s.event_type == notification.event_type && s.data_type == notification.data_type
                })
                .cloned()
                .collect();
            (targets, shared.client_secret.clone())
        };
        let mut deliveries = Vec::with_capacity(targets.len());
        for subscription in targets {
            let sent = SignedNotification::new(&secret, Timestamp::now().as_second(), notification.body());
            let outcome = self.sender.send(&subscription.callback_url, &sent).await;
            deliveries.push(Delivery {
                subscription_id: subscription.id,
                callback_url: subscription.callback_url,
                notification: notification.clone(),
                sent,
                outcome,
            });
        }
        self.server.lock().deliveries.extend(deliveries.iter().cloned());
        deliveries
    }

    /// Every notification sent so far (by [`FakeOura::set_steps`], [`FakeOura::delete_day`],
    /// [`FakeOura::notify`] or [`FakeOura::deliver`]), oldest first, with what each got back.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.server.lock().deliveries.clone()
    }

    /// One POST of `body` with exactly `headers` (plus `Content-Type: application/json` unless
    /// given): no signature added. Sign with [`FakeOura::sign`] as needed.
    pub async fn post_raw(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        self.sender.post(url, body, headers).await
    }
}
