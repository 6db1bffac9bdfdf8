//! The fake Oura's routes: the token and revoke endpoints, `personal_info` and `daily_activity`,
//! and the webhook subscriptions; behind a gate that counts every request and holds the app to
//! its rate limits.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

use super::super::common::{first, http_url, random_token};
use super::consent;
use super::faults::FaultTarget;
use super::notifications::Verification;
use super::state::{Shared, Subscription};
use super::wire::{
    AUTHORIZE_PATH, CONSENT_PATH, DAILY_ACTIVITY_PATH, DATA_TYPES, EventType, PERSONAL_INFO_PATH, REVOKE_PATH, Refusal,
    SCOPE_DAILY, SCOPE_EMAIL, SCOPE_PERSONAL, SUBSCRIPTION_ID_ROUTE, SUBSCRIPTION_PATH, SUBSCRIPTION_RENEW_PREFIX,
    SUBSCRIPTION_RENEW_ROUTE, TOKEN_PATH, daily_activity_document, day_start, decode_next_token, encode_next_token,
    membership_lapsed, missing_scope, not_found, problem, utc_time, validation,
};

/// Every route of the fake Oura, the consent page's included; anything else is a 404.
pub(super) fn router(fake: Shared) -> Router {
    consent::routes()
        .route(TOKEN_PATH, post(token))
        .route(REVOKE_PATH, get(revoke).post(revoke))
        .route(PERSONAL_INFO_PATH, get(personal_info))
        .route(DAILY_ACTIVITY_PATH, get(daily_activity))
        .route(SUBSCRIPTION_PATH, get(list_subscriptions).post(create_subscription))
        .route(SUBSCRIPTION_ID_ROUTE, get(get_subscription).put(update_subscription).delete(delete_subscription))
        .route(SUBSCRIPTION_RENEW_ROUTE, put(renew_subscription))
        .fallback(|| async { not_found() })
        .layer(middleware::from_fn_with_state(fake.clone(), gatekeeper))
        .with_state(fake)
}

/// The counter a request counts under, and whether it is one of the app's (rate-limited)
/// requests: the consent page is the person's browser, not the app.
fn kind_of(method: &Method, path: &str) -> (&'static str, bool) {
    let kind = match (method, path) {
        (_, AUTHORIZE_PATH) => return ("authorize", false),
        (_, CONSENT_PATH) => return ("consent", false),
        (_, TOKEN_PATH) => "token",
        (_, REVOKE_PATH) => "revoke",
        (_, PERSONAL_INFO_PATH) => "personal_info",
        (_, DAILY_ACTIVITY_PATH) => "daily_activity",
        (&Method::POST, SUBSCRIPTION_PATH) => "subscription_create",
        (_, SUBSCRIPTION_PATH) => "subscription_list",
        (_, p) if p.starts_with(SUBSCRIPTION_RENEW_PREFIX) => "subscription_renew",
        (&Method::GET, p) if p.starts_with(SUBSCRIPTION_PATH) => "subscription_get",
        (&Method::PUT, p) if p.starts_with(SUBSCRIPTION_PATH) => "subscription_update",
        (&Method::DELETE, p) if p.starts_with(SUBSCRIPTION_PATH) => "subscription_delete",
        _ => "other",
    };
    (kind, true)
}

/// Counts every request; records the app's in its per-minute log and answers 429 over a limit.
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
    answer(shared.token(&headers, &fields))
}

/// `GET /oauth/revoke?access_token=..`: 200, and the token's grant dies. An unknown token gets
/// 200 too (revoking is idempotent).
async fn revoke(State(fake): State<Shared>, query: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Token).await {
        return response;
    }
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let Some(token) = first(&params, "access_token").filter(|t| !t.is_empty()) else {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "Missing access_token.").into_response();
    };
    fake.lock().revoke(token);
    StatusCode::OK.into_response()
}

// ---------------------------------------------------------------------------------------------
// The user collection

async fn personal_info(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let grant = match shared.bearer_grant(&headers) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(person) = shared.people.get(&grant.user_id) else {
        return not_found().into_response();
    };
    if !person.membership_active {
        return membership_lapsed().into_response();
    }
    let personal = grant.scopes.iter().any(|s| s == SCOPE_PERSONAL);
    let email = grant.scopes.iter().any(|s| s == SCOPE_EMAIL);
    // Fields the grant does not cover are null, as Oura's model allows every one of them to be.
    Json(json!({
        "id": grant.user_id,
        "age": personal.then_some(person.age),
        "weight": personal.then_some(person.weight),
        "height": personal.then_some(person.height),
        "biological_sex": personal.then_some(person.biological_sex),
        "email": email.then(|| person.email.clone()),
    }))
    .into_response()
}

/// A `start_date` or `end_date` as Oura takes them: a date, or a date-time.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Date(Date),
    At(Timestamp),
    Civil(DateTime),
}

