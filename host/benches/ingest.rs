//! Ingestion throughput and latency of the public API, each against a baseline measured in the same run.
//!
//! Run with `cargo bench -p message-center --bench ingest`. It builds the release `message-center`
//! binary, then, in one process and one run:
//! 1. single-event ingest: 64 keep-alive HTTP/1 connections, each sending `POST /api/v1/events` with a
//!    distinct, realistic event back-to-back for 2 s of warm-up and 10 s of measurement, against
//!    - the baseline: a bare hyper handler in this process (its own 2-thread runtime) that reads the body,
//!      parses it into `serde_json::Value`, checks `type` and answers 201, storing nothing;
//!    - the real server, a separate process, on a fresh SQLite file, then on a fresh PostgreSQL database;
//!
//!    in the order bare, SQLite, bare, PostgreSQL, bare: each server series is compared with the mean of
//!    the bare runs just before and after it, because the machine's speed drifts within minutes;
//! 2. batch ingest: 200 × `POST /api/v1/events/batch` of 1000 distinct events on 4 connections (after one
//!    unmeasured batch per connection), against the baseline of the same rows inserted straight into a
//!    fresh database of the same backend with the host's migrations: sea-orm `insert_many` returning the
//!    new keys (the API answers them), one transaction per 1000 rows, by 1 writer and by 4 writers.
//!
//! Each server series of 1. runs twice per backend: alone, and with an operator console tab open (signed in,
//! fetching the monitoring page's live fragment every 5 s as `console.js` does), so that the console's
//! cost shows against the same run's figures.
//!
//! The load generator runs on its own 2-thread tokio runtime in this process. After each real-server
//! series the server is stopped with SIGTERM and the `events` rows are counted: every 2xx answer must be a
//! stored row. Any non-2xx answer or transport error from the real server fails the benchmark.
//!
//! The machine is shared, so each series also reports the CPU that other processes used meanwhile
//! (from `/proc/stat` minus this process, the server and, for PostgreSQL, the series' backends): a figure
//! taken while others were busy is not comparable with one taken on a quiet machine.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use message_center::db::{self, entities::event};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Statement, TransactionTrait,
};
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
use message_center_tests::{
    PostgresDatabase, build_release, postgres_maintenance_url, psql, server_binary_in, toml_string,
};
use server::ServerProcess;

/// Concurrent keep-alive connections of the single-event series.
const CONNECTIONS: usize = 64;
/// Unmeasured load before each single-event measurement.
const WARM_UP: Duration = Duration::from_secs(2);
/// Measured window of each single-event series.
const MEASURE: Duration = Duration::from_secs(10);
/// Events per batch request (the API's default `max_batch_events`).
const BATCH_SIZE: usize = 1000;
/// Concurrent connections (and writers of the 4-writer baseline) of the batch series.
const BATCH_CONNECTIONS: usize = 4;
/// Measured batch requests per series (plus one unmeasured batch per connection).
const BATCH_REQUESTS: usize = 200;
/// A batch series stops taking new requests after this long, whatever it has done.
const BATCH_TIME_CAP: Duration = Duration::from_secs(30);
/// Targets the figures are reported against.
const TARGET_RATIO: f64 = 0.5;
const TARGET_P99: Duration = Duration::from_millis(10);
/// The PostgreSQL database fresh databases are created from; `MC_TEST_POSTGRES_URL` overrides it.
const COMMAND: &str = "cargo bench -p message-center --bench ingest";

// ---------------------------------------------------------------------------------------------------------
// Build, machine facts
// ---------------------------------------------------------------------------------------------------------

/// Builds the release server binary and returns its path (`CARGO_TARGET_DIR` honoured).
fn build_server() -> PathBuf {
    server_binary_in(&build_release(&["message-center"]))
}

/// Which processes do the work of a series: this one, the server, and the PostgreSQL backends of the
/// series' database together with PostgreSQL's WAL writer, checkpointer and background writer.
struct Participants {
    server: Option<u32>,
    database: Option<String>,
}

impl Participants {
    fn ticks(&self) -> u64 {
        let mut ticks = process_ticks("self");
        if let Some(pid) = self.server {
            ticks += process_ticks(&pid.to_string());
        }
        if let Some(database) = &self.database {
            let processes = std::fs::read_dir("/proc").into_iter().flatten().flatten();
            for entry in processes {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                let ours = cmdline.starts_with("postgres: ")
                    && (cmdline.contains(&format!(" {database} "))
                        || ["walwriter", "checkpointer", "background writer"]
                            .iter()
                            .any(|aux| cmdline.contains(aux)));
                if ours {
                    ticks += process_ticks(pid);
                }
            }
        }
        ticks
    }
}

