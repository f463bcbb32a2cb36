//! The plugin's view of the host: typed service calls, logging, the clock and timers.
//!
//! A plugin has its own copy of std and of every crate it links, so it must not start a runtime, open a
//! database pool or install a logger: none of them would be connected to the host's. Everything that has
//! state or touches the outside world goes through [`Host`].

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::abi::{FfiLogLevel, HostHandle};
use crate::export;

/// A typed host service call: the request type names its service and its response type.
///
/// The request crosses the boundary as JSON, so a service can gain optional fields without an ABI change.
pub trait HostRequest: Serialize {
    /// The service's name, `group.method` (for instance `events.count`).
    const SERVICE: &'static str;
    /// What the service answers.
    type Response: DeserializeOwned;
}

/// Why a host call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The host answered with an error (unknown service, bad request, database unavailable, ...).
    Service {
        /// The service called.
        service: String,
        /// The host's message.
        message: String,
    },
    /// The request could not be encoded or the answer could not be decoded.
    Codec {
        /// The service called.
        service: String,
        /// What could not be encoded or decoded.
        message: String,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Service { service, message } => {
                write!(f, "host service {service}: {message}")
            }
            HostError::Codec { service, message } => {
                write!(f, "host service {service}: bad encoding: {message}")
            }
        }
    }
}

impl std::error::Error for HostError {}

/// The host's services for one run. Cheap to clone; valid only during the run it was given to.
#[derive(Clone, Copy)]
pub struct Host {
    handle: HostHandle,
}

impl Host {
    pub(crate) fn new(handle: HostHandle) -> Self {
        Host { handle }
    }

    /// Calls a typed host service.
    pub async fn request<R: HostRequest>(&self, request: &R) -> Result<R::Response, HostError> {
        let body = serde_json::to_string(request).map_err(|e| HostError::Codec {
            service: R::SERVICE.to_owned(),
            message: e.to_string(),
        })?;
        let answer = self.call_raw(R::SERVICE, &body).await?;
        serde_json::from_str(&answer).map_err(|e| HostError::Codec {
            service: R::SERVICE.to_owned(),
            message: e.to_string(),
        })
    }

    /// Calls a host service by name with a JSON request, for services this version of the crate has no
    /// type for. Prefer [`Host::request`].
    pub async fn call_raw(&self, service: &str, request_json: &str) -> Result<String, HostError> {
        export::host_call(self.handle, service, request_json)
            .await
            .map_err(|message| HostError::Service {
                service: service.to_owned(),
                message,
            })
    }

    /// Writes to the host's log, inside the current workflow run's span.
    pub fn log(&self, level: FfiLogLevel, message: &str) {
        export::host_log(self.handle, level, message);
    }

    /// Logs `message` at error level.
    pub fn error(&self, message: &str) {
        self.log(FfiLogLevel::Error, message);
    }

    /// Logs `message` at warning level.
    pub fn warn(&self, message: &str) {
        self.log(FfiLogLevel::Warn, message);
    }

    /// Logs `message` at info level.
    pub fn info(&self, message: &str) {
        self.log(FfiLogLevel::Info, message);
    }

    /// Logs `message` at debug level.
    pub fn debug(&self, message: &str) {
        self.log(FfiLogLevel::Debug, message);
    }

    /// The host's wall clock, in milliseconds since the Unix epoch.
    pub fn now_unix_millis(&self) -> i64 {
        export::host_now(self.handle)
    }

    /// Waits on the host's timer (a plugin has no runtime of its own to sleep on).
    pub async fn sleep(&self, duration: Duration) {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        export::host_sleep(self.handle, millis).await;
    }

    /// True once the host wants the current run to end early.
    pub fn cancel_requested(&self) -> bool {
        export::host_cancel_requested(self.handle)
    }
}
