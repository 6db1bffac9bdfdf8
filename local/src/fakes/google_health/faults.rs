//! The faults a test scripts on the fake Google: which endpoints they hit and what they answer.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;

use super::super::server::{FaultAnswer, InjectedFault};
use super::wire::google_error;

/// Which endpoints a scripted fault hits: the Health API (identity and `dailyRollUp`), the
/// token endpoint, or the keyset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    Api,
    Token,
    Keyset,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `RESOURCE_EXHAUSTED`; the `Retry-After` header only when given (Google does not document it).
    RateLimited { retry_after: Option<u64> },
    /// 500 `INTERNAL` in the Google error shape.
    ServerError,
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

impl InjectedFault for Fault {
    fn answer(&self) -> FaultAnswer {
        match self {
            Fault::Slow(wait) => FaultAnswer::After(*wait),
            Fault::ServerError => FaultAnswer::Instead(
                google_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error encountered.", None).into_response(),
            ),
            Fault::RateLimited { retry_after } => {
                let mut response = google_error(StatusCode::TOO_MANY_REQUESTS, "Quota exceeded.", None).into_response();
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
                }
                FaultAnswer::Instead(response)
            }
        }
    }
}
