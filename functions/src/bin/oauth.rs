//! Lambda entry point for `oauth (HttpApi: authorize, callback, disconnect)`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_http(functions::oauth::handle).await
}