// ---------------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------------

const TYPES: [&str; 4] = [
    "orderConfirmed",
    "orderShipped",
    "passwordReset",
    "accountCreated",
];
const FIRST_NAMES: [&str; 8] = [
    "Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Giulia", "Hugo",
];
const LAST_NAMES: [&str; 8] = [
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
];

/// Event number `n`: distinct for every `n` (address, external id, order id, amount).
fn event_value(n: u64) -> Value {
    let pick = |len: usize| (n % len as u64) as usize;
    json!({
        "type": TYPES[pick(TYPES.len())],
        "email": format!("customer.{n}@example.com"),
        "externalId": format!("ext-{n}"),
        "language": "fr",
        "ctx": {
            "firstName": FIRST_NAMES[pick(FIRST_NAMES.len())],
            "lastName": LAST_NAMES[pick(LAST_NAMES.len())],
            "orderId": format!("ORD-{n:010}"),
            "amount": (n % 100_000) as f64 / 100.0 + 9.99,
            "items": n % 7 + 1,
            "deliveryDate": "2026-11-24",
        },
    })
}

/// The row the API would store for `value` in the batch queue.
fn event_row(value: &Value) -> event::ActiveModel {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let now = chrono::Utc::now();
    event::ActiveModel {
        queue: Set("batch".to_owned()),
        status: Set(event::EventStatus::Pending.as_str().to_owned()),
        event_type: Set(text("type").expect("type")),
        channel: Set(event::CHANNEL_EMAIL.to_owned()),
        // The server's `[instance] id`, default 1: the top byte of the public ids it answers.
        instance_id: Set(1),
        email: Set(text("email")),
        external_id: Set(text("externalId")),
        language: Set(text("language")),
        ctx: Set(value.get("ctx").cloned().unwrap_or_else(|| json!({}))),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------------------

/// One single-event series.
struct LoadResult {
    /// Answers completed inside the measured window (all statuses), with their latency.
    window: Latencies,
    /// 2xx answers over the whole series, warm-up included (each one a stored event).
    accepted: u64,
    /// Non-2xx answers over the whole series.
    non_2xx: u64,
    /// Status and body of the first non-2xx answer.
    first_failure: Option<String>,
    /// CPUs busy with other processes meanwhile, on average.
    others_cpu: f64,
    /// The server's group commits over the series: (mean transaction time, mean requests per
    /// transaction), from its `/metrics`; `None` for the bare handler.
    group_commits: Option<(Duration, f64)>,
}

impl LoadResult {
    fn per_second(&self) -> f64 {
        self.window.0.len() as f64 / MEASURE.as_secs_f64()
    }
}

/// One batch series (HTTP or direct inserts).
struct BatchResult {
    events: u64,
    requests: u64,
    elapsed: Duration,
    latencies: Latencies,
    /// CPUs busy with other processes meanwhile, on average.
    others_cpu: f64,
}

impl BatchResult {
    /// `latencies` of measured requests of [`BATCH_SIZE`] events each, over `elapsed`; the CPU is
    /// filled in by the series.
    fn measured(latencies: Vec<Duration>, elapsed: Duration) -> Self {
        BatchResult {
            events: (latencies.len() * BATCH_SIZE) as u64,
            requests: latencies.len() as u64,
            elapsed,
            latencies: Latencies::sorted(latencies),
            others_cpu: 0.0,
        }
    }

    fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP client (load generator)
// ---------------------------------------------------------------------------------------------------------

/// Sends one POST and reads the whole answer.
async fn post(
    sender: &mut Sender,
    addr: SocketAddr,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    let answer = call(sender, addr, Method::POST, path, body).await?;
    Ok((answer.status, answer.body))
}

fn describe_answer(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(300).collect();
    format!("{status} {text}")
}

/// `CONNECTIONS` connections send single events back-to-back: `WARM_UP`, then `MEASURE`.
async fn single_event_load(
    addr: SocketAddr,
    numbers: Arc<AtomicU64>,
) -> Result<LoadResult, String> {
    let mut senders = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        senders.push(open_connection(addr).await?);
    }
    let start = Instant::now();
    let warm_end = start + WARM_UP;
    let end = warm_end + MEASURE;
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for mut sender in senders {
        let numbers = Arc::clone(&numbers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(32 * 1024);
            let (mut accepted, mut non_2xx, mut first_failure) = (0u64, 0u64, None);
            loop {
                let n = numbers.fetch_add(1, Ordering::Relaxed);
                let body = Bytes::from(serde_json::to_vec(&event_value(n)).expect("json"));
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let (status, answer) = post(&mut sender, addr, "/api/v1/events", body).await?;
                let done = Instant::now();
                if status.is_success() {
                    accepted += 1;
                } else {
                    non_2xx += 1;
                    first_failure.get_or_insert_with(|| describe_answer(status, &answer));
                }
                if done >= warm_end && done <= end {
                    latencies.push(done - sent);
                }
            }
            Ok::<_, String>((latencies, accepted, non_2xx, first_failure))
        }));
    }
    let mut result = LoadResult {
        window: Latencies(Vec::new()),
        accepted: 0,
        non_2xx: 0,
        first_failure: None,
        others_cpu: 0.0,
        group_commits: None,
    };
    let mut all = Vec::new();
    for task in tasks {
        let (latencies, accepted, non_2xx, first_failure) =
            task.await.map_err(|e| format!("load task: {e}"))??;
        all.extend(latencies);
        result.accepted += accepted;
        result.non_2xx += non_2xx;
        if result.first_failure.is_none() {
            result.first_failure = first_failure;
        }
    }
    result.window = Latencies::sorted(all);
    Ok(result)
}

