//! Reading request bodies with a size limit, so an over-size body is refused with 413 instead of being
//! buffered whole, and a time limit, so a client that declares a body and never sends it is answered 408
//! instead of holding its request open. Any body will do (hyper's on a connection, axum's in a router, a
//! test's in memory).

use std::time::Duration;

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

/// How much of a body a listener reads, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// `server.max_body_bytes`.
    pub max_bytes: usize,
    /// `server.body_read_timeout`.
    pub read_timeout: Duration,
}

/// Reads the body of `request`, refusing more than `limits.max_bytes` bytes (at once when the declared
/// `Content-Length` is larger, otherwise as soon as more arrives) and a body still incomplete after
/// `limits.read_timeout`.
pub async fn read_request_limited<B>(
    request: Request<B>,
    limits: BodyLimits,
) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes as u64) {
        return Err(ApiError::body_too_large(limits.max_bytes));
    }
    match tokio::time::timeout(
        limits.read_timeout,
        read_limited(request.into_body(), limits.max_bytes),
    )
    .await
    {
        Ok(read) => read,
        Err(_) => Err(ApiError::RequestTimeout(format!(
            "the request body did not arrive within {:?} (server.body_read_timeout)",
            limits.read_timeout
        ))),
    }
}
