//! The one handle every fake provider runs on: a router served on 127.0.0.1, stopped on demand,
//! with per-kind call counters and faults a test queues for the next calls.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not take every later request down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("building the HTTP client that calls subscribers: {0}")]
    Client(#[source] reqwest::Error),
    #[error("generating the SNS signing key: {0}")]
    Key(String),
    #[error("making the SNS certificate: {0}")]
    Certificate(String),
}

/// What a scripted fault does to the call it hits.
pub(crate) enum FaultAnswer {
    /// Waits, then answers normally: for client timeouts.
    After(Duration),
    /// Answers this instead of the real answer.
    Instead(Response),
}

/// A fault a test queues with [`FakeServer::fail_next`], in the provider's own terms.
pub(crate) trait InjectedFault: Clone + Send + 'static {
    fn answer(&self) -> FaultAnswer;
}

/// The faults of a fake that no test breaks on purpose: there are none.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NoFaults {}

impl InjectedFault for NoFaults {
    fn answer(&self) -> FaultAnswer {
        match *self {}
    }
}

/// Requests received, by kind ("token", "profile", ...); kinds never seen count 0.
#[derive(Default)]
struct Calls(HashMap<&'static str, u64>);

/// What a fake's routes share: the provider's own state `S`, the call counters, and faults `F`
/// queued per target `T` (`()` where one queue serves every endpoint).
pub(crate) struct Fake<S, F = NoFaults, T = ()> {
    state: Mutex<S>,
    calls: Mutex<Calls>,
    faults: Mutex<HashMap<T, VecDeque<F>>>,
}

impl<S, F: InjectedFault, T: Eq + Hash> Fake<S, F, T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    /// Counts one request of `kind`.
    pub(crate) fn count(&self, kind: &'static str) {
        *lock(&self.calls).0.entry(kind).or_default() += 1;
    }

    /// Applies the next fault queued for `target`: its answer, or `None` (after any wait) when
    /// the request is to be answered normally.
    pub(crate) async fn take_fault(&self, target: T) -> Option<Response> {
        let fault = lock(&self.faults).get_mut(&target).and_then(VecDeque::pop_front)?;
        match fault.answer() {
            FaultAnswer::After(wait) => {
                tokio::time::sleep(wait).await;
                None
            }
            FaultAnswer::Instead(response) => Some(response),
        }
    }

    /// A request of `kind` to `target` arrived: counts it, then applies the next fault queued
    /// for `target` (faulted requests count too).
    pub(crate) async fn received(&self, kind: &'static str, target: T) -> Option<Response> {
        self.count(kind);
        self.take_fault(target).await
    }
}

/// A running fake: its routes' shared [`Fake`] and the loopback server. Stops serving when
/// dropped or on [`FakeServer::stop`]; can close its socket and listen again on the same port,
/// for a provider that refuses connections for a while.
pub(crate) struct FakeServer<S, F = NoFaults, T = ()> {
    fake: Arc<Fake<S, F, T>>,
    /// For the logs: "fake Misfit".
    name: &'static str,
    port: u16,
    base_url: String,
    app: Router,
    running: Mutex<Option<Running>>,
}

impl<S, F, T> FakeServer<S, F, T>
where
    S: Send + 'static,
    F: InjectedFault,
    T: Eq + Hash + Send + 'static,
{
    /// Binds 127.0.0.1:`port` (0: any free port) and serves the router `routes` builds over `state`.
    pub(crate) async fn start(
        name: &'static str,
        port: u16,
        state: S,
        routes: impl FnOnce(Arc<Fake<S, F, T>>) -> Router,
    ) -> Result<Self, FakeError> {
        let fake = Arc::new(Fake { state: Mutex::new(state), calls: Mutex::default(), faults: Mutex::default() });
        let app = routes(fake.clone());
        let bind = |source| FakeError::Bind { port, source };
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(bind)?;
        let port = listener.local_addr().map_err(bind)?.port();
        let running = Running::spawn(name, listener, app.clone());
        let base_url = format!("http://127.0.0.1:{port}");
        Ok(Self { fake, name, port, base_url, app, running: Mutex::new(Some(running)) })
    }

    /// Stops accepting, closes idle connections and waits for open requests to finish.
    pub(crate) async fn stop(self) {
        self.close().await;
    }

    /// The port bound, the same after [`FakeServer::listen_again`].
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

    /// Listens again on the same port after [`FakeServer::close`]; nothing happens while listening.
    pub(crate) async fn listen_again(&self) -> Result<(), FakeError> {
        if lock(&self.running).is_some() {
            return Ok(());
        }
        let port = self.port;
        let listener =
            TcpListener::bind(("127.0.0.1", port)).await.map_err(|source| FakeError::Bind { port, source })?;
        *lock(&self.running) = Some(Running::spawn(self.name, listener, self.app.clone()));
        Ok(())
    }

    /// The provider's own state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        self.fake.lock()
    }

    /// Requests received of `kind`.
    pub(crate) fn calls(&self, kind: &str) -> u64 {
        lock(&self.fake.calls).0.get(kind).copied().unwrap_or(0)
    }

    pub(crate) fn reset_calls(&self) {
        lock(&self.fake.calls).0.clear();
    }

    /// The next `times` requests to `target` get `fault`, queued after faults already scripted.
    pub(crate) fn fail_next(&self, target: T, fault: F, times: u32) {
        let mut faults = lock(&self.fake.faults);
        faults.entry(target).or_default().extend(std::iter::repeat_n(fault, times as usize));
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.fake.faults).clear();
    }
}

/// One listening socket's server task and the signal that stops it (sent on drop too).
struct Running {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
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
