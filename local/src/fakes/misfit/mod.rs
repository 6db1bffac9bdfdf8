//! A fake Misfit cloud on loopback, for tests and the local stack: Misfit's OAuth (consent page
//! and code exchange), the profile and the daily activity summary, scripted faults, and the
//! ways a retired cloud can be dead (Fossil withdrew Misfit in 2023). Misfit notifies through
//! Amazon SNS: the events are here, the SNS side is [`super::sns`]. Faithful to Misfit's
//! documented API and to the shapes it answered.

mod api;
mod consent;
mod faults;
mod notifications;
mod state;
#[cfg(test)]
mod tests;
mod wire;

use std::time::Duration;

pub use super::common::IntoCivilDate;
use super::common::query_pairs;
pub use super::server::FakeError;
use super::server::FakeServer;
use consent::{AuthorizeRequest, Decision};
pub use faults::{Dead, Fault};
pub use notifications::{EventAction, MisfitEvent, notification_message};
use state::MisfitState;
pub use wire::{
    ALL_SCOPES, AUTHORIZE_PATH, CONSENT_PATH, PROFILE_PATH, RATE_LIMIT_RESET_HEADER, SUMMARY_PATH, TOKEN_PATH,
};

pub const DEFAULT_CLIENT_ID: &str = "fake-misfit-client";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-misfit-secret";

/// A running fake Misfit cloud; stops serving when dropped or on [`FakeMisfit::stop`].
pub struct FakeMisfit {
    /// Closed while the cloud is `Dead::Refused`.
    server: FakeServer<MisfitState, Fault>,
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
        let state = MisfitState::new(client_id, client_secret);
        let server = FakeServer::start("fake Misfit", port, state, api::router).await?;
        Ok(Self { server })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// `http://127.0.0.1:PORT`, standing for `https://api.misfitwearables.com`: every path is as Misfit's.
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

    /// How long an authorization code can be exchanged; default 10 minutes. Checked at exchange time.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.server.lock().code_lifetime = lifetime;
    }

    // --- people and their steps ---

    /// Adds a Misfit user who can consent (their profile name is "Fake Misfit {user_id}").
    /// Adding someone again keeps their steps.
    pub fn add_person(&self, user_id: &str) {
        self.server.lock().person_mut(user_id);
    }

    /// Sets the day's step count (points, calories and distance follow from it); the person is
    /// added if unknown.
    pub fn set_steps(&self, user_id: &str, date: impl IntoCivilDate, steps: u64) {
        let date = date.into_civil_date();
        self.server.lock().person_mut(user_id).steps.insert(date, steps);
    }

    /// Removes the day: the summary then leaves it out ("no data", not zero).
    pub fn clear_steps(&self, user_id: &str, date: impl IntoCivilDate) {
        let date = date.into_civil_date();
        if let Some(person) = self.server.lock().people.get_mut(user_id) {
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
        consent::decide(&mut self.server.lock(), request, decision)
            .unwrap_or_else(|e| panic!("consent for {authorize_url}: {}", e.0))
    }

    fn parse_authorize_url(&self, authorize_url: &str) -> AuthorizeRequest {
        AuthorizeRequest::parse(&query_pairs(authorize_url), &self.client_id())
            .unwrap_or_else(|e| panic!("the consent page would refuse {authorize_url}: {}", e.0))
    }

    /// An access token for `user_id` as if they had consented: for tests that are not about OAuth.
    pub fn grant_token(&self, user_id: &str) -> String {
        let mut shared = self.server.lock();
        shared.person_mut(user_id);
        shared.issue_token(user_id)
    }

    /// The user disconnected the app: every token they hold now gets 401.
    pub fn revoke_person(&self, user_id: &str) {
        self.server.lock().tokens.retain(|_, owner| owner != user_id);
    }

    // --- faults, death and counters ---

    /// The next `times` requests to the token, profile or summary endpoints (in arrival order)
    /// get `fault`, queued after faults already scripted. Consent pages are never faulted.
    pub fn fail_next(&self, fault: Fault, times: u32) {
        self.server.fail_next((), fault, times);
    }

    pub fn clear_faults(&self) {
        self.server.clear_faults();
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
        self.server.lock().dead = mode;
        if mode == Some(Dead::Refused) {
            self.server.close().await;
            return;
        }
        if let Err(e) = self.server.listen_again().await {
            panic!("fake Misfit listening again: {e}");
        }
    }

    pub fn dead(&self) -> Option<Dead> {
        self.server.lock().dead
    }

    /// Requests received of `kind`, faulted and dead-answered ones included: "authorize",
    /// "consent", "token", "profile", "summary", "other" (anything else). Refused connections
    /// never arrive, so they are not counted.
    pub fn calls(&self, kind: &str) -> u64 {
        self.server.calls(kind)
    }

    pub fn reset_calls(&self) {
        self.server.reset_calls();
    }
}
