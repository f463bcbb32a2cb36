//! Email delivery throughput and end-to-end latency, each against a target, in one process and one run.
//!
//! Run with `cargo bench -p message-center --bench delivery`. It builds the release `message-center`
//! binary and the three execution plugins (`rtEventsProcessing`, `batchEventsProcessing`,
//! `updateEventsStatus`), then starts an SMTP sink in this process: a real, minimal SMTP server on its
//! own 2-thread tokio runtime that accepts every message and records the instant it finished reading
//! its DATA and its `Message-ID` (the server's are `<mc.<event id>.<attempt>.<nonce>@domain>`).
//!
//! 1. Throughput, 5000 messages each:
//!    - baselines: lettre's pooled `AsyncSmtpTransport` (`max_size` 64, like the server's `pool_size`)
//!      sends the same messages (subject, text and HTML parts, multipart/alternative) straight to the
//!      sink, 8 sends at a time (the server's concurrency), then 32 at a time;
//!    - the server, batch queue: 5 × `POST /api/v1/events/batch` of 1000 events;
//!    - the server, real-time queue: 5000 × `POST /api/v1/events` on 32 keep-alive connections;
//!
//!    each from the first send / push to the 5000th message accepted by the sink, plus (server) how
//!    long until `GET /api/v1/stats` counts the 5000 events `sent`.
//!    The batch series runs again with DKIM on (`[[channels.email.dkim]]` for the From domain, an
//!    RSA-2048 and an Ed25519 key made by `openssl` for the run), and the in-process signing cost per
//!    message is measured with the host's signer (`delivery::DkimSigners`) on the baseline's messages:
//!    DKIM on against off in the same run.
//! 2. Latency at a steady 1000 events/s: single real-time events pushed open-loop (a 1 ms tokio
//!    interval, each push its own task, up to 64 connections) for 2 s of warm-up and 10 s measured; an
//!    event's latency is the sink's accept instant minus the instant its POST was sent, matched by the
//!    event id of the 201 answer and of the Message-ID.
//!    It runs twice: with every `wake_delay` at `0s` (each wake-up starts a run or a delivery round at
//!    once), then at the shipped defaults (a woken run waits 3 ms for what arrives meanwhile).
//!
//! Each server series runs on a fresh server process and SQLite file, after 100 unmeasured real-time
//! events delivered end to end. The sink also records, per message, how long after the first DATA line
//! the terminating `.` line came (a client that writes the terminator separately without
//! `TCP_NODELAY` shows Nagle's algorithm waiting for the peer's delayed ACK there). Every pushed event
//! must reach the sink and read `sent`; anything else (an error answer, a missing or failed message)
//! fails the benchmark with the server's log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
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
use http::{open_connection, push_batch, queue_statuses};
use message_center::config::DkimKeyConfig;
use message_center::delivery::DkimSigners;
use message_center_tests::{DkimAlgorithm, DkimTestKey, toml_string};
use server::{Artifacts, ServerProcess};
use smtp_sink::Sink;

/// Messages of each throughput series.
const MESSAGES: usize = 5000;
/// Events per `POST /api/v1/events/batch`.
const BATCH_SIZE: usize = 1000;
/// Keep-alive connections of the real-time throughput series.
const RT_CONNECTIONS: usize = 32;
/// Concurrent `send`s of the lettre baselines: as many as the server's SMTP pool, and more.
const BASELINE_CONCURRENCY: [usize; 1] = [64];
/// SMTP connections of the baseline's pool and of the server (`[channels.email] pool_size`).
const SMTP_POOL: u32 = 64;
/// Unmeasured events (server) or messages (baseline) before each throughput series.
const WARM_UP_MESSAGES: usize = 100;
/// Open-loop rate of the latency series, and its phases.
const RATE_PERIOD: Duration = Duration::from_millis(1);
const LATENCY_WARM_UP: Duration = Duration::from_secs(2);
const LATENCY_MEASURE: Duration = Duration::from_secs(10);
/// Most connections the open-loop generator opens.
const LATENCY_CONNECTIONS: usize = 64;
/// Connections opened before the open-loop series starts.
const LATENCY_PREOPENED: usize = 16;
/// How long the sink may take, after the last push, to receive every message of a series.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(90);
/// How long the stats may take, after the last message reached the sink, to count every event `sent`.
const SENT_DEADLINE: Duration = Duration::from_secs(30);
/// How often the stats are read while waiting for `sent`.
const STATS_POLL: Duration = Duration::from_millis(10);
/// Targets the figures are reported against.
const TARGET_RATIO: f64 = 0.8;
const TARGET_P99: Duration = Duration::from_millis(100);
const COMMAND: &str = "cargo bench -p message-center --bench delivery";

