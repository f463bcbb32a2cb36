//! The admin listener (`[server] admin_listen`, loopback by default): plugins, workflows, health and
//! metrics. Everything but the two probes needs `Authorization: Bearer <admin_token>`; with no token
//! configured, the admin API refuses every call rather than being open. Every route is declared once, in
//! [`router`]; the operator console (`crate::console`, its own sign-in) is merged in under `/console/`.

mod auth;

pub use auth::constant_time_eq;
mod health;
mod monitoring;
mod plugins;
#[cfg(test)]
mod tests;
mod workflows;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::Uri;
use axum::routing::{get, post};

use self::auth::AdminToken;
use crate::error::ApiError;
use crate::http::guard::Guard;
use crate::http::observe::Observe;
use crate::http::response::method_not_allowed;
use crate::metrics::Metrics;
use crate::plugins::PluginRegistry;
use crate::store::Store;
use crate::workflows::WorkflowSet;

/// The `listener` label and log name of this listener.
pub const LISTENER: &str = "admin";

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
    /// The monitoring indicators, refreshed in the background.
    pub monitor: Arc<crate::monitoring::Monitor>,
    /// The operator console, served under `/console/` with its own sign-in; `None` in tests of the
    /// admin API alone.
    pub console: Option<crate::console::ConsoleContext>,
}

/// The state of the admin routes.
type Admin = Arc<AdminContext>;

/// Every route of the admin listener.
///
/// The token is checked before anything else, unknown paths and wrong methods included, so a caller
/// without it learns nothing about the routes; the probes need none, so that orchestrators can call them.
pub fn router(mut context: AdminContext) -> Router {
    let token = AdminToken(context.admin_token.as_deref().map(Arc::from));
    let console = context.console.take();
    let ctx = Arc::new(context);
    let guarded = Router::new()
        .route("/metrics", get(health::metrics))
        .route("/admin/plugins", get(plugins::list))
        .route("/admin/plugins/reload", post(plugins::reload_all))
        .route("/admin/plugins/{name}/reload", post(plugins::reload_one))
        .route("/admin/monitoring", get(monitoring::snapshot))
        .route("/admin/workflows", get(workflows::list))
        .route("/admin/workflows/{name}/start", post(workflows::start))
        .route("/admin/workflows/{name}/stop", post(workflows::stop))
        .route("/admin/workflows/{name}/run", post(workflows::run_now))
        // Before the guard, so that the guard covers the 405 and the 404 too.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_admin_route)
        .layer(Guard(token));
    // The console checks its own sessions, not the bearer token, so it sits outside the guard.
    let console = console.map_or_else(Router::new, crate::console::router);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(console)
        .method_not_allowed_fallback(method_not_allowed)
        .merge(guarded)
        .layer(Observe::new(LISTENER, ctx.metrics.clone()))
        .with_state(ctx)
}

async fn no_admin_route(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no admin route for {}", uri.path()))
}
