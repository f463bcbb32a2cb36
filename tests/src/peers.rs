//! The test peers the server talks to: an SMTP server, an SMS gateway and a webhook receiver
//! ([`webhook_receiver`]), Python scripts under `tests/support` run as child processes on loopback ports.

use std::fs;
use std::io::{BufRead, BufReader};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::build::workspace_root;
use crate::process::{kill_child, tail_of_file};
use crate::time::POLL_INTERVAL;

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

/// Which peer a [`Peer`] runs: the name in its ready line and its script under `tests/support`.
pub trait PeerKind {
    const NAME: &'static str;
    const SCRIPT: &'static str;
}

/// A test peer of kind `K` ([`SmtpServer`], [`SmsGateway`]) on a loopback port: what every kind can do.
pub struct Peer<K> {
    peer: PeerProcess,
    kind: PhantomData<K>,
}

/// The values that `keep` accepts, in their order.
fn only(values: Vec<Value>, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    values.into_iter().filter(|v| keep(v)).collect()
}

/// Declares a peer kind (`$kind`, its process name and script) and its alias `$alias = Peer<$kind>`.
macro_rules! peer_kind {
    ($(#[$doc:meta])* $alias:ident = $kind:ident($name:literal, $script:literal)) => {
        $(#[$doc])*
        pub type $alias = Peer<$kind>;

        #[doc = concat!("The kind of [`", stringify!($alias), "`].")]
        pub struct $kind;

        impl PeerKind for $kind {
            const NAME: &'static str = $name;
            const SCRIPT: &'static str = $script;
        }
    };
}

impl<K: PeerKind> Peer<K> {
    /// Starts the peer (SMTP server or SMS gateway) on a free port and waits for it to listen.
    pub fn start() -> Self {
        Peer::start_with(Vec::new())
    }

    fn start_with(extra_args: Vec<String>) -> Self {
        Peer {
            peer: PeerProcess::start(K::NAME, K::SCRIPT, extra_args),
            kind: PhantomData,
        }
    }

    pub fn port(&self) -> u16 {
        self.peer.port
    }

    /// Kills the peer (SIGKILL): connections drop, the port refuses connections.
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

    /// The last lines of the peer's stderr (the SMS gateway logs one line per request).
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.peer.log, lines)
    }
}

peer_kind! {
    /// `tests/support/smtp_server.py`, a real SMTP server (aiosmtpd) on a loopback port. Recipients whose local
    /// part starts with `reject` get `550 5.1.1` at RCPT, with `tempfail` `451 4.3.0`, with `tempfirst` `451 4.3.0`
    /// at their first RCPT only; others are accepted.
    /// Dropping it kills the process.
    SmtpServer = Smtp("smtp-server", "smtp_server.py")
}

/// How [`SmtpServer::start_secured`] speaks TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTlsMode {
    /// Offers STARTTLS and refuses MAIL before it.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Smtps,
}

impl Peer<Smtp> {
    /// Like [`SmtpServer::start`], with TLS (`mode`, the certificate of `cert`) and/or AUTH required with
    /// `credentials` (`"user:password"`).
    pub fn start_secured(
        tls: Option<(&crate::TestCert, SmtpTlsMode)>,
        credentials: Option<&str>,
    ) -> SmtpServer {
        let mut args = Vec::new();
        if let Some((cert, mode)) = tls {
            args.push("--tls-cert".to_owned());
            args.push(cert.cert.display().to_string());
            args.push("--tls-key".to_owned());
            args.push(cert.key.display().to_string());
            args.push(match mode {
                SmtpTlsMode::StartTls => "--starttls".to_owned(),
                SmtpTlsMode::Smtps => "--smtps".to_owned(),
            });
        }
        if let Some(credentials) = credentials {
            args.push("--auth".to_owned());
            args.push(credentials.to_owned());
        }
        Peer::start_with(args)
    }

    /// Like [`SmtpServer::start`], but each message's final `250` comes `delay` after its data: slow
    /// enough delivery to interrupt the sender in the middle.
    pub fn start_with_data_delay(delay: Duration) -> SmtpServer {
        Peer::start_with(vec![
            "--data-delay-ms".to_owned(),
            delay.as_millis().to_string(),
        ])
    }

    /// Every accepted message so far, in arrival order: `{"mailFrom","rcptTos","subject","messageId","text",
    /// "html","from","to","receivedAt","raw","tls","auth"}` (`raw`: the message as received).
    pub fn messages(&self) -> Vec<Value> {
        read_json_lines(&self.peer.out)
    }

    /// The accepted messages whose envelope recipients include `address`.
    pub fn messages_to(&self, address: &str) -> Vec<Value> {
        only(self.messages(), |m| message_is_to(m, address))
    }

    /// Every RCPT command so far, accepted or not: `{"mailFrom","rcpt","code","at"}`.
    pub fn attempts(&self) -> Vec<Value> {
        read_json_lines(&self.peer.attempts)
    }

    /// The RCPT commands naming `address`.
    pub fn attempts_to(&self, address: &str) -> Vec<Value> {
        only(self.attempts(), |a| {
            a["rcpt"]
                .as_str()
                .is_some_and(|r| r.eq_ignore_ascii_case(address))
        })
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
}

peer_kind! {
    /// `tests/support/sms_gateway.py`, an HTTP SMS gateway on a loopback port: `POST /sms` answers 400 when
    /// `to` ends with `400`, 500 when it ends with `500`, else 200 `{"id"}`. Dropping it kills the process.
    SmsGateway = Sms("sms-gateway", "sms_gateway.py")
}

impl Peer<Sms> {
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
        only(self.requests(), |r| r["to"] == to)
    }

    /// Every request so far, whatever the answer: `{"path","to","eventId","status","authorization","at"}`.
    pub fn attempts(&self) -> Vec<Value> {
        read_json_lines(&self.peer.attempts)
    }

    /// The requests (any answer) to `to`.
    pub fn attempts_to(&self, to: &str) -> Vec<Value> {
        only(self.attempts(), |r| r["to"] == to)
    }

    /// Polls until at least `n` requests were accepted; returns them all.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        wait_for_count(timeout, n, "accepted requests at the SMS gateway", || {
            self.requests()
        })
        .await
    }
}

// After `peer_kind!`, which it uses (a `macro_rules!` is visible only below its definition).
mod webhook_receiver;
pub use webhook_receiver::*;
