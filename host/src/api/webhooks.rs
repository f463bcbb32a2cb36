//! `PUT|GET|DELETE /api/v1/webhooks/{name}`, `GET /api/v1/webhooks`, the history
//! (`GET /api/v1/webhooks/{name}/deliveries`), retry of one notification, replay of a time range and
//! rotation of the secret (docs/api.md "Webhooks").
//!
//! On an instance with `[[execution_instances]]` (a control instance) every call is sent on to each
//! execution instance and answered per instance, as template publishing is: `{"instances": [{"instance",
//! "status" (the instance's HTTP status, or 0 when unreachable), "body" | "error"}], "failed": n}`, 200
//! when every instance answered below 400, 502 otherwise. A `PUT` without a secret carries one generated
//! here as `secretIfCreated`, which an execution instance uses only if it creates the endpoint, so every
//! instance that creates it signs with the same secret and none that had it loses its own.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{Api, query};
use crate::db::entities::{webhook_endpoint, webhook_notification};
use crate::error::ApiError;
use crate::http::body::read_request_limited;
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};
use crate::ingest::validate::parse_object;
use crate::services::webhooks::{parse_webhook_id, webhook_id};
use crate::store::{EndpointChange, EndpointPut, HistoryEntry, HistoryFilter, decode_events};
use crate::webhooks::secret;
use mc_plugin_api::{NotificationStatus, WebhookEventType};

const MAX_NAME: usize = 100;
/// The field a control instance adds to the `PUT`s it sends on (see the module's doc).
const SECRET_IF_CREATED: &str = "secretIfCreated";
const MAX_URL: usize = 2000;
const MAX_PAGE: u64 = 1000;
const DEFAULT_PAGE: u64 = 100;

/// Checks an endpoint name: `A-Za-z0-9_.-`, 1 to 100 characters.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "name",
            format!("the endpoint name must be 1 to {MAX_NAME} characters of A-Z a-z 0-9 _ . -"),
        ))
    }
}

/// Checks a destination URL: http or https, parseable, with a host, no user or password, ≤ 2000
/// characters. (Where it resolves to is checked at send time.)
pub fn check_url(url: &str) -> Result<(), ApiError> {
    let bad = |why: String| ApiError::bad_request("url", why);
    if url.chars().count() > MAX_URL {
        return Err(bad(format!("`url` is longer than {MAX_URL} characters")));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("`url` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "`url` must be http or https, not `{}`",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "`url` must not carry a user name or password".to_owned()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("`url` has no host".to_owned()));
    }
    Ok(())
}

/// A `whsec_` secret in `field`, when given.
fn secret_field(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            secret::key_bytes(s)
                .map_err(|why| ApiError::bad_request(field, format!("`{field}` {why}")))?;
            Ok(Some(s.clone()))
        }
        Some(_) => Err(ApiError::bad_request(
            field,
            format!("`{field}` must be a string"),
        )),
    }
}

/// The body of a `PUT`.
pub fn parse_change(body: &[u8]) -> Result<EndpointChange, ApiError> {
    let object = parse_object(body)?;
    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "url" | "events" | "enabled" | "secret" | SECRET_IF_CREATED
        ) {
            return Err(ApiError::bad_request(
                key.clone(),
                format!("unknown field `{key}` (url, events, enabled, secret)"),
            ));
        }
    }
    let url = match object.get("url") {
        Some(Value::String(url)) => url.clone(),
        Some(Value::Null) | None => {
            return Err(ApiError::bad_request("url", "`url` is required"));
        }
        Some(_) => return Err(ApiError::bad_request("url", "`url` must be a string")),
    };
    check_url(&url)?;
    let events = match object.get("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(ApiError::bad_request(
                    "events",
                    "`events` must name at least one type (leave it out for all)",
                ));
            }
            let mut types = Vec::with_capacity(items.len());
            for item in items {
                let name = item.as_str().ok_or_else(|| {
                    ApiError::bad_request("events", "`events` must be an array of type names")
                })?;
                types.push(
                    name.parse::<WebhookEventType>()
                        .map_err(|e| ApiError::bad_request("events", e.to_string()))?,
                );
            }
            Some(types)
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "events",
                "`events` must be an array of type names",
            ));
        }
    };
    let enabled = match object.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::bad_request(
                "enabled",
                "`enabled` must be true or false",
            ));
        }
    };
    let secret = secret_field(&object, "secret")?;
    Ok(EndpointChange {
        url,
        events,
        enabled,
        secret,
    })
}

