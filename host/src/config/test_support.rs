//! Helpers shared by the configuration's unit tests.

pub(super) use std::time::Duration;

pub(super) use super::{Config, ConfigError, LogFormat, Role};

pub(super) fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The key and message of an `Invalid` error; any other outcome fails the test.
pub(super) fn invalid(text: &str, vars: Vec<(String, String)>) -> (String, String) {
    match Config::from_toml_str(text, vars) {
        Err(ConfigError::Invalid { key, message }) => (key, message),
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

pub(super) const FULL: &str = r#"
[instance]
id = 7
role = "both"
name = "paris-1"

[server]
listen = "0.0.0.0:9000"
admin_listen = "127.0.0.1:9001"
max_body_bytes = 2048
max_batch_events = 50
max_ctx_bytes = 1024
shutdown_timeout = "10s"

[database]
url = "postgres://mc:secret@db.internal/mc"
max_connections = 20
connect_timeout = 3

[plugins]
dir = "/opt/mc/plugins"
work_dir = "/var/lib/mc/plugins"
drain_timeout = "1m"
require_same_rustc = true

[workflows.rtEventsProcessing]
interval = "250ms"
batch_size = 10

[workflows.batchEventsProcessing]
interval = "5s"
timeout = "5m"
batch_size = 1000

[workflows.updateEventsStatus]
enabled = false

[workflows.archiving]
plugin = "archiving"
interval = "1h"
page_size = 500
since = 2024-01-01T00:00:00Z
accounts = ["a", "b"]
nested = { deep = 1.5 }

[auth]
api_keys = ["k1", "k2"]
admin_token = "admin-secret"

[log]
level = "message_center=debug,warn"
format = "json"
"#;
