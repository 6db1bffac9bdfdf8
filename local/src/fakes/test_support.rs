//! Helpers the fakes' own tests share: a client that shows redirects, fixtures, and a
//! subscriber that records what it is sent.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::Url;
use serde_json::Value;

use super::server::{Fake, FakeServer};

/// A client that answers redirects instead of following them, as a test wants to see them.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The repository's fixture `fixtures/{provider}/{name}`, as bytes.
pub(crate) fn fixture(provider: &str, name: &str) -> Vec<u8> {
    stepsync::testing::fixture(provider, name)
}

pub(crate) fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

pub(crate) fn query_param(location: &str, name: &str) -> Option<String> {
    Url::parse(location).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub(crate) struct Captured {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// The status to answer for a request's index and headers.
type Respond = Box<dyn Fn(usize, &HeaderMap) -> u16 + Send>;

/// What a [`Receiver`] keeps: the requests so far, and how to answer the next.
struct Inbox {
    captured: Vec<Captured>,
    respond: Respond,
}

/// A subscriber on loopback that records every POST to `url`; stops when dropped.
pub(crate) struct Receiver {
    pub(crate) url: String,
    server: FakeServer<Inbox>,
}

impl Receiver {
    pub(crate) fn requests(&self) -> Vec<Captured> {
        self.server.lock().captured.clone()
    }
}

/// A [`Receiver`] answering the status `respond` gives for the request's index and headers.
pub(crate) async fn receiver(respond: impl Fn(usize, &HeaderMap) -> u16 + Send + 'static) -> Receiver {
    let inbox = Inbox { captured: Vec::new(), respond: Box::new(respond) };
    let server = FakeServer::start("test subscriber", 0, inbox, |fake| {
        Router::new().route("/webhook", post(record)).with_state(fake)
    })
    .await
    .unwrap();
    Receiver { url: format!("{}/webhook", server.base_url()), server }
}

async fn record(State(fake): State<Arc<Fake<Inbox>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut inbox = fake.lock();
    inbox.captured.push(Captured { headers: headers.clone(), body: body.to_vec() });
    let index = inbox.captured.len() - 1;
    StatusCode::from_u16((inbox.respond)(index, &headers)).unwrap()
}
