//! Withings' side of the notify service: the HEAD request a callback URL must answer with a
//! 2xx before it is subscribed, and the form-encoded notices it POSTs (unsigned: Withings
//! signs nothing) to the callback URL exactly as registered, query string included.

use std::time::Duration;

use axum::http::header;

use super::super::common::subscriber_client;
use super::super::server::FakeError;

/// The content type of every notice.
pub const NOTICE_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// What one request to a subscriber got: an HTTP status, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Status(u16),
    Failed(String),
}

impl Attempt {
    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Status(status) => Some(*status),
            Attempt::Failed(_) => None,
        }
    }

    /// A 2xx came back.
    pub fn succeeded(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }

    fn from_result(result: Result<reqwest::Response, reqwest::Error>) -> Self {
        match result {
            Ok(response) => Attempt::Status(response.status().as_u16()),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }
}

/// One notice POSTed to one subscription (no retries): where, what, and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub userid: String,
    pub appli: i64,
    /// The URL POSTed to: the subscription's `callbackurl`, unchanged.
    pub callbackurl: String,
    /// The form-encoded body, exactly as sent.
    pub body: String,
    pub outcome: Attempt,
    /// This failure was the fourth in a row: Withings dropped the subscription.
    pub dropped: bool,
}

impl Delivery {
    pub fn delivered(&self) -> bool {
        self.outcome.succeeded()
    }
}

/// The client Withings calls subscribers with: notices must be answered within 2 seconds.
pub(super) struct Sender {
    notices: reqwest::Client,
    checks: reqwest::Client,
}

impl Sender {
    pub(super) fn new() -> Result<Self, FakeError> {
        let notices = subscriber_client(Duration::from_secs(2)).build().map_err(FakeError::Client)?;
        let checks = subscriber_client(Duration::from_secs(5)).build().map_err(FakeError::Client)?;
        Ok(Self { notices, checks })
    }

    /// `HEAD callbackurl`, before a subscription is made.
    pub(super) async fn head_check(&self, url: &str) -> Attempt {
        Attempt::from_result(self.checks.head(url).send().await)
    }

    /// One POST of `body` with exactly `headers` (plus the form content type unless given).
    pub(super) async fn post(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        let mut request = self.notices.post(url);
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            request = request.header(header::CONTENT_TYPE, NOTICE_CONTENT_TYPE);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Attempt::from_result(request.body(body).send().await)
    }
}
