//! `/healthz` (the process answers), `/readyz` (it can do its work: the database is reachable and
//! migrated) and `/metrics`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use hyper::StatusCode;
use serde_json::json;

use super::Admin;
use crate::http::response::{HttpResponse, json_response, with_type};

pub async fn healthz() -> HttpResponse {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

pub async fn readyz(State(ctx): State<Admin>) -> HttpResponse {
    if !ctx.db_ready.load(Ordering::SeqCst) {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "not_ready", "reason": "database not reachable or not migrated yet" }),
        );
    }
    match ctx.store.ping().await {
        Ok(()) => json_response(StatusCode::OK, &json!({ "status": "ready" })),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "not_ready", "reason": format!("database unreachable: {e}") }),
        ),
    }
}

/// How long a scrape waits for the queue statistics before answering with the last known gauges.
const QUEUE_STATS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn metrics(State(ctx): State<Admin>) -> HttpResponse {
    // Queue depth and age are read at scrape time, so they are never staler than the scrape.
    if ctx.db_ready.load(Ordering::SeqCst) {
        let refresh = crate::api::stats::snapshot(&ctx.store, &ctx.metrics);
        match tokio::time::timeout(QUEUE_STATS_TIMEOUT, refresh).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "queue gauges not refreshed"),
            Err(_) => tracing::warn!("queue gauges not refreshed: the database took too long"),
        }
        // The webhook outbox's gauges, the same way.
        let refresh = ctx.store.pending_webhook_notifications();
        match tokio::time::timeout(QUEUE_STATS_TIMEOUT, refresh).await {
            Ok(Ok(endpoints)) => {
                let now = chrono::Utc::now();
                for endpoint in endpoints {
                    let age = endpoint
                        .oldest
                        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
                    ctx.metrics
                        .set_webhook_pending(&endpoint.endpoint, endpoint.pending, age);
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "webhook gauges not refreshed"),
            Err(_) => tracing::warn!("webhook gauges not refreshed: the database took too long"),
        }
    }
    if let Some(archive) = &ctx.archive {
        archive.refresh_metrics();
    }
    with_type(
        StatusCode::OK,
        ctx.metrics.encode(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
}
