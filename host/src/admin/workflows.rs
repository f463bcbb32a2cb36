//! `/admin/workflows`: state of each workflow, and start/stop.

use hyper::StatusCode;
use serde_json::json;

use super::AdminContext;
use crate::error::ApiError;
use crate::http::response::{HttpResponse, json_response};

pub fn list(ctx: &AdminContext) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &json!({ "workflows": ctx.workflows.list() }),
    )
}

pub fn set_enabled(
    ctx: &AdminContext,
    name: &str,
    enabled: bool,
) -> Result<HttpResponse, ApiError> {
    let runner = ctx
        .workflows
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no workflow named `{name}` is configured")))?;
    runner.set_enabled(enabled);
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
