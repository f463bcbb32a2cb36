//! The admin listener (`[server] admin_listen`, loopback by default): plugins, workflows, health and
//! metrics. Everything but the two probes needs `Authorization: Bearer <admin_token>`; with no token
//! configured, the admin API refuses every call rather than being open.

mod auth;

pub use auth::constant_time_eq;
mod health;
mod plugins;
mod workflows;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::error::ApiError;
use crate::http::{Handler, Routed};
use crate::metrics::Metrics;
use crate::plugins::PluginRegistry;
use crate::store::Store;
use crate::workflows::WorkflowSet;

/// What the admin routes work on.
pub struct AdminContext {
    pub registry: Arc<PluginRegistry>,
    pub workflows: Arc<WorkflowSet>,
    pub store: Store,
    pub metrics: Metrics,
    /// True once the database is reachable and migrated.
    pub db_ready: Arc<AtomicBool>,
    pub admin_token: Option<String>,
    /// A control instance's view of its execution instances' archives.
    pub archive: Option<Arc<crate::control::ArchiveMonitor>>,
}

pub struct AdminHandler {
    context: Arc<AdminContext>,
}

impl AdminHandler {
    pub fn new(context: Arc<AdminContext>) -> Self {
        AdminHandler { context }
    }
}

impl Handler for AdminHandler {
    const LISTENER: &'static str = "admin";

    async fn handle(&self, request: Request<Incoming>) -> Routed {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let ctx = &*self.context;

        // Probes: no token, so that orchestrators can call them.
        match (&method, segments.as_slice()) {
            (&Method::GET, ["healthz"]) => return routed("/healthz", Ok(health::healthz())),
            (&Method::GET, ["readyz"]) => return routed("/readyz", Ok(health::readyz(ctx).await)),
            _ => {}
        }
        let route = route_name(segments.as_slice());
        if let Err(e) = auth::check(ctx.admin_token.as_deref(), &request) {
            return routed(route, Err(e));
        }
        let result = match (&method, segments.as_slice()) {
            (&Method::GET, ["metrics"]) => Ok(health::metrics(ctx).await),
            (&Method::GET, ["admin", "plugins"]) => Ok(plugins::list(ctx)),
            (&Method::POST, ["admin", "plugins", "reload"]) => plugins::reload_all(ctx).await,
            (&Method::POST, ["admin", "plugins", name, "reload"]) => {
                plugins::reload_one(ctx, name).await
            }
            (&Method::GET, ["admin", "workflows"]) => Ok(workflows::list(ctx)),
            (&Method::POST, ["admin", "workflows", name, "start"]) => {
                workflows::set_enabled(ctx, name, true)
            }
            (&Method::POST, ["admin", "workflows", name, "stop"]) => {
                workflows::set_enabled(ctx, name, false)
            }
            (&Method::POST, ["admin", "workflows", name, "run"]) => workflows::run_now(ctx, name),
            _ if route != "unmatched" => Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                route: route.to_owned(),
            }),
            _ => Err(ApiError::NotFound(format!("no admin route for {path}"))),
        };
        routed(route, result)
    }
}

/// The route pattern for metrics labels.
fn route_name(segments: &[&str]) -> &'static str {
    match segments {
        ["metrics"] => "/metrics",
        ["admin", "plugins"] => "/admin/plugins",
        ["admin", "plugins", "reload"] => "/admin/plugins/reload",
        ["admin", "plugins", _, "reload"] => "/admin/plugins/{name}/reload",
        ["admin", "workflows"] => "/admin/workflows",
        ["admin", "workflows", _, "start"] => "/admin/workflows/{name}/start",
        ["admin", "workflows", _, "stop"] => "/admin/workflows/{name}/stop",
        ["admin", "workflows", _, "run"] => "/admin/workflows/{name}/run",
        _ => "unmatched",
    }
}

fn routed(
    route: &'static str,
    result: Result<crate::http::response::HttpResponse, ApiError>,
) -> Routed {
    Routed {
        route,
        response: result.unwrap_or_else(ApiError::into_response),
    }
}
