//! The benchmarks' SMTP sink: a real, minimal SMTP server on a 2-thread runtime of its own that accepts
//! every message and records when it finished reading its DATA and its `Message-ID`. Included by the
//! delivery and webhook benches with `#[path]`, next to `common.rs`.
//!
//! It advertises what Postfix does by default and our pool uses: `PIPELINING` and `CHUNKING` (`BDAT`,
//! RFC 3030), so the benches measure the path a message takes to such a relay.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{
    AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader, BufWriter,
};
use tokio::net::TcpStream;

use super::common::LoopbackService;

/// One message the sink accepted.
pub struct Accepted {
    /// When the end of its DATA (`\r\n.\r\n`) or of its last `BDAT` chunk was read.
    pub at: Instant,
    /// From reading its first DATA line to reading the terminating `.` line (or its chunks).
    pub data_span: Duration,
    pub message_id: Option<String>,
}

#[derive(Default)]
pub struct SinkState {
    pub accepted: Mutex<Vec<Accepted>>,
    pub connections: AtomicUsize,
    /// Sessions that ended with an I/O error or a protocol violation.
    pub errors: Mutex<Vec<String>>,
}

/// A minimal SMTP server on its own 2-thread runtime: accepts every message, on any number of
/// connections, many messages per connection.
pub struct Sink {
    pub service: LoopbackService,
    pub state: Arc<SinkState>,
}

impl Sink {
    pub fn start() -> Self {
        let state = Arc::new(SinkState::default());
        let shared = Arc::clone(&state);
        let service = LoopbackService::start("smtp-sink", |listener| async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(e) = smtp_session(stream, &state).await {
                        state
                            .errors
                            .lock()
                            .expect("sink errors")
                            .push(format!("session with {peer}: {e}"));
                    }
                });
            }
        });
        Self { service, state }
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    pub fn accepted(&self) -> usize {
        self.state.accepted.lock().expect("sink records").len()
    }

    pub fn errors(&self) -> Vec<String> {
        self.state.errors.lock().expect("sink errors").clone()
    }
}

/// The verb of a command line, upper-cased.
fn verb(line: &[u8]) -> String {
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    String::from_utf8_lossy(&line[..end]).to_ascii_uppercase()
}

/// One SMTP session. Replies are flushed when the client has nothing more buffered, so pipelined
/// commands are answered in one write.
async fn smtp_session(stream: TcpStream, state: &SinkState) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = AsyncBufReader::with_capacity(64 * 1024, read);
    let mut writer = BufWriter::new(write);
    writer
        .write_all(b"220 sink.localhost ESMTP bench\r\n")
        .await?;
    writer.flush().await?;
    let mut line = Vec::with_capacity(1024);
    // The message's `BDAT` chunks so far.
    let mut chunks = Vec::new();
    let (mut in_mail, mut recipients) = (false, 0usize);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            // The client closed the connection (lettre may drop idle pooled connections).
            return Ok(());
        }
        let reply: &[u8] = match verb(&line).as_str() {
            "EHLO" => {
                (in_mail, recipients) = (false, 0);
                b"250-sink.localhost\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n"
            }
            "HELO" => {
                (in_mail, recipients) = (false, 0);
                b"250 sink.localhost\r\n"
            }
            "MAIL" if in_mail => b"503 5.5.1 nested MAIL command\r\n",
            "MAIL" => {
                in_mail = true;
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if !in_mail => b"503 5.5.1 MAIL first\r\n",
            "RCPT" => {
                recipients += 1;
                b"250 2.1.5 OK\r\n"
            }
            "DATA" if recipients == 0 => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                writer
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                writer.flush().await?;
                let (data_span, message_id) = read_data(&mut reader, &mut line).await?;
                let at = Instant::now();
                state.accepted.lock().expect("sink records").push(Accepted {
                    at,
                    data_span,
                    message_id,
                });
                (in_mail, recipients) = (false, 0);
                b"250 2.0.0 OK queued\r\n"
            }
            "BDAT" if recipients == 0 => b"503 5.5.1 RCPT first\r\n",
            "BDAT" => {
                let Some((size, last)) = bdat_arguments(&line) else {
                    return Err(std::io::Error::other(format!(
                        "a BDAT without a size: {:?}",
                        String::from_utf8_lossy(&line)
                    )));
                };
                let started = Instant::now();
                let start = chunks.len();
                chunks.resize(start + size, 0);
                reader.read_exact(&mut chunks[start..]).await?;
                if last {
                    let message_id = message_id(&chunks);
                    chunks.clear();
                    state.accepted.lock().expect("sink records").push(Accepted {
                        at: Instant::now(),
                        data_span: started.elapsed(),
                        message_id,
                    });
                    (in_mail, recipients) = (false, 0);
                    b"250 2.0.0 OK queued\r\n"
                } else {
                    b"250 2.0.0 chunk received\r\n"
                }
            }
            "RSET" => {
                (in_mail, recipients) = (false, 0);
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 2.0.0 bye\r\n").await?;
                writer.flush().await?;
                return Ok(());
            }
            _ => b"500 5.5.2 command not recognized\r\n",
        };
        writer.write_all(reply).await?;
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
}

/// `BDAT <size> [LAST]`: the chunk's size and whether it is the last.
fn bdat_arguments(line: &[u8]) -> Option<(usize, bool)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_ascii_whitespace().skip(1);
    let size = words.next()?.parse().ok()?;
    let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
    Some((size, last))
}

/// The `Message-ID` header (unfolded) of a whole message.
fn message_id(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let headers = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut unfolded = String::new();
    let mut found = None;
    for line in headers.split("\r\n").chain([""]) {
        if line.starts_with([' ', '\t']) {
            unfolded.push_str(line);
            continue;
        }
        if let Some((name, value)) = unfolded.split_once(':')
            && name.trim().eq_ignore_ascii_case("message-id")
        {
            found = Some(value.trim().to_owned());
        }
        unfolded = line.to_owned();
    }
    found
}

/// Reads a message up to its terminating `.` line; returns how long after its first line the
/// terminator came, and its `Message-ID` header (unfolded).
async fn read_data(
    reader: &mut AsyncBufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<(Duration, Option<String>)> {
    // The header lines, read until the blank line that ends them.
    let (mut in_headers, mut headers) = (true, Vec::new());
    let mut first_line_read = None;
    loop {
        line.clear();
        if reader.read_until(b'\n', line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        let first_line_read = *first_line_read.get_or_insert_with(Instant::now);
        if line.as_slice() == b".\r\n" || line.as_slice() == b".\n" {
            return Ok((first_line_read.elapsed(), message_id(&headers)));
        }
        if in_headers {
            in_headers = !matches!(line.as_slice(), b"\r\n" | b"\n");
            headers.extend_from_slice(line);
        }
    }
}
