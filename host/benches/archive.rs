//! Archive throughput and archive lag: a control instance archiving two execution instances, each a
//! separate release `message-center` process with its own SQLite file, in one run.
//!
//! Run with `cargo bench -p message-center --bench archive`. It builds the release server and the four
//! shipped plugins, then:
//!
//! 1. Throughput. With the control instance's `archiving` workflow stopped, 10,000 events are pushed to
//!    each execution instance (`POST /api/v1/events/batch`, 500 per request) and processed to a final
//!    status. Baseline: this process reads one instance's whole archive feed
//!    (`GET /api/v1/archive/events`, pages of 1000) and discards it: the rate at which the feed can be
//!    read at all. Then `archiving` is started and timed until the control instance's archive holds all
//!    20,000 events (polling `/admin/workflows` every 20 ms): events/s, and the ratio to the baseline.
//! 2. Lag under load. With `archiving` running at its configured interval (1 s), both execution
//!    instances take a steady 250 events/s each (a batch of 25 every 100 ms) for 12 s. The lag of an
//!    event is the time from its final status on its execution instance (`finishedAt`) to its copy in
//!    the archive (`archivedAt`), read back from the control instance's archive query; the first 2 s
//!    are warm-up.
//!
//! The events have no published template, so they end `not_taken_into_account` without a delivery:
//! what is measured is the archive path, not SMTP. Each carries a ten-field `ctx` (about 400 bytes of
//! JSON). Every event must end up archived exactly once; anything else fails the benchmark.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

#[path = "support/common.rs"]
mod common;
#[path = "support/http.rs"]
mod http;
#[path = "support/server.rs"]
mod server;
use common::*;
use http::{Sender, call, call_with_token, open_connection};
use message_center_tests::{build_release, plugin_library_in, server_binary_in, toml_string};
use server::ServerProcess;

const COMMAND: &str = "cargo bench -p message-center --bench archive";
const ADMIN_TOKEN: &str = "bench";
/// Events pushed to each execution instance for the throughput series.
const BACKLOG_PER_INSTANCE: usize = 10_000;
const BATCH: usize = 500;
/// The archiving workflow's page size and the baseline reader's.
const PAGE_SIZE: usize = 1000;
/// Steady load of the lag series, per execution instance: a batch of `STEADY_BATCH` every
/// `STEADY_PERIOD`.
const STEADY_BATCH: usize = 25;
const STEADY_PERIOD: Duration = Duration::from_millis(100);
const STEADY_WARM_UP: Duration = Duration::from_secs(2);
const STEADY_MEASURE: Duration = Duration::from_secs(10);
/// The archiving workflow's interval in the lag series.
const ARCHIVE_INTERVAL: &str = "1s";
/// How long processing or archiving may take before the benchmark fails.
const DEADLINE: Duration = Duration::from_secs(180);
const EXECUTION_PLUGINS: [&str; 3] = [
    "rt-events-processing",
    "batch-events-processing",
    "update-events-status",
];

struct Artifacts {
    binary: PathBuf,
    release: PathBuf,
}

fn execution_instance(artifacts: &Artifacts, id: u8) -> ServerProcess {
    let dir = ServerProcess::new_dir();
    for plugin in EXECUTION_PLUGINS {
        ServerProcess::add_plugin(&dir, &plugin_library_in(&artifacts.release, plugin));
    }
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let config = format!(
        "[instance]\nid = {id}\nrole = \"execution\"\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
         [database]\nurl = {}\n\n[plugins]\ndir = {}\n\n\
         [auth]\nadmin_token = {}\n\n[log]\nlevel = \"warn\"\n\n\
         [workflows.rtEventsProcessing]\ninterval = \"100ms\"\nbatch_size = 200\n\n\
         [workflows.batchEventsProcessing]\ninterval = \"100ms\"\nbatch_size = 1000\n\n\
         [workflows.updateEventsStatus]\ninterval = \"100ms\"\nbatch_size = 1000\n",
        toml_string(&database),
        ServerProcess::plugin_dir(&dir),
        toml_string(ADMIN_TOKEN),
    );
    ServerProcess::start(&artifacts.binary, dir, &config)
}

