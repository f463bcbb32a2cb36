//! `/admin/plugins`: what is loaded, and reloads.

use std::sync::Arc;

use axum::extract::State;
use hyper::StatusCode;
use serde_json::json;

use super::Admin;
use crate::error::ApiError;
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};
use crate::plugins::ReloadOutcome;

pub async fn list(State(ctx): State<Admin>) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &json!({
            "pluginDir": ctx.registry.dir(),
            "hostAbiVersion": mc_plugin_api::abi::ABI_VERSION,
            "hostApiVersion": mc_plugin_api::API_VERSION,
            "hostRustcVersion": crate::plugins::loader::host_rustc_version(),
            "plugins": ctx.registry.list(),
        }),
    )
}

/// Loading libraries reads files and runs `dlopen`: keep it off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("reload task failed: {e}")))
}

pub async fn reload_all(State(ctx): State<Admin>) -> Result<HttpResponse, ApiError> {
    let registry = Arc::clone(&ctx.registry);
    let results = blocking(move || registry.reload_all()).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "results": results }),
    ))
}

pub async fn reload_one(
    State(ctx): State<Admin>,
    Param(name): Param,
) -> Result<HttpResponse, ApiError> {
    let registry = Arc::clone(&ctx.registry);
    let plugin = name.clone();
    let result = blocking(move || registry.reload_plugin(&plugin))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no plugin named `{name}` has been loaded")))?;
    if result.outcome == ReloadOutcome::Refused {
        return Err(ApiError::Unprocessable {
            code: crate::error::ErrorCode::ReloadFailed,
            message: result
                .error
                .clone()
                .unwrap_or_else(|| "reload refused".to_owned()),
            details: Some(json!({ "results": [result] })),
        });
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "results": [result] }),
    ))
}
