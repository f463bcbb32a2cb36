//! Harness for the Message Center integration tests: it builds the real binary and plugins, starts the
//! server as a child process on loopback ports with a plugin directory and configuration of the test's
//! choosing, and talks to it over real sockets.
//!
//! ```text
//! let plugins = PluginDir::new();
//! plugins.add("rt-events-processing");
//! let server = TestServer::start(ServerOptions::new(plugins).workflows(
//!     r#"
//!     [workflows.rtEventsProcessing]
//!     interval = "200ms"
//!     "#,
//! ));
//! let wf = server
//!     .wait_workflow("rtEventsProcessing", secs(30), "a first run", |wf| runs(wf) > 0)
//!     .await;
//! ```
//!
//! Everything that waits polls with a timeout and panics with what it last saw; when a test fails, the
//! server's log tail is printed by [`TestServer`]'s `Drop`.

mod private_postgres;
pub use private_postgres::PrivatePostgres;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The admin token [`ServerOptions`] configures unless told otherwise.
pub const DEFAULT_ADMIN_TOKEN: &str = "test-admin-token";

/// How long [`TestServer::start`] waits for the `message-center ready` line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Every package [`ensure_built`] builds: the host, the shipped plugins and the test plugins.
pub const PACKAGES: &[&str] = &[
    "message-center",
    "rt-events-processing",
    "batch-events-processing",
    "update-events-status",
    "archiving",
    "fault-probe",
    "wrong-abi",
    "reload-probe-v1",
    "reload-probe-v2",
];

/// `Duration::from_secs`, shorter to read in timeouts.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `Duration::from_millis`.
pub fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------------------
// Building and locating artifacts
// ---------------------------------------------------------------------------------------------------------

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// `<target>/debug`, where target is `CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn artifact_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    };
    target.join("debug")
}

/// Builds the server binary and every plugin the tests use, once per test process. Panics with cargo's
/// output if the build fails.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut command = nested_cargo();
        command.arg("build");
        for package in PACKAGES {
            command.arg("-p").arg(package);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?} build: {e}", command.get_program()));
        if !output.status.success() {
            panic!(
                "`cargo build` of the test artifacts failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    });
}

/// `cargo` (the one running these tests, or a bench) for a build of the workspace, run from its root.
/// Without the variables cargo sets for the process it runs (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...):
/// build scripts that watch one of them (ring's watches `CARGO_MANIFEST_DIR`) would see it change between
/// `cargo test` or `cargo bench` and this build, and each of the two would rebuild ring, rustls, lettre
/// and message-center on every run. The benches build the release server with it too.
pub fn nested_cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_its_child) {
            command.env_remove(name);
        }
    }
    command.current_dir(workspace_root());
    command
}

/// Whether cargo sets `name` for a test or bench it runs (not for the builds it makes).
fn set_by_cargo_for_its_child(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

/// The built `message-center` binary.
pub fn server_binary() -> PathBuf {
    ensure_built();
    artifact_dir().join("message-center")
}

/// The built library of a plugin crate (`"fault-probe"` → `<target>/debug/libfault_probe.so`).
pub fn plugin_library(crate_name: &str) -> PathBuf {
    ensure_built();
    artifact_dir().join(library_file_name(crate_name))
}

/// `lib<crate_name_with_underscores>.so`.
pub fn library_file_name(crate_name: &str) -> String {
    format!("lib{}.so", crate_name.replace('-', "_"))
}

/// Runs `message-center check-plugin FILE` and returns its output.
pub fn check_plugin(file: &Path) -> Output {
    let mut command = Command::new(server_binary());
    command.arg("check-plugin").arg(file);
    scrub_env(&mut command);
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run message-center check-plugin: {e}"))
}

/// Removes `MC_*` variables inherited from the caller, which would override the test's configuration.
fn scrub_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MC_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_BACKTRACE", "1");
}

// ---------------------------------------------------------------------------------------------------------
// Plugin directory
// ---------------------------------------------------------------------------------------------------------

/// A fresh plugin directory (mode 0700) into which a test copies the libraries it wants.
pub struct PluginDir {
    dir: TempDir,
}

