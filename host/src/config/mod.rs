//! The host's configuration: a TOML file, `MC_*` environment overrides, defaults and validation.
//!
//! Loading happens in four steps so that every failure can name the exact key at fault:
//!
//! 1. the file is parsed into a plain [`toml::Table`] (a syntax error keeps the toml crate's
//!    line/column message);
//! 2. `MC_<SECTION>__<KEY>` environment variables are written into that table, so an override goes
//!    through exactly the same checks as the file;
//! 3. the table is deserialized through [`serde_path_to_error`], which turns "invalid socket address
//!    syntax" into "configuration key `server.listen`: invalid socket address syntax";
//! 4. cross-field rules that serde cannot express are checked ([`ConfigError::Invalid`] again).
//!
//! Every table rejects unknown keys, because a misspelt key silently falling back to its default is
//! the classic way to run production with the wrong settings. The one exception is
//! `[workflows.<name>]`: its extra keys are the plugin's own settings, which the host cannot know.

mod adobe;
mod channels;
mod control;

pub use adobe::{AdobeAccount, AdobeConfig};
pub use channels::{
    ChannelsConfig, EmailChannelConfig, RetryConfig, SmsChannelConfig, TemplatesConfig,
};
pub use control::{ExecutionInstanceConfig, RetentionConfig};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Prefix of the environment variables that override configuration keys.
const ENV_PREFIX: &str = "MC_";
/// Separator between key levels in an override variable (`MC_SERVER__LISTEN`); a single `_` belongs
/// to the key itself (`admin_listen`).
const ENV_SEPARATOR: &str = "__";
/// The accepted duration forms, repeated in every duration error so the fix is in the message.
const DURATION_FORMS: &str = "an integer followed by `ms`, `s`, `m`, `h` or `d` (\"250ms\", \"2s\", \"5m\", \"1h\", \"1d\"), or a bare integer number of seconds";

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
            .field("url", &redact_url_password(&self.url))
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

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (the I/O error is the `source`).
    #[error("cannot read configuration file `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("invalid TOML in {origin}: {message}")]
    Parse {
        /// The file path, or a description of where the text came from.
        origin: String,
        /// The toml crate's message, with line and column.
        message: String,
    },
    /// A key has a bad value, is unknown, or breaks a rule.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Full dotted path, e.g. `server.listen` or `workflows.archiving.interval`.
        key: String,
        /// What is wrong, and the environment variable that set it if one did.
        message: String,
    },
}

impl Config {
    /// Reads `path`, applies the `MC_*` variables of the process environment, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let env = process_env_overrides()?;
        Self::parse(&text, &path.display().to_string(), env)
    }

    /// Like [`Config::load`] but from text and an explicit environment, so tests do not depend on
    /// (or have to mutate) the process environment.
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::parse(text, "configuration text", env)
    }

    /// Whether the database is SQLite (single writer, file-based) rather than PostgreSQL.
    pub fn is_sqlite(&self) -> bool {
        self.database.url.starts_with("sqlite:")
    }

    fn parse(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|err: toml::de::Error| ConfigError::Parse {
                    origin: origin.to_owned(),
                    message: err.to_string().trim_end().to_owned(),
                })?;
        let mut overrides = apply_env_overrides(&mut table, env)?;
        let raw = deserialize_raw(&mut table, &mut overrides)?;
        let config = build(raw, &table).map_err(|p| p.into_error(&overrides))?;
        validate(&config).map_err(|p| p.into_error(&overrides))?;
        Ok(config)
    }
}

/// The file as serde sees it; [`WorkflowConfig::settings`] is built afterwards from the table.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    instance: InstanceConfig,
    server: ServerConfig,
    database: DatabaseConfig,
    plugins: PluginsConfig,
    workflows: BTreeMap<String, RawWorkflow>,
    auth: AuthConfig,
    log: LogConfig,
    channels: ChannelsConfig,
    templates: TemplatesConfig,
    execution_instances: Vec<ExecutionInstanceConfig>,
    retention: RetentionConfig,
    adobe: AdobeConfig,
}

/// The keys of `[workflows.<name>]` the host understands. No `deny_unknown_fields`: the other keys
/// are plugin settings, picked up from the table when building [`WorkflowConfig::settings`].
#[derive(Deserialize)]
#[serde(default)]
struct RawWorkflow {
    enabled: bool,
    plugin: Option<String>,
    #[serde(deserialize_with = "deserialize_duration")]
    interval: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    timeout: Duration,
    batch_size: u32,
}

