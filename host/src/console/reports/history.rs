//! *History of events*: per period (the events became final in it) and event type, the events against
//! those sent, with the other final statuses (SPEC "Event statuses").

use std::collections::BTreeMap;

use super::super::charts::{Drawn, PeriodSeries};
use super::table::{Table, count, figure, percent, text};
use super::{Report, Scope, chart, points};
use crate::store::{MAX_GROUPS, MinuteTotals, OtherStatuses, Store, StoreError};

#[derive(Default)]
struct Line {
    totals: MinuteTotals,
    others: OtherStatuses,
}

impl Line {
    fn add(&mut self, totals: &MinuteTotals, others: &OtherStatuses) {
        self.totals.add(totals);
        self.others.add(others);
    }
}

pub async fn build(store: &Store, scope: &Scope) -> Result<Report, StoreError> {
    let outcomes = store.report_outcomes(&scope.store).await?;
    let truncated = outcomes.len() >= MAX_GROUPS;
    let mut lines: BTreeMap<(i64, String), Line> = BTreeMap::new();
    let mut buckets: BTreeMap<i64, Line> = BTreeMap::new();
    let mut total = Line::default();
    for group in &outcomes {
        lines
            .entry((group.key.bucket, group.key.event_type.clone()))
            .or_default()
            .add(&group.totals, &group.others);
        buckets
            .entry(group.key.bucket)
            .or_default()
            .add(&group.totals, &group.others);
        total.add(&group.totals, &group.others);
    }
    let cells = |l: &Line| {
        vec![
            count(l.totals.finished),
            count(l.totals.sent),
            count(l.others.ignored),
            count(l.others.delivery_failed),
            count(l.others.not_taken_into_account),
            count(l.others.expired),
            percent(l.totals.sent, l.totals.finished),
        ]
    };
    let rows = lines
        .iter()
        .map(|((bucket, event_type), line)| {
            let mut row = vec![scope.period_name(*bucket), event_type.clone()];
            row.extend(cells(line));
            row
        })
        .collect();
    let mut total_row = vec!["Total".to_owned(), String::new()];
    total_row.extend(cells(&total));
    let table = Table {
        columns: vec![
            text("period", "Period (UTC)"),
            text("type", "Event type"),
            figure("events", "Events"),
            figure("sent", "Sent"),
            figure("ignored", "Ignored"),
            figure("delivery_failed", "Delivery failed"),
            figure("not_taken_into_account", "Not taken into account"),
            figure("expired", "Expired"),
            figure("sent_rate", "Sent (%)"),
        ],
        rows,
        total: total_row,
        truncated,
    };
    let charts = vec![chart(
        scope,
        PeriodSeries {
            id: "events_sent",
            title: "Events against sent",
            unit: "per period",
            drawn: Drawn::Bars,
            lines: vec![("events", "s-in"), ("sent", "s-realtime")],
            points: points(scope, &buckets, |l| {
                vec![Some(l.totals.finished as f64), Some(l.totals.sent as f64)]
            }),
        },
    )];
    Ok(Report { table, charts })
}