impl PluginDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mc-plugins-")
            .tempdir()
            .expect("create plugin directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .expect("chmod plugin directory");
        PluginDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Path of a file in the directory.
    pub fn file(&self, file_name: &str) -> PathBuf {
        self.path().join(file_name)
    }

    /// Copies the plugin crate's library in under its own name (`lib<crate>.so`); returns its path.
    pub fn add(&self, crate_name: &str) -> PathBuf {
        self.add_as(crate_name, &library_file_name(crate_name))
    }

    /// Copies the plugin crate's library in under `file_name`; returns its path.
    pub fn add_as(&self, crate_name: &str, file_name: &str) -> PathBuf {
        let bytes = fs::read(plugin_library(crate_name))
            .unwrap_or_else(|e| panic!("read library of {crate_name}: {e}"));
        self.write_file(file_name, &bytes)
    }

    /// Writes a file (mode 0644); returns its path.
    pub fn write_file(&self, file_name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.file(file_name);
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// Replaces `file_name` as a deploy would: writes the new content to a temporary name in the same
    /// directory (not ending in `.so`), then renames it over the old file.
    pub fn replace_with_bytes(&self, file_name: &str, bytes: &[u8]) -> PathBuf {
        let temp = self.file(&format!(".{file_name}.deploy-tmp"));
        fs::write(&temp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", temp.display()));
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", temp.display()));
        let path = self.file(file_name);
        fs::rename(&temp, &path).unwrap_or_else(|e| panic!("rename over {}: {e}", path.display()));
        path
    }

    /// [`PluginDir::replace_with_bytes`] with the library of a plugin crate.
    pub fn replace_with(&self, file_name: &str, crate_name: &str) -> PathBuf {
        let bytes = fs::read(plugin_library(crate_name))
            .unwrap_or_else(|e| panic!("read library of {crate_name}: {e}"));
        self.replace_with_bytes(file_name, &bytes)
    }

    /// Removes a file from the directory.
    pub fn remove(&self, file_name: &str) {
        let path = self.file(file_name);
        fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }

    /// Sets a file's mode bits.
    pub fn chmod(&self, file_name: &str, mode: u32) {
        let path = self.file(file_name);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    }
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

/// The first `len` bytes of a plugin crate's library: a truncated ELF file.
pub fn truncated_library(crate_name: &str, len: usize) -> Vec<u8> {
    let mut bytes = fs::read(plugin_library(crate_name))
        .unwrap_or_else(|e| panic!("read library of {crate_name}: {e}"));
    assert!(
        bytes.len() > len,
        "library of {crate_name} is smaller than {len} bytes"
    );
    bytes.truncate(len);
    bytes
}

// ---------------------------------------------------------------------------------------------------------
// Server options and configuration
// ---------------------------------------------------------------------------------------------------------

/// What [`TestServer::start`] configures. Build with [`ServerOptions::new`] and the builder methods.
pub struct ServerOptions {
    /// The plugin directory; the server keeps it (see [`TestServer::plugin_dir`]).
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

    /// Adds `[workflows.*]` tables (TOML text; indentation is fine).
    pub fn workflows(mut self, toml: &str) -> Self {
        self.workflows.push_str(toml);
        self.workflows.push('\n');
        self
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
        format!(
            "[instance]\n\
             id = {id}\n\
             role = {role}\n\
             \n\
             [server]\n\
             listen = \"127.0.0.1:0\"\n\
             admin_listen = \"127.0.0.1:0\"\n\
             shutdown_timeout = {shutdown}\n\
             {limits}\
             \n\
             [database]\n\
             url = {database}\n\
             \n\
             [plugins]\n\
             dir = {plugins}\n\
             drain_timeout = {drain}\n\
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

// ---------------------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------------------

/// A `message-center serve` child process. Dropping it kills the process if it still runs; if the thread
/// is panicking (a failed test), it first prints the tail of the server's log.
pub struct TestServer {
    child: Child,
    exit_status: Option<ExitStatus>,
    api_addr: SocketAddr,
    admin_addr: SocketAddr,
    admin_token: Option<String>,
    client: reqwest::Client,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    log_path: PathBuf,
    config_path: PathBuf,
    database_url: String,
    plugins: PluginDir,
    // Dropped last: holds the config, the database and the log.
    work_dir: TempDir,
}

impl TestServer {
    /// Writes the configuration, starts `message-center serve --config <file>` and waits (up to
    /// [`READY_TIMEOUT`]) for its `message-center ready api=<addr> admin=<addr>` line.
    pub fn start(options: ServerOptions) -> TestServer {
        let binary = server_binary();
        let work_dir = tempfile::Builder::new()
            .prefix("mc-server-")
            .tempdir()
            .expect("create server directory");
        let config_path = work_dir.path().join("message-center.toml");
        fs::write(&config_path, options.config_toml(work_dir.path())).expect("write config");
        let database_url = options.database_url_in(work_dir.path());
        let log_path = work_dir.path().join("server.log");
        let log = File::create(&log_path).expect("create server log");

        let mut command = Command::new(&binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(work_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        scrub_env(&mut command);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));

        // Read stdout on a thread for the whole life of the process (so the pipe never fills up); lines
        // are kept for the failure report and sent to us until we stop listening.
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel::<String>();
        {
            let stdout_lines = Arc::clone(&stdout_lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    stdout_lines.lock().unwrap().push(line.clone());
                    let _ = sender.send(line);
                }
            });
        }

        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(15))
            .build()
            .expect("build HTTP client");

        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(addrs) = parse_ready_line(&line) {
                        break Ok(addrs);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break Err(format!("no ready line after {READY_TIMEOUT:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    break Err(format!(
                        "the server closed stdout before its ready line (exit status: {status:?})"
                    ));
                }
            }
        };
        match ready {
            Ok((api_addr, admin_addr)) => TestServer {
                child,
                exit_status: None,
                api_addr,
                admin_addr,
                admin_token: options.admin_token.clone(),
                client,
                stdout_lines,
                log_path,
                config_path,
                database_url,
                plugins: options.plugins,
                work_dir,
            },
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = stdout_lines.lock().unwrap().join("\n");
                panic!(
                    "message-center did not become ready: {reason}\n--- config ---\n{}\n--- stdout ---\n{stdout}\n--- log tail ---\n{}",
                    fs::read_to_string(&config_path).unwrap_or_default(),
                    tail_of_file(&log_path, 80)
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn plugin_dir(&self) -> &PluginDir {
        &self.plugins
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn work_dir(&self) -> &Path {
        self.work_dir.path()
    }

    /// The `[database] url` the server runs on (for SQLite, a file in [`TestServer::work_dir`], which
    /// lives as long as this value: keep a killed server around to restart another on its database).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the server has logged (stderr) so far.
    pub fn log_contents(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.log_path, lines)
    }

    /// Lines the server printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines.lock().unwrap().clone()
    }

    /// Sends SIGTERM (through the `kill` command, which every Linux machine has).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
    }

    /// Sends SIGKILL (through the `kill` command) and reaps the process: a crash, with no shutdown work.
    /// The value stays usable for its work directory, log and database URL.
    pub fn sigkill(&mut self) {
        if self.try_exit_status().is_some() {
            return;
        }
        let status = Command::new("kill")
            .arg("-KILL")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -KILL {} failed: {status}",
            self.pid()
        );
        self.exit_status = Some(self.child.wait().expect("wait for the killed server"));
    }

    /// Waits up to `timeout` for the process to exit; `None` if it still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none() {
            self.exit_status = self.child.try_wait().expect("try_wait on the server");
        }
        self.exit_status
    }

    /// True if something accepts TCP connections on the admin address.
    pub fn admin_port_accepts(&self) -> bool {
        TcpStream::connect_timeout(&self.admin_addr, Duration::from_secs(1)).is_ok()
    }

    // ---- HTTP ----

    /// A request to the admin listener with an explicit `Authorization: Bearer` token (`None`: no header).
    /// Returns the status and the body text.
    pub async fn admin_request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> (u16, String) {
        let url = format!("http://{}{}", self.admin_addr, path);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"));
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: reading the body failed: {e}"));
        (status, text)
    }

    /// GET on the admin listener with the configured token; the body as text (for `/metrics`).
    pub async fn admin_get_text(&self, path: &str) -> (u16, String) {
        self.admin_request(reqwest::Method::GET, path, self.admin_token.as_deref())
            .await
    }

    /// GET on the admin listener with the configured token; the body as JSON.
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.admin_get_text(path).await;
        (status, parse_body(&text))
    }

    /// POST (empty body) on the admin listener with the configured token; the body as JSON.
    pub async fn admin_post(&self, path: &str) -> (u16, Value) {
        let (status, text) = self
            .admin_request(reqwest::Method::POST, path, self.admin_token.as_deref())
            .await;
        (status, parse_body(&text))
    }

    /// GET without a token (`/healthz`, `/readyz`) on the admin listener.
    pub async fn get_public(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.admin_request(reqwest::Method::GET, path, None).await;
        (status, parse_body(&text))
    }

    // ---- public API ----

    /// A cloneable, `'static` client of the public API listener (for requests sent from spawned tasks).
    pub fn api(&self) -> ApiClient {
        ApiClient {
            base: format!("http://{}", self.api_addr),
            client: self.client.clone(),
        }
    }

    /// [`ApiClient::post_json`] on this server's public API.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.api().post_json(path, body, headers).await
    }

    /// [`ApiClient::post_raw`] on this server's public API.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.api().post_raw(path, body, headers).await
    }

    /// [`ApiClient::get_json`] on this server's public API.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        self.api().get_json(path).await
    }

    /// [`ApiClient::get_json_with`] on this server's public API.
    pub async fn get_json_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.api().get_json_with(path, headers).await
    }

    /// Asserts `GET /healthz` answers 200 `{"status":"ok"}`.
    pub async fn assert_healthy(&self) {
        let (status, body) = self.get_public("/healthz").await;
        assert_eq!(status, 200, "GET /healthz: {body}");
        assert_eq!(body["status"], "ok", "GET /healthz: {body}");
    }

    /// `GET /admin/plugins` (asserting 200).
    pub async fn plugins(&self) -> Value {
        let (status, body) = self.admin_get("/admin/plugins").await;
        assert_eq!(status, 200, "GET /admin/plugins: {body}");
        body
    }

    /// The `/admin/plugins` entry whose `name` is `name`, if any.
    pub async fn plugin_named(&self, name: &str) -> Option<Value> {
        find_plugin_by_name(&self.plugins().await, name).cloned()
    }

    /// The `/admin/plugins` entry whose `file` has the file name `file_name`, if any.
    pub async fn plugin_file(&self, file_name: &str) -> Option<Value> {
        find_plugin_by_file(&self.plugins().await, file_name).cloned()
    }

    /// `GET /admin/workflows` (asserting 200): the `workflows` array.
    pub async fn workflows(&self) -> Vec<Value> {
        let (status, body) = self.admin_get("/admin/workflows").await;
        assert_eq!(status, 200, "GET /admin/workflows: {body}");
        body["workflows"]
            .as_array()
            .unwrap_or_else(|| panic!("GET /admin/workflows: no `workflows` array in {body}"))
            .clone()
    }

    /// One workflow of `/admin/workflows`; panics if it is not listed.
    pub async fn workflow(&self, name: &str) -> Value {
        let all = self.workflows().await;
        all.iter()
            .find(|wf| wf["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("workflow {name} is not in /admin/workflows: {all:?}"))
    }

    /// `POST /admin/plugins/reload`.
    pub async fn reload_all(&self) -> (u16, Value) {
        self.admin_post("/admin/plugins/reload").await
    }

    /// `POST /admin/plugins/{name}/reload`.
    pub async fn reload_plugin(&self, name: &str) -> (u16, Value) {
        self.admin_post(&format!("/admin/plugins/{name}/reload"))
            .await
    }

    /// `GET /metrics` (asserting 200): the Prometheus text.
    pub async fn metrics(&self) -> String {
        let (status, text) = self.admin_get_text("/metrics").await;
        assert_eq!(status, 200, "GET /metrics: {text}");
        text
    }

    // ---- polling ----

    /// Polls `/admin/workflows` until workflow `name` satisfies `done`; returns that state. On timeout,
    /// panics naming `what` and showing the last state seen.
    pub async fn wait_workflow(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let wf = self.workflow(name).await;
            if done(&wf) {
                return wf;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for workflow {name}: {what}\nlast seen: {}",
                    pretty(&wf)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls `/admin/plugins` until `done` holds for the entry of file `file_name` (`None` if the file is
    /// not listed); returns the entry.
    pub async fn wait_plugin_file(
        &self,
        file_name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.plugins().await;
            if let Some(entry) = find_plugin_by_file(&all, file_name)
                && done(entry)
            {
                return entry.clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for plugin file {file_name}: {what}\nlast seen: {}",
                    pretty(&all)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until workflow `name` has `more` more runs than now (by its `runs` count) and asserts it had
    /// no new error meanwhile: how a test shows that a workflow keeps running while something else
    /// misbehaves.
    pub async fn assert_keeps_running(&self, name: &str, more: u64, timeout: Duration) {
        let before = self.workflow(name).await;
        let (runs0, errors0) = (num(&before, "runs"), num(&before, "errors"));
        let after = self
            .wait_workflow(
                name,
                timeout,
                &format!("{more} more runs than {runs0}"),
                |wf| num(wf, "runs") >= runs0 + more,
            )
            .await;
        assert_eq!(
            num(&after, "errors"),
            errors0,
            "workflow {name} had new errors while it should run cleanly: {}",
            pretty(&after)
        );
    }
}

/// A client of a server's public API listener (`[server] listen`), from [`TestServer::api`]. Every
/// method returns the status and the body parsed as JSON (a non-JSON body comes back as a JSON string, an
/// empty one as `null`); it panics only when the request cannot be sent or the answer read.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    client: reqwest::Client,
}

impl ApiClient {
    /// The listener's base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request with an optional body and extra headers. A body is sent with `Content-Type:
    /// application/json` unless `headers` names a content type.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}{}", self.base, path);
        let mut request = self.client.request(method.clone(), &url);
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            if !has_content_type {
                request = request.header("content-type", "application/json");
            }
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"));
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: reading the body failed: {e}"));
        (status, parse_body(&text))
    }

    /// POST of `body` serialised as JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.send_json(reqwest::Method::POST, path, body, headers)
            .await
    }

    /// POST of arbitrary bytes (malformed JSON, invalid UTF-8, oversized bodies).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body.into()), headers)
            .await
    }

    /// GET without extra headers.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None, &[]).await
    }

    /// GET with extra headers (e.g. an API key).
    pub async fn get_json_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None, headers)
            .await
    }

    /// PUT of `body` serialised as JSON.
    pub async fn put_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.send_json(reqwest::Method::PUT, path, body, headers)
            .await
    }

    /// A request whose body is `body` serialised as JSON.
    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("a JSON value always serialises");
        self.request(method, path, Some(bytes), headers).await
    }

    /// PUT of arbitrary bytes.
    pub async fn put_raw(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.request(reqwest::Method::PUT, path, Some(body.into()), headers)
            .await
    }

    /// DELETE with extra headers.
    pub async fn delete(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, path, None, headers)
            .await
    }
}