fn control_instance(artifacts: &Artifacts, executions: &[(&str, SocketAddr)]) -> ServerProcess {
    let dir = ServerProcess::new_dir();
    ServerProcess::add_plugin(&dir, &plugin_library_in(&artifacts.release, "archiving"));
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let mut config = format!(
        "[instance]\nid = 200\nrole = \"control\"\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
         [database]\nurl = {}\n\n[plugins]\ndir = {}\n\n\
         [auth]\nadmin_token = {}\n\n[log]\nlevel = \"warn\"\n\n\
         [workflows.archiving]\nenabled = false\ninterval = \"{ARCHIVE_INTERVAL}\"\npage_size = {PAGE_SIZE}\nmax_pages = 50\n\n",
        toml_string(&database),
        ServerProcess::plugin_dir(&dir),
        toml_string(ADMIN_TOKEN),
    );
    for (name, addr) in executions {
        config.push_str(&format!(
            "[[execution_instances]]\nname = {}\nurl = {}\n\n",
            toml_string(name),
            toml_string(&format!("http://{addr}"))
        ));
    }
    ServerProcess::start(&artifacts.binary, dir, &config)
}

fn event(n: usize) -> Value {
    json!({
        "type": "BENCH_UNROUTED",
        "email": format!("user{n}@example.com"),
        "externalId": format!("ext-{n}"),
        "ctx": {
            "firstName": "Ann", "lastName": "Example", "orderId": format!("order-{n}"),
            "amount": 129.95, "currency": "EUR", "items": 3, "city": "Lyon",
            "promo": "WINTER-2026", "url": format!("https://shop.example.com/orders/{n}"),
            "note": "Thank you for your order, we will let you know when it ships.",
        },
    })
}

fn batch_body(first: usize, count: usize) -> Bytes {
    let events: Vec<Value> = (first..first + count).map(event).collect();
    Bytes::from(serde_json::to_vec(&json!({ "events": events })).expect("json"))
}

async fn push_batch(sender: &mut Sender, addr: SocketAddr, body: Bytes) -> Result<(), String> {
    let answer = call(sender, addr, Method::POST, "/api/v1/events/batch", body).await?;
    if answer.status == StatusCode::CREATED {
        Ok(())
    } else {
        Err(answer.describe("POST /api/v1/events/batch"))
    }
}

