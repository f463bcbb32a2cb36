//! The whole pipeline, every execution workflow on, against the same servers' own ingest ceiling (issue
//! 20), on SQLite, on PostgreSQL, and on PostgreSQL with two execution instances sharing the database,
//! in one run.
//!
//! Run with `cargo bench -p message-center --bench pipeline`. It builds the release server and the three
//! execution plugins, and starts an SMTP sink in this process (`support/smtp_sink.rs`: a real SMTP
//! server on its own 2 threads that records each message's accept instant and Message-ID, whose
//! `<mc.<event id>.…>` names the event). Per topology:
//!
//! 1. **Ingest-only ceiling**: fresh servers with their execution workflows disabled (nothing claims,
//!    links or delivers), 64 keep-alive connections (split over the instances) pushing single real-time events
//!    back to back, 2 s of warm-up and 5 s measured.
//! 2. Fresh servers with the three execution plugins and the shipped configuration's tables of their
//!    workflows (`config/message-center.toml`), `[channels.email]` on the sink with `pool_size = 32`, a published template, 100 unmeasured events delivered end to end.
//! 3. **20,000 batch events**: 20 × `POST /api/v1/events/batch` of 1,000 (each instance takes its share
//!    on one connection), from the first push to the 20,000th message accepted by the sink.
//! 4. **Steady 1,000 events/s**: single real-time events open-loop (each push its own task on a pool of
//!    keep-alive connections, ticks of 1 ms), 2 s of warm-up then 10 s measured: push → accepted (POST
//!    handed to the connection → the sink read the message's final dot) p50/p99.
//! 5. **Rising rates**, open-loop, 5 s each, every event waited for before the next step: a step is
//!    sustainable when every push was answered 201, push → accepted p99 < 1 s and the backlog (pushed
//!    but not yet at the sink) at the step's end is at most 100 ms of pushes above the backlog at its
//!    middle. The steps go up until one is not sustainable, then the rate half-way between the last
//!    sustainable and that one is tried once; the highest sustainable rate reached is the figure. When
//!    the steady 1,000/s itself is not, the rate is halved until one is (down to 250/s).
//!
//! Per-stage counts: the servers' `/metrics` before and after the batch series and the steady series
//! give the statements per message through the store's pool (`mc_db_statements_total{verb, table}`),
//! the workflow runs, their run time and the delivery attempts per message; on SQLite the write turns
//! by store operation (`mc_db_write_turns_total`, `mc_db_write_turn_seconds_total`: SQLite has one
//! writer, so the time the turns are held is the pipeline's serial work); on PostgreSQL the transactions
//! committed per message (`pg_stat_database.xact_commit`). The group-commit ingest writer has a
//! connection of its own on both backends: its inserts are not in the statement counts.
//!
//! It also times, in this process, what counting one statement for `mc_db_statements_total` costs.
//!
//! `MC_BENCH_TOPOLOGY=sqlite,postgres,postgres2` (any of them) runs only those topologies;
//! `MC_BENCH_LOG` sets the servers' `[log] level` (default `warn`; their warnings are reported), and
//! `MC_BENCH_CONFIG` is appended to every server's configuration (TOML tables, for experiments).
//!
//! Every event pushed must reach the sink (any missing after the drain deadline fails the benchmark)
//! and every event of a topology must read `sent` at its end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::time::MissedTickBehavior;

#[path = "support/common.rs"]
mod common;
#[path = "support/delivery_load.rs"]
mod delivery_load;
#[path = "support/http.rs"]
mod http;
#[path = "support/server.rs"]
mod server;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
use common::*;
use delivery_load::{ConnectionPool, Deliveries, FROM, NAMES, TEMPLATE, push_one, put_template};
use http::{call_with_token, open_connection, push_batch, queue_statuses};
use message_center_tests::{PostgresDatabase, postgres_maintenance_url, psql, toml_string};
use server::{Artifacts, ServerProcess};
use smtp_sink::Sink;

/// Connections of the ceiling series, split over the instances.
const CEILING_CONNECTIONS: usize = 64;
const CEILING_WARM_UP: Duration = Duration::from_secs(2);
const CEILING_MEASURE: Duration = Duration::from_secs(5);
/// `[channels.email] pool_size`.
const SMTP_POOL: u32 = 32;
/// Unmeasured events delivered end to end before the measured series.
const WARM_UP_EVENTS: usize = 100;
/// The batch series.
const BATCH_EVENTS: usize = 20_000;
const BATCH_SIZE: usize = 1000;
/// The steady series.
const STEADY_RATE: f64 = 1000.0;
const STEADY_WARM_UP: Duration = Duration::from_secs(2);
const STEADY_MEASURE: Duration = Duration::from_secs(10);
/// The rising steps, events/s, and how long each lasts.
const RATES: [f64; 9] = [
    2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 7000.0, 8000.0, 10000.0, 12000.0,
];
const STEP: Duration = Duration::from_secs(5);
/// When the steady rate is not sustainable, lower rates are tried, halving, down to this.
const LOWEST_RATE: f64 = 250.0;
/// Most connections an open-loop generator opens per instance.
const OPEN_LOOP_CONNECTIONS: usize = 128;
const OPEN_LOOP_PREOPENED: usize = 16;
/// Sustainable: push → accepted p99 under this.
const SUSTAINED_P99: Duration = Duration::from_secs(1);
/// Sustainable: the backlog grew by at most this much of the rate between a step's middle and end.
const BACKLOG_GROWTH: f64 = 0.1;
/// How long the sink may take, after a series' last push, to receive every message.
const DRAIN_DEADLINE: Duration = Duration::from_secs(180);
/// How long the stats may take to count every event `sent` at a topology's end.
const SENT_DEADLINE: Duration = Duration::from_secs(60);
/// Targets (issue 20).
const TARGET_RATIO: f64 = 0.3;
const TARGET_P99: Duration = Duration::from_millis(50);
const COMMAND: &str = "cargo bench -p message-center --bench pipeline";