/// How often the polling helpers ask again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let stdout = self
                .stdout_lines
                .lock()
                .map(|l| l.join("\n"))
                .unwrap_or_default();
            eprintln!(
                "=== message-center (pid {}) stdout ===\n{stdout}\n=== message-center log tail ({}) ===\n{}\n=== end of log ===",
                self.child.id(),
                self.log_path.display(),
                tail_of_file(&self.log_path, 120)
            );
        }
        if self.try_exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses `message-center ready api=<addr> admin=<addr>`.
pub fn parse_ready_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.trim().strip_prefix("message-center ready ")?;
    let mut api = None;
    let mut admin = None;
    for part in rest.split_whitespace() {
        if let Some(addr) = part.strip_prefix("api=") {
            api = addr.parse().ok();
        } else if let Some(addr) = part.strip_prefix("admin=") {
            admin = addr.parse().ok();
        }
    }
    Some((api?, admin?))
}

fn parse_body(text: &str) -> Value {
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    }
}

fn tail_of_file(path: &Path, lines: usize) -> String {
    let Ok(text) = fs::read_to_string(path) else {
        return format!("(cannot read {})", path.display());
    };
    let mut tail = VecDeque::with_capacity(lines);
    for line in text.lines() {
        if tail.len() == lines {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    tail.into_iter().collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------------------------
// Delivery: channels and the execution workflows
// ---------------------------------------------------------------------------------------------------------

/// The crates of the three execution workflows, as [`PluginDir::add_processing_plugins`] copies them.
pub const PROCESSING_PLUGINS: &[&str] = &[
    "rt-events-processing",
    "batch-events-processing",
    "update-events-status",
];

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

/// The `[channels.email] from` that [`ServerOptions::email_channel`] configures.
pub const DEFAULT_EMAIL_FROM: &str = "Message Center <noreply@example.com>";

/// The `[channels.sms] api_key` that [`ServerOptions::sms_channel`] configures.
pub const DEFAULT_SMS_API_KEY: &str = "gw-key";

/// The `[channels.sms] from` that [`ServerOptions::sms_channel`] configures.
pub const DEFAULT_SMS_FROM: &str = "MC";

impl PluginDir {
    /// Copies in the libraries of [`PROCESSING_PLUGINS`].
    pub fn add_processing_plugins(&self) {
        for crate_name in PROCESSING_PLUGINS {
            self.add(crate_name);
        }
    }
}

/// The retry settings of a channel (`retries`, `retry_backoff`, `retry_max_backoff`, `retry_period`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    pub retries: u32,
    pub retry_backoff: String,
    pub retry_max_backoff: String,
    pub retry_period: String,
}

impl Default for RetryOptions {
    /// 3 retries, 200 ms backoff doubling up to 1 s, within 1 minute.
    fn default() -> Self {
        RetryOptions {
            retries: 3,
            retry_backoff: "200ms".to_owned(),
            retry_max_backoff: "1s".to_owned(),
            retry_period: "1m".to_owned(),
        }
    }
}

impl RetryOptions {
    fn toml(&self) -> String {
        format!(
            "retries = {}\nretry_backoff = {}\nretry_max_backoff = {}\nretry_period = {}\n",
            self.retries,
            toml_string(&self.retry_backoff),
            toml_string(&self.retry_max_backoff),
            toml_string(&self.retry_period)
        )
    }
}

/// `[channels.email]`, pointing at an SMTP server on `127.0.0.1:smtp_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChannelOptions {
    pub smtp_port: u16,
    pub from: String,
    pub pool_size: u32,
    pub timeout: String,
    pub retry: RetryOptions,
}

impl EmailChannelOptions {
    pub fn new(smtp_port: u16) -> Self {
        EmailChannelOptions {
            smtp_port,
            from: DEFAULT_EMAIL_FROM.to_owned(),
            pool_size: 4,
            timeout: "5s".to_owned(),
            retry: RetryOptions::default(),
        }
    }

    /// The `[channels.email]` table.
    pub fn toml(&self) -> String {
        format!(
            "[channels.email]\nsmtp_url = {}\nfrom = {}\npool_size = {}\ntimeout = {}\n{}",
            toml_string(&format!("smtp://127.0.0.1:{}", self.smtp_port)),
            toml_string(&self.from),
            self.pool_size,
            toml_string(&self.timeout),
            self.retry.toml()
        )
    }
}

/// `[channels.sms]`, pointing at an SMS gateway on `http://127.0.0.1:gateway_port/sms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsChannelOptions {
    pub gateway_port: u16,
    pub api_key: String,
    pub from: String,
    pub concurrency: u32,
    pub timeout: String,
    pub retry: RetryOptions,
}

