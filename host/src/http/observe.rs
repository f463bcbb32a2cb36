//! Request observation: a tracing span per request and `mc_http_requests_total` /
//! `mc_http_request_duration_seconds`, labelled by listener, route, method and status.
//!
//! The route label is the pattern the router matched (`MatchedPath`: `/admin/plugins/{name}/reload`,
//! never the raw path, so the label set stays bounded); a request no route matched is `unmatched`. The
//! layer is applied inside the router (`Router::layer`), the only place the matched pattern is known.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use hyper::Method;
use tower::{Layer, Service};
use tracing::Span;

use crate::metrics::Metrics;

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The layer: `router.layer(Observe::new("api", metrics))`, after every route and the fallback.
#[derive(Clone)]
pub struct Observe {
    listener: &'static str,
    metrics: Metrics,
}

impl Observe {
    /// `listener` is the `listener` label (`api`, `admin`).
    pub fn new(listener: &'static str, metrics: Metrics) -> Self {
        Observe { listener, metrics }
    }
}

impl<S> Layer<S> for Observe {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed {
            observe: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Observed<S> {
    observe: Observe,
    inner: S,
}

impl<S> Service<Request> for Observed<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = request.method().clone();
        let span = tracing::info_span!(
            "http",
            listener = self.observe.listener,
            method = %method,
            path = %request.uri().path(),
            status = tracing::field::Empty,
        );
        let route = route_label(request.extensions().get::<MatchedPath>());
        let started = Instant::now();
        let inner = span.in_scope(|| self.inner.call(request));
        ObservedFuture {
            inner,
            span,
            started,
            listener: self.observe.listener,
            route,
            method,
            metrics: self.observe.metrics.clone(),
        }
    }
}

/// The route's answer, recorded when it is ready.
pub struct ObservedFuture<F> {
    inner: F,
    span: Span,
    started: Instant,
    listener: &'static str,
    route: &'static str,
    method: Method,
    metrics: Metrics,
}

impl<F> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        let Poll::Ready(Ok(response)) = Pin::new(&mut this.inner).poll(cx) else {
            return Poll::Pending;
        };
        let status = response.status().as_u16();
        this.span.record("status", status);
        this.metrics.record_http(
            this.listener,
            this.route,
            &this.method,
            status,
            this.started.elapsed(),
        );
        Poll::Ready(Ok(response))
    }
}

/// Route patterns seen so far, as `'static` label values. The set is bounded: it only ever holds the
/// patterns the listeners declare.
static ROUTES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);

/// The label of a request: its matched pattern, or [`UNMATCHED`]. A pattern is copied once, the first
/// time a request matches it; afterwards this is a read-locked set lookup.
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    let Some(matched) = matched else {
        return UNMATCHED;
    };
    let pattern = matched.as_str();
    if let Some(label) = ROUTES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return label;
    }
    let mut routes = ROUTES.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(label) = routes.get(pattern) {
        return label;
    }
    let label: &'static str = Box::leak(pattern.to_owned().into_boxed_str());
    routes.insert(label);
    label
}