// ---------------------------------------------------------------------------------------------------------
// Topologies and servers
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Topology {
    Sqlite,
    Postgres,
    /// Two execution instances (ids 1 and 2) on one PostgreSQL database.
    PostgresTwo,
}

impl Topology {
    fn name(self) -> &'static str {
        match self {
            Topology::Sqlite => "SQLite",
            Topology::Postgres => "PostgreSQL",
            Topology::PostgresTwo => "PostgreSQL, 2 execution instances",
        }
    }

    /// Its name in `MC_BENCH_TOPOLOGY` (a comma-separated list; all three when unset).
    fn key(self) -> &'static str {
        match self {
            Topology::Sqlite => "sqlite",
            Topology::Postgres => "postgres",
            Topology::PostgresTwo => "postgres2",
        }
    }

    fn instances(self) -> usize {
        match self {
            Topology::PostgresTwo => 2,
            _ => 1,
        }
    }
}

/// The shipped configuration's tables of the three execution workflows (`config/message-center.toml`,
/// from `[workflows.rtEventsProcessing]` to the next workflow's table), as they are, or with every
/// `enabled = true` turned `false` when not `enabled` (the ingest-only ceiling).
fn shipped_workflows(enabled: bool) -> String {
    let path = message_center_tests::workspace_root().join("config/message-center.toml");
    let shipped =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = shipped
        .find("[workflows.rtEventsProcessing]")
        .expect("the shipped configuration has [workflows.rtEventsProcessing]");
    let end = shipped
        .find("[workflows.webhookDelivery]")
        .expect("the shipped configuration has [workflows.webhookDelivery]");
    let tables = &shipped[start..end];
    for name in ["batchEventsProcessing", "updateEventsStatus"] {
        assert!(
            tables.contains(&format!("[workflows.{name}]")),
            "the shipped configuration lists [workflows.{name}] between the two"
        );
    }
    if enabled {
        return tables.to_owned();
    }
    assert_eq!(
        tables.matches("enabled = true").count(),
        3,
        "each of the three tables says `enabled = true`"
    );
    tables.replace("enabled = true", "enabled = false")
}

/// The servers of one series and what keeps their database alive.
struct Servers {
    processes: Vec<ServerProcess>,
    postgres: Option<PostgresDatabase>,
}

impl Servers {
    /// Fresh servers of `topology` on a fresh database, with the three execution plugins; without
    /// `workflows`, their workflows are disabled (ingest only).
    fn start(topology: Topology, artifacts: &Artifacts, smtp: SocketAddr, workflows: bool) -> Self {
        let postgres = (topology != Topology::Sqlite)
            .then(|| PostgresDatabase::create_with_prefix("mc_bench_pipeline"));
        let mut processes = Vec::new();
        let mut sqlite_url = None;
        for instance in 1..=topology.instances() {
            let dir = ServerProcess::new_dir();
            for plugin in &artifacts.plugins {
                ServerProcess::add_plugin(&dir, plugin);
            }
            let url = match &postgres {
                Some(pg) => pg.url().to_owned(),
                None => sqlite_url
                    .get_or_insert_with(|| {
                        format!(
                            "sqlite://{}?mode=rwc",
                            dir.path().join("bench.db").display()
                        )
                    })
                    .clone(),
            };
            let role = if topology == Topology::PostgresTwo {
                "execution"
            } else {
                "both"
            };
            let config = format!(
                "[instance]\nid = {instance}\nrole = \"{role}\"\n\n\
                 [server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
                 [database]\nurl = {}\n\n[plugins]\ndir = {}\n\n\
                 [auth]\nadmin_token = \"bench\"\n\n[log]\nlevel = {}\n\n\
                 [channels.email]\nsmtp_url = {}\nfrom = {}\npool_size = {SMTP_POOL}\ntimeout = \"10s\"\n\n{}",
                toml_string(&url),
                ServerProcess::plugin_dir(&dir),
                toml_string(&std::env::var("MC_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned())),
                toml_string(&format!("smtp://{smtp}")),
                toml_string(FROM),
                shipped_workflows(workflows),
            );
            // Experiments: more configuration for every server of the run (`MC_BENCH_CONFIG`, TOML).
            let config = config + &std::env::var("MC_BENCH_CONFIG").unwrap_or_default();
            processes.push(ServerProcess::start(&artifacts.binary, dir, &config));
        }
        Servers {
            processes,
            postgres,
        }
    }

    fn apis(&self) -> Vec<SocketAddr> {
        self.processes.iter().map(|p| p.api).collect()
    }

    fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(ServerProcess::pid).collect()
    }

    /// Fails the benchmark with `what` and the first server's log.
    fn fail(&mut self, what: &str) -> ! {
        for other in self.processes.iter_mut().skip(1) {
            eprintln!("log of the server on {}:\n{}", other.api, other.log_tail());
        }
        self.processes[0].fail(what)
    }

    /// Stops every server; returns their warning and error lines.
    fn stop(&mut self) -> Vec<String> {
        self.processes
            .iter_mut()
            .flat_map(ServerProcess::stop_cleanly)
            .collect()
    }

    /// The transactions committed so far in the PostgreSQL database (None on SQLite).
    fn commits(&self) -> Option<u64> {
        let pg = self.postgres.as_ref()?;
        let sql = format!(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = '{}'",
            pg.name()
        );
        // The statistics collector publishes with a delay: ask for a fresh snapshot first.
        psql(pg.url(), &format!("SELECT pg_stat_clear_snapshot(); {sql}"))
            .ok()?
            .lines()
            .last()?
            .trim()
            .parse()
            .ok()
    }
}

/// CPU of the servers (all instances), of this process (sink and load generator) and of the rest
/// (PostgreSQL's backends among them).
struct Cpu {
    watch: CpuWatch,
    pids: Vec<u32>,
}

impl Cpu {
    fn ticks(pids: &[u32]) -> [u64; 2] {
        [
            pids.iter().map(|pid| process_ticks(&pid.to_string())).sum(),
            process_ticks("self"),
        ]
    }