impl Default for RawWorkflow {
    fn default() -> Self {
        Self {
            enabled: true,
            plugin: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            batch_size: 100,
        }
    }
}

/// One applied `MC_*` variable, kept to name it in errors and to retry its value as a string.
struct EnvOverride {
    var: String,
    /// The keys it set, as spelled in the table after case-insensitive matching.
    path: Vec<String>,
    raw: String,
    /// The value was parsed as a non-string TOML value and has not been retried as a string yet.
    typed: bool,
    /// The error the typed value gave, reported if the string retry fails too (it is the more
    /// useful one: "integer `300`, expected u8" rather than "string \"300\", expected u8").
    typed_error: Option<Problem>,
}

/// A configuration error not yet annotated with the environment variable that caused it.
#[derive(Clone)]
struct Problem {
    path: Vec<String>,
    message: String,
}

impl Problem {
    fn new(path: &[&str], message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
        }
    }

    fn into_error(self, overrides: &[EnvOverride]) -> ConfigError {
        // The last variable wins when several set the same key, so it is the one to blame.
        let culprit = overrides
            .iter()
            .rev()
            .find(|o| self.path.starts_with(&o.path) || o.path.starts_with(&self.path));
        let message = match culprit {
            Some(o) => format!("{} (set by environment variable {})", self.message, o.var),
            None => self.message,
        };
        ConfigError::Invalid {
            key: join_path(&self.path),
            message,
        }
    }
}

/// `a.b[0].c`: sequence indexes are already bracketed and take no dot.
fn join_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

/// The `MC_*` variables of the process. Non-UTF-8 variables outside the prefix are skipped (they
/// are none of our business); an `MC_*` one is an error rather than silently ignored.
fn process_env_overrides() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        match value.into_string() {
            Ok(value) => vars.push((name.to_owned(), value)),
            Err(_) => {
                return Err(ConfigError::Invalid {
                    key: name.to_owned(),
                    message: format!("environment variable {name} is not valid UTF-8"),
                });
            }
        }
    }
    Ok(vars)
}

/// Writes every `MC_<A>__<B>…` variable into `table`, in variable-name order so the result does
/// not depend on the order of the environment.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<EnvOverride>, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains(ENV_SEPARATOR))
        })
        .collect();
    vars.sort();

    let mut applied = Vec::with_capacity(vars.len());
    for (var, raw) in vars {
        let rest = &var[ENV_PREFIX.len()..];
        let segments: Vec<&str> = rest.split(ENV_SEPARATOR).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::Invalid {
                key: rest.to_ascii_lowercase().replace(ENV_SEPARATOR, "."),
                message: format!(
                    "environment variable {var} has an empty key segment (levels are separated by exactly `__`)"
                ),
            });
        }
        // "Parse as TOML when it is one": numbers, booleans, arrays, inline tables. Anything else
        // (addresses, URLs, "2s") is a string; a typed value aimed at a string key is retried as
        // a string in `deserialize_raw`.
        let (value, typed) = match raw.parse::<toml::Value>() {
            Ok(toml::Value::String(s)) => (toml::Value::String(s), false),
            Ok(value) => (value, true),
            Err(_) => (toml::Value::String(raw.clone()), false),
        };
        let path = set_override(table, &segments, value)
            .map_err(|p| p.into_error(&[]))
            .map_err(|err| mention_var(err, &var))?;
        applied.push(EnvOverride {
            var,
            path,
            raw,
            typed,
            typed_error: None,
        });
    }
    Ok(applied)
}

fn mention_var(err: ConfigError, var: &str) -> ConfigError {
    match err {
        ConfigError::Invalid { key, message } => ConfigError::Invalid {
            key,
            message: format!("{message} (set by environment variable {var})"),
        },
        other => other,
    }
}

