//! What every provider's webhook does the same way: refusing oversized and non-POST requests,
//! finding headers whatever their case, reading a JSON list (or a lone object) of
//! notifications, and merging the notices for one account.

use crate::ports::{DataNotice, WebhookError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Refuses a body over `max_body_bytes` first (before anything reads it), then any method
/// but POST, with the provider's own reason.
pub(super) fn refuse_unless_small_post(
    method: &str,
    body: &[u8],
    max_body_bytes: usize,
    not_a_post: impl FnOnce() -> String,
) -> Result<(), WebhookError> {
    if body.len() > max_body_bytes {
        return Err(WebhookError::TooLarge);
    }
    if !method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(not_a_post()));
    }
    Ok(())
}

/// For a source that signs nothing (Withings, Garmin): a body over `max_body_bytes` refused,
/// then one whose query does not carry our secret as `token`, compared in constant time
/// (hashed first: the comparison leaks no length). No secret configured refuses everything.
pub(super) fn refuse_unless_small_with_token(
    secret: Option<&SecretString>,
    query: &str,
    body: &[u8],
    max_body_bytes: usize,
) -> Result<(), WebhookError> {
    if body.len() > max_body_bytes {
        return Err(WebhookError::TooLarge);
    }
    check_query_token(secret, query)
}

fn check_query_token(secret: Option<&SecretString>, query: &str) -> Result<(), WebhookError> {
    let given = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v);
    let Some(given) = given else { return Err(WebhookError::MissingSignature) };
    let Some(secret) = secret else { return Err(WebhookError::BadSignature) };
    let expected = Sha256::digest(secret.expose_secret().as_bytes());
    if bool::from(expected.ct_eq(&Sha256::digest(given.as_bytes()))) { Ok(()) } else { Err(WebhookError::BadSignature) }
}

/// The first header named one of `names` (lower case), whatever the case it arrived in.
pub(super) fn header<'a>(headers: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    headers.iter().find(|(name, _)| names.iter().any(|n| name.eq_ignore_ascii_case(n))).map(|(_, value)| value.as_str())
}

/// At most 80 characters of `text`: enough for a reason, never a whole body.
pub(super) fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The items of a JSON array, or a lone object read as a list of one. The two reasons are
/// the provider's words for a body that is not JSON, and for JSON that is neither.
pub(super) fn json_items(json: &[u8], not_json: &str, not_a_list: &str) -> Result<Vec<Value>, WebhookError> {
    match serde_json::from_slice::<Value>(json) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(object @ Value::Object(_)) => Ok(vec![object]),
        Ok(_) => Err(WebhookError::Malformed(not_a_list.to_owned())),
        Err(_) => Err(WebhookError::Malformed(not_json.to_owned())),
    }
}

/// Item `index` of a list (a `kind`, say "notification") could not be read.
pub(super) fn malformed_item(kind: &str, index: usize, why: &str) -> WebhookError {
    WebhookError::Malformed(format!("{kind} {index}: {}", short(why)))
}

/// A hex signature header's bytes (either case); `None` for anything else.
pub(super) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.is_empty() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

/// Adds `incoming` to the notice for the same account, if any; dates end sorted and unique.
pub(super) fn merge_notice(notices: &mut Vec<DataNotice>, mut incoming: DataNotice) {
    if let Some(notice) = notices.iter_mut().find(|n| n.account_id == incoming.account_id) {
        notice.dates.append(&mut incoming.dates);
        notice.dates.sort();
        notice.dates.dedup();
        notice.deleted |= incoming.deleted;
    } else {
        incoming.dates.sort();
        incoming.dates.dedup();
        notices.push(incoming);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LocalDate;

    fn notice(account: &str, dates: &[&str], deleted: bool) -> DataNotice {
        let dates = dates.iter().map(|d| LocalDate::parse(d).unwrap()).collect();
        DataNotice { account_id: account.into(), dates, deleted }
    }

    #[test]
    fn a_query_token_must_be_ours_and_without_a_secret_nothing_passes() {
        let ours = SecretString::from("our-secret");
        assert_eq!(
            refuse_unless_small_with_token(Some(&ours), "token=our-secret", b"1234", 3),
            Err(WebhookError::TooLarge)
        );
        assert_eq!(refuse_unless_small_with_token(Some(&ours), "token=our-secret", b"123", 3), Ok(()));
        assert_eq!(check_query_token(Some(&ours), "token=our-secret&x=1"), Ok(()));
        assert_eq!(check_query_token(Some(&ours), "x=1&token=our-secret"), Ok(()));
        assert_eq!(check_query_token(Some(&ours), "token=our-secreT"), Err(WebhookError::BadSignature));
        assert_eq!(check_query_token(Some(&ours), "token="), Err(WebhookError::BadSignature));
        assert_eq!(check_query_token(Some(&ours), ""), Err(WebhookError::MissingSignature));
        assert_eq!(check_query_token(None, "token=our-secret"), Err(WebhookError::BadSignature));
    }

    #[test]
    fn headers_are_found_in_any_case_and_the_first_match_wins() {
        let headers = vec![("X-Second".to_owned(), "2".to_owned()), ("x-first".to_owned(), "1".to_owned())];
        assert_eq!(header(&headers, &["x-second"]), Some("2"));
        assert_eq!(header(&headers, &["x-first", "x-second"]), Some("2"));
        assert_eq!(header(&headers, &["x-third"]), None);
    }

    #[test]
    fn notices_for_one_account_merge_into_one_with_sorted_unique_dates() {
        let mut notices = Vec::new();
        merge_notice(&mut notices, notice("a", &["2026-11-24", "2026-11-22", "2026-11-24"], false));
        merge_notice(&mut notices, notice("b", &["2026-11-20"], false));
        merge_notice(&mut notices, notice("a", &["2026-11-23", "2026-11-22"], true));
        assert_eq!(
            notices,
            [notice("a", &["2026-11-22", "2026-11-23", "2026-11-24"], true), notice("b", &["2026-11-20"], false)]
        );
    }

    #[test]
    fn a_list_or_a_lone_object_is_read_and_anything_else_refused_in_the_providers_words() {
        assert_eq!(json_items(b"[1, 2]", "not json", "not a list").unwrap().len(), 2);
        assert_eq!(json_items(b"{}", "not json", "not a list").unwrap().len(), 1);
        assert_eq!(json_items(b"42", "not json", "not a list"), Err(WebhookError::Malformed("not a list".into())));
        assert_eq!(json_items(b"{oops", "not json", "not a list"), Err(WebhookError::Malformed("not json".into())));
    }

    #[test]
    fn oversized_bodies_are_refused_before_the_method_is_looked_at() {
        let not_a_post = || "POSTs only".to_owned();
        assert_eq!(refuse_unless_small_post("GET", b"12345", 4, not_a_post), Err(WebhookError::TooLarge));
        assert_eq!(
            refuse_unless_small_post("GET", b"1234", 4, not_a_post),
            Err(WebhookError::Malformed("POSTs only".into()))
        );
        assert_eq!(refuse_unless_small_post("post", b"1234", 4, not_a_post), Ok(()));
    }
}
