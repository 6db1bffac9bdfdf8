//! The HTTP helpers every provider client uses: one client with both timeouts, bounded body
//! reads, `Retry-After`, and failures described without the URL or anything the request carried.

use crate::ports::ProviderError;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// Whether the client follows redirects. An API that redirects its resources may have moved
/// away, and a redirect could lead a fetch off an allow-list: such a provider stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Redirects {
    Follow,
    Stop,
}

/// The one HTTP client a provider builds and shares: connect and total timeouts, always, and
/// the process's TLS settings (`crate::tls`: the roots are read on the first handshake).
pub(super) fn build_client(
    connect_timeout: Duration,
    request_timeout: Duration,
    redirects: Redirects,
) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder().connect_timeout(connect_timeout).timeout(request_timeout);
    let builder = match crate::tls::client_config() {
        Some(tls) => builder.tls_backend_preconfigured(tls),
        None => builder,
    };
    let builder = match redirects {
        Redirects::Follow => builder,
        Redirects::Stop => builder.redirect(reqwest::redirect::Policy::none()),
    };
    builder.build()
}

/// `raw` when it is an http(s) URL.
pub(super) fn http_url(raw: &str) -> Option<Url> {
    Url::parse(raw).ok().filter(|url| matches!(url.scheme(), "http" | "https"))
}

/// Why a request produced no usable body. Its text never names the request's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HttpFailure {
    TimedOut,
    /// Nothing listens there any more: for an API that may be switched off, the sign that it is.
    Refused,
    /// DNS, TLS or another connect failure, possibly passing.
    Connect,
    TooLarge,
    Other,
}

impl HttpFailure {
    pub fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            HttpFailure::TimedOut
        } else if is_refused(error) {
            HttpFailure::Refused
        } else if error.is_connect() {
            HttpFailure::Connect
        } else {
            HttpFailure::Other
        }
    }

    /// For an API known to be alive, a refused connection is one more passing connect failure.
    pub fn refused_as_connect(self) -> Self {
        match self {
            HttpFailure::Refused => HttpFailure::Connect,
            other => other,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            HttpFailure::TimedOut => "timed out",
            HttpFailure::Refused => "refused the connection",
            HttpFailure::Connect => "could not connect",
            HttpFailure::TooLarge => "answered with too large a body",
            HttpFailure::Other => "failed",
        }
    }
}

/// Whether an `io::Error` of kind `ConnectionRefused` is somewhere in the error's causes.
fn is_refused(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cause = current.source();
    }
    false
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

/// An answer read whole: its status, its headers and at most the limit's bytes of body.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends `request` and reads its answer, whatever the status, refusing more than `limit` bytes.
pub(super) async fn send(request: reqwest::RequestBuilder, limit: usize) -> Result<Answer, HttpFailure> {
    let response = request.send().await.map_err(|e| HttpFailure::of(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_limited(response, limit).await?;
    Ok(Answer { status, headers, body })
}

/// `Retry-After` as delta-seconds or an HTTP date; a date in the past means "now".
pub(super) fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    static HTTP_DATE: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match raw.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = HTTP_DATE.parse_timestamp(raw).ok()?;
            Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
        }
    };
    // A provider's wait never parks a connection for days: at most an hour, then we ask again.
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The request to `what` (say, "token endpoint") got no usable answer.
pub(super) fn unavailable(what: &str, failure: HttpFailure) -> ProviderError {
    ProviderError::Unavailable(format!("the {what} {}", failure.describe()))
}

/// `what` answered with a status that a later retry may not see again.
pub(super) fn answered(what: &str, status: StatusCode) -> ProviderError {
    ProviderError::Unavailable(format!("the {what} answered {}", status.as_u16()))
}

/// `what` answered 2xx with a body of the wrong shape.
pub(super) fn unreadable(what: &str) -> ProviderError {
    ProviderError::Unavailable(format!("the {what} sent an unreadable answer"))
}

/// A provider's error code is echoed only when it looks like one (`invalid_grant`,
/// `MISSING_OAUTH_SCOPE`): bodies can carry anything, tokens included.
pub(super) fn error_code(raw: &str) -> Option<String> {
    let looks_like_code =
        !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    looks_like_code.then(|| raw.to_owned())
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
        assert_eq!(retry_after(&headers("31536000"), now), Some(MAX_RETRY_AFTER), "a year is capped at an hour");
        assert_eq!(retry_after(&headers("Fri, 25 Dec 2026 12:00:00 GMT"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn only_codes_that_look_like_codes_are_echoed() {
        assert_eq!(error_code("invalid_grant").as_deref(), Some("invalid_grant"));
        assert_eq!(error_code("MISSING_OAUTH_SCOPE").as_deref(), Some("MISSING_OAUTH_SCOPE"));
        assert_eq!(error_code(""), None);
        assert_eq!(error_code("bad token ya29.secret"), None);
        assert_eq!(error_code(&"x".repeat(65)), None);
    }

    #[test]
    fn only_http_and_https_urls_are_endpoints() {
        assert!(http_url("https://example.test/token").is_some());
        assert!(http_url("http://127.0.0.1:9/").is_some());
        assert!(http_url("ftp://example.test/").is_none());
        assert!(http_url("not a url").is_none());
    }
}