/// Events of every queue that are final on the instance at `addr`.
async fn final_events(sender: &mut Sender, addr: SocketAddr) -> Result<u64, String> {
    let answer = call(sender, addr, Method::GET, "/api/v1/stats", Bytes::new()).await?;
    let stats = answer.json("GET /api/v1/stats")?;
    let mut total = 0;
    for queue in ["realtime", "batch"] {
        for status in [
            "not_taken_into_account",
            "sent",
            "ignored",
            "delivery_failed",
            "expired",
        ] {
            total += stats
                .pointer(&format!("/queues/{queue}/byStatus/{status}"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
    }
    Ok(total)
}

async fn wait_final(addr: SocketAddr, expected: u64) -> Result<(), String> {
    let mut sender = open_connection(addr).await?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let done = final_events(&mut sender, addr).await?;
        if done >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("only {done} of {expected} events final on {addr}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the whole feed of the instance at `addr`; returns the events read.
async fn read_feed(addr: SocketAddr) -> Result<usize, String> {
    let mut sender = open_connection(addr).await?;
    let mut cursor = "0.0".to_owned();
    let mut read = 0;
    loop {
        let path = format!("/api/v1/archive/events?after={cursor}&limit={PAGE_SIZE}");
        let answer = call(&mut sender, addr, Method::GET, &path, Bytes::new()).await?;
        let page = answer.json(&path)?;
        let events = page["events"].as_array().map_or(0, Vec::len);
        read += events;
        cursor = page["nextCursor"]
            .as_str()
            .ok_or("no nextCursor")?
            .to_owned();
        if !page["more"].as_bool().unwrap_or(false) {
            return Ok(read);
        }
    }
}

async fn admin(addr: SocketAddr, method: Method, path: &str) -> Result<Value, String> {
    let mut sender = open_connection(addr).await?;
    let answer = call_with_token(
        &mut sender,
        addr,
        method,
        path,
        Bytes::new(),
        Some(ADMIN_TOKEN),
    )
    .await?;
    if !answer.status.is_success() {
        return Err(answer.describe(path));
    }
    answer.json(path)
}

/// Events the control instance's archive holds, from `/admin/workflows`.
async fn archived_events(admin_addr: SocketAddr) -> Result<u64, String> {
    let body = admin(admin_addr, Method::GET, "/admin/workflows").await?;
    Ok(body["archive"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|i| i["archivedEvents"].as_u64())
                .sum()
        })
        .unwrap_or(0))
}

async fn wait_archived(admin_addr: SocketAddr, expected: u64) -> Result<Instant, String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let archived = archived_events(admin_addr).await?;
        if archived >= expected {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            return Err(format!("only {archived} of {expected} events archived"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every archived event of the control instance at `api` that became final at or after `from`:
/// (instance, id, finishedAt, archivedAt).
async fn archive_rows(
    api: SocketAddr,
    from: &str,
) -> Result<
    Vec<(
        String,
        String,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    )>,
    String,
> {
    let mut sender = open_connection(api).await?;
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/api/v1/archive/events?limit=1000&from={from}&after={after}");
        let answer = call(&mut sender, api, Method::GET, &path, Bytes::new()).await?;
        let page = answer.json(&path)?;
        for e in page["events"]
            .as_array()
            .ok_or_else(|| answer.describe(&path))?
        {
            let time = |key: &str| {
                e[key]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc())
                    .ok_or_else(|| format!("archived event without {key}: {e}"))
            };
            rows.push((
                e["instance"].as_str().unwrap_or_default().to_owned(),
                e["id"].as_str().unwrap_or_default().to_owned(),
                time("finishedAt")?,
                time("archivedAt")?,
            ));
        }
        match page["nextAfter"].as_str() {
            Some(next) => after = next.replace('/', "%2F"),
            None => return Ok(rows),
        }
    }
}

fn rfc3339_query(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .replace('+', "%2B")
}

struct ThroughputResult {
    baseline_events: usize,
    baseline: Duration,
    archived: u64,
    archive: Duration,
}

fn throughput_series(
    generator: &Runtime,
    executions: &[&ServerProcess],
    control: &ServerProcess,
) -> ThroughputResult {
    generator
        .block_on(async {
            let mut pushes = Vec::new();
            for (index, server) in executions.iter().enumerate() {
                let addr = server.api;
                pushes.push(tokio::spawn(async move {
                    let mut sender = open_connection(addr).await?;
                    for first in (0..BACKLOG_PER_INSTANCE).step_by(BATCH) {
                        let n = index * BACKLOG_PER_INSTANCE + first;
                        push_batch(&mut sender, addr, batch_body(n, BATCH)).await?;
                    }
                    wait_final(addr, BACKLOG_PER_INSTANCE as u64).await
                }));
            }
            for push in pushes {
                push.await.map_err(|e| e.to_string())??;
            }
            Ok::<_, String>(())
        })
        .unwrap_or_else(|e| panic!("backlog: {e}"));

    let start = Instant::now();
    let baseline_events = generator
        .block_on(read_feed(executions[0].api))
        .unwrap_or_else(|e| panic!("baseline feed read: {e}"));
    let baseline = start.elapsed();
    assert_eq!(
        baseline_events, BACKLOG_PER_INSTANCE,
        "the feed holds the backlog"
    );

    let expected = (BACKLOG_PER_INSTANCE * executions.len()) as u64;
    let start = Instant::now();
    let done = generator
        .block_on(async {
            admin(
                control.admin,
                Method::POST,
                "/admin/workflows/archiving/start",
            )
            .await?;
            wait_archived(control.admin, expected).await
        })
        .unwrap_or_else(|e| panic!("archiving the backlog: {e}"));
    ThroughputResult {
        baseline_events,
        baseline,
        archived: expected,
        archive: done - start,
    }
}

struct LagResult {
    events: usize,
    lags: Latencies,
}

fn lag_series(
    generator: &Runtime,
    executions: &[&ServerProcess],
    control: &ServerProcess,
) -> LagResult {
    let measured_from = chrono::Utc::now() + chrono::Duration::from_std(STEADY_WARM_UP).unwrap();
    let total = STEADY_WARM_UP + STEADY_MEASURE;
    let pushed = generator
        .block_on(async {
            let mut tasks = Vec::new();
            for (index, server) in executions.iter().enumerate() {
                let addr = server.api;
                tasks.push(tokio::spawn(async move {
                    let mut sender = open_connection(addr).await?;
                    let mut ticker = tokio::time::interval(STEADY_PERIOD);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    let start = Instant::now();
                    let mut pushed = 0;
                    while start.elapsed() < total {
                        ticker.tick().await;
                        let first = 1_000_000 * (index + 1) + pushed;
                        push_batch(&mut sender, addr, batch_body(first, STEADY_BATCH)).await?;
                        pushed += STEADY_BATCH;
                    }
                    Ok::<_, String>(pushed)
                }));
            }
            let mut pushed = Vec::new();
            for task in tasks {
                pushed.push(task.await.map_err(|e| e.to_string())??);
            }
            Ok::<_, String>(pushed)
        })
        .unwrap_or_else(|e| panic!("steady load: {e}"));
    let all: u64 = pushed.iter().map(|n| *n as u64).sum::<u64>()
        + (BACKLOG_PER_INSTANCE * executions.len()) as u64;
    generator
        .block_on(async {
            for (server, n) in executions.iter().zip(&pushed) {
                wait_final(server.api, (BACKLOG_PER_INSTANCE + n) as u64).await?;
            }
            wait_archived(control.admin, all).await
        })
        .unwrap_or_else(|e| panic!("archiving the steady load: {e}"));
    let rows = generator
        .block_on(archive_rows(control.api, &rfc3339_query(measured_from)))
        .unwrap_or_else(|e| panic!("reading the archive: {e}"));
    let distinct: HashSet<(&str, &str)> = rows
        .iter()
        .map(|(i, id, _, _)| (i.as_str(), id.as_str()))
        .collect();
    assert_eq!(distinct.len(), rows.len(), "an event was archived twice");
    let lags = rows
        .iter()
        .map(|(_, _, finished, archived)| (*archived - *finished).to_std().unwrap_or_default())
        .collect();
    LagResult {
        events: rows.len(),
        lags: Latencies::sorted(lags),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let release = build_release(&[
        "message-center",
        "rt-events-processing",
        "batch-events-processing",
        "update-events-status",
        "archiving",
    ]);
    let artifacts = Artifacts {
        binary: server_binary_in(&release),
        release,
    };
    let load_before = load_average();
    let generator = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The runtime must be entered for the spawned connection drivers.
    let _guard = generator.enter();

    let exec_1 = execution_instance(&artifacts, 1);
    let exec_2 = execution_instance(&artifacts, 2);
    let mut control = control_instance(
        &artifacts,
        &[("exec-1", exec_1.api), ("exec-2", exec_2.api)],
    );
    let executions = [&exec_1, &exec_2];

    let throughput = throughput_series(&generator, &executions, &control);
    let lag = lag_series(&generator, &executions, &control);
    let log = control.stop_cleanly();

    let baseline_rate = throughput.baseline_events as f64 / throughput.baseline.as_secs_f64();
    let archive_rate = throughput.archived as f64 / throughput.archive.as_secs_f64();
    println!("## Archive benchmark\n");
    println!("Command: `{COMMAND}`  ");
    println!(
        "Machine: {} × {}, {}; load average before: {load_before}\n",
        nproc(),
        cpu_model(),
        mem_total()
    );
    println!("| series | events | time | events/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| baseline: read one instance's feed, pages of {PAGE_SIZE}, discard | {} | {} | {:.0} | 1.00 |",
        throughput.baseline_events,
        secs(throughput.baseline),
        baseline_rate
    );
    println!(
        "| archiving 2 instances' backlog into the control archive | {} | {} | {:.0} | {:.2} |",
        throughput.archived,
        secs(throughput.archive),
        archive_rate,
        archive_rate / baseline_rate
    );
    println!();
    println!(
        "Lag under load (2 × {} events/s, archiving interval {ARCHIVE_INTERVAL}), final status → archived, {} events: p50 {}, p99 {}, max {}",
        STEADY_BATCH as f64 / STEADY_PERIOD.as_secs_f64(),
        lag.events,
        secs(lag.lags.percentile(0.50)),
        secs(lag.lags.percentile(0.99)),
        secs(lag.lags.percentile(1.0)),
    );
    if !log.is_empty() {
        println!("\ncontrol instance warnings:");
        for line in log.iter().take(20) {
            println!("  {line}");
        }
    }
}