/// `bodies[..BATCH_CONNECTIONS]` are sent first, one per connection and unmeasured; the rest are shared
/// by the connections and measured. Every answer must be 201 with one id per event.
async fn batch_load(addr: SocketAddr, bodies: Arc<Vec<Bytes>>) -> Result<BatchResult, String> {
    let check = |status: StatusCode, answer: &Bytes| -> Result<(), String> {
        let ids = serde_json::from_slice::<Value>(answer)
            .ok()
            .and_then(|v| v.get("ids").and_then(Value::as_array).map(Vec::len));
        if status == StatusCode::CREATED && ids == Some(BATCH_SIZE) {
            Ok(())
        } else {
            Err(format!(
                "POST /api/v1/events/batch answered {}",
                describe_answer(status, answer)
            ))
        }
    };
    let mut senders = Vec::with_capacity(BATCH_CONNECTIONS);
    let mut warm_ups = Vec::new();
    for body in bodies.iter().take(BATCH_CONNECTIONS) {
        let body = body.clone();
        warm_ups.push(tokio::spawn(async move {
            let mut sender = open_connection(addr).await?;
            let (status, answer) = post(&mut sender, addr, "/api/v1/events/batch", body).await?;
            check(status, &answer)?;
            Ok::<_, String>(sender)
        }));
    }
    for warm_up in warm_ups {
        senders.push(warm_up.await.map_err(|e| format!("warm-up task: {e}"))??);
    }

    let next = Arc::new(AtomicUsize::new(BATCH_CONNECTIONS));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut sender in senders {
        let (next, bodies) = (Arc::clone(&next), Arc::clone(&bodies));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some(index) = take_next(&next, bodies.len(), start) {
                let sent = Instant::now();
                let (status, answer) = post(
                    &mut sender,
                    addr,
                    "/api/v1/events/batch",
                    bodies[index].clone(),
                )
                .await?;
                latencies.push(sent.elapsed());
                check(status, &answer)?;
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| format!("batch task: {e}"))??);
    }
    let elapsed = start.elapsed();
    Ok(BatchResult::measured(all, elapsed))
}

/// The index of the next of `len` items a worker takes, or `None` once all are taken or
/// [`BATCH_TIME_CAP`] has passed since `start`.
fn take_next(next: &AtomicUsize, len: usize, start: Instant) -> Option<usize> {
    let index = next.fetch_add(1, Ordering::Relaxed);
    (index < len && start.elapsed() < BATCH_TIME_CAP).then_some(index)
}

// ---------------------------------------------------------------------------------------------------------
// Baselines
// ---------------------------------------------------------------------------------------------------------

