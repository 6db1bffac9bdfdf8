//! `oauth`: connect, callback and disconnect for providers with OAuth (Google Health).
//!
//! - `GET /v1/connections/{provider}/authorize` (JWT): 302 to the consent page, PKCE S256, a
//!   random single-use `state` stored server side and bound to the browser by a cookie.
//! - `GET /oauth/{provider}/callback`: checks and consumes the state, exchanges the code,
//!   checks the scopes, claims the provider account, stores encrypted tokens, asks for a
//!   backfill sync, and sends the person back with `?connected=` or `?error=`.
//! - `DELETE /v1/connections/{provider}` (JWT): revokes, forgets the tokens, keeps history.

use crate::app::App;
use crate::http::{ApiError, caller, cookie, empty, query, redirect};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::{Body, Request, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};
use stepsync::domain::{
    Connection, ConnectionStatus, LocalDate, OAUTH_STATE_TTL, OAuthState, Provider, TokenSet, UserId, local_today,
};
use stepsync::events::{ConnectionStatusChanged, Event, SyncReason, SyncRequested};
use stepsync::ports::{AuthorizeRequest, ConnectionStore, EphemeralStore, StepProvider, StepStore, StoreError};

/// The cookie that ties a `state` to the browser that started the flow.
pub const STATE_COOKIE: &str = "stepsync_oauth_state";

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/connections/{provider}/authorize"),
    ("GET", "/oauth/{provider}/callback"),
    ("DELETE", "/v1/connections/{provider}"),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (req.method().as_str(), segments.as_slice()) {
        ("GET", ["v1", "connections", provider, "authorize"]) => authorize(app, &req, provider).await,
        ("GET", ["oauth", provider, "callback"]) => callback(app, &req, provider).await,
        ("DELETE", ["v1", "connections", provider]) => disconnect(app, &req, provider).await,
        _ => Err(ApiError::NotFound("route".into())),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn oauth_client<'a>(app: &'a App, raw: &str) -> Result<(Provider, &'a dyn StepProvider), ApiError> {
    let provider = raw.parse::<Provider>().map_err(|_| ApiError::NotFound(format!("provider {raw:?}")))?;
    let client = app
        .providers
        .get(provider)
        // Sources with OAuth say which scopes they need; the others (phones, retired) have none.
        .filter(|c| !c.required_scopes().is_empty())
        .ok_or_else(|| ApiError::NotFound(format!("an OAuth connection for {provider}")))?;
    Ok((provider, client.as_ref()))
}

fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

fn redirect_uri(app: &App, provider: Provider) -> String {
    format!("{}/oauth/{provider}/callback", app.config.public_url)
}

async fn authorize(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let (provider, client) = oauth_client(app, raw)?;
    let allow = &app.config.return_to_allowlist;
    let return_to = match query(req, "return_to") {
        Some(wanted) if allow.iter().any(|prefix| wanted.starts_with(prefix.as_str())) => wanted.to_owned(),
        Some(_) => {
            return Err(ApiError::Invalid { field: "return_to", message: "is not an allowed return address".into() });
        }
        None => allow.first().cloned().ok_or_else(|| ApiError::internal("STEPSYNC_RETURN_TO_ALLOWLIST is empty"))?,
    };
    let verifier = random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let now = app.engine.clock.now();
    let state = OAuthState {
        id: random_token(32),
        user: user.clone(),
        provider,
        verifier: verifier.into(),
        return_to,
        expires_at: now.checked_add(OAUTH_STATE_TTL).map_err(ApiError::internal)?,
    };
    app.store.put_oauth_state(&state).await.map_err(ApiError::internal)?;
    let location = client
        .authorize_url(&AuthorizeRequest {
            state: state.id.clone(),
            code_challenge: challenge,
            redirect_uri: redirect_uri(app, provider),
        })
        .map_err(ApiError::internal)?;
    let cookie = format!(
        "{STATE_COOKIE}={}; Path=/oauth/{provider}/callback; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
        state.id,
        OAUTH_STATE_TTL.as_secs()
    );
    tracing::info!(user = %user, provider = %provider, "authorize: redirect to consent");
    Ok(redirect(&location, Some(&cookie)))
}

/// Sends the person back to where they started, saying what happened.
fn back(return_to: &str, key: &str, value: &str, provider: Provider) -> Response<Body> {
    let separator = if return_to.contains('?') { '&' } else { '?' };
    let clear = format!("{STATE_COOKIE}=; Path=/oauth/{provider}/callback; Max-Age=0; HttpOnly; Secure; SameSite=Lax");
    redirect(&format!("{return_to}{separator}{key}={value}"), Some(&clear))
}

