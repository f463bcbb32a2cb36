//! `/console/workflows`: each workflow (state, generation, runs, errors, last run, last error) and each
//! plugin file (version, generation, state, error); operators start, stop and run workflows now and
//! reload plugins, and see the outcome of each file.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use super::super::response::{refuse, see_other};
use super::super::session::Signed;
use super::super::view::{Frame, render, time, time_or_dash};
use super::super::{Console, ConsoleState};
use crate::plugins::{PluginView, ReloadOutcome, ReloadResult};
use crate::workflows::WorkflowView;

#[derive(Serialize)]
struct WorkflowRow {
    name: String,
    plugin: String,
    state: &'static str,
    enabled: bool,
    generation: String,
    runs: u64,
    errors: u64,
    processed: u64,
    interval: String,
    last_run: String,
    last_error: String,
    last_error_at: String,
}

impl From<WorkflowView> for WorkflowRow {
    fn from(w: WorkflowView) -> Self {
        let last_run = w.last_run.as_ref().map_or_else(
            || "—".to_owned(),
            |run| {
                let mut text = format!(
                    "#{} at {}, {} in {} ms (generation {})",
                    run.number,
                    time(run.started_at),
                    run.outcome,
                    run.duration_ms,
                    run.generation
                );
                if let Some(report) = &run.report {
                    text.push_str(&format!(", {} processed", report.processed));
                }
                text
            },
        );
        WorkflowRow {
            state: w.state.as_str(),
            enabled: w.enabled,
            generation: w
                .generation
                .map_or_else(|| "—".to_owned(), |g| g.to_string()),
            runs: w.runs,
            errors: w.errors,
            processed: w.processed,
            interval: crate::config::format_duration(std::time::Duration::from_millis(
                w.interval_ms,
            )),
            last_run,
            last_error: w.last_error.unwrap_or_default(),
            last_error_at: time_or_dash(w.last_error_at),
            name: w.name,
            plugin: w.plugin,
        }
    }
}

#[derive(Serialize)]
struct PluginRow {
    name: String,
    file: String,
    version: String,
    generation: String,
    loaded_at: String,
    state: &'static str,
    error: String,
    workflows: String,
}

impl From<PluginView> for PluginRow {
    fn from(p: PluginView) -> Self {
        let mut error = p.error.unwrap_or_default();
        for (workflow, why) in &p.workflow_errors {
            error.push_str(&format!(" {workflow}: {why}"));
        }
        PluginRow {
            name: p.name.unwrap_or_default(),
            file: p
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            version: p.version.unwrap_or_else(|| "—".to_owned()),
            generation: p
                .generation
                .map_or_else(|| "—".to_owned(), |g| g.to_string()),
            loaded_at: time_or_dash(p.loaded_at),
            state: p.state,
            error: error.trim().to_owned(),
            workflows: p.workflows.join(", "),
        }
    }
}

/// The outcome of one file in a reload.
#[derive(Serialize)]
struct OutcomeRow {
    file: String,
    name: String,
    outcome: &'static str,
    generation: String,
    previous_generation: String,
    error: String,
}