// ---------------------------------------------------------------------------------------------------------
// Build, machine facts
// ---------------------------------------------------------------------------------------------------------

/// Builds the release server and the three execution plugins.
fn build() -> Artifacts {
    Artifacts::build(&[
        "rt-events-processing",
        "batch-events-processing",
        "update-events-status",
    ])
}

/// CPU used during a series: by this process (sink, load generator), by the server, and by the rest of
/// the machine (other builds and benchmarks share it).
struct SeriesCpu {
    server: Option<u32>,
    watch: CpuWatch,
}

/// Average CPUs busy over a series.
struct CpuUse {
    own: f64,
    server: f64,
    others: f64,
}

impl SeriesCpu {
    /// The ticks of this process and of the server, the two groups of the watch.
    fn ticks(server: Option<u32>) -> [u64; 2] {
        [
            process_ticks("self"),
            server.map_or(0, |pid| process_ticks(&pid.to_string())),
        ]
    }

    fn start(server: Option<u32>) -> Self {
        Self {
            server,
            watch: CpuWatch::start(&Self::ticks(server)),
        }
    }

    fn stop(&self) -> CpuUse {
        let used = self.watch.stop(&Self::ticks(self.server));
        CpuUse {
            own: used.groups[0],
            server: used.groups[1],
            others: used.others,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------------------

/// Event number `n`, as pushed to the server.
fn event_value(n: usize) -> Value {
    json!({
        "type": "BENCH",
        "email": format!("user{n}@example.com"),
        "ctx": { "name": NAMES[n % NAMES.len()], "order": format!("ORD-{n:07}") },
    })
}

/// Message number `n` of the baseline: what the server renders from `event_value(n)` and the template,
/// with a Message-ID of the server's shape.
fn baseline_message(n: usize, from: &Mailbox) -> Message {
    let (name, order) = (NAMES[n % NAMES.len()], format!("ORD-{n:07}"));
    Message::builder()
        .from(from.clone())
        .to(format!("user{n}@example.com").parse().expect("recipient"))
        .subject(format!("Order {order}"))
        .message_id(Some(format!("<baseline.{n}.1.0@example.com>")))
        .multipart(MultiPart::alternative_plain_html(
            format!("Hello {name}, order {order}"),
            format!("<p>Hello {name}</p>"),
        ))
        .expect("baseline message")
}

// ---------------------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------------------

fn event_body(n: usize) -> Bytes {
    Bytes::from(serde_json::to_vec(&event_value(n)).expect("json"))
}

// ---------------------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------------------

/// The release server, a child process with its own configuration, plugin directory, database and log.
/// Starts the server with the three execution plugins, its email channel on the sink at `smtp`.
/// `extra_email` is appended to `[channels.email]` (the DKIM series' `[[channels.email.dkim]]`).
fn start_server(
    artifacts: &Artifacts,
    smtp: SocketAddr,
    extra_email: &str,
    wake: WakeDelays,
) -> ServerProcess {
    let dir = ServerProcess::new_dir();
    for plugin in &artifacts.plugins {
        ServerProcess::add_plugin(&dir, plugin);
    }
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let config = format!(
        "[instance]\nid = 1\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
         [database]\nurl = {}\n\n[plugins]\ndir = {}\n\n\
         [auth]\nadmin_token = \"bench\"\n\n[log]\nlevel = \"warn\"\n\n\
         [channels]\n{wake}\n\
         [channels.email]\nsmtp_url = {}\nfrom = {}\npool_size = {SMTP_POOL}\ntimeout = \"10s\"\n{extra_email}\n\
         [workflows.rtEventsProcessing]\ninterval = \"100ms\"\nbatch_size = 200\n{wake}\n\
         [workflows.batchEventsProcessing]\ninterval = \"100ms\"\nbatch_size = 1000\n{wake}\n\
         [workflows.updateEventsStatus]\ninterval = \"100ms\"\nbatch_size = 1000\n{wake}\n",
        toml_string(&database),
        ServerProcess::plugin_dir(&dir),
        toml_string(&format!("smtp://{smtp}")),
        toml_string(FROM),
        wake = wake.toml(),
    );
    ServerProcess::start(&artifacts.binary, dir, &config)
}

/// A fresh server with the bench template, after `WARM_UP_MESSAGES` real-time events delivered end to
/// end (template cache, SMTP pool, database warm).
fn ready_server(
    artifacts: &Artifacts,
    generator: &Runtime,
    sink: &Sink,
    first_number: usize,
    extra_email: &str,
    wake: WakeDelays,
) -> ServerProcess {
    let mut server = start_server(artifacts, sink.service.addr, extra_email, wake);
    let api = server.api;
    if let Err(e) = generator.block_on(put_template(api, "bench", TEMPLATE)) {
        server.fail(&e);
    }
    let mut deliveries = Deliveries::from_now(sink);
    let warm_up = generator.block_on(async {
        let mut sender = open_connection(api).await?;
        let mut ids = Vec::with_capacity(WARM_UP_MESSAGES);
        for n in first_number..first_number + WARM_UP_MESSAGES {
            ids.push(push_one(&mut sender, api, event_body(n)).await?.0);
        }
        Ok::<_, String>(ids)
    });
    let ids = warm_up.unwrap_or_else(|e| server.fail(&format!("warm-up: {e}")));
    if let Err(missing) = deliveries.wait_all(sink, &ids, Instant::now() + DELIVERY_DEADLINE) {
        server.fail(&format!(
            "warm-up: {missing} of {WARM_UP_MESSAGES} messages never reached the sink within {} s",
            DELIVERY_DEADLINE.as_secs()
        ));
    }
    let settled = generator.block_on(wait_sent(api, "realtime", WARM_UP_MESSAGES as u64));
    if let Err(e) = settled {
        server.fail(&format!("warm-up: {e}"));
    }
    server
}

/// Polls the stats until `expected` events of `queue` read `sent`; returns when the stats said so. Any
/// event in another final status is an error.
async fn wait_sent(addr: SocketAddr, queue: &str, expected: u64) -> Result<Instant, String> {
    let mut sender = open_connection(addr).await?;
    let deadline = Instant::now() + SENT_DEADLINE;
    loop {
        let statuses = queue_statuses(&mut sender, addr, queue).await?;
        let read = Instant::now();
        let count = |status: &str| statuses.get(status).copied().unwrap_or(0);
        let failed: u64 = [
            "ignored",
            "delivery_failed",
            "not_taken_into_account",
            "expired",
        ]
        .iter()
        .map(|s| count(s))
        .sum();
        if failed > 0 {
            return Err(format!(
                "{failed} events of the {queue} queue in a failed final status: {statuses:?}"
            ));
        }
        if count("sent") >= expected {
            return Ok(read);
        }
        if read >= deadline {
            return Err(format!(
                "after {} s the {queue} queue still counts {} of {expected} events sent: {statuses:?}",
                SENT_DEADLINE.as_secs(),
                count("sent")
            ));
        }
        tokio::time::sleep(STATS_POLL).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Series
// ---------------------------------------------------------------------------------------------------------

/// One throughput series.
struct Throughput {
    name: String,
    /// First send / push → last message accepted by the sink.
    elapsed: Duration,
    /// First push → last push answered (server series).
    pushed: Option<Duration>,
    /// First push → the stats count every event `sent` (server series).
    all_sent: Option<Duration>,
    /// SMTP connections the sink accepted during the series.
    connections: usize,
    duplicates: usize,
    /// First DATA line → terminating `.` line read, per message.
    data_spans: Latencies,
    cpu: CpuUse,
    /// The server's log lines (warnings and errors) of the series.
    log: Vec<String>,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        MESSAGES as f64 / self.elapsed.as_secs_f64()
    }
}

/// The baseline: lettre straight to the sink, `concurrency` sends at a time.
fn baseline_series(generator: &Runtime, sink: &Sink, concurrency: usize) -> Throughput {
    let from: Mailbox = FROM.parse().expect("from");
    // lettre's pool spawns its tasks, and stops them on drop, on the current runtime.
    let _runtime = generator.enter();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.service.addr.port())
        .pool_config(PoolConfig::new().max_size(SMTP_POOL))
        .build();
    let transport = Arc::new(transport);
    // Warm-up: fills the pool.
    let numbers: Vec<usize> = (0..WARM_UP_MESSAGES)
        .map(|n| 900_000 + concurrency * 1000 + n)
        .collect();
    let send = |numbers: &[usize]| {
        generator.block_on(lettre_sends(
            &transport,
            &from,
            numbers.to_vec(),
            concurrency,
        ))
    };
    let mut deliveries = Deliveries::from_now(sink);
    send(&numbers).expect("baseline warm-up");
    let ids: Vec<u64> = numbers.iter().map(|&n| n as u64).collect();
    deliveries
        .wait_all(sink, &ids, Instant::now() + DELIVERY_DEADLINE)
        .expect("the baseline warm-up messages reach the sink");

    let mut deliveries = Deliveries::from_now(sink);
    let connections = sink.connections();
    let numbers: Vec<usize> = (0..MESSAGES).map(|n| concurrency * 1_000_000 + n).collect();
    let watch = SeriesCpu::start(None);
    let start = Instant::now();
    send(&numbers).expect("baseline sends");
    let ids: Vec<u64> = numbers.iter().map(|&n| n as u64).collect();
    let last = deliveries
        .wait_all(sink, &ids, Instant::now() + DELIVERY_DEADLINE)
        .unwrap_or_else(|missing| panic!("baseline: {missing} messages never reached the sink"));
    let cpu = watch.stop();
    Throughput {
        name: format!(
            "baseline: lettre, pool max_size {SMTP_POOL}, {concurrency} concurrent sends"
        ),
        elapsed: last - start,
        pushed: None,
        all_sent: None,
        connections: sink.connections() - connections,
        duplicates: deliveries.duplicates,
        data_spans: Latencies::sorted(deliveries.data_spans),
        cpu,
        log: Vec::new(),
    }
}

/// Sends message `n` for every `n` of `numbers`, `concurrency` at a time.
async fn lettre_sends(
    transport: &Arc<AsyncSmtpTransport<Tokio1Executor>>,
    from: &Mailbox,
    numbers: Vec<usize>,
    concurrency: usize,
) -> Result<(), String> {
    let numbers = Arc::new(numbers);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (transport, from) = (Arc::clone(transport), from.clone());
        let (numbers, next) = (Arc::clone(&numbers), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(&n) = numbers.get(index) else {
                    return Ok::<_, String>(());
                };
                transport
                    .send(baseline_message(n, &from))
                    .await
                    .map_err(|e| format!("lettre send {n}: {e}"))?;
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| format!("send task: {e}"))??;
    }
    Ok(())
}

/// How the server series push their 5000 events.
#[derive(Clone, Copy)]
enum Push {
    /// 5 × `POST /api/v1/events/batch` of 1000, one after the other on one connection.
    Batch,
    /// 5000 × `POST /api/v1/events` on `RT_CONNECTIONS` connections.
    RealTime,
}

fn server_series(
    artifacts: &Artifacts,
    generator: &Runtime,
    sink: &Sink,
    push: Push,
    dkim: Option<&DkimSeries>,
) -> Throughput {
    let first = match (push, dkim) {
        (Push::Batch, None) => 1_000_000,
        (Push::RealTime, _) => 2_000_000,
        (Push::Batch, Some(d)) => d.first_number,
    };
    let extra = dkim.map_or(String::new(), DkimSeries::toml);
    let mut server = ready_server(
        artifacts,
        generator,
        sink,
        first,
        &extra,
        WakeDelays::Default,
    );
    let api = server.api;
    let numbers = first + WARM_UP_MESSAGES..first + WARM_UP_MESSAGES + MESSAGES;
    let (queue, expected_sent) = match push {
        Push::Batch => ("batch", MESSAGES as u64),
        Push::RealTime => ("realtime", (WARM_UP_MESSAGES + MESSAGES) as u64),
    };
    let mut deliveries = Deliveries::from_now(sink);
    let connections = sink.connections();
    let watch = SeriesCpu::start(Some(server.pid()));
    let (start, pushed, ids) = match push {
        Push::Batch => {
            let numbers: Vec<usize> = numbers.collect();
            let bodies: Vec<Bytes> = numbers
                .chunks(BATCH_SIZE)
                .map(|chunk| {
                    let events: Vec<Value> = chunk.iter().map(|&n| event_value(n)).collect();
                    Bytes::from(serde_json::to_vec(&json!({ "events": events })).expect("json"))
                })
                .collect();
            let outcome = generator.block_on(async {
                let mut sender = open_connection(api).await?;
                let start = Instant::now();
                let mut ids = Vec::with_capacity(MESSAGES);
                for body in bodies {
                    ids.extend(push_batch(&mut sender, api, body).await?);
                }
                Ok::<_, String>((start, start.elapsed(), ids))
            });
            outcome.unwrap_or_else(|e| server.fail(&format!("batch push: {e}")))
        }
        Push::RealTime => {
            let bodies: Arc<Vec<Bytes>> = Arc::new(numbers.map(event_body).collect());
            let outcome = generator.block_on(async {
                let mut senders = Vec::with_capacity(RT_CONNECTIONS);
                for _ in 0..RT_CONNECTIONS {
                    senders.push(open_connection(api).await?);
                }
                let next = Arc::new(AtomicUsize::new(0));
                let start = Instant::now();
                let mut tasks = Vec::with_capacity(RT_CONNECTIONS);
                for mut sender in senders {
                    let (next, bodies) = (Arc::clone(&next), Arc::clone(&bodies));
                    tasks.push(tokio::spawn(async move {
                        let mut ids = Vec::new();
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(body) = bodies.get(index) else {
                                return Ok::<_, String>(ids);
                            };
                            ids.push(push_one(&mut sender, api, body.clone()).await?.0);
                        }
                    }));
                }
                let mut ids = Vec::with_capacity(MESSAGES);
                for task in tasks {
                    ids.extend(task.await.map_err(|e| format!("push task: {e}"))??);
                }
                Ok::<_, String>((start, start.elapsed(), ids))
            });
            outcome.unwrap_or_else(|e| server.fail(&format!("real-time push: {e}")))
        }
    };
    assert_eq!(ids.len(), MESSAGES, "one id per pushed event");
    let last = match deliveries.wait_all(sink, &ids, Instant::now() + DELIVERY_DEADLINE) {
        Ok(last) => last,
        Err(missing) => server.fail(&format!(
            "{queue} series: {missing} of {MESSAGES} messages never reached the sink within {} s of \
             the last push (sink errors: {:?})",
            DELIVERY_DEADLINE.as_secs(),
            sink.errors()
        )),
    };
    let all_sent = generator
        .block_on(wait_sent(api, queue, expected_sent))
        .unwrap_or_else(|e| server.fail(&format!("{queue} series: {e}")));
    let cpu = watch.stop();
    let connections = sink.connections() - connections;
    let log = server.stop_cleanly();
    Throughput {
        name: match push {
            Push::Batch => format!(
                "message-center, batch queue: {} × POST /events/batch of {BATCH_SIZE}{}",
                MESSAGES / BATCH_SIZE,
                dkim.map_or(String::new(), |d| format!(", DKIM {}", d.name))
            ),
            Push::RealTime => format!(
                "message-center, real-time queue: {MESSAGES} × POST /events on {RT_CONNECTIONS} connections"
            ),
        },
        elapsed: last - start,
        pushed: Some(pushed),
        all_sent: Some(all_sent - start),
        connections,
        duplicates: deliveries.duplicates,
        data_spans: Latencies::sorted(deliveries.data_spans),
        cpu,
        log,
    }
}

/// The wake-ups of the workflows (`[workflows.<name>] wake_delay`) and of the delivery engine
/// (`[channels] wake_delay`): the shipped defaults, or every run started the moment it is woken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WakeDelays {
    Default,
    Off,
}

