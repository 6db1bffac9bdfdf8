//! The HTTP client the AWS SDK sends with: the `reqwest` client the providers and the SSM call
//! already use (HTTP/1.1, rustls on aws-lc-rs, `crate::tls`'s settings), behind the SDK's
//! `HttpClient` trait.
//!
//! The SDK's own default client (`default-https-client`) is hyper with HTTP/2 compiled in and
//! its own rustls connector and root store: a second copy of an HTTP stack in every binary
//! (h2 alone was about 0.5 MB of each) for calls that HTTP/1.1 serves as well. Signing,
//! retries, timeouts and endpoints stay the SDK's: this only moves bytes. As the SDK's client
//! does, it follows no redirect, honours the connect and read timeouts the SDK asks for, and
//! reports timeouts and connection failures as such, so the SDK's retry policy is unchanged.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The client every `SdkConfig` of ours carries.
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestHttpClient::default())
}

/// One connector (one `reqwest::Client`, one connection pool) per pair of timeouts the SDK
/// asks for, built on the first request that needs it.
#[derive(Debug, Default)]
struct ReqwestHttpClient {
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for ReqwestHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(timeouts, _)| *timeouts == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(ReqwestConnector { client: build(key).map_err(Arc::new) });
        connectors.push((key, connector.clone()));
        connector
    }
}

fn build((connect_timeout, read_timeout): Timeouts) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(timeout) = connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = read_timeout {
        builder = builder.read_timeout(timeout);
    }
    if let Some(tls) = crate::tls::client_config() {
        builder = builder.tls_backend_preconfigured(tls);
    }
    builder.build()
}

#[derive(Debug)]
struct ReqwestConnector {
    client: Result<reqwest::Client, Arc<reqwest::Error>>,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|e| ConnectorError::other(e.to_string().into(), None))?;
            let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
            let (parts, body) = request.into_parts();
            // In-memory bodies (every request of ours) are sent with their length; a stream
            // is passed through as it is.
            let body = match body.bytes() {
                Some(bytes) => reqwest::Body::from(bytes.to_vec()),
                None => reqwest::Body::wrap(body),
            };
            let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
                .map_err(|e| ConnectorError::user(e.into()))?;
            let response = client.execute(request).await.map_err(connector_error)?;
            let response: http::Response<reqwest::Body> = response.into();
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The classes the SDK's retry policy reads: a timeout, an I/O failure (connect, reset,
/// a body cut short) or a request that cannot be sent as built.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_builder() {
        ConnectorError::user(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers one request with `response` and returns the request as it arrived.
    async fn serve_once(listener: tokio::net::TcpListener, response: &'static str) -> String {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = socket.read(&mut buffer).await.unwrap();
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            assert!(read > 0, "the client hung up");
        }
        socket.write_all(response.as_bytes()).await.unwrap();
        String::from_utf8(request).unwrap()
    }

    fn dynamo(endpoint: &str) -> aws_sdk_dynamodb::Client {
        let sdk = super::super::local_sdk_config(endpoint);
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk).retry_config(RetryConfig::disabled()).build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn the_sdk_sends_a_signed_request_and_reads_the_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let body = r#"{"TableNames":["steps"]}"#;
        let response: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let server = tokio::spawn(serve_once(listener, response));
        let out = dynamo(&endpoint).list_tables().send().await.unwrap();
        assert_eq!(out.table_names(), ["steps"]);
        let request = server.await.unwrap();
        let lower = request.to_lowercase();
        assert!(request.starts_with("POST / HTTP/1.1\r\n"), "{request}");
        assert!(lower.contains("\r\nx-amz-target: dynamodb_20120810.listtables\r\n"), "{request}");
        assert!(lower.contains("\r\nauthorization: aws4-hmac-sha256 credential=test/"), "{request}");
        assert!(request.ends_with("\r\n\r\n{}"), "{request}");
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_not_followed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(serve_once(
            listener,
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/\r\ncontent-length: 0\r\n\r\n",
        ));
        let error = dynamo(&endpoint).list_tables().send().await.unwrap_err();
        assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(307));
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_failure_the_sdk_may_retry() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let error = dynamo(&endpoint).list_tables().send().await.unwrap_err();
        match &error {
            aws_sdk_dynamodb::error::SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{error:?}"),
            other => panic!("not a dispatch failure: {other:?}"),
        }
    }
}
