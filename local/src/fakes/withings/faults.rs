//! The faults a test scripts on the fake Withings, in Withings' terms: which service they hit
//! and what they answer (an error `status` in the envelope, a bare HTTP error, or a delay).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::super::server::{FaultAnswer, InjectedFault};
use super::wire::{STATUS_ERROR, STATUS_INVALID_PARAMS, refusal, too_many_requests};

/// Which service a scripted fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    /// `/v2/oauth2`: `requesttoken` and `revoke`.
    OAuth2,
    /// `/v2/signature`: `getnonce`.
    Signature,
    /// `/v2/measure`: `getactivity`.
    Measure,
    /// `/notify`: `subscribe`, `list`, `get`, `revoke`.
    Notify,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200 with `{"status": 601, "error": "Too Many Request"}`.
    TooManyRequests,
    /// HTTP 200 with `{"status": 503, "error": "Invalid Params: .."}`.
    InvalidParams,
    /// HTTP 200 with `{"status": 2555, "error": "An unknown error occurred"}`.
    UnknownError,
    /// HTTP 200 with this `status` and a generic `error`.
    Status(i64),
    /// This HTTP status with an empty body, as a load balancer in front of Withings answers.
    Http(u16),
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

impl InjectedFault for Fault {
    fn answer(&self) -> FaultAnswer {
        let response = match self {
            Fault::Slow(wait) => return FaultAnswer::After(*wait),
            Fault::TooManyRequests => too_many_requests().into_response(),
            Fault::InvalidParams => refusal(STATUS_INVALID_PARAMS, "Invalid Params").into_response(),
            Fault::UnknownError => refusal(STATUS_ERROR, "An unknown error occurred").into_response(),
            Fault::Status(status) => refusal(*status, "An error occurred").into_response(),
            Fault::Http(status) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            }
        };
        FaultAnswer::Instead(response)
    }
}