impl SmsChannelOptions {
    pub fn new(gateway_port: u16) -> Self {
        SmsChannelOptions {
            gateway_port,
            api_key: DEFAULT_SMS_API_KEY.to_owned(),
            from: DEFAULT_SMS_FROM.to_owned(),
            concurrency: 4,
            timeout: "5s".to_owned(),
            retry: RetryOptions::default(),
        }
    }

    /// The `[channels.sms]` table.
    pub fn toml(&self) -> String {
        format!(
            "[channels.sms]\ngateway_url = {}\napi_key = {}\nfrom = {}\nconcurrency = {}\ntimeout = {}\n{}",
            toml_string(&format!("http://127.0.0.1:{}/sms", self.gateway_port)),
            toml_string(&self.api_key),
            toml_string(&self.from),
            self.concurrency,
            toml_string(&self.timeout),
            self.retry.toml()
        )
    }
}

impl ServerOptions {
    /// Copies the three execution-workflow plugins into the plugin directory and configures
    /// `rtEventsProcessing` (100 ms, 100), `batchEventsProcessing` (200 ms, 500) and `updateEventsStatus`
    /// (100 ms, 500). Call it once.
    pub fn processing_workflows(self) -> Self {
        self.plugins.add_processing_plugins();
        self.workflows(PROCESSING_WORKFLOWS_TOML)
    }

