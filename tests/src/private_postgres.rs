//! A PostgreSQL cluster of a test's own, made with the machine's `initdb` and run with its `pg_ctl` on a
//! free loopback port, for tests that stop and start the database (the shared server on 5432 must never
//! be stopped). As root, the cluster runs as the `postgres` user (PostgreSQL refuses to run as root).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running private cluster with one database, `mc`; stopped and removed on drop.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Creates the cluster (trust authentication, `fsync = off`: nothing here tests durability of the
    /// database itself), starts it and creates the database `mc`.
    pub fn start() -> PrivatePostgres {
        let bin = postgres_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("mc-private-pg-")
            .tempdir()
            .expect("temporary directory");
        let as_postgres = running_as_root();
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let port = free_port();
        let cluster = PrivatePostgres {
            dir,
            bin,
            port,
            as_postgres,
        };
        cluster.run_on_data("initdb", &["-A", "trust", "-U", "postgres", "--no-sync"]);
        cluster.start_again();
        let psql = Command::new(cluster.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", "postgres", "-c", "CREATE DATABASE mc"])
            .output()
            .expect("psql runs");
        assert_ok("psql CREATE DATABASE mc", &psql);
        cluster
    }

    /// The server URL of the database `mc`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/mc", self.port)
    }

    /// Stops the cluster (`pg_ctl stop -m fast`: open connections are terminated), waiting until it is down.
    pub fn stop(&self) {
        self.run_on_data("pg_ctl", &["-m", "fast", "-w", "stop"]);
    }

    /// Starts the (stopped) cluster again on the same port, waiting until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        let log = log.to_str().expect("utf-8 path");
        self.run_on_data("pg_ctl", &["-o", &options, "-l", log, "-w", "start"]);
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command running one of the cluster's programs, as `postgres` when we are root.
    fn command(&self, path: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// [`PrivatePostgres::run_ok`] with `-D <data directory>` before `args`.
    fn run_on_data(&self, program: &str, args: &[&str]) {
        let data = self.data_dir();
        let data_args = ["-D", data.to_str().expect("utf-8 path")];
        self.run_ok(program, &[&data_args[..], args].concat());
    }

    /// Runs one of the cluster's programs (as `postgres` when we are root), asserting success.
    fn run_ok(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let output = self
            .command(&path)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{} could not run: {e}", path.display()));
        assert_ok(&format!("{program} {}", args.join(" ")), &output);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        if data.join("postmaster.pid").exists() {
            let _ = self
                .command(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`, or `PG_BIN_DIR`.
fn postgres_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e} (is PostgreSQL installed?)", root.display()))
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no initdb under {}/*/bin", root.display()))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn assert_ok(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
