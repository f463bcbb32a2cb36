//! Per-connection limits that hyper does not keep by itself: how long a client may take to send a
//! request's headers once it has started one, and how long a keep-alive connection may sit idle between
//! requests. Without them a client that opens a connection and sends half a request line holds a file
//! descriptor and a task for ever, and a few thousand such clients take the listener down.
//!
//! hyper's own `header_read_timeout` is not used: it runs from the moment hyper waits for a request head,
//! idle keep-alive time included, so it cannot tell a slow client (10 s is plenty for headers) from an idle
//! keep-alive one (60 s is usual). Instead the connection's I/O is wrapped ([`WatchedIo`]) to note when the
//! first bytes of a request arrive, the service notes when a request's headers are complete and when its
//! answer is ready ([`Watch::busy`], [`Watch::idle`]), and [`Watch::expired`] tells the accept loop, which
//! sleeps until the next deadline, when to drop the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The timeouts of one listener's connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// From a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// Between the end of one answer and the first byte of the next request.
    pub idle_timeout: Duration,
}

const IDLE: u8 = 0;
const READING_HEAD: u8 = 1;
const BUSY: u8 = 2;

/// What a connection is doing and since when (milliseconds since it was accepted).
#[derive(Debug)]
pub struct Watch {
    started: Instant,
    state: AtomicU8,
    since_ms: AtomicU64,
}

/// Why a connection was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The client began a request and did not finish its headers in time.
    HeaderTimeout,
    /// The connection sat idle between requests for too long.
    IdleTimeout,
}

impl Watch {
    /// A freshly accepted connection: idle, waiting for its first request.
    pub fn new() -> Arc<Watch> {
        Arc::new(Watch {
            started: Instant::now(),
            state: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn set(&self, state: u8) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.state.store(state, Ordering::Relaxed);
    }

    /// The headers of a request are in: the handler runs (a body that does not come is the body read
    /// timeout's business, in `http::body`).
    pub fn busy(&self) {
        self.set(BUSY);
    }

    /// The answer is ready: from now the connection is idle until the next request's first byte.
    pub fn idle(&self) {
        self.set(IDLE);
    }

    /// Bytes arrived: on an idle connection, a new request has begun.
    fn bytes_read(&self) {
        if self.state.load(Ordering::Relaxed) == IDLE {
            self.set(READING_HEAD);
        }
    }

    /// When the current state's deadline falls, or `None` while a request is being handled.
    pub fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let since = self.started + Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        match self.state.load(Ordering::Relaxed) {
            IDLE => Some(since + limits.idle_timeout),
            READING_HEAD => Some(since + limits.header_read_timeout),
            _ => None,
        }
    }

    /// Whether the connection has outlived its current state's limit.
    pub fn expired(&self, limits: &ConnectionLimits) -> Option<Expiry> {
        let deadline = self.deadline(limits)?;
        if Instant::now() < deadline {
            return None;
        }
        match self.state.load(Ordering::Relaxed) {
            IDLE => Some(Expiry::IdleTimeout),
            _ => Some(Expiry::HeaderTimeout),
        }
    }
}

/// A connection's socket, noting on [`Watch`] when bytes arrive (hyper reads it through `TokioIo`).
pub struct WatchedIo<T> {
    inner: T,
    watch: Arc<Watch>,
}

impl<T> WatchedIo<T> {
    pub fn new(inner: T, watch: Arc<Watch>) -> Self {
        WatchedIo { inner, watch }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.bytes_read();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ConnectionLimits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(40),
        idle_timeout: Duration::from_millis(120),
    };

    #[test]
    fn an_idle_connection_expires_after_the_idle_timeout_and_a_started_request_after_the_header_timeout()
     {
        let watch = Watch::new();
        assert_eq!(watch.expired(&LIMITS), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(watch.expired(&LIMITS), None, "idle, within 120 ms");
        watch.bytes_read();
        assert_eq!(watch.expired(&LIMITS), None, "a request just began");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(watch.expired(&LIMITS), Some(Expiry::HeaderTimeout));

        watch.busy();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            watch.expired(&LIMITS),
            None,
            "a request being handled never expires here"
        );
        assert_eq!(watch.deadline(&LIMITS), None);
        watch.idle();
        watch.bytes_read();
        watch.busy();
        watch.idle();
        assert_eq!(watch.expired(&LIMITS), None, "idle again, from now");
        std::thread::sleep(Duration::from_millis(130));
        assert_eq!(watch.expired(&LIMITS), Some(Expiry::IdleTimeout));
    }

    #[test]
    fn bytes_while_busy_do_not_restart_the_header_clock() {
        let watch = Watch::new();
        watch.busy();
        watch.bytes_read();
        assert_eq!(watch.deadline(&LIMITS), None);
    }
}
