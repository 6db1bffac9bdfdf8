//! What every fake provider shares: serving a router on loopback, locking, random tokens, call
//! counters, reading requests, the pieces of a consent page, and the outbound HTTP client.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::civil::Date;
use rand::Rng;
use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not take every later request down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `prefix` and 24 random bytes in URL-safe base64: codes and tokens no client can guess.
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
// Serving on loopback

/// A router served on 127.0.0.1; stops when dropped or on [`Serving::stop`]. It can also close
/// its socket and listen again on the same port, for a provider that refuses connections for a
/// while.
pub(crate) struct Serving {
    /// For the logs: "fake Misfit".
    name: &'static str,
    port: u16,
    base_url: String,
    app: Router,
    running: Mutex<Option<Running>>,
}

/// One listening socket's server task and the signal that stops it (sent on drop too).
struct Running {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Serving {
    /// Binds 127.0.0.1:`port` (0: any free port) and serves `app` there.
    pub(crate) async fn start(name: &'static str, port: u16, app: Router) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let running = Running::spawn(name, listener, app.clone());
        let base_url = format!("http://127.0.0.1:{port}");
        Ok(Self { name, port, base_url, app, running: Mutex::new(Some(running)) })
    }

    /// The port bound, the same after [`Serving::listen_again`].
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Closes the listening socket, so connections are refused, and waits for open requests
    /// to finish. Nothing happens if it is closed already.
    pub(crate) async fn close(&self) {
        let running = lock(&self.running).take();
        if let Some(running) = running {
            running.stop().await;
        }
    }

    /// Listens again on the same port after [`Serving::close`]; nothing happens while listening.
    pub(crate) async fn listen_again(&self) -> std::io::Result<()> {
        if lock(&self.running).is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        *lock(&self.running) = Some(Running::spawn(self.name, listener, self.app.clone()));
        Ok(())
    }

    /// Stops accepting, closes idle connections and waits for open requests to finish.
    pub(crate) async fn stop(self) {
        self.close().await;
    }
}

impl Running {
    fn spawn(name: &'static str, listener: TcpListener, app: Router) -> Self {
        let (shutdown, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serving.await {
                tracing::warn!(error = %e, "{name} stopped serving");
            }
        });
        Self { shutdown: Some(shutdown), task }
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Open requests still finish: the task outlives the handle.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Counting and reading requests

/// Requests received, by kind ("token", "profile", ...); kinds never seen count 0.
#[derive(Default)]
pub(crate) struct Calls(HashMap<&'static str, u64>);

impl Calls {
    pub(crate) fn count(&mut self, kind: &'static str) {
        *self.0.entry(kind).or_default() += 1;
    }

    pub(crate) fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    pub(crate) fn reset(&mut self) {
        self.0.clear();
    }
}

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
