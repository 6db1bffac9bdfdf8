//! Small HTTP helpers: bounded body reads, `Retry-After`, and transport failures described
//! without the URL or anything the request carried.

use jiff::Timestamp;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// Why a request produced no usable body. Its text never names the request's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HttpFailure {
    TimedOut,
    Connect,
    TooLarge,
    Other,
}

impl HttpFailure {
    pub fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            HttpFailure::TimedOut
        } else if error.is_connect() {
            HttpFailure::Connect
        } else {
            HttpFailure::Other
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            HttpFailure::TimedOut => "timed out",
            HttpFailure::Connect => "could not connect",
            HttpFailure::TooLarge => "answered with too large a body",
            HttpFailure::Other => "failed",
        }
    }
}

/// Reads the whole body, refusing to hold more than `limit` bytes.
pub(super) async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, HttpFailure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| HttpFailure::of(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(HttpFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` as delta-seconds or an HTTP date; a date in the past means "now".
pub(super) fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    static HTTP_DATE: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = HTTP_DATE.parse_timestamp(raw).ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        headers
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        assert_eq!(retry_after(&headers("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("Wed, 25 Nov 2026 12:01:30 GMT"), now), Some(Duration::from_secs(90)));
        assert_eq!(retry_after(&headers("Wed, 25 Nov 2026 11:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
