//! The benchmarks' HTTP/1 client: keep-alive hyper connections with `TCP_NODELAY`, one request at a
//! time per connection, whole answers read. Included by each bench with `#[path]`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

pub type Sender = SendRequest<Full<Bytes>>;

/// Opens a connection to `addr`; its driver runs on the current tokio runtime.
pub async fn open_connection(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("set_nodelay: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/1 handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// An answer, and the instant its request was handed to the connection.
pub struct Answer {
    pub sent: Instant,
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    pub fn describe(&self, what: &str) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.chars().take(300).collect();
        format!("{what} answered {} {text}", self.status)
    }

    /// The body as JSON, or an error naming `what`.
    pub fn json(&self, what: &str) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("{what}: {e}"))
    }
}

/// Sends one request (a JSON body) and reads the whole answer.
pub async fn call(
    sender: &mut Sender,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Answer, String> {
    call_with_token(sender, addr, method, path, body, None).await
}

/// [`call`] with `Authorization: Bearer <token>` when `token` is given (the admin API).
pub async fn call_with_token(
    sender: &mut Sender,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
    token: Option<&str>,
) -> Result<Answer, String> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    sender
        .ready()
        .await
        .map_err(|e| format!("connection to {addr} closed: {e}"))?;
    let sent = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer to {method} {path}: {e}"))?
        .to_bytes();
    Ok(Answer { sent, status, body })
}

/// `POST /api/v1/events/batch` → the new events' ids, in order.
pub async fn push_batch(
    sender: &mut Sender,
    addr: SocketAddr,
    body: Bytes,
) -> Result<Vec<u64>, String> {
    let answer = call(sender, addr, Method::POST, "/api/v1/events/batch", body).await?;
    let ids: Option<Vec<u64>> = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| {
            v.get("ids")?
                .as_array()?
                .iter()
                .map(|id| id.as_str().and_then(|id| id.parse().ok()))
                .collect()
        });
    match ids {
        Some(ids) if answer.status == StatusCode::CREATED => Ok(ids),
        _ => Err(answer.describe("POST /api/v1/events/batch")),
    }
}

/// `GET /api/v1/stats` → `queues.<queue>.byStatus`.
pub async fn queue_statuses(
    sender: &mut Sender,
    addr: SocketAddr,
    queue: &str,
) -> Result<HashMap<String, u64>, String> {
    let answer = call(sender, addr, Method::GET, "/api/v1/stats", Bytes::new()).await?;
    let by_status = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| {
            v.get("queues")?
                .get(queue)?
                .get("byStatus")?
                .as_object()
                .map(|statuses| {
                    statuses
                        .iter()
                        .map(|(status, n)| (status.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
        });
    match by_status {
        Some(by_status) if answer.status == StatusCode::OK => Ok(by_status),
        _ => Err(answer.describe("GET /api/v1/stats")),
    }
}
