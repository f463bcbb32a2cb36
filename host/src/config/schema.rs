//! The shape of the configuration: one struct per table, with the defaults an empty file gets.
//!
//! Every table rejects unknown keys (`deny_unknown_fields`), because a misspelt key silently falling
//! back to its default is the classic way to run production with the wrong settings. The one
//! exception is `[workflows.<name>]`: its extra keys are the plugin's own settings, which the host
//! cannot know, so [`RawWorkflow`] only lists the keys the scheduler reads.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration::deserialize_duration;
use super::{
    AdobeConfig, BouncesConfig, ChannelsConfig, ConsoleConfig, ExecutionInstanceConfig,
    MonitoringConfig, QuarantineConfig, RetentionConfig, TemplatesConfig,
};

/// The whole configuration of one host process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Who this instance is: its id (top byte of event ids) and role.
    pub instance: InstanceConfig,
    /// Listeners, request limits and shutdown grace period.
    pub server: ServerConfig,
    /// Database connection.
    pub database: DatabaseConfig,
    /// Where plugins come from and how they are loaded and unloaded.
    pub plugins: PluginsConfig,
    /// `[workflows.<name>]`, only those the file (or the environment) names: the host adds none
    /// implicitly, so an instance runs exactly the workflows its operator listed.
    pub workflows: BTreeMap<String, WorkflowConfig>,
    /// API keys and admin token.
    pub auth: AuthConfig,
    /// Log level and format.
    pub log: LogConfig,
    /// Delivery channels: SMTP and the SMS gateway.
    pub channels: ChannelsConfig,
    /// Templates created at start.
    pub templates: TemplatesConfig,
    /// The execution instances a control instance archives and publishes templates to.
    pub execution_instances: Vec<ExecutionInstanceConfig>,
    /// How long finished events stay on an execution instance.
    pub retention: RetentionConfig,
    /// The Adobe Campaign compatible SOAP endpoint.
    pub adobe: AdobeConfig,
    /// The envelope sender of outgoing mail and the bounce listener.
    pub bounces: BouncesConfig,
    /// How long quarantine entries last.
    pub quarantine: QuarantineConfig,
    /// Adobe's monitoring indicators: window, refresh and thresholds.
    pub monitoring: MonitoringConfig,
    /// The operator console: session lifetime and users.
    pub console: ConsoleConfig,
    /// How webhook notifications are delivered.
    pub webhooks: super::WebhooksConfig,
}

/// `[instance]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceConfig {
    /// Top 8 bits of every event id this instance creates, so ids stay unique across all the
    /// execution instances one control instance archives.
    pub id: u8,
    /// Which half of the product this process runs.
    pub role: Role,
    /// Human-readable name, for logs and the admin API.
    pub name: Option<String>,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        Self {
            id: 1,
            role: Role::default(),
            name: None,
        }
    }
}

/// What an instance does: take events and deliver them (execution), archive execution instances
/// (control), or both in one process (small deployments, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts events and delivers messages.
    #[default]
    Execution,
    /// Archives the execution instances.
    Control,
    /// Both of the above.
    Both,
}

impl Role {
    /// Whether this instance serves the event API and runs the execution workflows.
    pub fn executes(self) -> bool {
        matches!(self, Role::Execution | Role::Both)
    }

