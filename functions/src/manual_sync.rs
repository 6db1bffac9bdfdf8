//! `manual-sync` (being written).

use crate::app::App;
use crate::http::ApiError;
use lambda_http::{Body, Request, Response};

pub async fn handle(_app: &App, _req: Request) -> Response<Body> {
    ApiError::NotFound("route".into()).into_response()
}
