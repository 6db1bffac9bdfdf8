//! What every binary does: JSON logs, the `App` built once per cold start, and each
//! invocation's log lines tagged with its request id.

use crate::app::App;
use lambda_http::{Body, Request, RequestExt, Response};
use lambda_runtime::{Error, LambdaEvent};
use std::future::Future;
use stepsync::config::Loads;
use tracing::Instrument;

/// The app lives as long as the process: Lambda keeps it between invocations.
async fn app(loads: Loads) -> Result<&'static App, Error> {
    stepsync::logging::init();
    Ok(Box::leak(Box::new(App::from_env(loads).await?)))
}

/// Serves an HttpApi function with `handler`, loading what `loads` names.
pub async fn serve_http<F, Fut>(loads: Loads, handler: F) -> Result<(), Error>
where
    F: Fn(&'static App, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    let app = app(loads).await?;
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let request_id = req.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
        let span =
            tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = req.uri().path());
        let answer = handler(app, req);
        async move { Ok::<_, Error>(answer.await) }.instrument(span)
    }))
    .await
}

/// Serves an EventBridge-triggered function with `handler` (given the app and the event),
/// loading what `loads` names.
pub async fn serve_events<F, Fut, T, E>(loads: Loads, handler: F) -> Result<(), Error>
where
    F: Fn(&'static App, LambdaEvent<serde_json::Value>) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send,
    T: serde::Serialize,
    E: Into<Error>,
{
    let app = app(loads).await?;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        let answer = handler(app, event);
        async move { answer.await.map_err(Into::into) }.instrument(span)
    }))
    .await
}
