//! A `message-center` server process for benchmarks: built in release mode, started on a configuration
//! the bench writes, stopped with SIGTERM (a failed exit fails the benchmark). Included by each bench
//! with `#[path]`, next to `common.rs`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use message_center_tests::{
    NotReady, ServeChild, build_release, plugin_library_in, send_signal, server_binary_in,
    tail_of_file, toml_string,
};

/// The release server binary and the plugin libraries a bench's servers load.
pub struct Artifacts {
    pub binary: PathBuf,
    pub plugins: Vec<PathBuf>,
}

impl Artifacts {
    /// Builds the release server and the plugin crates `plugins` (`CARGO_TARGET_DIR` honoured).
    pub fn build(plugins: &[&str]) -> Self {
        let mut packages = vec!["message-center"];
        packages.extend(plugins);
        let release = build_release(&packages);
        Artifacts {
            binary: server_binary_in(&release),
            plugins: plugins
                .iter()
                .map(|name| plugin_library_in(&release, name))
                .collect(),
        }
    }
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
        toml_string(&dir.path().join("plugins").display().to_string())
    }

    /// Writes `config` to `dir`, starts `binary serve` on it and waits for its ready line (the harness's
    /// [`ServeChild`]). `MC_*` variables of this process are not passed on.
    pub fn start(binary: &Path, dir: tempfile::TempDir, config: &str) -> Self {
        let config_path = dir.path().join("message-center.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = dir.path().join("server.log");
        match ServeChild::start(binary, &config_path, dir.path(), &log) {
            Ok(started) => ServerProcess {
                child: started.child,
                exit: None,
                api: started.api_addr,
                admin: started.admin_addr,
                log,
                dir,
            },
            Err(NotReady { reason, .. }) => panic!(
                "the server printed no ready line ({reason}); its log:\n{}",
                tail_of_file(&log, 40)
            ),
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
        tail_of_file(&self.log, 40)
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
        send_signal(self.child.id(), "TERM");
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
