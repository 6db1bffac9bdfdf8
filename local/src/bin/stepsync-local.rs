//! `make dev`: StepSync on one machine. The embedded DynamoDB on a kept file, the table from
//! template.yaml, the provider sandboxes, the real handlers behind the HttpApi's routes on
//! `127.0.0.1:${STEPSYNC_PORT:-3000}`, the in-process bus and the scheduler. Ctrl-C stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stepsync_local::stack::{LocalStack, StackOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // dynoxide logs every refused request (e.g. DescribeTable of a missing table) as a warning.
    stepsync::logging::init_with_default("warn,stepsync=info,functions=info");
    let root = stepsync_local::workspace_root();
    let data = std::env::var_os("STEPSYNC_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| root.join(".data"));
    let port: u16 = match std::env::var("STEPSYNC_PORT") {
        Ok(raw) => raw.parse().map_err(|_| format!("STEPSYNC_PORT={raw:?} is not a port"))?,
        Err(_) => 3000,
    };
    let tick: u64 = std::env::var("STEPSYNC_TICK_SECONDS").ok().and_then(|t| t.parse().ok()).unwrap_or(60);
    let options = StackOptions {
        port,
        data_dir: Some(data.clone()),
        table: std::env::var("STEPSYNC_TABLE").unwrap_or_else(|_| "stepsync".to_owned()),
        tick: Duration::from_secs(tick.max(1)),
    };
    let steps = [
        "starting the embedded DynamoDB",
        "starting the provider sandboxes",
        "starting the bus",
        "starting the API router",
    ];
    let stack = LocalStack::start(options, |step| {
        let n = steps.iter().position(|s| step.starts_with(s)).map_or(0, |i| i + 1);
        eprintln!("[{n}/{}] {step}", steps.len());
    })
    .await?;
    let stack = Arc::new(stack);
    // Demo mode is the default; STEPSYNC_DEMO=0 gives an empty stack.
    let demo = (std::env::var("STEPSYNC_DEMO").as_deref() != Ok("0")).then(|| {
        let every =
            Duration::from_millis(std::env::var("STEPSYNC_DEMO_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000));
        tokio::spawn(stepsync_local::demo::run(stack.clone(), every, true))
    });
    eprintln!("ready: StepSync at {} (data in {})", stack.base_url, data.display());
    eprintln!("  GET  {}/healthz", stack.base_url);
    eprintln!("  POST {}/dev/token  {{\"user\": \"alice\", \"admin\": false}}", stack.base_url);
    eprintln!("  GET  {}/dev/info   (sandbox URLs)", stack.base_url);
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