    fn start(pids: Vec<u32>) -> Self {
        Cpu {
            watch: CpuWatch::start(&Self::ticks(&pids)),
            pids,
        }
    }

    /// "server / bench / others" CPUs busy.
    fn stop(&self) -> String {
        let used = self.watch.stop(&Self::ticks(&self.pids));
        format!(
            "{:.2} / {:.2} / {:.2}",
            used.groups[0], used.groups[1], used.others
        )
    }
}

// ---------------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------------

/// Distinct event bodies, numbered across the whole run.
struct Events(AtomicU64);

impl Events {
    fn value(&self) -> Value {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        json!({
            "type": "BENCH",
            "email": format!("user{n}@example.com"),
            "ctx": { "name": NAMES[n as usize % NAMES.len()], "order": format!("ORD-{n:08}") },
        })
    }

    fn body(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.value()).expect("json"))
    }

    fn batch_body(&self, n: usize) -> Bytes {
        let events: Vec<Value> = (0..n).map(|_| self.value()).collect();
        Bytes::from(serde_json::to_vec(&json!({ "events": events })).expect("json"))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Series
// ---------------------------------------------------------------------------------------------------------

/// Single events pushed back to back on `CEILING_CONNECTIONS` connections: events/s of the measured
/// window.
fn ceiling(generator: &Runtime, servers: &mut Servers, events: &Arc<Events>) -> (f64, String) {
    let apis = servers.apis();
    let cpu = Cpu::start(servers.pids());
    let outcome = generator.block_on(async {
        let start = Instant::now();
        let (measure_from, end) = (
            start + CEILING_WARM_UP,
            start + CEILING_WARM_UP + CEILING_MEASURE,
        );
        let mut tasks = Vec::new();
        for c in 0..CEILING_CONNECTIONS {
            let api = apis[c % apis.len()];
            let events = Arc::clone(events);
            tasks.push(tokio::spawn(async move {
                let mut sender = open_connection(api).await?;
                let mut measured = 0u64;
                loop {
                    let now = Instant::now();
                    if now >= end {
                        return Ok::<_, String>(measured);
                    }
                    push_one(&mut sender, api, events.body()).await?;
                    if now >= measure_from {
                        measured += 1;
                    }
                }
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.map_err(|e| format!("push task: {e}"))??;
        }
        Ok::<_, String>(total)
    });
    let cpu = cpu.stop();
    match outcome {
        Ok(total) => (total as f64 / CEILING_MEASURE.as_secs_f64(), cpu),
        Err(e) => servers.fail(&format!("ceiling series: {e}")),
    }
}

/// Puts the template (the database is shared, so on the first instance) and delivers
/// `WARM_UP_EVENTS` end to end.
fn prepare(generator: &Runtime, servers: &mut Servers, sink: &Sink, events: &Arc<Events>) {
    let apis = servers.apis();
    if let Err(e) = generator.block_on(put_template(apis[0], "bench", TEMPLATE)) {
        servers.fail(&e);
    }
    let mut deliveries = Deliveries::from_now(sink);
    let ids = generator.block_on(async {
        let mut ids = Vec::new();
        for api in &apis {
            let mut sender = open_connection(*api).await?;
            for _ in 0..WARM_UP_EVENTS / apis.len() {
                ids.push(push_one(&mut sender, *api, events.body()).await?.0);
            }
        }
        Ok::<_, String>(ids)
    });
    let ids = ids.unwrap_or_else(|e| servers.fail(&format!("warm-up: {e}")));
    if let Err(missing) = deliveries.wait_all(sink, &ids, Instant::now() + DRAIN_DEADLINE) {
        servers.fail(&format!(
            "warm-up: {missing} messages never reached the sink"
        ));
    }
}

/// The batch series: seconds from the first push to the last message accepted.
struct BatchResult {
    elapsed: Duration,
    pushed: Duration,
    cpu: String,
    counts: Counts,
}

fn batch_series(
    generator: &Runtime,
    servers: &mut Servers,
    sink: &Sink,
    events: &Arc<Events>,
) -> BatchResult {
    let apis = servers.apis();
    let bodies: Vec<Bytes> = (0..BATCH_EVENTS / BATCH_SIZE)
        .map(|_| events.batch_body(BATCH_SIZE))
        .collect();
    let before = Counts::read(generator, servers);
    let mut deliveries = Deliveries::from_now(sink);
    let cpu = Cpu::start(servers.pids());
    let outcome = generator.block_on(async {
        let mut senders = Vec::new();
        for api in &apis {
            senders.push(open_connection(*api).await?);
        }
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (i, mut sender) in senders.into_iter().enumerate() {
            let api = apis[i];
            let mine: Vec<Bytes> = bodies.iter().skip(i).step_by(apis.len()).cloned().collect();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for body in mine {
                    ids.extend(push_batch(&mut sender, api, body).await?);
                }
                Ok::<_, String>(ids)
            }));
        }
        let mut ids = Vec::with_capacity(BATCH_EVENTS);
        for task in tasks {
            ids.extend(task.await.map_err(|e| format!("push task: {e}"))??);
        }
        Ok::<_, String>((start, start.elapsed(), ids))
    });
    let (start, pushed, ids) =
        outcome.unwrap_or_else(|e| servers.fail(&format!("batch push: {e}")));
    let last = deliveries
        .wait_all(sink, &ids, Instant::now() + DRAIN_DEADLINE)
        .unwrap_or_else(|missing| {
            servers.fail(&format!(
                "batch series: {missing} of {BATCH_EVENTS} messages never reached the sink"
            ))
        });
    let cpu = cpu.stop();
    let after = Counts::read(generator, servers);
    BatchResult {
        elapsed: last - start,
        pushed,
        cpu,
        counts: after.minus(&before),
    }
}

/// One open-loop push.
struct Pushed {
    sent: Instant,
    id: u64,
}

/// Pushes `total` single events at `rate` per second from now, each push its own task, spread over
/// the instances' pools; returns the pushes (in order) and the failures.
fn open_loop(
    generator: &Runtime,
    pools: &[Arc<ConnectionPool>],
    events: &Arc<Events>,
    rate: f64,
    total: usize,
) -> (Vec<Pushed>, Vec<String>) {
    let bodies: Vec<Bytes> = (0..total).map(|_| events.body()).collect();
    generator.block_on(async {
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(total);
        let mut bodies = bodies.into_iter();
        let (mut next, mut ticks) = (0usize, 0u64);
        while next < total {
            interval.tick().await;
            ticks += 1;
            let due = ((ticks as f64 * rate / 1000.0) as usize).min(total);
            while next < due {
                let body = bodies.next().expect("a body per push");
                let pool = Arc::clone(&pools[next % pools.len()]);
                tasks.push(tokio::spawn(async move {
                    let (id, answer) = pool.push(body).await?;
                    Ok::<_, String>(Pushed {
                        sent: answer.sent,
                        id,
                    })
                }));
                next += 1;
            }
        }
        let mut pushes = Vec::with_capacity(total);
        let mut errors = Vec::new();
        for task in tasks {
            match task.await.map_err(|e| format!("push task: {e}")) {
                Ok(Ok(push)) => pushes.push(push),
                Ok(Err(e)) | Err(e) => errors.push(e),
            }
        }
        pushes.sort_by_key(|p| p.sent);
        (pushes, errors)
    })
}

/// An open-loop series at one rate.
struct Step {
    rate: f64,
    /// Pushes per second achieved (first to last push sent).
    achieved: f64,
    pushed: usize,
    errors: Vec<String>,
    /// Push → accepted, over the measured pushes.
    latency: Latencies,
    /// Pushed but not at the sink, at the step's middle and at its end.
    backlog: (usize, usize),
    cpu: String,
}

impl Step {
    fn sustainable(&self) -> bool {
        self.errors.is_empty()
            && self.latency.percentile(0.99) < SUSTAINED_P99
            && (self.backlog.1 as f64) <= self.backlog.0 as f64 + BACKLOG_GROWTH * self.rate
    }
}

/// Pushes at `rate` for `warm_up + measure`, waits for every message, and measures the pushes after
/// `warm_up`.
fn step(
    generator: &Runtime,
    servers: &mut Servers,
    pools: &[Arc<ConnectionPool>],
    sink: &Sink,
    events: &Arc<Events>,
    rate: f64,
    (warm_up, measure): (Duration, Duration),
) -> Step {
    let total = (rate * (warm_up + measure).as_secs_f64()) as usize;
    let mut deliveries = Deliveries::from_now(sink);
    let cpu = Cpu::start(servers.pids());
    let (pushes, errors) = open_loop(generator, pools, events, rate, total);
    let cpu = cpu.stop();
    let ids: Vec<u64> = pushes.iter().map(|p| p.id).collect();
    if let Err(missing) = deliveries.wait_all(sink, &ids, Instant::now() + DRAIN_DEADLINE) {
        servers.fail(&format!(
            "open-loop series at {rate}/s: {missing} of {} messages never reached the sink within {} s",
            pushes.len(),
            DRAIN_DEADLINE.as_secs()
        ));
    }
    let Some(first) = pushes.first().map(|p| p.sent) else {
        servers.fail(&format!(
            "open-loop series at {rate}/s: no push succeeded: {:?}",
            errors.first()
        ));
    };
    let last = pushes.last().expect("pushes").sent;
    let measured: Vec<&Pushed> = pushes
        .iter()
        .filter(|p| p.sent >= first + warm_up)
        .collect();
    let latency = Latencies::sorted(
        measured
            .iter()
            .map(|p| deliveries.first[&p.id] - p.sent)
            .collect(),
    );
    let backlog_at = |at: Instant| {
        pushes
            .iter()
            .filter(|p| p.sent <= at && deliveries.first[&p.id] > at)
            .count()
    };
    let middle = first + warm_up + measure / 2;
    let step = Step {
        rate,
        achieved: (pushes.len().saturating_sub(1)) as f64 / (last - first).as_secs_f64().max(1e-9),
        pushed: pushes.len(),
        errors,
        latency,
        backlog: (backlog_at(middle), backlog_at(last)),
        cpu,
    };
    eprintln!(
        "  {:.0}/s achieved, push → accepted p99 {}, backlog {} → {}, {} failed pushes: {}",
        step.achieved,
        ms(step.latency.percentile(0.99), 1),
        step.backlog.0,
        step.backlog.1,
        step.errors.len(),
        if step.sustainable() {
            "sustainable"
        } else {
            "not sustainable"
        }
    );
    step
}

// ---------------------------------------------------------------------------------------------------------
// Per-stage counts, from the servers' metrics
// ---------------------------------------------------------------------------------------------------------

/// Counters of the servers' `/metrics` (summed over the instances), plus PostgreSQL's commits.
#[derive(Clone, Default)]
struct Counts {
    /// `(family, labels)` → value, for the families of [`COUNTED`].
    values: BTreeMap<(String, String), f64>,
    commits: Option<u64>,
}

/// The families read.
const COUNTED: [&str; 7] = [
    "mc_db_statements_total",
    "mc_db_statement_seconds_total",
    "mc_db_write_turns_total",
    "mc_db_write_turn_seconds_total",
    "mc_workflow_runs_total",
    "mc_workflow_run_duration_seconds_sum",
    "mc_delivery_attempts_total",
];

impl Counts {
    fn read(generator: &Runtime, servers: &mut Servers) -> Counts {
        let admins: Vec<SocketAddr> = servers.processes.iter().map(|p| p.admin).collect();
        let texts = generator.block_on(async {
            let mut texts = Vec::new();
            for admin in admins {
                let mut sender = open_connection(admin).await?;
                let answer = call_with_token(
                    &mut sender,
                    admin,
                    Method::GET,
                    "/metrics",
                    Bytes::new(),
                    Some("bench"),
                )
                .await?;
                if !answer.status.is_success() {
                    return Err(answer.describe("GET /metrics"));
                }
                texts.push(String::from_utf8_lossy(&answer.body).into_owned());
            }
            Ok::<_, String>(texts)
        });
        let texts = texts.unwrap_or_else(|e| servers.fail(&e));
        let mut values = BTreeMap::new();
        for text in texts {
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let Some((series, value)) = line.rsplit_once(' ') else {
                    continue;
                };
                let (family, labels) = series.split_once('{').unwrap_or((series, "}"));
                if !COUNTED.contains(&family) {
                    continue;
                }
                let labels = labels.trim_end_matches('}').to_owned();
                if let Ok(value) = value.parse::<f64>() {
                    *values.entry((family.to_owned(), labels)).or_insert(0.0) += value;
                }
            }
        }
        Counts {
            values,
            commits: servers.commits(),
        }
    }

    fn minus(&self, before: &Counts) -> Counts {
        let values = self
            .values
            .iter()
            .map(|(key, value)| {
                let then = before.values.get(key).copied().unwrap_or(0.0);
                (key.clone(), value - then)
            })
            .filter(|(_, delta)| *delta > 0.0)
            .collect();
        Counts {
            values,
            commits: self.commits.zip(before.commits).map(|(a, b)| a - b),
        }
    }

    fn family(&self, family: &str) -> impl Iterator<Item = (&str, f64)> {
        self.values
            .iter()
            .filter(move |((f, _), _)| f == family)
            .map(|((_, labels), value)| (labels.as_str(), *value))
    }

    fn total(&self, family: &str) -> f64 {
        self.family(family).map(|(_, v)| v).sum()
    }
}

