//! `GET /api/v1/archive/events` and `GET /api/v1/archive/report` (docs/api.md "Archive").
//!
//! One path, two sides: on an execution instance it is the feed a control instance pulls (finished
//! events in the order they became final, `after=CURSOR`; reading after a cursor acknowledges
//! everything up to it, which the retention purge waits for). On a control instance it queries the
//! archive of every execution instance.

use axum::extract::{RawQuery, State};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::{Api, query, view};
use crate::db::entities::archive_event;
use crate::error::ApiError;
use crate::http::response::{HttpResponse, json_response};
use crate::store::{ArchiveFilter, FeedCursor};
use mc_plugin_api::EventStatus;

/// Largest feed page.
const MAX_FEED_PAGE: u64 = 1000;
const DEFAULT_FEED_PAGE: u64 = 100;
/// Largest page of archive query results.
const MAX_QUERY_PAGE: u64 = 1000;
const DEFAULT_QUERY_PAGE: u64 = 100;

/// The feed (execution side): `?after=CURSOR&limit=N`.
pub async fn feed(
    State(ctx): State<Api>,
    RawQuery(query_string): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let query_string = query_string.as_deref();
    let mut after = FeedCursor::default();
    let mut limit = DEFAULT_FEED_PAGE;
    for (key, value) in query::pairs(query_string) {
        match key.as_str() {
            "after" if !value.is_empty() => {
                after = value.parse().map_err(|()| {
                    ApiError::bad_request(
                        "after",
                        format!("`{value}` is not an archive cursor (use the `nextCursor` of the previous page, or `0.0`)"),
                    )
                })?;
            }
            "limit" => limit = query::page_limit(&value, MAX_FEED_PAGE)?,
            _ => {}
        }
    }
    if after != FeedCursor::default() {
        // A cursor from nowhere must not acknowledge (and so let the purge delete) what nobody read.
        let end = ctx.store.archive_feed_end().await?;
        if after.seq > end {
            return Err(ApiError::bad_request(
                "after",
                format!(
                    "cursor `{after}` is past the end of the feed (place {end}); use a `nextCursor` this instance gave"
                ),
            ));
        }
        ctx.store.acknowledge_archive(after).await?;
    }
    let page = ctx.store.archive_feed_page(after, limit).await?;
    let next = page.last().map_or(after, |(e, _)| FeedCursor::of(e));
    let more = page.len() as u64 == limit;
    let events: Vec<Value> = page
        .iter()
        .map(|(e, logs)| view::event(e, Some(logs)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "events": events, "nextCursor": next.to_string(), "more": more }),
    ))
}

/// The archive query (control side): `?instance=&status=&type=&channel=&from=&to=&after=&limit=`.
pub async fn search(
    State(ctx): State<Api>,
    RawQuery(query_string): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let query_string = query_string.as_deref();
    let mut filter = archive_filter(query_string, DEFAULT_QUERY_PAGE)?;
    for (key, value) in query::pairs(query_string) {
        if key == "after" && !value.is_empty() {
            filter.after = Some(parse_search_cursor(&value)?);
        }
    }
    let rows = ctx.store.query_archive(&filter).await?;
    let next = (rows.len() as u64 == filter.limit)
        .then(|| rows.last().map(search_cursor))
        .flatten();
    let events: Vec<Value> = rows.iter().map(archived).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "events": events, "nextAfter": next }),
    ))
}

/// The report (control side): counts by day, template, channel and status, with the same filters.
pub async fn report(
    State(ctx): State<Api>,
    RawQuery(query_string): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let query_string = query_string.as_deref();
    let filter = archive_filter(query_string, 1)?;
    let rows = ctx.store.archive_report(&filter).await?;
    let total: i64 = rows.iter().map(|r| r.count).sum();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "day": r.day,
                "template": r.template,
                "channel": r.channel,
                "status": r.status,
                "count": r.count,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "rows": rows, "total": total }),
    ))
}

/// The filters shared by the query and the report.
fn archive_filter(
    query_string: Option<&str>,
    default_limit: u64,
) -> Result<ArchiveFilter, ApiError> {
    let mut filter = ArchiveFilter {
        limit: default_limit,
        ..ArchiveFilter::default()
    };
    for (key, value) in query::pairs(query_string) {
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "instance" => filter.instance = Some(value),
            "status" => {
                if EventStatus::from_name(&value).is_none_or(|s| !s.is_final()) {
                    return Err(ApiError::bad_request(
                        "status",
                        format!(
                            "`{value}` is not a final status (sent, ignored, delivery_failed, not_taken_into_account, expired)"
                        ),
                    ));
                }
                filter.status = Some(value);
            }
            "type" => filter.event_type = Some(value),
            "channel" => filter.channel = Some(value),
            "from" => filter.from = Some(query::time("from", &value)?),
            "to" => filter.to = Some(query::time("to", &value)?),
            "limit" => filter.limit = query::page_limit(&value, MAX_QUERY_PAGE)?,
            _ => {}
        }
    }
    Ok(filter)
}

/// The query's page cursor: `<event id>/<instance>` of the last row.
fn search_cursor(row: &archive_event::Model) -> String {
    format!("{}/{}", view::id_string(row.event_id), row.instance_name)
}

fn parse_search_cursor(value: &str) -> Result<(i64, String), ApiError> {
    value
        .split_once('/')
        .and_then(|(id, instance)| Some((view::parse_id(id)?, instance.to_owned())))
        .ok_or_else(|| {
            ApiError::bad_request(
                "after",
                format!(
                    "`{value}` is not an archive page cursor (use `nextAfter` of the previous page)"
                ),
            )
        })
}

fn archived(row: &archive_event::Model) -> Value {
    json!({
        "instance": row.instance_name,
        "id": view::id_string(row.event_id),
        "queue": row.queue,
        "status": row.status,
        "type": row.event_type,
        "channel": row.channel,
        "email": row.email,
        "mobilePhone": row.mobile_phone,
        "externalId": row.external_id,
        "language": row.language,
        "ctx": row.ctx,
        "template": row.template_name.as_ref().map(|name| json!({ "name": name, "version": row.template_version })),
        "deliveries": row.delivery_logs,
        "createdAt": row.created_at.to_rfc3339(),
        "linkedAt": row.linked_at.map(|t| t.to_rfc3339()),
        "acceptedAt": row.accepted_at.map(|t| t.to_rfc3339()),
        "finishedAt": row.finished_at.map(|t| t.to_rfc3339()),
        "archivedAt": row.archived_at.to_rfc3339(),
    })
}
