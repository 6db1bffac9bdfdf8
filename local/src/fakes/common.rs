//! The small pieces every fake provider shares: random tokens, civil dates, reading requests,
//! the pieces of a consent page, and the client for calls to subscribers.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::civil::Date;
use rand::Rng;
use reqwest::Url;

/// `prefix` and 24 random bytes in URL-safe base64: codes and tokens no client can guess.
/// PKCE's S256: base64url (no padding) of SHA-256 of the verifier, as a consent page checks it.
pub(crate) fn pkce_s256(verifier: &str) -> String {
    use sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(crate) fn random_token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::rng().random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A civil date given as `yyyy-mm-dd` or as a date type; a malformed string is a test bug and panics.
pub trait IntoCivilDate {
    fn into_civil_date(self) -> Date;
}

impl IntoCivilDate for Date {
    fn into_civil_date(self) -> Date {
        self
    }
}

impl IntoCivilDate for &Date {
    fn into_civil_date(self) -> Date {
        *self
    }
}

impl IntoCivilDate for &str {
    fn into_civil_date(self) -> Date {
        self.parse().unwrap_or_else(|e| panic!("{self:?} is not a yyyy-mm-dd date: {e}"))
    }
}

impl IntoCivilDate for &&str {
    fn into_civil_date(self) -> Date {
        (*self).into_civil_date()
    }
}

impl IntoCivilDate for String {
    fn into_civil_date(self) -> Date {
        self.as_str().into_civil_date()
    }
}

impl IntoCivilDate for stepsync::domain::LocalDate {
    fn into_civil_date(self) -> Date {
        self.date()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading requests

/// The first value of `key` in query or form pairs.
pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The query pairs of `url`, as a test hands over an authorize URL; panics on anything else.
pub(crate) fn query_pairs(url: &str) -> Vec<(String, String)> {
    let parsed = Url::parse(url).unwrap_or_else(|e| panic!("{url:?} is not a URL: {e}"));
    parsed.query_pairs().into_owned().collect()
}

/// The token of an `Authorization: Bearer ..` header (the scheme in any case).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// `raw` as an http or https URL, as a `redirect_uri` must be.
pub(crate) fn http_url(raw: &str) -> Option<Url> {
    Url::parse(raw).ok().filter(|u| u.scheme() == "http" || u.scheme() == "https")
}

// ---------------------------------------------------------------------------------------------
// Consent pages

pub(crate) fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A whole HTML document around `body` (which is HTML already).
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
        escape_html(title)
    )
}

/// Fields carried through a form unchanged, one hidden input a line.
pub(crate) fn hidden_inputs<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    fields
        .into_iter()
        .map(|(name, value)| format!(r#"<input type="hidden" name="{name}" value="{}">"#, escape_html(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The page that lists the accounts to sign in as: `(id, href)` pairs, each link carrying its
/// id in `id_attribute` (`data-user-id`) for tests and scripts to find.
pub(crate) fn account_picker<'a>(
    title: &str,
    heading: &str,
    id_attribute: &str,
    accounts: impl IntoIterator<Item = (&'a str, String)>,
) -> String {
    let items: Vec<String> = accounts
        .into_iter()
        .enumerate()
        .map(|(i, (id, href))| {
            format!(
                r#"<li><a id="account-{i}" {id_attribute}="{id}" href="{href}">{id}</a></li>"#,
                id = escape_html(id),
                href = escape_html(&href),
            )
        })
        .collect();
    let list = if items.is_empty() {
        "<p id=\"no-accounts\">No accounts: call add_person on the fake first.</p>".to_owned()
    } else {
        format!("<ul id=\"accounts\">\n{}\n</ul>", items.join("\n"))
    };
    page(title, &format!("<h1>{heading}</h1>\n{list}"))
}

/// A consent page's two forms, both posting `decision` to `action`: `approve` and `deny` are
/// each form's fields (hidden inputs, checkboxes), `deny_label` the deny button's text.
pub(crate) fn decision_forms(action: &str, approve: &str, deny: &str, deny_label: &str) -> String {
    format!(
        r#"<form id="approve-form" method="post" action="{action}">
{approve}
<button type="submit" id="approve" name="decision" value="approve">Allow</button>
</form>
<form id="deny-form" method="post" action="{action}">
{deny}
<button type="submit" id="deny" name="decision" value="deny">{deny_label}</button>
</form>"#
    )
}

/// The 302 that sends the browser back to the client, or `None` if `location` cannot be a header.
pub(crate) fn found(location: &str) -> Option<Response> {
    let value = HeaderValue::from_str(location).ok()?;
    Some((StatusCode::FOUND, [(header::LOCATION, value)]).into_response())
}

// ---------------------------------------------------------------------------------------------
// Calling subscribers

/// A client for a fake's own calls to subscribers (webhooks, SNS deliveries): a short connect
/// timeout, `total` for the whole call, and redirects not followed, as providers do.
pub(crate) fn subscriber_client(total: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none())
}

/// Sends `request` and returns the status, or 0 when no HTTP answer came (refused, timed
/// out), which is logged as `what` got no answer.
pub(crate) async fn status_or_zero(request: reqwest::RequestBuilder, url: &str, what: &str) -> u16 {
    match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(e) => {
            tracing::warn!(url, error = %e, "{what} got no answer");
            0
        }
    }
}
