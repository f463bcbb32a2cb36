//! The public API listener (`[server] listen`): event ingestion and reads, statistics.
//! The contract is SPEC "HTTP API"; the details (codes, fields, limits) are in docs/api.md.

mod auth;
mod events;
pub(crate) mod query;
pub(crate) mod stats;
mod templates;
mod view;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use crate::error::ApiError;
use crate::http::response::{HttpResponse, json_response};
use crate::http::{Handler, Routed};
use crate::ingest::GroupCommit;
use crate::metrics::Metrics;
use crate::store::Store;

/// Request limits from `[server]`.
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    pub max_body_bytes: usize,
    pub max_batch_events: usize,
    pub max_ctx_bytes: usize,
}

/// What the public routes work on.
pub struct ApiContext {
    pub store: Store,
    pub ingest: GroupCommit,
    pub metrics: Metrics,
    /// Empty: the API needs no key.
    pub api_keys: Vec<String>,
    pub limits: ApiLimits,
    /// The Adobe Campaign SOAP endpoint (`[adobe]`).
    pub adobe: crate::soap::AdobeGateway,
}

pub struct ApiHandler {
    context: ApiContext,
}

impl ApiHandler {
    pub fn new(context: ApiContext) -> Self {
        ApiHandler { context }
    }
}

impl Handler for ApiHandler {
    const LISTENER: &'static str = "api";

    async fn handle(&self, request: Request<Incoming>) -> Routed {
        let ctx = &self.context;
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if let (&Method::GET, ["healthz"]) = (&method, segments.as_slice()) {
            return routed(
                "/healthz",
                Ok(json_response(StatusCode::OK, &json!({ "status": "ok" }))),
            );
        }
        // SOAP clients authenticate by session token, not API key, and are answered with SOAP faults.
        if let ["nl", "jsp", "soaprouter.jsp"] = segments.as_slice() {
            return Routed {
                route: crate::soap::ROUTE,
                response: crate::soap::handle(ctx, request).await,
            };
        }
        let route = route_name(segments.as_slice());
        if route == "unmatched" {
            return routed(
                route,
                Err(ApiError::NotFound(format!("no route for {path}"))),
            );
        }
        if let Err(e) = auth::check(&ctx.api_keys, &request) {
            return routed(route, Err(e));
        }
        let result = match (&method, segments.as_slice()) {
            (&Method::POST, ["api", "v1", "events"]) => events::push_one(ctx, request).await,
            (&Method::POST, ["api", "v1", "events", "batch"]) => {
                events::push_batch(ctx, request).await
            }
            (&Method::GET, ["api", "v1", "events"]) => {
                events::list(ctx, request.uri().query()).await
            }
            (&Method::GET, ["api", "v1", "events", id]) => events::get(ctx, id).await,
            (&Method::GET, ["api", "v1", "stats"]) => stats::get(ctx).await,
            (&Method::GET, ["api", "v1", "templates"]) => templates::list(ctx).await,
            (&Method::PUT, ["api", "v1", "templates", name]) => {
                templates::put(ctx, name, request).await
            }
            (&Method::GET, ["api", "v1", "templates", name]) => {
                templates::get(ctx, name, request.uri().query()).await
            }
            (&Method::DELETE, ["api", "v1", "templates", name]) => {
                templates::delete(ctx, name).await
            }
            _ => Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                route: route.to_owned(),
            }),
        };
        routed(route, result)
    }
}

fn route_name(segments: &[&str]) -> &'static str {
    match segments {
        ["api", "v1", "events"] => "/api/v1/events",
        ["api", "v1", "events", "batch"] => "/api/v1/events/batch",
        ["api", "v1", "events", _] => "/api/v1/events/{id}",
        ["api", "v1", "stats"] => "/api/v1/stats",
        ["api", "v1", "templates"] => "/api/v1/templates",
        ["api", "v1", "templates", _] => "/api/v1/templates/{name}",
        _ => "unmatched",
    }
}

fn routed(route: &'static str, result: Result<HttpResponse, ApiError>) -> Routed {
    Routed {
        route,
        response: result.unwrap_or_else(ApiError::into_response),
    }
}
