//! Connecting a source: the consent redirect (PKCE S256, a single-use server-side state), the
//! callback (scopes, the provider account claimed for one person only, encrypted tokens, the
//! legacy Fitbit connection retired, a backfill asked for) and disconnecting.

use super::{Ports, ServiceError};
use crate::domain::{
    CONNECT_TICKET_TTL, Connection, ConnectionStatus, LocalDate, OAUTH_STATE_TTL, OAuthStage, OAuthState, Provider,
    TokenSet, UserId, local_today,
};
use crate::events::{ConnectionStatusChanged, Event, SyncReason, SyncRequested};
use crate::ports::{AuthorizeRequest, OAuthClient, Providers, Revoker, StoreError, SubscriptionCheck, TokenCipher};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What connecting needs to know from configuration.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// The API's public base URL; redirect URIs are `{it}/oauth/{provider}/callback`.
    pub public_url: String,
    /// URL prefixes a person may be sent back to; the first is the default.
    pub return_to_allowlist: Vec<String>,
    /// What a new connection pulls when its person is in no open challenge.
    pub backfill_days: u32,
}

/// The one-time link that starts connecting in a browser, and when it stops working.
#[derive(Debug, Clone)]
pub struct ConnectLink {
    pub url: String,
    pub expires_at: Timestamp,
}

/// Where to send the browser for consent, and the state id to bind to it (by a cookie).
#[derive(Debug, Clone)]
pub struct ConsentStart {
    pub location: String,
    pub state_id: String,
}

/// What the callback's query and cookie carried.
#[derive(Debug, Clone, Default)]
pub struct CallbackQuery<'a> {
    pub state: Option<&'a str>,
    /// The state cookie of the browser that came back.
    pub cookie: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The issuer the response names (RFC 9207), where the provider sends one.
    pub iss: Option<&'a str>,
}

/// Where to send the person back, and what to tell them there: `connected={provider}` or
/// `error={code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub return_to: String,
    pub key: &'static str,
    pub value: String,
}

impl Callback {
    fn failed(state: &OAuthState, code: &str) -> Self {
        Self { return_to: state.return_to.clone(), key: "error", value: code.to_owned() }
    }
}

pub struct Connecting {
    pub ports: Ports,
    pub cipher: Arc<dyn TokenCipher>,
    pub providers: Providers,
    pub settings: ConnectSettings,
}

fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

fn status_changed(
    user: &UserId,
    provider: Provider,
    (old, new): (ConnectionStatus, ConnectionStatus),
    reason: &str,
    action: &str,
) -> Event {
    Event::ConnectionStatusChanged(ConnectionStatusChanged {
        user: user.clone(),
        provider,
        old_status: old,
        new_status: new,
        reason: reason.to_owned(),
        action: action.to_owned(),
    })
}

async fn revoke_quietly(revoker: Option<&dyn Revoker>, tokens: &TokenSet, account: Option<&str>) {
    if let Some(revoker) = revoker
        && let Err(error) = revoker.revoke_account(tokens, account).await
    {
        tracing::warn!(%error, "revoke failed (best effort)");
    }
}

impl Connecting {
    fn oauth(&self, provider: Provider) -> Result<&dyn OAuthClient, ServiceError> {
        self.providers
            .oauth(provider)
            .ok_or_else(|| ServiceError::NotFound(format!("an OAuth connection for {provider}")))
    }

    fn redirect_uri(&self, provider: Provider) -> String {
        format!("{}/oauth/{provider}/callback", self.settings.public_url)
    }

