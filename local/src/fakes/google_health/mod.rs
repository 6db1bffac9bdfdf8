//! A fake Google Health on loopback for tests and the local stack: Google OAuth (consent page,
//! token and revoke endpoints), the Health API's identity and daily steps roll-up, the webhook
//! keyset, and Google's side of the webhooks (verification, signed notifications with retries).
//! Faithful to the Google Health API's documented behaviour and to the shapes it answers live.

mod api;
mod consent;
mod faults;
mod notifications;
mod state;
#[cfg(test)]
mod tests;
mod wire;

use std::time::{Duration, Instant};

use jiff::civil::Date;
use p256::ecdsa::VerifyingKey;
use serde_json::Value;

pub use super::common::IntoCivilDate;
use super::common::query_pairs;
pub use super::server::FakeError;
use super::server::FakeServer;
use consent::{AuthorizeRequest, Decision};
pub use faults::{Fault, FaultTarget};
use notifications::WebhookSender;
pub use notifications::{Attempt, Delivery, Notification, Operation, Window};
use state::GoogleState;
pub use wire::{ACTIVITY_SCOPE, DEFAULT_SUBSCRIPTION_NAME, SETTINGS_SCOPE, SIGNATURE_HEADER, VERIFICATION_BODY};
use wire::{AUTH_PATH, KEYSET_PATH, REVOKE_PATH, TOKEN_PATH};

pub const DEFAULT_CLIENT_ID: &str = "fake-client-id";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-client-secret";

/// Tokens handed out by [`FakeGoogleHealth::grant_tokens`], for tests that skip the consent dance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A running fake Google Health; stops serving when dropped or on [`FakeGoogleHealth::stop`].
pub struct FakeGoogleHealth {
    server: FakeServer<GoogleState, Fault, FaultTarget>,
    webhooks: WebhookSender,
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
        let webhooks = WebhookSender::new()?;
        let state = GoogleState::new(client_id.to_owned(), client_secret.to_owned());
        let server = FakeServer::start("fake Google Health", port, state, api::router).await?;
        Ok(Self { server, webhooks })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    // --- URLs ---

    pub fn base_url(&self) -> &str {
        self.server.base_url()
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
        self.server.base_url()
    }

    pub fn keyset_url(&self) -> String {
        format!("{}{KEYSET_PATH}", self.base_url())
    }

    // --- configuration ---

    pub fn client_id(&self) -> String {
        self.server.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.server.lock().client_secret.clone()
    }

    /// Changes the one OAuth client the fake accepts (codes and tokens already issued keep their client).
    pub fn set_client(&self, client_id: &str, client_secret: &str) {
        let mut shared = self.server.lock();
        shared.client_id = client_id.to_owned();
        shared.client_secret = client_secret.to_owned();
    }

