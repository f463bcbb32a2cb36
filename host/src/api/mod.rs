//! The public API listener (`[server] listen`): event ingestion and reads, statistics, templates, the
//! archive, and the Adobe Campaign SOAP endpoint. The contract is SPEC "HTTP API"; the details (codes,
//! fields, limits) are in docs/api.md. Every route is declared once, in [`router`], with the role that
//! serves it.

mod archive;
mod auth;
mod bounces;
mod events;
mod publish;
mod quarantine;
pub(crate) mod query;
pub(crate) mod stats;
mod template_trials;
pub(crate) mod templates;
#[cfg(test)]
pub(crate) mod tests;
pub(crate) mod view;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::Uri;
use axum::routing::{MethodRouter, any, get, post, put};
use hyper::StatusCode;
use serde_json::json;

use crate::config::Role;
use crate::control::ExecutionInstances;
use crate::error::ApiError;
use crate::http::guard::Guard;
use crate::http::observe::Observe;
use crate::http::response::{HttpResponse, json_response, method_not_allowed};
use crate::ingest::GroupCommit;
use crate::metrics::Metrics;
use crate::store::Store;

/// The `listener` label and log name of this listener.
pub const LISTENER: &str = "api";

/// Request limits from `[server]`.
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    pub max_body_bytes: usize,
    pub max_batch_events: usize,
    pub max_ctx_bytes: usize,
    /// How long a body may take to arrive (`server.body_read_timeout`).
    pub body_read_timeout: std::time::Duration,
    /// What the check of `PUT /api/v1/templates/{name}` renders under (`[templates]`).
    pub render: crate::templates::RenderLimits,
}

impl ApiLimits {
    /// What a handler reads of a request body.
    pub fn body(&self) -> crate::http::body::BodyLimits {
        crate::http::body::BodyLimits {
            max_bytes: self.max_body_bytes,
            read_timeout: self.body_read_timeout,
        }
    }
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
    /// Bounces reported over HTTP (`POST /api/v1/bounces`).
    pub bounces: crate::bounces::Bounces,
    /// `[quarantine] expire_after`.
    pub quarantine_expiry: Option<std::time::Duration>,
    /// Template previews and proofs (`templates::trial`).
    pub trials: crate::templates::trial::Trials,
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

/// The state of the API routes.
type Api = Arc<ApiContext>;

/// Every route of the API listener.
///
/// The `/api/v1` routes need an API key when keys are configured; the key is checked first, then the
/// role (a route of the other role answers 404 saying which instances serve it, whatever the method),
/// then the method. `/healthz` and the SOAP endpoint (which authenticates by session token and answers
/// with SOAP faults, method errors included) need no key.
pub fn router(context: ApiContext) -> Router {
    let ctx = Arc::new(context);
    let executes = ctx.role.executes();
    let archive = ctx.serves_archive();
    let execution = |routes: MethodRouter<Api>| {
        if executes {
            routes
        } else {
            any(served_by_execution_instances)
        }
    };
    let control = |routes: MethodRouter<Api>| {
        if archive {
            routes
        } else {
            any(served_by_control_instances)
        }
    };
    // Webhooks are an execution instance's; a control instance with execution instances sends the calls
    // on to them (webhooks.rs), one without any has none to serve.
    let fans_out = ctx.instances.is_some();
    let webhook_role = |routes: MethodRouter<Api>| {
        if executes || fans_out {
            routes
        } else {
            any(served_by_execution_instances)
        }
    };
    let archive_events = if archive {
        get(archive::search)
    } else {
        get(archive::feed)
    };
    let mut v1 = Router::new()
        .route(
            "/api/v1/events",
            execution(post(events::push_one).get(events::list)),
        )
        .route("/api/v1/events/batch", execution(post(events::push_batch)))
        .route("/api/v1/events/{id}", execution(get(events::get)))
        .route("/api/v1/stats", execution(get(stats::get)))
        .route("/api/v1/bounces", execution(post(bounces::report)))
        .route("/api/v1/quarantine", execution(get(quarantine::list)))
        .route(
            "/api/v1/quarantine/{address}",
            execution(put(quarantine::put).delete(quarantine::release)),
        )
        .route("/api/v1/templates", get(templates::list))
        .route(
            "/api/v1/templates/{name}",
            put(templates::put)
                .get(templates::get)
                .delete(templates::delete),
        )
        .route("/api/v1/templates/{name}/publish", post(publish::publish))
        .route(
            "/api/v1/templates/{name}/unpublish",
            post(publish::unpublish),
        )
        // Seeds, previews and proofs (template_trials.rs).
        .route(
            "/api/v1/templates/{name}/seeds",
            get(template_trials::get_seeds).put(template_trials::put_seeds),
        )
        .route(
            "/api/v1/templates/{name}/preview",
            post(template_trials::preview),
        )
        .route(
            "/api/v1/templates/{name}/proof",
            post(template_trials::proof),
        )
        .route(
            "/api/v1/templates/{name}/proofs",
            get(template_trials::proofs),
        )
        // Webhooks: served by execution instances, sent on to them by a control instance (webhooks.rs).
        .route("/api/v1/webhooks", webhook_role(get(webhooks::list)))
        .route(
            "/api/v1/webhooks/{name}",
            webhook_role(
                put(webhooks::put)
                    .get(webhooks::get)
                    .delete(webhooks::delete),
            ),
        )
        .route(
            "/api/v1/webhooks/{name}/deliveries",
            webhook_role(get(webhooks::deliveries)),
        )
        .route(
            "/api/v1/webhooks/{name}/deliveries/{id}/retry",
            webhook_role(post(webhooks::retry)),
        )
        .route(
            "/api/v1/webhooks/{name}/replay",
            webhook_role(post(webhooks::replay)),
        )
        .route(
            "/api/v1/webhooks/{name}/rotate-secret",
            webhook_role(post(webhooks::rotate_secret)),
        )
        .route("/api/v1/archive/events", archive_events)
        .route("/api/v1/archive/report", control(get(archive::report)))
        // Before the guard, so that the guard covers the 405 too.
        .method_not_allowed_fallback(method_not_allowed);
    if !ctx.api_keys.is_empty() {
        v1 = v1.route_layer(Guard(auth::ApiKeys(ctx.api_keys.as_slice().into())));
    }
    Router::new()
        .route("/healthz", get(healthz))
        .route(crate::soap::ROUTE, any(crate::soap::handle))
        .method_not_allowed_fallback(method_not_allowed)
        .merge(v1)
        .fallback(no_route)
        .layer(Observe::new(LISTENER, ctx.metrics.clone()))
        .with_state(ctx)
}

async fn healthz() -> HttpResponse {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn served_by_execution_instances(route: MatchedPath) -> ApiError {
    ApiError::NotFound(format!(
        "{} is served by execution instances; this is a control instance (push events to an execution instance)",
        route.as_str()
    ))
}

async fn served_by_control_instances(route: MatchedPath) -> ApiError {
    ApiError::NotFound(format!(
        "{} is served by control instances; this execution instance is archived by one",
        route.as_str()
    ))
}
