//! `make dev`: StepSync on one machine. Starts the embedded DynamoDB on a kept file, creates
//! the table from template.yaml, and runs until Ctrl-C.

use std::path::PathBuf;
use stepsync_local::dynoxide::EmbeddedDynamo;
use stepsync_local::table;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // dynoxide logs every refused request (e.g. DescribeTable of a missing table) as a warning.
    stepsync::logging::init_with_default("info,dynoxide=error");
    let root = stepsync_local::workspace_root();
    let data = std::env::var_os("STEPSYNC_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| root.join(".data"));
    let port: u16 = std::env::var("STEPSYNC_DYNAMO_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let table_name = std::env::var("STEPSYNC_TABLE").unwrap_or_else(|_| "stepsync".to_owned());

    eprintln!("[1/2] starting the embedded DynamoDB on {}", data.join("stepsync.db").display());
    let dynamo = EmbeddedDynamo::on_file(&data.join("stepsync.db"), port).await?;
    let client = aws_sdk_dynamodb::Client::new(&stepsync::aws::local_sdk_config(dynamo.endpoint()));
    eprintln!("[2/2] table {table_name:?} from template.yaml");
    let created = table::ensure_table(&client, &table_name).await?;
    eprintln!(
        "ready: DynamoDB at {} (table {table_name:?} {}). Ctrl-C stops.",
        dynamo.endpoint(),
        if created { "created" } else { "kept from the last run" }
    );

    tokio::signal::ctrl_c().await?;
    eprintln!("stopping...");
    dynamo.stop().await;
    eprintln!("stopped cleanly");
    Ok(())
}