    /// `[channels.email]` to `smtp://127.0.0.1:<smtp_port>`, from [`DEFAULT_EMAIL_FROM`], pool of 4, 5 s
    /// timeout, 3 retries from 200 ms up to 1 s within 1 minute.
    pub fn email_channel(mut self, smtp_port: u16) -> Self {
        self.email_channel = Some(EmailChannelOptions::new(smtp_port));
        self
    }

    /// `[channels.sms]` to `http://127.0.0.1:<gateway_port>/sms` with api key [`DEFAULT_SMS_API_KEY`],
    /// from [`DEFAULT_SMS_FROM`], 4 concurrent requests, 5 s timeout, retries as the email channel's.
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
        self.with_email_channel(|email| {
            email.retry.retries = retries;
            email.retry.retry_backoff = backoff.to_owned();
        })
    }

    /// The email channel's `retry_max_backoff` and `retry_period`.
    pub fn email_retry_limits(self, max_backoff: &str, period: &str) -> Self {
        self.with_email_channel(|email| {
            email.retry.retry_max_backoff = max_backoff.to_owned();
            email.retry.retry_period = period.to_owned();
        })
    }

    /// The SMS channel's `retries` and `retry_backoff`.
    pub fn sms_retries(self, retries: u32, backoff: &str) -> Self {
        self.with_sms_channel(|sms| {
            sms.retry.retries = retries;
            sms.retry.retry_backoff = backoff.to_owned();
        })
    }

    /// The SMS channel's `retry_max_backoff` and `retry_period`.
    pub fn sms_retry_limits(self, max_backoff: &str, period: &str) -> Self {
        self.with_sms_channel(|sms| {
            sms.retry.retry_max_backoff = max_backoff.to_owned();
            sms.retry.retry_period = period.to_owned();
        })
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
}

// ---------------------------------------------------------------------------------------------------------
// Test peers: the SMTP server and the SMS gateway (Python scripts under tests/support)
// ---------------------------------------------------------------------------------------------------------

/// How long a peer may take to print its ready line.
pub const PEER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`SmtpServer::restart`] / [`SmsGateway::restart`] keep trying to bind the old port.
pub const PEER_REBIND_TIMEOUT: Duration = Duration::from_secs(10);

/// The Python interpreter running the peers: `PYTHON` if set, else `python3`.
pub fn python() -> std::ffi::OsString {
    std::env::var_os("PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// A file of `tests/support`.
pub fn support_file(name: &str) -> PathBuf {
    workspace_root().join("tests").join("support").join(name)
}

/// Every complete JSON line of a JSON-lines file (a last line still being written is left out); an
/// absent file has none. Panics on a line that is not JSON.
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad JSON line {line:?}: {e}", path.display()))
        })
        .collect()
}

