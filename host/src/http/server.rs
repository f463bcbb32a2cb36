//! The accept loop. Each connection is served by hyper on its own task and watched by a graceful-shutdown
//! tracker: on shutdown the listener stops accepting, idle connections close, and requests in flight finish
//! (bounded by the caller's drain timeout). The loop is ours, not `axum::serve`, so that each connection
//! stays under our control (its hyper builder: keep-alive, and the header and body timeouts to come); the
//! requests on it go to the listener's `Router`.

use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

use crate::shutdown::Shutdown;

/// Serves `router` on `listener` until shutdown, then waits up to `drain` for requests in flight.
/// `name` is the listener's name in logs (`api`, `admin`).
pub async fn serve(
    listener: TcpListener,
    name: &'static str,
    router: Router,
    mut shutdown: Shutdown,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
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
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // A router is always ready (`poll_ready` is a no-op), so each request calls a clone directly.
        let service = service_fn(move |request: Request<Incoming>| router.clone().call(request));
        let connection = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
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
