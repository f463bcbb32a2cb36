//! Reading request bodies with a size limit, so an over-size body is refused with 413 instead of being
//! buffered whole. Any body will do (hyper's on a connection, axum's in a router, a test's in memory).

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::header::CONTENT_LENGTH;

use crate::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::body_too_large(limit))
        }
        Err(e) => Err(ApiError::bad_request(
            "body",
            format!("could not read the body: {e}"),
        )),
    }
}

/// Reads the body of `request`, refusing more than `limit` bytes: at once when the declared
/// `Content-Length` is larger, otherwise as soon as more arrives.
pub async fn read_request_limited<B>(request: Request<B>, limit: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    read_limited(request.into_body(), limit).await
}
