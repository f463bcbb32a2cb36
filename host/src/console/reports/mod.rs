//! The control instance's reports (Adobe's Message Center reports, docs/console.md "Reports"), from
//! the archive: *service level*, *processing time* and *history of events*. Each is a [`Table`] (what
//! the page shows and the CSV export writes, the same cells) and its charts, over a period and filters
//! ([`scope`]). The figures are monitoring's, read from the archive (`store/reports.rs`).

mod history;
mod processing_time;
pub mod queue_size;
pub mod scope;
mod service_level;
pub mod table;

use chrono::{DateTime, Utc};

use super::charts::Chart;
use crate::store::{Store, StoreError};
pub use scope::{Granularity, ReportForm, Scope};
pub use table::Table;

/// One of the three reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    ServiceLevel,
    ProcessingTime,
    History,
}

impl ReportKind {
    pub const ALL: [ReportKind; 3] = [
        ReportKind::ServiceLevel,
        ReportKind::ProcessingTime,
        ReportKind::History,
    ];

    /// Its path segment under `/console/reports/` and the stem of its CSV file name.
    pub const fn slug(self) -> &'static str {
        match self {
            ReportKind::ServiceLevel => "service-level",
            ReportKind::ProcessingTime => "processing-time",
            ReportKind::History => "history",
        }
    }

    pub fn from_slug(slug: &str) -> Option<ReportKind> {
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }

    pub const fn title(self) -> &'static str {
        match self {
            ReportKind::ServiceLevel => "Service level",
            ReportKind::ProcessingTime => "Processing time",
            ReportKind::History => "History of events",
        }
    }

    /// What the report tells, under its title.
    pub const fn summary(self) -> &'static str {
        match self {
            ReportKind::ServiceLevel => {
                "Incoming events (by push time), messages sent, average sending time (linked → accepted) and error rate (finished events not sent), per period, execution instance and channel."
            }
            ReportKind::ProcessingTime => {
                "Average time in queue (push → linked), sending time (linked → accepted) and processing time (push → accepted) of the events finished in each period, and the queue's size sampled at the end of every minute."
            }
            ReportKind::History => {
                "Events finished in each period, per event type, against those sent, with the other final statuses."
            }
        }
    }
}

/// A built report.
pub struct Report {
    pub table: Table,
    pub charts: Vec<Chart>,
}

/// Builds `kind` over `scope` from the archive; `now` ends the queue-size samples.
pub async fn build(
    store: &Store,
    kind: ReportKind,
    scope: &Scope,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    match kind {
        ReportKind::ServiceLevel => service_level::build(store, scope).await,
        ReportKind::ProcessingTime => processing_time::build(store, scope, now).await,
        ReportKind::History => history::build(store, scope).await,
    }
}

/// Per bucket of the period, in order, a chart point: the bucket's start and one value per series
/// (`None` where the bucket has no value, which leaves a gap in a line).
fn points<T>(
    scope: &Scope,
    by_bucket: &std::collections::BTreeMap<i64, T>,
    values: impl Fn(&T) -> Vec<Option<f64>>,
) -> Vec<(DateTime<Utc>, Vec<Option<f64>>)> {
    by_bucket
        .iter()
        .map(|(bucket, totals)| (scope.bucket_start(*bucket), values(totals)))
        .collect()
}

/// A chart over the period's buckets.
fn chart(scope: &Scope, series: super::charts::PeriodSeries) -> Chart {
    let (first, last) = scope.bucket_range();
    super::charts::period_chart(
        series,
        scope.bucket_start(first),
        scope.bucket_start(last),
        scope.granularity.seconds(),
        scope.granularity.axis_format(),
    )
}

/// An average, for a chart (`None` over nothing).
fn mean(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}
