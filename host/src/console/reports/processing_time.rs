//! *Processing time*: per period, over the events that became final in it, the average time in queue
//! (push → linked), sending time (linked → accepted) and processing time (push → accepted), the
//! definitions of monitoring's `avg_queue_time`, `avg_delivery_time` and `avg_processing_time`; and the
//! queue's size, sampled at the end of every minute of the period ([`super::queue_size`]): its
//! largest, smallest and average value.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::super::charts::{Drawn, PeriodSeries};
use super::super::view::number;
use super::queue_size::{self, QueueSize};
use super::table::{Table, average, count, figure, text};
use super::{Report, Scope, chart, mean, points};
use crate::store::{MAX_GROUPS, MinuteTotals, Store, StoreError};

#[derive(Default)]
struct Line {
    totals: MinuteTotals,
    queue: Option<QueueSize>,
}

pub async fn build(store: &Store, scope: &Scope, now: DateTime<Utc>) -> Result<Report, StoreError> {
    let outcomes = store.report_outcomes(&scope.store).await?;
    let moves = store.report_queue_moves(&scope.store).await?;
    let truncated = outcomes.len() >= MAX_GROUPS;
    let mut buckets: BTreeMap<i64, Line> = BTreeMap::new();
    let mut total = MinuteTotals::default();
    for group in &outcomes {
        buckets
            .entry(group.key.bucket)
            .or_default()
            .totals
            .add(&group.totals);
        total.add(&group.totals);
    }
    let end = scope.store.to.min(now);
    let sizes = queue_size::per_bucket(&moves, scope.store.from, end, scope.granularity.seconds());
    let mut samples = (0u64, u64::MAX, 0f64, 0usize);
    for (bucket, size) in sizes {
        samples.0 = samples.0.max(size.max);
        samples.1 = samples.1.min(size.min);
        samples.2 += size.average;
        samples.3 += 1;
        buckets.entry(bucket).or_default().queue = Some(size);
    }
    // The period's queue size: the extremes of its buckets, and their mean (each bucket's samples are
    // every minute of it, so the mean of the buckets weighs a partial first or last bucket as a whole).
    let overall = (samples.3 > 0).then(|| QueueSize {
        max: samples.0,
        min: samples.1,
        average: samples.2 / samples.3 as f64,
    });
    let cells = |totals: &MinuteTotals, queue: Option<QueueSize>| {
        let size = |f: fn(&QueueSize) -> String| queue.as_ref().map_or_else(|| "—".to_owned(), f);
        vec![
            count(totals.finished),
            average(totals.queue_seconds, totals.linked),
            average(totals.delivery_seconds, totals.accepted),
            average(totals.processing_seconds, totals.accepted),
            size(|q| q.max.to_string()),
            size(|q| q.min.to_string()),
            size(|q| number(q.average)),
        ]
    };
    let rows = buckets
        .iter()
        .map(|(bucket, line)| {
            let mut row = vec![scope.period_name(*bucket)];
            row.extend(cells(&line.totals, line.queue));
            row
        })
        .collect();
    let mut total_row = vec!["Total".to_owned()];
    total_row.extend(cells(&total, overall));
    let table = Table {
        columns: vec![
            text("period", "Period (UTC)"),
            figure("events", "Events finished"),
            figure("avg_queue_time", "Avg time in queue (s)"),
            figure("avg_sending_time", "Avg sending time (s)"),
            figure("avg_processing_time", "Avg processing time (s)"),
            figure("queued_max", "Queued events max"),
            figure("queued_min", "Queued events min"),
            figure("queued_avg", "Queued events avg"),
        ],
        rows,
        total: total_row,
        truncated,
    };
    let charts = vec![
        chart(
            scope,
            PeriodSeries {
                id: "times",
                title: "Average times",
                unit: "s",
                drawn: Drawn::Lines,
                lines: vec![
                    ("in queue", "s-in"),
                    ("sending", "s-realtime"),
                    ("processing", "s-batch"),
                ],
                points: points(scope, &buckets, |l| {
                    vec![
                        mean(l.totals.queue_seconds, l.totals.linked),
                        mean(l.totals.delivery_seconds, l.totals.accepted),
                        mean(l.totals.processing_seconds, l.totals.accepted),
                    ]
                }),
            },
        ),
        chart(
            scope,
            PeriodSeries {
                id: "queued",
                title: "Queued events",
                unit: "events waiting",
                drawn: Drawn::Lines,
                lines: vec![("max", "s-err"), ("average", "s-batch")],
                points: points(scope, &buckets, |l| {
                    vec![l.queue.map(|q| q.max as f64), l.queue.map(|q| q.average)]
                }),
            },
        ),
    ];
    Ok(Report { table, charts })
}