    /// Starts connecting `user` to `provider`: stores a one-time ticket (bound to the person,
    /// valid [`CONNECT_TICKET_TTL`]) and answers the link on this API that opens the consent.
    /// The app opens the link in a browser: a page cannot send its token on a navigation, so the
    /// ticket carries who is connecting to [`Connecting::start`].
    pub async fn authorize(
        &self,
        user: &UserId,
        provider: Provider,
        return_to: Option<&str>,
    ) -> Result<ConnectLink, ServiceError> {
        self.oauth(provider)?;
        let allow = &self.settings.return_to_allowlist;
        let return_to = match return_to {
            Some(wanted) if return_allowed(wanted, allow) => wanted.to_owned(),
            Some(_) => {
                return Err(ServiceError::Invalid {
                    field: "return_to",
                    message: "is not an allowed return address".into(),
                });
            }
            None => {
                allow.first().cloned().ok_or_else(|| ServiceError::internal("the return_to allow-list is empty"))?
            }
        };
        let now = self.ports.clock.now();
        let ticket = OAuthState {
            id: random_token(32),
            stage: OAuthStage::Ticket,
            user: user.clone(),
            provider,
            verifier: random_token(48).into(),
            return_to,
            expires_at: now.checked_add(CONNECT_TICKET_TTL).map_err(ServiceError::internal)?,
        };
        self.ports.ephemeral.put_oauth_state(&ticket).await?;
        let mut url = url::Url::parse(&format!("{}/oauth/{provider}/start", self.settings.public_url))
            .map_err(ServiceError::internal)?;
        url.query_pairs_mut().append_pair("ticket", &ticket.id);
        tracing::info!(user = %user, provider = %provider, "authorize: start link issued");
        Ok(ConnectLink { url: url.into(), expires_at: ticket.expires_at })
    }

