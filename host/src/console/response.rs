//! Console answers: HTML with the security headers every page carries, redirects, refusals.

use axum::body::Body;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue,
    LOCATION, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The pages' policy: scripts and styles only from the console's own files (no inline ones), frames
/// only from the console (the sandboxed message view), and never framed by anyone.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// The rendered message's policy: a sandbox (no script, no same-origin access, no forms), no network
/// at all (remote images are tracking pixels), the message's own inline styles, and framed only by
/// the console.
pub const MESSAGE_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
     frame-ancestors 'self'";

fn headers(csp: &'static str, framing: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static(framing));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Pages show live state and may be personal data: never cached.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
}

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut headers = headers(PAGE_CSP, "DENY");
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    (status, headers, Body::from(body)).into_response()
}

/// A JSON answer to a console script (the editor's live check), with the pages' headers.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut headers = headers(PAGE_CSP, "DENY");
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    (status, headers, Body::from(value.to_string())).into_response()
}

/// A CSV download (a report's export): `text/csv`, saved as `filename` (ASCII letters, digits, `-`
/// and `.` only, so the header needs no quoting rules beyond its quotes).
pub fn csv(filename: &str, body: String) -> Response {
    let mut headers = headers(PAGE_CSP, "DENY");
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let safe: String = filename
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    (StatusCode::OK, headers, Body::from(body)).into_response()
}

/// The rendered message of an event, for the sandboxed frame.
pub fn message(body: String) -> Response {
    let mut headers = headers(MESSAGE_CSP, "SAMEORIGIN");
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    (StatusCode::OK, headers, Body::from(body)).into_response()
}

/// 303 to `location` (a console path), with `extra` headers (a cookie).
pub fn see_other(location: &str, extra: Option<HeaderMap>) -> Response {
    let mut headers = headers(PAGE_CSP, "DENY");
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    if let Some(extra) = extra {
        headers.extend(extra);
    }
    (StatusCode::SEE_OTHER, headers, Body::empty()).into_response()
}

/// A plain-text refusal (403 for a viewer's or a forged POST), also what a script fetching a fragment
/// sees.
pub fn refuse(status: StatusCode, reason: &str) -> Response {
    let mut headers = headers(PAGE_CSP, "DENY");
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (status, headers, Body::from(reason.to_owned())).into_response()
}

/// A refused request, as a value: what [`refuse`] answers.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    /// 400 naming what is wrong with the request.
    pub fn bad_request(message: String) -> Self {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }

    pub fn forbidden(message: &str) -> Self {
        Refusal {
            status: StatusCode::FORBIDDEN,
            message: message.to_owned(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        refuse(self.status, &self.message)
    }
}
