//! The fake Polar's routes: the token endpoint, user registration and deregistration, the
//! non-transactional activity summaries, and the client's one webhook; behind a gate that
//! counts every request and holds the client to its rate limits.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

use super::super::common::{first, http_url};
use super::consent;
use super::faults::FaultTarget;
use super::state::{Registration, Shared, Webhook};
use super::wire::{
    ACTIVITIES_PATH, ACTIVITY_DAY_ROUTE, AUTHORIZE_PATH, CONSENT_PATH, EVENT_TYPES, MAX_AGE_DAYS, MAX_RANGE_DAYS,
    Refusal, TOKEN_PATH, USER_ROUTE, USERS_PATH, WEBHOOK_ACTIVATE_PATH, WEBHOOK_DEACTIVATE_PATH, WEBHOOK_ROUTE,
    WEBHOOKS_PATH, activity_summary, bad_request, conflict, consents_missing, not_found, unauthorized, user_json,
};

/// Every route of the fake Polar, the consent page's included; anything else is a 404.
pub(super) fn router(fake: Shared) -> Router {
    consent::routes()
        .route(TOKEN_PATH, post(token))
        .route(USERS_PATH, post(register))
        .route(USER_ROUTE, get(get_user).delete(deregister))
        .route(ACTIVITIES_PATH, get(activities))
        .route(ACTIVITY_DAY_ROUTE, get(activity_day))
        .route(WEBHOOKS_PATH, get(list_webhooks).post(create_webhook))
        .route(WEBHOOK_ACTIVATE_PATH, post(activate_webhook))
        .route(WEBHOOK_DEACTIVATE_PATH, post(deactivate_webhook))
        .route(WEBHOOK_ROUTE, axum::routing::patch(update_webhook).delete(delete_webhook))
        .fallback(|| async { not_found("Not found").into_response() })
        .layer(middleware::from_fn_with_state(fake.clone(), gatekeeper))
        .with_state(fake)
}

/// The counter a request counts under, and whether it is one of the client's (rate-limited)
/// requests: the consent page is the person's browser, not the client.
fn kind_of(method: &Method, path: &str) -> (&'static str, bool) {
    let kind = match (method, path) {
        (_, AUTHORIZE_PATH) => return ("authorize", false),
        (_, CONSENT_PATH) => return ("consent", false),
        (_, TOKEN_PATH) => "token",
        (&Method::POST, USERS_PATH) => "register",
        (_, ACTIVITIES_PATH) => "activities",
        (_, p) if p.starts_with("/v3/users/activities/") => "activity_day",
        (&Method::DELETE, p) if p.starts_with("/v3/users/") => "deregister",
        (&Method::GET, p) if p.starts_with("/v3/users/") => "user_get",
        (&Method::POST, WEBHOOKS_PATH) => "webhook_create",
        (_, WEBHOOKS_PATH) => "webhook_list",
        (_, WEBHOOK_ACTIVATE_PATH) => "webhook_activate",
        (_, WEBHOOK_DEACTIVATE_PATH) => "webhook_deactivate",
        (&Method::PATCH, p) if p.starts_with("/v3/webhooks/") => "webhook_update",
        (&Method::DELETE, p) if p.starts_with("/v3/webhooks/") => "webhook_delete",
        _ => "other",
    };
    (kind, true)
}

/// Counts every request; records the client's in its log and answers 429 over a limit.
async fn gatekeeper(State(fake): State<Shared>, request: Request, next: Next) -> Response {
    let (kind, rate_limited) = kind_of(request.method(), request.uri().path());
    fake.count(kind);
    if rate_limited {
        let over = fake.lock().record_request();
        if let Some(refusal) = over {
            return refusal.into_response();
        }
    }
    next.run(request).await
}

fn answer(result: Result<Response, Refusal>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

// ---------------------------------------------------------------------------------------------
// OAuth

async fn token(
    State(fake): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Token).await {
        return response;
    }
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    let mut shared = fake.lock();
    answer(shared.token(&headers, &fields).map(|token| Json(token).into_response()))
}

// ---------------------------------------------------------------------------------------------
// Users

/// `POST /v3/users` `{"member-id": ..}`: registers the token's person to the client. 409 when
/// already registered, or when another person holds the member id.
async fn register(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Api).await {
        return response;
    }
    let mut shared = fake.lock();
    let result = (|| {
        let user_id = shared.bearer_user(&headers)?;
        let member_id = match serde_json::from_slice::<Value>(&body) {
            Ok(body) => body.get("member-id").and_then(Value::as_str).map(str::to_owned),
            Err(_) => None,
        };
        let member_id = member_id.filter(|m| !m.is_empty()).ok_or_else(|| bad_request("member-id is required"))?;
        if !shared.people.get(&user_id).is_some_and(|p| p.consents_accepted) {
            return Err(consents_missing());
        }
        if shared.registrations.contains_key(&user_id) {
            return Err(conflict("User already registered to partner"));
        }
        if shared.registrations.values().any(|r| r.member_id == member_id) {
            return Err(conflict("Duplicated member-id"));
        }
        let registered_at = Timestamp::now();
        shared.registrations.insert(user_id, Registration { member_id: member_id.clone(), registered_at });
        Ok(Json(user_json(user_id, &member_id, registered_at)).into_response())
    })();
    answer(result)
}

