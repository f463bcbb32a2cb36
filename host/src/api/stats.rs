//! `GET /api/v1/stats`: counts by queue and status, queue depth and the age of the oldest pending event.
//! The same snapshot refreshes the queue gauges of `/metrics`.

use axum::extract::State;
use chrono::Utc;
use hyper::StatusCode;
use mc_plugin_api::Queue;
use serde_json::{Map, json};

use super::Api;
use crate::error::ApiError;
use crate::http::response::{HttpResponse, json_response};
use crate::metrics::Metrics;
use crate::store::{QueueStats, Store, StoreError};

/// One queue's counts and the age of its oldest pending event, in seconds.
pub struct QueueSnapshot {
    pub queue: Queue,
    pub stats: QueueStats,
    pub oldest_pending_age_seconds: Option<f64>,
}

/// Reads the queue statistics and updates the queue gauges with them.
pub async fn snapshot(store: &Store, metrics: &Metrics) -> Result<Vec<QueueSnapshot>, StoreError> {
    let now = Utc::now();
    Ok(store
        .queue_stats()
        .await?
        .into_iter()
        .map(|(queue, stats)| {
            let age = stats
                .oldest_pending
                .map(|oldest| (now - oldest).num_milliseconds().max(0) as f64 / 1000.0);
            metrics.set_queue_gauges(
                queue,
                stats.depth(),
                age.map(std::time::Duration::from_secs_f64),
            );
            QueueSnapshot {
                queue,
                stats,
                oldest_pending_age_seconds: age,
            }
        })
        .collect())
}

pub async fn get(State(ctx): State<Api>) -> Result<HttpResponse, ApiError> {
    let mut queues = Map::new();
    for s in snapshot(&ctx.store, &ctx.metrics).await? {
        queues.insert(
            s.queue.as_str().to_owned(),
            json!({
                "depth": s.stats.depth(),
                "oldestPendingAgeSeconds": s.oldest_pending_age_seconds,
                "byStatus": s.stats.by_status,
            }),
        );
    }
    Ok(json_response(StatusCode::OK, &json!({ "queues": queues })))
}
