//! The operator console (SPEC "Console"): server-rendered pages under `/console/` on the admin listener.
//!
//! The admin bearer token does not apply here: the console has its own sign-in (`auth`: argon2id,
//! back-off), sessions in the database (`session`: an `HttpOnly`, `SameSite=Strict` cookie naming a row
//! of `console_sessions`, so a sign-in survives a restart and works on every instance sharing
//! PostgreSQL), a CSRF token per session checked on every POST, and roles (a viewer's POST is refused
//! with 403 before its form is read). `first_run` prints a one-time link when no user exists.
//!
//! Pages are minijinja templates embedded in the binary (`templates/`, auto-escaped since their names
//! end in `.html`), rendered from typed view structs; one small script (`assets/console.js`) refreshes
//! the monitoring figures, another (`assets/templates.js`) checks and previews the template editor's
//! draft as the operator types. Every answer carries a Content Security Policy without inline scripts or
//! styles and `frame-ancestors 'none'` (`response`). The pages read what the admin API reads — the
//! monitoring snapshot, the workflow set, the plugin registry, the store — without going over HTTP:
//! webhooks (endpoints, history, retry, replay, secret rotation) and the quarantine (search, release)
//! included. A control instance adds its execution instances and the reports over its archive
//! (`reports`: service level, processing time, history of events, each with a CSV export).

mod assets;
mod auth;
mod charts;
mod first_run;
mod pages;
mod reports;
mod response;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use auth::hash_password;
pub use first_run::announce_first_run;

use crate::config::ConsoleConfig;
use crate::control::ArchiveMonitor;
use crate::monitoring::Monitor;
use crate::plugins::PluginRegistry;
use crate::store::Store;
use crate::templates::{RenderLimits, TemplateCache};
use crate::workflows::WorkflowSet;

/// What the console's pages work on.
pub struct ConsoleContext {
    pub store: Store,
    pub monitor: Arc<Monitor>,
    pub workflows: Arc<WorkflowSet>,
    pub registry: Arc<PluginRegistry>,
    /// A control instance's view of its execution instances' archives.
    pub archive: Option<Arc<ArchiveMonitor>>,
    pub config: ConsoleConfig,
    /// Renders an event's message again for its page, with delivery's limits.
    pub templates: Arc<TemplateCache>,
    /// Template previews and proofs, as the API makes them.
    pub trials: crate::templates::trial::Trials,
    /// The execution instances a control instance publishes templates to.
    pub instances: Option<Arc<crate::control::ExecutionInstances>>,
    /// `server.max_ctx_bytes`: the largest seed `ctx`.
    pub max_ctx_bytes: usize,
    /// Whether this instance executes (has webhooks and a quarantine of its own).
    pub executes: bool,
    /// `[quarantine] expire_after`: older entries are not shown (they no longer count).
    pub quarantine_expiry: Option<std::time::Duration>,
}

/// The console's state: the context, the page templates and the sign-in back-off.
pub struct Console {
    ctx: ConsoleContext,
    pages: minijinja::Environment<'static>,
    backoff: auth::Backoff,
}

type ConsoleState = Arc<Console>;

impl ConsoleContext {
    /// The template cache the console renders messages with.
    pub fn template_cache(limits: RenderLimits) -> Arc<TemplateCache> {
        Arc::new(TemplateCache::with_limits(64, limits))
    }
}

/// Every route of the console, with full paths, to merge into the admin router (outside its bearer-token
/// guard).
pub fn router<S>(ctx: ConsoleContext) -> Router<S> {
    let state = Arc::new(Console {
        ctx,
        pages: pages::environment(),
        backoff: auth::Backoff::default(),
    });
    Router::new()
        .route("/console", get(pages::to_console))
        .route("/console/", get(pages::index))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route(
            "/console/first-run",
            get(first_run::page).post(first_run::create_user),
        )
        .route("/console/monitoring", get(pages::monitoring::page))
        .route(
            "/console/monitoring/live",
            get(pages::monitoring::live_fragment),
        )
        .route("/console/events", get(pages::events::search))
        .route("/console/events/{id}", get(pages::event::page))
        .route(
            "/console/events/{id}/message",
            get(pages::event::message_frame),
        )
        .route("/console/workflows", get(pages::workflows::page))
        .route(
            "/console/workflows/{name}/{action}",
            post(pages::workflows::change),
        )
        .route(
            "/console/plugins/reload",
            post(pages::workflows::reload_all),
        )
        .route(
            "/console/plugins/{name}/reload",
            post(pages::workflows::reload_one),
        )
        .route("/console/templates", get(pages::templates::list))
        .route(
            "/console/templates/{name}",
            get(pages::template_editor::page).post(pages::template_editor::save),
        )
        .route(
            "/console/templates/{name}/check",
            post(pages::template_tools::check),
        )
        .route(
            "/console/templates/{name}/preview",
            get(pages::template_tools::preview_stored).post(pages::template_tools::preview_draft),
        )
        .route(
            "/console/templates/{name}/proof",
            post(pages::template_tools::proof),
        )
        .route(
            "/console/templates/{name}/seeds",
            post(pages::template_tools::seeds),
        )
        .route(
            "/console/templates/{name}/publish",
            post(pages::template_tools::publish),
        )
        .route(
            "/console/templates/{name}/unpublish",
            post(pages::template_tools::unpublish),
        )
        .route(
            "/console/templates/{name}/diff",
            get(pages::template_diff::page),
        )
        .route("/console/webhooks", get(pages::webhooks::list))
        .route("/console/webhooks/{name}", get(pages::webhooks::endpoint))
        .route(
            "/console/webhooks/{name}/deliveries/{id}/retry",
            post(pages::webhook_actions::retry),
        )
        .route(
            "/console/webhooks/{name}/replay",
            post(pages::webhook_actions::replay),
        )
        .route(
            "/console/webhooks/{name}/rotate-secret",
            post(pages::webhook_actions::rotate_secret),
        )
        .route("/console/quarantine", get(pages::quarantine::page))
        .route(
            "/console/quarantine/release",
            post(pages::quarantine::release),
        )
        .route("/console/instances", get(pages::instances::page))
        .route("/console/reports", get(pages::reports::index))
        .route("/console/reports/{report}", get(pages::reports::page))
        .route("/console/reports/{report}/csv", get(pages::reports::export))
        .route("/console/assets/{file}", get(assets::serve))
        .with_state(state)
}