    /// Opens a start link: uses the ticket once, stores the single-use consent state with the
    /// PKCE verifier, and answers the consent page to send this browser to.
    pub async fn start(&self, provider: Provider, ticket: Option<&str>) -> Result<ConsentStart, ServiceError> {
        let client = self.oauth(provider)?;
        let invalid = |message: &str| ServiceError::Invalid { field: "ticket", message: message.to_owned() };
        let ticket_id = ticket.filter(|t| !t.is_empty()).ok_or_else(|| invalid("is missing"))?;
        let ticket = self.ports.ephemeral.take_oauth_state(ticket_id).await?;
        let now = self.ports.clock.now();
        let ticket = ticket
            .filter(|t| t.stage == OAuthStage::Ticket && t.provider == provider && !t.is_expired(now))
            .ok_or_else(|| invalid("is unknown, used or expired; start connecting again from the app"))?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(ticket.verifier.expose_secret().as_bytes()));
        let state = OAuthState {
            id: random_token(32),
            stage: OAuthStage::Consent,
            expires_at: now.checked_add(OAUTH_STATE_TTL).map_err(ServiceError::internal)?,
            ..ticket
        };
        self.ports.ephemeral.put_oauth_state(&state).await?;
        let location = client
            .authorize_url(&AuthorizeRequest {
                state: state.id.clone(),
                code_challenge: challenge,
                redirect_uri: self.redirect_uri(provider),
            })
            .map_err(ServiceError::internal)?;
        tracing::info!(user = %state.user, provider = %provider, "start: redirect to consent");
        Ok(ConsentStart { location, state_id: state.id })
    }

    /// Finishes connecting. A bad or replayed state is an error; anything that goes wrong at
    /// the provider sends the person back with `error=`.
    pub async fn callback(&self, provider: Provider, query: CallbackQuery<'_>) -> Result<Callback, ServiceError> {
        let client = self.oauth(provider)?;
        let invalid = |message: &str| ServiceError::Invalid { field: "state", message: message.to_owned() };
        let state_id = query.state.filter(|s| !s.is_empty()).ok_or_else(|| invalid("is missing"))?;
        // The browser that finishes must be the one that started: otherwise someone could send a
        // victim a link that connects the attacker's account to the victim's profile.
        if query.cookie != Some(state_id) {
            return Err(invalid("does not belong to this browser; start connecting again"));
        }
        let state = self
            .ports
            .ephemeral
            .take_oauth_state(state_id)
            .await?
            .filter(|s| s.stage == OAuthStage::Consent)
            .ok_or_else(|| invalid("is unknown or was already used; start connecting again"))?;
        let now = self.ports.clock.now();
        if state.is_expired(now) || state.provider != provider {
            return Err(invalid("has expired; start connecting again"));
        }
        if let (Some(named), Some(expected)) = (query.iss, client.issuer())
            && named != expected
        {
            // Not our provider's answer: never exchange its code (a mix-up attack).
            tracing::warn!(user = %state.user, provider = %provider, "callback: the response names another issuer");
            return Ok(Callback::failed(&state, "provider_error"));
        }
        if let Some(error) = query.error {
            let code = if error == "access_denied" { "access_denied" } else { "provider_error" };
            tracing::info!(user = %state.user, provider = %provider, code, "callback: consent not given");
            return Ok(Callback::failed(&state, code));
        }
        let Some(code) = query.code.filter(|c| !c.is_empty()) else {
            return Ok(Callback::failed(&state, "missing_code"));
        };
        match self.connect(client, &state, code, now).await? {
            Ok(()) => {
                Ok(Callback { return_to: state.return_to.clone(), key: "connected", value: provider.to_string() })
            }
            Err(code) => Ok(Callback::failed(&state, code)),
        }
    }

    /// The exchange, the checks and the writes; `Ok(Err(code))` is a refusal the person hears.
    async fn connect(
        &self,
        client: &dyn OAuthClient,
        state: &OAuthState,
        code: &str,
        now: Timestamp,
    ) -> Result<Result<(), &'static str>, ServiceError> {
        let (user, provider) = (&state.user, state.provider);
        let revoker = self.providers.revoker(provider);
        let verifier = secrecy::ExposeSecret::expose_secret(&state.verifier).to_owned();
        let tokens = match client.exchange_code(code, &verifier, &self.redirect_uri(provider)).await {
            Ok(tokens) => tokens,
            Err(error) => {
                tracing::warn!(user = %user, provider = %provider, %error, "callback: code exchange failed");
                return Ok(Err("provider_error"));
            }
        };
        let granted: Vec<&str> = tokens.scope.as_deref().unwrap_or("").split_whitespace().collect();
        if !client.required_scopes().iter().all(|s| granted.contains(s)) {
            revoke_quietly(revoker, &tokens, None).await;
            return Ok(Err("missing_permission"));
        }
        let identity = match client.identity(&tokens).await {
            Ok(identity) => identity,
            Err(error) => {
                tracing::warn!(user = %user, provider = %provider, %error, "callback: identity failed");
                return Ok(Err("provider_error"));
            }
        };
        let claim = match self.ports.connections.claim_provider_account(provider, &identity.account_id, user).await {
            Ok(claim) => claim,
            Err(StoreError::AccountOwnedByAnother) => {
                tracing::warn!(user = %user, provider = %provider, "callback: account already connected to someone else");
                revoke_quietly(revoker, &tokens, Some(&identity.account_id)).await;
                return Ok(Err("account_in_use"));
            }
            Err(e) => return Err(e.into()),
        };

        let existing = self.ports.connections.get_connection(user, provider).await?;
        let replaced = existing.as_ref().and_then(|c| c.provider_user_id.clone()).filter(|a| *a != identity.account_id);
        let version = existing.as_ref().map_or(1, |c| c.token_version + 1);
        let sealed = self.cipher.encrypt(user, provider, version, &tokens).map_err(ServiceError::internal)?;
        let connection = Connection {
            status: ConnectionStatus::Active,
            provider_user_id: Some(identity.account_id.clone()),
            time_zone: identity.time_zone.clone().or_else(|| existing.as_ref().and_then(|c| c.time_zone.clone())),
            tokens: Some(sealed),
            token_version: version,
            created_at: existing.as_ref().map_or(now, |c| c.created_at),
            next_sync_at: Some(now),
            counts_from: claim.counts_from,
            ..Connection::new(user.clone(), provider, now)
        };
        match self.ports.connections.save_connection(&connection, existing.as_ref().map(|c| c.token_version)).await {
            Ok(()) => {}
            Err(StoreError::Conflict | StoreError::AlreadyExists(_)) => return Ok(Err("try_again")),
            Err(e) => return Err(e.into()),
        }
        // Reconnected with another account at the provider: the old one feeds nobody now. Only
        // once the new connection is saved: a failed save leaves the person on the old one.
        if let Some(old) = replaced {
            self.ports.connections.release_provider_account(provider, &old, user, counted_through(now)).await?;
        }

        let mut events = Vec::new();
        let old_status = existing.as_ref().map_or(ConnectionStatus::Disconnected, |c| c.status);
        if old_status != ConnectionStatus::Active {
            events.push(status_changed(user, provider, (old_status, ConnectionStatus::Active), "connected", "None."));
        }
        if let Some(legacy) = identity.legacy_account_id.as_deref() {
            events.extend(self.retire_legacy_fitbit(user, legacy).await?);
        }
        let (start, end) = self.backfill_window(user, now).await?;
        events.push(Event::SyncRequested(SyncRequested {
            user: user.clone(),
            provider,
            reason: SyncReason::Connect,
            start: Some(start),
            end: Some(end),
            noticed_at: None,
            notice_id: None,
            upload: None,
        }));
        // What the source needs once connected (Withings: the person's notifications);
        // without it the scheduled pulls still bring the steps.
        let followed_up = client.connected(&tokens, &identity).await;
        if let Err(error) = &followed_up {
            tracing::warn!(user = %user, provider = %provider, %error, "callback: the source's follow-up failed; pulls continue");
        }
        // A person's own subscription, made or not: their status says it is off until a
        // later sync makes it, and a reconnect that made it clears an earlier lapse.
        if self.providers.subscribes_people(provider) {
            let check = SubscriptionCheck { checked_at: now, lapsed_since: followed_up.is_err().then_some(now) };
            if let Err(error) = self.ports.connections.record_subscription_check(user, provider, &check).await {
                tracing::warn!(user = %user, provider = %provider, %error, "callback: the subscription's state was not recorded");
            }
        }
        // The connection is stored; if the events are lost, the scheduled sweep backfills it.
        self.ports.publish_quietly(&events, "callback").await;
        tracing::info!(user = %user, provider = %provider, version = connection.token_version, "callback: connected");
        Ok(Ok(()))
    }

    /// A person who had a legacy Fitbit connection and now connects the same Fitbit account
    /// through Google: the old connection is retired (its history stays) and its account freed.
    async fn retire_legacy_fitbit(&self, user: &UserId, legacy_id: &str) -> Result<Vec<Event>, ServiceError> {
        let connections = &self.ports.connections;
        let owner = connections.provider_account_owner(Provider::Fitbit, legacy_id).await?;
        if owner.as_ref() != Some(user) {
            return Ok(Vec::new());
        }
        let before = connections.disconnect(user, Provider::Fitbit).await?;
        let now = self.ports.clock.now();
        connections.release_provider_account(Provider::Fitbit, legacy_id, user, counted_through(now)).await?;
        tracing::info!(user = %user, "legacy Fitbit connection retired: replaced by Google Health");
        Ok(before
            .filter(|c| c.status != ConnectionStatus::Disconnected)
            .map(|c| {
                status_changed(
                    user,
                    Provider::Fitbit,
                    (c.status, ConnectionStatus::Disconnected),
                    "replaced_by_google_health",
                    "None: Fitbit now syncs through Google.",
                )
            })
            .into_iter()
            .collect())
    }

    /// What a new connection pulls: the person's open challenge windows up to today, else the
    /// last `backfill_days` days.
    pub async fn backfill_window(&self, user: &UserId, now: Timestamp) -> Result<(LocalDate, LocalDate), ServiceError> {
        // The person's zone is not known yet; a day of margin covers zones ahead of UTC.
        let today = local_today(now, &jiff::tz::TimeZone::UTC).add_days(1);
        let profile = self.ports.steps.load_user_days(user, &[]).await?.profile;
        let open: Vec<_> = profile.memberships.values().filter(|m| !m.is_final(now) && m.start <= today).collect();
        let window = match (open.iter().map(|m| m.start).min(), open.iter().map(|m| m.end).max()) {
            (Some(start), Some(end)) => (start, end.min(today)),
            _ => (today.add_days(1 - self.settings.backfill_days as i32), today),
        };
        Ok(window)
    }

    /// Revokes the grant (best effort), forgets the tokens, frees the provider account and keeps
    /// the history. `NotFound` when there is no such connection.
    pub async fn disconnect(&self, user: &UserId, provider: Provider) -> Result<(), ServiceError> {
        let connections = &self.ports.connections;
        let existing = connections
            .get_connection(user, provider)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("a {provider} connection")))?;
        if let (Some(revoker), Some(sealed)) = (self.providers.revoker(provider), existing.tokens.as_ref()) {
            match self.cipher.decrypt(user, provider, existing.token_version, sealed) {
                Ok(tokens) => revoke_quietly(Some(revoker), &tokens, existing.provider_user_id.as_deref()).await,
                Err(error) => tracing::warn!(%error, "disconnect: stored tokens unreadable; not revoked"),
            }
        }
        let before = connections.disconnect(user, provider).await?;
        // The provider account, or a phone platform's installations: free for someone else,
        // from the day after the last one that may have counted here.
        let now = self.ports.clock.now();
        let held = existing.provider_user_id.iter().chain(existing.installs.keys());
        for account in held {
            connections.release_provider_account(provider, account, user, counted_through(now)).await?;
        }
        if let Some(before) = before.filter(|c| c.status != ConnectionStatus::Disconnected) {
            let event = status_changed(
                user,
                provider,
                (before.status, ConnectionStatus::Disconnected),
                "disconnected",
                "None.",
            );
            self.ports.publish_quietly(&[event], "disconnect").await;
        }
        tracing::info!(user = %user, provider = %provider, "disconnected");
        Ok(())
    }
}

