//! The HTTP edge shared by every API function: the one error type and its status table, the
//! route tables that drive dispatch, the caller's identity from the verified JWT claims, and
//! small request/response helpers.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use std::time::Duration;
use stepsync::domain::{ParseError, Provider, UserId};
use stepsync::services::{ChallengeError, ServiceError};

/// How long a client waits before retrying a request the service could not serve now.
const RETRY_AFTER_BUSY: Duration = Duration::from_secs(1);

/// Every way an API request can fail, mapped to one status in one place. Messages are for
/// people; internal details go to the log, never into the body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid {field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    LimitReached(String),
    #[error("the request body is too large")]
    TooLarge,
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: Duration },
    #[error("{0}")]
    Unavailable(String),
    #[error("something went wrong on our side; try again")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid { .. } => 400,
            ApiError::Unauthenticated => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) | ApiError::LimitReached(_) => 409,
            ApiError::TooLarge => 413,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Invalid { .. } => "invalid",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::LimitReached(_) => "limit_reached",
            ApiError::TooLarge => "too_large",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    /// Logs an unexpected error with what the person may not see, and hides it.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        ApiError::Internal
    }

    /// When a retry can help, how long to wait first: a `Retry-After` header.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            ApiError::Unavailable(_) => Some(RETRY_AFTER_BUSY),
            _ => None,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(*field),
            _ => None,
        };
        let mut response = json(
            self.status(),
            &serde_json::json!({"error": {"code": self.code(), "message": self.to_string(), "field": field}}),
        );
        if let Some(wait) = self.retry_after() {
            response.headers_mut().insert("retry-after", wait.as_secs().max(1).into());
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(message) => ApiError::BadRequest(message),
            ServiceError::Invalid { field, message } => ApiError::Invalid { field, message },
            ServiceError::Unauthenticated => ApiError::Unauthenticated,
            ServiceError::Forbidden(message) => ApiError::Forbidden(message),
            ServiceError::NotFound(what) => ApiError::NotFound(what),
            ServiceError::Conflict(message) => ApiError::Conflict(message),
            ServiceError::LimitReached(message) => ApiError::LimitReached(message),
            ServiceError::TooLarge => ApiError::TooLarge,
            ServiceError::TooSoon { message, retry_after } => ApiError::TooManyRequests { message, retry_after },
            // Throttling and lost races may pass on a retry: the client hears 503 and when.
            ServiceError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "busy: the request may pass on a retry");
                ApiError::Unavailable("the service is busy; try again in a moment".into())
            }
            ServiceError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

impl From<ChallengeError> for ApiError {
    fn from(e: ChallengeError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        ApiError::Invalid { field: e.field, message: e.message }
    }
}

pub fn json(status: u16, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(text))
        .unwrap_or_default()
}

pub fn empty(status: u16) -> Response<Body> {
    Response::builder().status(status).body(Body::Empty).unwrap_or_default()
}

/// `Cache-Control` for answers that carry a one-time credential or set one.
pub static NO_STORE: lambda_http::http::HeaderValue = lambda_http::http::HeaderValue::from_static("no-store");

pub fn redirect(location: &str, set_cookie: Option<&str>) -> Response<Body> {
    let mut builder =
        Response::builder().status(302).header("location", location).header("cache-control", NO_STORE.clone());
    if let Some(cookie) = set_cookie {
        builder = builder.header("set-cookie", cookie);
    }
    builder.body(Body::Empty).unwrap_or_default()
}

/// One route of a function: the HttpApi method and path template, and what serves it.
#[derive(Debug, Clone, Copy)]
pub struct Route<Op> {
    pub method: &'static str,
    pub path: &'static str,
    pub op: Op,
}

/// The (method, path) pairs of a route table, for `ROUTES`: the template test, the OpenAPI
/// test and the local router read these, dispatch reads the same table.
pub const fn paths<Op: Copy, const N: usize>(table: &[Route<Op>; N]) -> [(&'static str, &'static str); N] {
    let mut out = [("", ""); N];
    let mut i = 0;
    while i < N {
        out[i] = (table[i].method, table[i].path);
        i += 1;
    }
    out
}

/// The path parameters a route matched (`{provider}`, `{id}`), by name.
#[derive(Debug, Default)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The `{provider}` parameter; an unknown provider is as absent as an unknown route.
    pub fn provider(&self) -> Result<Provider, ApiError> {
        let raw = self.get("provider").ok_or_else(|| ApiError::NotFound("route".into()))?;
        raw.parse::<Provider>().map_err(|_| ApiError::NotFound(format!("provider {raw:?}")))
    }
}

/// The route of `table` that `req` asks for, with its parameters; `NotFound` for none.
pub fn route<Op: Copy>(table: &[Route<Op>], req: &Request) -> Result<(Op, Params), ApiError> {
    let path = req.uri().path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    for candidate in table.iter().filter(|r| r.method == req.method().as_str()) {
        let template: Vec<&'static str> = candidate.path.trim_matches('/').split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut params = Params::default();
        let matched =
            template.iter().zip(&segments).all(|(t, s)| match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                // A parameter as the client meant it: `a%7Cb` is `a|b` (a user id may hold `|`).
                Some(name) if !s.is_empty() => match percent_encoding::percent_decode_str(s).decode_utf8() {
                    Ok(value) => {
                        params.0.push((name, value.into_owned()));
                        true
                    }
                    Err(_) => false,
                },
                Some(_) => false,
                None => t == s,
            });
        if matched {
            return Ok((candidate.op, params));
        }
    }
    Err(ApiError::NotFound("route".into()))
}

