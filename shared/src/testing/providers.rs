//! Scripted stand-ins for a source's OAuth client, revoker and webhook verifier, and the gate
//! a double can wait at, so a test decides exactly when a call in flight goes on.

use crate::domain::TokenSet;
use crate::ports::{
    AuthorizeRequest, OAuthClient, ProviderError, ProviderIdentity, Revoker, WebhookError, WebhookMessage,
    WebhookVerifier,
};
use async_trait::async_trait;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Where a double waits until the test opens it. `Notify` keeps one permit, so neither an
/// early `open` nor an early arrival is lost: no timing luck.
#[derive(Debug, Default)]
pub struct Gate {
    arrived: Notify,
    open: Notify,
}

impl Gate {
    /// The double's side: says it is here, then waits for the gate to open.
    pub async fn pass(&self) {
        self.arrived.notify_one();
        self.open.notified().await;
    }

    /// The test's side: returns once a caller is waiting at the gate.
    pub async fn reached(&self) {
        self.arrived.notified().await;
    }

    /// Lets one caller through.
    pub fn open(&self) {
        self.open.notify_one();
    }
}

/// Tokens as a provider issues them: valid until far past any test's clock.
pub fn issued_tokens(access: &str, scope: &str) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(access),
        refresh_token: Some(SecretString::from(format!("refresh-of-{access}"))),
        expires_at: "2099-01-01T00:00:00Z".parse::<Timestamp>().expect("a valid instant"),
        scope: Some(scope.to_owned()),
    }
}

/// What a code exchange was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub code: String,
    pub verifier: String,
    pub redirect_uri: String,
}

/// An OAuth client answering from a script: the consent URL carries the request, the exchange
/// and the identity answer what they are told, and a refresh (gated when the test wants to act
/// while it runs) issues `refreshed` tokens.
pub struct ScriptedOAuth {
    pub required: Vec<&'static str>,
    pub exchange: Mutex<Result<TokenSet, ProviderError>>,
    pub identity: Mutex<Result<ProviderIdentity, ProviderError>>,
    exchanges: Mutex<Vec<Exchange>>,
    refresh_gate: Option<Arc<Gate>>,
    /// What refreshes answer instead of new tokens (a refused grant, say).
    refresh_answer: Mutex<Option<Result<TokenSet, ProviderError>>>,
    refreshes: Mutex<u32>,
}

impl ScriptedOAuth {
    /// Requires `scope`; the exchange grants it and the person is `account` at the provider.
    pub fn granting(scope: &'static str, account: &str) -> Self {
        Self {
            required: vec![scope],
            exchange: Mutex::new(Ok(issued_tokens("access-1", scope))),
            identity: Mutex::new(Ok(ProviderIdentity {
                account_id: account.to_owned(),
                legacy_account_id: None,
                time_zone: None,
            })),
            exchanges: Mutex::new(Vec::new()),
            refresh_gate: None,
            refresh_answer: Mutex::new(None),
            refreshes: Mutex::new(0),
        }
    }

    /// Refreshes answer this from now on.
    pub fn answer_refresh(&self, answer: Result<TokenSet, ProviderError>) {
        *self.refresh_answer.lock().unwrap() = Some(answer);
    }

    /// Refresh calls so far.
    pub fn refreshes(&self) -> u32 {
        *self.refreshes.lock().unwrap()
    }

    pub fn with_refresh_gate(self, gate: Arc<Gate>) -> Self {
        Self { refresh_gate: Some(gate), ..self }
    }

    /// The next exchanges answer this.
    pub fn answer_exchange(&self, answer: Result<TokenSet, ProviderError>) {
        *self.exchange.lock().unwrap() = answer;
    }

    /// The person is `account` (and `legacy`, their old Fitbit id) from now on.
    pub fn answer_identity(&self, account: &str, legacy: Option<&str>) {
        *self.identity.lock().unwrap() = Ok(ProviderIdentity {
            account_id: account.to_owned(),
            legacy_account_id: legacy.map(str::to_owned),
            time_zone: None,
        });
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

/// The issuer `ScriptedOAuth` names in its callbacks' `iss`.
pub const SCRIPTED_ISSUER: &str = "https://consent.test";

#[async_trait]
impl OAuthClient for ScriptedOAuth {
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        Ok(format!(
            "https://consent.test/authorize?state={}&code_challenge={}&code_challenge_method=S256&redirect_uri={}",
            request.state, request.code_challenge, request.redirect_uri
        ))
    }

    fn required_scopes(&self) -> &[&str] {
        &self.required
    }

    fn issuer(&self) -> Option<&str> {
        Some(SCRIPTED_ISSUER)
    }

    async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        self.exchanges.lock().unwrap().push(Exchange {
            code: code.to_owned(),
            verifier: verifier.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
        });
        self.exchange.lock().unwrap().clone()
    }

    async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        *self.refreshes.lock().unwrap() += 1;
        if let Some(gate) = &self.refresh_gate {
            gate.pass().await;
        }
        match self.refresh_answer.lock().unwrap().clone() {
            Some(answer) => answer,
            None => Ok(TokenSet { scope: tokens.scope.clone(), ..issued_tokens("refreshed", "") }),
        }
    }

    async fn identity(&self, _tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        self.identity.lock().unwrap().clone()
    }
}

/// Keeps the access token of every grant given back.
#[derive(Debug, Default)]
pub struct RecordingRevoker(Mutex<Vec<String>>);

impl RecordingRevoker {
    pub fn revoked(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl Revoker for RecordingRevoker {
    async fn revoke(&self, tokens: &TokenSet) -> Result<(), ProviderError> {
        self.0.lock().unwrap().push(tokens.access_token.expose_secret().to_owned());
        Ok(())
    }
}

/// A webhook verifier answering from a script: a handshake, notices, or a refusal.
pub struct ScriptedWebhooks {
    pub answer: Mutex<Result<WebhookMessage, WebhookError>>,
    pub calls: Mutex<u32>,
}

impl ScriptedWebhooks {
    pub fn answering(answer: Result<WebhookMessage, WebhookError>) -> Self {
        Self { answer: Mutex::new(answer), calls: Mutex::new(0) }
    }

    pub fn answer(&self, answer: Result<WebhookMessage, WebhookError>) {
        *self.answer.lock().unwrap() = answer;
    }
}

#[async_trait]
impl WebhookVerifier for ScriptedWebhooks {
    async fn verify(
        &self,
        _method: &str,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        *self.calls.lock().unwrap() += 1;
        self.answer.lock().unwrap().clone()
    }
}
