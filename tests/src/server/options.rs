//! [`ServerOptions`]: what a [`TestServer`](crate::TestServer) is configured with, and the configuration
//! file written from it.

use std::path::Path;

use super::channels::{EmailChannelOptions, SmsChannelOptions};
use crate::plugin_dir::PluginDir;

/// The admin token [`ServerOptions`] configures unless told otherwise.
pub const DEFAULT_ADMIN_TOKEN: &str = "test-admin-token";

/// The `[workflows.*]` tables of the three execution workflows, with short intervals for tests.
pub const PROCESSING_WORKFLOWS_TOML: &str = "\
[workflows.rtEventsProcessing]
interval = \"100ms\"
batch_size = 100

[workflows.batchEventsProcessing]
interval = \"200ms\"
batch_size = 500

[workflows.updateEventsStatus]
interval = \"100ms\"
batch_size = 500
";

/// What [`TestServer::start`](crate::TestServer::start) configures. Build with [`ServerOptions::new`] and the builder methods.
pub struct ServerOptions {
    /// The plugin directory; the server keeps it (see [`TestServer::plugin_dir`](crate::TestServer::plugin_dir)).
    pub plugins: PluginDir,
    /// `[workflows.*]` tables, as TOML text.
    pub workflows: String,
    /// `[auth] admin_token`; `None` configures no token (the admin API is then disabled).
    pub admin_token: Option<String>,
    /// `[database] url`; `None` means an SQLite file in the server's temporary directory.
    pub database_url: Option<String>,
    /// `[instance] role`.
    pub role: String,
    /// `[instance] id`.
    pub instance_id: u8,
    /// `[server] shutdown_timeout`.
    pub shutdown_timeout: String,
    /// `[plugins] drain_timeout`.
    pub drain_timeout: String,
    /// `[log] level`.
    pub log_level: String,
    /// Appended verbatim at the end of the configuration file.
    pub extra_toml: String,
    /// `[auth] api_keys`; empty (the default) writes no `api_keys` line, leaving the public API open.
    pub api_keys: Vec<String>,
    /// `[server] max_body_bytes`; `None` writes no line (the server's default).
    pub max_body_bytes: Option<usize>,
    /// `[server] max_batch_events`; `None` writes no line (the server's default).
    pub max_batch_events: Option<usize>,
    /// `[server] max_ctx_bytes`; `None` writes no line (the server's default).
    pub max_ctx_bytes: Option<usize>,
    /// `[server] admin_listen`; `127.0.0.1:0` unless told otherwise.
    pub admin_listen: String,
    /// More `[plugins]` lines (TOML), e.g. `files = ["liba.so"]`. See [`ServerOptions::plugin_setting`].
    pub plugin_settings: String,
    /// More `[server]` lines (TOML), e.g. `header_read_timeout = "2s"`. See [`ServerOptions::server_setting`].
    pub server_settings: String,
    /// `[channels.email]`; `None` writes no table. See [`ServerOptions::email_channel`].
    pub email_channel: Option<EmailChannelOptions>,
    /// `[channels.sms]`; `None` writes no table. See [`ServerOptions::sms_channel`].
    pub sms_channel: Option<SmsChannelOptions>,
}

impl ServerOptions {
    pub fn new(plugins: PluginDir) -> Self {
        ServerOptions {
            plugins,
            workflows: String::new(),
            admin_token: Some(DEFAULT_ADMIN_TOKEN.to_owned()),
            database_url: None,
            role: "execution".to_owned(),
            instance_id: 1,
            shutdown_timeout: "10s".to_owned(),
            drain_timeout: "5s".to_owned(),
            log_level: "info".to_owned(),
            extra_toml: String::new(),
            api_keys: Vec::new(),
            max_body_bytes: None,
            max_batch_events: None,
            max_ctx_bytes: None,
            admin_listen: "127.0.0.1:0".to_owned(),
            plugin_settings: String::new(),
            server_settings: String::new(),
            email_channel: None,
            sms_channel: None,
        }
    }

    /// `[instance] id`: the top byte of every event id the server creates.
    pub fn instance_id(mut self, id: u8) -> Self {
        self.instance_id = id;
        self
    }

    /// `[auth] api_keys`: the keys the public API then requires.
    pub fn api_keys(mut self, keys: &[&str]) -> Self {
        self.api_keys = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }

    /// `[server] max_body_bytes`, `max_batch_events` and `max_ctx_bytes`.
    pub fn limits(
        mut self,
        max_body_bytes: usize,
        max_batch_events: usize,
        max_ctx_bytes: usize,
    ) -> Self {
        self.max_body_bytes = Some(max_body_bytes);
        self.max_batch_events = Some(max_batch_events);
        self.max_ctx_bytes = Some(max_ctx_bytes);
        self
    }

    /// Adds one `[server]` line, e.g. `.server_setting("idle_timeout", "\"3s\"")` (the value is TOML).
    pub fn server_setting(mut self, key: &str, value: &str) -> Self {
        self.server_settings.push_str(&format!("{key} = {value}\n"));
        self
    }

    /// `[server] admin_listen`, e.g. `"0.0.0.0:0"` (the ready line then names that address).
    pub fn admin_listen(mut self, addr: &str) -> Self {
        self.admin_listen = addr.to_owned();
        self
    }

    /// Adds one `[plugins]` line, e.g. `.plugin_setting("files", r#"["liba.so"]"#)` (the value is TOML).
    pub fn plugin_setting(mut self, key: &str, value: &str) -> Self {
        self.plugin_settings.push_str(&format!("{key} = {value}\n"));
        self
    }

    /// Adds `[workflows.*]` tables (TOML text; indentation is fine).
    pub fn workflows(mut self, toml: &str) -> Self {
        self.workflows.push_str(toml);
        self.workflows.push('\n');
        self
    }

    /// Copies the three execution-workflow plugins into the plugin directory and configures
    /// `rtEventsProcessing` (100 ms, 100), `batchEventsProcessing` (200 ms, 500) and `updateEventsStatus`
    /// (100 ms, 500). Call it once.
    pub fn processing_workflows(self) -> Self {
        self.plugins.add_processing_plugins();
        self.workflows(PROCESSING_WORKFLOWS_TOML)
    }

    /// `[channels.email]` to `smtp://127.0.0.1:<smtp_port>`, from [`DEFAULT_EMAIL_FROM`](crate::DEFAULT_EMAIL_FROM), pool of 4, 5 s
    /// timeout, 3 retries from 200 ms up to 1 s within 1 minute.
    pub fn email_channel(mut self, smtp_port: u16) -> Self {
        self.email_channel = Some(EmailChannelOptions::new(smtp_port));
        self
    }

    /// `[channels.sms]` to `http://127.0.0.1:<gateway_port>/sms` with api key [`DEFAULT_SMS_API_KEY`](crate::DEFAULT_SMS_API_KEY),
    /// from [`DEFAULT_SMS_FROM`](crate::DEFAULT_SMS_FROM), 4 concurrent requests, 5 s timeout, retries as the email channel's.
    pub fn sms_channel(mut self, gateway_port: u16) -> Self {
        self.sms_channel = Some(SmsChannelOptions::new(gateway_port));
        self
    }

    /// Changes the configured email channel (call [`ServerOptions::email_channel`] first).
    pub fn with_email_channel(mut self, change: impl FnOnce(&mut EmailChannelOptions)) -> Self {
        change(
            self.email_channel
                .as_mut()
                .expect("call email_channel(port) before changing the email channel"),
        );
        self
    }

    /// Changes the configured SMS channel (call [`ServerOptions::sms_channel`] first).
    pub fn with_sms_channel(mut self, change: impl FnOnce(&mut SmsChannelOptions)) -> Self {
        change(
            self.sms_channel
                .as_mut()
                .expect("call sms_channel(port) before changing the SMS channel"),
        );
        self
    }

    /// The email channel's `retries` and `retry_backoff` (e.g. `10, "200ms"`).
    pub fn email_retries(self, retries: u32, backoff: &str) -> Self {
        self.with_email_channel(|email| email.retry.set_retries(retries, backoff))
    }

    /// The email channel's `retry_max_backoff` and `retry_period`.
    pub fn email_retry_limits(self, max_backoff: &str, period: &str) -> Self {
        self.with_email_channel(|email| email.retry.set_limits(max_backoff, period))
    }

    /// The SMS channel's `retries` and `retry_backoff`.
    pub fn sms_retries(self, retries: u32, backoff: &str) -> Self {
        self.with_sms_channel(|sms| sms.retry.set_retries(retries, backoff))
    }

    /// The SMS channel's `retry_max_backoff` and `retry_period`.
    pub fn sms_retry_limits(self, max_backoff: &str, period: &str) -> Self {
        self.with_sms_channel(|sms| sms.retry.set_limits(max_backoff, period))
    }