/// The bare handler: read the body, parse it, check `type`, answer 201; nothing stored.
async fn bare_handler(
    request: Request<Incoming>,
    ids: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    };
    let error = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"{code}"}}}}"#);
    if request.method() != Method::POST || request.uri().path() != "/api/v1/events" {
        return answer(StatusCode::NOT_FOUND, error("not_found"));
    }
    let body = match Limited::new(request.into_body(), 1024 * 1024)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return answer(StatusCode::PAYLOAD_TOO_LARGE, error("payload_too_large")),
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, error("malformed_json"));
    };
    if !value.get("type").is_some_and(Value::is_string) {
        return answer(StatusCode::BAD_REQUEST, error("invalid_field"));
    }
    let id = ids.fetch_add(1, Ordering::Relaxed);
    answer(
        StatusCode::CREATED,
        format!(r#"{{"id":"{id}","status":"pending","href":"/api/v1/events/{id}"}}"#),
    )
}

/// The bare hyper server on its own 2-thread runtime; dropped at the end of the series.
struct BareServer {
    service: LoopbackService,
}

impl BareServer {
    fn start() -> Self {
        let service = LoopbackService::start("bare-server", |listener| async move {
            let ids = Arc::new(AtomicU64::new(1));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let ids = Arc::clone(&ids);
                let service = service_fn(move |request| bare_handler(request, Arc::clone(&ids)));
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { service }
    }
}

/// Inserts `batches` straight into a fresh, migrated database at `url`: the first `BATCH_CONNECTIONS`
/// unmeasured, the rest measured, by `writers` concurrent tasks, one transaction per batch, each an
/// `insert_many` that returns the new keys (as the API must, to answer them).
async fn bulk_insert(
    url: &str,
    batches: Arc<Vec<Vec<Value>>>,
    writers: usize,
) -> Result<BatchResult, String> {
    let conn = db::connect(url, 4, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    db::migrate(&conn).await.map_err(|e| e.to_string())?;
    async fn insert(conn: &DatabaseConnection, batch: &[Value]) -> Result<(), String> {
        let txn = conn.begin().await.map_err(|e| format!("begin: {e}"))?;
        let keys = event::Entity::insert_many(batch.iter().map(event_row))
            .exec_with_returning_keys(&txn)
            .await
            .map_err(|e| format!("insert_many: {e}"))?;
        txn.commit().await.map_err(|e| format!("commit: {e}"))?;
        if keys.len() == batch.len() {
            Ok(())
        } else {
            Err(format!("{} keys for {} rows", keys.len(), batch.len()))
        }
    }
    for batch in batches.iter().take(BATCH_CONNECTIONS) {
        insert(&conn, batch).await?;
    }
    let next = Arc::new(AtomicUsize::new(BATCH_CONNECTIONS));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (conn, next, batches) = (conn.clone(), Arc::clone(&next), Arc::clone(&batches));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some(index) = take_next(&next, batches.len(), start) {
                let sent = Instant::now();
                insert(&conn, &batches[index]).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| format!("insert task: {e}"))??);
    }
    let elapsed = start.elapsed();
    let stored = event::Entity::find()
        .count(&conn)
        .await
        .map_err(|e| e.to_string())?;
    let expected = ((all.len() + BATCH_CONNECTIONS) * BATCH_SIZE) as u64;
    if stored != expected {
        return Err(format!("{stored} rows stored, {expected} inserted"));
    }
    conn.close().await.map_err(|e| e.to_string())?;
    Ok(BatchResult::measured(all, elapsed))
}

// ---------------------------------------------------------------------------------------------------------
// Databases and the server process
// ---------------------------------------------------------------------------------------------------------

/// The release server, a child process with its own configuration, plugin directory and log.
/// Starts the server with no plugins on `database_url`, with the console user `console` when given
/// (its `[[console.users]]` table).
fn start_server(
    binary: &Path,
    dir: tempfile::TempDir,
    database_url: &str,
    console: Option<&str>,
) -> ServerProcess {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
         [database]\nurl = {}\n\n[plugins]\ndir = {}\n\n\
         [auth]\nadmin_token = \"bench\"\n\n[log]\nlevel = \"warn\"\n\n{}",
        toml_string(database_url),
        ServerProcess::plugin_dir(&dir),
        console.unwrap_or(""),
    );
    ServerProcess::start(binary, dir, &config)
}

/// The console tab's user and password.
const CONSOLE_LOGIN: &str = "bench";
const CONSOLE_PASSWORD: &str = "bench console password";
/// How often the tab refreshes (the console's default `[console] refresh`).
const CONSOLE_REFRESH: Duration = Duration::from_secs(5);

