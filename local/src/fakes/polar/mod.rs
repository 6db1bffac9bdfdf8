//! A fake Polar on loopback for tests and the local stack: Polar Flow's consent page, the token
//! endpoint (HTTP Basic, no refresh tokens, `x_user_id` in the answer), AccessLink's user
//! registration and deregistration, the non-transactional daily activity summaries (at most 28
//! days a request, nothing older than 365), the client's rate limits (a quarter hour and a day,
//! growing with the registered users) with a request log a test can check, and the client's
//! one webhook (created behind a PING, its key shown once, listed, switched off and on) with
//! HMAC-signed `ACTIVITY_SUMMARY` notices when a person's day changes. One port stands for
//! `https://flow.polar.com`, `https://polarremote.com` and `https://www.polaraccesslink.com`;
//! every path is Polar's.

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

use jiff::Timestamp;

pub use super::common::IntoCivilDate;
use super::common::query_pairs;
pub use super::server::FakeError;
use super::server::FakeServer;
use consent::{AuthorizeRequest, Decision};
pub use faults::{Fault, FaultTarget};
use notifications::WebhookSender;
pub use notifications::{Attempt, Delivery, Notification, SignedNotification};
use state::PolarState;
pub use state::Webhook;
pub use wire::{
    ACTIVITIES_PATH, ACTIVITY_SUMMARY, AUTHORIZE_PATH, CONSENT_PATH, EVENT_HEADER, PING, SCOPE_READ_ALL,
    SIGNATURE_HEADER, TOKEN_PATH, USERS_PATH, WEBHOOK_ACTIVATE_PATH, WEBHOOKS_PATH, signature,
};

pub const DEFAULT_CLIENT_ID: &str = "fake-polar-client";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-polar-secret";

/// The sandbox accounts every fake Polar starts with: Polar user ids.
pub const SANDBOX_PEOPLE: [u64; 3] = [2_278_512, 3_141_592, 4_712_006];

/// A running fake Polar; stops serving when dropped or on [`FakePolar::stop`].
pub struct FakePolar {
    server: FakeServer<PolarState, Fault, FaultTarget>,
    sender: Arc<WebhookSender>,
}

impl FakePolar {
    /// Serves on an ephemeral loopback port with the default client id and secret.
    ///
    /// # Panics
    /// If loopback cannot be bound: a broken test machine, not something a test can handle.
    pub async fn start() -> Self {
        Self::start_with_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await
    }

    /// Serves on an ephemeral loopback port, accepting only this client.
    pub async fn start_with_client(client_id: &str, client_secret: &str) -> Self {
        Self::serve(client_id, client_secret, 0).await.unwrap_or_else(|e| panic!("fake Polar: {e}"))
    }

    /// Serves on `port` (0: any free port), for the local stack where the URL must be stable.
    pub async fn start_on_port(port: u16) -> Result<Self, FakeError> {
        Self::serve(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, port).await
    }

    async fn serve(client_id: &str, client_secret: &str, port: u16) -> Result<Self, FakeError> {
        let sender = Arc::new(WebhookSender::new()?);
        let mut state = PolarState::new(client_id, client_secret, sender.clone());
        for user_id in SANDBOX_PEOPLE {
            state.person_mut(user_id);
        }
        let server = FakeServer::start("fake Polar", port, state, api::router).await?;
        Ok(Self { server, sender })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    // --- URLs ---

    /// `http://127.0.0.1:PORT`, standing for Polar Flow, polarremote.com and AccessLink.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    // --- configuration ---

    pub fn client_id(&self) -> String {
        self.server.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.server.lock().client_secret.clone()
    }

    /// How long an authorization code can be exchanged; default 10 minutes.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.server.lock().code_lifetime = lifetime;
    }

    /// The limits' bases (default Polar's 500 a quarter hour and 5000 a UTC day); each still
    /// grows by 20 and 100 per registered user. A request over either gets 429 until its
    /// window rolls over.
    pub fn set_rate_limit_bases(&self, per_quarter_hour: u64, per_day: u64) {
        let mut shared = self.server.lock();
        shared.short_base = per_quarter_hour;
        shared.long_base = per_day;
    }