fn endpoint_view(endpoint: &webhook_endpoint::Model) -> Value {
    json!({
        "name": endpoint.name,
        "url": endpoint.url,
        "events": decode_events(&endpoint.events),
        "enabled": endpoint.enabled,
        "secretHint": secret::hint(&endpoint.secret),
        "disabledReason": endpoint.disabled_reason,
        "createdAt": endpoint.created_at.to_rfc3339(),
        "updatedAt": endpoint.updated_at.to_rfc3339(),
    })
}

fn notification_view(entry: &HistoryEntry) -> Value {
    let n: &webhook_notification::Model = &entry.notification;
    json!({
        "id": webhook_id(n.id),
        "type": n.event_type,
        "eventId": super::view::id_string(entry.event_public_id),
        "status": n.status,
        "createdAt": n.created_at.to_rfc3339(),
        "nextAttemptAt": n.next_attempt_at.map(|t| t.to_rfc3339()),
        "finishedAt": n.finished_at.map(|t| t.to_rfc3339()),
        "attempts": entry.attempts.iter().map(|a| json!({
            "at": a.attempted_at.to_rfc3339(),
            "httpStatus": a.http_status,
            "durationMs": a.duration_ms,
            "error": a.error,
            "response": a.response,
        })).collect::<Vec<_>>(),
    })
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook endpoint `{name}`"))
}

async fn endpoint(ctx: &Api, name: &str) -> Result<webhook_endpoint::Model, ApiError> {
    check_name(name)?;
    ctx.store
        .webhook_endpoint(name)
        .await?
        .ok_or_else(|| not_found(name))
}

/// Sends the call on to every execution instance when this is a control instance; `None` otherwise.
async fn fan_out(
    ctx: &Api,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<HttpResponse> {
    let instances = ctx.instances.as_ref()?;
    let mut results = Vec::new();
    let mut failed = 0;
    for instance in instances.names() {
        match instances.request(instance, method, path, body).await {
            Ok(answer) => {
                if answer.status >= 400 {
                    failed += 1;
                }
                results.push(json!({
                    "instance": instance,
                    "status": answer.status,
                    "body": answer.body,
                }));
            }
            Err(e) => {
                failed += 1;
                results.push(json!({ "instance": instance, "status": 0, "error": e.to_string() }));
            }
        }
    }
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Some(json_response(
        status,
        &json!({ "instances": results, "failed": failed }),
    ))
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

/// `GET /api/v1/webhooks`.
pub async fn list(State(ctx): State<Api>) -> Result<HttpResponse, ApiError> {
    if let Some(answer) = fan_out(&ctx, "GET", "/api/v1/webhooks", None).await {
        return Ok(answer);
    }
    let endpoints: Vec<Value> = ctx
        .store
        .list_webhook_endpoints()
        .await?
        .iter()
        .map(endpoint_view)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "webhooks": endpoints }),
    ))
}

/// `PUT /api/v1/webhooks/{name}`: 201 with the secret when created, 200 without when changed.
pub async fn put(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let body = read_request_limited(request, ctx.limits.body()).await?;
    let change = parse_change(&body)?;
    let object = parse_object(&body)?;
    if ctx.instances.is_some() {
        let mut forwarded = object;
        if change.secret.is_none() && !forwarded.contains_key(SECRET_IF_CREATED) {
            let generated = secret::generate().map_err(ApiError::Internal)?;
            forwarded.insert(SECRET_IF_CREATED.to_owned(), Value::String(generated));
        }
        let path = format!("/api/v1/webhooks/{name}");
        let answer = fan_out(&ctx, "PUT", &path, Some(&Value::Object(forwarded))).await;
        return answer.ok_or_else(|| ApiError::Internal("no execution instances".to_owned()));
    }
    let new_secret = match secret_field(&object, SECRET_IF_CREATED)? {
        Some(given) => given,
        None => secret::generate().map_err(ApiError::Internal)?,
    };
    match ctx
        .store
        .put_webhook_endpoint(&name, change, &new_secret)
        .await?
    {
        EndpointPut::Created(endpoint) => {
            let mut view = endpoint_view(&endpoint);
            view["secret"] = Value::String(endpoint.secret.clone());
            Ok(json_response(StatusCode::CREATED, &view))
        }
        EndpointPut::Updated(endpoint) => {
            Ok(json_response(StatusCode::OK, &endpoint_view(&endpoint)))
        }
    }
}

