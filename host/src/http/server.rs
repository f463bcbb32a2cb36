//! The accept loop. Each connection is served by hyper on its own task and watched by a graceful-shutdown
//! tracker: on shutdown the listener stops accepting, idle connections close, and requests in flight finish
//! (bounded by the caller's drain timeout). The loop is ours, not `axum::serve`, so that each connection
//! stays under our control: at most `max_connections` at once (one more is answered 503 and closed at
//! once, so that a flood of idle sockets cannot exhaust the process's file descriptors), each dropped
//! when its client is too slow to send a request's headers or sits idle too long between requests
//! ([`super::connection`]); the requests on it go to the listener's `Router`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::Service;

use super::connection::{ConnectionLimits, Watch, WatchedIo};
use crate::shutdown::Shutdown;

/// What one listener allows its clients.
#[derive(Clone, Copy, Debug)]
pub struct ListenerLimits {
    pub connection: ConnectionLimits,
    /// Connections served at once; one more is refused at once.
    pub max_connections: usize,
}

/// The body of the answer to a connection over `max_connections`.
const TOO_MANY_CONNECTIONS: &str = r#"{"error":{"code":"unavailable","message":"too many connections to this listener (server.max_connections); retry later"}}"#;

/// Serves `router` on `listener` until shutdown, then waits up to `drain` for requests in flight.
/// `name` is the listener's name in logs (`api`, `admin`).
pub async fn serve(
    listener: TcpListener,
    name: &'static str,
    router: Router,
    limits: ListenerLimits,
    mut shutdown: Shutdown,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(listener = name, %peer, "connection refused: server.max_connections reached");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let watch = Watch::new();
        let on_request = Arc::clone(&watch);
        // A router is always ready (`poll_ready` is a no-op), so each request calls a clone directly.
        let service = service_fn(move |mut request: Request<Incoming>| {
            on_request.busy();
            // The peer, for handlers that key on it (the console's sign-in back-off).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let answer = router.clone().call(request);
            let on_answer = Arc::clone(&on_request);
            async move {
                let response = answer.await;
                on_answer.idle();
                response
            }
        });
        let io = TokioIo::new(WatchedIo::new(stream, Arc::clone(&watch)));
        let connection = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        let connection_limits = limits.connection;
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            // While a request is handled there is no deadline; look again this often.
            let recheck = connection_limits
                .header_read_timeout
                .min(connection_limits.idle_timeout);
            loop {
                let wake = watch
                    .deadline(&connection_limits)
                    .unwrap_or_else(|| std::time::Instant::now() + recheck);
                tokio::select! {
                    ended = &mut connection => {
                        if let Err(e) = ended {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    _ = tokio::time::sleep_until(wake.into()) => {
                        if let Some(expiry) = watch.expired(&connection_limits) {
                            tracing::debug!(%peer, ?expiry, "connection closed");
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after the drain timeout"
        );
    }
}

/// Answers a connection over the limit with 503 and closes it, giving a slow reader one second.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             connection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{TOO_MANY_CONNECTIONS}",
            TOO_MANY_CONNECTIONS.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
