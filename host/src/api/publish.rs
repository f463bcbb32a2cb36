//! `POST /api/v1/templates/{name}/publish` and `.../unpublish` (docs/api.md "Publishing").
//!
//! On every instance they publish (or withdraw) the template locally. On a control instance they then
//! push the change to every `[[execution_instances]]` entry, one after the other, and answer per
//! instance: an execution instance that is down does not stop the others, and the answer says which
//! ones need the call again (it is idempotent: publishing the same content twice only adds a version).

use axum::extract::{Request, State};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::Api;
use super::templates::{check_name, full_view, not_found, read_body, template_version};
use crate::db::entities::template_version;
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
    let content = remote_content(&version);
    let path = format!("/api/v1/templates/{name}");
    let mut results = Vec::new();
    if let Some(instances) = &ctx.instances {
        for instance in instances.names() {
            let result = match instances
                .request(instance, "PUT", &path, Some(&content))
                .await
            {
                Ok(answer) if answer.status == 200 || answer.status == 201 => json!({
                    "instance": instance,
                    "status": "published",
                    "version": answer.body.pointer("/content/version").cloned().unwrap_or(Value::Null),
                }),
                Ok(answer) => refused(instance, answer.status, &answer.body),
                Err(e) => unreachable(instance, &e),
            };
            results.push(result);
        }
    }
    Ok(answer(full_view(&template, &version), results))
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
    let path = format!("/api/v1/templates/{name}/unpublish");
    let mut results = Vec::new();
    if let Some(instances) = &ctx.instances {
        for instance in instances.names() {
            let result = match instances.request(instance, "POST", &path, None).await {
                Ok(answer) if answer.status == 200 => {
                    json!({ "instance": instance, "status": "unpublished" })
                }
                // It never had the template: nothing to withdraw there.
                Ok(answer) if answer.status == 404 => {
                    json!({ "instance": instance, "status": "not_present" })
                }
                Ok(answer) => refused(instance, answer.status, &answer.body),
                Err(e) => unreachable(instance, &e),
            };
            results.push(result);
        }
    }
    let view = json!({
        "name": template.name,
        "eventType": template.event_type,
        "channel": template.channel,
        "latestVersion": template.latest_version,
        "publishedVersion": template.published_version,
    });
    Ok(answer(view, results))
}

/// 200 when every instance took the change, 502 (with the same per-instance body) when one did not.
fn answer(template: Value, results: Vec<Value>) -> HttpResponse {
    let failed = results.iter().filter(|r| r["status"] == "failed").count();
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    json_response(
        status,
        &json!({ "template": template, "instances": results, "failed": failed }),
    )
}

fn refused(instance: &str, status: u16, body: &Value) -> Value {
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("no error message");
    json!({
        "instance": instance,
        "status": "failed",
        "error": format!("answered {status}: {message}"),
    })
}

fn unreachable(instance: &str, error: &crate::control::InstanceError) -> Value {
    json!({ "instance": instance, "status": "failed", "error": error.to_string() })
}

/// The body of the `PUT` that gives an execution instance this version.
fn remote_content(version: &template_version::Model) -> Value {
    json!({
        "eventType": version.event_type,
        "channel": version.channel,
        "from": version.from_address,
        "subject": version.subject,
        "text": version.text_body,
        "html": version.html_body,
        "publish": true,
    })
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
