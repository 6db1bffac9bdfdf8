//! The baseline for the bench's start and size section: a `lambda_runtime` function that
//! answers every event with `{"hello": "world"}`, on the same Tokio runtime as the functions
//! and nothing else (no logging, no SDK, no TLS), so what a function adds shows as a ratio.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async { Ok::<_, Error>(json!({"hello": "world"})) }))
        .await
}
