//! `GarminWebhooks`: Garmin signs nothing, so our callback URL carries a secret of ours
//! (`?token=`), compared in constant time before the body is read. A ping names people and,
//! for dailies, a `callbackURL`: that URL is never fetched. Only its upload window and pull
//! token are taken, once it is shown to name Garmin's dailies at our own API base and a window
//! of at most 24 hours; the client then reads that window at our base with the person's token.
//! Deregistrations and permission changes become notices without a window: a sync of the
//! default window finds out what the grant now allows. A push (summaries inline, no
//! `callbackURL`) is taken without acting on its numbers, which no one vouches for.

use super::client::MAX_UPLOAD_WINDOW_SECS;
use super::{DAILIES_PATH, GarminSettings, SetupError, parse_url, user_id};
use crate::domain::UploadWindow;
use crate::ports::{UploadNotice, WebhookError, WebhookMessage, WebhookVerifier};
use crate::providers::webhook::{malformed_item, refuse_unless_small_post, refuse_unless_small_with_token};
use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::Url;
use secrecy::SecretString;
use serde_json::Value;

/// The longest pull token taken from a `callbackURL`.
const MAX_PULL_TOKEN_LEN: usize = 512;

pub struct GarminWebhooks {
    token: Option<SecretString>,
    /// Our API base: the one origin a ping's `callbackURL` may name.
    api_base: Url,
    max_body_bytes: usize,
}

impl GarminWebhooks {
    pub fn new(settings: &GarminSettings) -> Result<Self, SetupError> {
        Ok(Self {
            token: settings.notify_token.clone(),
            api_base: parse_url("api_base", &settings.api_base)?,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    /// The upload window and pull token of a daily ping's `callbackURL`, if it names Garmin's
    /// dailies at our API base with a window Garmin would read.
    fn upload_window(&self, callback: &str) -> Result<UploadWindow, &'static str> {
        let url = Url::parse(callback).map_err(|_| "callbackURL is not a URL")?;
        let ours = url.scheme() == self.api_base.scheme()
            && url.host_str() == self.api_base.host_str()
            && url.port_or_known_default() == self.api_base.port_or_known_default();
        let path = format!("{}{DAILIES_PATH}", self.api_base.path().trim_end_matches('/'));
        if !ours || url.path() != path {
            return Err("callbackURL does not name the dailies at our Garmin API base");
        }
        let (mut start, mut end, mut pull_token) = (None, None, None);
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "uploadStartTimeInSeconds" => start = value.parse::<i64>().ok(),
                "uploadEndTimeInSeconds" => end = value.parse::<i64>().ok(),
                "token" => pull_token = Some(value.into_owned()),
                _ => {}
            }
        }
        let (start, end) = start.zip(end).ok_or("callbackURL names no upload window in seconds")?;
        if !(1..=MAX_UPLOAD_WINDOW_SECS).contains(&(end - start)) {
            return Err("the upload window is not 1 s to 24 h long");
        }
        let printable = |t: &String| t.len() <= MAX_PULL_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_graphic());
        if pull_token.as_ref().is_some_and(|t| !printable(t)) {
            return Err("the pull token is not a short printable string");
        }
        let at = |s: i64| Timestamp::from_second(s).map_err(|_| "the upload window is out of range");
        Ok(UploadWindow { start: at(start)?, end: at(end)?, pull_token })
    }

    /// The notices of a ping. Garmin batches many people into one: an item that cannot be read
    /// is skipped (and logged) so the others are not held back with it, since Garmin resends a
    /// refused ping whole; only a ping none of whose items can be read is refused.
    fn parse(&self, body: &[u8]) -> Result<Vec<UploadNotice>, WebhookError> {
        let Ok(Value::Object(lists)) = serde_json::from_slice::<Value>(body) else {
            return Err(WebhookError::Malformed("a Garmin notice is a JSON object of lists".into()));
        };
        let mut notices = Vec::new();
        let mut refused = None;
        for (kind, items) in &lists {
            let about_the_grant = matches!(kind.as_str(), "deregistrations" | "userPermissionsChange");
            if kind != "dailies" && !about_the_grant {
                // Another summary type (epochs, sleeps): nothing of ours changed.
                continue;
            }
            let Some(items) = items.as_array() else {
                return Err(WebhookError::Malformed(format!("{kind} is not a list")));
            };
            for (index, item) in items.iter().enumerate() {
                match self.notice(item, about_the_grant) {
                    Ok(Some(notice)) => notices.push(notice),
                    Ok(None) => {
                        tracing::warn!("garmin: a pushed daily summary was ignored: configure dailies for ping/pull");
                    }
                    Err(why) => {
                        // The reason only: the item's callbackURL carries a pull token.
                        tracing::warn!(kind = kind.as_str(), index, why, "garmin: a notice item was skipped");
                        refused.get_or_insert_with(|| malformed_item(kind, index, why));
                    }
                }
            }
        }
        match refused {
            Some(error) if notices.is_empty() => Err(error),
            _ => Ok(notices),
        }
    }

    /// One item of a ping: whose, and the upload window of a daily's `callbackURL` (none for a
    /// notice about the grant); `None` for a pushed daily (its numbers inline, no URL).
    fn notice(&self, item: &Value, about_the_grant: bool) -> Result<Option<UploadNotice>, &'static str> {
        let account = item.get("userId").and_then(Value::as_str).and_then(user_id).ok_or("no readable userId")?;
        let window = match item.get("callbackURL").and_then(Value::as_str) {
            _ if about_the_grant => None,
            Some(callback) => Some(self.upload_window(callback)?),
            None => return Ok(None),
        };
        Ok(Some(UploadNotice { account_id: account.to_owned(), window }))
    }
}

