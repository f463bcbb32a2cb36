//! `/console/monitoring`: Adobe's indicators per queue with thresholds and states, and charts of the
//! last hour or day; `/console/monitoring/live` is the part the page's script fetches again every
//! `[console] refresh`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::super::ConsoleState;
use super::super::charts::{self, Chart, Range};
use super::super::session::Signed;
use super::super::view::{Frame, number, render, time_or_dash};
use crate::monitoring::{HISTORY_MINUTES, Indicator, Snapshot};
use mc_plugin_api::Queue;

#[derive(Deserialize)]
pub struct RangeQuery {
    range: Option<String>,
}

/// One indicator's row.
#[derive(Serialize)]
struct Row {
    indicator: &'static str,
    label: &'static str,
    unit: &'static str,
    value: String,
    warning: String,
    alert: String,
    state: &'static str,
}

/// One queue's table.
#[derive(Serialize)]
struct QueueTable {
    queue: &'static str,
    title: &'static str,
    rows: Vec<Row>,
    /// The worst state of the queue, for its heading.
    state: &'static str,
}

#[derive(Serialize)]
struct Live {
    window: String,
    computed_at: String,
    error: Option<String>,
    queues: Vec<QueueTable>,
    charts: Vec<Chart>,
    range: &'static str,
}

#[derive(Serialize)]
struct PageView {
    live: Live,
    refresh_ms: u128,
    range: &'static str,
}

fn label(indicator: Indicator) -> (&'static str, &'static str) {
    match indicator {
        Indicator::QueueSize => ("Queue size", "pending events"),
        Indicator::ErrorRate => ("Error rate", "% not sent"),
        Indicator::Throughput => ("Throughput", "sent / hour"),
        Indicator::AvgQueueTime => ("Average queue time", "s, push → linked"),
        Indicator::AvgDeliveryTime => ("Average delivery time", "s, linked → accepted"),
        Indicator::AvgProcessingTime => ("Average processing time", "s, push → accepted"),
    }
}

fn tables(snapshot: &Snapshot) -> Vec<QueueTable> {
    Queue::ALL
        .into_iter()
        .map(|queue| {
            let rows: Vec<Row> = Indicator::ALL
                .into_iter()
                .filter_map(|indicator| snapshot.get(queue, indicator))
                .map(|i| {
                    let (label, unit) = label(i.indicator);
                    let figure = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), number);
                    Row {
                        indicator: i.indicator.as_str(),
                        label,
                        unit,
                        value: figure(i.value),
                        warning: figure(i.warning),
                        alert: figure(i.alert),
                        state: i.state.as_str(),
                    }
                })
                .collect();
            let worst = snapshot
                .indicators
                .iter()
                .filter(|i| i.queue == queue)
                .map(|i| i.state)
                .max()
                .map_or("ok", |s| s.as_str());
            QueueTable {
                queue: queue.as_str(),
                title: match queue {
                    Queue::Realtime => "Real-time queue",
                    Queue::Batch => "Batch queue",
                },
                rows,
                state: worst,
            }
        })
        .collect()
}

fn live(console: &ConsoleState, range: Range) -> Live {
    let snapshot = console.ctx.monitor.snapshot();
    Live {
        window: snapshot.window.clone(),
        computed_at: time_or_dash(snapshot.computed_at),
        error: snapshot.error.clone(),
        queues: tables(&snapshot),
        charts: charts::charts(console.ctx.monitor.history(HISTORY_MINUTES), range),
        range: range.as_str(),
    }
}

/// `GET /console/monitoring?range=hour|day`.
pub async fn page(
    State(console): State<ConsoleState>,
    user: Signed,
    Query(query): Query<RangeQuery>,
) -> Response {
    let range = Range::from_name(query.range.as_deref());
    render(
        &console.pages,
        StatusCode::OK,
        "monitoring.html",
        Some(Frame::new(
            &user,
            console.ctx.archive.is_some(),
            "monitoring",
        )),
        &PageView {
            live: live(&console, range),
            refresh_ms: console.ctx.config.refresh.as_millis(),
            range: range.as_str(),
        },
    )
}

/// `GET /console/monitoring/live?range=…`: the indicators and charts alone, for the page's script.
pub async fn live_fragment(
    State(console): State<ConsoleState>,
    _user: Signed,
    Query(query): Query<RangeQuery>,
) -> Response {
    let range = Range::from_name(query.range.as_deref());
    render(
        &console.pages,
        StatusCode::OK,
        "monitoring_live.html",
        None,
        &live(&console, range),
    )
}