/// Sets `value` at the key path `segments` (matched case-insensitively), creating missing tables,
/// and returns the path as spelled in the table.
fn set_override(
    table: &mut toml::Table,
    segments: &[&str],
    value: toml::Value,
) -> Result<Vec<String>, Problem> {
    let mut resolved: Vec<String> = Vec::with_capacity(segments.len());
    let mut current = table;
    let Some((last, parents)) = segments.split_last() else {
        return Ok(resolved);
    };
    for segment in parents {
        let key = match_key(current, segment, &resolved)?;
        resolved.push(key.clone());
        let slot = current
            .entry(key)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match slot {
            toml::Value::Table(inner) => inner,
            other => {
                let message = format!(
                    "is a {}, not a table, so it has no key `{}`",
                    other.type_str(),
                    last.to_ascii_lowercase()
                );
                return Err(Problem {
                    path: resolved,
                    message,
                });
            }
        };
    }
    let key = match_key(current, last, &resolved)?;
    resolved.push(key.clone());
    current.insert(key, value);
    Ok(resolved)
}

/// The existing key `segment` designates: the exact spelling, else the lowercase one, else the only
/// case-insensitive match (so `RTEVENTSPROCESSING` finds `rtEventsProcessing`); a new key is
/// lowercase, since that is how every host key is spelled.
fn match_key(table: &toml::Table, segment: &str, parent: &[String]) -> Result<String, Problem> {
    let lower = segment.to_ascii_lowercase();
    if table.contains_key(segment) {
        return Ok(segment.to_owned());
    }
    if table.contains_key(&lower) {
        return Ok(lower);
    }
    let mut matches = table.keys().filter(|k| k.eq_ignore_ascii_case(segment));
    match (matches.next(), matches.next()) {
        (None, _) => Ok(lower),
        (Some(only), None) => Ok(only.clone()),
        (Some(a), Some(b)) => {
            let mut path = parent.to_vec();
            path.push(lower);
            Err(Problem {
                path,
                message: format!("ambiguous: matches both `{a}` and `{b}`"),
            })
        }
    }
}

/// Sets a value at a path that [`set_override`] already created.
fn reset_value(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        match current.get_mut(key) {
            Some(toml::Value::Table(inner)) => current = inner,
            _ => return,
        }
    }
    current.insert(last.clone(), value);
}

/// Deserializes the table, retrying as a string any typed override that a string key refused
/// (`MC_AUTH__ADMIN_TOKEN=12345` is a token, not an integer).
fn deserialize_raw(
    table: &mut toml::Table,
    overrides: &mut [EnvOverride],
) -> Result<RawConfig, ConfigError> {
    loop {
        let err = match serde_path_to_error::deserialize::<_, RawConfig>(table.clone()) {
            Ok(raw) => return Ok(raw),
            Err(err) => err,
        };
        let problem = Problem {
            path: err.path().iter().map(|s| s.to_string()).collect(),
            message: err.inner().message().to_owned(),
        };
        let Some(culprit) = overrides.iter_mut().rev().find(|o| o.path == problem.path) else {
            return Err(problem.into_error(overrides));
        };
        if culprit.typed {
            culprit.typed = false;
            culprit.typed_error = Some(problem);
            let value = toml::Value::String(culprit.raw.clone());
            let path = culprit.path.clone();
            reset_value(table, &path, value);
            continue;
        }
        let reported = culprit.typed_error.clone().unwrap_or(problem);
        return Err(reported.into_error(overrides));
    }
}

/// Turns the deserialized file into a [`Config`], building each workflow's `settings`.
fn build(raw: RawConfig, table: &toml::Table) -> Result<Config, Problem> {
    let workflow_tables = table.get("workflows").and_then(toml::Value::as_table);
    let mut workflows = BTreeMap::new();
    for (name, wf) in raw.workflows {
        let wf_table = match workflow_tables.and_then(|t| t.get(&name)) {
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                return Err(Problem::new(
                    &["workflows", &name],
                    format!("must be a table, found a {}", other.type_str()),
                ));
            }
            None => &toml::Table::new(),
        };
        let settings = workflow_settings(&name, &wf, wf_table)?;
        workflows.insert(
            name,
            WorkflowConfig {
                enabled: wf.enabled,
                plugin: wf.plugin,
                interval: wf.interval,
                timeout: wf.timeout,
                batch_size: wf.batch_size,
                settings,
            },
        );
    }
    let mut auth = raw.auth;
    // One meaning for "no admin token", so consumers need not check both None and "".
    if auth.admin_token.as_deref() == Some("") {
        auth.admin_token = None;
    }
    Ok(Config {
        instance: raw.instance,
        server: raw.server,
        database: raw.database,
        plugins: raw.plugins,
        workflows,
        auth,
        log: raw.log,
        channels: raw.channels,
        templates: raw.templates,
        execution_instances: raw.execution_instances,
        retention: raw.retention,
        adobe: raw.adobe,
    })
}

