//! `[[execution_instances]]` and `[retention]`: what a control instance archives, and how long an
//! execution instance keeps finished events.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::deserialize_duration;

/// One `[[execution_instances]]` entry: an execution instance this control instance archives and
/// publishes templates to (Adobe's "external account").
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionInstanceConfig {
    /// Unique among the entries; names the instance in the archive, the API and metrics.
    pub name: String,
    /// Base URL of its public API, e.g. `http://exec-1.internal:8080`.
    pub url: String,
    /// One of its `[auth] api_keys`, when it requires one.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Timeout of one request to it.
    #[serde(
        default = "default_instance_timeout",
        deserialize_with = "deserialize_duration"
    )]
    pub timeout: Duration,
}

fn default_instance_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Hand-written so that logs never print the API key.
impl fmt::Debug for ExecutionInstanceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionInstanceConfig")
            .field("name", &self.name)
            .field("url", &crate::urls::redact(&self.url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `[retention]`: the purge of finished events on an execution instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Finished events (and their delivery logs) are deleted this long after they became final.
    #[serde(deserialize_with = "deserialize_duration")]
    pub finished_events: Duration,
    /// Delete only events the control instance has acknowledged through the archive feed. Leave it on
    /// whenever a control instance archives this one: nothing unarchived is deleted then. Turn it off
    /// only on an instance no control instance archives, or finished events are kept for ever.
    pub wait_for_archive: bool,
    /// How often the purge runs.
    #[serde(deserialize_with = "deserialize_duration")]
    pub purge_interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            finished_events: Duration::from_secs(7 * 24 * 3600),
            wait_for_archive: true,
            purge_interval: Duration::from_secs(300),
        }
    }
}
