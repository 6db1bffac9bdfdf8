//! Secrets from SSM Parameter Store: read once per cold start, never logged.
//!
//! One call, `GetParameters` with decryption, signed with SigV4 by `aws-sigv4` (the crate the
//! SDK itself signs with) and sent with the `reqwest` client the providers use. The generated
//! `aws-sdk-ssm` client was the largest unit of a clean build (126 of 920 CPU seconds, on the
//! critical path) for this one request.

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_smithy_runtime_api::client::identity::Identity;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Settings that hold secrets. Deployed, each comes from the SSM SecureString parameter named
/// by `{SETTING}_PARAMETER` (decrypted with the stack's KMS key), never from a plain
/// environment value; locally the setting itself may be set.
pub const SECRET_SETTINGS: [&str; 13] = [
    "STEPSYNC_TOKEN_KEY",
    "STEPSYNC_TOKEN_KEY_PREVIOUS",
    "STEPSYNC_GOOGLE_CLIENT_SECRET",
    "STEPSYNC_GOOGLE_WEBHOOK_SECRET",
    "STEPSYNC_MISFIT_CLIENT_SECRET",
    "STEPSYNC_OURA_CLIENT_SECRET",
    "STEPSYNC_OURA_VERIFICATION_TOKEN",
    "STEPSYNC_WITHINGS_CLIENT_SECRET",
    "STEPSYNC_WITHINGS_NOTIFY_TOKEN",
    "STEPSYNC_POLAR_CLIENT_SECRET",
    "STEPSYNC_POLAR_WEBHOOK_SECRET",
    "STEPSYNC_GARMIN_CLIENT_SECRET",
    "STEPSYNC_GARMIN_NOTIFY_TOKEN",
];

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("reading secrets from SSM failed: {0}")]
    Ssm(String),
    #[error("the SSM parameter for {0} does not exist")]
    Missing(String),
}

/// Replaces every `{SETTING}_PARAMETER` in `vars`, for the `settings` this function loads
/// (a subset of `SECRET_SETTINGS`), by `{SETTING}` = the parameter's value, fetched in one
/// `GetParameters` call with decryption. Nothing is sent when nothing is wanted; other secrets
/// are never fetched. Values are never logged.
pub async fn resolve_secret_parameters(
    sdk: &SdkConfig,
    settings: &[&str],
    vars: &mut HashMap<String, String>,
) -> Result<(), SecretsError> {
    let wanted: Vec<(&str, String)> = SECRET_SETTINGS
        .iter()
        .filter(|setting| settings.contains(setting))
        .filter_map(|setting| {
            let name = vars.get(&format!("{setting}_PARAMETER")).filter(|n| !n.is_empty())?;
            Some((*setting, name.clone()))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = wanted.iter().map(|(_, name)| name.clone()).collect();
    names.sort();
    names.dedup();
    let found = get_parameters(sdk, &names).await?;
    for (setting, name) in wanted {
        let value = found.get(&name).ok_or_else(|| SecretsError::Missing(setting.to_owned()))?;
        vars.insert(setting.to_owned(), value.clone());
    }
    Ok(())
}

#[derive(Deserialize)]
struct GetParametersOutput {
    #[serde(rename = "Parameters", default)]
    parameters: Vec<Parameter>,
}

#[derive(Deserialize)]
struct Parameter {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Value")]
    value: String,
}

/// AWS's JSON error body: the error's type and a sentence (never a secret).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type", default)]
    kind: String,
    #[serde(default, alias = "Message")]
    message: String,
}

async fn get_parameters(sdk: &SdkConfig, names: &[String]) -> Result<HashMap<String, String>, SecretsError> {
    let failed = |what: &str| SecretsError::Ssm(what.to_owned());
    let region = sdk.region().map(|r| r.as_ref().to_owned()).ok_or_else(|| failed("no AWS region is configured"))?;
    let endpoint = sdk.endpoint_url().map_or_else(|| format!("https://ssm.{region}.amazonaws.com"), str::to_owned);
    let url = format!("{}/", endpoint.trim_end_matches('/'));
    let credentials = sdk
        .credentials_provider()
        .ok_or_else(|| failed("no AWS credentials are configured"))?
        .provide_credentials()
        .await
        .map_err(|e| SecretsError::Ssm(format!("AWS credentials: {e}")))?;
    let body = serde_json::to_vec(&serde_json::json!({"Names": names, "WithDecryption": true}))
        .map_err(|e| SecretsError::Ssm(e.to_string()))?;
    let headers = signed_headers(&credentials.into(), &region, SystemTime::now(), &url, &body)?;
    let mut builder =
        reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(10));
    if let Some(tls) = crate::tls::client_config() {
        builder = builder.tls_backend_preconfigured(tls);
    }
    let client = builder.build().map_err(|e| SecretsError::Ssm(format!("HTTP client: {e}")))?;
    let mut request = client.post(&url).body(body);
    for (name, value) in headers.iter().filter(|(name, _)| name != "host") {
        request = request.header(name.as_str(), value.as_str());
    }
    let answer = request.send().await.map_err(|e| SecretsError::Ssm(format!("GetParameters: {e}")))?;
    let status = answer.status();
    let bytes = answer.bytes().await.map_err(|e| SecretsError::Ssm(format!("GetParameters: {e}")))?;
    if !status.is_success() {
        let error = serde_json::from_slice::<ErrorBody>(&bytes)
            .unwrap_or(ErrorBody { kind: String::new(), message: String::new() });
        let kind = error.kind.rsplit('#').next().unwrap_or_default();
        return Err(SecretsError::Ssm(format!("GetParameters answered {status}: {kind} {}", error.message)));
    }
    let out: GetParametersOutput =
        serde_json::from_slice(&bytes).map_err(|_| failed("GetParameters answered something unreadable"))?;
    Ok(out.parameters.into_iter().map(|p| (p.name, p.value)).collect())
}