/// `[[console.users]]` for the console tab, hashed by the server's own `hash-password`.
fn console_user_toml(binary: &Path) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(binary)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("message-center hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{CONSOLE_PASSWORD}\n").as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("hash-password ends");
    let hash = String::from_utf8(output.stdout).expect("utf-8");
    format!(
        "[[console.users]]\nlogin = \"{CONSOLE_LOGIN}\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n",
        hash.trim()
    )
}

/// One console request: its status, `Set-Cookie` and body.
async fn console_request(
    sender: &mut Sender,
    admin: SocketAddr,
    request: hyper::http::request::Builder,
    body: &'static [u8],
) -> Result<(StatusCode, Option<String>), String> {
    let request = request
        .header(hyper::header::HOST, admin.to_string())
        .body(Full::new(Bytes::from_static(body)))
        .map_err(|e| format!("console request: {e}"))?;
    sender
        .ready()
        .await
        .map_err(|e| format!("console connection: {e}"))?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("console request: {e}"))?;
    let status = answer.status();
    let cookie = answer
        .headers()
        .get(hyper::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    answer
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("console answer: {e}"))?;
    Ok((status, cookie))
}

/// An operator's console tab: signs in, opens the monitoring page, then fetches its live fragment every
/// [`CONSOLE_REFRESH`] (what `console.js` does) until `stop`; returns the refreshes answered 200.
async fn console_tab(
    admin: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<u64, String> {
    let mut sender = open_connection(admin).await?;
    let form: &'static [u8] = b"login=bench&password=bench+console+password";
    let (status, cookie) = console_request(
        &mut sender,
        admin,
        Request::post("/console/sign-in").header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
        form,
    )
    .await?;
    let cookie = cookie
        .filter(|_| status == StatusCode::SEE_OTHER)
        .ok_or_else(|| format!("console sign-in answered {status}"))?;
    let (status, _) = console_request(
        &mut sender,
        admin,
        Request::get("/console/monitoring").header(hyper::header::COOKIE, &cookie),
        b"",
    )
    .await?;
    if status != StatusCode::OK {
        return Err(format!("the monitoring page answered {status}"));
    }
    let mut refreshes = 0;
    let mut next = Instant::now() + CONSOLE_REFRESH;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        next += CONSOLE_REFRESH;
        let (status, _) = console_request(
            &mut sender,
            admin,
            Request::get("/console/monitoring/live?range=hour")
                .header(hyper::header::COOKIE, &cookie),
            b"",
        )
        .await?;
        if status != StatusCode::OK {
            return Err(format!("the live fragment answered {status}"));
        }
        refreshes += 1;
    }
    Ok(refreshes)
}

/// Mean group-commit transaction time and requests per transaction, from the server's `/metrics`.
async fn group_commit_stats(admin: SocketAddr) -> Option<(Duration, f64)> {
    let mut sender = open_connection(admin).await.ok()?;
    let answer = call_with_token(
        &mut sender,
        admin,
        Method::GET,
        "/metrics",
        Bytes::new(),
        Some("bench"),
    )
    .await
    .ok()?;
    let text = String::from_utf8_lossy(&answer.body);
    let value = |name: &str| {
        text.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    let seconds = value("mc_ingest_group_commit_duration_seconds_sum")?;
    let commits = value("mc_ingest_group_commit_duration_seconds_count")?;
    let requests = value("mc_ingest_group_commit_submissions_sum")?;
    (commits > 0.0).then(|| {
        (
            Duration::from_secs_f64(seconds / commits),
            requests / commits,
        )
    })
}

/// Counts the `events` rows of `queue` in the (stopped) server's database.
async fn stored_events(url: &str, queue: &str) -> u64 {
    let conn = db::connect(url, 1, Duration::from_secs(5))
        .await
        .expect("connect to count events");
    let count = event::Entity::find()
        .filter(event::Column::Queue.eq(queue))
        .count(&conn)
        .await
        .expect("count events");
    conn.close().await.expect("close");
    count
}

async fn sqlite_version() -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    let conn = db::connect(&url, 1, Duration::from_secs(5))
        .await
        .expect("sqlite");
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT sqlite_version() AS v",
        ))
        .await
        .expect("sqlite_version()")
        .expect("a row");
    let version: String = row.try_get("", "v").expect("version");
    conn.close().await.expect("close");
    version
}

// ---------------------------------------------------------------------------------------------------------
// The series
// ---------------------------------------------------------------------------------------------------------

enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }

    /// A fresh database: its url, and what keeps it alive.
    fn fresh(&self, label: &str) -> (String, tempfile::TempDir, Option<PostgresDatabase>) {
        let dir = ServerProcess::new_dir();
        match self {
            Backend::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                );
                (url, dir, None)
            }
            Backend::Postgres => {
                let pg = PostgresDatabase::create_with_prefix(&format!("mc_bench_{label}"));
                (pg.url().to_owned(), dir, Some(pg))
            }
        }
    }
}

/// A row of the single-event table: a series and, for a server series, the bare handler's rate it is
/// compared with.
struct SingleRow {
    name: String,
    result: LoadResult,
    baseline: Option<f64>,
}

/// One single-event series on the bare handler, in this process.
fn bare_series(generator: &Runtime, numbers: &Arc<AtomicU64>) -> LoadResult {
    let bare = BareServer::start();
    let participants = Participants {
        server: None,
        database: None,
    };
    let watch = CpuWatch::start(&[participants.ticks()]);
    let mut result = generator
        .block_on(single_event_load(bare.service.addr, Arc::clone(numbers)))
        .expect("single-event load on the bare handler");
    result.others_cpu = watch.stop(&[participants.ticks()]).others;
    drop(bare);
    assert_eq!(
        result.non_2xx, 0,
        "the bare handler refused requests: {:?}",
        result.first_failure
    );
    result
}

/// A single-event series on the real server; with `console` (the user's table), a console tab is open
/// and refreshing meanwhile.
fn single_event_series(
    generator: &Runtime,
    binary: &Path,
    backend: &Backend,
    numbers: &Arc<AtomicU64>,
    console: Option<&str>,
) -> LoadResult {
    let (url, dir, pg) = backend.fresh("single");
    let mut server = start_server(binary, dir, &url, console);
    let api = server.api;
    let participants = Participants {
        server: Some(server.pid()),
        database: pg.as_ref().map(|pg| pg.name().to_owned()),
    };
    // One probe first, so that a missing endpoint fails at once with the server's answer.
    let probe_number = numbers.fetch_add(1, Ordering::Relaxed);
    let probe = generator.block_on(async {
        let mut sender = open_connection(api).await?;
        let body = Bytes::from(serde_json::to_vec(&event_value(probe_number)).expect("json"));
        post(&mut sender, api, "/api/v1/events", body).await
    });
    match &probe {
        Ok((status, _)) if *status == StatusCode::CREATED => {}
        Ok((status, answer)) => panic!(
            "POST /api/v1/events on the real server ({}) answered {} instead of 201",
            backend.name(),
            describe_answer(*status, answer)
        ),
        Err(e) => panic!("POST /api/v1/events on the real server: {e}"),
    }
    let stop_tab = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tab = console.map(|_| generator.spawn(console_tab(server.admin, Arc::clone(&stop_tab))));
    let watch = CpuWatch::start(&[participants.ticks()]);
    let mut result = generator
        .block_on(single_event_load(api, Arc::clone(numbers)))
        .unwrap_or_else(|e| {
            panic!(
                "single-event load on the real server ({}): {e}",
                backend.name()
            )
        });
    result.others_cpu = watch.stop(&[participants.ticks()]).others;
    stop_tab.store(true, Ordering::Relaxed);
    if let Some(tab) = tab {
        let refreshes = generator
            .block_on(tab)
            .expect("console tab task")
            .unwrap_or_else(|e| panic!("console tab ({}): {e}", backend.name()));
        assert!(
            refreshes >= (WARM_UP + MEASURE).as_secs() / CONSOLE_REFRESH.as_secs(),
            "the console tab refreshed {refreshes} times"
        );
    }
    result.group_commits = generator.block_on(group_commit_stats(server.admin));
    let _ = server.stop_cleanly();
    assert_eq!(
        result.non_2xx,
        0,
        "the real server ({}) refused {} requests; first: {}",
        backend.name(),
        result.non_2xx,
        result.first_failure.as_deref().unwrap_or("")
    );
    let stored = generator.block_on(stored_events(&url, "realtime"));
    assert_eq!(
        stored,
        result.accepted + 1,
        "the real server ({}) accepted {} events but stored {stored}",
        backend.name(),
        result.accepted + 1
    );
    result
}

