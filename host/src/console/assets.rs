//! The console's stylesheet and scripts, embedded in the binary and served under a name carrying a
//! hash of their content: cached for a year, and a new build's pages name new files.

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// `console-<first 12 hex digits of the SHA-256>.css`.
    name: String,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Asset {
            name: format!("{stem}-{hex}.{extension}"),
            content_type,
            body,
        }
    }

    /// The path pages link to.
    pub fn url(&self) -> String {
        format!("/console/assets/{}", self.name)
    }
}

pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
});
pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
});

/// The template editor's live check and preview (`pages/templates.rs`).
pub static TEMPLATES_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "templates",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("assets/templates.js"),
    )
});

/// `GET /console/assets/{file}`: no session needed (nothing secret in them).
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = [&*CSS, &*JS, &*TEMPLATES_JS]
        .into_iter()
        .find(|a| a.name == file)
    else {
        return (StatusCode::NOT_FOUND, "no such console asset").into_response();
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        Body::from(asset.body),
    )
        .into_response()
}
