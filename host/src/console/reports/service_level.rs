//! *Service level*: per period, execution instance and channel, the incoming events (counted in the
//! period they were pushed), the messages sent and the error rate (counted in the period the events
//! became final, as monitoring's `error_rate` and `throughput`), and the average sending time
//! (linked → accepted, monitoring's `avg_delivery_time`).

use std::collections::BTreeMap;

use super::super::charts::{Drawn, PeriodSeries};
use super::table::{Table, average, count, figure, per_hour, percent, text};
use super::{Report, Scope, chart, mean, points};
use crate::store::{MAX_GROUPS, MinuteTotals, Store, StoreError};

#[derive(Default)]
struct Line {
    incoming: u64,
    totals: MinuteTotals,
}

impl Line {
    /// Finished events not `sent` (monitoring's `error_rate` counts these).
    fn errors(&self) -> u64 {
        self.totals.finished.saturating_sub(self.totals.sent)
    }
}

pub async fn build(store: &Store, scope: &Scope) -> Result<Report, StoreError> {
    let incoming = store.report_incoming(&scope.store).await?;
    let outcomes = store.report_outcomes(&scope.store).await?;
    let truncated = incoming.len() >= MAX_GROUPS || outcomes.len() >= MAX_GROUPS;
    let mut lines: BTreeMap<(i64, String, String), Line> = BTreeMap::new();
    let mut buckets: BTreeMap<i64, Line> = BTreeMap::new();
    let mut total = Line::default();
    for group in incoming {
        let key = (group.key.bucket, group.key.instance, group.key.channel);
        lines.entry(key).or_default().incoming += group.pushed;
        buckets.entry(group.key.bucket).or_default().incoming += group.pushed;
        total.incoming += group.pushed;
    }
    for group in outcomes {
        let key = (group.key.bucket, group.key.instance, group.key.channel);
        lines.entry(key).or_default().totals.add(&group.totals);
        buckets
            .entry(group.key.bucket)
            .or_default()
            .totals
            .add(&group.totals);
        total.totals.add(&group.totals);
    }
    let cells = |line: &Line, hours: f64| {
        let errors = line.errors();
        vec![
            count(line.incoming),
            count(line.totals.sent),
            per_hour(line.totals.sent, hours),
            average(line.totals.delivery_seconds, line.totals.accepted),
            count(errors),
            percent(errors, line.totals.finished),
        ]
    };
    let rows = lines
        .iter()
        .map(|((bucket, instance, channel), line)| {
            let mut row = vec![
                scope.period_name(*bucket),
                instance.clone(),
                channel.clone(),
            ];
            row.extend(cells(line, scope.bucket_hours()));
            row
        })
        .collect();
    let mut total_row = vec!["Total".to_owned(), String::new(), String::new()];
    total_row.extend(cells(&total, scope.hours()));
    let table = Table {
        columns: vec![
            text("period", "Period (UTC)"),
            text("instance", "Execution instance"),
            text("channel", "Channel"),
            figure("incoming", "Incoming events"),
            figure("sent", "Messages sent"),
            figure("sent_per_hour", "Sent / hour"),
            figure("avg_sending_time", "Avg sending time (s)"),
            figure("errors", "Errors"),
            figure("error_rate", "Error rate (%)"),
        ],
        rows,
        total: total_row,
        truncated,
    };
    let charts = vec![
        chart(
            scope,
            PeriodSeries {
                id: "volumes",
                title: "Events and messages",
                unit: "per period",
                drawn: Drawn::Bars,
                lines: vec![
                    ("incoming", "s-in"),
                    ("sent", "s-realtime"),
                    ("errors", "s-err"),
                ],
                points: points(scope, &buckets, |l| {
                    vec![
                        Some(l.incoming as f64),
                        Some(l.totals.sent as f64),
                        Some(l.errors() as f64),
                    ]
                }),
            },
        ),
        chart(
            scope,
            PeriodSeries {
                id: "sending_time",
                title: "Average sending time",
                unit: "s, linked → accepted",
                drawn: Drawn::Lines,
                lines: vec![("sending time", "s-batch")],
                points: points(scope, &buckets, |l| {
                    vec![mean(l.totals.delivery_seconds, l.totals.accepted)]
                }),
            },
        ),
    ];
    Ok(Report { table, charts })
}
