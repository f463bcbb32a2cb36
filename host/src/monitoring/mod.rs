//! Adobe's Message Center monitoring (SPEC "Monitoring"): per queue, six indicators over a sliding
//! window, each with a warning and an alert threshold.
//!
//! One background task ([`Monitor::run`]) recomputes a [`Snapshot`] every `[monitoring] refresh` from the
//! store (`store/monitoring.rs`: the pending counts and the last minutes' totals; see [`window`]), sets
//! `mc_monitoring_value` and `mc_monitoring_state`, and appends to a day of per-minute [`history`].
//! Readers — `GET /admin/monitoring`, the console — take the last snapshot with [`Monitor::snapshot`]
//! and the charts' samples with [`Monitor::history`]: no reader ever queries the database, so a console
//! refreshing every second costs the pipeline nothing.
//!
//! Every execution instance sharing a database computes the same figures: they describe the database's
//! events, not one process's.

mod history;
mod indicator;
mod window;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use history::{HISTORY_MINUTES, QueueSample, Sample};
pub use indicator::{Indicator, State, Threshold};

use self::history::History;
use self::window::Window;
use crate::config::{MonitoringConfig, ThresholdsConfig};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{MinuteTotals, Store, StoreError};
use mc_plugin_api::Queue;

/// One indicator of one queue, as `GET /admin/monitoring` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IndicatorValue {
    pub queue: Queue,
    pub indicator: Indicator,
    /// `None` when there is nothing to measure (no event finished in the window, for the averages).
    pub value: Option<f64>,
    /// `None` when the indicator has no threshold (throughput, unless set).
    pub warning: Option<f64>,
    pub alert: Option<f64>,
    pub state: State,
}

/// The indicators at one refresh.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The window, as configured (`"1h"`).
    pub window: String,
    /// When the figures were read; `None` before the first refresh.
    pub computed_at: Option<DateTime<Utc>>,
    /// Why the last refresh failed (the figures are then the previous refresh's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub indicators: Vec<IndicatorValue>,
}

impl Snapshot {
    /// The value of one queue's indicator.
    pub fn get(&self, queue: Queue, indicator: Indicator) -> Option<&IndicatorValue> {
        self.indicators
            .iter()
            .find(|i| i.queue == queue && i.indicator == indicator)
    }
}

/// The monitoring of this instance's database. Cheap to share (`Arc`).
pub struct Monitor {
    config: MonitoringConfig,
    store: Store,
    metrics: Metrics,
    snapshot: RwLock<Arc<Snapshot>>,
    state: Mutex<(Window, History)>,
}

impl Monitor {
    /// A monitor with an empty snapshot; [`Monitor::run`] fills it.
    pub fn new(config: MonitoringConfig, store: Store, metrics: Metrics) -> Arc<Self> {
        let minutes = i64::try_from(config.window.as_secs().div_ceil(60)).unwrap_or(i64::MAX);
        let empty = Snapshot {
            window: crate::config::format_duration(config.window),
            computed_at: None,
            error: None,
            indicators: Vec::new(),
        };
        Arc::new(Self {
            config,
            store,
            metrics,
            snapshot: RwLock::new(Arc::new(empty)),
            state: Mutex::new((Window::new(minutes), History::default())),
        })
    }

    /// The last snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The per-minute samples of the last `minutes` minutes (at most a day), oldest first.
    pub fn history(&self, minutes: usize) -> Vec<Sample> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1.last(minutes)
    }

    /// Refreshes every `[monitoring] refresh` until shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.config.refresh.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.recv() => return,
                _ = tick.tick() => {
                    if let Err(error) = self.refresh(Utc::now()).await {
                        tracing::warn!(%error, "monitoring refresh failed; the previous figures stay");
                        let mut snapshot = (*self.snapshot()).clone();
                        snapshot.error = Some(error.to_string());
                        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
                    }
                }
            }
        }
    }

    /// Reads the store and replaces the snapshot.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let minute = now.timestamp().div_euclid(60);
        let (after, from) = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.0.to_read(minute)
        };
        let since = DateTime::from_timestamp(from * 60, 0).unwrap_or(now);
        // The end first: every place up to it is committed (see `Store::finished_minutes`).
        let upto = self.store.archive_feed_end().await?;
        let first = (after == 0).then_some(since);
        let rows = self.store.finished_minutes(after, upto, first).await?;
        let pending = self.store.pending_by_queue().await?;
        let max_key = self.store.max_event_key().await?;
        let pending_of = |queue| {
            pending
                .iter()
                .find(|(q, _)| *q == queue)
                .map_or(0, |(_, n)| *n)
        };
        let indicators = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let (window, history) = &mut *state;
            window.add(minute, upto, rows);
            let sample = |queue| queue_sample(pending_of(queue), &window.minute(queue, minute));
            history.record(
                minute,
                max_key,
                sample(Queue::Realtime),
                sample(Queue::Batch),
            );
            Queue::ALL
                .into_iter()
                .flat_map(|queue| {
                    let values = values(pending_of(queue), &window.total(queue), window.hours());
                    evaluate(queue, values, &self.config.thresholds)
                })
                .collect::<Vec<_>>()
        };
        for i in &indicators {
            self.metrics
                .set_monitoring(i.queue, i.indicator.as_str(), i.value, i.state.level());
        }
        let snapshot = Snapshot {
            window: crate::config::format_duration(self.config.window),
            computed_at: Some(now),
            error: None,
            indicators,
        };
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        Ok(())
    }
}

/// The six values of one queue, from its pending count and its window totals.
fn values(pending: u64, totals: &MinuteTotals, hours: f64) -> [(Indicator, Option<f64>); 6] {
    let average = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
    let error_rate = (totals.finished > 0).then(|| {
        100.0 * (totals.finished - totals.sent.min(totals.finished)) as f64 / totals.finished as f64
    });
    [
        (Indicator::QueueSize, Some(pending as f64)),
        (Indicator::ErrorRate, error_rate),
        (Indicator::Throughput, Some(totals.sent as f64 / hours)),
        (
            Indicator::AvgQueueTime,
            average(totals.queue_seconds, totals.linked),
        ),
        (
            Indicator::AvgDeliveryTime,
            average(totals.delivery_seconds, totals.accepted),
        ),
        (
            Indicator::AvgProcessingTime,
            average(totals.processing_seconds, totals.accepted),
        ),
    ]
}

/// One minute of one queue for the history.
fn queue_sample(pending: u64, minute: &MinuteTotals) -> QueueSample {
    let average = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
    QueueSample {
        queue_size: pending,
        sent: minute.sent,
        errors: minute.finished.saturating_sub(minute.sent),
        avg_queue_time: average(minute.queue_seconds, minute.linked),
        avg_delivery_time: average(minute.delivery_seconds, minute.accepted),
        avg_processing_time: average(minute.processing_seconds, minute.accepted),
    }
}

/// The values with their thresholds and states.
fn evaluate(
    queue: Queue,
    values: [(Indicator, Option<f64>); 6],
    thresholds: &ThresholdsConfig,
) -> Vec<IndicatorValue> {
    values
        .into_iter()
        .map(|(indicator, value)| {
            let threshold = thresholds.for_indicator(queue, indicator);
            IndicatorValue {
                queue,
                indicator,
                value,
                warning: threshold.map(|t| t.warning),
                alert: threshold.map(|t| t.alert),
                state: indicator.state(value, threshold),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
