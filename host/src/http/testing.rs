//! Calling a router in process, as a connection would, and reading what it answers (tests only).

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

/// An answer: status, headers and the whole body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts that the body contains `needle`, showing the body if not.
    #[track_caller]
    pub fn assert_text_contains(&self, needle: &str) {
        assert!(self.text().contains(needle), "{}", self.text());
    }

    /// Asserts that [`Answer::error`] is (`code`, `message`).
    #[track_caller]
    pub fn assert_error(&self, code: &str, message: &str) {
        assert_eq!(self.error(), (code.to_owned(), message.to_owned()));
    }

    /// `error.code` and `error.message` of a JSON error body.
    pub fn error(&self) -> (String, String) {
        let body = self.json();
        (
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}

/// Sends `request` through `router`, as a connection would.
pub(crate) async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("a router never fails");
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("the body").to_bytes(),
    }
}