async fn callback(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let (provider, client) = oauth_client(app, raw)?;
    let invalid = |message: &str| ApiError::Invalid { field: "state", message: message.to_owned() };
    let state_id = query(req, "state").filter(|s| !s.is_empty()).ok_or_else(|| invalid("is missing"))?;
    // The browser that finishes must be the one that started: otherwise someone could send a
    // victim a link that connects the attacker's account to the victim's profile.
    if cookie(req, STATE_COOKIE).as_deref() != Some(state_id) {
        return Err(invalid("does not belong to this browser; start connecting again"));
    }
    let state = app
        .store
        .take_oauth_state(state_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| invalid("is unknown or was already used; start connecting again"))?;
    let now = app.engine.clock.now();
    if state.is_expired(now) || state.provider != provider {
        return Err(invalid("has expired; start connecting again"));
    }
    let fail = |code: &str| Ok(back(&state.return_to, "error", code, provider));
    if let Some(error) = query(req, "error") {
        let code = if error == "access_denied" { "access_denied" } else { "provider_error" };
        tracing::info!(user = %state.user, provider = %provider, code, "callback: consent not given");
        return fail(code);
    }
    let Some(code) = query(req, "code").filter(|c| !c.is_empty()) else { return fail("missing_code") };

    let verifier = secrecy::ExposeSecret::expose_secret(&state.verifier).to_owned();
    let tokens = match client.exchange_code(code, &verifier, &redirect_uri(app, provider)).await {
        Ok(tokens) => tokens,
        Err(error) => {
            tracing::warn!(user = %state.user, provider = %provider, %error, "callback: code exchange failed");
            return fail("provider_error");
        }
    };
    if !has_scopes(client, &tokens) {
        revoke_quietly(client, &tokens).await;
        return fail("missing_permission");
    }
    let identity = match client.identity(&tokens).await {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(user = %state.user, provider = %provider, %error, "callback: identity failed");
            return fail("provider_error");
        }
    };
    match app.store.claim_provider_account(provider, &identity.account_id, &state.user).await {
        Ok(()) => {}
        Err(StoreError::AccountOwnedByAnother) => {
            tracing::warn!(user = %state.user, provider = %provider, "callback: account already connected to someone else");
            revoke_quietly(client, &tokens).await;
            return fail("account_in_use");
        }
        Err(e) => return Err(ApiError::internal(e)),
    }

    let existing = app.store.get_connection(&state.user, provider).await.map_err(ApiError::internal)?;
    if let Some(old) = existing.as_ref().and_then(|c| c.provider_user_id.clone()).filter(|a| *a != identity.account_id)
    {
        // Reconnected with another account at the provider: the old one feeds nobody now.
        app.store.release_provider_account(provider, &old, &state.user).await.map_err(ApiError::internal)?;
    }
    let sealed = app.engine.cipher.encrypt(&state.user, provider, &tokens).map_err(ApiError::internal)?;
    let connection = Connection {
        status: ConnectionStatus::Active,
        provider_user_id: Some(identity.account_id.clone()),
        time_zone: identity.time_zone.clone().or_else(|| existing.as_ref().and_then(|c| c.time_zone.clone())),
        tokens: Some(sealed),
        token_version: existing.as_ref().map_or(1, |c| c.token_version + 1),
        created_at: existing.as_ref().map_or(now, |c| c.created_at),
        next_sync_at: Some(now),
        ..Connection::new(state.user.clone(), provider, now)
    };
    match app.store.save_connection(&connection, existing.as_ref().map(|c| c.token_version)).await {
        Ok(()) => {}
        Err(StoreError::Conflict | StoreError::AlreadyExists(_)) => return fail("try_again"),
        Err(e) => return Err(ApiError::internal(e)),
    }

    let mut events = Vec::new();
    let old_status = existing.as_ref().map_or(ConnectionStatus::Disconnected, |c| c.status);
    if old_status != ConnectionStatus::Active {
        events.push(status_changed(&state.user, provider, old_status, ConnectionStatus::Active, "connected", "None."));
    }
    if let Some(legacy) = identity.legacy_account_id.as_deref() {
        events.extend(retire_legacy_fitbit(app, &state.user, legacy).await?);
    }
    let (start, end) = backfill_window(app, &state.user, now).await?;
    events.push(Event::SyncRequested(SyncRequested {
        user: state.user.clone(),
        provider,
        reason: SyncReason::Connect,
        start: Some(start),
        end: Some(end),
    }));
    if let Err(error) = app.engine.publisher.publish(&events).await {
        // The connection is stored; the scheduled sweep will backfill it.
        tracing::error!(%error, "callback: events not published");
    }
    tracing::info!(user = %state.user, provider = %provider, version = connection.token_version, "callback: connected");
    Ok(back(&state.return_to, "connected", provider.as_str(), provider))
}