    /// Whether this instance runs the control workflows (archiving).
    pub fn controls(self) -> bool {
        matches!(self, Role::Control | Role::Both)
    }

    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Execution => "execution",
            Role::Control => "control",
            Role::Both => "both",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Public API listener.
    pub listen: SocketAddr,
    /// Admin API listener; separate (and loopback by default) so it can stay off the public network.
    pub admin_listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most events accepted in one batch request.
    pub max_batch_events: usize,
    /// Largest accepted `ctx` object of one event, in bytes of JSON.
    pub max_ctx_bytes: usize,
    /// How long shutdown waits for in-flight requests and runs before giving up.
    #[serde(deserialize_with = "deserialize_duration")]
    pub shutdown_timeout: Duration,
    /// From a request's first byte to the end of its headers; a slower client's connection is closed.
    #[serde(deserialize_with = "deserialize_duration")]
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive once its headers are in; then 408.
    #[serde(deserialize_with = "deserialize_duration")]
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests before it is closed.
    #[serde(deserialize_with = "deserialize_duration")]
    pub idle_timeout: Duration,
    /// Connections each listener serves at once; one more is answered 503 and closed at once.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            max_body_bytes: 1024 * 1024,
            max_batch_events: 1000,
            max_ctx_bytes: 64 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// `[database]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:…` or `postgres://…` / `postgresql://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection before failing.
    #[serde(deserialize_with = "deserialize_duration")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/message-center.db?mode=rwc".to_owned(),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Hand-written so that logging the configuration never prints a database password.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::urls::redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `[plugins]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory scanned for plugin libraries.
    pub dir: PathBuf,
    /// The library file names in `dir` that are loaded (at start and on every reload); every other
    /// file there is skipped without being opened. `None` = every library in `dir`, which is what a
    /// directory holding only plugins wants, and what the tests' private directories rely on.
    pub files: Option<Vec<String>>,
    /// Where libraries are copied before they are loaded (each load gets a unique path, which is
    /// what makes hot reload possible); `None` = a private directory under the system temp dir.
    pub work_dir: Option<PathBuf>,
    /// How long an old generation's run in flight may take to finish after a reload.
    #[serde(deserialize_with = "deserialize_duration")]
    pub drain_timeout: Duration,
    /// Refuse plugins built by another rustc version than the host (the ABI check already covers
    /// the plugin-api version; this is the stricter opt-in).
    pub require_same_rustc: bool,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("target/release"),
            files: None,
            work_dir: None,
            drain_timeout: Duration::from_secs(30),
            require_same_rustc: false,
        }
    }
}

/// `[workflows.<name>]`: how the scheduler runs one workflow, plus the plugin's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowConfig {
    /// Whether the scheduler starts it (it can still be started through the admin API).
    pub enabled: bool,
    /// Plugin that implements it; `None` = the plugin named like the workflow.
    pub plugin: Option<String>,
    /// Pause between two runs.
    pub interval: Duration,
    /// Deadline of one run.
    pub timeout: Duration,
    /// Most items one run claims.
    pub batch_size: u32,
    /// After a wake-up (new work announced: an event pushed, a delivery finished), how long the run
    /// waits so that what arrives meanwhile joins it: at a steady trickle, one run per event costs
    /// its fixed part (a blocking-pool hop, a claim, a commit) per event; gathered, a run takes what
    /// came in those milliseconds at once. `0s` runs at once. Interval ticks do not wait.
    pub wake_delay: Duration,
    /// Every key of the table as a JSON object, handed to the plugin: the known keys with their
    /// effective values (defaults included; `plugin` resolved to the effective plugin name), each
    /// duration both as written under its key and in milliseconds under `<key>_ms`, and every
    /// extra key converted from TOML (datetimes as strings, non-finite floats as `null`).
    pub settings: serde_json::Value,
}

impl WorkflowConfig {
    /// The plugin that implements `workflow` (this table's key): the explicit `plugin` or the
    /// workflow name itself.
    pub fn plugin_name<'a>(&'a self, workflow: &'a str) -> &'a str {
        self.plugin.as_deref().unwrap_or(workflow)
    }
}

/// `[workflows.<name>] wake_delay` when absent: a few milliseconds gather a trickle of single events
/// into one run (see `host/benches/delivery.rs`'s latency series in BENCHMARKS.md) without a latency
/// anyone waits for.
pub const DEFAULT_WAKE_DELAY: Duration = Duration::from_millis(3);
/// The longest `wake_delay` accepted.
pub const MAX_WAKE_DELAY: Duration = Duration::from_secs(1);

/// `[auth]`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys accepted on the public API; empty = no API-key authentication.
    pub api_keys: Vec<String>,
    /// Bearer token of the admin API; `None` = the admin API refuses every call (an empty string
    /// in the file or environment is turned into `None` when loading).
    pub admin_token: Option<String>,
}