impl Bound {
    fn parse(name: &str, raw: &str) -> Result<Self, Refusal> {
        if raw.len() == 10 {
            if let Ok(date) = raw.parse::<Date>() {
                return Ok(Bound::Date(date));
            }
        } else if let Ok(at) = raw.parse::<Timestamp>() {
            return Ok(Bound::At(at));
        } else if let Ok(civil) = raw.parse::<DateTime>() {
            return Ok(Bound::Civil(civil));
        }
        Err(validation(&["query", name], "Input should be a valid datetime or date"))
    }

    /// The instant in the person's zone (a date is its midnight).
    fn instant(self, zone: &TimeZone) -> Option<Timestamp> {
        match self {
            Bound::Date(date) => date.to_zoned_datetime(zone.clone()).ok().map(|z| z.timestamp()),
            Bound::Civil(civil) => civil.to_zoned_datetime(zone.clone()).ok().map(|z| z.timestamp()),
            Bound::At(at) => Some(at),
        }
    }
}

async fn daily_activity(
    State(fake): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let grant = match shared.bearer_grant(&headers) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    if !grant.scopes.iter().any(|s| s == SCOPE_DAILY) {
        return missing_scope(SCOPE_DAILY).into_response();
    }
    let Some(person) = shared.people.get(&grant.user_id) else {
        return not_found().into_response();
    };
    if !person.membership_active {
        return membership_lapsed().into_response();
    }
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let bound = |name: &str| first(&params, name).filter(|v| !v.is_empty()).map(|v| Bound::parse(name, v)).transpose();
    let (start, end) = match (bound("start_date"), bound("end_date")) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
    };
    let zone = &person.time_zone;
    // Without dates: today (in the person's zone) and the day before.
    let today = Timestamp::now().to_zoned_datetime(zone.clone()).date();
    let end = end.unwrap_or(Bound::Date(today.checked_add(1.day()).unwrap_or(today)));
    let start = start.unwrap_or(match end {
        Bound::Date(d) => Bound::Date(d.checked_sub(2.days()).unwrap_or(d)),
        other => other,
    });
    let (Some(from), Some(mut until)) = (start.instant(zone), end.instant(zone)) else {
        return validation(&["query", "start_date"], "Input should be a valid datetime or date").into_response();
    };
    if from > until {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "Start date is greater than end date.").into_response();
    }
    // A date-only end_date is midnight: the end day's document (timestamped 04:00) falls outside,
    // as observed against Oura; `set_end_date_inclusive(true)` makes it the whole day instead.
    let end_inclusive = match end {
        Bound::Date(d) if shared.end_date_inclusive => {
            until = d.tomorrow().ok().and_then(|t| Bound::Date(t).instant(zone)).unwrap_or(until);
            false
        }
        Bound::Date(_) => false,
        _ => true,
    };
    let days: Vec<(Date, u64)> = person
        .steps
        .iter()
        .filter(|(day, _)| {
            day_start(**day, zone).is_some_and(|ts| ts >= from && if end_inclusive { ts <= until } else { ts < until })
        })
        .map(|(d, s)| (*d, *s))
        .collect();
    let bound_to = format!("{start:?}/{end:?}");
    let offset = match first(&params, "next_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match decode_next_token(token, &bound_to) {
            Some(offset) if offset <= days.len() => offset,
            _ => return problem(StatusCode::BAD_REQUEST, "Bad Request", "Invalid next_token.").into_response(),
        },
    };
    let stop = days.len().min(offset + shared.page_size);
    let data: Vec<Value> =
        days[offset..stop].iter().map(|(d, s)| daily_activity_document(&grant.user_id, *d, *s, zone)).collect();
    let next_token = (stop < days.len()).then(|| encode_next_token(stop, &bound_to));
    Json(json!({ "data": data, "next_token": next_token })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Webhook subscriptions

pub(super) fn subscription_json(subscription: &Subscription) -> Value {
    json!({
        "id": subscription.id,
        "callback_url": subscription.callback_url,
        "event_type": subscription.event_type.as_str(),
        "data_type": subscription.data_type,
        "expiration_time": utc_time(subscription.expiration_time),
    })
}

/// The JSON object of a request body, or FastAPI's 422.
fn json_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(validation(&["body"], "Input should be a valid dictionary or object")),
        Err(e) => Err(validation(&["body"], format!("JSON decode error: {e}"))),
    }
}

/// A string field: required or optional.
fn string_field(body: &serde_json::Map<String, Value>, name: &str, required: bool) -> Result<Option<String>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(validation(&["body", name], "Field required")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(validation(&["body", name], "Input should be a valid string")),
    }
}

fn callback_field(body: &serde_json::Map<String, Value>, required: bool) -> Result<Option<String>, Refusal> {
    let url = string_field(body, "callback_url", required)?;
    if url.as_deref().is_some_and(|url| http_url(url).is_none()) {
        return Err(validation(&["body", "callback_url"], "Input should be a valid URL"));
    }
    Ok(url)
}

