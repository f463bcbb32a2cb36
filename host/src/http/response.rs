//! Building answers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

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