fn batch_series(
    generator: &Runtime,
    binary: &Path,
    backend: &Backend,
    bodies: &Arc<Vec<Bytes>>,
) -> BatchResult {
    let (url, dir, pg) = backend.fresh("batch");
    let mut server = start_server(binary, dir, &url, None);
    let participants = Participants {
        server: Some(server.pid()),
        database: pg.as_ref().map(|pg| pg.name().to_owned()),
    };
    let watch = CpuWatch::start(&[participants.ticks()]);
    let mut result = generator
        .block_on(batch_load(server.api, Arc::clone(bodies)))
        .unwrap_or_else(|e| panic!("batch load on the real server ({}): {e}", backend.name()));
    result.others_cpu = watch.stop(&[participants.ticks()]).others;
    server.stop_cleanly();
    let stored = generator.block_on(stored_events(&url, "batch"));
    let accepted = result.events + (BATCH_CONNECTIONS * BATCH_SIZE) as u64;
    assert_eq!(
        stored,
        accepted,
        "the real server ({}) accepted {accepted} batch events but stored {stored}",
        backend.name()
    );
    result
}

fn baseline_batch_series(
    generator: &Runtime,
    backend: &Backend,
    batches: &Arc<Vec<Vec<Value>>>,
    writers: usize,
) -> BatchResult {
    let (url, _dir, pg) = backend.fresh(&format!("bulk{writers}"));
    let participants = Participants {
        server: None,
        database: pg.as_ref().map(|pg| pg.name().to_owned()),
    };
    let watch = CpuWatch::start(&[participants.ticks()]);
    let mut result = generator
        .block_on(bulk_insert(&url, Arc::clone(batches), writers))
        .unwrap_or_else(|e| panic!("bulk inserts into {}: {e}", backend.name()));
    result.others_cpu = watch.stop(&[participants.ticks()]).others;
    result
}

