//! Webhook notifications: what the server sends per second against a bare HTTP POST loop, and what the
//! outbox costs the delivery pipeline, each pair in one process and one run.
//!
//! Run with `cargo bench -p message-center --bench webhooks`. It builds the release `message-center`
//! binary, the three execution plugins and `webhookDelivery`, then starts, in this process and each on a
//! 2-thread tokio runtime of its own, a receiver (a hyper HTTP/1 server answering 204 to every POST and
//! recording its `webhook-id`, its body size and when it arrived) and the delivery bench's SMTP sink.
//!
//! 1. Notifications per second, [`NOTIFICATIONS`] of them:
//!    - the server: one endpoint at the receiver subscribed to `event.not_taken_into_account`, with
//!      `webhookDelivery` stopped, [`NOTIFICATIONS`] events of a type without a template (final at once,
//!      no mail) pushed in batches; once every notification is pending, `webhookDelivery` is started and
//!      the clock runs until the receiver has seen every `webhook-id`;
//!    - the baseline: [`CONCURRENCY`] keep-alive hyper connections (the server's
//!      `max_concurrent_per_endpoint`) POSTing as many bodies of the server's average size, each signed
//!      the Standard Webhooks way (HMAC-SHA256 of `id.timestamp.body`) as the server signs, to the same
//!      receiver.
//! 2. The delivery pipeline, end to end: [`MESSAGES`] events in batches of [`BATCH_SIZE`] through the SMTP
//!    sink, from the first push to the last message accepted and every event `sent` in
//!    `GET /api/v1/stats`, on a fresh server with no webhook endpoint, then on one with an endpoint
//!    subscribed to every type (its notifications are counted too), [`ROUNDS`] times alternately.
//!
//! Every series runs on a fresh server process and SQLite file. A missing notification or message, an
//! error answer, or a notification the receiver saw unsigned fails the benchmark with the server's log.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::runtime::Runtime;

#[path = "support/common.rs"]
mod common;
#[path = "support/http.rs"]
mod http;
#[path = "support/server.rs"]
mod server;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
use common::*;
use http::{Sender, call, call_with_token, open_connection, push_batch, queue_statuses};
use message_center_tests::toml_string;
use server::{Artifacts, ServerProcess};
use smtp_sink::Sink;

/// Notifications of each notification series.
const NOTIFICATIONS: usize = 2000;
/// Concurrent requests: the server's `max_concurrent_per_endpoint` and the baseline's connections.
const CONCURRENCY: usize = 4;
/// Messages of each pipeline series, and events per `POST /api/v1/events/batch`.
const MESSAGES: usize = 5000;
const BATCH_SIZE: usize = 1000;
/// Pipeline series of each kind (none, one endpoint), run alternately.
const ROUNDS: usize = 2;
/// How long a series may take to complete.
const DEADLINE: Duration = Duration::from_secs(180);
const COMMAND: &str = "cargo bench -p message-center --bench webhooks";
const ADMIN_TOKEN: &str = "bench";
const TEMPLATE: &str = r#"{"eventType":"BENCH","channel":"email","subject":"Order {{ ctx.order }}","text":"Hello {{ ctx.name }}, order {{ ctx.order }}","html":"<p>Hello {{ ctx.name }}</p>"}"#;
/// The endpoints' secret: `whsec_` and base64 of 32 bytes.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA=";

// ---------------------------------------------------------------------------------------------------------
// Build
// ---------------------------------------------------------------------------------------------------------

/// Builds the release server, the three execution plugins and `webhookDelivery`.
fn build() -> Artifacts {
    Artifacts::build(&[
        "rt-events-processing",
        "batch-events-processing",
        "update-events-status",
        "webhook-delivery",
    ])
}

// ---------------------------------------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------------------------------------

#[derive(Default)]
struct ReceiverState {
    requests: AtomicUsize,
    body_bytes: AtomicUsize,
    /// Requests without the three Standard Webhooks headers.
    unsigned: AtomicUsize,
    /// Every `webhook-id` seen, and when the newest one first arrived.
    ids: Mutex<(HashSet<String>, Option<Instant>)>,
}

/// A hyper HTTP/1 server answering 204 to everything, on its own 2-thread runtime.
struct Receiver {
    service: LoopbackService,
    state: Arc<ReceiverState>,
}

