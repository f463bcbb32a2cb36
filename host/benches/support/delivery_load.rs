//! What the delivery and pipeline benches share: following the SMTP sink's records by event id, pushing
//! single events, and a pool of keep-alive connections for open-loop pushes. Included with `#[path]`,
//! next to `http.rs` and `smtp_sink.rs`.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::http::{Answer, Sender, call, open_connection};
use super::smtp_sink::Sink;

/// The benches' sender, and the template their events are linked to (event type `BENCH`, email).
pub const FROM: &str = "Bench <bench@example.com>";
pub const TEMPLATE: &str = r#"{"eventType":"BENCH","channel":"email","subject":"Order {{ ctx.order }}","text":"Hello {{ ctx.name }}, order {{ ctx.order }}","html":"<p>Hello {{ ctx.name }}</p>"}"#;
/// The names the benches' events carry in `ctx.name`, in turn.
pub const NAMES: [&str; 8] = [
    "Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Giulia", "Hugo",
];

/// `<mc.<event id>.<attempt>.<nonce>@domain>` (the server's Message-IDs) → the event id.
pub fn message_id_number(message_id: &str) -> Option<u64> {
    message_id
        .trim()
        .trim_start_matches('<')
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// Follows the sink's records from a point on: the first accept instant of every event id.
pub struct Deliveries {
    cursor: usize,
    pub first: HashMap<u64, Instant>,
    /// Messages of an id already received.
    pub duplicates: usize,
    /// Messages without a Message-ID of the expected shape.
    pub unmatched: usize,
    /// `Accepted::data_span` of every message received for the first time.
    pub data_spans: Vec<Duration>,
}

impl Deliveries {
    /// Ignores what the sink received before now.
    pub fn from_now(sink: &Sink) -> Self {
        Self {
            cursor: sink.accepted(),
            first: HashMap::new(),
            duplicates: 0,
            unmatched: 0,
            data_spans: Vec::new(),
        }
    }

    /// Reads the new records; returns the ids received for the first time.
    pub fn update(&mut self, sink: &Sink) -> Vec<u64> {
        let records = sink.state.accepted.lock().expect("sink records");
        let mut new = Vec::new();
        for record in &records[self.cursor..] {
            match record.message_id.as_deref().and_then(message_id_number) {
                Some(id) if self.first.contains_key(&id) => self.duplicates += 1,
                Some(id) => {
                    self.first.insert(id, record.at);
                    self.data_spans.push(record.data_span);
                    new.push(id);
                }
                None => self.unmatched += 1,
            }
        }
        self.cursor = records.len();
        new
    }

    /// Waits until every id of `expected` has been received, at most until `deadline`; on time, the
    /// instant the last of them was accepted, else how many are missing.
    pub fn wait_all(
        &mut self,
        sink: &Sink,
        expected: &[u64],
        deadline: Instant,
    ) -> Result<Instant, usize> {
        self.update(sink);
        let mut missing: HashSet<u64> = expected
            .iter()
            .copied()
            .filter(|id| !self.first.contains_key(id))
            .collect();
        while !missing.is_empty() {
            if Instant::now() >= deadline {
                return Err(missing.len());
            }
            std::thread::sleep(Duration::from_millis(2));
            for id in self.update(sink) {
                missing.remove(&id);
            }
        }
        Ok(expected
            .iter()
            .map(|id| self.first[id])
            .max()
            .expect("at least one message"))
    }
}

/// `POST /api/v1/events` → the new event's id; anything but 201 is an error.
pub async fn push_one(
    sender: &mut Sender,
    addr: SocketAddr,
    body: Bytes,
) -> Result<(u64, Answer), String> {
    let answer = call(sender, addr, Method::POST, "/api/v1/events", body).await?;
    let id = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| {
            v.get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse().ok())
        });
    match id {
        Some(id) if answer.status == StatusCode::CREATED => Ok((id, answer)),
        _ => Err(answer.describe("POST /api/v1/events")),
    }
}

/// `PUT /api/v1/templates/{name}` with `template` (JSON) on a new connection; anything but a 2xx is
/// an error naming the request.
pub async fn put_template(
    addr: SocketAddr,
    name: &str,
    template: &'static str,
) -> Result<(), String> {
    let what = format!("PUT /api/v1/templates/{name}");
    let mut sender = open_connection(addr).await?;
    let answer = call(
        &mut sender,
        addr,
        Method::PUT,
        &format!("/api/v1/templates/{name}"),
        Bytes::from_static(template.as_bytes()),
    )
    .await
    .map_err(|e| format!("{what}: {e}"))?;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(answer.describe(&what))
    }
}

/// Idle HTTP connections of an open-loop generator to one server; at most `max` exist at once.
pub struct ConnectionPool {
    addr: SocketAddr,
    idle: Mutex<Vec<Sender>>,
    permits: Semaphore,
    opened: AtomicUsize,
}

impl ConnectionPool {
    pub fn new(addr: SocketAddr, max: usize) -> Self {
        ConnectionPool {
            addr,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max),
            opened: AtomicUsize::new(0),
        }
    }

    /// Opens `n` connections now, so that the first pushes do not wait for a handshake.
    pub async fn preopen(&self, n: usize) -> Result<(), String> {
        for _ in 0..n {
            let sender = open_connection(self.addr).await?;
            self.opened.fetch_add(1, Ordering::Relaxed);
            self.idle.lock().expect("idle connections").push(sender);
        }
        Ok(())
    }

    /// Connections opened so far.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// `POST /api/v1/events` on an idle connection (or a new one).
    pub async fn push(&self, body: Bytes) -> Result<(u64, Answer), String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let idle = self.idle.lock().expect("idle connections").pop();
        let mut sender = match idle {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                open_connection(self.addr).await?
            }
        };
        let outcome = push_one(&mut sender, self.addr, body).await;
        self.idle.lock().expect("idle connections").push(sender);
        outcome
    }
}
