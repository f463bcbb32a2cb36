//! Reading request bodies with a size limit, so an over-size body is refused with 413 instead of being
//! buffered whole.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
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
