//! `/admin/workflows`: state of each workflow, start/stop, and run-now.

use hyper::StatusCode;
use serde_json::json;

use super::AdminContext;
use crate::error::ApiError;
use crate::http::response::{HttpResponse, json_response};

/// `GET /admin/workflows`; a control instance adds `archive`, the state of each execution instance's
/// archive (cursor, count, lag, last error), which is what the archiving workflow works on.
pub fn list(ctx: &AdminContext) -> HttpResponse {
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
pub fn run_now(ctx: &AdminContext, name: &str) -> Result<HttpResponse, ApiError> {
    let runner = runner(ctx, name)?;
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

pub fn set_enabled(
    ctx: &AdminContext,
    name: &str,
    enabled: bool,
) -> Result<HttpResponse, ApiError> {
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
