//! A check that runs before a route's handler and answers in its place when it refuses (API keys, the
//! admin token). A tower layer rather than a handler argument, so that it also comes before the 405 of a
//! wrong method and the 404 of an admin path that does not exist: a caller without a key learns nothing
//! about the routes.
//!
//! Written as a service with its own future (no `axum::middleware::from_fn`), so a guarded request costs
//! the check and nothing more: no boxed future or cloned service of its own.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::ApiError;

/// What a guard checks on each request.
pub trait Check: Clone + Send + Sync + 'static {
    fn check(&self, request: &Request) -> Result<(), ApiError>;
}

/// The layer: `router.route_layer(Guard(check))` guards the routes declared so far.
#[derive(Clone)]
pub struct Guard<C>(pub C);

impl<C: Check, S> Layer<S> for Guard<C> {
    type Service = Guarded<C, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            check: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Guarded<C, S> {
    check: C,
    inner: S,
}

impl<C, S> Service<Request> for Guarded<C, S>
where
    C: Check,
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.check.check(&request) {
            Ok(()) => GuardFuture::Passed(self.inner.call(request)),
            Err(refusal) => GuardFuture::Refused(Some(IntoResponse::into_response(refusal))),
        }
    }
}

/// The route's answer, or the refusal.
pub enum GuardFuture<F> {
    Passed(F),
    Refused(Option<Response>),
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            GuardFuture::Passed(inner) => Pin::new(inner).poll(cx),
            GuardFuture::Refused(refusal) => Poll::Ready(Ok(refusal
                .take()
                .expect("a guard future is not polled after it completed"))),
        }
    }
}
