//! What every binary does: JSON logs, its settings read and checked before the first poll,
//! the `App` built once, by the first event, and each invocation's log lines tagged with its
//! request id.

use crate::app::{App, Prepared, StartError};
use lambda_http::{Body, Request, RequestExt, Response};
use lambda_runtime::{Error, LambdaEvent};
use std::future::Future;
use std::sync::Mutex;
use stepsync::config::Loads;
use tokio::sync::OnceCell;
use tracing::Instrument;

/// The app, built by the first event and then kept as long as the process (Lambda keeps it
/// between invocations). Until it is built, the checked settings wait here; a build that
/// fails is that invocation's error, and the next event tries again.
struct LazyApp {
    prepared: Mutex<Prepared>,
    app: OnceCell<&'static App>,
}

impl LazyApp {
    /// Logging, then the settings and secrets `loads` names: an error here fails the init.
    async fn from_env(loads: Loads) -> Result<&'static Self, StartError> {
        stepsync::logging::init();
        let prepared = Prepared::from_env(loads).await?;
        Ok(Box::leak(Box::new(Self { prepared: Mutex::new(prepared), app: OnceCell::new() })))
    }

    async fn get(&'static self) -> Result<&'static App, StartError> {
        let app = self
            .app
            .get_or_try_init(|| async {
                let prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let app = prepared.build().await?;
                // From here on the settings (secrets included) live in the app's `Config` only.
                self.prepared.lock().unwrap_or_else(|e| e.into_inner()).release();
                Ok::<_, StartError>(&*Box::leak(Box::new(app)))
            })
            .await?;
        Ok(app)
    }
}

/// Serves an HttpApi function with `handler`, loading what `loads` names.
pub async fn serve_http<F, Fut>(loads: Loads, handler: F) -> Result<(), Error>
where
    F: Fn(&'static App, Request) -> Fut + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    let app = LazyApp::from_env(loads).await?;
    // Each invocation's future calls the handler after the app is there, so it borrows it.
    let handler: &'static F = Box::leak(Box::new(handler));
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let request_id = req.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
        let span =
            tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = req.uri().path());
        async move {
            let app = app.get().await?;
            Ok::<_, Error>(handler(app, req).await)
        }
        .instrument(span)
    }))
    .await
}

/// Serves an EventBridge-triggered function with `handler` (given the app and the event),
/// loading what `loads` names.
pub async fn serve_events<F, Fut, T, E>(loads: Loads, handler: F) -> Result<(), Error>
where
    F: Fn(&'static App, LambdaEvent<serde_json::Value>) -> Fut + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    T: serde::Serialize,
    E: Into<Error>,
{
    let app = LazyApp::from_env(loads).await?;
    let handler: &'static F = Box::leak(Box::new(handler));
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        async move {
            let app = app.get().await?;
            handler(app, event).await.map_err(Into::into)
        }
        .instrument(span)
    }))
    .await
}