/// The JSON object handed to the plugin (see [`WorkflowConfig::settings`]).
fn workflow_settings(
    name: &str,
    wf: &RawWorkflow,
    table: &toml::Table,
) -> Result<serde_json::Value, Problem> {
    let mut settings: serde_json::Map<String, serde_json::Value> = table
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect();
    for (key, duration) in [("interval", wf.interval), ("timeout", wf.timeout)] {
        let ms_key = format!("{key}_ms");
        if table.contains_key(&ms_key) {
            // Two sources for one value would let the plugin and the scheduler disagree.
            return Err(Problem::new(
                &["workflows", name, &ms_key],
                format!("is reserved: the host derives it from `{key}`, set `{key}` instead"),
            ));
        }
        if !table.contains_key(key) {
            settings.insert(key.to_owned(), format_duration(duration).into());
        }
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        settings.insert(ms_key, ms.into());
    }
    settings.insert("enabled".to_owned(), wf.enabled.into());
    let plugin = wf.plugin.as_deref().unwrap_or(name);
    settings.insert("plugin".to_owned(), plugin.into());
    settings.insert("batch_size".to_owned(), wf.batch_size.into());
    Ok(serde_json::Value::Object(settings))
}

/// TOML to JSON for plugin settings. Datetimes have no JSON type and become their TOML text;
/// NaN and infinities have no JSON representation and become `null`.
fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Rules that involve several keys or that serde's types cannot express.
fn validate(config: &Config) -> Result<(), Problem> {
    let server = &config.server;
    // Port 0 asks the OS for a free port, so two port-0 listeners never collide (tests use it).
    if server.listen == server.admin_listen && server.listen.port() != 0 {
        return Err(Problem::new(
            &["server", "admin_listen"],
            format!(
                "must differ from `server.listen` (both are {})",
                server.listen
            ),
        ));
    }
    if server.max_body_bytes == 0 {
        return Err(Problem::new(
            &["server", "max_body_bytes"],
            "must be at least 1",
        ));
    }
    if server.max_batch_events == 0 {
        return Err(Problem::new(
            &["server", "max_batch_events"],
            "must be at least 1",
        ));
    }

    let db = &config.database;
    let url = db.url.as_str();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(Problem::new(
            &["database", "url"],
            format!(
                "`{}` is not supported: expected `sqlite:…`, `postgres://…` or `postgresql://…`",
                redact_url_password(url)
            ),
        ));
    }
    if db.max_connections == 0 {
        return Err(Problem::new(
            &["database", "max_connections"],
            "must be at least 1",
        ));
    }
    if db.connect_timeout.is_zero() {
        return Err(Problem::new(
            &["database", "connect_timeout"],
            "must be greater than 0",
        ));
    }

    for (name, wf) in &config.workflows {
        if wf.interval.is_zero() {
            return Err(Problem::new(
                &["workflows", name, "interval"],
                "must be greater than 0",
            ));
        }
        if wf.timeout.is_zero() {
            return Err(Problem::new(
                &["workflows", name, "timeout"],
                "must be greater than 0",
            ));
        }
        if wf.batch_size == 0 {
            return Err(Problem::new(
                &["workflows", name, "batch_size"],
                "must be at least 1",
            ));
        }
        if wf.plugin.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(Problem::new(
                &["workflows", name, "plugin"],
                "must not be empty (leave it out to use the workflow name)",
            ));
        }
    }

    // An empty key would let a request with an empty credential through.
    if let Some(index) = config.auth.api_keys.iter().position(|k| k.is_empty()) {
        return Err(Problem::new(
            &["auth", "api_keys", &format!("[{index}]")],
            "must not be empty",
        ));
    }

    validate_execution_instances(config)?;
    if config.retention.purge_interval.is_zero() {
        return Err(Problem::new(
            &["retention", "purge_interval"],
            "must be greater than 0",
        ));
    }
    if let Err((path, message)) = config.adobe.check() {
        return Err(Problem { path, message });
    }

    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        return Err(Problem::new(
            &["log", "level"],
            format!(
                "`{}` is not a valid tracing filter: {err}",
                config.log.level
            ),
        ));
    }
    Ok(())
}

