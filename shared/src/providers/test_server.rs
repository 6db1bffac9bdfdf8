//! A tiny HTTP server for the provider tests: answers from a script and records every request,
//! so a test can say what was fetched and how often.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The name-value pairs of a query string or a form body.
pub(super) fn pairs(encoded: &str) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://pairs.test/?{encoded}")).expect("a query string");
    url.query_pairs().into_owned().collect()
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body read as an `application/x-www-form-urlencoded` form.
    pub fn form(&self) -> BTreeMap<String, String> {
        pairs(&self.body_text())
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self { status, headers: Vec::new(), body: body.into(), delay: None }
    }

    /// A reply that says its body is JSON.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, body).with_header("content-type", "application/json")
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers only after `delay`, to trip the client's timeout.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Script = dyn Fn(&Recorded) -> Reply + Send + Sync;

#[derive(Clone)]
struct ServerState {
    script: Arc<Script>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

pub(super) struct TestServer {
    /// `http://127.0.0.1:{port}`, no trailing slash.
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    pub async fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState { script: Arc::new(script), requests: requests.clone() };
        let router = axum::Router::new().fallback(answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free local port");
        let base = format!("http://{}", listener.local_addr().expect("a bound address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, requests }
    }

    /// A server that gives every request the same reply.
    pub async fn replying(reply: Reply) -> Self {
        Self::start(move |_| reply.clone()).await
    }

    /// A server that gives the replies in turn, the last one to every later request.
    pub async fn sequence(replies: Vec<Reply>) -> Self {
        let next = std::sync::atomic::AtomicUsize::new(0);
        Self::start(move |_| {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst).min(replies.len() - 1);
            replies[index].clone()
        })
        .await
    }

    /// A server that answers every request with one status and body.
    pub async fn answering(status: u16, body: impl Into<String>) -> Self {
        Self::replying(Reply::new(status, body)).await
    }

    /// A base URL where nothing listens.
    pub async fn closed_port() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free local port");
        let base = format!("http://{}", listener.local_addr().expect("a bound address"));
        drop(listener);
        base
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

async fn answer(
    State(state): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
    };
    let reply = (state.script)(&recorded);
    state.requests.lock().expect("not poisoned").push(recorded);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).expect("a valid status"), reply.body).into_response();
    for (name, value) in reply.headers {
        let name = HeaderName::try_from(name).expect("a valid header name");
        response.headers_mut().insert(name, HeaderValue::from_str(&value).expect("a valid header value"));
    }
    response
}