/// A Python peer process: spawned on a port (0 at first), it prints `<name> ready port=<port>`, appends
/// what it receives to `out.jsonl` and every attempt to `attempts.jsonl`, and logs to `stderr.log`.
struct PeerProcess {
    name: &'static str,
    script: PathBuf,
    extra_args: Vec<String>,
    port: u16,
    child: Option<Child>,
    out: PathBuf,
    attempts: PathBuf,
    log: PathBuf,
    // Holds the files above.
    dir: TempDir,
}

impl PeerProcess {
    fn start(name: &'static str, script: &str, extra_args: Vec<String>) -> PeerProcess {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mc-{name}-"))
            .tempdir()
            .expect("create peer directory");
        let mut peer = PeerProcess {
            name,
            script: support_file(script),
            extra_args,
            port: 0,
            child: None,
            out: dir.path().join("out.jsonl"),
            attempts: dir.path().join("attempts.jsonl"),
            log: dir.path().join("stderr.log"),
            dir,
        };
        peer.spawn(Duration::ZERO);
        peer
    }

    /// Starts the script on `self.port`; if it exits before its ready line (the port still taken), tries
    /// again until `rebind_for` has passed.
    fn spawn(&mut self, rebind_for: Duration) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let deadline = Instant::now() + rebind_for;
        loop {
            match self.spawn_once() {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(reason) if Instant::now() < deadline => {
                    let _ = reason;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(reason) => panic!(
                    "{} ({} {}) did not become ready on port {}: {reason}\n--- its stderr ({}) ---\n{}\n\
                     (the SMTP server needs `python3 -m pip install aiosmtpd`; set PYTHON to choose the interpreter)",
                    self.name,
                    python().to_string_lossy(),
                    self.script.display(),
                    self.port,
                    self.log.display(),
                    tail_of_file(&self.log, 40)
                ),
            }
        }
    }

    fn spawn_once(&mut self) -> Result<Child, String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open peer log");
        let mut command = Command::new(python());
        command
            .arg("-u")
            .arg(&self.script)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--out")
            .arg(&self.out)
            .arg("--attempts")
            .arg(&self.attempts)
            .args(&self.extra_args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", python()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let prefix = format!("{} ready port=", self.name);
        let deadline = Instant::now() + PEER_READY_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(port) = line.trim().strip_prefix(&prefix) {
                        let port: u16 = port
                            .parse()
                            .map_err(|e| format!("bad ready line {line:?}: {e}"))?;
                        if self.port != 0 && port != self.port {
                            kill_child(&mut child);
                            return Err(format!("bound port {port} instead of {}", self.port));
                        }
                        self.port = port;
                        return Ok(child);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    kill_child(&mut child);
                    return Err(format!("no ready line after {PEER_READY_TIMEOUT:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    return Err(format!(
                        "it exited before its ready line (exit status: {status:?})"
                    ));
                }
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_child(&mut child);
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn(PEER_REBIND_TIMEOUT);
    }

    fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("try_wait on a peer").is_none(),
            None => false,
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "=== {} (port {}) stderr tail ===\n{}\n=== end of {} stderr ===",
                self.name,
                self.port,
                tail_of_file(&self.log, 30),
                self.name
            );
        }
        self.stop();
    }
}

/// SIGKILL through the `kill` command, then reap.
fn kill_child(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(child.id().to_string())
            .status();
    }
    let _ = child.wait();
}

/// Polls `read` until it returns at least `n` items; panics naming `what` with the count and the last items
/// seen after `timeout`.
async fn wait_for_count(
    timeout: Duration,
    n: usize,
    what: &str,
    read: impl Fn() -> Vec<Value>,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let items = read();
        if items.len() >= n {
            return items;
        }
        if Instant::now() >= deadline {
            let last: Vec<&Value> = items.iter().rev().take(5).collect();
            panic!(
                "timed out after {timeout:?} waiting for {n} {what}: got {}; the last ones: {}",
                items.len(),
                serde_json::to_string_pretty(&last).unwrap_or_default()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// True if `message["rcptTos"]` holds `address` (ASCII case-insensitive).
pub fn message_is_to(message: &Value, address: &str) -> bool {
    message["rcptTos"].as_array().is_some_and(|rcpts| {
        rcpts
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.eq_ignore_ascii_case(address)))
    })
}

/// `tests/support/smtp_server.py`, a real SMTP server (aiosmtpd) on a loopback port. Recipients whose local
/// part starts with `reject` get `550 5.1.1` at RCPT, with `tempfail` `451 4.3.0`; others are accepted.
/// Dropping it kills the process.
pub struct SmtpServer {
    peer: PeerProcess,
}

impl SmtpServer {
    /// Starts the server on a free port and waits for it to listen.
    pub fn start() -> SmtpServer {
        SmtpServer {
            peer: PeerProcess::start("smtp-server", "smtp_server.py", Vec::new()),
        }
    }

    /// Like [`SmtpServer::start`], but each message's final `250` comes `delay` after its data: slow
    /// enough delivery to interrupt the sender in the middle.
    pub fn start_with_data_delay(delay: Duration) -> SmtpServer {
        SmtpServer {
            peer: PeerProcess::start(
                "smtp-server",
                "smtp_server.py",
                vec!["--data-delay-ms".to_owned(), delay.as_millis().to_string()],
            ),
        }
    }

    pub fn port(&self) -> u16 {
        self.peer.port
    }

    /// Every accepted message so far, in arrival order: `{"mailFrom","rcptTos","subject","messageId","text",
    /// "html","from","to","receivedAt"}`.
    pub fn messages(&self) -> Vec<Value> {
        read_json_lines(&self.peer.out)
    }

    /// The accepted messages whose envelope recipients include `address`.
    pub fn messages_to(&self, address: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| message_is_to(m, address))
            .collect()
    }

    /// Every RCPT command so far, accepted or not: `{"mailFrom","rcpt","code","at"}`.
    pub fn attempts(&self) -> Vec<Value> {
        read_json_lines(&self.peer.attempts)
    }

    /// The RCPT commands naming `address`.
    pub fn attempts_to(&self, address: &str) -> Vec<Value> {
        self.attempts()
            .into_iter()
            .filter(|a| {
                a["rcpt"]
                    .as_str()
                    .is_some_and(|r| r.eq_ignore_ascii_case(address))
            })
            .collect()
    }

    /// Polls until at least `n` messages have arrived; returns them all.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Value> {
        wait_for_count(timeout, n, "messages at the SMTP server", || {
            self.messages()
        })
        .await
    }

    /// Polls until a message to `address` has arrived; returns the first one.
    pub async fn wait_for_message_to(&self, address: &str, timeout: Duration) -> Value {
        let what = format!("messages to {address} at the SMTP server");
        wait_for_count(timeout, 1, &what, || self.messages_to(address))
            .await
            .swap_remove(0)
    }

    /// Kills the server (SIGKILL): connections drop, the port refuses connections.
    pub fn stop(&mut self) {
        self.peer.stop();
    }

    /// Starts it again on the same port (retrying the bind for up to [`PEER_REBIND_TIMEOUT`]); what it
    /// received before is kept.
    pub fn restart(&mut self) {
        self.peer.restart();
    }

    pub fn is_running(&mut self) -> bool {
        self.peer.is_running()
    }

    /// The last lines of the server's stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.peer.log, lines)
    }
}

