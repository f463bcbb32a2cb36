//! The public API listener (`[server] listen`): event ingestion and reads, statistics.
//! The contract is SPEC "HTTP API"; the details (codes, fields, limits) are in docs/api.md.

mod archive;
mod auth;
mod events;
mod publish;
pub(crate) mod query;
pub(crate) mod stats;
mod templates;
pub(crate) mod view;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use crate::config::Role;
use crate::control::ExecutionInstances;
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
    /// Which routes this instance serves (SPEC: the event API is the execution role's).
    pub role: Role,
    /// The execution instances a control instance publishes to; `None` when it has none.
    pub instances: Option<std::sync::Arc<ExecutionInstances>>,
    /// The Adobe Campaign SOAP endpoint (`[adobe]`).
    pub adobe: crate::soap::AdobeGateway,
}

impl ApiContext {
    /// Whether `GET /api/v1/archive/events` queries this instance's archive (a control instance) rather
    /// than serving its own feed (an execution instance). A single-box `both` instance is a control
    /// instance once it has `[[execution_instances]]` to archive.
    fn serves_archive(&self) -> bool {
        match self.role {
            Role::Control => true,
            Role::Both => self.instances.is_some(),
            Role::Execution => false,
        }
    }
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
        if let Err(e) = check_role(ctx, route) {
            return routed(route, Err(e));
        }
        let query_string = request.uri().query().map(str::to_owned);
        let query_string = query_string.as_deref();
        let result = match (&method, segments.as_slice()) {
            (&Method::POST, ["api", "v1", "events"]) => events::push_one(ctx, request).await,
            (&Method::POST, ["api", "v1", "events", "batch"]) => {
                events::push_batch(ctx, request).await
            }
            (&Method::GET, ["api", "v1", "events"]) => events::list(ctx, query_string).await,
            (&Method::GET, ["api", "v1", "events", id]) => events::get(ctx, id).await,
            (&Method::GET, ["api", "v1", "stats"]) => stats::get(ctx).await,
            (&Method::GET, ["api", "v1", "templates"]) => templates::list(ctx).await,
            (&Method::PUT, ["api", "v1", "templates", name]) => {
                templates::put(ctx, name, request).await
            }
            (&Method::GET, ["api", "v1", "templates", name]) => {
                templates::get(ctx, name, query_string).await
            }
            (&Method::DELETE, ["api", "v1", "templates", name]) => {
                templates::delete(ctx, name).await
            }
            (&Method::POST, ["api", "v1", "templates", name, "publish"]) => {
                publish::publish(ctx, name, request).await
            }
            (&Method::POST, ["api", "v1", "templates", name, "unpublish"]) => {
                publish::unpublish(ctx, name).await
            }
            (&Method::GET, ["api", "v1", "archive", "events"]) if ctx.serves_archive() => {
                archive::search(ctx, query_string).await
            }
            (&Method::GET, ["api", "v1", "archive", "events"]) => {
                archive::feed(ctx, query_string).await
            }
            (&Method::GET, ["api", "v1", "archive", "report"]) => {
                archive::report(ctx, query_string).await
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
        ["api", "v1", "templates", _, "publish"] => "/api/v1/templates/{name}/publish",
        ["api", "v1", "templates", _, "unpublish"] => "/api/v1/templates/{name}/unpublish",
        ["api", "v1", "archive", "events"] => "/api/v1/archive/events",
        ["api", "v1", "archive", "report"] => "/api/v1/archive/report",
        _ => "unmatched",
    }
}

/// Refuses the routes of the other role: the event API and the feed on a control-only instance, the
/// archive report on an execution-only one.
fn check_role(ctx: &ApiContext, route: &'static str) -> Result<(), ApiError> {
    let execution_only = matches!(
        route,
        "/api/v1/events" | "/api/v1/events/batch" | "/api/v1/events/{id}" | "/api/v1/stats"
    );
    if execution_only && !ctx.role.executes() {
        return Err(ApiError::NotFound(format!(
            "{route} is served by execution instances; this is a control instance (push events to an execution instance)"
        )));
    }
    if route == "/api/v1/archive/report" && !ctx.serves_archive() {
        return Err(ApiError::NotFound(format!(
            "{route} is served by control instances; this execution instance is archived by one"
        )));
    }
    Ok(())
}

fn routed(route: &'static str, result: Result<HttpResponse, ApiError>) -> Routed {
    Routed {
        route,
        response: result.unwrap_or_else(ApiError::into_response),
    }
}