/// Hand-written so that logging the configuration never prints a secret.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter directives (`info`, `message_center=debug,sqlx=warn`); `RUST_LOG` wins.
    pub level: String,
    /// Output format on stderr.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::default(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The file as serde sees it; [`WorkflowConfig::settings`] is built afterwards from the table.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) instance: InstanceConfig,
    pub(super) server: ServerConfig,
    pub(super) database: DatabaseConfig,
    pub(super) plugins: PluginsConfig,
    pub(super) workflows: BTreeMap<String, RawWorkflow>,
    pub(super) auth: AuthConfig,
    pub(super) log: LogConfig,
    pub(super) channels: ChannelsConfig,
    pub(super) templates: TemplatesConfig,
    pub(super) execution_instances: Vec<ExecutionInstanceConfig>,
    pub(super) retention: RetentionConfig,
    pub(super) adobe: AdobeConfig,
    pub(super) bounces: BouncesConfig,
    pub(super) quarantine: QuarantineConfig,
    pub(super) monitoring: MonitoringConfig,
    pub(super) console: ConsoleConfig,
    pub(super) webhooks: super::WebhooksConfig,
}

/// The keys of `[workflows.<name>]` the host understands. No `deny_unknown_fields`: the other keys
/// are plugin settings, picked up from the table when building [`WorkflowConfig::settings`].
#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawWorkflow {
    pub(super) enabled: bool,
    pub(super) plugin: Option<String>,
    #[serde(deserialize_with = "deserialize_duration")]
    pub(super) interval: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub(super) timeout: Duration,
    pub(super) batch_size: u32,
    #[serde(deserialize_with = "deserialize_duration")]
    pub(super) wake_delay: Duration,
}