/// The headers of a `GetParameters` POST to `url` with `body`, SigV4-signed for SSM in `region`
/// at `time`: `host`, the JSON protocol's two, and what signing adds (`x-amz-date`,
/// `authorization`, and `x-amz-security-token` for temporary credentials).
fn signed_headers(
    identity: &Identity,
    region: &str,
    time: SystemTime,
    url: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, SecretsError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| SecretsError::Ssm(format!("{url} is not a URL")))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(SecretsError::Ssm(format!("{url} has no host"))),
    };
    let mut headers = vec![
        ("host".to_owned(), host),
        ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
        ("x-amz-target".to_owned(), "AmazonSSM.GetParameters".to_owned()),
    ];
    let signing_failed = |e: &dyn std::fmt::Display| SecretsError::Ssm(format!("signing GetParameters: {e}"));
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("ssm")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signing_failed(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| signing_failed(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| signing_failed(&e))?.into_parts();
    headers.extend(instructions.headers().map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned())));
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    fn at(rfc3339: &str) -> SystemTime {
        SystemTime::try_from(rfc3339.parse::<jiff::Timestamp>().unwrap()).unwrap()
    }

    /// AWS's published SigV4 example (IAM `ListUsers`, `AKIDEXAMPLE`, 2015-08-30T12:36:00Z)
    /// reproduces its published signature through the same signing call.
    #[test]
    fn signing_reproduces_the_published_sigv4_example() {
        let identity: Identity =
            Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "example").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("iam")
            .time(at("2015-08-30T12:36:00Z"))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers =
            [("content-type", "application/x-www-form-urlencoded; charset=utf-8"), ("host", "iam.amazonaws.com")];
        let request = SignableRequest::new(
            "GET",
            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            headers.into_iter(),
            SignableBody::Bytes(b""),
        )
        .unwrap();
        let (_, signature) = sign(request, &params).unwrap().into_parts();
        assert_eq!(signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    }

    #[test]
    fn get_parameters_is_signed_for_ssm_over_its_json_protocol_headers() {
        let identity: Identity = Credentials::new("AKID", "secret", Some("session".into()), None, "test").into();
        let body = br#"{"Names":["/stepsync/token-key"],"WithDecryption":true}"#;
        let headers =
            signed_headers(&identity, "eu-west-1", at("2026-12-03T07:00:00Z"), "http://127.0.0.1:5000/", body).unwrap();
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("host"), Some("127.0.0.1:5000"));
        assert_eq!(get("x-amz-target"), Some("AmazonSSM.GetParameters"));
        assert_eq!(get("x-amz-date"), Some("20261203T070000Z"));
        assert_eq!(get("x-amz-security-token"), Some("session"));
        let authorization = get("authorization").unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKID/20261203/eu-west-1/ssm/aws4_request, "));
        assert!(
            authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"),
            "{authorization}"
        );
        assert!(!authorization.contains("secret"));
    }
}
