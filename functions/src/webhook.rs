//! `provider-webhook`: `GET|POST|HEAD /webhooks/{provider}`. The intake service verifies each
//! request on its raw bytes before reading it, answers handshakes and turns notices into
//! `SyncRequested` events (`stepsync::services::intake`); this passes the request and answers.

use crate::app::App;
use crate::http::{self, ApiError, Params, Route, body_bytes, empty, header_pairs};
use lambda_http::{Body, Request, Response};
use stepsync::domain::Provider;
use stepsync::services::IntakeAnswer;

pub use stepsync::services::intake::MAX_WEBHOOK_BODY;

#[derive(Debug, Clone, Copy)]
struct Webhook;

const TABLE: [Route<Webhook>; 3] = [
    Route { method: "GET", path: "/webhooks/{provider}", op: Webhook },
    Route { method: "POST", path: "/webhooks/{provider}", op: Webhook },
    Route { method: "HEAD", path: "/webhooks/{provider}", op: Webhook },
];

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] = &http::paths(&TABLE);

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let result = match http::route(&TABLE, &req) {
        Ok((Webhook, params)) => webhook(app, &req, &params).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response)
}

async fn webhook(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let provider = params.provider()?;
    let query = req.uri().query().unwrap_or("");
    let answer = app
        .services
        .intake
        .receive_request(provider, req.method().as_str(), query, &header_pairs(req), body_bytes(req))
        .await?;
    Ok(match answer {
        IntakeAnswer::Handshake { status, body } => {
            let json = body.starts_with('{');
            let body = if body.is_empty() { Body::Empty } else { Body::Text(body) };
            let builder = Response::builder().status(status);
            let builder = if json { builder.header("content-type", "application/json") } else { builder };
            builder.body(body).unwrap_or_default()
        }
        // Garmin counts any answer but 200 as a failed ping, and sends it again.
        IntakeAnswer::Accepted { .. } if provider == Provider::Garmin => empty(200),
        IntakeAnswer::Accepted { .. } => empty(204),
    })
}
