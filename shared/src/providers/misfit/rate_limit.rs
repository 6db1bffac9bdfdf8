//! How long Misfit's 429 asks to wait: its own reset header first, then `Retry-After`.

use crate::providers::http::retry_after;
use jiff::Timestamp;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// Misfit's reset header: the epoch second at which the rate-limit window reopens.
const RATE_LIMIT_RESET: &str = "x-ratelimit-reset";
/// A reset below this (2001-09-09) cannot be an epoch second; read it as seconds to wait.
const EPOCH_SECONDS_FLOOR: u64 = 1_000_000_000;
/// A server asking for more than a day is not believed: the engine backs off for this long.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
const MIN_WAIT: Duration = Duration::from_secs(1);

/// How long a 429 asks to wait: until `x-ratelimit-reset` (epoch seconds), else what
/// `Retry-After` says (seconds or an HTTP date); at least a second, at most a day.
pub(super) fn rate_limit_wait(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let wait = reset_wait(headers, now).or_else(|| retry_after(headers, now))?;
    Some(wait.clamp(MIN_WAIT, MAX_WAIT))
}

fn reset_wait(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let raw = headers.get(RATE_LIMIT_RESET)?.to_str().ok()?.trim();
    // Some servers send a fractional second; the whole second is precise enough.
    let reset: u64 = raw.split('.').next()?.parse().ok()?;
    if reset < EPOCH_SECONDS_FLOOR {
        return Some(Duration::from_secs(reset));
    }
    let now = u64::try_from(now.as_second()).unwrap_or(0);
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    const NOW: &str = "2026-11-25T12:00:00Z";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn wait(pairs: &[(&'static str, &str)]) -> Option<Duration> {
        rate_limit_wait(&headers(pairs), NOW.parse().unwrap())
    }

    fn epoch(at: &str) -> String {
        at.parse::<Timestamp>().unwrap().as_second().to_string()
    }

    #[test]
    fn the_reset_header_is_an_epoch_second_to_wait_for() {
        assert_eq!(wait(&[("x-ratelimit-reset", &epoch("2026-11-25T12:01:30Z"))]), Some(Duration::from_secs(90)));
        assert_eq!(
            wait(&[("x-ratelimit-reset", &format!("{}.75", epoch("2026-11-25T12:00:05Z")))]),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn a_reset_in_the_past_or_right_now_still_waits_a_second() {
        assert_eq!(wait(&[("x-ratelimit-reset", &epoch("2026-11-25T11:00:00Z"))]), Some(MIN_WAIT));
        assert_eq!(wait(&[("x-ratelimit-reset", &epoch(NOW))]), Some(MIN_WAIT));
    }

    #[test]
    fn a_small_reset_is_read_as_seconds_and_a_huge_one_is_capped_at_a_day() {
        assert_eq!(wait(&[("x-ratelimit-reset", "42")]), Some(Duration::from_secs(42)));
        assert_eq!(wait(&[("x-ratelimit-reset", &epoch("2027-01-01T00:00:00Z"))]), Some(MAX_WAIT));
    }

    #[test]
    fn retry_after_is_used_when_there_is_no_readable_reset() {
        assert_eq!(wait(&[("retry-after", "7")]), Some(Duration::from_secs(7)));
        assert_eq!(wait(&[("retry-after", "Wed, 25 Nov 2026 12:02:00 GMT")]), Some(Duration::from_secs(120)));
        assert_eq!(wait(&[("x-ratelimit-reset", "soon"), ("retry-after", "9")]), Some(Duration::from_secs(9)));
        assert_eq!(wait(&[("retry-after", "later")]), None);
        assert_eq!(wait(&[]), None);
    }
}