fn main() {
    let binary = build_server();
    let started = Instant::now();
    let load_before = load_average();
    let generator = two_thread_runtime("load-generator");
    let versions = vec![
        ("rustc", command_output("rustc", &["--version"])),
        ("SQLite", generator.block_on(sqlite_version())),
        (
            "PostgreSQL",
            psql(&postgres_maintenance_url(), "SHOW server_version")
                .unwrap_or_else(|e| panic!("PostgreSQL must be reachable: {e}")),
        ),
    ];

    // 1. Single-event ingest. The machine's speed drifts (on this kind of shared VM by ±15 % within
    // minutes), so the bare handler is measured before and after each server series, and the series is
    // compared with the mean of the two runs around it rather than with one run minutes away.
    let numbers = Arc::new(AtomicU64::new(0));
    let first = bare_series(&generator, &numbers);
    let mut rate_before = first.per_second();
    let mut single = vec![SingleRow {
        name: "bare hyper handler (parse only, nothing stored)".to_owned(),
        result: first,
        baseline: None,
    }];
    let console_user = console_user_toml(&binary);
    for (backend, console) in [
        (Backend::Sqlite, None),
        (Backend::Sqlite, Some(console_user.as_str())),
        (Backend::Postgres, None),
        (Backend::Postgres, Some(console_user.as_str())),
    ] {
        let result = single_event_series(&generator, &binary, &backend, &numbers, console);
        let after = bare_series(&generator, &numbers);
        let rate_after = after.per_second();
        single.push(SingleRow {
            name: format!(
                "message-center, {}{}",
                backend.name(),
                if console.is_some() {
                    ", console tab refreshing every 5 s"
                } else {
                    ""
                }
            ),
            result,
            baseline: Some((rate_before + rate_after) / 2.0),
        });
        single.push(SingleRow {
            name: "bare hyper handler (parse only, nothing stored)".to_owned(),
            result: after,
            baseline: None,
        });
        rate_before = rate_after;
    }

    // 2. Batch ingest: the same events for every series.
    let batches: Vec<Vec<Value>> = (0..BATCH_CONNECTIONS + BATCH_REQUESTS)
        .map(|b| {
            (0..BATCH_SIZE)
                .map(|i| event_value(1_000_000_000 + (b * BATCH_SIZE + i) as u64))
                .collect()
        })
        .collect();
    let bodies: Vec<Bytes> = batches
        .iter()
        .map(|events| Bytes::from(serde_json::to_vec(&json!({ "events": events })).expect("json")))
        .collect();
    let body_bytes = bodies.iter().map(Bytes::len).sum::<usize>() / bodies.len();
    assert!(
        body_bytes < 1024 * 1024,
        "a batch body must fit max_body_bytes"
    );
    let (batches, bodies) = (Arc::new(batches), Arc::new(bodies));
    let mut batch_rows: Vec<Vec<(String, BatchResult, bool)>> = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut rows = Vec::new();
        for writers in [1, BATCH_CONNECTIONS] {
            let result = baseline_batch_series(&generator, &backend, &batches, writers);
            rows.push((
                format!(
                    "baseline: {} insert_many, {writers} writer{}",
                    backend.name(),
                    if writers == 1 { "" } else { "s" }
                ),
                result,
                true,
            ));
        }
        let result = batch_series(&generator, &binary, &backend, &bodies);
        rows.push((
            format!("message-center /events/batch, {}", backend.name()),
            result,
            false,
        ));
        batch_rows.push(rows);
    }

    // Report.
    println!();
    println!("## Ingestion benchmark");
    println!();
    print_machine(COMMAND, "machine", &load_before, &versions);

    println!(
        "### Single-event ingest: {CONNECTIONS} keep-alive connections, {}s warm-up + {}s measured",
        WARM_UP.as_secs(),
        MEASURE.as_secs()
    );
    println!();
    println!(
        "| server | requests in window | req/s | p50 | p99 | max | non-2xx | req/s vs bare (mean of the runs around it) | p99 < {} ms | other processes' CPU | group commit: mean time, requests |",
        TARGET_P99.as_millis()
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for SingleRow {
        name,
        result: r,
        baseline,
    } in &single
    {
        let p99 = r.window.percentile(0.99);
        let ratio = match baseline {
            None => "baseline".to_owned(),
            Some(bare_rate) => {
                let ratio = r.per_second() / bare_rate;
                format!(
                    "{:.1} % of {bare_rate:.0} ({})",
                    ratio * 100.0,
                    if ratio >= TARGET_RATIO {
                        "≥ 50 %: met"
                    } else {
                        "< 50 %: MISSED"
                    }
                )
            }
        };
        println!(
            "| {name} | {} | {:.0} | {} | {} | {} | {} | {ratio} | {} | {:.2} of {} | {} |",
            r.window.0.len(),
            r.per_second(),
            ms(r.window.percentile(0.5), 2),
            ms(p99, 2),
            ms(r.window.percentile(1.0), 2),
            r.non_2xx,
            if p99 < TARGET_P99 { "met" } else { "MISSED" },
            r.others_cpu,
            nproc(),
            r.group_commits
                .map_or("–".to_owned(), |(time, requests)| format!(
                    "{}, {requests:.1}",
                    ms(time, 2)
                )),
        );
    }
    println!();
    println!(
        "req/s vs bare: against the mean of the bare handler's runs just before and just after the series."
    );
    println!();

    println!(
        "### Batch ingest: {BATCH_REQUESTS} × {BATCH_SIZE} events measured (after {BATCH_CONNECTIONS} unmeasured), {BATCH_CONNECTIONS} connections; body ≈ {} KiB",
        body_bytes / 1024
    );
    println!();
    println!(
        "| series | events | requests | elapsed | events/s | p50 per 1000 | p99 per 1000 | vs best baseline | other processes' CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for rows in &batch_rows {
        let best = rows
            .iter()
            .filter(|(_, _, is_baseline)| *is_baseline)
            .map(|(_, r, _)| r.per_second())
            .fold(0.0, f64::max);
        for (name, r, is_baseline) in rows {
            let ratio = r.per_second() / best;
            let verdict = if *is_baseline {
                String::new()
            } else if ratio >= TARGET_RATIO {
                " (≥ 50 %: met)".to_owned()
            } else {
                " (< 50 %: MISSED)".to_owned()
            };
            println!(
                "| {name} | {} | {} | {:.2} s | {:.0} | {} | {} | {:.1} %{verdict} | {:.2} of {} |",
                r.events,
                r.requests,
                r.elapsed.as_secs_f64(),
                r.per_second(),
                ms(r.latencies.percentile(0.5), 2),
                ms(r.latencies.percentile(0.99), 2),
                ratio * 100.0,
                r.others_cpu,
                nproc(),
            );
        }
    }
    println!();
    println!(
        "Other processes' CPU: CPUs busy, on average over the series, with anything but this process, the \
         server and (PostgreSQL series) the backends of the series' database and PostgreSQL's WAL writer, \
         checkpointer and background writer (from /proc/stat and /proc/<pid>/stat). \
         Measurement took {:.0} s (builds excluded).",
        started.elapsed().as_secs_f64()
    );
}