impl WakeDelays {
    /// The line each of those tables gets.
    fn toml(self) -> &'static str {
        match self {
            WakeDelays::Default => "",
            WakeDelays::Off => "wake_delay = \"0s\"\n",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            WakeDelays::Default => "wake delays at their defaults (3 ms)",
            WakeDelays::Off => "wake delays off (`0s`: a run per wake-up)",
        }
    }
}

/// One open-loop push.
struct Push1 {
    /// Its tick.
    scheduled: Instant,
    /// When its POST was handed to the connection.
    sent: Instant,
    /// When its 201 was read.
    answered: Instant,
    id: u64,
}

/// The latency series.
struct LatencyResult {
    pushed: usize,
    measured: usize,
    received: usize,
    /// Accept − POST sent, for the events of the measured window.
    end_to_end: Latencies,
    /// 201 read − POST sent, same events.
    answer: Latencies,
    /// POST sent − tick, the generator's own lag, same events.
    lag: Latencies,
    /// Pushes per second over the whole series (first tick to last tick).
    rate: f64,
    connections_opened: usize,
    duplicates: usize,
    /// First DATA line → terminating `.` line read, per message.
    data_spans: Latencies,
    cpu: CpuUse,
    log: Vec<String>,
}

fn latency_series(
    artifacts: &Artifacts,
    generator: &Runtime,
    sink: &Sink,
    wake: WakeDelays,
) -> LatencyResult {
    let first = match wake {
        WakeDelays::Off => 3_000_000,
        WakeDelays::Default => 4_000_000,
    };
    let mut server = ready_server(artifacts, generator, sink, first, "", wake);
    let api = server.api;
    let total = ((LATENCY_WARM_UP + LATENCY_MEASURE).as_nanos() / RATE_PERIOD.as_nanos()) as usize;
    let warm_up = (LATENCY_WARM_UP.as_nanos() / RATE_PERIOD.as_nanos()) as usize;
    let bodies: Vec<Bytes> = (0..total)
        .map(|i| event_body(first + WARM_UP_MESSAGES + i))
        .collect();
    let mut deliveries = Deliveries::from_now(sink);
    let watch = SeriesCpu::start(Some(server.pid()));
    let outcome = generator.block_on(async {
        let pool = Arc::new(ConnectionPool::new(api, LATENCY_CONNECTIONS));
        pool.preopen(LATENCY_PREOPENED).await?;
        let mut interval = tokio::time::interval(RATE_PERIOD);
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(total);
        for body in bodies {
            let scheduled = interval.tick().await.into_std();
            let pool = Arc::clone(&pool);
            tasks.push(tokio::spawn(async move {
                let (id, answer) = pool.push(body).await?;
                Ok::<_, String>(Push1 {
                    scheduled,
                    sent: answer.sent,
                    answered: Instant::now(),
                    id,
                })
            }));
        }
        let mut pushes = Vec::with_capacity(total);
        let mut first_error = None;
        for task in tasks {
            match task.await.map_err(|e| format!("push task: {e}")) {
                Ok(Ok(push)) => pushes.push(push),
                Ok(Err(e)) | Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(format!(
                "{} of {total} pushes failed; first: {e}",
                total - pushes.len()
            )),
            None => Ok((pushes, pool.opened())),
        }
    });
    let (pushes, connections_opened) =
        outcome.unwrap_or_else(|e| server.fail(&format!("open-loop push: {e}")));
    let ids: Vec<u64> = pushes.iter().map(|p| p.id).collect();
    if let Err(missing) = deliveries.wait_all(sink, &ids, Instant::now() + DELIVERY_DEADLINE) {
        server.fail(&format!(
            "latency series: {} events pushed, {} received, {missing} never reached the sink within \
             {} s of the last push (sink errors: {:?})",
            pushes.len(),
            pushes.len() - missing,
            DELIVERY_DEADLINE.as_secs(),
            sink.errors()
        ));
    }
    generator
        .block_on(wait_sent(
            api,
            "realtime",
            (WARM_UP_MESSAGES + pushes.len()) as u64,
        ))
        .unwrap_or_else(|e| server.fail(&format!("latency series: {e}")));
    let cpu = watch.stop();
    let log = server.stop_cleanly();
    let measured = &pushes[warm_up..];
    let collect =
        |f: &dyn Fn(&Push1) -> Duration| Latencies::sorted(measured.iter().map(f).collect());
    let span = pushes.last().expect("pushes").scheduled - pushes[0].scheduled;
    LatencyResult {
        pushed: pushes.len(),
        measured: measured.len(),
        received: ids
            .iter()
            .filter(|id| deliveries.first.contains_key(id))
            .count(),
        end_to_end: collect(&|p| deliveries.first[&p.id] - p.sent),
        answer: collect(&|p| p.answered - p.sent),
        lag: collect(&|p| p.sent - p.scheduled),
        rate: (pushes.len() - 1) as f64 / span.as_secs_f64(),
        connections_opened,
        duplicates: deliveries.duplicates,
        data_spans: Latencies::sorted(std::mem::take(&mut deliveries.data_spans)),
        cpu,
        log,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------

fn print_log(name: &str, log: &[String]) {
    if log.is_empty() {
        println!("- {name}: no warning or error in the server log");
        return;
    }
    println!(
        "- {name}: {} warning/error lines in the server log; the first ones:",
        log.len()
    );
    for line in log.iter().take(10) {
        let line: String = line.chars().take(400).collect();
        println!("  - `{line}`");
    }
}

fn cpu_cell(cpu: &CpuUse) -> String {
    format!("{:.2} / {:.2} / {:.2}", cpu.server, cpu.own, cpu.others)
}

// ---------------------------------------------------------------------------------------------------------
// DKIM: the signing cost per message, in process and through the server
// ---------------------------------------------------------------------------------------------------------

/// Messages signed per in-process signing series.
const DKIM_MESSAGES: usize = 2000;

/// A DKIM key for `example.com` (the bench's From domain), made by `openssl` for this run.
struct DkimSeries {
    name: &'static str,
    key: DkimTestKey,
    first_number: usize,
}

impl DkimSeries {
    fn new(name: &'static str, algorithm: DkimAlgorithm, first_number: usize) -> Self {
        DkimSeries {
            name,
            key: DkimTestKey::generate(algorithm),
            first_number,
        }
    }

    fn config(&self) -> DkimKeyConfig {
        DkimKeyConfig {
            domain: "example.com".to_owned(),
            selector: "bench".to_owned(),
            private_key_file: self.key.private_key_file.clone(),
        }
    }

    /// The `[[channels.email.dkim]]` table.
    fn toml(&self) -> String {
        format!(
            "\n[[channels.email.dkim]]\ndomain = \"example.com\"\nselector = \"bench\"\nprivate_key_file = {}\n",
            toml_string(&self.key.private_key_file.display().to_string())
        )
    }
}

/// Per message: building and formatting the baseline's message, unsigned (`None`) or signed with
/// the host's signer (`delivery::DkimSigners`, the code the server runs, which signs on the blocking
/// pool of `runtime`), one message after another; the mean of [`DKIM_MESSAGES`].
fn signing_cost(runtime: &Runtime, dkim: Option<&DkimSeries>) -> Duration {
    let signers = match dkim {
        Some(d) => DkimSigners::load(&[d.config()]).expect("the bench's DKIM key"),
        None => DkimSigners::default(),
    };
    let from: Mailbox = FROM.parse().expect("from");
    runtime.block_on(async {
        let start = Instant::now();
        let mut bytes = 0;
        for n in 0..DKIM_MESSAGES {
            let message = baseline_message(n, &from).formatted();
            let message = signers.sign(message, "example.com").await.expect("signed");
            bytes += message.len();
        }
        assert!(bytes > 0);
        start.elapsed() / DKIM_MESSAGES as u32
    })
}

fn main() {
    let artifacts = build();
    let started = Instant::now();
    let load_before = load_average();
    let generator = two_thread_runtime("load-generator");
    let sink = Sink::start();

    let baselines: Vec<Throughput> = BASELINE_CONCURRENCY
        .iter()
        .map(|&concurrency| baseline_series(&generator, &sink, concurrency))
        .collect();
    let batch = server_series(&artifacts, &generator, &sink, Push::Batch, None);
    let dkim_keys = [
        DkimSeries::new("RSA-2048", DkimAlgorithm::Rsa(2048), 3_000_000),
        DkimSeries::new("Ed25519", DkimAlgorithm::Ed25519, 4_000_000),
    ];
    let dkim_batches: Vec<Throughput> = dkim_keys
        .iter()
        .map(|d| server_series(&artifacts, &generator, &sink, Push::Batch, Some(d)))
        .collect();
    let unsigned_cost = signing_cost(&generator, None);
    let signed_costs: Vec<Duration> = dkim_keys
        .iter()
        .map(|d| signing_cost(&generator, Some(d)))
        .collect();
    let realtime = server_series(&artifacts, &generator, &sink, Push::RealTime, None);
    // Wake delays off, then at their defaults: the cost and the gain of gathering, in the same run.
    let latencies: Vec<(WakeDelays, LatencyResult)> = [WakeDelays::Off, WakeDelays::Default]
        .into_iter()
        .map(|wake| (wake, latency_series(&artifacts, &generator, &sink, wake)))
        .collect();
    let sink_errors = sink.errors();
    let elapsed = started.elapsed();

    println!();
    println!("## Delivery benchmark");
    println!();
    print_machine(
        COMMAND,
        "machine",
        &load_before,
        &[("rustc", command_output("rustc", &["--version"]))],
    );

    println!(
        "### Throughput: {MESSAGES} messages to a local SMTP sink (server: SQLite, `pool_size = {SMTP_POOL}`)"
    );
    println!();
    let ratio_header: Vec<String> = baselines
        .iter()
        .zip(BASELINE_CONCURRENCY)
        .map(|(_, c)| format!("vs baseline {c}"))
        .collect();
    println!(
        "| series | first send/push → {MESSAGES}th message at the sink | messages/s | {} | pushes answered after | all {MESSAGES} read `sent` after | SMTP connections opened | DATA first line → final dot p50 / p99 | duplicates | CPUs: server / bench / others |",
        ratio_header.join(" | ")
    );
    println!(
        "|---|---|---|{}---|---|---|---|---|---|",
        "---|".repeat(baselines.len())
    );
    let secs =
        |d: Option<Duration>| d.map_or("–".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
    for series in baselines
        .iter()
        .chain([&batch])
        .chain(&dkim_batches)
        .chain([&realtime])
    {
        let is_baseline = series.pushed.is_none();
        let ratios: Vec<String> = baselines
            .iter()
            .map(|base| {
                let ratio = series.per_second() / base.per_second();
                if is_baseline {
                    format!("{:.1} %", ratio * 100.0)
                } else if ratio >= TARGET_RATIO {
                    format!("{:.1} % (≥ 80 %: met)", ratio * 100.0)
                } else {
                    format!("{:.1} % (< 80 %: MISSED)", ratio * 100.0)
                }
            })
            .collect();
        println!(
            "| {} | {:.2} s | {:.0} | {} | {} | {} | {} | {} / {} | {} | {} |",
            series.name,
            series.elapsed.as_secs_f64(),
            series.per_second(),
            ratios.join(" | "),
            secs(series.pushed),
            secs(series.all_sent),
            series.connections,
            ms(series.data_spans.percentile(0.5), 1),
            ms(series.data_spans.percentile(0.99), 1),
            series.duplicates,
            cpu_cell(&series.cpu),
        );
    }
    println!();

    println!("### DKIM: the signing cost per message (same run)");
    println!();
    println!(
        "| key | build + format one message, in process (mean of {DKIM_MESSAGES}) | signing cost per message | server batch series: messages/s | vs DKIM off |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| off | {:.1} µs | – | {:.0} | 100 % |",
        unsigned_cost.as_secs_f64() * 1e6,
        batch.per_second()
    );
    for ((key, cost), series) in dkim_keys.iter().zip(&signed_costs).zip(&dkim_batches) {
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.0} | {:.1} % |",
            key.name,
            cost.as_secs_f64() * 1e6,
            (cost.saturating_sub(unsigned_cost)).as_secs_f64() * 1e6,
            series.per_second(),
            series.per_second() / batch.per_second() * 100.0
        );
    }
    println!();

    for (wake, latency) in &latencies {
        let p99 = latency.end_to_end.percentile(0.99);
        println!(
            "### Latency: single real-time events open-loop at {:.0}/s, {} s warm-up + {} s measured; {}",
            1.0 / RATE_PERIOD.as_secs_f64(),
            LATENCY_WARM_UP.as_secs(),
            LATENCY_MEASURE.as_secs(),
            wake.describe()
        );
        println!();
        println!(
            "| measure (events of the measured window) | events | p50 | p90 | p99 | max | p99 < {} ms |",
            TARGET_P99.as_millis()
        );
        println!("|---|---|---|---|---|---|---|");
        for (name, l, verdict) in [
            (
                "end to end: POST sent → message accepted by the SMTP sink",
                &latency.end_to_end,
                if p99 < TARGET_P99 { "met" } else { "MISSED" },
            ),
            ("POST sent → 201 read", &latency.answer, ""),
            ("generator lag: tick → POST sent", &latency.lag, ""),
        ] {
            println!(
                "| {name} | {} | {} | {} | {} | {} | {verdict} |",
                l.0.len(),
                ms(l.percentile(0.5), 1),
                ms(l.percentile(0.9), 1),
                ms(l.percentile(0.99), 1),
                ms(l.percentile(1.0), 1),
            );
        }
        println!();
        println!(
            "Pushed {} events ({} in the measured window) at {:.1}/s over {} HTTP connections; received {} of {} \
             at the sink ({} duplicates); SMTP DATA first line → final dot p50 {} / p99 {}; CPUs busy (server / \
             bench / others): {}.",
            latency.pushed,
            latency.measured,
            latency.rate,
            latency.connections_opened,
            latency.received,
            latency.pushed,
            latency.duplicates,
            ms(latency.data_spans.percentile(0.5), 1),
            ms(latency.data_spans.percentile(0.99), 1),
            cpu_cell(&latency.cpu),
        );
        println!();
    }
    println!("Server logs (level warn):");
    print_log("batch series", &batch.log);
    for series in &dkim_batches {
        print_log(&series.name, &series.log);
    }
    print_log("real-time series", &realtime.log);
    for (wake, latency) in &latencies {
        print_log(
            &format!("latency series, {}", wake.describe()),
            &latency.log,
        );
    }
    println!(
        "- SMTP sink: {} session errors{}",
        sink_errors.len(),
        sink_errors
            .first()
            .map(|e| format!("; first: {e}"))
            .unwrap_or_default()
    );
    println!();
    println!(
        "CPUs busy: average over the series (from /proc/stat and /proc/<pid>/stat) of the server process, \
         of this process (SMTP sink, load generator, lettre baseline) and of everything else on the machine. \
         Each server series ran on a fresh server and SQLite file after {WARM_UP_MESSAGES} unmeasured real-time \
         events delivered end to end; each baseline after {WARM_UP_MESSAGES} unmeasured messages. \
         Measurement took {:.0} s (builds excluded).",
        elapsed.as_secs_f64()
    );
}
