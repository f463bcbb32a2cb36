//! The accept loop. Each connection is served by hyper on its own task and watched by a graceful-shutdown
//! tracker: on shutdown the listener stops accepting, idle connections close, and requests in flight finish
//! (bounded by the caller's drain timeout).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument;

use super::response::HttpResponse;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// An answer with the route pattern it matched, for metrics labels (`/admin/plugins/{name}/reload`, never
/// the raw path, so the label set stays bounded).
pub struct Routed {
    pub route: &'static str,
    pub response: HttpResponse,
}

/// What a listener does with a request.
pub trait Handler: Send + Sync + 'static {
    /// Name of the listener, the `listener` label in metrics (`api`, `admin`).
    const LISTENER: &'static str;

    fn handle(&self, request: Request<Incoming>) -> impl Future<Output = Routed> + Send;
}

/// Serves `listener` until shutdown, then waits up to `drain` for requests in flight.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    metrics: Metrics,
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
                    tracing::warn!(listener = H::LISTENER, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = Arc::clone(&handler);
        let metrics = metrics.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let handler = Arc::clone(&handler);
            let metrics = metrics.clone();
            async move { Ok::<_, Infallible>(observe(&*handler, &metrics, request).await) }
        });
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
            listener = H::LISTENER,
            "connections still open after the drain timeout"
        );
    }
}

async fn observe<H: Handler>(
    handler: &H,
    metrics: &Metrics,
    request: Request<Incoming>,
) -> HttpResponse {
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http",
        listener = H::LISTENER,
        method = %method,
        path = %request.uri().path(),
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let routed = handler.handle(request).instrument(span.clone()).await;
    let status = routed.response.status().as_u16();
    span.record("status", status);
    metrics.record_http(
        H::LISTENER,
        routed.route,
        &method,
        status,
        started.elapsed(),
    );
    routed.response
}
