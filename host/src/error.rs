//! The one error type of the HTTP and admin APIs, and how it becomes an answer:
//! `{"error":{"code","message","field"?}}` with a status that says whose fault it is.

use hyper::StatusCode;
use serde_json::json;

use crate::http::response::{HttpResponse, json_response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
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
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: Some(field.into()),
            message: message.into(),
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
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Unavailable(_) => "unavailable",
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