/// The per-message table of `counts` over `messages`.
fn print_counts(title: &str, counts: &Counts, messages: usize) {
    let per = |v: f64| v / messages as f64;
    println!("#### Per message: {title} ({messages} messages)");
    println!();
    println!("| what | per message | time per message |");
    println!("|---|---|---|");
    let seconds: BTreeMap<&str, f64> = counts.family("mc_db_statement_seconds_total").collect();
    for (labels, value) in counts.family("mc_db_statements_total") {
        let time = seconds.get(labels).copied().unwrap_or(0.0);
        println!(
            "| statements {} | {:.2} | {:.1} µs |",
            labels.replace('"', ""),
            per(value),
            per(time) * 1e6
        );
    }
    println!(
        "| **statements, all** | **{:.2}** | {:.1} µs |",
        per(counts.total("mc_db_statements_total")),
        per(counts.total("mc_db_statement_seconds_total")) * 1e6
    );
    if let Some(commits) = counts.commits {
        println!(
            "| transactions committed (PostgreSQL, whole database) | {:.2} | |",
            per(commits as f64)
        );
    }
    // SQLite: the write turns, the pipeline's serial resource (`store::write_turn`).
    let turn_seconds: BTreeMap<&str, f64> =
        counts.family("mc_db_write_turn_seconds_total").collect();
    for (labels, value) in counts.family("mc_db_write_turns_total") {
        let time = |phase: &str| {
            let key = format!("{labels},phase=\"{phase}\"");
            per(turn_seconds.get(key.as_str()).copied().unwrap_or(0.0)) * 1e6
        };
        println!(
            "| write turns {} | {:.3} | held {:.1} µs, waited {:.1} µs |",
            labels.replace('"', ""),
            per(value),
            time("held"),
            time("waited")
        );
    }
    if counts.total("mc_db_write_turns_total") > 0.0 {
        let held: f64 = counts
            .family("mc_db_write_turn_seconds_total")
            .filter(|(labels, _)| labels.ends_with("phase=\"held\""))
            .map(|(_, v)| v)
            .sum();
        println!(
            "| **write turns, all** | **{:.3}** | held **{:.1} µs** |",
            per(counts.total("mc_db_write_turns_total")),
            per(held) * 1e6
        );
    }
    let run_seconds: BTreeMap<&str, f64> = counts
        .family("mc_workflow_run_duration_seconds_sum")
        .collect();
    for (labels, value) in counts.family("mc_workflow_runs_total") {
        println!(
            "| workflow runs {} | {:.4} | |",
            labels.replace('"', ""),
            per(value)
        );
    }
    for (labels, value) in run_seconds {
        println!(
            "| workflow run time {} | | {:.1} µs |",
            labels.replace('"', ""),
            per(value) * 1e6
        );
    }
    println!(
        "| delivery attempts | {:.2} | |",
        per(counts.total("mc_delivery_attempts_total"))
    );
    println!();
}