#[async_trait]
impl WebhookVerifier for GarminWebhooks {
    /// Without the query no request can prove it is Garmin's.
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
        refuse_unless_small_post(method, body, self.max_body_bytes, || "Garmin POSTs its notices".to_owned())?;
        self.parse(body).map(WebhookMessage::Uploads)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    const BASE: &str = "https://apis.garmin.com";

    fn verifier() -> GarminWebhooks {
        let mut settings = GarminSettings::new("c", SecretString::from("s"));
        settings.notify_token = Some(SecretString::from("our-secret"));
        GarminWebhooks::new(&settings).unwrap()
    }

    async fn uploads(body: &str) -> Result<Vec<UploadNotice>, WebhookError> {
        match verifier().verify_request("POST", "token=our-secret", &[], body.as_bytes()).await? {
            WebhookMessage::Uploads(notices) => Ok(notices),
            other => panic!("expected upload notices, got {other:?}"),
        }
    }

    fn ping(callback: &str) -> String {
        serde_json::json!({ "dailies": [{ "userId": "4aacafe82427c251df9c9592d0c06768", "callbackURL": callback }] })
            .to_string()
    }

    #[tokio::test]
    async fn the_known_answer_ping_names_its_person_window_and_pull_token() {
        let body = fixture("ping_dailies.json");
        let expected: Value = serde_json::from_str(&fixture("ping_dailies_expected.json")).unwrap();
        let notices = uploads(&body).await.unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].account_id, expected["userId"].as_str().unwrap());
        let window = notices[0].window.as_ref().unwrap();
        assert_eq!(window.start.as_second(), expected["uploadStartTimeInSeconds"].as_i64().unwrap());
        assert_eq!(window.end.as_second(), expected["uploadEndTimeInSeconds"].as_i64().unwrap());
        assert_eq!(window.pull_token.as_deref(), expected["token"].as_str());
        assert!(!format!("{window:?}").contains(expected["token"].as_str().unwrap()), "never in a log line");
    }

    #[tokio::test]
    async fn grant_notices_carry_no_window_and_other_summaries_nothing() {
        let body = fixture("deregistration.json");
        let notices = uploads(&body).await.unwrap();
        assert!(notices.len() == 1 && notices[0].window.is_none());
        let notices = uploads(&fixture("permissions_change.json")).await.unwrap();
        assert!(notices.len() == 1 && notices[0].window.is_none());
        let epochs = r#"{"epochs":[{"userId":"a1","callbackURL":"https://evil.example/x"}]}"#;
        assert_eq!(uploads(epochs).await.unwrap(), []);
        let pushed = r#"{"dailies":[{"userId":"a1","summaryId":"x","calendarDate":"2026-12-01","steps":90000}]}"#;
        assert_eq!(uploads(pushed).await.unwrap(), [], "a push's numbers are never taken");
    }

    #[tokio::test]
    async fn a_callback_url_elsewhere_or_with_an_odd_window_is_refused() {
        let window = "uploadStartTimeInSeconds=1796256000&uploadEndTimeInSeconds=1796256300&token=t";
        assert!(uploads(&ping(&format!("{BASE}{DAILIES_PATH}?{window}"))).await.is_ok());
        for callback in [
            format!("https://169.254.169.254{DAILIES_PATH}?{window}"),
            format!("http://apis.garmin.com{DAILIES_PATH}?{window}"),
            format!("https://apis.garmin.com:8443{DAILIES_PATH}?{window}"),
            format!("{BASE}/wellness-api/rest/epochs?{window}"),
            format!("{BASE}{DAILIES_PATH}?uploadStartTimeInSeconds=1796256000&uploadEndTimeInSeconds=1796342401"),
            format!("{BASE}{DAILIES_PATH}?uploadStartTimeInSeconds=1796256300&uploadEndTimeInSeconds=1796256000"),
            format!("{BASE}{DAILIES_PATH}?uploadStartTimeInSeconds=1796256000"),
            format!("{BASE}{DAILIES_PATH}?{window}%20x"),
            "not a url".to_owned(),
        ] {
            assert!(matches!(uploads(&ping(&callback)).await, Err(WebhookError::Malformed(_))), "{callback}");
        }
    }

    #[tokio::test]
    async fn a_batch_keeps_its_readable_items_and_skips_the_others() {
        let window = "uploadStartTimeInSeconds=1796256000&uploadEndTimeInSeconds=1796256300&token=t";
        let body = serde_json::json!({ "dailies": [
            { "userId": "a1", "callbackURL": format!("https://evil.example{DAILIES_PATH}?{window}") },
            { "userId": "b2", "callbackURL": format!("{BASE}{DAILIES_PATH}?{window}") },
            { "userId": "../c3", "callbackURL": format!("{BASE}{DAILIES_PATH}?{window}") },
        ]})
        .to_string();
        let notices = uploads(&body).await.unwrap();
        assert_eq!(notices.iter().map(|n| n.account_id.as_str()).collect::<Vec<_>>(), ["b2"]);
    }

    #[tokio::test]
    async fn our_token_is_checked_before_the_body_is_read() {
        let v = verifier();
        let body = b"not even json";
        assert_eq!(v.verify_request("POST", "", &[], body).await, Err(WebhookError::MissingSignature));
        assert_eq!(v.verify_request("POST", "token=theirs", &[], body).await, Err(WebhookError::BadSignature));
        assert!(matches!(
            v.verify_request("POST", "token=our-secret", &[], body).await,
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(v.verify_request("GET", "token=our-secret", &[], b"").await, Err(WebhookError::Malformed(_))));
        let big = vec![b' '; v.max_body_bytes + 1];
        assert_eq!(v.verify_request("POST", "token=our-secret", &[], &big).await, Err(WebhookError::TooLarge));
        let unset = GarminWebhooks::new(&GarminSettings::new("c", SecretString::from("s"))).unwrap();
        assert_eq!(unset.verify_request("POST", "token=x", &[], b"{}").await, Err(WebhookError::BadSignature));
        let bad_user = r#"{"dailies":[{"userId":"../x","callbackURL":"https://apis.garmin.com/x"}]}"#;
        assert!(matches!(uploads(bad_user).await, Err(WebhookError::Malformed(_))));
    }
}
