//! `oauth`: connect, callback and disconnect for providers with OAuth (Google Health, Misfit).
//!
//! - `GET /v1/connections/{provider}/authorize` (JWT): 302 to the consent page; the state is
//!   bound to the browser by a cookie.
//! - `GET /oauth/{provider}/callback`: finishes connecting and sends the person back with
//!   `?connected=` or `?error=`.
//! - `DELETE /v1/connections/{provider}` (JWT): revokes, forgets the tokens, keeps history.
//!
//! The use cases live in `stepsync::services::connecting`; this parses and answers.

use crate::app::App;
use crate::http::{self, ApiError, Params, Route, caller, cookie, empty, query, redirect};
use lambda_http::{Body, Request, Response};
use stepsync::domain::{OAUTH_STATE_TTL, Provider};
use stepsync::services::connecting::CallbackQuery;

/// The cookie that ties a `state` to the browser that started the flow.
pub const STATE_COOKIE: &str = "stepsync_oauth_state";

#[derive(Debug, Clone, Copy)]
enum Op {
    Authorize,
    Callback,
    Disconnect,
}

const TABLE: [Route<Op>; 3] = [
    Route { method: "GET", path: "/v1/connections/{provider}/authorize", op: Op::Authorize },
    Route { method: "GET", path: "/oauth/{provider}/callback", op: Op::Callback },
    Route { method: "DELETE", path: "/v1/connections/{provider}", op: Op::Disconnect },
];

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] = &http::paths(&TABLE);

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let result = match http::route(&TABLE, &req) {
        Ok((Op::Authorize, params)) => authorize(app, &req, &params).await,
        Ok((Op::Callback, params)) => callback(app, &req, &params).await,
        Ok((Op::Disconnect, params)) => disconnect(app, &req, &params).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn state_cookie(provider: Provider, value: &str, max_age: u64) -> String {
    format!(
        "{STATE_COOKIE}={value}; Path=/oauth/{provider}/callback; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    )
}

async fn authorize(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let provider = params.provider()?;
    let start = app.services.connecting.authorize(&user, provider, query(req, "return_to")).await?;
    let cookie = state_cookie(provider, &start.state_id, OAUTH_STATE_TTL.as_secs());
    Ok(redirect(&start.location, Some(&cookie)))
}

async fn callback(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let provider = params.provider()?;
    let browser_state = cookie(req, STATE_COOKIE);
    let query = CallbackQuery {
        state: query(req, "state"),
        cookie: browser_state.as_deref(),
        code: query(req, "code"),
        error: query(req, "error"),
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
