//! The fake Misfit's routes: the token exchange, the profile and the daily activity summary,
//! behind a gate that counts every request and answers for a dead cloud.

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use jiff::civil::Date;
use serde_json::json;

use super::super::common::first;
use super::consent;
use super::faults::Dead;
use super::state::Shared;
use super::wire::{
    AUTHORIZE_PATH, CONSENT_PATH, DaySummary, PROFILE_ROUTE, Refusal, SUMMARY_ROUTE, TOKEN_PATH, USER_PATH_PREFIX,
    round_to,
};

/// Every route of the fake Misfit, the consent page's included; anything else is Misfit's 404.
pub(super) fn router(fake: Shared) -> Router {
    consent::routes()
        .route(TOKEN_PATH, post(token))
        .route(PROFILE_ROUTE, get(profile))
        .route(SUMMARY_ROUTE, get(summary))
        .fallback(|| async { Refusal { status: StatusCode::NOT_FOUND, message: "Not found".to_owned() } })
        .layer(middleware::from_fn_with_state(fake.clone(), gatekeeper))
        .with_state(fake)
}

fn kind_of(path: &str) -> &'static str {
    match path {
        AUTHORIZE_PATH => "authorize",
        CONSENT_PATH => "consent",
        TOKEN_PATH => "token",
        p if p.starts_with(USER_PATH_PREFIX) && p.ends_with("/profile") => "profile",
        p if p.starts_with(USER_PATH_PREFIX) && p.ends_with("/activity/summary") => "summary",
        _ => "other",
    }
}

/// Counts every request, then answers for a dead cloud before any handler runs.
async fn gatekeeper(State(fake): State<Shared>, request: Request, next: Next) -> Response {
    fake.count(kind_of(request.uri().path()));
    let dead = fake.lock().dead;
    match dead {
        Some(Dead::Gone) => retired(StatusCode::GONE),
        Some(Dead::NotFound) => retired(StatusCode::NOT_FOUND),
        Some(Dead::Refused) | None => next.run(request).await,
    }
}

fn retired(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or_default();
    let title = format!("{} {reason}", status.as_u16());
    (status, Html(format!("<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n")))
        .into_response()
}

async fn token(State(fake): State<Shared>, form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Response {
    if let Some(response) = fake.take_fault(()).await {
        return response;
    }
    let Ok(Form(fields)) = form else {
        return Refusal::bad_request("The body must be application/x-www-form-urlencoded").into_response();
    };
    match fake.lock().exchange(&fields) {
        Ok(token) => ([(header::CACHE_CONTROL, "no-store")], Json(token)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn profile(State(fake): State<Shared>, Path(user): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.take_fault(()).await {
        return response;
    }
    let shared = fake.lock();
    let user_id = match shared.bearer_user(&headers, &user) {
        Ok(user_id) => user_id,
        Err(refusal) => return refusal.into_response(),
    };
    let name = shared.people.get(&user_id).map(|p| p.name.clone()).unwrap_or_default();
    Json(json!({ "userId": user_id, "name": name })).into_response()
}

async fn summary(
    State(fake): State<Shared>,
    Path(user): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    if let Some(response) = fake.take_fault(()).await {
        return response;
    }
    let shared = fake.lock();
    let user_id = match shared.bearer_user(&headers, &user) {
        Ok(user_id) => user_id,
        Err(refusal) => return refusal.into_response(),
    };
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let (start, end) = match (query_date(&params, "start_date"), query_date(&params, "end_date")) {
        (Ok(start), Ok(end)) if start <= end => (start, end),
        (Ok(_), Ok(_)) => return Refusal::bad_request("start_date must not be after end_date").into_response(),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
    };
    let days: Vec<DaySummary> = shared
        .people
        .get(&user_id)
        .map(|p| p.steps.range(start..=end).map(|(date, steps)| DaySummary::new(*date, *steps)).collect())
        .unwrap_or_default();
    if first(&params, "detail") == Some("true") {
        return Json(json!({ "summary": days })).into_response();
    }
    // Without detail Misfit answers the range's totals as one object.
    let total = |f: fn(&DaySummary) -> f64| round_to(days.iter().map(f).sum(), 2);
    Json(json!({
        "points": total(|d| d.points),
        "steps": days.iter().map(|d| d.steps).sum::<u64>(),
        "calories": total(|d| d.calories),
        "activityCalories": total(|d| d.activity_calories),
        "distance": total(|d| d.distance),
    }))
    .into_response()
}

fn query_date(params: &[(String, String)], name: &str) -> Result<Date, Refusal> {
    let Some(raw) = first(params, name) else {
        return Err(Refusal::bad_request(&format!("Missing parameter: {name}")));
    };
    // Exactly YYYY-MM-DD: jiff would also read a date out of a longer datetime.
    raw.parse::<Date>()
        .ok()
        .filter(|_| raw.len() == 10)
        .ok_or_else(|| Refusal::bad_request(&format!("{name} must be a YYYY-MM-DD date")))
}