    /// Lifetime of access tokens issued from now on (`expires_in`); default 3599 s.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.server.lock().access_token_lifetime = lifetime;
    }

    /// How long an authorization code can be exchanged; default 10 minutes. Checked at exchange time.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.server.lock().code_lifetime = lifetime;
    }

    /// At most this many points per `dailyRollUp` page (default 5; 0 counts as 1).
    pub fn set_page_size(&self, page_size: usize) {
        self.server.lock().page_size = page_size.max(1);
    }

    // --- people and their steps ---

    /// Adds a person who can consent (or updates their legacy Fitbit id, keeping their steps).
    pub fn add_person(&self, health_user_id: &str, legacy_user_id: Option<&str>) {
        self.server.lock().person_mut(health_user_id).legacy_user_id = legacy_user_id.map(str::to_owned);
    }

    /// Sets the account's time zone (what `GET /v4/users/me/settings` answers); the person is
    /// added if unknown.
    pub fn set_time_zone(&self, health_user_id: &str, zone: &str) {
        self.server.lock().person_mut(health_user_id).time_zone = Some(zone.to_owned());
    }

    /// Sets the day's roll-up total; the person is added if unknown.
    pub fn set_steps(&self, health_user_id: &str, date: impl IntoCivilDate, steps: u64) {
        let date = date.into_civil_date();
        self.server.lock().person_mut(health_user_id).steps.insert(date, steps);
    }

    /// Removes the day's entry: `dailyRollUp` then leaves it out ("no data", not zero).
    pub fn clear_steps(&self, health_user_id: &str, date: impl IntoCivilDate) {
        let date = date.into_civil_date();
        if let Some(person) = self.server.lock().people.get_mut(health_user_id) {
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
        consent::decide(&mut self.server.lock(), request, decision)
            .unwrap_or_else(|e| panic!("consent for {authorize_url}: {e}"))
    }

    fn parse_authorize_url(&self, authorize_url: &str) -> AuthorizeRequest {
        AuthorizeRequest::parse(&query_pairs(authorize_url), &self.client_id())
            .unwrap_or_else(|e| panic!("the consent page would refuse {authorize_url}: {e}"))
    }

    /// Tokens for `health_user_id` with `scopes`, as if they had consented: for tests that are
    /// not about OAuth.
    pub fn grant_tokens(&self, health_user_id: &str, scopes: &[&str]) -> TokenPair {
        let mut shared = self.server.lock();
        shared.person_mut(health_user_id);
        let grant = shared.new_grant(health_user_id, scopes.iter().map(|s| (*s).to_owned()).collect());
        TokenPair { access_token: shared.issue_access_token(grant), refresh_token: shared.issue_refresh_token(grant) }
    }

    // --- grant controls ---

    /// The user revoked access: refresh tokens then get `invalid_grant`, access tokens 401.
    pub fn revoke_grant(&self, health_user_id: &str) {
        for (_, grant) in self.server.lock().grants_of(health_user_id) {
            grant.revoked = true;
        }
    }

    /// Every access token of `health_user_id` expires now (refresh tokens keep working).
    pub fn expire_access_tokens(&self, health_user_id: &str) {
        let mut shared = self.server.lock();
        let grants: Vec<usize> = shared.grants_of(health_user_id).map(|(i, _)| i).collect();
        let now = Instant::now();
        for token in shared.access_tokens.values_mut().filter(|t| grants.contains(&t.grant)) {
            token.expires_at = now;
        }
    }

    // --- faults and counters ---

    /// The next `times` requests to `target` get `fault` (queued after faults already scripted).
    pub fn fail_next(&self, target: FaultTarget, fault: Fault, times: u32) {
        self.server.fail_next(target, fault, times);
    }

    pub fn clear_faults(&self) {
        self.server.clear_faults();
    }

    /// Requests received of `kind`, faulted ones included: "authorize", "consent", "token_code",
    /// "token_refresh", "token_other", "revoke", "identity", "rollup", "keyset".
    pub fn calls(&self, kind: &str) -> u64 {
        self.server.calls(kind)
    }

    pub fn reset_calls(&self) {
        self.server.reset_calls();
    }

    // --- webhook keys ---

    pub fn primary_key_id(&self) -> u32 {
        self.server.lock().primary_key().key_id
    }

    /// Every signing key id, oldest first (the last is the primary).
    pub fn key_ids(&self) -> Vec<u32> {
        self.server.lock().keys.iter().map(|k| k.key_id).collect()
    }

    pub fn verifying_key(&self, key_id: u32) -> Option<VerifyingKey> {
        self.server.lock().keys.iter().find(|k| k.key_id == key_id).map(|k| *k.signing_key.verifying_key())
    }

    /// A new signing key with a fresh random id becomes primary; older keys stay published.
    pub fn rotate_key(&self) -> u32 {
        self.server.lock().add_key()
    }

    /// Keeps only the primary key, in the keyset and for signing.
    pub fn drop_old_keys(&self) {
        let mut shared = self.server.lock();
        let keep = shared.keys.len() - 1;
        shared.keys.drain(..keep);
    }

    /// With `false`, `/keyset` leaves out the newest key (still used for signing), as a keyset
    /// served from a cache that predates a rotation.
    pub fn set_publish_newest_key(&self, publish: bool) {
        self.server.lock().publish_newest_key = publish;
    }

    /// What `/keyset` serves right now.
    pub fn keyset_json(&self) -> Value {
        self.server.lock().keyset_json()
    }

    /// The signature header value for `body` with the primary key: base64 of `0x01`, the
    /// big-endian key id and the DER ECDSA P-256 SHA-256 signature.
    pub fn sign(&self, body: &[u8]) -> String {
        self.server.lock().sign(body)
    }

    // --- the webhook sender ---

    /// One verification POST (`{"type": "verification"}`), with `Authorization` when given.
    /// Returns the status, or 0 when no HTTP answer came (refused, timed out).
    pub async fn send_verification(&self, url: &str, authorization: Option<&str>) -> u16 {
        self.webhooks.verification(url, authorization).await
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
        let body = notifications::array_body(notices);
        match notices.first() {
            Some(options) => self.deliver(url, body, options).await,
            None => self.deliver(url, body, &Notification::upsert("", Vec::<Date>::new())).await,
        }
    }

    /// One POST of `body` with exactly `headers` (plus `Content-Type: application/json` unless
    /// given): no signature added, no retry. Sign with [`FakeGoogleHealth::sign`] as needed.
    pub async fn notify_raw(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        self.webhooks.raw(url, body, headers).await
    }

    async fn deliver(&self, url: &str, body: Vec<u8>, options: &Notification) -> Delivery {
        let signature = self.sign(&body);
        self.webhooks.deliver(url, body, signature, options).await
    }
}