    /// The limits now: (a quarter hour, a day).
    pub fn rate_limits(&self) -> (u64, u64) {
        self.server.lock().limits()
    }

    // --- people and their days ---

    /// Adds an account who can consent (nothing happens for a known one).
    pub fn add_person(&self, user_id: u64) {
        self.server.lock().person_mut(user_id);
    }

    /// With `false`, the person withdrew a mandatory consent: AccessLink answers 403 for them.
    pub fn set_consents_accepted(&self, user_id: u64, accepted: bool) {
        self.server.lock().person_mut(user_id).consents_accepted = accepted;
    }

    /// Whether the person is registered to the client, and with which member id.
    pub fn member_id(&self, user_id: u64) -> Option<String> {
        self.server.lock().registrations.get(&user_id).map(|r| r.member_id.clone())
    }

    /// The day's steps as the fake holds them (`None`: no summary).
    pub fn steps(&self, user_id: u64, day: impl IntoCivilDate) -> Option<u64> {
        let day = day.into_civil_date();
        self.server.lock().people.get(&user_id).and_then(|p| p.steps.get(&day).copied())
    }

    /// Sets the day's steps without notifying anyone (for seeding); the person is added if unknown.
    pub fn seed_steps(&self, user_id: u64, day: impl IntoCivilDate, steps: u64) {
        let day = day.into_civil_date();
        self.server.lock().person_mut(user_id).steps.insert(day, steps);
    }

