//! `POST /api/v1/bounces`: a bounce reported over HTTP by a relay (docs/api.md "Bounces").

use axum::extract::{Request, State};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::{Api, view};
use crate::bounces::{BounceSource, clip, outcome_label};
use crate::db::entities::event::split_public_id;
use crate::error::ApiError;
use crate::http::body::read_request_limited;
use crate::http::response::{HttpResponse, json_response};
use crate::ingest::validate::{check_email, kind, optional_string, parse_object};
use crate::store::{BounceKind, BounceOutcome, BounceReport, BounceTarget};

/// Longest `diagnostic` accepted, in characters.
const MAX_DIAGNOSTIC: usize = 1000;

pub async fn report(State(ctx): State<Api>, request: Request) -> Result<HttpResponse, ApiError> {
    let body = read_request_limited(request, ctx.limits.body()).await?;
    let object = parse_object(&body)?;
    let message_id = optional_string(&object, "messageId", "")?;
    let event_id = match object.get("eventId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(view::parse_id(id).ok_or_else(|| {
            ApiError::bad_request("eventId", format!("`{id}` is not an event id"))
        })?),
        Some(Value::Number(n)) => Some(n.as_u64().map(|id| id as i64).ok_or_else(|| {
            ApiError::bad_request("eventId", format!("`{n}` is not an event id"))
        })?),
        Some(other) => {
            return Err(ApiError::bad_request(
                "eventId",
                format!("`eventId` must be a string, not {}", kind(other)),
            ));
        }
    };
    let target = match (message_id, event_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "messageId",
                "give `messageId` or `eventId`, not both",
            ));
        }
        (Some(id), None) if !id.trim().is_empty() => BounceTarget::MessageId(id),
        (None, Some(id)) => BounceTarget::Event(split_public_id(id).1),
        _ => {
            return Err(ApiError::bad_request(
                "messageId",
                "`messageId` or `eventId` is required",
            ));
        }
    };
    let address = optional_string(&object, "address", "")?;
    if let Some(address) = &address
        && let Err(reason) = check_email(address.trim())
    {
        return Err(ApiError::bad_request(
            "address",
            format!("`{address}` is not an email address: {reason}"),
        ));
    }
    let bounce_kind = match object.get("type") {
        Some(Value::String(name)) => BounceKind::from_name(name).ok_or_else(|| {
            ApiError::bad_request(
                "type",
                format!("`type` must be hard, soft or complaint, not `{name}`"),
            )
        })?,
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "type",
                "`type` is required: hard, soft or complaint",
            ));
        }
        Some(other) => {
            return Err(ApiError::bad_request(
                "type",
                format!("`type` must be a string, not {}", kind(other)),
            ));
        }
    };
    let diagnostic = optional_string(&object, "diagnostic", "")?.unwrap_or_default();
    if diagnostic.chars().count() > MAX_DIAGNOSTIC {
        return Err(ApiError::bad_request(
            "diagnostic",
            format!("`diagnostic` is longer than {MAX_DIAGNOSTIC} characters"),
        ));
    }
    let report = BounceReport {
        kind: bounce_kind,
        diagnostic: if diagnostic.trim().is_empty() {
            format!("{} bounce reported over HTTP", bounce_kind.as_str())
        } else {
            clip(&diagnostic)
        },
        address,
    };
    let outcome = ctx
        .bounces
        .apply(BounceSource::Http, &target, &report)
        .await?;
    let label = outcome_label(&outcome, bounce_kind);
    let entry = match outcome {
        BounceOutcome::Unknown => {
            return Err(ApiError::NotFound(
                "no sent message matches the bounce (messageId / eventId, and address when given)"
                    .to_owned(),
            ));
        }
        BounceOutcome::InFlight { .. } => {
            return Err(ApiError::Unavailable(
                "the message is still being sent; report the bounce again later".to_owned(),
            ));
        }
        BounceOutcome::Bounced { entry, .. }
        | BounceOutcome::Recorded { entry }
        | BounceOutcome::AlreadyBounced { entry } => entry,
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "outcome": label, "deliveryId": entry.to_string() }),
    ))
}