/// Who is calling, from the claims the HttpApi JWT authorizer verified. Never from the body
/// or the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    /// The `admin` claim is `true` (company administrators create challenges).
    pub admin: bool,
}

fn claim(req: &Request, name: &str) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).and_then(|jwt| jwt.claims.get(name)).cloned()
        }
        _ => None,
    }
}

/// The caller's identity (`sub`) and role; 401 without verified claims.
pub fn caller_with_role(req: &Request) -> Result<Caller, ApiError> {
    let sub = claim(req, "sub").ok_or(ApiError::Unauthenticated)?;
    let user = UserId::parse(&sub).map_err(|_| ApiError::Unauthenticated)?;
    let admin = claim(req, "admin").is_some_and(|v| v == "true");
    Ok(Caller { user, admin })
}

/// The caller's user id (`sub`); 401 without verified claims.
pub fn caller(req: &Request) -> Result<UserId, ApiError> {
    caller_with_role(req).map(|c| c.user)
}

/// A short message of our own for a body that did not parse: where, and what kind of problem,
/// never the parser's text (it quotes what was sent).
fn json_problem(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Syntax | Category::Eof => "the body is not valid JSON",
        Category::Data => "the body's fields do not have the expected names or types",
        Category::Io => "the body could not be read",
    };
    format!("{what} (line {}, column {})", error.line(), error.column())
}

/// The largest JSON body any route takes (a phone's 31 days are about 2 KB): anything larger
/// is refused before it is parsed. Webhooks have their own cap (`MAX_WEBHOOK_BODY`).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Parses a JSON body into `T`, with a 400 that says what is wrong; 413 past `MAX_JSON_BODY`.
pub fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_JSON_BODY {
        return Err(ApiError::TooLarge);
    }
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("a JSON body is required".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(json_problem(&e)))
}

/// Like [`json_body`], for a route whose body may be left out: no body is `T::default()`.
pub fn optional_json_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    match body_bytes(req) {
        [] => Ok(T::default()),
        _ => json_body(req),
    }
}

/// A JSON number as the whole number it is, however it is written: `3`, `3.0` and `3e0` are
/// all JSON Schema's integer 3, which is what the contract calls an integer. `None` for a
/// fraction or for anything but a number; a number beyond `i64` saturates (it is above every
/// limit anyway).
pub fn whole_number(value: &serde_json::Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    if value.is_u64() {
        return Some(i64::MAX);
    }
    value.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)
}

pub fn query<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// A cookie's value from the `Cookie` header(s) (API Gateway v2 folds `cookies` into it).
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Header name/value pairs as received, for verifiers that read headers in any case.
pub fn header_pairs(req: &Request) -> Vec<(String, String)> {
    req.headers().iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned()))).collect()
}

/// The raw body bytes (base64-encoded bodies are decoded by lambda_http already).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

#[cfg(test)]
mod json_problem_tests {
    use super::json_problem;

    #[test]
    fn a_parse_error_is_answered_in_our_words_without_echoing_the_body() {
        let secret = r#"{"platform": "ya29.a-token-pasted-by-mistake"}"#;
        let data = serde_json::from_str::<std::collections::BTreeMap<String, u32>>(secret).unwrap_err();
        let message = json_problem(&data);
        assert!(message.starts_with("the body's fields do not have the expected names or types"), "{message}");
        assert!(!message.contains("ya29"), "{message}");
        let syntax = serde_json::from_str::<serde_json::Value>("{not json").unwrap_err();
        assert_eq!(json_problem(&syntax), "the body is not valid JSON (line 1, column 2)");
    }
}

#[cfg(test)]
mod whole_number_tests {
    use super::whole_number;
    use serde_json::json;

    #[test]
    fn a_whole_number_is_one_however_it_is_written_and_a_fraction_never() {
        for (written, expected) in [("3", 3), ("3.0", 3), ("3e0", 3), ("-2.0", -2), ("0.0", 0)] {
            let value: serde_json::Value = serde_json::from_str(written).unwrap();
            assert_eq!(whole_number(&value), Some(expected), "{written}");
        }
        assert_eq!(whole_number(&json!(u64::MAX)), Some(i64::MAX), "beyond i64 saturates");
        assert_eq!(whole_number(&json!(1e300)), Some(i64::MAX), "beyond i64 saturates");
        for not_whole in [json!(12.5), json!("3"), json!(null), json!(true), json!([3])] {
            assert_eq!(whole_number(&not_whole), None, "{not_whole}");
        }
    }
}

#[cfg(test)]
mod route_tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Erase;

    const TABLE: [Route<Erase>; 1] = [Route { method: "DELETE", path: "/v1/people/{user}", op: Erase }];

    fn request(path: &str) -> Request {
        lambda_http::http::Request::builder().method("DELETE").uri(path).body(Body::Empty).unwrap()
    }

    #[test]
    fn path_parameters_are_percent_decoded_and_bad_encodings_match_nothing() {
        let (_, params) = route(&TABLE, &request("/v1/people/.QZ%7CR%2BAn%3A")).unwrap();
        assert_eq!(params.get("user"), Some(".QZ|R+An:"));
        assert!(route(&TABLE, &request("/v1/people/%FF")).is_err(), "not UTF-8");
        assert!(route(&TABLE, &request("/v1/people/")).is_err());
    }
}