/// Whether `wanted` is a return address the allow-list admits, compared on parsed URLs (a
/// string prefix would let `https://app.example.com.evil.net` or `…@evil.net` through):
/// scheme, host and port exactly, the path by whole segments, no user or password. An entry
/// without a host (`stepsync://`) admits any address of its scheme, for an app's own scheme
/// only, never for http(s).
fn return_allowed(wanted: &str, allowlist: &[String]) -> bool {
    let Ok(wanted) = url::Url::parse(wanted) else { return false };
    if !wanted.username().is_empty() || wanted.password().is_some() {
        return false;
    }
    allowlist.iter().filter_map(|entry| url::Url::parse(entry).ok()).any(|allowed| {
        if allowed.scheme() != wanted.scheme() {
            return false;
        }
        let web = matches!(allowed.scheme(), "http" | "https");
        match allowed.host_str().filter(|h| !h.is_empty()) {
            None => !web,
            Some(host) => {
                let base = allowed.path().trim_end_matches('/');
                let path = wanted.path();
                let under = path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'));
                wanted.host_str() == Some(host)
                    && wanted.port_or_known_default() == allowed.port_or_known_default()
                    && under
            }
        }
    })
}

/// The last day a released account may have counted for its holder: tomorrow where the date
/// is latest on Earth (UTC+14), since a value is accepted up to the holder's local tomorrow.
/// Whatever the zones of the old and the new holder, no day the old one may have counted
/// reaches the new one.
fn counted_through(now: Timestamp) -> LocalDate {
    local_today(now, &jiff::tz::TimeZone::fixed(jiff::tz::offset(14))).add_days(1)
}