/// `[[execution_instances]]`: unique names, HTTP URLs, only where something archives them.
fn validate_execution_instances(config: &Config) -> Result<(), Problem> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, instance) in config.execution_instances.iter().enumerate() {
        let at = format!("[{index}]");
        let name = instance.name.trim();
        if name.is_empty() || name.len() > 100 || name.contains(['/', '?', '#']) {
            return Err(Problem::new(
                &["execution_instances", &at, "name"],
                "must be 1 to 100 characters, without `/`, `?` or `#`",
            ));
        }
        if !seen.insert(name.to_owned()) {
            return Err(Problem::new(
                &["execution_instances", &at, "name"],
                format!("`{name}` is used by two entries; names must be unique"),
            ));
        }
        if !(instance.url.starts_with("http://") || instance.url.starts_with("https://")) {
            return Err(Problem::new(
                &["execution_instances", &at, "url"],
                format!(
                    "`{}` is not an http:// or https:// URL",
                    redact_url_password(&instance.url)
                ),
            ));
        }
        if instance.timeout.is_zero() {
            return Err(Problem::new(
                &["execution_instances", &at, "timeout"],
                "must be greater than 0",
            ));
        }
    }
    if !config.execution_instances.is_empty() && !config.instance.role.controls() {
        return Err(Problem::new(
            &["execution_instances"],
            format!(
                "only a control instance archives execution instances; set `instance.role` to \"control\" or \"both\" (it is \"{}\")",
                config.instance.role
            ),
        ));
    }
    Ok(())
}

/// Parses a duration: `"250ms"`, `"2s"`, `"5m"`, `"1h"`, `"1d"`, or a bare integer of seconds
/// (`"30"`). The error says what is wrong and lists the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let bad = || format!("invalid duration `{text}`: expected {DURATION_FORMS}");
    if digits.is_empty() {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let millis_per_unit: u64 = match unit.trim_start() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

/// The shortest exact rendering of `d` in the syntax [`parse_duration`] accepts, for defaults in
/// workflow settings.
fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// serde `deserialize_with` for durations: a string in [`parse_duration`] syntax, or a
/// non-negative integer of seconds.
pub(crate) fn deserialize_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a duration: {DURATION_FORMS}")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            v.checked_mul(1_000)
                .map(Duration::from_millis)
                .ok_or_else(|| E::custom(format!("duration of {v} seconds is too large")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom(format!(
                    "invalid duration {v}: must not be negative; expected {DURATION_FORMS}"
                ))),
            }
        }
    }

    deserializer.deserialize_any(DurationVisitor)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and error messages.