// ---------------------------------------------------------------------------------------------------------
// One topology
// ---------------------------------------------------------------------------------------------------------

struct TopologyResult {
    topology: Topology,
    ceiling: f64,
    ceiling_cpu: String,
    batch: BatchResult,
    steady: Step,
    steady_counts: Counts,
    steps: Vec<Step>,
    connections: usize,
    duplicates: usize,
    log: Vec<String>,
}

impl TopologyResult {
    fn sustainable(&self) -> Option<&Step> {
        self.steps
            .iter()
            .chain([&self.steady])
            .filter(|s| s.sustainable())
            .max_by(|a, b| a.achieved.total_cmp(&b.achieved))
    }
}

fn run_topology(
    topology: Topology,
    artifacts: &Artifacts,
    generator: &Runtime,
    sink: &Sink,
    events: &Arc<Events>,
) -> TopologyResult {
    let smtp = sink.service.addr;
    eprintln!("{}: ingest-only ceiling", topology.name());
    let mut servers = Servers::start(topology, artifacts, smtp, false);
    let (ceiling, ceiling_cpu) = ceiling(generator, &mut servers, events);
    eprintln!("  {ceiling:.0} events/s");
    let mut log = servers.stop();
    drop(servers);

    let mut servers = Servers::start(topology, artifacts, smtp, true);
    prepare(generator, &mut servers, sink, events);
    let everything = Deliveries::from_now(sink);
    eprintln!("{}: {BATCH_EVENTS} batch events", topology.name());
    let batch = batch_series(generator, &mut servers, sink, events);
    eprintln!(
        "  {:.0} messages/s",
        BATCH_EVENTS as f64 / batch.elapsed.as_secs_f64()
    );

    let pools: Vec<Arc<ConnectionPool>> = servers
        .apis()
        .into_iter()
        .map(|api| Arc::new(ConnectionPool::new(api, OPEN_LOOP_CONNECTIONS)))
        .collect();
    let preopened = generator.block_on(async {
        for pool in &pools {
            pool.preopen(OPEN_LOOP_PREOPENED).await?;
        }
        Ok::<_, String>(())
    });
    preopened.unwrap_or_else(|e| servers.fail(&e));
    eprintln!("{}: steady {STEADY_RATE}/s", topology.name());
    let before = Counts::read(generator, &mut servers);
    let steady = step(
        generator,
        &mut servers,
        &pools,
        sink,
        events,
        STEADY_RATE,
        (STEADY_WARM_UP, STEADY_MEASURE),
    );
    let steady_counts = Counts::read(generator, &mut servers).minus(&before);

    let open_step = |servers: &mut Servers, rate: f64| {
        step(
            generator,
            servers,
            &pools,
            sink,
            events,
            rate,
            (Duration::ZERO, STEP),
        )
    };
    let mut steps = Vec::new();
    let mut last_good = steady.sustainable().then_some(STEADY_RATE);
    // Below the steady rate when even that is not sustainable, halving until a rate is.
    let mut lower = STEADY_RATE;
    while last_good.is_none() && lower / 2.0 >= LOWEST_RATE {
        lower /= 2.0;
        eprintln!("{}: open loop at {lower}/s", topology.name());
        let s = open_step(&mut servers, lower);
        if s.sustainable() {
            last_good = Some(lower);
        }
        steps.push(s);
    }
    let rising: &[f64] = if last_good.is_some() { &RATES } else { &[] };
    for &rate in rising {
        eprintln!("{}: open loop at {rate}/s", topology.name());
        let s = open_step(&mut servers, rate);
        let good = s.sustainable();
        steps.push(s);
        if good {
            last_good = Some(rate);
            continue;
        }
        if let Some(good) = last_good {
            let half = ((good + rate) / 2.0 / 100.0).round() * 100.0;
            if half > good && half < rate {
                eprintln!("{}: open loop at {half}/s", topology.name());
                steps.push(open_step(&mut servers, half));
            }
        }
        break;
    }

    // Every event of the topology read `sent`.
    let total = (WARM_UP_EVENTS / topology.instances() * topology.instances()) as u64
        + BATCH_EVENTS as u64
        + steady.pushed as u64
        + steps.iter().map(|s| s.pushed as u64).sum::<u64>();
    let api = servers.apis()[0];
    let sent = generator.block_on(async {
        let mut sender = open_connection(api).await?;
        let deadline = Instant::now() + SENT_DEADLINE;
        loop {
            let mut sent = 0;
            for queue in ["realtime", "batch"] {
                let statuses = queue_statuses(&mut sender, api, queue).await?;
                sent += statuses.get("sent").copied().unwrap_or(0);
                let other: u64 = statuses
                    .iter()
                    .filter(|(s, _)| *s != "sent" && *s != "pending_delivery" && *s != "pending")
                    .map(|(_, n)| *n)
                    .sum();
                if other > 0 {
                    return Err(format!(
                        "events of the {queue} queue not sent: {statuses:?}"
                    ));
                }
            }
            if sent >= total {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{sent} of {total} events read `sent` after {} s",
                    SENT_DEADLINE.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    sent.unwrap_or_else(|e| servers.fail(&e));
    // Open keep-alive connections would hold the servers' graceful shutdown back.
    drop(pools);
    let mut everything = everything;
    everything.update(sink);
    let connections = sink.connections();
    log.extend(servers.stop());
    TopologyResult {
        topology,
        ceiling,
        ceiling_cpu,
        batch,
        steady,
        steady_counts,
        steps,
        connections,
        duplicates: everything.duplicates,
        log,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn print_topology(result: &TopologyResult) {
    let ceiling = result.ceiling;
    println!("### {}", result.topology.name());
    println!();
    let batch_rate = BATCH_EVENTS as f64 / result.batch.elapsed.as_secs_f64();
    let sustained = result.sustainable();
    let sustained_rate = sustained.map_or(0.0, |s| s.achieved);
    let steady_p99 = result.steady.latency.percentile(0.99);
    println!("| measure | figure | vs the ingest-only ceiling | target |");
    println!("|---|---|---|---|");
    println!(
        "| ingest-only ceiling: single events, {CEILING_CONNECTIONS} connections, workflows off | {ceiling:.0} events/s (CPUs server / bench / others: {}) | 1 | |",
        result.ceiling_cpu
    );
    println!(
        "| maximum sustainable end to end, every workflow on (open loop) | {sustained_rate:.0} events/s | {:.3} | ≥ {TARGET_RATIO}: {} |",
        sustained_rate / ceiling,
        verdict(sustained_rate >= TARGET_RATIO * ceiling)
    );
    println!(
        "| push → accepted p99 at a steady {STEADY_RATE:.0}/s | {} (p50 {}) | | < {} ms: {} |",
        ms(steady_p99, 1),
        ms(result.steady.latency.percentile(0.5), 1),
        TARGET_P99.as_millis(),
        verdict(steady_p99 < TARGET_P99)
    );
    println!(
        "| {BATCH_EVENTS} batch events ({} × {BATCH_SIZE}) to the sink | {batch_rate:.0} messages/s ({:.2} s; pushes answered after {:.2} s; CPUs {}) | {:.3} | ≥ {TARGET_RATIO}: {} |",
        BATCH_EVENTS / BATCH_SIZE,
        result.batch.elapsed.as_secs_f64(),
        result.batch.pushed.as_secs_f64(),
        result.batch.cpu,
        batch_rate / ceiling,
        verdict(batch_rate >= TARGET_RATIO * ceiling)
    );
    println!();
    println!(
        "| open-loop rate | achieved | pushes | failed | push → accepted p50 / p90 / p99 / max | backlog at middle / end | CPUs server / bench / others | sustainable |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for s in [&result.steady].into_iter().chain(&result.steps) {
        println!(
            "| {:.0}/s | {:.0}/s | {} | {} | {} / {} / {} / {} | {} / {} | {} | {} |",
            s.rate,
            s.achieved,
            s.pushed,
            s.errors.len(),
            ms(s.latency.percentile(0.5), 1),
            ms(s.latency.percentile(0.9), 1),
            ms(s.latency.percentile(0.99), 1),
            ms(s.latency.percentile(1.0), 1),
            s.backlog.0,
            s.backlog.1,
            s.cpu,
            if s.sustainable() { "yes" } else { "no" }
        );
        if let Some(e) = s.errors.first() {
            println!("|  | first failure: {} | | | | | | |", e.replace('|', "/"));
        }
    }
    println!();
    print_counts(
        &format!("{BATCH_EVENTS} batch events"),
        &result.batch.counts,
        BATCH_EVENTS,
    );
    print_counts(
        &format!("steady {STEADY_RATE:.0}/s real-time events"),
        &result.steady_counts,
        result.steady.pushed,
    );
    println!(
        "SMTP connections the sink accepted so far: {}; duplicate messages in this topology: {}.",
        result.connections, result.duplicates
    );
    if result.log.is_empty() {
        println!("Server logs (level warn): nothing.");
    } else {
        println!(
            "Server logs (level warn): {} lines; the first ones:",
            result.log.len()
        );
        for line in result.log.iter().take(8) {
            let line: String = line.chars().take(300).collect();
            println!("- `{line}`");
        }
    }
    println!();
}

/// Calls of [`statement_count_cost`].
const COUNT_CALLS: u32 = 200_000;

/// What counting one statement costs the server (`Metrics::record_db_statement`, run by sea-orm's
/// metric callback for every statement through the store's pool): the mean of [`COUNT_CALLS`] calls
/// with the SQL of a record's `UPDATE`, in this process.
fn statement_count_cost() -> Duration {
    let metrics = message_center::metrics::Metrics::new();
    let sql = r#"UPDATE "delivery_logs" SET "accepted_at" = $1, "status" = $2, "is_final" = $3 WHERE "id" IN ($4, $5, $6) AND "claimed_by" = $7"#;
    let start = Instant::now();
    for n in 0..COUNT_CALLS {
        metrics.record_db_statement(
            std::hint::black_box(sql),
            Duration::from_micros(u64::from(n % 7)),
        );
    }
    start.elapsed() / COUNT_CALLS
}

fn main() {
    let artifacts = Artifacts::build(&[
        "rt-events-processing",
        "batch-events-processing",
        "update-events-status",
    ]);
    let started = Instant::now();
    let load_before = load_average();
    let generator = two_thread_runtime("load-generator");
    let sink = Sink::start();
    let events = Arc::new(Events(AtomicU64::new(0)));
    let only = std::env::var("MC_BENCH_TOPOLOGY").ok();
    let results: Vec<TopologyResult> =
        [Topology::Sqlite, Topology::Postgres, Topology::PostgresTwo]
            .into_iter()
            .filter(|t| {
                only.as_deref()
                    .is_none_or(|o| o.split(',').any(|k| k.trim() == t.key()))
            })
            .map(|t| run_topology(t, &artifacts, &generator, &sink, &events))
            .collect();
    let elapsed = started.elapsed();
    let count_cost = statement_count_cost();

    println!();
    println!("## Pipeline benchmark");
    println!();
    print_machine(
        COMMAND,
        "machine",
        &load_before,
        &[
            ("rustc", command_output("rustc", &["--version"])),
            (
                "PostgreSQL",
                psql(&postgres_maintenance_url(), "SHOW server_version").unwrap_or_default(),
            ),
        ],
    );
    for result in &results {
        print_topology(result);
    }
    println!(
        "Counting a statement for `mc_db_statements_total` (in this process, mean of {COUNT_CALLS}): {:.0} ns.",
        count_cost.as_secs_f64() * 1e9
    );
    println!();
    let errors = sink.errors();
    println!(
        "SMTP sink: {} session errors{}. CPUs: average busy over the series, of the servers, of this \
         process (sink, load generator) and of the rest of the machine (PostgreSQL among it). \
         Measurement took {:.0} s (builds excluded).",
        errors.len(),
        errors
            .first()
            .map(|e| format!("; first: {e}"))
            .unwrap_or_default(),
        elapsed.as_secs_f64()
    );
}