/// The path's user id, which must be the token's own person's.
fn own_user(shared: &super::state::PolarState, headers: &HeaderMap, raw: &str) -> Result<u64, Refusal> {
    let user_id = shared.bearer_user(headers)?;
    if raw.parse::<u64>().ok() != Some(user_id) {
        return Err(super::wire::error(StatusCode::FORBIDDEN, "FORBIDDEN", "Not your user"));
    }
    Ok(user_id)
}

async fn get_user(State(fake): State<Shared>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let result = own_user(&shared, &headers, &raw).and_then(|user_id| match shared.registrations.get(&user_id) {
        Some(r) => Ok(Json(user_json(user_id, &r.member_id, r.registered_at)).into_response()),
        None => Err(Refusal::NoContent),
    });
    answer(result)
}

/// `DELETE /v3/users/{id}`: deregistered, and the person's tokens revoked.
async fn deregister(State(fake): State<Shared>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Api).await {
        return response;
    }
    let mut shared = fake.lock();
    let result = own_user(&shared, &headers, &raw).and_then(|user_id| {
        shared.registrations.remove(&user_id).ok_or_else(|| not_found("User not registered to this client"))?;
        shared.revoke_tokens(user_id);
        Ok(StatusCode::NO_CONTENT.into_response())
    });
    answer(result)
}

// ---------------------------------------------------------------------------------------------
// Activity summaries

/// Polar's "today": UTC's (AccessLink keeps no zones).
fn today() -> Date {
    Timestamp::now().to_zoned_datetime(TimeZone::UTC).date()
}

fn parse_date(raw: &str) -> Result<Date, Refusal> {
    raw.parse::<Date>().map_err(|_| bad_request(format!("Invalid date {raw:?}: expected YYYY-MM-DD")))
}

fn check_age(date: Date) -> Result<(), Refusal> {
    let oldest = today().checked_sub(MAX_AGE_DAYS.days()).unwrap_or(date);
    if date < oldest {
        return Err(bad_request("Invalid or too old date. Cannot be older than 365 days."));
    }
    Ok(())
}

/// `GET /v3/users/activities?from=..&to=..`: the summaries of the days with data, both dates
/// included; without `from`, the last 28 days; at most 28 days, none older than 365.
async fn activities(
    State(fake): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let result = (|| {
        let user_id = shared.reader(&headers)?;
        let to = first(&params, "to").map(parse_date).transpose()?.unwrap_or_else(today);
        let from = match first(&params, "from") {
            Some(raw) => parse_date(raw)?,
            None => to.checked_sub((MAX_RANGE_DAYS - 1).days()).unwrap_or(to),
        };
        check_age(from)?;
        if to < from {
            return Err(bad_request("to is before from"));
        }
        let span = from.until(to).ok().map_or(i64::MAX, |s| i64::from(s.get_days()));
        if span >= MAX_RANGE_DAYS {
            return Err(bad_request("The maximum range between from and to is 28 days"));
        }
        let steps = &shared.people[&user_id].steps;
        let summaries: Vec<Value> = steps.range(from..=to).map(|(day, steps)| activity_summary(*day, *steps)).collect();
        Ok(Json(Value::Array(summaries)).into_response())
    })();
    answer(result)
}

/// `GET /v3/users/activities/{date}`: the day's summary, or 204.
async fn activity_day(State(fake): State<Shared>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let result = (|| {
        let user_id = shared.reader(&headers)?;
        let date = parse_date(&raw)?;
        check_age(date)?;
        match shared.people[&user_id].steps.get(&date) {
            Some(steps) => Ok(Json(activity_summary(date, *steps)).into_response()),
            None => Err(Refusal::NoContent),
        }
    })();
    answer(result)
}

// ---------------------------------------------------------------------------------------------
// The client's webhook

pub(super) fn webhook_info(webhook: &Webhook) -> Value {
    json!({ "id": webhook.id, "events": webhook.events, "url": webhook.url, "active": webhook.active })
}

/// The client's credentials, as HTTP Basic; AccessLink's 401 otherwise.
fn client_auth(fake: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    fake.lock().authenticate_client(headers).map_err(|_| unauthorized())
}

