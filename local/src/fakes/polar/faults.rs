//! The faults a test scripts on the fake Polar: which endpoints they hit and what they answer.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::super::server::{FaultAnswer, InjectedFault};
use super::wire::{Refusal, consents_missing, error};

/// Which endpoints a scripted fault hits: AccessLink's user resources (registration, activity
/// summaries), the token endpoint, the webhook resources, or only the webhook's activation
/// (a switch back on that fails while the listing works).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    Api,
    Token,
    Webhook,
    WebhookActivation,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `RateLimit-*` headers naming a spent window ending in `reset` seconds.
    RateLimited { reset: u64 },
    /// 500 in AccessLink's error body.
    ServerError,
    /// 503, as a gateway in front of AccessLink answers while it is down.
    Unavailable,
    /// 403: the person has not accepted Polar's mandatory consents.
    ConsentsMissing,
    /// Waits, then answers normally: for client timeouts.
    Slow(Duration),
}

impl InjectedFault for Fault {
    fn answer(&self) -> FaultAnswer {
        let refusal = match self {
            Fault::Slow(wait) => return FaultAnswer::After(*wait),
            Fault::RateLimited { reset } => Refusal::RateLimited { usage: 501, limit: 500, reset: *reset },
            Fault::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "Internal error"),
            Fault::Unavailable => error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "Try again later"),
            Fault::ConsentsMissing => consents_missing(),
        };
        FaultAnswer::Instead(refusal.into_response())
    }
}
