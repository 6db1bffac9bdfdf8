//! `oauth`: connect, callback and disconnect for providers with OAuth (Google Health, Misfit).
//!
//! - `POST /v1/connections/{provider}/authorize` (JWT): a one-time start link for the app to
//!   open in a browser (a navigation cannot carry the app's token).
//! - `GET /oauth/{provider}/start?ticket=`: uses the ticket, binds the consent to this browser
//!   with the state cookie and redirects to the consent page.
//! - `GET /oauth/{provider}/callback`: finishes connecting and sends the person back with
//!   `?connected=` or `?error=`.
//! - `DELETE /v1/connections/{provider}` (JWT): revokes, forgets the tokens, keeps history.
//! - `DELETE /v1/people/{user}` (JWT: the person or an admin): erases the person (grants
//!   revoked, leaderboard rows removed, every item of theirs deleted).
//!
//! The use cases live in `stepsync::services::connecting`; this parses and answers.

use crate::app::App;
use crate::http::{self, ApiError, Params, Route, caller, cookie, empty, json, optional_json_body, query, redirect};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use stepsync::domain::{OAUTH_STATE_TTL, Provider};
use stepsync::services::connecting::CallbackQuery;

/// The cookie that ties a `state` to the browser that started the flow.
pub const STATE_COOKIE: &str = "stepsync_oauth_state";

#[derive(Debug, Clone, Copy)]
enum Op {
    Authorize,
    Start,
    Callback,
    Disconnect,
    Erase,
}

const TABLE: [Route<Op>; 5] = [
    Route { method: "POST", path: "/v1/connections/{provider}/authorize", op: Op::Authorize },
    Route { method: "GET", path: "/oauth/{provider}/start", op: Op::Start },
    Route { method: "GET", path: "/oauth/{provider}/callback", op: Op::Callback },
    Route { method: "DELETE", path: "/v1/connections/{provider}", op: Op::Disconnect },
    Route { method: "DELETE", path: "/v1/people/{user}", op: Op::Erase },
];

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] = &http::paths(&TABLE);

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let result = match http::route(&TABLE, &req) {
        Ok((Op::Authorize, params)) => authorize(app, &req, &params).await,
        Ok((Op::Start, params)) => start(app, &req, &params).await,
        Ok((Op::Callback, params)) => callback(app, &req, &params).await,
        Ok((Op::Disconnect, params)) => disconnect(app, &req, &params).await,
        Ok((Op::Erase, params)) => erase(app, &req, &params).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn state_cookie(provider: Provider, value: &str, max_age: u64) -> String {
    format!(
        "{STATE_COOKIE}={value}; Path=/oauth/{provider}/callback; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeBody {
    return_to: Option<String>,
}

async fn authorize(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let provider = params.provider()?;
    let body: AuthorizeBody = optional_json_body(req)?;
    let link = app.services.connecting.authorize(&user, provider, body.return_to.as_deref()).await?;
    let mut answer = json(200, &serde_json::json!({"authorize_url": link.url, "expires_at": link.expires_at}));
    // The link is a credential for a minute: no cache may keep it.
    answer.headers_mut().insert("cache-control", http::NO_STORE.clone());
    Ok(answer)
}

async fn start(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let provider = params.provider()?;
    let consent = app.services.connecting.start(provider, query(req, "ticket")).await?;
    let cookie = state_cookie(provider, &consent.state_id, OAUTH_STATE_TTL.as_secs());
    Ok(redirect(&consent.location, Some(&cookie)))
}

async fn callback(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let provider = params.provider()?;
    let browser_state = cookie(req, STATE_COOKIE);
    let query = CallbackQuery {
        state: query(req, "state"),
        cookie: browser_state.as_deref(),
        code: query(req, "code"),
        error: query(req, "error"),
        iss: query(req, "iss"),
    };
    let back = app.services.connecting.callback(provider, query).await?;
    let separator = if back.return_to.contains('?') { '&' } else { '?' };
    let location = format!("{}{separator}{}={}", back.return_to, back.key, back.value);
    Ok(redirect(&location, Some(&state_cookie(provider, "", 0))))
}

async fn disconnect(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let provider = params.provider()?;
    app.services.connecting.disconnect(&user, provider).await?;
    Ok(empty(204))
}

async fn erase(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let caller = http::caller_with_role(req)?;
    let raw = params.get("user").ok_or_else(|| ApiError::NotFound("route".into()))?;
    let person = stepsync::domain::UserId::parse(raw)?;
    let report = app.services.erasure().erase(&caller.user, caller.admin, &person).await?;
    Ok(json(200, &report))
}
