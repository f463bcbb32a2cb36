//! The one error type of the HTTP and admin APIs, and how it becomes an answer:
//! `{"error":{"code","message","field"?}}` with a status that says whose fault it is.

use hyper::StatusCode;
use serde_json::json;

use crate::http::response::{HttpResponse, json_response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {route}")]
    MethodNotAllowed { method: String, route: String },
    #[error("{message}")]
    PayloadTooLarge {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
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
            code: "invalid_field",
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// 413 for a body over `limit` bytes.
    pub fn body_too_large(limit: usize) -> Self {
        ApiError::PayloadTooLarge {
            code: "payload_too_large",
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

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { code, .. } => code,
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Unavailable(_) => "unavailable",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Internal(_) => "internal",
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
        if e.code == "batch_too_large" {
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
