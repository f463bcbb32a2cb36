//! The one error type of the HTTP and admin APIs, and how it becomes an answer:
//! `{"error":{"code","message","field"?}}` with a status that says whose fault it is.

use hyper::StatusCode;
use serde_json::json;

use crate::http::response::{HttpResponse, json_response};

/// Declares [`ErrorCode`] from one table of (variant, wire string).
macro_rules! error_codes {
    ($( $(#[$meta:meta])* $variant:ident = $text:literal, )+) => {
        /// The `error.code` of an answer (docs/api.md), also the `reason` label of
        /// `mc_events_refused_total` and the SOAP fault's detail. Clients match on these strings, so
        /// they never change; a new failure gets a new code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$meta])* $variant, )+
        }

        impl ErrorCode {
            /// The string on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)+
                }
            }
        }
    };
}

error_codes! {
    /// A field is missing, of the wrong type or out of range (`field` names it).
    InvalidField = "invalid_field",
    /// The body is not JSON, or not the JSON object expected.
    MalformedJson = "malformed_json",
    /// The body is not UTF-8.
    InvalidUtf8 = "invalid_utf8",
    /// More events than `server.max_batch_events` (413).
    BatchTooLarge = "batch_too_large",
    /// A body over `server.max_body_bytes` (413).
    PayloadTooLarge = "payload_too_large",
    /// An idempotency key already used with another request (422).
    IdempotencyKeyReused = "idempotency_key_reused",
    /// A template that does not compile.
    TemplateError = "template_error",
    /// A proof asked of an instance without that channel (422).
    ChannelNotConfigured = "channel_not_configured",
    /// The admin API has no token configured (403).
    AdminDisabled = "admin_disabled",
    /// The workflow is stopped (422).
    WorkflowStopped = "workflow_stopped",
    /// A plugin reload was refused (422).
    ReloadFailed = "reload_failed",
    /// Missing or wrong bearer token (401).
    Unauthorized = "unauthorized",
    /// No such resource or route (404).
    NotFound = "not_found",
    /// The client did not send the body it announced within `server.body_read_timeout` (408).
    RequestTimeout = "request_timeout",
    /// The route exists, not with this method (405).
    MethodNotAllowed = "method_not_allowed",
    /// The database is unreachable or the server is shutting down (503).
    Unavailable = "unavailable",
    /// A bug or an unexpected failure (500), described in the log only.
    Internal = "internal",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: ErrorCode,
        field: Option<String>,
        message: String,
    },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{message}")]
    Forbidden { code: ErrorCode, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {route}")]
    MethodNotAllowed { method: String, route: String },
    #[error("{message}")]
    PayloadTooLarge {
        code: ErrorCode,
        field: Option<String>,
        message: String,
    },
    #[error("{message}")]
    Unprocessable {
        code: ErrorCode,
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("{0}")]
    Unavailable(String),
    /// The client did not send what it announced in time (`server.body_read_timeout`).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// 400 `invalid_field` naming `field`.
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: ErrorCode::InvalidField,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// 413 for a body over `limit` bytes.
    pub fn body_too_large(limit: usize) -> Self {
        ApiError::PayloadTooLarge {
            code: ErrorCode::PayloadTooLarge,
            field: None,
            message: format!(
                "the request body is larger than {limit} bytes (server.max_body_bytes)"
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest { code, .. } => *code,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::Forbidden { code, .. } => *code,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::PayloadTooLarge { code, .. } => *code,
            ApiError::Unprocessable { code, .. } => *code,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::RequestTimeout(_) => ErrorCode::RequestTimeout,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The JSON answer. Internal errors are logged, not described to the caller.
    pub fn into_response(self) -> HttpResponse {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let ApiError::BadRequest {
            field: Some(field), ..
        }
        | ApiError::PayloadTooLarge {
            field: Some(field), ..
        } = &self
        {
            error["field"] = json!(field);
        }
        let mut body = json!({ "error": error });
        if let ApiError::Unprocessable {
            details: Some(details),
            ..
        } = self
            && let (Some(body), Some(details)) = (body.as_object_mut(), details.as_object())
        {
            for (key, value) in details {
                body.insert(key.clone(), value.clone());
            }
        }
        let mut response = json_response(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<crate::ingest::validate::InputError> for ApiError {
    fn from(e: crate::ingest::validate::InputError) -> Self {
        if e.code == ErrorCode::BatchTooLarge {
            ApiError::PayloadTooLarge {
                code: e.code,
                field: e.field,
                message: e.message,
            }
        } else {
            ApiError::BadRequest {
                code: e.code,
                field: e.field,
                message: e.message,
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable { .. } => {
                ApiError::Unavailable(format!("{e}; retry later"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::ingest::IngestError> for ApiError {
    fn from(e: crate::ingest::IngestError) -> Self {
        match e {
            crate::ingest::IngestError::Store(store) => store.into(),
            crate::ingest::IngestError::ShuttingDown => ApiError::Unavailable(
                "the server is shutting down; retry on another instance".to_owned(),
            ),
        }
    }
}
