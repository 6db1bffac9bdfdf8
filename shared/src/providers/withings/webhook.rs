//! `WithingsWebhooks`: Withings signs nothing, so our callback URL carries a secret of ours
//! (`?token=`), compared in constant time before the body is read; the HEAD Withings sends
//! when subscribing is answered 200 the same way. A notice is form-encoded (`userid`,
//! `appli`, and `date` or `startdate`/`enddate`) and only says whose activity to fetch: the
//! numbers always come from Withings' API.

use super::{ACTIVITY_APPLI, SetupError, WithingsSettings};
use crate::domain::LocalDate;
use crate::ports::{DataNotice, WebhookError, WebhookMessage, WebhookVerifier};
use crate::providers::webhook::{refuse_unless_small_with_token, short};
use async_trait::async_trait;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use secrecy::SecretString;

/// The longest interval one notice is read for: a week back from its end.
const MAX_NOTICE_DAYS: i32 = 7;

pub struct WithingsWebhooks {
    token: Option<SecretString>,
    max_body_bytes: usize,
}

impl WithingsWebhooks {
    pub fn new(settings: &WithingsSettings) -> Result<Self, SetupError> {
        Ok(Self { token: settings.notify_token.clone(), max_body_bytes: settings.max_body_bytes })
    }
}

#[async_trait]
impl WebhookVerifier for WithingsWebhooks {
    /// Without the query no request can prove it is Withings'.
    async fn verify(
        &self,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        self.verify_request(method, "", headers, body).await
    }

    async fn verify_request(
        &self,
        method: &str,
        query: &str,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        refuse_unless_small_with_token(self.token.as_ref(), query, body, self.max_body_bytes)?;
        match method.to_ascii_uppercase().as_str() {
            // Withings checks the callback answers before it subscribes it.
            "HEAD" | "GET" => Ok(WebhookMessage::Handshake { status: 200, body: String::new() }),
            "POST" => parse_notice(body).map(WebhookMessage::Notices),
            other => Err(WebhookError::Malformed(format!("expected a POST, not {}", short(other)))),
        }
    }
}

fn parse_notice(body: &[u8]) -> Result<Vec<DataNotice>, WebhookError> {
    let mut userid = None;
    let mut appli = None;
    let (mut date, mut start, mut end) = (None, None, None);
    for (name, value) in url::form_urlencoded::parse(body) {
        match name.as_ref() {
            "userid" => userid = Some(value.trim().to_owned()),
            "appli" => appli = Some(value.trim().to_owned()),
            "date" => date = Some(value.into_owned()),
            "startdate" => start = Some(value.into_owned()),
            "enddate" => end = Some(value.into_owned()),
            _ => {}
        }
    }
    let userid = userid
        .filter(|u| !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| WebhookError::Malformed("the notice names no userid".into()))?;
    if appli.as_deref() != Some(ACTIVITY_APPLI) {
        // Another category (weight, sleep): nothing of ours changed.
        return Ok(Vec::new());
    }
    let dates = match (date, start, end) {
        (Some(date), _, _) => {
            let date =
                LocalDate::parse(date.trim()).map_err(|_| WebhookError::Malformed("date is not yyyy-mm-dd".into()))?;
            // The person's own date; a day either side covers a device on another zone.
            date.add_days(-1).through(date.add_days(1)).collect()
        }
        (None, Some(start), Some(end)) => {
            let at = |raw: &str| {
                raw.trim()
                    .parse::<i64>()
                    .ok()
                    .and_then(|s| Timestamp::from_second(s).ok())
                    .map(|t| LocalDate::from_date(t.to_zoned_datetime(TimeZone::UTC).date()))
                    .ok_or_else(|| WebhookError::Malformed("startdate and enddate are Unix seconds".into()))
            };
            let (first, last) = (at(&start)?, at(&end)?);
            if last < first {
                return Err(WebhookError::Malformed("enddate is before startdate".into()));
            }
            // UTC dates of the interval and one more on each side cover any zone.
            let last = last.add_days(1);
            first.add_days(-1).max(last.add_days(1 - MAX_NOTICE_DAYS)).through(last).collect()
        }
        _ => return Err(WebhookError::Malformed("the notice names no date".into())),
    };
    Ok(vec![DataNotice { account_id: userid, dates, deleted: false }])
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn verifier() -> WithingsWebhooks {
        let mut settings = WithingsSettings::new("c", SecretString::from("s"), "https://x/webhooks/withings");
        settings.notify_token = Some(SecretString::from("our-secret"));
        WithingsWebhooks::new(&settings).unwrap()
    }

    #[tokio::test]
    async fn the_known_answer_notice_names_its_person_and_days() {
        let body = fixture("notification_activity.form");
        let answer = verifier().verify_request("POST", "token=our-secret", &[], body.as_bytes()).await.unwrap();
        let WebhookMessage::Notices(notices) = answer else { panic!("expected notices") };
        let userid = url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "userid").unwrap().1;
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].account_id, userid);
        assert!(!notices[0].dates.is_empty() && notices[0].dates.len() <= MAX_NOTICE_DAYS as usize);
    }

    #[tokio::test]
    async fn without_our_token_nothing_is_read_and_the_head_check_is_answered_only_with_it() {
        let v = verifier();
        let body = b"userid=123&appli=16&date=2026-12-01";
        assert_eq!(v.verify_request("POST", "", &[], body).await, Err(WebhookError::MissingSignature));
        assert_eq!(v.verify_request("POST", "token=guess", &[], body).await, Err(WebhookError::BadSignature));
        assert_eq!(v.verify("POST", &[], body).await, Err(WebhookError::MissingSignature));
        assert_eq!(
            v.verify_request("HEAD", "token=our-secret", &[], b"").await,
            Ok(WebhookMessage::Handshake { status: 200, body: String::new() })
        );
        assert_eq!(v.verify_request("HEAD", "", &[], b"").await, Err(WebhookError::MissingSignature));
        let huge = vec![b'a'; 16 * 1024 + 1];
        assert_eq!(v.verify_request("POST", "token=our-secret", &[], &huge).await, Err(WebhookError::TooLarge));
    }

    #[tokio::test]
    async fn notices_are_read_by_date_or_interval_and_odd_ones_refused() {
        let v = verifier();
        let read = |body: &'static str| v.verify_request("POST", "token=our-secret", &[], body.as_bytes());
        let Ok(WebhookMessage::Notices(n)) = read("userid=123&appli=16&date=2026-12-01").await else { panic!() };
        assert_eq!(n[0].dates.first().unwrap().to_string(), "2026-11-30");
        assert_eq!(n[0].dates.last().unwrap().to_string(), "2026-12-02");
        let Ok(WebhookMessage::Notices(n)) = read("userid=123&appli=16&startdate=1796083200&enddate=1796169600").await
        else {
            panic!()
        };
        assert_eq!(n[0].dates.first().unwrap().to_string(), "2026-11-30");
        assert_eq!(n[0].dates.last().unwrap().to_string(), "2026-12-03");
        assert_eq!(read("userid=123&appli=1&date=2026-12-01").await, Ok(WebhookMessage::Notices(vec![])));
        for odd in [
            "appli=16&date=2026-12-01",
            "userid=1%23&appli=16&date=2026-12-01",
            "userid=1&appli=16",
            "userid=1&appli=16&date=soon",
        ] {
            assert!(matches!(read(odd).await, Err(WebhookError::Malformed(_))), "{odd}");
        }
    }
}