/// `GET /api/v1/webhooks/{name}`.
pub async fn get(State(ctx): State<Api>, Param(name): Param) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let path = format!("/api/v1/webhooks/{name}");
    if let Some(answer) = fan_out(&ctx, "GET", &path, None).await {
        return Ok(answer);
    }
    let endpoint = endpoint(&ctx, &name).await?;
    Ok(json_response(StatusCode::OK, &endpoint_view(&endpoint)))
}

/// `DELETE /api/v1/webhooks/{name}`: 204, with the endpoint's notifications and their history.
pub async fn delete(State(ctx): State<Api>, Param(name): Param) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let path = format!("/api/v1/webhooks/{name}");
    if let Some(answer) = fan_out(&ctx, "DELETE", &path, None).await {
        return Ok(answer);
    }
    if !ctx.store.delete_webhook_endpoint(&name).await? {
        return Err(not_found(&name));
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `POST /api/v1/webhooks/{name}/rotate-secret` [`{"secret"}`]: 200 with the endpoint and its new secret,
/// shown in this answer only; without a body the secret is generated. Every attempt from then on, retries
/// of older notifications included, is signed with it. A control instance generates one secret and sends
/// it on, so every execution instance signs with the same.
pub async fn rotate_secret(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let body = read_request_limited(request, ctx.limits.body()).await?;
    let given = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let object = parse_object(&body)?;
        if let Some(key) = object.keys().find(|k| k.as_str() != "secret") {
            return Err(ApiError::bad_request(
                key.clone(),
                format!("unknown field `{key}` (secret)"),
            ));
        }
        secret_field(&object, "secret")?
    };
    let new_secret = match given {
        Some(secret) => secret,
        None => secret::generate().map_err(ApiError::Internal)?,
    };
    let path = format!("/api/v1/webhooks/{name}/rotate-secret");
    let forwarded = json!({ "secret": new_secret });
    if let Some(answer) = fan_out(&ctx, "POST", &path, Some(&forwarded)).await {
        return Ok(answer);
    }
    let endpoint = ctx
        .store
        .rotate_webhook_secret(&name, &new_secret)
        .await?
        .ok_or_else(|| not_found(&name))?;
    tracing::info!(endpoint = %name, "webhook secret rotated");
    let mut view = endpoint_view(&endpoint);
    view["secret"] = Value::String(endpoint.secret.clone());
    Ok(json_response(StatusCode::OK, &view))
}

/// `GET /api/v1/webhooks/{name}/deliveries?status=&after=&limit=`, oldest first; `next` is the `after`
/// of the following page, `null` on the last.
pub async fn deliveries(
    State(ctx): State<Api>,
    Param(name): Param,
    RawQuery(query_string): RawQuery,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let path = with_query(
        format!("/api/v1/webhooks/{name}/deliveries"),
        query_string.as_deref(),
    );
    if let Some(answer) = fan_out(&ctx, "GET", &path, None).await {
        return Ok(answer);
    }
    let mut filter = HistoryFilter {
        limit: DEFAULT_PAGE,
        ..Default::default()
    };
    for (key, value) in query::pairs(query_string.as_deref()) {
        match key.as_str() {
            "status" => {
                filter.status = Some(
                    value
                        .parse::<NotificationStatus>()
                        .map_err(|e| ApiError::bad_request("status", e.to_string()))?,
                );
            }
            "after" => {
                filter.after = Some(parse_webhook_id(&value).ok_or_else(|| {
                    ApiError::bad_request("after", format!("`{value}` is not a delivery id"))
                })?);
            }
            "limit" => filter.limit = query::page_limit(&value, MAX_PAGE)?,
            _ => {}
        }
    }
    let endpoint = endpoint(&ctx, &name).await?;
    let page = ctx.store.webhook_history(&endpoint, &filter).await?;
    let next = (page.len() as u64 == filter.limit)
        .then(|| page.last().map(|e| webhook_id(e.notification.id)))
        .flatten();
    let deliveries: Vec<Value> = page.iter().map(notification_view).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "deliveries": deliveries, "next": next }),
    ))
}

