//! The fake SNS's routes: the signing certificate and the query API's `ConfirmSubscription`.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::super::common::first;
use super::state::Shared;
use super::wire::{CERT_PATH, confirmed_xml, sns_error};

pub(super) fn router(fake: Shared) -> Router {
    Router::new()
        .route(CERT_PATH, get(serve_cert))
        .route("/", get(sns_action))
        .fallback(|State(fake): State<Shared>| async move {
            fake.count("other");
            (StatusCode::NOT_FOUND, "Not Found")
        })
        .with_state(fake)
}

async fn serve_cert(State(fake): State<Shared>) -> Response {
    fake.count("cert");
    let pem = fake.lock().cert_pem.clone();
    ([(header::CONTENT_TYPE, "application/x-x509-ca-cert")], pem).into_response()
}

/// SNS's query API, as much of it as a subscriber uses: `Action=ConfirmSubscription&Token=..`.
async fn sns_action(
    State(fake): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    fake.count("confirm");
    let params = query.map(|Query(q)| q).unwrap_or_default();
    if first(&params, "Action") != Some("ConfirmSubscription") {
        return sns_error("InvalidAction", "The action or operation requested is invalid.");
    }
    let token = first(&params, "Token").unwrap_or_default();
    let mut shared = fake.lock();
    let Some(topic_arn) = shared.issued.get(token).cloned() else {
        return sns_error("InvalidParameter", "Invalid parameter: Token");
    };
    shared.confirmed.push(token.to_owned());
    confirmed_xml(&topic_arn)
}
