//! The faults a test scripts on the fake Oura: which endpoints they hit and what they answer.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::super::server::{FaultAnswer, InjectedFault};
use super::wire::{Refusal, membership_lapsed, problem};

/// Which endpoints a scripted fault hits: the user collection (`personal_info`,
/// `daily_activity`), the OAuth token and revoke endpoints, or the webhook subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    Api,
    Token,
    Webhook,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 in the RFC 7807 shape; `Retry-After` (seconds) only when given (Oura does not document it).
    RateLimited { retry_after: Option<u64> },
    /// 500 in the RFC 7807 shape.
    ServerError,
    /// 503, as a gateway in front of Oura answers while it is down.
    Unavailable,
    /// 403: the person's Oura membership lapsed, so their data is not available via the API.
    MembershipLapsed,
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

impl InjectedFault for Fault {
    fn answer(&self) -> FaultAnswer {
        let refusal = match self {
            Fault::Slow(wait) => return FaultAnswer::After(*wait),
            Fault::RateLimited { retry_after } => Refusal::RateLimited { retry_after: *retry_after },
            Fault::ServerError => {
                problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", "Internal Server Error")
            }
            Fault::Unavailable => problem(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", "Try again later."),
            Fault::MembershipLapsed => membership_lapsed(),
        };
        FaultAnswer::Instead(refusal.into_response())
    }
}