/// `events` and `url` of a create or update body (`required` for a create).
fn webhook_fields(body: &Bytes, required: bool) -> Result<(Option<Vec<String>>, Option<String>), Refusal> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad_request("The body is not a JSON object"));
    };
    let events = match body.get("events") {
        None | Some(Value::Null) if !required => None,
        Some(Value::Array(events)) if !events.is_empty() => {
            let events: Option<Vec<String>> =
                events.iter().map(|e| e.as_str().filter(|e| EVENT_TYPES.contains(e)).map(str::to_owned)).collect();
            Some(events.ok_or_else(|| bad_request("Unknown event type"))?)
        }
        _ => return Err(bad_request("events is required")),
    };
    let url = match body.get("url") {
        None | Some(Value::Null) if !required => None,
        Some(Value::String(url)) if http_url(url).is_some() => Some(url.clone()),
        _ => return Err(bad_request("url must be an http(s) URL")),
    };
    Ok((events, url))
}

/// `POST /v3/webhooks`: one per client (409 for a second); the URL must answer the PING, signed
/// with the new key, with 200; the answer is the only one that shows the key.
async fn create_webhook(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let parsed = (|| {
        client_auth(&fake, &headers)?;
        let (events, url) = webhook_fields(&body, true)?;
        if fake.lock().webhook.is_some() {
            return Err(conflict("Webhook already exists"));
        }
        Ok((events.unwrap_or_default(), url.unwrap_or_default()))
    })();
    let (events, url) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    let key = uuid_like();
    let sender = fake.lock().sender.clone();
    if let Err(why) = sender.ping(&url, &key).await {
        return bad_request(format!("Webhook cannot be created: {why}")).into_response();
    }
    let mut shared = fake.lock();
    if shared.webhook.is_some() {
        return conflict("Webhook already exists").into_response();
    }
    let webhook = Webhook { id: uuid_like()[..6].to_owned(), events, url, active: true, signature_secret_key: key };
    let created = json!({ "data": {
        "id": webhook.id, "events": webhook.events, "url": webhook.url,
        "signature_secret_key": webhook.signature_secret_key,
    }});
    shared.webhook = Some(webhook);
    (StatusCode::CREATED, Json(created)).into_response()
}

/// A UUID-shaped random key, as Polar's `signature_secret_key`s are.
pub(super) fn uuid_like() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

async fn list_webhooks(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    if let Err(refusal) = client_auth(&fake, &headers) {
        return refusal.into_response();
    }
    let data: Vec<Value> = fake.lock().webhook.iter().map(webhook_info).collect();
    Json(json!({ "data": data })).into_response()
}

/// `POST /v3/webhooks/activate`: 204 without a webhook; otherwise it is switched on if its
/// URL answers the PING with 200 (400 if not).
async fn activate_webhook(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    for target in [FaultTarget::Webhook, FaultTarget::WebhookActivation] {
        if let Some(response) = fake.take_fault(target).await {
            return response;
        }
    }
    if let Err(refusal) = client_auth(&fake, &headers) {
        return refusal.into_response();
    }
    let (current, sender) = {
        let shared = fake.lock();
        (shared.webhook.clone(), shared.sender.clone())
    };
    let Some(webhook) = current else { return StatusCode::NO_CONTENT.into_response() };
    if let Err(why) = sender.ping(&webhook.url, &webhook.signature_secret_key).await {
        return bad_request(format!("Webhook cannot be activated: {why}")).into_response();
    }
    match fake.lock().webhook.as_mut() {
        Some(webhook) => {
            webhook.active = true;
            StatusCode::OK.into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn deactivate_webhook(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    if let Err(refusal) = client_auth(&fake, &headers) {
        return refusal.into_response();
    }
    match fake.lock().webhook.as_mut() {
        Some(webhook) => {
            webhook.active = false;
            StatusCode::OK.into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `PATCH /v3/webhooks/{id}`: new events and/or URL; a new URL must answer the PING first.
async fn update_webhook(
    State(fake): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let parsed = (|| {
        client_auth(&fake, &headers)?;
        let fields = webhook_fields(&body, false)?;
        let current =
            fake.lock().webhook.clone().filter(|w| w.id == id).ok_or_else(|| not_found("Webhook not found"))?;
        Ok::<_, Refusal>((fields, current))
    })();
    let ((events, url), current) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(url) = url.as_ref().filter(|url| **url != current.url) {
        let sender = fake.lock().sender.clone();
        if let Err(why) = sender.ping(url, &current.signature_secret_key).await {
            return bad_request(format!("Webhook cannot be updated: {why}")).into_response();
        }
    }
    let mut shared = fake.lock();
    let Some(webhook) = shared.webhook.as_mut().filter(|w| w.id == id) else {
        return not_found("Webhook not found").into_response();
    };
    if let Some(events) = events {
        webhook.events = events;
    }
    if let Some(url) = url {
        webhook.url = url;
    }
    Json(json!({ "data": [webhook_info(webhook)] })).into_response()
}

async fn delete_webhook(State(fake): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    if let Err(refusal) = client_auth(&fake, &headers) {
        return refusal.into_response();
    }
    let mut shared = fake.lock();
    if shared.webhook.as_ref().is_none_or(|w| w.id != id) {
        return not_found("Webhook not found").into_response();
    }
    shared.webhook = None;
    StatusCode::NO_CONTENT.into_response()
}
