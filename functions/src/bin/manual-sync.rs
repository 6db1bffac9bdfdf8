//! Lambda entry point for `challenges` (HttpApi, JWT).

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    stepsync::logging::init();
    let app = functions::app::App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(functions::manual_sync::handle(app, req).await) }))
        .await
}