    /// The `[channels.*]` tables configured so far (empty if none).
    pub fn channels_toml(&self) -> String {
        let mut text = String::new();
        if let Some(email) = &self.email_channel {
            text.push_str(&email.toml());
            text.push('\n');
        }
        if let Some(sms) = &self.sms_channel {
            text.push_str(&sms.toml());
            text.push('\n');
        }
        text
    }

    pub fn admin_token(mut self, token: Option<&str>) -> Self {
        self.admin_token = token.map(str::to_owned);
        self
    }

    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    pub fn role(mut self, role: &str) -> Self {
        self.role = role.to_owned();
        self
    }

    pub fn shutdown_timeout(mut self, timeout: &str) -> Self {
        self.shutdown_timeout = timeout.to_owned();
        self
    }

    pub fn drain_timeout(mut self, timeout: &str) -> Self {
        self.drain_timeout = timeout.to_owned();
        self
    }

    pub fn extra_toml(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self.extra_toml.push('\n');
        self
    }

    /// The `[database] url` of a server whose temporary directory is `work_dir`.
    pub fn database_url_in(&self, work_dir: &Path) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", work_dir.join("test.db").display()))
    }

    /// The configuration file's text, for a server whose temporary directory is `work_dir`.
    pub fn config_toml(&self, work_dir: &Path) -> String {
        let database_url = self.database_url_in(work_dir);
        let admin_token = match &self.admin_token {
            Some(token) => format!("admin_token = {}\n", toml_string(token)),
            None => String::new(),
        };
        let api_keys = if self.api_keys.is_empty() {
            String::new()
        } else {
            let keys: Vec<String> = self.api_keys.iter().map(|k| toml_string(k)).collect();
            format!("api_keys = [{}]\n", keys.join(", "))
        };
        let mut limits = String::new();
        for (key, value) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_batch_events", self.max_batch_events),
            ("max_ctx_bytes", self.max_ctx_bytes),
        ] {
            if let Some(value) = value {
                limits.push_str(&format!("{key} = {value}\n"));
            }
        }
        limits.push_str(&self.server_settings);
        format!(
            "[instance]\n\
             id = {id}\n\
             role = {role}\n\
             \n\
             [server]\n\
             listen = \"127.0.0.1:0\"\n\
             admin_listen = {admin_listen}\n\
             shutdown_timeout = {shutdown}\n\
             {limits}\
             \n\
             [database]\n\
             url = {database}\n\
             \n\
             [plugins]\n\
             dir = {plugins}\n\
             drain_timeout = {drain}\n\
             {plugin_settings}\
             \n\
             [auth]\n\
             {admin_token}\
             {api_keys}\
             \n\
             [log]\n\
             level = {level}\n\
             \n\
             {workflows}\n\
             {channels}\
             {extra}\n",
            id = self.instance_id,
            role = toml_string(&self.role),
            shutdown = toml_string(&self.shutdown_timeout),
            database = toml_string(&database_url),
            plugins = toml_string(&self.plugins.path().display().to_string()),
            drain = toml_string(&self.drain_timeout),
            admin_listen = toml_string(&self.admin_listen),
            plugin_settings = self.plugin_settings,
            level = toml_string(&self.log_level),
            workflows = self.workflows,
            channels = self.channels_toml(),
            extra = self.extra_toml,
        )
    }
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
pub fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// Workflow `probe` of the reload probe plugin (`reloadProbe`), every 100 ms, each run taking 1.5 s: a run
/// is in flight most of the time, for what a reload or a shutdown does to it.
pub const SLOW_PROBE_WORKFLOW_TOML: &str = r#"
[workflows.probe]
enabled = true
plugin = "reloadProbe"
interval = "100ms"
timeout = "60s"
run_millis = 1500
"#;

