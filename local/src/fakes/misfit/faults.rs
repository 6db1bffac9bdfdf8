//! What a test can break on the fake Misfit: scripted faults on its endpoints, and the ways
//! the retired cloud can be dead.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json};
use jiff::Timestamp;
use serde_json::json;

use super::super::server::{FaultAnswer, InjectedFault};
use super::wire::{RATE_LIMIT_RESET_HEADER, Refusal};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `x-ratelimit-reset` (epoch seconds, now + `reset_in_secs`) and a `{code, message}` body.
    RateLimited { reset_in_secs: u64 },
    /// 500 with an `{error_code, error_message}` body.
    ServerError,
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

/// How the retired Misfit cloud is dead (whether it still answers at all is unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dead {
    /// 410 on every endpoint, as reported for Fitbit's legacy API.
    Gone,
    /// 404 on every endpoint.
    NotFound,
    /// Nothing listens on the port: connections are refused.
    Refused,
}

impl InjectedFault for Fault {
    fn answer(&self) -> FaultAnswer {
        match self {
            Fault::Slow(wait) => FaultAnswer::After(*wait),
            Fault::ServerError => FaultAnswer::Instead(
                Refusal { status: StatusCode::INTERNAL_SERVER_ERROR, message: "Internal server error".to_owned() }
                    .into_response(),
            ),
            Fault::RateLimited { reset_in_secs } => {
                let reset =
                    Timestamp::now().as_second().saturating_add(i64::try_from(*reset_in_secs).unwrap_or(i64::MAX));
                let body = json!({ "code": 429, "message": "Rate limit exceeded" });
                let headers = [(RATE_LIMIT_RESET_HEADER, HeaderValue::from(reset))];
                FaultAnswer::Instead((StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response())
            }
        }
    }
}
