//! HTTP calls from the control instance to its execution instances (`[[execution_instances]]`), through
//! their public API and with their API key. Plugins reach them only through the host's
//! `instances.request` service: the host owns connections, timeouts and credentials.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::config::ExecutionInstanceConfig;

/// Longest answer read from an execution instance (an archive page of 1000 events with their logs and
/// contexts stays well under it).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The configured execution instances, in configuration order.
pub struct ExecutionInstances {
    instances: Vec<Instance>,
    /// One connection pool for every instance.
    client: reqwest::Client,
}

struct Instance {
    name: String,
    /// Without a trailing `/`.
    base_url: String,
    /// `base_url` without a password, for messages and plugins.
    shown_url: String,
    api_key: Option<String>,
    timeout: Duration,
}

/// An execution instance's answer.
#[derive(Clone, Debug)]
pub struct InstanceResponse {
    pub status: u16,
    /// The JSON body; `null` when empty.
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("no execution instance named `{0}` is configured")]
    Unknown(String),
    #[error("execution instance `{instance}` ({url}) is unreachable: {reason}")]
    Unreachable {
        instance: String,
        url: String,
        reason: String,
    },
    #[error(
        "execution instance `{instance}` answered {status} with a body that is not JSON: {reason}"
    )]
    BadAnswer {
        instance: String,
        status: u16,
        reason: String,
    },
    #[error("cannot create the HTTP client for execution instances: {0}")]
    Client(String),
    #[error("bad request to an execution instance: {0}")]
    BadRequest(String),
}

impl ExecutionInstances {
    pub fn new(configs: &[ExecutionInstanceConfig]) -> Result<Self, InstanceError> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| InstanceError::Client(error_chain(&e)))?;
        Ok(ExecutionInstances {
            client,
            instances: configs
                .iter()
                .map(|c| Instance {
                    name: c.name.trim().to_owned(),
                    base_url: c.url.trim_end_matches('/').to_owned(),
                    shown_url: crate::urls::redact(c.url.trim_end_matches('/')),
                    api_key: c.api_key.clone().filter(|k| !k.is_empty()),
                    timeout: c.timeout,
                })
                .collect(),
        })
    }

    /// The instance names, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.instances.iter().map(|i| i.name.as_str())
    }

    /// Base URL of `name`, for display (any password replaced).
    pub fn url_of(&self, name: &str) -> Option<&str> {
        self.find(name).ok().map(|i| i.shown_url.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    fn find(&self, name: &str) -> Result<&Instance, InstanceError> {
        self.instances
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| InstanceError::Unknown(name.to_owned()))
    }

    /// Sends `method path` (path with its query, starting with `/`) to instance `name`, with a JSON body
    /// when given, and returns the status and the JSON answer, whatever the status.
    pub async fn request(
        &self,
        name: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<InstanceResponse, InstanceError> {
        let instance = self.find(name)?;
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(InstanceError::BadRequest(format!(
                "path `{path}` must start with a single `/`"
            )));
        }
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| InstanceError::BadRequest(format!("`{method}` is not an HTTP method")))?;
        let url = format!("{}{path}", instance.base_url);
        let mut request = self.client.request(method, &url).timeout(instance.timeout);
        if let Some(key) = &instance.api_key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| InstanceError::Unreachable {
            instance: instance.name.clone(),
            url: instance.shown_url.clone(),
            reason: error_chain(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(InstanceError::BadAnswer {
                instance: instance.name.clone(),
                status,
                reason: format!("larger than {MAX_ANSWER_BYTES} bytes"),
            });
        }
        let bytes = response.bytes().await.map_err(unreachable)?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(InstanceError::BadAnswer {
                instance: instance.name.clone(),
                status,
                reason: format!("larger than {MAX_ANSWER_BYTES} bytes"),
            });
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| InstanceError::BadAnswer {
                instance: instance.name.clone(),
                status,
                reason: e.to_string(),
            })?
        };
        Ok(InstanceResponse { status, body })
    }
}

/// `e` and its sources, for an error message that says why (reqwest's own text is often just
/// "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