/// `tests/support/sms_gateway.py`, an HTTP SMS gateway on a loopback port: `POST /sms` answers 400 when
/// `to` ends with `400`, 500 when it ends with `500`, else 200 `{"id"}`. Dropping it kills the process.
pub struct SmsGateway {
    peer: PeerProcess,
}

impl SmsGateway {
    /// Starts the gateway on a free port and waits for it to listen.
    pub fn start() -> SmsGateway {
        SmsGateway {
            peer: PeerProcess::start("sms-gateway", "sms_gateway.py", Vec::new()),
        }
    }

    pub fn port(&self) -> u16 {
        self.peer.port
    }

    /// `http://127.0.0.1:<port>/sms`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sms", self.port())
    }

    /// Every accepted (200) request so far: `{"to","text","from","eventId","id","receivedAt",
    /// "authorization"}`.
    pub fn requests(&self) -> Vec<Value> {
        read_json_lines(&self.peer.out)
    }

    /// The accepted requests to `to`.
    pub fn requests_to(&self, to: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["to"] == to)
            .collect()
    }

    /// Every request so far, whatever the answer: `{"path","to","eventId","status","authorization","at"}`.
    pub fn attempts(&self) -> Vec<Value> {
        read_json_lines(&self.peer.attempts)
    }

    /// The requests (any answer) to `to`.
    pub fn attempts_to(&self, to: &str) -> Vec<Value> {
        self.attempts()
            .into_iter()
            .filter(|r| r["to"] == to)
            .collect()
    }

    /// Polls until at least `n` requests were accepted; returns them all.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        wait_for_count(timeout, n, "accepted requests at the SMS gateway", || {
            self.requests()
        })
        .await
    }

    /// Kills the gateway (SIGKILL).
    pub fn stop(&mut self) {
        self.peer.stop();
    }

    /// Starts it again on the same port (retrying the bind for up to [`PEER_REBIND_TIMEOUT`]).
    pub fn restart(&mut self) {
        self.peer.restart();
    }

    pub fn is_running(&mut self) -> bool {
        self.peer.is_running()
    }

    /// The last lines of the gateway's stderr (one line per request).
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.peer.log, lines)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Events and time
// ---------------------------------------------------------------------------------------------------------

/// The statuses an event never leaves.
pub const FINAL_STATUSES: &[&str] = &[
    "sent",
    "ignored",
    "delivery_failed",
    "not_taken_into_account",
    "expired",
];

/// True if the event (a `GET /api/v1/events/{id}` body) has a final status.
pub fn is_final(event: &Value) -> bool {
    event["status"]
        .as_str()
        .is_some_and(|s| FINAL_STATUSES.contains(&s))
}

impl TestServer {
    /// `GET /api/v1/events/{id}`, asserting 200.
    pub async fn event(&self, id: &str) -> Value {
        let (status, body) = self.get_json(&format!("/api/v1/events/{id}")).await;
        assert_eq!(status, 200, "GET /api/v1/events/{id}: {}", pretty(&body));
        body
    }

