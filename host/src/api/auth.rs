//! API keys: when `[auth] api_keys` is set, every `/api/v1` call presents one, as
//! `Authorization: Bearer <key>` or `X-Api-Key: <key>`.

use std::sync::Arc;

use hyper::Request;
use hyper::header::AUTHORIZATION;

use crate::admin::constant_time_eq;
use crate::error::ApiError;
use crate::http::guard::Check;

/// The configured keys, as a [`Check`] for the `/api/v1` routes (only installed when there are keys).
#[derive(Clone)]
pub struct ApiKeys(pub Arc<[String]>);

impl Check for ApiKeys {
    fn check(&self, request: &axum::extract::Request) -> Result<(), ApiError> {
        check(&self.0, request)
    }
}

pub fn check<B>(keys: &[String], request: &Request<B>) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    let headers = request.headers();
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim);
    match presented {
        // Compare with every key, without stopping at the first match, so timing says nothing.
        Some(key)
            if keys.iter().fold(false, |hit, k| {
                hit | constant_time_eq(k.as_bytes(), key.as_bytes())
            }) =>
        {
            Ok(())
        }
        _ => Err(ApiError::Unauthorized),
    }
}
