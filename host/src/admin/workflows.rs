//! `/admin/workflows`: state of each workflow, start/stop, and run-now.

use axum::extract::State;
use hyper::StatusCode;
use serde_json::json;

use super::{Admin, AdminContext};
use crate::error::ApiError;
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};

/// `GET /admin/workflows`; a control instance adds `archive`, the state of each execution instance's
/// archive (cursor, count, lag, last error), which is what the archiving workflow works on.
pub async fn list(State(ctx): State<Admin>) -> HttpResponse {
    let mut body = json!({ "workflows": ctx.workflows.list() });
    if let Some(archive) = &ctx.archive {
        body["archive"] = archive.snapshot();
    }
    json_response(StatusCode::OK, &body)
}

fn runner<'a>(
    ctx: &'a AdminContext,
    name: &str,
) -> Result<&'a std::sync::Arc<crate::workflows::WorkflowRunner>, ApiError> {
    ctx.workflows
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no workflow named `{name}` is configured")))
}

/// `POST /admin/workflows/{name}/run`: the same wake-up signal ingestion sends, so the workflow runs now
/// rather than at its next tick (a run already in progress is followed by one more).
pub async fn run_now(
    State(ctx): State<Admin>,
    Param(name): Param,
) -> Result<HttpResponse, ApiError> {
    let name = name.as_str();
    let runner = runner(&ctx, name)?;
    if !runner.is_enabled() {
        return Err(ApiError::Unprocessable {
            code: crate::error::ErrorCode::WorkflowStopped,
            message: format!("workflow `{name}` is stopped; start it first"),
            details: None,
        });
    }
    runner.wake();
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({ "name": name, "woken": true }),
    ))
}

/// `POST /admin/workflows/{name}/start`.
pub async fn start(State(ctx): State<Admin>, Param(name): Param) -> Result<HttpResponse, ApiError> {
    set_enabled(&ctx, &name, true)
}

/// `POST /admin/workflows/{name}/stop`.
pub async fn stop(State(ctx): State<Admin>, Param(name): Param) -> Result<HttpResponse, ApiError> {
    set_enabled(&ctx, &name, false)
}

fn set_enabled(ctx: &AdminContext, name: &str, enabled: bool) -> Result<HttpResponse, ApiError> {
    runner(ctx, name)?.set_enabled(enabled);
    tracing::info!(
        workflow = name,
        enabled,
        "workflow {}",
        if enabled { "started" } else { "stopped" }
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({ "name": name, "enabled": enabled }),
    ))
}