/// A workflow named `name` using the shipped `rtEventsProcessing` plugin, running every 100 ms: the
/// "healthy neighbour" whose run count must keep increasing whatever another plugin does.
pub fn healthy_workflow_toml(name: &str) -> String {
    format!(
        "[workflows.{name}]\n\
         enabled = true\n\
         plugin = \"rtEventsProcessing\"\n\
         interval = \"100ms\"\n\
         timeout = \"30s\"\n\
         batch_size = 100\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_keys_and_limits_only_when_asked() {
        let plain = ServerOptions::new(PluginDir::new()).config_toml(Path::new("/tmp/work"));
        for absent in [
            "api_keys",
            "max_body_bytes",
            "max_batch_events",
            "max_ctx_bytes",
        ] {
            assert!(!plain.contains(absent), "{absent} in\n{plain}");
        }
        let options = ServerOptions::new(PluginDir::new())
            .instance_id(7)
            .api_keys(&["k1", "k\"2"])
            .limits(4096, 10, 1024);
        let text = options.config_toml(Path::new("/tmp/work"));
        // Each key sits in its own table: between that table's header and the next header.
        let section = |header: &str, next: &str| -> String {
            let start = text
                .find(header)
                .unwrap_or_else(|| panic!("{header} missing"));
            let rest = &text[start..];
            rest[..rest.find(next).unwrap_or(rest.len())].to_owned()
        };
        let instance = section("[instance]", "[server]");
        assert!(instance.contains("id = 7\n"), "{instance}");
        let server = section("[server]", "[database]");
        for line in [
            "max_body_bytes = 4096\n",
            "max_batch_events = 10\n",
            "max_ctx_bytes = 1024\n",
        ] {
            assert!(server.contains(line), "{line} missing from\n{server}");
        }
        let auth = section("[auth]", "[log]");
        assert!(auth.contains(r#"api_keys = ["k1", "k\"2"]"#), "{auth}");
        assert!(
            auth.contains("admin_token = \"test-admin-token\""),
            "{auth}"
        );
    }

    #[test]
    fn channels_and_processing_workflows_in_config() {
        let plain = ServerOptions::new(PluginDir::new()).config_toml(Path::new("/tmp/work"));
        assert!(!plain.contains("[channels"), "{plain}");
        let options = ServerOptions::new(PluginDir::new())
            .workflows(PROCESSING_WORKFLOWS_TOML)
            .email_channel(2525)
            .sms_channel(8080)
            .email_retries(10, "50ms")
            .sms_retry_limits("2s", "30s");
        let text = options.config_toml(Path::new("/tmp/work"));
        let parsed: toml_check::Table = toml_check::parse(&text);
        let email = &parsed["channels.email"];
        assert_eq!(email["smtp_url"], "\"smtp://127.0.0.1:2525\"");
        assert_eq!(email["from"], "\"Message Center <noreply@example.com>\"");
        assert_eq!(email["pool_size"], "4");
        assert_eq!(email["retries"], "10");
        assert_eq!(email["retry_backoff"], "\"50ms\"");
        assert_eq!(email["retry_max_backoff"], "\"1s\"");
        let sms = &parsed["channels.sms"];
        assert_eq!(sms["gateway_url"], "\"http://127.0.0.1:8080/sms\"");
        assert_eq!(sms["api_key"], "\"gw-key\"");
        assert_eq!(sms["from"], "\"MC\"");
        assert_eq!(sms["concurrency"], "4");
        assert_eq!(sms["retries"], "3");
        assert_eq!(sms["retry_max_backoff"], "\"2s\"");
        assert_eq!(sms["retry_period"], "\"30s\"");
        assert_eq!(
            parsed["workflows.rtEventsProcessing"]["interval"],
            "\"100ms\""
        );
        assert_eq!(
            parsed["workflows.batchEventsProcessing"]["batch_size"],
            "500"
        );
        assert_eq!(
            parsed["workflows.updateEventsStatus"]["interval"],
            "\"100ms\""
        );
    }

    /// A line-based reading of the flat TOML the harness writes: `[table]` headers and `key = value`
    /// lines (values kept as written). Enough to check which table a key landed in.
    mod toml_check {
        use std::collections::HashMap;

        pub type Table = HashMap<String, HashMap<String, String>>;

        pub fn parse(text: &str) -> Table {
            let mut tables = Table::new();
            let mut current = String::new();
            for line in text.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    current = name.to_owned();
                    assert!(
                        !tables.contains_key(&current),
                        "table [{current}] twice in\n{text}"
                    );
                    tables.insert(current.clone(), HashMap::new());
                } else if let Some((key, value)) = line.split_once(" = ") {
                    let table = tables.entry(current.clone()).or_default();
                    assert!(
                        table
                            .insert(key.trim().to_owned(), value.trim().to_owned())
                            .is_none(),
                        "{key} twice in [{current}]"
                    );
                }
            }
            tables
        }
    }

    #[test]
    fn config_has_every_section() {
        let options =
            ServerOptions::new(PluginDir::new()).workflows("[workflows.a]\ninterval = \"1s\"");
        let text = options.config_toml(Path::new("/tmp/work"));
        for needle in [
            "[instance]",
            "[server]",
            "listen = \"127.0.0.1:0\"",
            "admin_listen = \"127.0.0.1:0\"",
            "url = \"sqlite:///tmp/work/test.db?mode=rwc\"",
            "admin_token = \"test-admin-token\"",
            "[workflows.a]",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