    /// Polls `GET /api/v1/events/{id}` until `done` holds; returns that event. On timeout, panics naming
    /// `what` with the last state seen.
    pub async fn wait_event(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let event = self.event(id).await;
            if done(&event) {
                return event;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for event {id}: {what}\nlast seen: {}",
                    pretty(&event)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls until event `id` has a final status; returns it.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        self.wait_event(id, timeout, "a final status", is_final)
            .await
    }
}

/// `time` as RFC 3339 in UTC with milliseconds (`2025-01-31T23:59:59.123Z`).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a time after 1970");
    let secs = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// [`rfc3339`] of now plus `offset`.
pub fn rfc3339_in(offset: Duration) -> String {
    rfc3339(std::time::SystemTime::now() + offset)
}

/// [`rfc3339`] of now minus `offset`.
pub fn rfc3339_ago(offset: Duration) -> String {
    rfc3339(std::time::SystemTime::now() - offset)
}

// ---------------------------------------------------------------------------------------------------------
// Polling without a server
// ---------------------------------------------------------------------------------------------------------

/// Polls `done` every [`POLL_INTERVAL`] until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Async version of [`wait_until`] that also returns a value: polls `probe` until it yields `Some`.
pub async fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------------------

/// Pretty JSON for failure messages.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A non-negative integer field; panics with the object if it is missing.
pub fn num(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| {
        panic!(
            "field `{key}` is not a non-negative integer in {}",
            pretty(value)
        )
    })
}

/// A string field, or `None` if missing or null.
pub fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value[key].as_str()
}

/// `runs` of a workflow.
pub fn runs(workflow: &Value) -> u64 {
    num(workflow, "runs")
}

/// `lastRun.outcome` of a workflow, if it has run.
pub fn last_outcome(workflow: &Value) -> Option<&str> {
    workflow["lastRun"]["outcome"].as_str()
}

/// The `plugins` array of an `/admin/plugins` answer.
pub fn plugin_entries(plugins: &Value) -> &[Value] {
    plugins["plugins"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no `plugins` array in {}", pretty(plugins)))
}

/// The entry of an `/admin/plugins` answer whose `name` is `name`.
pub fn find_plugin_by_name<'a>(plugins: &'a Value, name: &str) -> Option<&'a Value> {
    plugin_entries(plugins).iter().find(|p| p["name"] == name)
}

/// The entry of an `/admin/plugins` answer whose `file` has the file name `file_name`.
pub fn find_plugin_by_file<'a>(plugins: &'a Value, file_name: &str) -> Option<&'a Value> {
    plugin_entries(plugins).iter().find(|p| {
        p["file"]
            .as_str()
            .is_some_and(|f| file_name_of(f) == file_name)
    })
}

/// The `results` entry of a reload answer for plugin `name` (or, failing that, for file `file_name`).
pub fn find_result<'a>(
    answer: &'a Value,
    name: &str,
    file_name: Option<&str>,
) -> Option<&'a Value> {
    let results = answer["results"].as_array()?;
    results.iter().find(|r| r["name"] == name).or_else(|| {
        let file_name = file_name?;
        results.iter().find(|r| {
            r["file"]
                .as_str()
                .is_some_and(|f| file_name_of(f) == file_name)
        })
    })
}

fn file_name_of(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// The integers written in `text` once every string of `strip` (paths, which may contain digits) is
/// removed: used to check that a message names two ABI versions.
pub fn numbers_in(text: &str, strip: &[&str]) -> Vec<u64> {
    let mut text = text.to_owned();
    for s in strip {
        if !s.is_empty() {
            text = text.replace(s, " ");
        }
    }
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// Metrics helpers
// ---------------------------------------------------------------------------------------------------------

/// The value of the first sample of metric `name` (exact name, e.g. `mc_workflow_runs_total`) whose labels
/// include every `(label, value)` of `labels`.
pub fn metric_value(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        let all = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if all { value.trim().parse().ok() } else { None }
    })
}

// ---- PostgreSQL ----

/// The machine's PostgreSQL maintenance database (`MC_TEST_POSTGRES_URL` overrides it).
pub fn postgres_maintenance_url() -> String {
    std::env::var("MC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database of its own for one test, created with `psql` on the machine's PostgreSQL and dropped when
/// this value is dropped. Panics (the test fails, it never skips) when PostgreSQL is unreachable.
pub struct PostgresDatabase {
    name: String,
    url: String,
}

impl PostgresDatabase {
    pub fn create() -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "mc_it_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        psql(&format!("CREATE DATABASE {name}"));
        let maintenance = postgres_maintenance_url();
        let base = maintenance
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .expect("postgres url has a database part");
        PostgresDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(postgres_maintenance_url())
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn psql(sql: &str) {
    let out = std::process::Command::new("psql")
        .arg(postgres_maintenance_url())
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql (PostgreSQL client) for `{sql}`: {e}"));
    assert!(
        out.status.success(),
        "PostgreSQL at {} refused `{sql}`: {}",
        postgres_maintenance_url(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses() {
        let (api, admin) =
            parse_ready_line("message-center ready api=127.0.0.1:4100 admin=127.0.0.1:4101")
                .unwrap();
        assert_eq!(api.port(), 4100);
        assert_eq!(admin.port(), 4101);
        assert!(parse_ready_line("message-center starting").is_none());
    }

    #[test]
    fn metric_lookup() {
        let text = "# TYPE mc_plugin_reloads counter\n\
                    mc_plugin_reloads_total{plugin=\"reloadProbe\",outcome=\"reloaded\"} 1\n\
                    mc_plugin_reloads_total{plugin=\"reloadProbe\",outcome=\"unchanged\"} 2\n";
        assert_eq!(
            metric_value(text, "mc_plugin_reloads_total", &[("outcome", "unchanged")]),
            Some(2.0)
        );
        assert_eq!(metric_value(text, "mc_plugin_reloads", &[]), None);
    }

    #[test]
    fn numbers_skip_paths() {
        assert_eq!(
            numbers_in(
                "/tmp/x1/lib.so: ABI version 2, host speaks 1",
                &["/tmp/x1/lib.so"]
            ),
            vec![2, 1]
        );
    }

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
    fn rfc3339_formats_utc_with_millis() {
        let at = |secs: u64, millis: u64| {
            rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_767_225_599, 999), "2025-12-31T23:59:59.999Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
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
