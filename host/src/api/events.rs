//! `POST /api/v1/events`, `POST /api/v1/events/batch`, `GET /api/v1/events/{id}`, `GET /api/v1/events`.

use axum::extract::{RawQuery, Request, State};
use hyper::{HeaderMap, StatusCode};
use mc_plugin_api::{EventStatus, Queue};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Api, ApiContext, query, view};
use crate::db::entities::event::split_public_id;
use crate::error::ApiError;
use crate::http::body::read_request_limited;
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};
use crate::ingest::validate::{self, Limits};
use crate::store::{EventFilter, IdempotencyClaim, Submission, SubmissionOutcome};

/// Most events one list page returns.
const MAX_PAGE: u64 = 1000;
const DEFAULT_PAGE: u64 = 100;

pub async fn push_one(State(ctx): State<Api>, request: Request) -> Result<HttpResponse, ApiError> {
    let result = async {
        let (idempotency, body) = read_request(&ctx, request).await?;
        let event = validate::single_event(&body, limits(&ctx))?;
        let outcome = submit(&ctx, Queue::Realtime, vec![event], idempotency, &body).await?;
        Ok(match outcome {
            (SubmissionOutcome::Created(ids), _) => one_answer(StatusCode::CREATED, ids[0]),
            (SubmissionOutcome::Replayed(ids), _) => one_answer(StatusCode::OK, ids[0]),
            (SubmissionOutcome::KeyReused, key) => return Err(key_reused(&key)),
        })
    }
    .await;
    count_refusal(&ctx, Queue::Realtime, result)
}

pub async fn push_batch(
    State(ctx): State<Api>,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        let (idempotency, body) = read_request(&ctx, request).await?;
        let events = validate::batch_events(&body, limits(&ctx))?;
        let outcome = submit(&ctx, Queue::Batch, events, idempotency, &body).await?;
        Ok(match outcome {
            (SubmissionOutcome::Created(ids), _) => batch_answer(StatusCode::CREATED, &ids),
            (SubmissionOutcome::Replayed(ids), _) => batch_answer(StatusCode::OK, &ids),
            (SubmissionOutcome::KeyReused, key) => return Err(key_reused(&key)),
        })
    }
    .await;
    count_refusal(&ctx, Queue::Batch, result)
}

pub async fn get(State(ctx): State<Api>, Param(id): Param) -> Result<HttpResponse, ApiError> {
    let public_id = view::parse_id(&id).ok_or_else(|| {
        ApiError::bad_request(
            "id",
            format!("`{id}` is not an event id (an unsigned 64-bit integer)"),
        )
    })?;
    let (event, deliveries) = ctx
        .store
        .get_event(public_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    Ok(json_response(
        StatusCode::OK,
        &view::event(&event, Some(&deliveries)),
    ))
}

pub async fn list(
    State(ctx): State<Api>,
    RawQuery(query_string): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let mut filter = EventFilter {
        limit: DEFAULT_PAGE,
        ..Default::default()
    };
    for (name, value) in query::pairs(query_string.as_deref()) {
        match name.as_str() {
            "status" => {
                filter.status = Some(EventStatus::from_name(&value).ok_or_else(|| {
                    ApiError::bad_request("status", format!("unknown status `{value}`"))
                })?);
            }
            "type" => filter.event_type = Some(value),
            "queue" => {
                filter.queue = Some(value.parse::<Queue>().map_err(|_| {
                    ApiError::bad_request(
                        "queue",
                        format!("`queue` must be realtime or batch, not `{value}`"),
                    )
                })?);
            }
            "after" => {
                let id = view::parse_id(&value).ok_or_else(|| {
                    ApiError::bad_request("after", format!("`{value}` is not an event id"))
                })?;
                filter.after_row_key = Some(split_public_id(id).1);
            }
            "limit" => filter.limit = query::page_limit(&value, MAX_PAGE)?,
            "id" => {
                filter.id = Some(view::parse_id(&value).ok_or_else(|| {
                    ApiError::bad_request("id", format!("`{value}` is not an event id"))
                })?);
            }
            "externalId" => filter.external_id = Some(value),
            "email" => filter.email = Some(value),
            "mobilePhone" => filter.mobile_phone = Some(value),
            "from" => filter.from = Some(query::time("from", &value)?),
            "to" => filter.to = Some(query::time("to", &value)?),
            _ => {}
        }
    }
    let events = ctx.store.list_events(&filter).await?;
    let next_after = (events.len() as u64 == filter.limit)
        .then(|| events.last().map(|e| view::id_string(e.public_id())))
        .flatten();
    let events: Vec<_> = events.iter().map(|e| view::event(e, None)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "events": events, "nextAfter": next_after }),
    ))
}

fn limits(ctx: &ApiContext) -> Limits {
    Limits {
        max_ctx_bytes: ctx.limits.max_ctx_bytes,
        max_batch_events: ctx.limits.max_batch_events,
    }
}

/// The idempotency key (validated) and the body (within the size limit).
async fn read_request(
    ctx: &ApiContext,
    request: Request,
) -> Result<(Option<String>, bytes::Bytes), ApiError> {
    let key = idempotency_key(request.headers())?;
    let body = read_request_limited(request, ctx.limits.body()).await?;
    Ok((key, body))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::bad_request(
            "Idempotency-Key",
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

async fn submit(
    ctx: &ApiContext,
    queue: Queue,
    events: Vec<crate::store::NewEvent>,
    key: Option<String>,
    body: &[u8],
) -> Result<(SubmissionOutcome, String), ApiError> {
    let idempotency = key.as_ref().map(|key| IdempotencyClaim {
        key: key.clone(),
        request_hash: request_hash(queue, body),
    });
    let outcome = ctx
        .ingest
        .submit(Submission {
            queue,
            events,
            idempotency,
        })
        .await?;
    Ok((outcome, key.unwrap_or_default()))
}

/// Identifies a request for idempotency: the queue it went to and its exact body.
fn request_hash(queue: Queue, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(queue.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn key_reused(key: &str) -> ApiError {
    ApiError::Unprocessable {
        code: crate::error::ErrorCode::IdempotencyKeyReused,
        message: format!("Idempotency-Key `{key}` was already used with a different request"),
        details: None,
    }
}

fn one_answer(status: StatusCode, id: i64) -> HttpResponse {
    let id = view::id_string(id);
    json_response(
        status,
        &json!({ "id": id, "status": EventStatus::Pending.as_str(), "href": format!("/api/v1/events/{id}") }),
    )
}

fn batch_answer(status: StatusCode, ids: &[i64]) -> HttpResponse {
    let ids: Vec<String> = ids.iter().map(|id| view::id_string(*id)).collect();
    json_response(status, &json!({ "ids": ids }))
}

/// Counts refused ingestion requests by reason for `mc_events_refused_total`.
fn count_refusal(
    ctx: &ApiContext,
    queue: Queue,
    result: Result<HttpResponse, ApiError>,
) -> Result<HttpResponse, ApiError> {
    if let Err(e) = &result {
        ctx.metrics.record_events_refused(queue, e.code().as_str());
    }
    result
}
