//! A `message-center serve` child process up to its ready line, and what watching one needs: the part
//! [`TestServer`](crate::TestServer) and the benchmarks' release-server wrapper share.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::build::scrub_env;

/// How long [`ServeChild::start`] waits for the `message-center ready` line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A started `message-center serve` that printed its ready line.
pub struct ServeChild {
    pub child: Child,
    pub api_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Every line the server printed on stdout so far: a thread reads stdout for the whole life of the
    /// process, so that the pipe never fills up.
    pub stdout_lines: Arc<Mutex<Vec<String>>>,
}

/// Why a server did not become ready; it has been killed and reaped.
#[derive(Debug)]
pub struct NotReady {
    pub reason: String,
    /// What it printed on stdout.
    pub stdout: String,
}

impl ServeChild {
    /// Starts `binary serve --config <config>` in `work_dir`, stderr to a new file `log`, without the
    /// caller's `MC_*` variables (they would override the configuration), and waits up to
    /// [`READY_TIMEOUT`] for its `message-center ready api=<addr> admin=<addr>` line. Panics if the
    /// binary cannot be started.
    pub fn start(
        binary: &Path,
        config: &Path,
        work_dir: &Path,
        log: &Path,
    ) -> Result<ServeChild, NotReady> {
        let log_file = fs::File::create(log)
            .unwrap_or_else(|e| panic!("create server log {}: {e}", log.display()));
        let mut command = serve_command(binary, config, work_dir, Stdio::piped(), log_file.into());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));

        // Lines are kept for failure reports and sent to us until we stop listening.
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

        let deadline = Instant::now() + READY_TIMEOUT;
        let reason = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some((api_addr, admin_addr)) = parse_ready_line(&line) {
                        return Ok(ServeChild {
                            child,
                            api_addr,
                            admin_addr,
                            stdout_lines,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break format!("no ready line after {READY_TIMEOUT:?}");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    break format!(
                        "the server closed stdout before its ready line (exit status: {status:?})"
                    );
                }
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        let stdout = stdout_lines.lock().unwrap().join("\n");
        Err(NotReady { reason, stdout })
    }
}

/// A `message-center serve` that ended by itself (or was killed when it did not): see [`run_to_exit`].
#[derive(Debug)]
pub struct Exited {
    /// `None` when it was still running at the deadline (it has been killed).
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// `binary serve --config <config>` in `work_dir`, stdin closed, without the caller's `MC_*`
/// variables: the one command line both a server that must start and one that must fail run.
fn serve_command(
    binary: &Path,
    config: &Path,
    work_dir: &Path,
    stdout: Stdio,
    stderr: Stdio,
) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .current_dir(work_dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    scrub_env(&mut command);
    command
}

/// Runs `binary serve --config <config>` in `work_dir` (without the caller's `MC_*` variables) and
/// waits up to `timeout` for it to exit, for tests of a start that must fail; a server still running
/// then is killed. Its stdout and stderr go to `<work_dir>/exit-stdout.log` and `exit-stderr.log`.
pub fn run_to_exit(binary: &Path, config: &Path, work_dir: &Path, timeout: Duration) -> Exited {
    let stdout_path = work_dir.join("exit-stdout.log");
    let stderr_path = work_dir.join("exit-stderr.log");
    let create = |path: &Path| {
        fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
    };
    let mut command = serve_command(
        binary,
        config,
        work_dir,
        create(&stdout_path).into(),
        create(&stderr_path).into(),
    );
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                kill_child(&mut child);
                break None;
            }
        }
    };
    Exited {
        status,
        stdout: fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

/// Sends `signal` (`"TERM"`, `"KILL"`) to `pid` through the `kill` command, which every Linux machine
/// has; whether it was delivered.
pub fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|status| status.success())
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

/// The last `lines` lines of a text file (a note saying so if it cannot be read).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
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

/// SIGKILL through the `kill` command, then reap.
pub(crate) fn kill_child(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        send_signal(child.id(), "KILL");
    }
    let _ = child.wait();
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
}
