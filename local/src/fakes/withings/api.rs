//! The fake Withings' services: `/v2/oauth2` (tokens and revoke), `/v2/signature` (nonces),
//! `/v2/measure` (`getactivity`) and `/notify`. Each takes its parameters from the form body
//! (or the query string), picks what to do by `action`, and answers in Withings' envelope
//! with HTTP 200; every call counts against the app's 120 requests a minute.

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::civil::Date;
use serde_json::{Value, json};

use super::super::common::{first, http_url};
use super::consent;
use super::faults::FaultTarget;
use super::state::{Shared, Subscription};
use super::wire::{
    ACTIVITY_DATA_FIELDS, APPLI_ACTIVITY, DeviceDay, MEASURE_PATH, NEVER_EXPIRES, NOTIFY_PATH, OAUTH2_PATH, Refusal,
    SCOPE_ACTIVITY, SIGNATURE_PATH, STATUS_CALLBACK_UNREACHABLE, STATUS_NO_SUCH_SUBSCRIPTION, activity_json,
    invalid_params, not_implemented, ok, refusal,
};

type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;
type FormPairs = Result<Form<Vec<(String, String)>>, FormRejection>;

/// Every route of the fake Withings, the consent page's included. Withings takes POST (and,
/// for older integrations, GET with the same parameters in the query string).
pub(super) fn router(fake: Shared) -> Router {
    consent::routes()
        .route(OAUTH2_PATH, get(oauth2).post(oauth2))
        .route(SIGNATURE_PATH, get(signature).post(signature))
        .route(MEASURE_PATH, get(measure).post(measure))
        .route(NOTIFY_PATH, get(notify).post(notify))
        .fallback(|| async { not_implemented() })
        .with_state(fake)
}

/// The request's parameters: the form body's, then the query string's.
fn params(query: QueryPairs, form: FormPairs) -> Vec<(String, String)> {
    let mut fields = form.map(|Form(f)| f).unwrap_or_default();
    fields.extend(query.map(|Query(q)| q).unwrap_or_default());
    fields
}

/// Counts a call of `kind`, records it against the rate limit (601 over it), then applies
/// the next fault scripted for `target`.
async fn gate(fake: &Shared, kind: &'static str, target: FaultTarget) -> Option<Response> {
    fake.count(kind);
    let over = fake.lock().record_request();
    if let Some(refusal) = over {
        return Some(refusal.into_response());
    }
    fake.take_fault(target).await
}