#[cfg(test)]
mod return_to_tests {
    use super::return_allowed;

    #[test]
    fn return_addresses_are_matched_on_the_parsed_url() {
        let allow = ["https://app.example.com/stepsync", "http://127.0.0.1:3000/", "stepsync://"].map(String::from);
        let ok = |url: &str| return_allowed(url, &allow);
        assert!(ok("https://app.example.com/stepsync"));
        assert!(ok("https://app.example.com/stepsync/done?x=1"));
        assert!(ok("HTTPS://APP.example.com/stepsync/"), "scheme and host are case-insensitive");
        assert!(ok("https://app.example.com:443/stepsync"), "the default port is the port");
        assert!(ok("http://127.0.0.1:3000/anything"));
        assert!(ok("stepsync://connected"));
        for attack in [
            "https://app.example.com.evil.net/stepsync",
            "https://app.example.com@evil.net/stepsync",
            "https://user@app.example.com/stepsync",
            "https://user:pw@app.example.com/stepsync",
            "https://app.example.com/stepsyncevil",
            "https://app.example.com/other",
            "http://app.example.com/stepsync",
            "https://app.example.com:8443/stepsync",
            "http://127.0.0.1:30001/",
            "http://127.0.0.1:3000.evil.net/",
            "https://evil.net/?https://app.example.com/stepsync",
            "javascript:alert(1)",
            "//app.example.com/stepsync",
            "not a url",
        ] {
            assert!(!ok(attack), "{attack} must be refused");
        }
        // An entry without a host admits its own scheme only, never the web.
        assert!(!return_allowed("https://evil.net/", &["https://".to_owned()]));
    }
}
