//! Helpers the benchmark binaries use: facts about the machine for the report and latency percentiles,
//! next to the CPU accounting they take from the integration-test harness. Included by each bench with `#[path]`.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// CPU accounting from /proc: the integration-test harness's.
pub use message_center_tests::cpu::*;

/// The first line of `/proc/<file>` that starts with `prefix`, if the file can be read.
fn proc_line(file: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{file}")).ok()?;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .map(str::to_owned)
}

pub fn cpu_model() -> String {
    proc_line("cpuinfo", "model name")
        .and_then(|l| l.split_once(':').map(|(_, model)| model.trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn mem_total() -> String {
    proc_line("meminfo", "MemTotal:")
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The machine table of a benchmark report: `command`, the CPUs, memory, kernel, the `versions` given
/// (name, version) and the load average before and now.
pub fn print_machine(command: &str, section: &str, load_before: &str, versions: &[(&str, String)]) {
    println!("| {section} | |");
    println!("|---|---|");
    println!("| command | `{command}` (release profile) |");
    println!("| nproc | {} |", nproc());
    println!("| CPU | {} |", cpu_model());
    println!("| memory | {} |", mem_total());
    println!(
        "| kernel | {} |",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    );
    for (name, version) in versions {
        println!("| {name} | {version} |");
    }
    println!(
        "| load average (1/5/15 min) before / after | {load_before} / {} |",
        load_average()
    );
    println!();
}

pub fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn sorted(mut latencies: Vec<Duration>) -> Self {
        latencies.sort();
        Self(latencies)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[index]
    }
}

/// A 2-thread tokio runtime whose threads are `name`: the load generator's, or a [`LoopbackService`]'s,
/// so that neither takes threads from the other.
pub fn two_thread_runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{name} runtime: {e}"))
}

/// A TCP service of the bench itself (the SMTP sink, the bare HTTP handler) on `127.0.0.1`, served by a
/// 2-thread runtime of its own so that it does not share threads with the load generator; shut down
/// when dropped.
pub struct LoopbackService {
    runtime: Option<tokio::runtime::Runtime>,
    pub addr: SocketAddr,
}

impl LoopbackService {
    /// Binds `127.0.0.1:0` and spawns `serve(listener)` on a new runtime whose threads are `name`.
    pub fn start<F>(name: &str, serve: impl FnOnce(tokio::net::TcpListener) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime = two_thread_runtime(name);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap_or_else(|e| panic!("bind {name}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name} address: {e}"));
        runtime.spawn(serve(listener));
        Self {
            runtime: Some(runtime),
            addr,
        }
    }
}

impl Drop for LoopbackService {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
