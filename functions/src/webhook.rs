//! `provider-webhook`: `GET|POST|HEAD /webhooks/{provider}`. Verifies each request on its raw
//! bytes before reading it, answers handshakes, and turns "new data" notices into
//! `SyncRequested` events, coalescing duplicates per person and day. Fast: the sync itself
//! runs in `sync-worker`.

use crate::app::App;
use crate::http::{ApiError, body_bytes, empty, header_pairs};
use lambda_http::{Body, Request, Response};
use std::collections::BTreeMap;
use std::time::Duration;
use stepsync::domain::{LocalDate, Provider, UserId};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{ConnectionStore, DataNotice, EphemeralStore, WebhookError, WebhookMessage};

/// Hard cap before any provider-specific check: nothing legitimate comes near it.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] =
    &[("GET", "/webhooks/{provider}"), ("POST", "/webhooks/{provider}"), ("HEAD", "/webhooks/{provider}")];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (req.method().as_str(), segments.as_slice()) {
        ("GET" | "HEAD" | "POST", ["webhooks", provider]) => webhook(app, &req, provider).await,
        _ => Err(ApiError::NotFound("route".into())),
    };
    result.unwrap_or_else(ApiError::into_response)
}

async fn webhook(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let provider = raw.parse::<Provider>().map_err(|_| ApiError::NotFound(format!("provider {raw:?}")))?;
    let client = app.providers.get(provider).ok_or_else(|| ApiError::NotFound(format!("webhooks for {provider}")))?;
    let body = body_bytes(req);
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(ApiError::TooLarge);
    }
    let message = client.verify_webhook(req.method().as_str(), &header_pairs(req), body).await;
    match message {
        Ok(WebhookMessage::Handshake { status, body }) => {
            tracing::info!(provider = %provider, status, "webhook handshake");
            let response =
                Response::builder().status(status).body(if body.is_empty() { Body::Empty } else { Body::Text(body) });
            Ok(response.unwrap_or_default())
        }
        Ok(WebhookMessage::Notices(notices)) => {
            let count = notices.len();
            let requested = request_syncs(app, provider, notices).await?;
            tracing::info!(provider = %provider, notices = count, syncs = requested, "webhook accepted");
            Ok(empty(204))
        }
        Err(error) => {
            // Never log the signature or the body: only what kind of refusal it was.
            tracing::warn!(provider = %provider, %error, "webhook refused");
            Err(match error {
                WebhookError::TooLarge => ApiError::TooLarge,
                WebhookError::Malformed(why) => ApiError::BadRequest(format!("malformed notification: {why}")),
                WebhookError::Unavailable(_) => ApiError::Unavailable("try again later".into()),
                WebhookError::MissingSignature
                | WebhookError::BadSignature
                | WebhookError::UnknownKey
                | WebhookError::Unauthorized => ApiError::Unauthenticated,
            })
        }
    }
}

/// The de-duplication key of one person's day at one provider. A notice claims it; the
/// worker gives it back when the sync starts, so a notice arriving after the fetch began
/// (a deletion, a late upload) asks for a sync of its own.
pub fn coalesce_key(provider: Provider, user: &UserId, date: LocalDate) -> String {
    format!("{provider}#{user}#{date}")
}

/// One `SyncRequested` per person over the dates nobody asked for within the coalescing
/// window. Notices for accounts no one connected are ignored.
async fn request_syncs(app: &App, provider: Provider, notices: Vec<DataNotice>) -> Result<usize, ApiError> {
    let now = app.engine.clock.now();
    let window = Duration::from_secs(u64::from(app.config.webhook_coalesce_seconds));
    let mut wanted: BTreeMap<UserId, Vec<LocalDate>> = BTreeMap::new();
    let mut claims = Vec::new();
    for notice in notices {
        let Some(user) =
            app.store.provider_account_owner(provider, &notice.account_id).await.map_err(ApiError::internal)?
        else {
            tracing::info!(provider = %provider, "notice for an account nobody connected: ignored");
            continue;
        };
        for date in notice.dates {
            let key = coalesce_key(provider, &user, date);
            if app.store.claim_once(&key, now, window).await.map_err(ApiError::internal)? {
                wanted.entry(user.clone()).or_default().push(date);
                claims.push(key);
            }
        }
    }
    let events: Vec<Event> = wanted
        .into_iter()
        .map(|(user, dates)| {
            Event::SyncRequested(SyncRequested {
                user,
                provider,
                reason: SyncReason::Webhook,
                start: dates.iter().min().copied(),
                end: dates.iter().max().copied(),
            })
        })
        .collect();
    if let Err(error) = app.engine.publisher.publish(&events).await {
        // Give the claims back so the provider's retry is not swallowed by the coalescing.
        for key in &claims {
            let _ = app.store.release_claim(key).await;
        }
        tracing::error!(%error, "webhook: sync requests not published");
        return Err(ApiError::Unavailable("try again later".into()));
    }
    Ok(events.len())
}