impl From<ReloadResult> for OutcomeRow {
    fn from(r: ReloadResult) -> Self {
        let generation = |g: Option<u64>| g.map_or_else(|| "—".to_owned(), |g| g.to_string());
        OutcomeRow {
            file: r
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            name: r.name.unwrap_or_default(),
            outcome: r.outcome.as_str(),
            generation: generation(r.generation),
            previous_generation: generation(r.previous_generation),
            error: r.error.unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct View {
    workflows: Vec<WorkflowRow>,
    plugins: Vec<PluginRow>,
    notice: Option<String>,
    outcomes: Vec<OutcomeRow>,
}

fn answer(
    console: &Console,
    user: &Signed,
    status: StatusCode,
    notice: Option<String>,
    outcomes: Vec<OutcomeRow>,
) -> Response {
    render(
        &console.pages,
        status,
        "workflows.html",
        Some(Frame::new(user, console.ctx.archive.is_some(), "workflows")),
        &View {
            workflows: console
                .ctx
                .workflows
                .list()
                .into_iter()
                .map(WorkflowRow::from)
                .collect(),
            plugins: console
                .ctx
                .registry
                .list()
                .into_iter()
                .map(PluginRow::from)
                .collect(),
            notice,
            outcomes,
        },
    )
}

/// `GET /console/workflows[?changed=<name>&action=<action>]`.
pub async fn page(
    State(console): State<ConsoleState>,
    user: Signed,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = crate::urls::query_pairs(query.as_deref().unwrap_or(""));
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let notice = match (
        get("changed"),
        get("action").as_deref().and_then(Action::from_name),
    ) {
        (Some(name), Some(action)) => Some(format!("Workflow {name}: {}.", action.done())),
        _ => None,
    };
    answer(&console, &user, StatusCode::OK, notice, Vec::new())
}

/// What an operator does to a workflow.
#[derive(Clone, Copy)]
enum Action {
    Start,
    Stop,
    Run,
}

impl Action {
    fn from_name(name: &str) -> Option<Action> {
        match name {
            "start" => Some(Action::Start),
            "stop" => Some(Action::Stop),
            "run" => Some(Action::Run),
            _ => None,
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Run => "run",
        }
    }

    const fn done(self) -> &'static str {
        match self {
            Action::Start => "started",
            Action::Stop => "stopped",
            Action::Run => "woken to run now",
        }
    }
}

/// `POST /console/workflows/{name}/{start|stop|run}` (operators, CSRF-checked).
pub async fn change(
    State(console): State<ConsoleState>,
    user: Signed,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(refusal) = user.change_form(&body) {
        return refusal.into_response();
    }
    let Some(action) = Action::from_name(&action) else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("action: `{action}` is not start, stop or run"),
        );
    };
    let Some(runner) = console.ctx.workflows.get(&name) else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("no workflow named `{name}` is configured"),
        );
    };
    match action {
        Action::Start => runner.set_enabled(true),
        Action::Stop => runner.set_enabled(false),
        Action::Run => {
            if !runner.is_enabled() {
                return answer(
                    &console,
                    &user,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(format!("Workflow {name} is stopped; start it first.")),
                    Vec::new(),
                );
            }
            runner.wake();
        }
    }
    tracing::info!(workflow = %name, action = action.as_str(), login = %user.login, "console: workflow {}", action.done());
    see_other(
        &format!(
            "/console/workflows?{}",
            crate::urls::encode_query(&[
                ("changed".to_owned(), name),
                ("action".to_owned(), action.as_str().to_owned()),
            ])
        ),
        None,
    )
}

/// Reloading reads files and runs `dlopen`: off the async workers.
async fn reload(
    console: &Console,
    work: impl FnOnce(&crate::plugins::PluginRegistry) -> Vec<ReloadResult> + Send + 'static,
) -> Result<Vec<ReloadResult>, Response> {
    let registry = Arc::clone(&console.ctx.registry);
    tokio::task::spawn_blocking(move || work(&registry))
        .await
        .map_err(|e| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reload task failed: {e}"),
            )
        })
}

/// `POST /console/plugins/reload`: rescans the plugin directory; the page lists each file's outcome.
pub async fn reload_all(
    State(console): State<ConsoleState>,
    user: Signed,
    body: Bytes,
) -> Response {
    if let Err(refusal) = user.change_form(&body) {
        return refusal.into_response();
    }
    match reload(&console, |registry| registry.reload_all()).await {
        Ok(results) => {
            tracing::info!(login = %user.login, files = results.len(), "console: plugins reloaded");
            answer(
                &console,
                &user,
                StatusCode::OK,
                Some("Plugin directory rescanned.".to_owned()),
                results.into_iter().map(OutcomeRow::from).collect(),
            )
        }
        Err(refusal) => refusal,
    }
}

/// `POST /console/plugins/{name}/reload`.
pub async fn reload_one(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(refusal) = user.change_form(&body) {
        return refusal.into_response();
    }
    let plugin = name.clone();
    let results = match reload(&console, move |registry| {
        registry.reload_plugin(&plugin).into_iter().collect()
    })
    .await
    {
        Ok(results) => results,
        Err(refusal) => return refusal,
    };
    let (status, notice) = match results.first() {
        None => (
            StatusCode::NOT_FOUND,
            format!("No plugin named {name} has been loaded."),
        ),
        Some(r) if r.outcome == ReloadOutcome::Refused => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Plugin {name}: reload refused; the previous generation keeps running."),
        ),
        Some(r) => (
            StatusCode::OK,
            format!("Plugin {name}: {}.", r.outcome.as_str()),
        ),
    };
    tracing::info!(plugin = %name, login = %user.login, "console: plugin reload");
    answer(
        &console,
        &user,
        status,
        Some(notice),
        results.into_iter().map(OutcomeRow::from).collect(),
    )
}
