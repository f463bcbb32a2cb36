//! The server under test: a `message-center serve` child process on loopback ports, with the
//! configuration [`ServerOptions`] writes, and the admin and API requests and polls tests make of it.

mod channels;
mod options;

pub use channels::*;
pub use options::*;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::build::server_binary;
use crate::client::{ApiClient, Headers, parse_body, send};
use crate::json::{find_plugin_by_file, find_plugin_by_name, is_final, num, pretty};
use crate::plugin_dir::PluginDir;
use crate::process::{Exited, NotReady, ServeChild, run_to_exit, send_signal, tail_of_file};
use crate::time::poll_until;

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

/// [`ApiClient`] methods that a [`TestServer`] offers on its own public API: each one is the client's
/// method on [`TestServer::api`].
macro_rules! api_methods {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[doc = concat!("[`ApiClient::", stringify!($name), "`] on this server's public API.")]
            pub async fn $name(&self, $($arg: $ty),*) -> (u16, Value) {
                self.api().$name($($arg),*).await
            }
        )*
    };
}

impl TestServer {
    /// `PUT /api/v1/templates/{name}` of `body`, asserting 201 (first version) or 200 (a later one); the
    /// answer.
    pub async fn put_template(&self, name: &str, body: &Value) -> Value {
        let path = format!("/api/v1/templates/{name}");
        let (status, answer) = self.api().put_json(&path, body, &[]).await;
        assert!(
            status == 200 || status == 201,
            "PUT {path} {body}\nexpected 200 or 201, got {status}: {}",
            pretty(&answer)
        );
        answer
    }

    /// Writes the configuration, starts `message-center serve --config <file>` and waits (up to
    /// [`READY_TIMEOUT`](crate::READY_TIMEOUT)) for its `message-center ready api=<addr> admin=<addr>` line.
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
        let started = ServeChild::start(&binary, &config_path, work_dir.path(), &log_path);
        let ServeChild {
            child,
            api_addr,
            admin_addr,
            stdout_lines,
        } = started.unwrap_or_else(|NotReady { reason, stdout }| {
            panic!(
                "message-center did not become ready: {reason}\n--- config ---\n{}\n--- stdout ---\n{stdout}\n--- log tail ---\n{}",
                fs::read_to_string(&config_path).unwrap_or_default(),
                tail_of_file(&log_path, 80)
            )
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(15))
            .build()
            .expect("build HTTP client");
        TestServer {
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
        }
    }

    /// Writes the configuration and runs `message-center serve --config <file>` expecting it to refuse
    /// to start: waits up to 30 s for it to exit (killing it if it does not) and returns how it ended,
    /// with the configuration text it was given.
    pub fn start_expecting_failure(options: ServerOptions) -> (Exited, String) {
        let work_dir = tempfile::Builder::new()
            .prefix("mc-server-")
            .tempdir()
            .expect("create server directory");
        let config_path = work_dir.path().join("message-center.toml");
        let config = options.config_toml(work_dir.path());
        fs::write(&config_path, &config).expect("write config");
        let exited = run_to_exit(
            &server_binary(),
            &config_path,
            work_dir.path(),
            Duration::from_secs(30),
        );
        (exited, config)
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

    /// The bounce SMTP listener's address (`bounces=` in the ready line), when `[bounces] smtp_listen`
    /// is configured.
    pub fn bounce_addr(&self) -> Option<SocketAddr> {
        self.stdout_lines().iter().find_map(|line| {
            line.strip_prefix("message-center ready ")?
                .split_whitespace()
                .find_map(|part| part.strip_prefix("bounces=")?.parse().ok())
        })
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
        assert!(
            send_signal(self.pid(), "TERM"),
            "kill -TERM {} failed",
            self.pid()
        );
    }

    /// Sends SIGKILL (through the `kill` command) and reaps the process: a crash, with no shutdown work.
    /// The value stays usable for its work directory, log and database URL.
    pub fn sigkill(&mut self) {
        if self.try_exit_status().is_some() {
            return;
        }
        assert!(
            send_signal(self.pid(), "KILL"),
            "kill -KILL {} failed",
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
        send(request, &method, &url).await
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
        ApiClient::new(format!("http://{}", self.api_addr), self.client.clone())
    }

    api_methods! {
        post_json(path: &str, body: &Value, headers: Headers<'_>);
        post_raw(path: &str, body: impl Into<Vec<u8>>, headers: Headers<'_>);
        get_json(path: &str);
        get_json_with(path: &str, headers: Headers<'_>);
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
        let what = format!("workflow {name}: {what}");
        poll_json(timeout, &what, async || self.workflow(name).await, done).await
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
        poll_until(
            timeout,
            &format!("plugin file {file_name}: {what}"),
            async || {
                let all = self.plugins().await;
                match find_plugin_by_file(&all, file_name) {
                    Some(entry) if done(entry) => Ok(entry.clone()),
                    _ => Err(pretty(&all)),
                }
            },
        )
        .await
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

    // ---- events ----

    /// Pushes `count` real-time email events of `event_type` (`ctx` `{"n": n}`), the first `refused` of
    /// them to addresses the SMTP test server refuses (550), asserting 201; returns their ids.
    pub async fn push_realtime_events(
        &self,
        event_type: &str,
        count: usize,
        refused: usize,
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for n in 0..count {
            let email = if n < refused {
                format!("reject{n}@example.com")
            } else {
                format!("rt{n}@example.com")
            };
            let (status, answer) = self
                .post_json(
                    "/api/v1/events",
                    &serde_json::json!({ "type": event_type, "email": email, "ctx": { "n": n } }),
                    &[],
                )
                .await;
            assert_eq!(status, 201, "{}", pretty(&answer));
            ids.push(answer["id"].as_str().expect("id").to_owned());
        }
        ids
    }

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
        let what = format!("event {id}: {what}");
        poll_json(timeout, &what, async || self.event(id).await, done).await
    }

    /// Polls until event `id` has a final status; returns it.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        self.wait_event(id, timeout, "a final status", is_final)
            .await
    }
}

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

/// Polls `fetch` until `done` holds for the JSON it returns; returns that JSON. On timeout, panics naming
/// `what` with the last JSON seen.
async fn poll_json(
    timeout: Duration,
    what: &str,
    fetch: impl AsyncFn() -> Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    poll_until(timeout, what, async || {
        let value = fetch().await;
        if done(&value) {
            Ok(value)
        } else {
            Err(pretty(&value))
        }
    })
    .await
}