fn answer(result: Result<Value, Refusal>) -> Response {
    match result {
        Ok(body) => ok(body),
        Err(refusal) => refusal.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// /v2/oauth2 and /v2/signature

async fn oauth2(State(fake): State<Shared>, query: QueryPairs, form: FormPairs) -> Response {
    let fields = params(query, form);
    let kind = match (first(&fields, "action"), first(&fields, "grant_type")) {
        (Some("requesttoken"), Some("refresh_token")) => "refresh",
        (Some("requesttoken"), _) => "token",
        (Some("revoke"), _) => "revoke",
        _ => "oauth2_other",
    };
    if let Some(response) = gate(&fake, kind, FaultTarget::OAuth2).await {
        return response;
    }
    let mut shared = fake.lock();
    match first(&fields, "action") {
        Some("requesttoken") => answer(shared.request_token(&fields)),
        Some("revoke") => answer(shared.revoke(&fields).map(|()| json!({}))),
        _ => not_implemented().into_response(),
    }
}

async fn signature(State(fake): State<Shared>, query: QueryPairs, form: FormPairs) -> Response {
    let fields = params(query, form);
    let getnonce = first(&fields, "action") == Some("getnonce");
    if let Some(response) =
        gate(&fake, if getnonce { "getnonce" } else { "signature_other" }, FaultTarget::Signature).await
    {
        return response;
    }
    if !getnonce {
        return not_implemented().into_response();
    }
    answer(fake.lock().get_nonce(&fields).map(|nonce| json!({ "nonce": nonce })))
}

// ---------------------------------------------------------------------------------------------
// /v2/measure

async fn measure(State(fake): State<Shared>, headers: HeaderMap, query: QueryPairs, form: FormPairs) -> Response {
    let fields = params(query, form);
    let getactivity = first(&fields, "action") == Some("getactivity");
    if let Some(response) =
        gate(&fake, if getactivity { "getactivity" } else { "measure_other" }, FaultTarget::Measure).await
    {
        return response;
    }
    if !getactivity {
        return not_implemented().into_response();
    }
    let mut shared = fake.lock();
    let result = (|| {
        let grant = shared.bearer_grant(&headers, &fields)?;
        shared.require_scope(grant, SCOPE_ACTIVITY)?;
        let userid = shared.grants[grant].userid.clone();
        let select = Selection::parse(&fields)?;
        let data_fields: Option<Vec<String>> = first(&fields, "data_fields").filter(|f| !f.is_empty()).map(|raw| {
            raw.split(',').map(str::trim).filter(|f| ACTIVITY_DATA_FIELDS.contains(f)).map(str::to_owned).collect()
        });
        let offset = match first(&fields, "offset").filter(|o| !o.is_empty()) {
            None => 0,
            Some(raw) => raw.parse::<usize>().map_err(|_| invalid_params("offset"))?,
        };
        let Some(person) = shared.people.get(&userid) else {
            return Ok(json!({ "activities": [], "more": false, "offset": 0 }));
        };
        let entries: Vec<(Date, &DeviceDay)> = person
            .days
            .iter()
            .flat_map(|(day, devices)| devices.iter().map(move |d| (*day, d)))
            .filter(|(day, device)| select.includes(*day, device))
            .collect();
        let start = offset.min(entries.len());
        let stop = entries.len().min(start + shared.page_size);
        let activities: Vec<Value> = entries[start..stop]
            .iter()
            .map(|(day, device)| activity_json(*day, &person.zone_name, device, data_fields.as_deref()))
            .collect();
        let more = stop < entries.len();
        Ok(json!({ "activities": activities, "more": more, "offset": if more { stop } else { 0 } }))
    })();
    answer(result)
}

/// Which days `getactivity` answers: a date range (both ends included) or changes since.
enum Selection {
    Dates(Date, Date),
    UpdatedSince(i64),
}

impl Selection {
    fn parse(fields: &[(String, String)]) -> Result<Self, Refusal> {
        let value = |name: &str| first(fields, name).filter(|v| !v.is_empty());
        let date = |name: &str, raw: &str| {
            raw.parse::<Date>().map_err(|_| invalid_params(&format!("{name} must be YYYY-MM-DD")))
        };
        match (value("startdateymd"), value("enddateymd"), value("lastupdate")) {
            (Some(start), Some(end), _) => {
                let (start, end) = (date("startdateymd", start)?, date("enddateymd", end)?);
                if start > end {
                    return Err(invalid_params("startdateymd is after enddateymd"));
                }
                Ok(Selection::Dates(start, end))
            }
            (None, None, Some(since)) => {
                since.parse().map(Selection::UpdatedSince).map_err(|_| invalid_params("lastupdate must be a Unix time"))
            }
            _ => Err(invalid_params("startdateymd and enddateymd, or lastupdate, are required")),
        }
    }

    fn includes(&self, day: Date, device: &DeviceDay) -> bool {
        match self {
            Selection::Dates(start, end) => *start <= day && day <= *end,
            Selection::UpdatedSince(since) => device.modified >= *since,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /notify

async fn notify(State(fake): State<Shared>, headers: HeaderMap, query: QueryPairs, form: FormPairs) -> Response {
    let fields = params(query, form);
    let action = first(&fields, "action").unwrap_or_default().to_owned();
    let kind = match action.as_str() {
        "subscribe" => "subscribe",
        "list" => "list",
        "get" => "get",
        "revoke" => "unsubscribe",
        _ => "notify_other",
    };
    if let Some(response) = gate(&fake, kind, FaultTarget::Notify).await {
        return response;
    }
    let (grant, userid) = {
        let mut shared = fake.lock();
        match shared.bearer_grant(&headers, &fields) {
            Ok(grant) => (grant, shared.grants[grant].userid.clone()),
            Err(refusal) => return refusal.into_response(),
        }
    };
    let appli = |default: Option<i64>| match first(&fields, "appli").filter(|a| !a.is_empty()) {
        None => default.ok_or_else(|| invalid_params("missing appli")),
        Some(raw) => raw.parse::<i64>().map_err(|_| invalid_params("appli must be an integer")),
    };
    let callbackurl = || {
        first(&fields, "callbackurl")
            .filter(|u| http_url(u).is_some())
            .map(str::to_owned)
            .ok_or_else(|| refusal(STATUS_CALLBACK_UNREACHABLE, "Invalid Params: callbackurl is absent or incorrect"))
    };
    match action.as_str() {
        "subscribe" => {
            let (url, appli) = match (callbackurl(), appli(None)) {
                (Ok(url), Ok(appli)) => (url, appli),
                (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
            };
            if appli == APPLI_ACTIVITY {
                let scoped = fake.lock().require_scope(grant, SCOPE_ACTIVITY);
                if let Err(refusal) = scoped {
                    return refusal.into_response();
                }
            }
            subscribe(&fake, &userid, url, appli, first(&fields, "comment").unwrap_or_default()).await
        }
        "list" => {
            let filter = match first(&fields, "appli").filter(|a| !a.is_empty()) {
                None => None,
                Some(raw) => match raw.parse::<i64>() {
                    Ok(appli) => Some(appli),
                    Err(_) => return invalid_params("appli must be an integer").into_response(),
                },
            };
            let shared = fake.lock();
            let profiles: Vec<Value> = shared
                .subscriptions
                .iter()
                .filter(|s| s.userid == userid && filter.is_none_or(|a| s.appli == a))
                .map(|s| json!({ "appli": s.appli, "callbackurl": s.callbackurl, "comment": s.comment, "expires": NEVER_EXPIRES }))
                .collect();
            ok(json!({ "profiles": profiles }))
        }
        "get" | "revoke" => {
            // Both default to appli 1 when it is left out, as Withings documents.
            let (url, appli) = match (callbackurl(), appli(Some(1))) {
                (Ok(url), Ok(appli)) => (url, appli),
                (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
            };
            let mut shared = fake.lock();
            let matches = |s: &Subscription| s.userid == userid && s.callbackurl == url && s.appli == appli;
            let Some(found) = shared.subscriptions.iter().find(|s| matches(s)).cloned() else {
                return refusal(STATUS_NO_SUCH_SUBSCRIPTION, "Invalid Params: no such subscription").into_response();
            };
            if action == "revoke" {
                shared.subscriptions.retain(|s| !matches(s));
                return ok(json!({}));
            }
            ok(json!({ "appli": found.appli, "callbackurl": found.callbackurl, "comment": found.comment }))
        }
        _ => not_implemented().into_response(),
    }
}

/// Subscribes after the callback URL answers Withings' HEAD with a 2xx; status 293 otherwise.
async fn subscribe(fake: &Shared, userid: &str, url: String, appli: i64, comment: &str) -> Response {
    fake.count("head_check");
    let (sender, scripted_failure) = {
        let mut shared = fake.lock();
        let failing = shared.failing_head_checks > 0;
        shared.failing_head_checks = shared.failing_head_checks.saturating_sub(1);
        (shared.sender.clone(), failing)
    };
    let check = match scripted_failure {
        true => super::notifications::Attempt::Failed("the callback URL did not answer".into()),
        false => sender.head_check(&url).await,
    };
    if !check.succeeded() {
        let why = match check {
            super::notifications::Attempt::Status(status) => format!("it answered HTTP {status}"),
            super::notifications::Attempt::Failed(e) => e,
        };
        return refusal(
            STATUS_CALLBACK_UNREACHABLE,
            format!("Invalid Params: the callback URL failed the HEAD check: {why}"),
        )
        .into_response();
    }
    let mut shared = fake.lock();
    let existing =
        shared.subscriptions.iter_mut().find(|s| s.userid == userid && s.callbackurl == url && s.appli == appli);
    match existing {
        Some(subscription) => subscription.comment = comment.to_owned(),
        None => shared.subscriptions.push(Subscription {
            userid: userid.to_owned(),
            callbackurl: url,
            appli,
            comment: comment.to_owned(),
            failures: 0,
        }),
    }
    ok(json!({}))
}
