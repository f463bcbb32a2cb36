//! Hot-reload cost: latency of one reload and resident-memory growth over 100 reloads.
//!
//! Run with `cargo bench -p message-center --bench plugin_reload`. It builds the two versions of the
//! `reloadProbe` test plugin in release mode, then, in one process and one run:
//! - baseline: 100 × `check_plugin` (copy, `dlopen`, declaration check, `dlclose`: the bare cost of
//!   loading a library the way the host does);
//! - reload: 100 × `PluginRegistry::reload_plugin` with the file alternating between v1 and v2, so every
//!   reload is a real one (load, check, create the workflow instance, swap, retire and unload the old
//!   generation).
//!
//! It prints latency percentiles, the reload/baseline ratio, and VmRSS before and after each series.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use message_center::metrics::Metrics;
use message_center::plugins::{self, LoadOptions, PluginRegistry, ReloadOutcome, WorkflowSpec};

use message_center_tests::{build_release, plugin_library_in};

const ROUNDS: usize = 100;

fn build_probes() -> (PathBuf, PathBuf) {
    let release = build_release(&["reload-probe-v1", "reload-probe-v2"]);
    (
        plugin_library_in(&release, "reload-probe-v1"),
        plugin_library_in(&release, "reload-probe-v2"),
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Replaces `dest` atomically, as a deployment would (write aside, then rename).
fn deploy(src: &Path, dest: &Path) {
    let aside = dest.with_extension("tmp");
    std::fs::copy(src, &aside).expect("copy plugin");
    std::fs::rename(&aside, dest).expect("rename plugin");
}

struct Series {
    latencies: Vec<Duration>,
    rss_before: u64,
    rss_after: u64,
}

impl Series {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    fn mean(&self) -> Duration {
        self.latencies.iter().sum::<Duration>() / self.latencies.len() as u32
    }
}

fn main() {
    let (v1, v2) = build_probes();
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin_dir = dir.path().join("plugins");
    let work_dir = dir.path().join("work");
    std::fs::create_dir(&plugin_dir).unwrap();
    std::fs::create_dir(&work_dir).unwrap();
    let deployed = plugin_dir.join(format!(
        "libreload_probe.{}",
        std::env::consts::DLL_EXTENSION
    ));
    deploy(&v1, &deployed);

    // Baseline: the bare load-and-check of the same file, 100 times.
    for _ in 0..5 {
        plugins::check_plugin(&deployed, false).expect("probe loads");
    }
    let rss_before = rss_kib();
    let mut latencies = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        plugins::check_plugin(&deployed, false).expect("probe loads");
        latencies.push(started.elapsed());
    }
    let baseline = Series {
        latencies,
        rss_before,
        rss_after: rss_kib(),
    };

    // Full reloads through the registry, alternating v1 and v2.
    let mut workflows = BTreeMap::new();
    workflows.insert(
        "probe".to_owned(),
        WorkflowSpec {
            plugin: "reloadProbe".to_owned(),
            settings: serde_json::json!({ "run_millis": 10 }),
        },
    );
    let registry = PluginRegistry::new(
        plugin_dir.clone(),
        LoadOptions {
            work_dir,
            require_same_rustc: false,
        },
        workflows,
        Metrics::new(),
    );
    let first = registry.reload_all();
    assert_eq!(first[0].outcome, ReloadOutcome::Loaded, "{first:?}");
    // Every deploy switches version, so every reload is a real one.
    let mut deploys = 0usize;
    let mut deploy_next = || {
        deploys += 1;
        deploy(if deploys % 2 == 1 { &v2 } else { &v1 }, &deployed);
    };
    for _ in 0..5 {
        deploy_next();
        registry.reload_plugin("reloadProbe").expect("known plugin");
    }
    // Libraries are closed UNLOAD_GRACE after their last user: let the baseline's go first, so that the
    // reload series does not dlopen next to 100 still-mapped copies.
    std::thread::sleep(plugins::UNLOAD_GRACE + Duration::from_secs(1));
    let rss_before = rss_kib();
    let mut latencies = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        deploy_next();
        let started = Instant::now();
        let result = registry.reload_plugin("reloadProbe").expect("known plugin");
        latencies.push(started.elapsed());
        assert_eq!(result.outcome, ReloadOutcome::Reloaded, "{result:?}");
    }
    let reload = Series {
        latencies,
        rss_before,
        rss_after: rss_kib(),
    };
    let generation = registry
        .instance_for("probe")
        .expect("probe is served")
        .generation
        .number;
    assert_eq!(generation, 1 + 5 + ROUNDS as u64);
    std::thread::sleep(plugins::UNLOAD_GRACE + Duration::from_secs(1));
    let rss_after_grace = rss_kib();

    println!("plugin reload benchmark: {ROUNDS} rounds each, same process, same run");
    println!("| series | mean | p50 | p99 | max | VmRSS before | VmRSS after | growth |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, s) in [
        (
            "baseline: check_plugin (copy+dlopen+check+dlclose)",
            &baseline,
        ),
        ("reload: registry.reload_plugin", &reload),
    ] {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} KiB | {} KiB | {:+} KiB |",
            s.mean().as_secs_f64() * 1e3,
            s.percentile(0.5).as_secs_f64() * 1e3,
            s.percentile(0.99).as_secs_f64() * 1e3,
            s.percentile(1.0).as_secs_f64() * 1e3,
            s.rss_before,
            s.rss_after,
            s.rss_after as i64 - s.rss_before as i64,
        );
    }
    println!(
        "reload / baseline mean latency: {:.2}x; RSS growth per reload: {:.1} KiB; final generation {generation}",
        reload.mean().as_secs_f64() / baseline.mean().as_secs_f64(),
        (reload.rss_after as f64 - reload.rss_before as f64) / ROUNDS as f64
    );
    println!(
        "VmRSS {} s after the last reload (the retired libraries closed, {:?} after their last use): {rss_after_grace} KiB, {:+} KiB against before the reload series",
        (plugins::UNLOAD_GRACE + Duration::from_secs(1)).as_secs(),
        plugins::UNLOAD_GRACE,
        rss_after_grace as i64 - reload.rss_before as i64
    );
}
