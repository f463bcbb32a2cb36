//! Trying a template before it is published (docs/api.md "Seeds, previews and proofs"):
//! `GET|PUT /api/v1/templates/{name}/seeds`, `POST /api/v1/templates/{name}/preview`,
//! `POST /api/v1/templates/{name}/proof` and `GET /api/v1/templates/{name}/proofs`. The work is
//! `templates::trial`'s, shared with the console.

use axum::extract::{Request, State};
use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::Api;
use super::templates::{check_name, not_found, read_body};
use crate::db::entities::template_proof;
use crate::error::{ApiError, ErrorCode};
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};
use crate::ingest::validate::{kind, optional_string, parse_object};
use crate::templates::proofs::{parse_seeds, seeds_json};
use crate::templates::trial::{PROOFS_LISTED, Preview, Recipient, TrialError};
use crate::templates::{RenderEvent, Rendered};

impl From<TrialError> for ApiError {
    fn from(e: TrialError) -> Self {
        match e {
            TrialError::UnknownTemplate(name) => not_found(&name),
            TrialError::UnknownVersion { .. } => ApiError::bad_request("version", e.to_string()),
            TrialError::UnknownSeed { .. } => ApiError::bad_request("seed", e.to_string()),
            TrialError::Render(error) => ApiError::BadRequest {
                code: ErrorCode::TemplateError,
                field: Some(error.field.to_owned()),
                message: error.detail(),
            },
            TrialError::NotSent(crate::delivery::ProofError::InvalidAddress { .. }) => {
                ApiError::bad_request("seed", e.to_string())
            }
            TrialError::NotSent(_) | TrialError::NoDelivery => ApiError::Unprocessable {
                code: ErrorCode::ChannelNotConfigured,
                message: e.to_string(),
                details: None,
            },
            TrialError::Store(store) => store.into(),
        }
    }
}

/// `GET /api/v1/templates/{name}/seeds`.
pub async fn get_seeds(
    State(ctx): State<Api>,
    Param(name): Param,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    if ctx.store.get_template(&name).await?.is_none() {
        return Err(not_found(&name));
    }
    let seeds = ctx.store.template_seeds(&name).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "template": name.as_str(), "seeds": seeds_json(&seeds) }),
    ))
}

/// `PUT /api/v1/templates/{name}/seeds`, body `{"seeds":[{"label","address","ctx"}]}`: replaces the
/// list; addresses are checked against the template's channel.
pub async fn put_seeds(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let body = read_body(&ctx, request).await?;
    let object = parse_object(&body)?;
    let template = ctx
        .store
        .get_template(&name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let channel = template.channel.parse().unwrap_or_default();
    let given = object
        .get("seeds")
        .ok_or_else(|| ApiError::bad_request("seeds", "`seeds` is required"))?;
    let seeds = parse_seeds(given, channel, ctx.limits.max_ctx_bytes)
        .map_err(|e| ApiError::bad_request(e.field, e.message))?;
    ctx.store.replace_template_seeds(&name, &seeds).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "template": name.as_str(), "seeds": seeds_json(&seeds) }),
    ))
}

/// `POST /api/v1/templates/{name}/preview`, body `{"version"?, "seed"|"event"}`: the rendered parts.
pub async fn preview(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let body = read_body(&ctx, request).await?;
    let object = parse_object(&body)?;
    let version = version_field(&object)?;
    let recipient = match (optional_string(&object, "seed", "")?, object.get("event")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "event",
                "give `seed` or `event`, not both",
            ));
        }
        (Some(label), None) => Recipient::Seed(label),
        (None, Some(event)) => Recipient::Event(inline_event(event, ctx.limits.max_ctx_bytes)?),
        (None, None) => {
            return Err(ApiError::bad_request(
                "seed",
                "`seed` (a seed's label) or `event` is required",
            ));
        }
    };
    let preview = ctx.trials.preview(&name, version, recipient).await?;
    Ok(json_response(
        StatusCode::OK,
        &preview_view(&name, &preview),
    ))
}

/// `POST /api/v1/templates/{name}/proof`, body `{"version"?, "seed"}`: sent now to the seed. 201 when
/// the channel accepted it, 502 when it refused (the proof is recorded either way).
pub async fn proof(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let body = read_body(&ctx, request).await?;
    let object = parse_object(&body)?;
    let version = version_field(&object)?;
    let label = optional_string(&object, "seed", "")?
        .ok_or_else(|| ApiError::bad_request("seed", "`seed` (a seed's label) is required"))?;
    let proof = ctx.trials.proof(&name, version, &label, None).await?;
    let status = if proof.status == crate::templates::proofs::ProofStatus::Sent.as_str() {
        StatusCode::CREATED
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok(json_response(
        status,
        &json!({ "proof": proof_view(&proof) }),
    ))
}

/// `GET /api/v1/templates/{name}/proofs`: the latest proofs, newest first.
pub async fn proofs(State(ctx): State<Api>, Param(name): Param) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let proofs: Vec<Value> = ctx
        .store
        .template_proofs(&name, PROOFS_LISTED)
        .await?
        .iter()
        .map(proof_view)
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "proofs": proofs })))
}

/// `version`: absent or `null` for the latest, else a positive integer.
fn version_field(object: &Map<String, Value>) -> Result<Option<i32>, ApiError> {
    match object.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "version",
                    format!("`version` must be a positive integer, not {value}"),
                )
            }),
    }
}

/// An inline `event`: `ctx` (an object, at most `server.max_ctx_bytes`), `email`, `mobilePhone`,
/// `language`, `externalId`.
fn inline_event(value: &Value, max_ctx_bytes: usize) -> Result<RenderEvent, ApiError> {
    let Value::Object(event) = value else {
        return Err(ApiError::bad_request(
            "event",
            format!("`event` must be an object, not {}", kind(value)),
        ));
    };
    let ctx = match event.get("ctx") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(ctx @ Value::Object(_)) => ctx.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(
                "event.ctx",
                format!("`ctx` must be an object, not {}", kind(other)),
            ));
        }
    };
    let size = ctx.to_string().len();
    if size > max_ctx_bytes {
        return Err(ApiError::bad_request(
            "event.ctx",
            format!(
                "`ctx` is {size} bytes as JSON; the limit is {max_ctx_bytes} (server.max_ctx_bytes)"
            ),
        ));
    }
    Ok(RenderEvent {
        ctx,
        email: optional_string(event, "email", "event.")?,
        mobile_phone: optional_string(event, "mobilePhone", "event.")?,
        language: optional_string(event, "language", "event.")?,
        external_id: optional_string(event, "externalId", "event.")?,
    })
}

fn rendered_view(r: &Rendered) -> Value {
    json!({ "from": r.from, "subject": r.subject, "text": r.text, "html": r.html })
}

fn preview_view(name: &str, p: &Preview) -> Value {
    json!({
        "template": name,
        "version": p.version,
        "seed": p.seed.as_ref().map(|s| s.label.as_str()),
        "rendered": rendered_view(&p.rendered),
    })
}

/// A proof as the API shows it.
pub(super) fn proof_view(p: &template_proof::Model) -> Value {
    json!({
        "id": p.id.to_string(),
        "template": p.template_name,
        "version": p.version,
        "channel": p.channel,
        "seed": p.seed_label,
        "address": p.address,
        "status": p.status,
        "messageId": p.message_id,
        "error": p.error,
        "sentBy": p.sent_by,
        "createdAt": p.created_at.to_rfc3339(),
    })
}
