//! SOAP faults: how every refusal of the SOAP endpoint is answered.
//!
//! Adobe Campaign answers errors as SOAP 1.1 faults (`faultcode`, `faultstring`, `detail`) with HTTP 500,
//! and its clients (the JavaScript SDK among them) read the fault from the body, so this endpoint does the
//! same; the exceptions are a body over the size limit (413, as on the JSON API) and a database outage (503),
//! where the status is what tells proxies and retrying clients what happened.

use hyper::StatusCode;

use super::envelope::{escape, response_document};
use crate::error::ApiError;
use crate::http::response::{HttpResponse, with_type};
use crate::ingest::validate::InputError;

/// The fault codes of SOAP 1.1 this endpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The request is at fault: bad XML, a refused token, an invalid event.
    Client,
    /// The server could not do it: database unavailable, internal error.
    Server,
    /// The envelope is not a SOAP 1.1 envelope.
    VersionMismatch,
}

impl FaultCode {
    fn qualified(self) -> &'static str {
        match self {
            FaultCode::Client => "SOAP-ENV:Client",
            FaultCode::Server => "SOAP-ENV:Server",
            FaultCode::VersionMismatch => "SOAP-ENV:VersionMismatch",
        }
    }
}

/// A refusal: its HTTP status, fault code, the message for people (`faultstring`, naming the field at fault
/// when there is one) and a machine-readable reason (`detail`, the same codes as the JSON API's errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{string}")]
pub struct SoapFault {
    pub status: StatusCode,
    pub code: FaultCode,
    pub string: String,
    pub detail: String,
}

impl SoapFault {
    /// A client fault with `reason` as its detail.
    pub fn client(reason: &str, message: impl Into<String>) -> Self {
        SoapFault {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: FaultCode::Client,
            string: message.into(),
            detail: reason.to_owned(),
        }
    }

    /// The reason code (`detail`), for metrics.
    pub fn reason(&self) -> &str {
        &self.detail
    }

    /// The fault as an HTTP answer.
    pub fn into_response(self) -> HttpResponse {
        let body = response_document(&format!(
            "<SOAP-ENV:Fault><faultcode>{}</faultcode><faultstring xsi:type='xsd:string'>{}</faultstring><detail xsi:type='xsd:string'>{}</detail></SOAP-ENV:Fault>",
            self.code.qualified(),
            escape(&self.string),
            escape(&self.detail),
        ));
        with_type(self.status, body, "text/xml; charset=utf-8")
    }
}

/// Validation errors name their field in the fault string, exactly as the JSON API names it.
impl From<InputError> for SoapFault {
    fn from(error: InputError) -> Self {
        let message = match &error.field {
            Some(field) => format!("invalid field `{field}`: {}", error.message),
            None => error.message.clone(),
        };
        SoapFault::client(error.code.as_str(), message)
    }
}

impl From<ApiError> for SoapFault {
    fn from(error: ApiError) -> Self {
        let status = error.status();
        let code = if status.is_server_error() {
            FaultCode::Server
        } else {
            FaultCode::Client
        };
        let string = match &error {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error on the SOAP endpoint");
                "internal error; see the server log".to_owned()
            }
            ApiError::BadRequest {
                field: Some(field),
                message,
                ..
            } => format!("invalid field `{field}`: {message}"),
            other => other.to_string(),
        };
        SoapFault {
            // Faults are 500 in SOAP 1.1; only size and availability keep their own status.
            status: match status {
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::SERVICE_UNAVAILABLE => status,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            code,
            string,
            detail: error.code().as_str().to_owned(),
        }
    }
}
