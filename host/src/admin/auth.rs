//! Bearer-token check for the admin API.

use std::sync::Arc;

use hyper::Request;
use hyper::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::http::guard::Check;

/// The configured token, as a [`Check`] for every admin route but the probes.
#[derive(Clone)]
pub struct AdminToken(pub Option<Arc<str>>);

impl Check for AdminToken {
    fn check(&self, request: &axum::extract::Request) -> Result<(), ApiError> {
        check(self.0.as_deref(), request)
    }
}

/// Accepts the request only with `Authorization: Bearer <token>` matching the configured token; with no
/// token configured every call is refused (403), so an unconfigured server is never an open one.
pub fn check<B>(configured: Option<&str>, request: &Request<B>) -> Result<(), ApiError> {
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return Err(ApiError::Forbidden {
            code: crate::error::ErrorCode::AdminDisabled,
            message: "the admin API is disabled: set [auth] admin_token (or MC_AUTH__ADMIN_TOKEN) to enable it"
                .to_owned(),
        });
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Compares without an early exit (`subtle`), so response timing does not reveal how much of a guess
/// was right; only the lengths may differ in time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri("/admin/plugins");
        if let Some(auth) = auth {
            builder = builder.header(AUTHORIZATION, auth);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
    }

    #[test]
    fn no_configured_token_refuses_everything() {
        let err = check(None, &request(Some("Bearer x"))).unwrap_err();
        assert_eq!(err.code(), "admin_disabled");
        assert_eq!(
            check(Some(""), &request(None)).unwrap_err().code(),
            "admin_disabled"
        );
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        assert!(check(Some("s3cret"), &request(Some("Bearer s3cret"))).is_ok());
        assert_eq!(
            check(Some("s3cret"), &request(Some("Bearer s3cre")))
                .unwrap_err()
                .code(),
            "unauthorized"
        );
        assert_eq!(
            check(Some("s3cret"), &request(Some("s3cret")))
                .unwrap_err()
                .code(),
            "unauthorized"
        );
        assert_eq!(
            check(Some("s3cret"), &request(None)).unwrap_err().code(),
            "unauthorized"
        );
    }
}