    /// Sets the day's steps and, when they changed, sends `ACTIVITY_SUMMARY` for the day to the
    /// webhook (if it is active, subscribes to the event, and the person is registered).
    pub async fn set_steps(&self, user_id: u64, day: impl IntoCivilDate, steps: u64) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let previous = self.server.lock().person_mut(user_id).steps.insert(day, steps);
        if previous == Some(steps) {
            return Vec::new();
        }
        self.notify(user_id, day).await
    }

    /// Removes the day's summary. Polar documents no deletion event, so nothing is sent: the
    /// day is simply absent from the next read.
    pub fn delete_day(&self, user_id: u64, day: impl IntoCivilDate) -> bool {
        let day = day.into_civil_date();
        self.server.lock().people.get_mut(&user_id).and_then(|p| p.steps.remove(&day)).is_some()
    }

    // --- consent without a browser ---

    /// Approves `authorize_url` (as built by the client) as `user_id`; returns the redirect
    /// Location (`redirect_uri?code=..&state=..`).
    ///
    /// # Panics
    /// Where the consent page would answer an error page (bad client or redirect, unknown person).
    pub fn approve(&self, authorize_url: &str, user_id: u64) -> String {
        let request = self.parse_authorize_url(authorize_url);
        self.decide(authorize_url, &request, Decision::Approve { user_id })
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

    /// An access token for `user_id`, as if they had consented (not registered): for tests
    /// not about OAuth.
    pub fn grant_token(&self, user_id: u64) -> String {
        let mut shared = self.server.lock();
        shared.person_mut(user_id);
        shared.issue_token(user_id).access_token
    }

    /// An access token for `user_id`, registered to the client with `member_id`.
    pub fn grant_registered(&self, user_id: u64, member_id: &str) -> String {
        let token = self.grant_token(user_id);
        let registration = state::Registration { member_id: member_id.to_owned(), registered_at: Timestamp::now() };
        self.server.lock().registrations.insert(user_id, registration);
        token
    }

    // --- grant controls ---

    /// The person removed the app in Polar Flow: their tokens get 401 from now on.
    pub fn revoke_grant(&self, user_id: u64) {
        self.server.lock().revoke_tokens(user_id);
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
    /// "consent", "token", "register", "user_get", "deregister", "activities", "activity_day",
    /// "webhook_create", "webhook_list", "webhook_activate", "webhook_deactivate",
    /// "webhook_update", "webhook_delete", "other".
    pub fn calls(&self, kind: &str) -> u64 {
        self.server.calls(kind)
    }

    pub fn reset_calls(&self) {
        self.server.reset_calls();
    }

    /// The client's requests in the current quarter hour (everything but the consent page,
    /// refused ones included).
    pub fn requests_this_quarter_hour(&self) -> u64 {
        self.server.lock().requests_in(Timestamp::now().as_second(), state::SHORT_WINDOW_SECS)
    }

    /// The client's requests so far in the current UTC day.
    pub fn requests_today(&self) -> u64 {
        self.server.lock().requests_in(Timestamp::now().as_second(), state::LONG_WINDOW_SECS)
    }

    /// The most requests the client made in one quarter hour.
    pub fn max_requests_in_any_quarter_hour(&self) -> u64 {
        self.server.lock().requests_by_window.values().copied().max().unwrap_or(0)
    }

    /// Forgets the request log (the limits then start afresh).
    pub fn reset_requests(&self) {
        self.server.lock().requests_by_window.clear();
    }

    // --- the webhook and its notices ---

    /// The client's webhook, with its key.
    pub fn webhook(&self) -> Option<Webhook> {
        self.server.lock().webhook.clone()
    }

    /// A webhook to `url` for `ACTIVITY_SUMMARY`, as if created, without the PING: for tests not
    /// about webhooks. Replaces any webhook; returns its `signature_secret_key`.
    pub fn create_webhook_unverified(&self, url: &str) -> String {
        let key = api::uuid_like();
        let webhook = Webhook {
            id: api::uuid_like()[..6].to_owned(),
            events: vec![ACTIVITY_SUMMARY.to_owned()],
            url: url.to_owned(),
            active: true,
            signature_secret_key: key.clone(),
        };
        self.server.lock().webhook = Some(webhook);
        key
    }

    /// Polar switched the webhook off (after seven days of failed deliveries): it is still
    /// listed, `active: false`, and delivers nothing until activated.
    pub fn deactivate_webhook(&self) {
        if let Some(webhook) = self.server.lock().webhook.as_mut() {
            webhook.active = false;
        }
    }

    /// `Polar-Webhook-Signature` for `body` with the webhook's key (empty without a webhook).
    pub fn sign(&self, body: &[u8]) -> String {
        self.webhook().map(|w| signature(&w.signature_secret_key, body)).unwrap_or_default()
    }

    /// Sends `ACTIVITY_SUMMARY` for the person's day now, without changing any data. No
    /// retries: each delivery's outcome is returned.
    pub async fn notify(&self, user_id: u64, day: impl IntoCivilDate) -> Vec<Delivery> {
        let day = day.into_civil_date();
        let notification = Notification::activity_summary(user_id, &day.to_string(), self.base_url());
        self.deliver(&notification).await
    }

    /// Sends `notification`, signed with the webhook's key, if the webhook is active, subscribes
    /// to `ACTIVITY_SUMMARY` and the person is registered to the client.
    pub async fn deliver(&self, notification: &Notification) -> Vec<Delivery> {
        let target = {
            let shared = self.server.lock();
            let registered = shared.registrations.contains_key(&notification.user_id);
            shared.webhook.clone().filter(|w| registered && w.active && w.events.iter().any(|e| e == ACTIVITY_SUMMARY))
        };
        let Some(webhook) = target else { return Vec::new() };
        let sent = SignedNotification::new(&webhook.signature_secret_key, ACTIVITY_SUMMARY, notification.body());
        let outcome = self.sender.send(&webhook.url, &sent).await;
        let delivery =
            Delivery { webhook_id: webhook.id, url: webhook.url, notification: notification.clone(), sent, outcome };
        self.server.lock().deliveries.push(delivery.clone());
        vec![delivery]
    }

    /// Every notice sent so far, oldest first, with what each got back.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.server.lock().deliveries.clone()
    }

    /// One POST of `body` with exactly `headers` (plus `Content-Type: application/json` unless
    /// given): no signature added. Sign with [`FakePolar::sign`] or [`signature`] as needed.
    pub async fn post_raw(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        self.sender.post(url, body, headers).await
    }
}