impl Default for RawWorkflow {
    fn default() -> Self {
        Self {
            enabled: true,
            plugin: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            batch_size: 100,
            wake_delay: DEFAULT_WAKE_DELAY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn the_shipped_configuration_is_valid() {
        let text = include_str!("../../../config/message-center.toml");
        let config = Config::from_toml_str(text, no_env()).expect("config/message-center.toml");
        assert_eq!(config.instance.role, Role::Both);
        assert!(config.execution_instances.is_empty());
        assert!(
            !config.retention.wait_for_archive,
            "a lone box purges by age"
        );
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = Config::from_toml_str("", no_env()).expect("defaults are valid");
        assert_eq!(config, Config::default());
        assert_eq!(config.instance.id, 1);
        assert_eq!(config.instance.role, Role::Execution);
        assert_eq!(
            config.server.listen,
            "127.0.0.1:8080".parse().expect("addr")
        );
        assert_eq!(
            config.server.admin_listen,
            "127.0.0.1:8081".parse().expect("addr")
        );
        assert_eq!(config.server.max_body_bytes, 1_048_576);
        assert_eq!(config.server.max_batch_events, 1000);
        assert_eq!(config.server.max_ctx_bytes, 65_536);
        assert_eq!(config.server.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(
            config.database.url,
            "sqlite://data/message-center.db?mode=rwc"
        );
        assert_eq!(config.database.max_connections, 10);
        assert_eq!(config.database.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.plugins.dir, PathBuf::from("target/release"));
        assert_eq!(config.plugins.work_dir, None);
        assert_eq!(config.plugins.drain_timeout, Duration::from_secs(30));
        assert!(!config.plugins.require_same_rustc);
        assert!(config.workflows.is_empty(), "no implicit workflows");
        assert!(config.auth.api_keys.is_empty());
        assert_eq!(config.auth.admin_token, None);
        assert_eq!(config.log.level, "info");
        assert_eq!(config.log.format, LogFormat::Text);
        assert!(config.is_sqlite());
    }

    #[test]
    fn full_example_file() {
        let config = Config::from_toml_str(FULL, no_env()).expect("valid file");
        assert_eq!(config.instance.id, 7);
        assert_eq!(config.instance.role, Role::Both);
        assert!(config.instance.role.executes() && config.instance.role.controls());
        assert_eq!(config.instance.name.as_deref(), Some("paris-1"));
        assert_eq!(config.server.listen, "0.0.0.0:9000".parse().expect("addr"));
        assert_eq!(config.server.max_body_bytes, 2048);
        assert_eq!(config.server.max_batch_events, 50);
        assert_eq!(config.server.max_ctx_bytes, 1024);
        assert_eq!(config.server.shutdown_timeout, Duration::from_secs(10));
        assert!(!config.is_sqlite());
        assert_eq!(config.database.max_connections, 20);
        assert_eq!(config.database.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.plugins.dir, PathBuf::from("/opt/mc/plugins"));
        assert_eq!(
            config.plugins.work_dir,
            Some(PathBuf::from("/var/lib/mc/plugins"))
        );
        assert_eq!(config.plugins.drain_timeout, Duration::from_secs(60));
        assert!(config.plugins.require_same_rustc);
        assert_eq!(config.workflows.len(), 4);

        let rt = &config.workflows["rtEventsProcessing"];
        assert!(rt.enabled);
        assert_eq!(rt.interval, Duration::from_millis(250));
        assert_eq!(rt.timeout, Duration::from_secs(60));
        assert_eq!(rt.batch_size, 10);
        assert_eq!(rt.plugin_name("rtEventsProcessing"), "rtEventsProcessing");

        let batch = &config.workflows["batchEventsProcessing"];
        assert_eq!(batch.timeout, Duration::from_secs(300));
        assert!(!config.workflows["updateEventsStatus"].enabled);
        assert_eq!(
            config.workflows["archiving"].interval,
            Duration::from_secs(3600)
        );

        assert_eq!(config.auth.api_keys, ["k1", "k2"]);
        assert_eq!(config.auth.admin_token.as_deref(), Some("admin-secret"));
        assert_eq!(config.log.level, "message_center=debug,warn");
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config::from_toml_str(FULL, no_env()).expect("valid file");
        let printed = format!("{config:?}");
        assert!(!printed.contains("admin-secret"), "{printed}");
        assert!(!printed.contains("k1"), "{printed}");
        assert!(!printed.contains("secret@"), "{printed}");
        assert!(
            printed.contains("postgres://mc:***@db.internal/mc"),
            "{printed}"
        );
        let text = "[database]\nurl = \"postgres://db.internal/mc?user=mc&password=s3cret\"\n";
        let config = Config::from_toml_str(text, no_env()).expect("valid file");
        let printed = format!("{:?}", config.database);
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("user=mc&password=***"), "{printed}");
    }

    #[test]
    fn unknown_key_is_named() {
        let (key, message) = invalid("[server]\nlisen = \"127.0.0.1:1\"\n", no_env());
        assert_eq!(key, "server.lisen");
        assert!(message.contains("unknown field"), "{message}");
        let err = Config::from_toml_str("[server]\nlisen = 1\n", no_env()).expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("configuration key `server.lisen`: unknown field"),
            "{err}"
        );
        let (key, _) = invalid("[serverr]\n", no_env());
        assert_eq!(key, "serverr");
        let (key, _) = invalid("[log]\ncolour = true\n", no_env());
        assert_eq!(key, "log.colour");
    }

    #[test]
    fn bad_address_is_named() {
        let (key, message) = invalid("[server]\nlisten = \"localhost\"\n", no_env());
        assert_eq!(key, "server.listen");
        assert!(
            message.contains("invalid socket address syntax"),
            "{message}"
        );
    }

    #[test]
    fn out_of_range_instance_id_is_named() {
        let (key, message) = invalid("[instance]\nid = 300\n", no_env());
        assert_eq!(key, "instance.id");
        assert!(message.contains("300"), "{message}");
        let (key, _) = invalid("[instance]\nrole = \"leader\"\n", no_env());
        assert_eq!(key, "instance.role");
    }
}