impl Receiver {
    fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let shared = Arc::clone(&state);
        let service = LoopbackService::start("webhook-receiver", |listener| async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let handler = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(receive(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), handler)
                        .await;
                });
            }
        });
        Self { service, state }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.service.addr)
    }

    /// (requests, distinct ids, body bytes, unsigned requests) so far.
    fn counts(&self) -> (usize, usize, usize, usize) {
        let ids = self.state.ids.lock().expect("receiver ids").0.len();
        (
            self.state.requests.load(Ordering::Relaxed),
            ids,
            self.state.body_bytes.load(Ordering::Relaxed),
            self.state.unsigned.load(Ordering::Relaxed),
        )
    }

    /// Waits until `n` distinct ids have arrived; the instant the last new one did, or how many came.
    fn wait_ids(&self, n: usize, deadline: Instant) -> Result<Instant, usize> {
        loop {
            {
                let ids = self.state.ids.lock().expect("receiver ids");
                if ids.0.len() >= n {
                    return Ok(ids.1.expect("an arrival"));
                }
                if Instant::now() >= deadline {
                    return Err(ids.0.len());
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

async fn receive(state: &ReceiverState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let id = header("webhook-id");
    let signed = id.is_some()
        && header("webhook-timestamp").is_some()
        && header("webhook-signature").is_some_and(|s| s.starts_with("v1,"));
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state.requests.fetch_add(1, Ordering::Relaxed);
    state.body_bytes.fetch_add(body.len(), Ordering::Relaxed);
    if !signed {
        state.unsigned.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(id) = id {
        let mut ids = state.ids.lock().expect("receiver ids");
        if ids.0.insert(id) {
            ids.1 = Some(Instant::now());
        }
    }
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .expect("a 204")
}

// ---------------------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------------------

fn start_server(artifacts: &Artifacts, smtp: SocketAddr) -> ServerProcess {
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
         [auth]\nadmin_token = {}\n\n[log]\nlevel = \"warn\"\n\n\
         [channels.email]\nsmtp_url = {}\nfrom = \"Bench <bench@example.com>\"\npool_size = 64\ntimeout = \"10s\"\n\n\
         [webhooks]\nallowed_destinations = [\"127.0.0.1/32\"]\nmax_concurrent_per_endpoint = {CONCURRENCY}\n\n\
         [workflows.rtEventsProcessing]\ninterval = \"100ms\"\nbatch_size = 200\n\n\
         [workflows.batchEventsProcessing]\ninterval = \"100ms\"\nbatch_size = 1000\n\n\
         [workflows.updateEventsStatus]\ninterval = \"100ms\"\nbatch_size = 1000\n\n\
         [workflows.webhookDelivery]\ninterval = \"100ms\"\nbatch_size = 100\n",
        toml_string(&database),
        ServerProcess::plugin_dir(&dir),
        toml_string(ADMIN_TOKEN),
        toml_string(&format!("smtp://{smtp}")),
    );
    ServerProcess::start(&artifacts.binary, dir, &config)
}

/// One request on a fresh connection; fails the benchmark unless it answers 2xx.
fn request(
    generator: &Runtime,
    server: &mut ServerProcess,
    admin: bool,
    method: Method,
    path: &str,
    body: &str,
) {
    let addr = if admin { server.admin } else { server.api };
    let token = admin.then_some(ADMIN_TOKEN);
    let answer = generator.block_on(async {
        let mut sender = open_connection(addr).await?;
        let body = Bytes::from(body.to_owned());
        call_with_token(&mut sender, addr, method.clone(), path, body, token).await
    });
    match answer {
        Ok(answer) if answer.status.is_success() => {}
        Ok(answer) => server.fail(&answer.describe(&format!("{method} {path}"))),
        Err(e) => server.fail(&format!("{method} {path}: {e}")),
    }
}

fn put_endpoint(generator: &Runtime, server: &mut ServerProcess, url: &str, events: Option<&str>) {
    let mut body = json!({ "url": url, "secret": SECRET });
    if let Some(event) = events {
        body["events"] = json!([event]);
    }
    request(
        generator,
        server,
        false,
        Method::PUT,
        "/api/v1/webhooks/bench",
        &body.to_string(),
    );
}

/// Pushes `count` events (`event(n)`) in batches of [`BATCH_SIZE`]; returns when the first was sent.
fn push_events(
    generator: &Runtime,
    server: &mut ServerProcess,
    count: usize,
    event: impl Fn(usize) -> Value,
) -> Instant {
    let api = server.api;
    let batches: Vec<Bytes> = (0..count)
        .collect::<Vec<_>>()
        .chunks(BATCH_SIZE)
        .map(|chunk| {
            let events: Vec<Value> = chunk.iter().map(|n| event(*n)).collect();
            Bytes::from(json!({ "events": events }).to_string())
        })
        .collect();
    let started = Instant::now();
    let pushed = generator.block_on(async {
        let mut sender = open_connection(api).await?;
        for batch in batches {
            push_batch(&mut sender, api, batch).await?;
        }
        Ok::<_, String>(())
    });
    if let Err(e) = pushed {
        server.fail(&format!("push: {e}"));
    }
    started
}

/// Polls the stats until `count` events of the batch queue read `status`; when they did.
fn wait_status(
    generator: &Runtime,
    server: &mut ServerProcess,
    status: &str,
    count: u64,
) -> Instant {
    let api = server.api;
    let waited = generator.block_on(async {
        let mut sender: Sender = open_connection(api).await?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            let statuses = queue_statuses(&mut sender, api, "batch").await?;
            let read = Instant::now();
            if statuses.get(status).copied().unwrap_or(0) >= count {
                return Ok(read);
            }
            if read >= deadline {
                return Err(format!(
                    "{count} events {status} never reached: {statuses:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    waited.unwrap_or_else(|e| server.fail(&e))
}

// ---------------------------------------------------------------------------------------------------------
// Series 1: notifications per second
// ---------------------------------------------------------------------------------------------------------

struct Rate {
    count: usize,
    elapsed: Duration,
    requests: usize,
    mean_body: usize,
}

impl Rate {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

fn server_notifications(artifacts: &Artifacts, generator: &Runtime, sink: &Sink) -> Rate {
    let receiver = Receiver::start();
    let mut server = start_server(artifacts, sink.service.addr);
    request(
        generator,
        &mut server,
        true,
        Method::POST,
        "/admin/workflows/webhookDelivery/stop",
        "",
    );
    put_endpoint(
        generator,
        &mut server,
        &receiver.url(),
        Some("event.not_taken_into_account"),
    );
    push_events(
        generator,
        &mut server,
        NOTIFICATIONS,
        |n| json!({ "type": "NO_TEMPLATE", "email": format!("user{n}@example.com"), "ctx": { "n": n } }),
    );
    wait_status(
        generator,
        &mut server,
        "not_taken_into_account",
        NOTIFICATIONS as u64,
    );
    let before = receiver.counts();
    if before.0 != 0 {
        server.fail("notifications arrived while webhookDelivery was stopped");
    }
    let started = Instant::now();
    request(
        generator,
        &mut server,
        true,
        Method::POST,
        "/admin/workflows/webhookDelivery/start",
        "",
    );
    let last = match receiver.wait_ids(NOTIFICATIONS, started + DEADLINE) {
        Ok(last) => last,
        Err(got) => server.fail(&format!(
            "{got} of {NOTIFICATIONS} notifications reached the receiver"
        )),
    };
    let (requests, _, bytes, unsigned) = receiver.counts();
    if unsigned > 0 {
        server.fail(&format!("{unsigned} notifications without a signature"));
    }
    server.stop_cleanly();
    Rate {
        count: NOTIFICATIONS,
        elapsed: last - started,
        requests,
        mean_body: bytes / requests.max(1),
    }
}

/// `v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`, as the server signs.
fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{signature}")
}

fn baseline_notifications(generator: &Runtime, body_size: usize) -> Rate {
    let receiver = Receiver::start();
    let addr = receiver.service.addr;
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("the secret is base64");
    let body = Bytes::from(vec![b'x'; body_size]);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let sent = generator.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (next, key, body) = (Arc::clone(&next), key.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let mut sender = open_connection(addr).await?;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= NOTIFICATIONS {
                        return Ok::<_, String>(());
                    }
                    let id = format!("msg_bare_{n}");
                    let timestamp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("after 1970")
                        .as_secs();
                    let request = Request::builder()
                        .method(Method::POST)
                        .uri("/hook")
                        .header("host", addr.to_string())
                        .header("content-type", "application/json")
                        .header("webhook-id", &id)
                        .header("webhook-timestamp", timestamp.to_string())
                        .header("webhook-signature", sign(&key, &id, timestamp, &body))
                        .body(Full::new(body.clone()))
                        .map_err(|e| e.to_string())?;
                    sender.ready().await.map_err(|e| e.to_string())?;
                    let response = sender
                        .send_request(request)
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status();
                    response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !status.is_success() {
                        return Err(format!("the receiver answered {status}"));
                    }
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok::<_, String>(())
    });
    if let Err(e) = sent {
        panic!("baseline: {e}");
    }
    let last = receiver
        .wait_ids(NOTIFICATIONS, Instant::now() + DEADLINE)
        .unwrap_or_else(|got| panic!("baseline: {got} of {NOTIFICATIONS} arrived"));
    let (requests, _, bytes, _) = receiver.counts();
    Rate {
        count: NOTIFICATIONS,
        elapsed: last - started,
        requests,
        mean_body: bytes / requests.max(1),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Series 2: the pipeline with and without an endpoint
// ---------------------------------------------------------------------------------------------------------

struct Pipeline {
    /// First push → last message accepted by the sink.
    to_sink: Duration,
    /// First push → every event `sent` in the stats.
    to_sent: Duration,
    /// First push → every notification received (with an endpoint).
    to_notified: Option<Duration>,
}

fn pipeline_series(
    artifacts: &Artifacts,
    generator: &Runtime,
    sink: &Sink,
    with_endpoint: bool,
) -> Pipeline {
    let receiver = Receiver::start();
    let mut server = start_server(artifacts, sink.service.addr);
    let api = server.api;
    let put = generator.block_on(async {
        let mut sender = open_connection(api).await?;
        let body = Bytes::from_static(TEMPLATE.as_bytes());
        call(
            &mut sender,
            api,
            Method::PUT,
            "/api/v1/templates/bench",
            body,
        )
        .await
    });
    if !put.as_ref().is_ok_and(|a| a.status.is_success()) {
        server.fail("PUT /api/v1/templates/bench failed");
    }
    if with_endpoint {
        put_endpoint(generator, &mut server, &receiver.url(), None);
    }
    let accepted_before = sink.accepted();
    let started = push_events(generator, &mut server, MESSAGES, |n| {
        json!({
            "type": "BENCH",
            "email": format!("user{n}@example.com"),
            "ctx": { "name": "Alice", "order": format!("ORD-{n:07}") },
        })
    });
    let deadline = started + DEADLINE;
    let to_sink = loop {
        let records = sink.state.accepted.lock().expect("sink records");
        if records.len() >= accepted_before + MESSAGES {
            break records[accepted_before + MESSAGES - 1].at - started;
        }
        drop(records);
        if Instant::now() >= deadline {
            server.fail(&format!(
                "{} of {MESSAGES} messages reached the sink",
                sink.accepted() - accepted_before
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let to_sent = wait_status(generator, &mut server, "sent", MESSAGES as u64) - started;
    let to_notified = with_endpoint.then(|| match receiver.wait_ids(MESSAGES, deadline) {
        Ok(last) => last.saturating_duration_since(started),
        Err(got) => server.fail(&format!("{got} of {MESSAGES} notifications arrived")),
    });
    server.stop_cleanly();
    Pipeline {
        to_sink,
        to_sent,
        to_notified,
    }
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let load_before = load_average();
    let artifacts = build();
    let generator = two_thread_runtime("load-generator");
    let sink = Sink::start();

    let server = server_notifications(&artifacts, &generator, &sink);
    let baseline = baseline_notifications(&generator, server.mean_body);
    let mut pipelines: Vec<(bool, Pipeline)> = Vec::new();
    for _ in 0..ROUNDS {
        for with_endpoint in [false, true] {
            pipelines.push((
                with_endpoint,
                pipeline_series(&artifacts, &generator, &sink, with_endpoint),
            ));
        }
    }

    println!();
    println!("## Webhooks benchmark");
    println!();
    print_machine(
        COMMAND,
        "machine",
        &load_before,
        &[("rustc", command_output("rustc", &["--version"]))],
    );
    println!(
        "### Notifications per second ({NOTIFICATIONS}, {CONCURRENCY} concurrent, receiver answering 204)"
    );
    println!();
    println!("| series | notifications/s | elapsed | requests | mean body |");
    println!("|---|---|---|---|---|");
    for (name, rate) in [
        ("bare HTTP POST loop (hyper, signed)", &baseline),
        ("server (`webhookDelivery`)", &server),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} s | {} | {} B |",
            rate.per_second(),
            rate.elapsed.as_secs_f64(),
            rate.requests,
            rate.mean_body
        );
    }
    println!(
        "\nserver / baseline: {:.2}",
        server.per_second() / baseline.per_second()
    );
    println!();
    println!(
        "### Delivery pipeline end to end ({MESSAGES} events in batches of {BATCH_SIZE}, SMTP sink)"
    );
    println!();
    println!(
        "| endpoints | messages/s to the sink | messages/s to `sent` | notifications/s (all received) |"
    );
    println!("|---|---|---|---|");
    for (with_endpoint, p) in &pipelines {
        println!(
            "| {} | {:.0} | {:.0} | {} |",
            if *with_endpoint {
                "one (every type)"
            } else {
                "none"
            },
            per_second(MESSAGES, p.to_sink),
            per_second(MESSAGES, p.to_sent),
            p.to_notified.map_or("—".to_owned(), |d| format!(
                "{:.0}",
                per_second(MESSAGES, d)
            ))
        );
    }
    let mean = |with: bool| {
        let runs: Vec<f64> = pipelines
            .iter()
            .filter(|(w, _)| *w == with)
            .map(|(_, p)| per_second(MESSAGES, p.to_sent))
            .collect();
        runs.iter().sum::<f64>() / runs.len() as f64
    };
    println!(
        "\nmean messages/s to `sent`: none {:.0}, one endpoint {:.0} (ratio {:.2})",
        mean(false),
        mean(true),
        mean(true) / mean(false)
    );
    let errors = sink.errors();
    if !errors.is_empty() {
        println!("\nSMTP sink session errors: {errors:?}");
    }
}
