//! Slow and hostile clients (issue "Hardening", item 1): thousands of connections that send half a
//! request and then nothing, a body that never comes, idle keep-alive connections and a flood over the
//! connection cap. Each is refused or closed on its `[server]` limit, and a normal client is served
//! meanwhile. Raw sockets, so that the test controls every byte.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use message_center_tests::*;
use serde_json::{Value, json};

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

fn server(max_connections: usize) -> TestServer {
    TestServer::start(
        ServerOptions::new(PluginDir::new())
            .server_setting("header_read_timeout", "\"2s\"")
            .server_setting("body_read_timeout", "\"2s\"")
            .server_setting("idle_timeout", "\"5s\"")
            .server_setting("max_connections", &max_connections.to_string()),
    )
}

/// Reads one HTTP/1.1 answer (headers and a `content-length` body) from `stream`.
fn read_answer(stream: &mut TcpStream) -> (u16, Value) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("read an answer");
        assert!(
            n > 0,
            "closed before a whole answer: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("a status line");
                let body = &bytes[end + 4..end + 4 + length];
                let body = serde_json::from_slice(body).unwrap_or(Value::Null);
                return (status, body);
            }
        }
    }
}

/// Whether the server has closed `stream` (EOF or reset), waiting up to `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_half_sent_requests_neither_block_a_normal_client_nor_stay_open() {
    const PARTIAL: usize = 3000;
    raise_open_files_limit();
    let server = server(PARTIAL + 100);
    let addr = server.api_addr();
    let opened = Instant::now();
    let partial: Vec<TcpStream> = tokio::task::spawn_blocking(move || {
        (0..PARTIAL)
            .map(|_| {
                let mut stream = connect(addr);
                stream
                    .write_all(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n")
                    .expect("send half a request");
                stream
            })
            .collect()
    })
    .await
    .expect("open the partial connections");

    // A normal client is answered at once, partial connections or not.
    let started = Instant::now();
    let (status, body) = server
        .post_json(
            "/api/v1/events",
            &json!({ "type": "NORMAL", "email": "n@example.com" }),
            &[],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 201, "{}", pretty(&body));
    assert!(
        took < Duration::from_secs(1),
        "a normal push took {took:?} beside {PARTIAL} partial connections"
    );

    // Every partial connection is closed once its header timeout has passed, none before it.
    let (closed, first_closed_after) = tokio::task::spawn_blocking(move || {
        let mut partial = partial;
        let mut closed = 0;
        let mut first_closed_after = None;
        for stream in &mut partial {
            if closed_within(stream, HEADER_TIMEOUT * 4) {
                closed += 1;
                first_closed_after.get_or_insert_with(|| opened.elapsed());
            }
        }
        (closed, first_closed_after)
    })
    .await
    .expect("watch the partial connections");
    assert_eq!(closed, PARTIAL, "partial connections left open");
    let first = first_closed_after.expect("a closed connection");
    assert!(
        first >= HEADER_TIMEOUT - Duration::from_millis(200),
        "a partial connection was closed after {first:?}, before the header timeout of {HEADER_TIMEOUT:?}"
    );
    server.assert_healthy().await;
    let (status, _) = server.get_json("/api/v1/stats").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_body_that_never_comes_is_answered_408_naming_the_limit() {
    let server = server(100);
    let mut stream = connect(server.api_addr());
    stream
        .write_all(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"type\":",
        )
        .expect("send the headers and part of the body");
    stream
        .set_read_timeout(Some(BODY_TIMEOUT * 5))
        .expect("read timeout");
    let started = Instant::now();
    let (status, body) = read_answer(&mut stream);
    assert_eq!(status, 408, "{}", pretty(&body));
    assert_eq!(
        body["error"]["code"],
        "request_timeout",
        "{}",
        pretty(&body)
    );
    assert_error_field(&body, "message", |m| m.contains("server.body_read_timeout"));
    assert!(started.elapsed() >= BODY_TIMEOUT - Duration::from_millis(200));
    let (_, page) = server.get_json("/api/v1/events?limit=10").await;
    assert_eq!(
        page["events"].as_array().map(Vec::len),
        Some(0),
        "nothing was stored: {}",
        pretty(&page)
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lives_past_the_header_timeout_and_closes_at_the_idle_one() {
    let server = server(100);
    let mut stream = connect(server.api_addr());
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).expect("first request");
    assert_eq!(read_answer(&mut stream).0, 200);
    // Idle for longer than the header timeout: still usable.
    std::thread::sleep(HEADER_TIMEOUT + Duration::from_secs(1));
    stream.write_all(request).expect("second request");
    assert_eq!(
        read_answer(&mut stream).0,
        200,
        "the idle connection was closed at the header timeout"
    );
    // Then idle past the idle timeout: closed.
    let idle_since = Instant::now();
    assert!(
        closed_within(&mut stream, IDLE_TIMEOUT * 3),
        "an idle connection was left open"
    );
    assert!(idle_since.elapsed() >= IDLE_TIMEOUT - Duration::from_millis(200));
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_503_at_once_on_both_listeners() {
    const CAP: usize = 20;
    let server = server(CAP);
    for addr in [server.api_addr(), server.admin_addr()] {
        let held: Vec<TcpStream> = (0..CAP).map(|_| connect(addr)).collect();
        // Let the server accept them all before the one too many.
        std::thread::sleep(Duration::from_millis(300));
        let mut extra = connect(addr);
        extra
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let started = Instant::now();
        let (status, body) = read_answer(&mut extra);
        assert_eq!(status, 503, "{}", pretty(&body));
        assert_error_field(&body, "message", |m| m.contains("server.max_connections"));
        assert!(started.elapsed() < Duration::from_secs(1), "refused late");
        assert!(closed_within(&mut extra, Duration::from_secs(5)));
        drop(held);
    }
    // Once the held connections are gone, clients are served again.
    wait_for(secs(10), "a request after the flood", async || {
        let (status, _) = server.get_json("/api/v1/stats").await;
        (status == 200).then_some(())
    })
    .await;
}

/// The test process holds thousands of sockets too.
fn raise_open_files_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}