fn has_scopes(client: &dyn StepProvider, tokens: &TokenSet) -> bool {
    let granted: Vec<&str> = tokens.scope.as_deref().unwrap_or("").split_whitespace().collect();
    client.required_scopes().iter().all(|s| granted.contains(s))
}

async fn revoke_quietly(client: &dyn StepProvider, tokens: &TokenSet) {
    if let Err(error) = client.revoke(tokens).await {
        tracing::warn!(%error, "revoke failed (best effort)");
    }
}

fn status_changed(
    user: &UserId,
    provider: Provider,
    old: ConnectionStatus,
    new: ConnectionStatus,
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

/// A person who had a legacy Fitbit connection and now connects the same Fitbit account
/// through Google: the old connection is retired (its history stays) and its account freed.
async fn retire_legacy_fitbit(app: &App, user: &UserId, legacy_id: &str) -> Result<Vec<Event>, ApiError> {
    let owner = app.store.provider_account_owner(Provider::Fitbit, legacy_id).await.map_err(ApiError::internal)?;
    if owner.as_ref() != Some(user) {
        return Ok(Vec::new());
    }
    let before = app.store.disconnect(user, Provider::Fitbit).await.map_err(ApiError::internal)?;
    app.store.release_provider_account(Provider::Fitbit, legacy_id, user).await.map_err(ApiError::internal)?;
    tracing::info!(user = %user, "legacy Fitbit connection retired: replaced by Google Health");
    Ok(before
        .filter(|c| c.status != ConnectionStatus::Disconnected)
        .map(|c| {
            status_changed(
                user,
                Provider::Fitbit,
                c.status,
                ConnectionStatus::Disconnected,
                "replaced_by_google_health",
                "None: Fitbit now syncs through Google.",
            )
        })
        .into_iter()
        .collect())
}

/// What a new connection pulls: the person's open challenge windows up to today, else the
/// last `backfill_days` days.
async fn backfill_window(app: &App, user: &UserId, now: jiff::Timestamp) -> Result<(LocalDate, LocalDate), ApiError> {
    // The person's zone is not known yet; a day of margin covers zones ahead of UTC.
    let today = local_today(now, &jiff::tz::TimeZone::UTC).add_days(1);
    let profile = app.store.load_user_days(user, &[]).await.map_err(ApiError::internal)?.profile;
    let open: Vec<_> = profile.memberships.values().filter(|m| !m.is_final(now) && m.start <= today).collect();
    let window = match (open.iter().map(|m| m.start).min(), open.iter().map(|m| m.end).max()) {
        (Some(start), Some(end)) => (start, end.min(today)),
        _ => (today.add_days(1 - app.config.backfill_days as i32), today),
    };
    Ok(window)
}

async fn disconnect(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let provider = raw.parse::<Provider>().map_err(|_| ApiError::NotFound(format!("provider {raw:?}")))?;
    let existing = app
        .store
        .get_connection(&user, provider)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("a {provider} connection")))?;
    if let (Some(client), Some(sealed)) = (app.providers.get(provider), existing.tokens.as_ref()) {
        match app.engine.cipher.decrypt(&user, provider, sealed) {
            Ok(tokens) => revoke_quietly(client.as_ref(), &tokens).await,
            Err(error) => tracing::warn!(%error, "disconnect: stored tokens unreadable; not revoked"),
        }
    }
    let before = app.store.disconnect(&user, provider).await.map_err(ApiError::internal)?;
    if let Some(account) = existing.provider_user_id.as_deref() {
        app.store.release_provider_account(provider, account, &user).await.map_err(ApiError::internal)?;
    }
    if let Some(before) = before.filter(|c| c.status != ConnectionStatus::Disconnected) {
        let event =
            status_changed(&user, provider, before.status, ConnectionStatus::Disconnected, "disconnected", "None.");
        if let Err(error) = app.engine.publisher.publish(&[event]).await {
            tracing::error!(%error, "disconnect: event not published");
        }
    }
    tracing::info!(user = %user, provider = %provider, "disconnected");
    Ok(empty(204))
}
