//! Extractors the handlers share.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::error::ApiError;

/// The one `{parameter}` of a route (`{id}`, `{name}`), percent-decoded. A parameter that is not UTF-8
/// once decoded is refused as the JSON API refuses any invalid field, naming it.
pub struct Param(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Param {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Param(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => match e.into_kind() {
                axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } => Err(
                    ApiError::bad_request(key, "the path parameter is not UTF-8 once decoded"),
                ),
                other => Err(ApiError::Internal(format!("path parameter: {other}"))),
            },
            Err(other) => Err(ApiError::Internal(format!("path parameter: {other}"))),
        }
    }
}