pub(crate) fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..authority_start],
        &authority[..colon],
        &url[authority_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The key and message of an `Invalid` error; any other outcome fails the test.
    fn invalid(text: &str, vars: Vec<(String, String)>) -> (String, String) {
        match Config::from_toml_str(text, vars) {
            Err(ConfigError::Invalid { key, message }) => (key, message),
            other => panic!("expected ConfigError::Invalid, got {other:?}"),
        }
    }

    const FULL: &str = r#"
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
    fn execution_instances_and_retention() {
        let text = r#"
[instance]
role = "control"

[[execution_instances]]
name = "exec-1"
url = "http://10.0.0.1:8080/"
api_key = "secret"

[[execution_instances]]
name = "exec-2"
url = "https://exec-2.internal"
timeout = "2s"

[retention]
finished_events = "2d"
wait_for_archive = false
"#;
        let config = Config::from_toml_str(text, no_env()).expect("valid");
        assert_eq!(config.execution_instances.len(), 2);
        assert_eq!(
            config.execution_instances[0].api_key.as_deref(),
            Some("secret")
        );
        assert_eq!(
            config.execution_instances[0].timeout,
            Duration::from_secs(10)
        );
        assert_eq!(
            config.execution_instances[1].timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            config.retention.finished_events,
            Duration::from_secs(2 * 86_400)
        );
        assert_eq!(config.retention.purge_interval, Duration::from_secs(300));
        assert!(
            !format!("{:?}", config.execution_instances[0]).contains("secret"),
            "the API key is never logged"
        );

        let defaults = Config::from_toml_str("", no_env()).expect("defaults");
        assert!(defaults.retention.wait_for_archive, "safe by default");

        let duplicate = text.replace("exec-2", "exec-1");
        let (key, message) = invalid(&duplicate, no_env());
        assert_eq!(key, "execution_instances[1].name");
        assert!(message.contains("unique"), "{message}");

        let (key, _) = invalid(
            &text.replace("https://exec-2.internal", "exec-2:80"),
            no_env(),
        );
        assert_eq!(key, "execution_instances[1].url");

        let (key, message) = invalid(
            &text.replace("role = \"control\"", "role = \"execution\""),
            no_env(),
        );
        assert_eq!(key, "execution_instances");
        assert!(message.contains("control"), "{message}");

        let (key, _) = invalid("[retention]\npurge_interval = \"0s\"", no_env());
        assert_eq!(key, "retention.purge_interval");
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
    }

    #[test]
    fn workflow_extra_keys_reach_settings() {
        let config = Config::from_toml_str(FULL, no_env()).expect("valid file");
        let settings = &config.workflows["archiving"].settings;
        assert_eq!(settings["page_size"], 500);
        assert_eq!(settings["since"], "2024-01-01T00:00:00Z");
        assert_eq!(settings["accounts"], serde_json::json!(["a", "b"]));
        assert_eq!(settings["nested"]["deep"], 1.5);
        // Known keys with their effective values, durations twice.
        assert_eq!(settings["enabled"], true);
        assert_eq!(settings["plugin"], "archiving");
        assert_eq!(settings["batch_size"], 100);
        assert_eq!(settings["interval"], "1h");
        assert_eq!(settings["interval_ms"], 3_600_000);
        assert_eq!(settings["timeout"], "1m");
        assert_eq!(settings["timeout_ms"], 60_000);

        let rt = &config.workflows["rtEventsProcessing"].settings;
        assert_eq!(rt["plugin"], "rtEventsProcessing");
        assert_eq!(rt["interval"], "250ms");
        assert_eq!(rt["interval_ms"], 250);
        assert_eq!(rt["batch_size"], 10);
    }

    #[test]
    fn plugin_name_prefers_the_explicit_plugin() {
        let text = "[workflows.nightly]\nplugin = \"archiving\"\n[workflows.archiving]\n";
        let config = Config::from_toml_str(text, no_env()).expect("valid");
        assert_eq!(
            config.workflows["nightly"].plugin_name("nightly"),
            "archiving"
        );
        assert_eq!(
            config.workflows["archiving"].plugin_name("archiving"),
            "archiving"
        );
        assert_eq!(config.workflows["nightly"].settings["plugin"], "archiving");
    }

    #[test]
    fn env_overrides_strings_numbers_and_durations() {
        let config = Config::from_toml_str(
            FULL,
            env(&[
                ("MC_SERVER__LISTEN", "0.0.0.0:7000"),
                ("MC_SERVER__MAX_BATCH_EVENTS", "75"),
                ("MC_SERVER__SHUTDOWN_TIMEOUT", "2m"),
                ("MC_DATABASE__URL", "sqlite::memory:"),
                ("MC_DATABASE__CONNECT_TIMEOUT", "9"),
                ("MC_AUTH__ADMIN_TOKEN", "from-env"),
                ("MC_INSTANCE__ROLE", "control"),
                ("MC_LOG__FORMAT", "text"),
                ("MC_PLUGINS__REQUIRE_SAME_RUSTC", "false"),
            ]),
        )
        .expect("valid overrides");
        assert_eq!(config.server.listen, "0.0.0.0:7000".parse().expect("addr"));
        assert_eq!(config.server.max_batch_events, 75);
        assert_eq!(config.server.shutdown_timeout, Duration::from_secs(120));
        assert_eq!(config.database.url, "sqlite::memory:");
        assert!(config.is_sqlite());
        assert_eq!(config.database.connect_timeout, Duration::from_secs(9));
        assert_eq!(config.auth.admin_token.as_deref(), Some("from-env"));
        assert_eq!(config.instance.role, Role::Control);
        assert_eq!(config.log.format, LogFormat::Text);
        assert!(!config.plugins.require_same_rustc);
    }

    #[test]
    fn env_override_matches_workflow_names_case_insensitively() {
        let config = Config::from_toml_str(
            FULL,
            env(&[
                ("MC_WORKFLOWS__RTEVENTSPROCESSING__ENABLED", "false"),
                ("MC_WORKFLOWS__ARCHIVING__PAGE_SIZE", "50"),
            ]),
        )
        .expect("valid overrides");
        assert!(!config.workflows["rtEventsProcessing"].enabled);
        assert_eq!(
            config.workflows["rtEventsProcessing"].settings["enabled"],
            false
        );
        assert_eq!(config.workflows["archiving"].settings["page_size"], 50);
        assert_eq!(config.workflows.len(), 4, "no new workflow created");
    }

    #[test]
    fn env_override_can_add_keys_and_tables() {
        let config = Config::from_toml_str(
            "",
            env(&[
                ("MC_WORKFLOWS__NIGHTLY__INTERVAL", "1d"),
                ("MC_INSTANCE__NAME", "from-env"),
            ]),
        )
        .expect("valid overrides");
        let nightly = &config.workflows["nightly"];
        assert_eq!(nightly.interval, Duration::from_secs(86_400));
        assert_eq!(nightly.settings["interval"], "1d");
        assert_eq!(config.instance.name.as_deref(), Some("from-env"));
    }

    #[test]
    fn env_override_arrays_and_typed_values_for_string_keys() {
        let config = Config::from_toml_str(
            "",
            env(&[
                ("MC_AUTH__API_KEYS", r#"["a", "b"]"#),
                // Valid TOML integers and booleans, but these keys are strings.
                ("MC_AUTH__ADMIN_TOKEN", "12345"),
                ("MC_INSTANCE__NAME", "true"),
            ]),
        )
        .expect("valid overrides");
        assert_eq!(config.auth.api_keys, ["a", "b"]);
        assert_eq!(config.auth.admin_token.as_deref(), Some("12345"));
        assert_eq!(config.instance.name.as_deref(), Some("true"));
    }

    #[test]
    fn env_variables_without_double_underscore_are_ignored() {
        let config = Config::from_toml_str(
            "",
            env(&[
                ("MC_SERVER", "whatever"),
                ("MC_DEBUG", "1"),
                ("OTHER__SERVER__LISTEN", "nonsense"),
            ]),
        )
        .expect("ignored variables");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn empty_admin_token_means_none() {
        let config = Config::from_toml_str("[auth]\nadmin_token = \"\"\n", no_env()).expect("ok");
        assert_eq!(config.auth.admin_token, None);
        let config = Config::from_toml_str("", env(&[("MC_AUTH__ADMIN_TOKEN", "")])).expect("ok");
        assert_eq!(config.auth.admin_token, None);
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
    fn bad_duration_is_named_with_the_accepted_forms() {
        let (key, message) = invalid("[workflows.archiving]\ninterval = \"soon\"\n", no_env());
        assert_eq!(key, "workflows.archiving.interval");
        assert!(message.contains("`soon`"), "{message}");
        assert!(message.contains("\"250ms\""), "{message}");
        let (key, message) = invalid("[server]\nshutdown_timeout = -5\n", no_env());
        assert_eq!(key, "server.shutdown_timeout");
        assert!(message.contains("negative"), "{message}");
        let (key, _) = invalid("[plugins]\ndrain_timeout = true\n", no_env());
        assert_eq!(key, "plugins.drain_timeout");
    }

    #[test]
    fn out_of_range_instance_id_is_named() {
        let (key, message) = invalid("[instance]\nid = 300\n", no_env());
        assert_eq!(key, "instance.id");
        assert!(message.contains("300"), "{message}");
        let (key, _) = invalid("[instance]\nrole = \"leader\"\n", no_env());
        assert_eq!(key, "instance.role");
    }

    #[test]
    fn bad_database_url_is_named() {
        let (key, message) = invalid("[database]\nurl = \"mysql://x/y\"\n", no_env());
        assert_eq!(key, "database.url");
        assert!(message.contains("mysql://x/y"), "{message}");
        let (key, message) = invalid("[database]\nurl = \"ftp://u:pw@h/\"\n", no_env());
        assert_eq!(key, "database.url");
        assert!(!message.contains("pw"), "password leaked: {message}");
        for ok in ["sqlite::memory:", "postgresql://h/db", "postgres://h/db"] {
            let text = format!("[database]\nurl = \"{ok}\"\n");
            Config::from_toml_str(&text, no_env()).expect(ok);
        }
    }

    #[test]
    fn bad_override_names_key_and_variable() {
        let (key, message) = invalid("", env(&[("MC_SERVER__LISEN", "127.0.0.1:1")]));
        assert_eq!(key, "server.lisen");
        assert!(message.contains("unknown field"), "{message}");
        assert!(message.contains("MC_SERVER__LISEN"), "{message}");

        let (key, message) = invalid("", env(&[("MC_SERVER__ADMIN_LISTEN", "nowhere")]));
        assert_eq!(key, "server.admin_listen");
        assert!(message.contains("invalid socket address"), "{message}");
        assert!(message.contains("MC_SERVER__ADMIN_LISTEN"), "{message}");

        // The typed error is reported, not the one of the string retry.
        let (key, message) = invalid("", env(&[("MC_INSTANCE__ID", "300")]));
        assert_eq!(key, "instance.id");
        assert!(message.contains("integer `300`"), "{message}");
        assert!(message.contains("MC_INSTANCE__ID"), "{message}");

        // Validation errors name the variable too.
        let (key, message) = invalid("", env(&[("MC_DATABASE__URL", "mysql://x")]));
        assert_eq!(key, "database.url");
        assert!(message.contains("MC_DATABASE__URL"), "{message}");

        // Going below a non-table.
        let (key, message) = invalid("", env(&[("MC_LOG__LEVEL__X", "1")]));
        assert_eq!(key, "log.level");
        assert!(message.contains("MC_LOG__LEVEL__X"), "{message}");

        let (_, message) = invalid("", env(&[("MC_SERVER____LISTEN", "x")]));
        assert!(message.contains("empty key segment"), "{message}");
    }

    #[test]
    fn workflow_rules_are_checked() {
        let (key, _) = invalid("[workflows.a]\ninterval = \"0s\"\n", no_env());
        assert_eq!(key, "workflows.a.interval");
        let (key, _) = invalid("[workflows.a]\ntimeout = 0\n", no_env());
        assert_eq!(key, "workflows.a.timeout");
        let (key, _) = invalid("[workflows.a]\nbatch_size = 0\n", no_env());
        assert_eq!(key, "workflows.a.batch_size");
        let (key, _) = invalid("[workflows.a]\nbatch_size = -1\n", no_env());
        assert_eq!(key, "workflows.a.batch_size");
        let (key, message) = invalid("[workflows.a]\ninterval_ms = 5\n", no_env());
        assert_eq!(key, "workflows.a.interval_ms");
        assert!(message.contains("reserved"), "{message}");
        let (key, _) = invalid("[workflows]\na = 5\n", no_env());
        assert_eq!(key, "workflows.a");
    }

    #[test]
    fn cross_key_rules_are_checked() {
        let text = "[server]\nlisten = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n";
        let (key, _) = invalid(text, no_env());
        assert_eq!(key, "server.admin_listen");
        // Two OS-assigned ports never collide.
        let text = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n";
        Config::from_toml_str(text, no_env()).expect("port 0 twice is fine");

        let (key, _) = invalid("[log]\nlevel = \"info,foo=loud\"\n", no_env());
        assert_eq!(key, "log.level");
        let (key, _) = invalid("[auth]\napi_keys = [\"ok\", \"\"]\n", no_env());
        assert_eq!(key, "auth.api_keys[1]");
        let (key, _) = invalid("[auth]\napi_keys = [\"ok\", 3]\n", no_env());
        assert_eq!(key, "auth.api_keys[1]");
    }

    #[test]
    fn syntax_error_keeps_position_and_origin() {
        let err = Config::from_toml_str("[server]\nlisten = \n", no_env()).expect_err("syntax");
        match &err {
            ConfigError::Parse { origin, message } => {
                assert_eq!(origin, "configuration text");
                assert!(message.contains("line 2"), "{message}");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }

    #[test]
    fn load_reports_the_path() {
        let dir = std::env::temp_dir().join(format!("mc-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = dir.join("missing.toml");
        match Config::load(&missing) {
            Err(ConfigError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected Io, got {other:?}"),
        }
        let broken = dir.join("broken.toml");
        std::fs::write(&broken, "[server\n").expect("write");
        match Config::load(&broken) {
            Err(ConfigError::Parse { origin, message }) => {
                assert_eq!(origin, broken.display().to_string());
                assert!(message.contains("line 1"), "{message}");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
        for bad in [
            "",
            "s",
            "1.5s",
            "-1s",
            "2w",
            "1 h x",
            "99999999999999999999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("99999999999999999d").is_err());
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_url_password("postgres://u:p@h:5432/db?x=y@z"),
            "postgres://u:***@h:5432/db?x=y@z"
        );
        assert_eq!(
            redact_url_password("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(
            redact_url_password("sqlite://data/x.db?mode=rwc"),
            "sqlite://data/x.db?mode=rwc"
        );
    }
}
