//! The queries behind the monitoring indicators (SPEC "Monitoring"): the pending count per queue, and
//! per queue and minute of finishing, how many events finished, how many were sent, and the sums of
//! their three times.
//!
//! The timeline is written by the statements that change those rows anyway (migration
//! `m20261202_000301_monitoring_timeline`): push is the event's `created_at`, linked its `linked_at` (set
//! by the statement that links a template), accepted the `accepted_at` of its final `sent` entry (set by
//! the statement that records the relay's answer). The per-minute sums are computed by the database, for
//! the events that finished since the previous refresh only (see [`Store::finished_minutes`]).

use chrono::{DateTime, Utc};
use sea_orm::{FromQueryResult, Statement};

use mc_plugin_api::{EventStatus, Queue};

use super::events::queue_named;
use super::time_sql;
use super::{Store, StoreError};

/// What one queue's events that finished in one minute add to the window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MinuteTotals {
    /// Events that reached a final status.
    pub finished: u64,
    /// Of those, the ones `sent`.
    pub sent: u64,
    /// Events with a first delivery-log entry, and the sum of their push → linked seconds.
    pub linked: u64,
    pub queue_seconds: f64,
    /// Events accepted by the relay or gateway, and the sums of their linked → accepted and
    /// push → accepted seconds.
    pub accepted: u64,
    pub delivery_seconds: f64,
    pub processing_seconds: f64,
}

impl MinuteTotals {
    /// Adds another minute's totals to these.
    pub fn add(&mut self, other: &MinuteTotals) {
        self.finished += other.finished;
        self.sent += other.sent;
        self.linked += other.linked;
        self.queue_seconds += other.queue_seconds;
        self.accepted += other.accepted;
        self.delivery_seconds += other.delivery_seconds;
        self.processing_seconds += other.processing_seconds;
    }
}

/// One row of [`Store::finished_minutes`].
#[derive(Debug, FromQueryResult)]
struct MinuteRow {
    queue: String,
    minute: i64,
    finished: i64,
    sent: Option<i64>,
    linked: i64,
    queue_seconds: Option<f64>,
    accepted: i64,
    delivery_seconds: Option<f64>,
    processing_seconds: Option<f64>,
}

#[derive(Debug, FromQueryResult)]
struct PendingRow {
    queue: String,
    count: i64,
}

#[derive(Debug, FromQueryResult)]
struct MaxId {
    max_id: Option<i64>,
}

impl Store {
    /// Per queue and minute of finishing, the totals of the events that entered the archive feed in
    /// places `after + 1 ..= upto` (read [`Store::archive_feed_end`] first for `upto`) and, when `since`
    /// is given (the first read of a window), finished at or after it. Every event enters the feed once, in the transaction that makes it final, and
    /// the places are handed out under the feed row's lock, so the places up to a committed end are all
    /// committed: a refresh that reads the places after the previous one's end counts each finished
    /// event once, and reads only what finished since (over the `idx_events_archive_feed` index), not
    /// the minutes it already read.
    pub async fn finished_minutes(
        &self,
        after: i64,
        upto: i64,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<(Queue, i64, MinuteTotals)>, StoreError> {
        if upto <= after {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let seconds =
            |later: &str, earlier: &str| time_sql::seconds_between(backend, later, earlier);
        let sql = format!(
            "SELECT e.queue AS queue, {minute} AS minute, COUNT(*) AS finished, \
             SUM(CASE WHEN e.status = '{sent}' THEN 1 ELSE 0 END) AS sent, \
             COUNT(e.linked_at) AS linked, SUM({queue_time}) AS queue_seconds, \
             COUNT(s.id) AS accepted, SUM({delivery_time}) AS delivery_seconds, \
             SUM({processing_time}) AS processing_seconds \
             FROM events e \
             LEFT JOIN delivery_logs s ON s.event_id = e.id AND {is_final} = {yes} AND {status} = '{sent}' \
             WHERE e.archive_seq > {after} AND e.archive_seq <= {upto}{since} \
             GROUP BY e.queue, {minute}",
            minute = time_sql::epoch_bucket(backend, "e.finished_at", 60),
            sent = EventStatus::Sent.as_str(),
            queue_time = seconds("e.linked_at", "e.created_at"),
            delivery_time = seconds("s.accepted_at", "e.linked_at"),
            processing_time = seconds("s.accepted_at", "e.created_at"),
            yes = time_sql::true_literal(backend),
            // The entry of each event by `idx_delivery_logs_event`, on SQLite too.
            is_final = time_sql::not_for_index(backend, "s.is_final"),
            status = time_sql::not_for_index(backend, "s.status"),
            after = time_sql::placeholder(backend, 1),
            upto = time_sql::placeholder(backend, 2),
            // Later refreshes read only new places, whatever their minute: the window drops what is
            // too old, and a `finished_at` term would tempt the planner to that index's whole window.
            since = match since {
                Some(_) => format!(
                    " AND e.finished_at >= {}",
                    time_sql::placeholder(backend, 3)
                ),
                None => String::new(),
            },
        );
        let mut values: Vec<sea_orm::Value> = vec![after.into(), upto.into()];
        if let Some(since) = since {
            values.push(since.into());
        }
        let rows =
            MinuteRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
                .all(&self.db)
                .await
                .map_err(|e| self.error(e))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let queue = queue_named(&row.queue)?;
                Some((
                    queue,
                    row.minute,
                    MinuteTotals {
                        finished: count(row.finished),
                        sent: count(row.sent.unwrap_or(0)),
                        linked: count(row.linked),
                        queue_seconds: row.queue_seconds.unwrap_or(0.0),
                        accepted: count(row.accepted),
                        delivery_seconds: row.delivery_seconds.unwrap_or(0.0),
                        processing_seconds: row.processing_seconds.unwrap_or(0.0),
                    },
                ))
            })
            .collect())
    }

    /// Events `pending` now, per queue (over the `idx_events_claim` index).
    pub async fn pending_by_queue(&self) -> Result<Vec<(Queue, u64)>, StoreError> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "SELECT queue, COUNT(*) AS count FROM events WHERE status = '{}' GROUP BY queue",
            EventStatus::Pending.as_str()
        );
        let rows = PendingRow::find_by_statement(Statement::from_string(backend, sql))
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((queue_named(&r.queue)?, u64::try_from(r.count).unwrap_or(0))))
            .collect())
    }

    /// The highest event row key: the count of events ever accepted, give or take the keys of rolled
    /// back transactions (the console's "events in" chart is the difference between two readings).
    pub async fn max_event_key(&self) -> Result<i64, StoreError> {
        let backend = self.db.get_database_backend();
        let row = MaxId::find_by_statement(Statement::from_string(
            backend,
            "SELECT MAX(id) AS max_id FROM events".to_owned(),
        ))
        .one(&self.db)
        .await
        .map_err(|e| self.error(e))?;
        Ok(row.and_then(|r| r.max_id).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[tokio::test]
    async fn an_empty_store_has_no_minutes_and_nothing_pending() {
        let (_dir, store) = testing::sqlite_store().await;
        let since = Utc::now() - chrono::Duration::hours(1);
        assert!(
            store
                .finished_minutes(0, i64::MAX, Some(since))
                .await
                .expect("query")
                .is_empty()
        );
        assert!(store.pending_by_queue().await.expect("query").is_empty());
        assert_eq!(store.max_event_key().await.expect("query"), 0);
    }
}
