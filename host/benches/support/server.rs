//! A `message-center` server process for benchmarks: built in release mode, started on a configuration
//! the bench writes, stopped with SIGTERM (a failed exit fails the benchmark). Included by each bench
//! with `#[path]`, next to `common.rs`.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::common::{nested_cargo, workspace_root};

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds `packages` in release mode (`CARGO_TARGET_DIR` honoured) and returns the release directory.
pub fn build_release(packages: &[&str]) -> PathBuf {
    let mut command = nested_cargo();
    command.args(["build", "--release"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command.status().expect("cargo runs");
    assert!(
        status.success(),
        "building {packages:?} in release mode failed"
    );
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
    target.join("release")
}

/// The release server binary in `release`.
pub fn server_binary(release: &Path) -> PathBuf {
    let binary = release.join("message-center");
    assert!(binary.is_file(), "no server binary at {}", binary.display());
    binary
}

/// The release library of plugin crate `crate_name` (`rt-events-processing`) in `release`.
pub fn plugin_library(release: &Path, crate_name: &str) -> PathBuf {
    let path = release.join(format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    ));
    assert!(path.is_file(), "no plugin at {}", path.display());
    path
}

/// A TOML basic string.
pub fn toml_quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

pub struct ServerProcess {
    child: Child,
    exit: Option<ExitStatus>,
    pub api: SocketAddr,
    pub admin: SocketAddr,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// A private (0700) directory for a server, with an empty 0700 `plugins/` inside; copy plugins
    /// there with [`ServerProcess::add_plugin`] before [`ServerProcess::start`].
    pub fn new_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("temp dir mode");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("plugin dir");
        std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o700))
            .expect("plugin dir mode");
        dir
    }

    /// Copies `library` into the `plugins/` of a directory made by [`ServerProcess::new_dir`].
    pub fn add_plugin(dir: &tempfile::TempDir, library: &Path) {
        let name = library.file_name().expect("plugin file name");
        std::fs::copy(library, dir.path().join("plugins").join(name)).expect("copy plugin");
    }

    /// The `[plugins] dir` line's value for a directory made by [`ServerProcess::new_dir`].
    pub fn plugin_dir(dir: &tempfile::TempDir) -> String {
        toml_quote(&dir.path().join("plugins").display().to_string())
    }

    /// Writes `config` to `dir`, starts `binary serve` on it and waits for its ready line. `MC_*`
    /// variables of this process are not passed on.
    pub fn start(binary: &Path, dir: tempfile::TempDir, config: &str) -> Self {
        let config_path = dir.path().join("message-center.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = dir.path().join("server.log");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("server log"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MC_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().expect("start the server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel();
        // Reads stdout to its end, so that the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let unset = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut server = ServerProcess {
            child,
            exit: None,
            api: unset,
            admin: unset,
            log,
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some((api, admin)) = parse_ready_line(&line) {
                        server.api = api;
                        server.admin = admin;
                        return server;
                    }
                }
                Err(e) => panic!(
                    "the server printed no ready line ({e}); its log:\n{}",
                    server.log_tail()
                ),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's directory (its SQLite file, configuration and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The log's lines (benchmarks log at `warn`, so every line is a warning or an error).
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// SIGTERM through `kill(1)`, then waits (30 s at most, then SIGKILL).
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        // `self.exit` is `None`: the child is not reaped yet, so its pid is still ours.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    eprintln!("the server did not stop within 30 s of SIGTERM: killing it");
                    let _ = self.child.kill();
                    break self.child.wait().expect("wait for the killed server");
                }
            }
        };
        self.exit = Some(status);
        status
    }

    /// Stops the server and returns its log; a failed exit fails the benchmark.
    pub fn stop_cleanly(&mut self) -> Vec<String> {
        let status = self.stop();
        assert!(
            status.success(),
            "the server exited with {status} after SIGTERM; its log:\n{}",
            self.log_tail()
        );
        self.log_lines()
    }

    /// Fails the benchmark with `what` and the server's log.
    pub fn fail(&mut self, what: &str) -> ! {
        self.stop();
        panic!("{what}\nserver log (last 40 lines):\n{}", self.log_tail());
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        self.stop();
        if panicking {
            eprintln!("server log tail:\n{}", self.log_tail());
        }
    }
}

/// `message-center ready api=<addr> admin=<addr>` → both addresses.
fn parse_ready_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.trim().strip_prefix("message-center ready ")?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|part| part.strip_prefix(name))
            .and_then(|addr| addr.parse().ok())
    };
    Some((field("api=")?, field("admin=")?))
}
