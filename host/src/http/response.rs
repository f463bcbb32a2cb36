//! Building answers: JSON and plain bodies, errors as axum answers, and the 405 every listener gives.

use axum::extract::MatchedPath;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::Serialize;

use crate::error::ApiError;

pub type HttpResponse = Response<Full<Bytes>>;

/// A JSON answer with `status`.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => with_type(status, bytes, "application/json"),
        Err(e) => with_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                r#"{{"error":{{"code":"internal","message":"response encoding failed: {e}"}}}}"#
            )
            .into_bytes(),
            "application/json",
        ),
    }
}

/// A plain-text answer with the given content type.
pub fn with_type(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: &'static str,
) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Errors answer as the JSON error body, wherever axum needs an answer (handlers, extractors, guards).
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        ApiError::into_response(self).map(axum::body::Body::new)
    }
}

/// The answer for a route that exists but not with this method, on every listener: the route is the
/// pattern (`/api/v1/templates/{name}`), as in metrics labels.
pub async fn method_not_allowed(method: Method, route: Option<MatchedPath>) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        route: route.as_ref().map_or("", MatchedPath::as_str).to_owned(),
    }
}