/// `POST /api/v1/webhooks/{name}/deliveries/{id}/retry`: 202, the notification is due now (same id,
/// same body).
pub async fn retry(
    State(ctx): State<Api>,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Result<HttpResponse, ApiError> {
    let Path((name, id)) = params.map_err(|e| ApiError::bad_request("id", e.body_text()))?;
    check_name(&name)?;
    let path = format!("/api/v1/webhooks/{name}/deliveries/{id}/retry");
    if let Some(answer) = fan_out(&ctx, "POST", &path, None).await {
        return Ok(answer);
    }
    let endpoint = endpoint(&ctx, &name).await?;
    // An id not of the `msg_<n>` form names no delivery: as absent as a purged one.
    let row = parse_webhook_id(&id);
    let retried = match row {
        Some(row) => ctx.store.retry_webhook_notification(&endpoint, row).await?,
        None => false,
    };
    if !retried {
        return Err(ApiError::NotFound(format!(
            "no delivery `{id}` for webhook endpoint `{name}`"
        )));
    }
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({ "id": row.map(webhook_id), "status": NotificationStatus::Pending }),
    ))
}

/// `POST /api/v1/webhooks/{name}/replay` `{"from","to"}`: 202 `{"queued": n}`, a new notification for
/// each event that became final in `[from, to)` with a subscribed type.
pub async fn replay(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    let body = read_request_limited(request, ctx.limits.body()).await?;
    let object = parse_object(&body)?;
    let time = |field: &str| -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
        match object.get(field) {
            Some(Value::String(text)) => query::time(field, text),
            _ => Err(ApiError::bad_request(
                field,
                format!("`{field}` is required: an RFC 3339 time"),
            )),
        }
    };
    let (from, to) = (time("from")?, time("to")?);
    if to <= from {
        return Err(ApiError::bad_request("to", "`to` must be after `from`"));
    }
    let path = format!("/api/v1/webhooks/{name}/replay");
    if let Some(answer) = fan_out(&ctx, "POST", &path, Some(&Value::Object(object.clone()))).await {
        return Ok(answer);
    }
    let endpoint = endpoint(&ctx, &name).await?;
    let queued = ctx.store.replay_webhook(&endpoint, from, to).await?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({ "queued": queued }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ApiError) -> Option<String> {
        match err {
            ApiError::BadRequest { field, .. } => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn names_are_a_safe_alphabet() {
        assert!(check_name("orders-v2.prod_1").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(101)] {
            assert_eq!(
                field_of(check_name(bad).unwrap_err()).as_deref(),
                Some("name")
            );
        }
    }

    #[test]
    fn urls_must_be_plain_http_or_https() {
        assert!(check_url("https://hooks.example.com/mc?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://example.com/",
            "javascript:alert(1)",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                field_of(check_url(bad).unwrap_err()).as_deref(),
                Some("url"),
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(2000));
        assert_eq!(
            field_of(check_url(&long).unwrap_err()).as_deref(),
            Some("url")
        );
    }

    #[test]
    fn bodies_name_the_bad_field() {
        let ok = parse_change(br#"{"url":"https://x.example/h","events":["event.sent"]}"#).unwrap();
        assert_eq!(ok.events, Some(vec![WebhookEventType::EventSent]));
        assert!(ok.secret.is_none());
        for (body, field) in [
            (&br#"{"events":["event.sent"]}"#[..], "url"),
            (br#"{"url":"https://x.example","events":[]}"#, "events"),
            (
                br#"{"url":"https://x.example","events":["event.nope"]}"#,
                "events",
            ),
            (
                br#"{"url":"https://x.example","events":"event.sent"}"#,
                "events",
            ),
            (br#"{"url":"https://x.example","secret":"abc"}"#, "secret"),
            (
                br#"{"url":"https://x.example","secret":"whsec_AAAA"}"#,
                "secret",
            ),
            (br#"{"url":"https://x.example","enabled":"yes"}"#, "enabled"),
            (br#"{"url":"https://x.example","colour":"red"}"#, "colour"),
        ] {
            assert_eq!(
                field_of(parse_change(body).unwrap_err()).as_deref(),
                Some(field),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