fn event_type_field(body: &serde_json::Map<String, Value>, required: bool) -> Result<Option<EventType>, Refusal> {
    string_field(body, "event_type", required)?
        .map(|raw| {
            EventType::parse(&raw)
                .ok_or_else(|| validation(&["body", "event_type"], "Input should be 'create', 'update' or 'delete'"))
        })
        .transpose()
}

fn data_type_field(body: &serde_json::Map<String, Value>, required: bool) -> Result<Option<String>, Refusal> {
    let data_type = string_field(body, "data_type", required)?;
    if data_type.as_deref().is_some_and(|raw| !DATA_TYPES.contains(&raw)) {
        return Err(validation(&["body", "data_type"], format!("Input should be one of {DATA_TYPES:?}")));
    }
    Ok(data_type)
}

fn verification_failed(why: &str) -> Refusal {
    problem(StatusCode::BAD_REQUEST, "Bad Request", format!("Webhook verification failed: {why}"))
}

async fn create_subscription(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let parsed = (|| {
        fake.lock().webhook_client(&headers)?;
        let body = json_body(&body)?;
        let callback_url = callback_field(&body, true)?.unwrap_or_default();
        let verification_token = string_field(&body, "verification_token", true)?.unwrap_or_default();
        let event_type = event_type_field(&body, true)?.unwrap_or(EventType::Create);
        let data_type = data_type_field(&body, true)?.unwrap_or_default();
        Ok::<_, Refusal>((callback_url, verification_token, event_type, data_type))
    })();
    let (callback_url, verification_token, event_type, data_type) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    let sender = fake.lock().sender.clone();
    if let Verification::Failed(why) = sender.verify(&callback_url, &verification_token).await {
        return verification_failed(&why).into_response();
    }
    let mut shared = fake.lock();
    let subscription = Subscription {
        id: random_token("fake-oura-sub-"),
        callback_url,
        verification_token,
        event_type,
        data_type,
        expiration_time: shared.new_expiration(),
    };
    shared.subscriptions.push(subscription.clone());
    (StatusCode::CREATED, Json(subscription_json(&subscription))).into_response()
}

async fn list_subscriptions(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let shared = fake.lock();
    if let Err(refusal) = shared.webhook_client(&headers) {
        return refusal.into_response();
    }
    Json(Value::Array(shared.subscriptions.iter().map(subscription_json).collect())).into_response()
}

async fn get_subscription(State(fake): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let mut shared = fake.lock();
    if let Err(refusal) = shared.webhook_client(&headers) {
        return refusal.into_response();
    }
    match shared.subscription_mut(&id) {
        Some(subscription) => Json(subscription_json(subscription)).into_response(),
        None => not_found().into_response(),
    }
}

/// `PUT /v2/webhook/subscription/{id}`: `verification_token` and any of `callback_url`,
/// `event_type`, `data_type`; a new callback must pass the verification GET again.
async fn update_subscription(
    State(fake): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let parsed = (|| {
        let mut shared = fake.lock();
        shared.webhook_client(&headers)?;
        let body = json_body(&body)?;
        let verification_token = string_field(&body, "verification_token", true)?.unwrap_or_default();
        let callback_url = callback_field(&body, false)?;
        let event_type = event_type_field(&body, false)?;
        let data_type = data_type_field(&body, false)?;
        let current = shared.subscription_mut(&id).ok_or_else(not_found)?.callback_url.clone();
        Ok::<_, Refusal>((verification_token, callback_url, event_type, data_type, current))
    })();
    let (verification_token, callback_url, event_type, data_type, current) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(url) = callback_url.as_ref().filter(|url| **url != current) {
        let sender = fake.lock().sender.clone();
        if let Verification::Failed(why) = sender.verify(url, &verification_token).await {
            return verification_failed(&why).into_response();
        }
    }
    let mut shared = fake.lock();
    let Some(subscription) = shared.subscription_mut(&id) else {
        return not_found().into_response();
    };
    subscription.verification_token = verification_token;
    if let Some(url) = callback_url {
        subscription.callback_url = url;
    }
    if let Some(event_type) = event_type {
        subscription.event_type = event_type;
    }
    if let Some(data_type) = data_type {
        subscription.data_type = data_type;
    }
    Json(subscription_json(subscription)).into_response()
}

async fn renew_subscription(State(fake): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let mut shared = fake.lock();
    if let Err(refusal) = shared.webhook_client(&headers) {
        return refusal.into_response();
    }
    let expiration_time = shared.new_expiration();
    match shared.subscription_mut(&id) {
        Some(subscription) => {
            subscription.expiration_time = expiration_time;
            Json(subscription_json(subscription)).into_response()
        }
        None => not_found().into_response(),
    }
}

async fn delete_subscription(State(fake): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(FaultTarget::Webhook).await {
        return response;
    }
    let mut shared = fake.lock();
    if let Err(refusal) = shared.webhook_client(&headers) {
        return refusal.into_response();
    }
    let before = shared.subscriptions.len();
    shared.subscriptions.retain(|s| s.id != id);
    if shared.subscriptions.len() == before {
        return not_found().into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}
