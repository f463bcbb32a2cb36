//! `POST /api/v1/templates/{name}/publish` and `.../unpublish` (docs/api.md "Publishing").
//!
//! On every instance they publish (or withdraw) the template locally. On a control instance they then
//! push the change to every `[[execution_instances]]` entry (`control::publish`) and answer per
//! instance: an execution instance that is down does not stop the others, and the answer says which
//! ones need the call again.

use axum::extract::{Request, State};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::Api;
use super::templates::{check_name, full_view, not_found, read_body, template_version};
use crate::control::publish::{InstanceResult, push_publish, push_unpublish};
use crate::error::ApiError;
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};
use crate::ingest::validate::parse_object;

/// `POST /api/v1/templates/{name}/publish`, body `{"version": N}` or empty for the latest version.
pub async fn publish(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    let name = name.as_str();
    check_name(name)?;
    let body = read_body(&ctx, request).await?;
    let wanted = requested_version(&body)?;
    let (_, version) = template_version(&ctx, name, wanted).await?;
    let template = ctx
        .store
        .set_published_version(name, Some(version.version))
        .await?
        .ok_or_else(|| not_found(name))?;
    let results = match &ctx.instances {
        Some(instances) => push_publish(instances, name, &version).await,
        None => Vec::new(),
    };
    Ok(answer(full_view(&template, &version), &results))
}

/// `POST /api/v1/templates/{name}/unpublish`.
pub async fn unpublish(
    State(ctx): State<Api>,
    Param(name): Param,
) -> Result<HttpResponse, ApiError> {
    let name = name.as_str();
    check_name(name)?;
    let template = ctx
        .store
        .set_published_version(name, None)
        .await?
        .ok_or_else(|| not_found(name))?;
    let results = match &ctx.instances {
        Some(instances) => push_unpublish(instances, name).await,
        None => Vec::new(),
    };
    let view = json!({
        "name": template.name,
        "eventType": template.event_type,
        "channel": template.channel,
        "latestVersion": template.latest_version,
        "publishedVersion": template.published_version,
    });
    Ok(answer(view, &results))
}

/// 200 when every instance took the change, 502 (with the same per-instance body) when one did not.
fn answer(template: Value, results: &[InstanceResult]) -> HttpResponse {
    let failed = results.iter().filter(|r| r.outcome.failed()).count();
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    let instances: Vec<Value> = results.iter().map(InstanceResult::to_json).collect();
    json_response(
        status,
        &json!({ "template": template, "instances": instances, "failed": failed }),
    )
}

/// `{"version": N}`, or nothing.
fn requested_version(body: &[u8]) -> Result<Option<i32>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let object = parse_object(body)?;
    match object.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("version", "`version` must be a positive integer")
            }),
    }
}
