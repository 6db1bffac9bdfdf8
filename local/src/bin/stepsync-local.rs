//! `make dev`: StepSync on one machine. The embedded DynamoDB on a kept file, the table from
//! template.yaml, the provider sandboxes, the real handlers behind the HttpApi's routes on
//! `127.0.0.1:${STEPSYNC_PORT:-3000}`, the in-process bus and the scheduler. Ctrl-C stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stepsync_local::stack::{LocalStack, StackOptions, StoreTarget};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Quiet by default, so the terminal shows the progress and the live leaderboard; the
    // handlers' JSON logs with `RUST_LOG=info make dev`. (dynoxide logs every refused request,
    // e.g. DescribeTable of a missing table, as a warning.)
    stepsync::logging::init_with_default("error,stepsync=warn,functions=warn,stepsync_local=warn");
    let root = stepsync_local::workspace_root();
    let data = std::env::var_os("STEPSYNC_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| root.join(".data"));
    let port = setting("STEPSYNC_PORT", 3000)?;
    let options = StackOptions {
        port,
        app_port: setting("STEPSYNC_APP_PORT", if port == 0 { 0 } else { port.saturating_add(1) })?,
        dynamo_port: setting("STEPSYNC_DYNAMO_PORT", 0)?,
        data_dir: Some(data.clone()),
        table: std::env::var("STEPSYNC_TABLE").unwrap_or_else(|_| "stepsync".to_owned()),
        tick: Duration::from_secs(setting::<u64>("STEPSYNC_TICK_SECONDS", 60)?.max(1)),
        store: StoreTarget::from_env(),
        ..StackOptions::default()
    };
    let demo_every = Duration::from_millis(setting("STEPSYNC_DEMO_MS", 3000)?);
    let steps = ["starting DynamoDB", "starting the provider sandboxes", "starting the bus", "starting the API router"];
    let stack = LocalStack::start(options, |step| {
        let n = steps.iter().position(|s| step.starts_with(s)).map_or(0, |i| i + 1);
        eprintln!("[{n}/{}] {step}", steps.len());
    })
    .await?;
    let stack = Arc::new(stack);
    // Demo mode is the default; STEPSYNC_DEMO=0 gives an empty stack.
    let demo = (std::env::var("STEPSYNC_DEMO").as_deref() != Ok("0"))
        .then(|| tokio::spawn(stepsync_local::demo::run(stack.clone(), demo_every, true)));
    eprintln!("ready: StepSync at {} (data in {})", stack.base_url, data.display());
    eprintln!("  open {}/ for the web console", stack.base_url);
    eprintln!("  open {}/ for an example company app on another origin (CORS)", stack.app_url);
    eprintln!("  GET  {}/healthz", stack.base_url);
    eprintln!("  POST {}/dev/token  {{\"user\": \"alice\", \"admin\": false}}", stack.base_url);
    eprintln!("  GET  {}/dev/info   (sandbox URLs)", stack.base_url);
    let accounts = stepsync_local::demo::add_sandbox_accounts(&stack);
    let names: Vec<&str> = accounts.iter().map(|(_, account)| account.as_str()).collect();
    eprintln!("  sandbox accounts free to connect on the consent pages: {}", names.join(", "));
    eprintln!("Ctrl-C stops.");
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping...");
    if let Some(demo) = demo {
        demo.abort();
        let _ = demo.await;
    }
    if let Ok(stack) = Arc::try_unwrap(stack) {
        stack.stop().await;
    }
    eprintln!("stopped cleanly");
    Ok(())
}

/// The number in `name`, or `default` when it is unset; a clear error when it is not a number.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(raw) => raw.trim().parse().map_err(|_| format!("{name}={raw:?} is not a valid number here")),
        Err(_) => Ok(default),
    }
}
