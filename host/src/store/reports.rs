//! The queries behind the control instance's reports (docs/console.md "Reports"): aggregates over the
//! archive (`archive_events`), grouped by a time bucket computed by the database (an hour or a UTC
//! day, see [`time_sql::epoch_bucket`]), execution instance, channel and event type.
//!
//! The figures are monitoring's ([`MinuteTotals`], `store/monitoring.rs`) read from the archive instead
//! of the live tables: push is `created_at`, linked `linked_at`, accepted `accepted_at` (the final
//! `sent` delivery's), so queue time is push → linked, sending time linked → accepted and processing
//! time push → accepted. Every query is bounded by the period, and the grouped ones by [`MAX_GROUPS`].

use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, FromQueryResult, Statement, Value};

use mc_plugin_api::{Channel, EventStatus};

use super::monitoring::MinuteTotals;
use super::time_sql;
use super::{Store, StoreError};

/// Most groups one report query returns; a period with more (many event types over many hours) is
/// cut, and the report says so.
pub const MAX_GROUPS: usize = 20_000;

/// The period and filters of a report.
#[derive(Clone, Debug)]
pub struct ReportScope {
    /// At or after.
    pub from: DateTime<Utc>,
    /// Before.
    pub to: DateTime<Utc>,
    /// The bucket length: 3600 (hours) or 86 400 (UTC days).
    pub bucket_seconds: i64,
    pub instance: Option<String>,
    pub channel: Option<Channel>,
    pub event_type: Option<String>,
}

/// Which execution instance, channel and event type a group counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    /// The bucket number (Unix seconds / `bucket_seconds`).
    pub bucket: i64,
    pub instance: String,
    pub channel: String,
    pub event_type: String,
}

/// How many events of a group ended in each final status other than `sent` (`MinuteTotals::sent`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtherStatuses {
    pub ignored: u64,
    pub delivery_failed: u64,
    pub not_taken_into_account: u64,
    pub expired: u64,
}

impl OtherStatuses {
    pub fn add(&mut self, other: &OtherStatuses) {
        self.ignored += other.ignored;
        self.delivery_failed += other.delivery_failed;
        self.not_taken_into_account += other.not_taken_into_account;
        self.expired += other.expired;
    }
}

/// The archived events of one group that became final in its bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeGroup {
    pub key: GroupKey,
    pub totals: MinuteTotals,
    pub others: OtherStatuses,
}

/// The archived events of one group pushed in its bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingGroup {
    pub key: GroupKey,
    pub pushed: u64,
}

/// What the queue's size over the period is computed from: events already waiting when it began, and
/// per minute (Unix seconds / 60) how many joined the queue (pushed) and how many left it (linked to
/// a template, or final without ever being linked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueMoves {
    pub waiting_at_start: u64,
    pub pushed: Vec<(i64, u64)>,
    pub left: Vec<(i64, u64)>,
}

#[derive(Debug, FromQueryResult)]
struct OutcomeRow {
    bucket: i64,
    instance_name: String,
    channel: String,
    event_type: String,
    finished: i64,
    sent: Option<i64>,
    ignored: Option<i64>,
    delivery_failed: Option<i64>,
    not_taken: Option<i64>,
    expired: Option<i64>,
    linked: i64,
    queue_seconds: Option<f64>,
    accepted: i64,
    delivery_seconds: Option<f64>,
    processing_seconds: Option<f64>,
}

#[derive(Debug, FromQueryResult)]
struct IncomingRow {
    bucket: i64,
    instance_name: String,
    channel: String,
    event_type: String,
    count: i64,
}

#[derive(Debug, FromQueryResult)]
struct MinuteCount {
    minute: i64,
    count: i64,
}

#[derive(Debug, FromQueryResult)]
struct Count {
    count: i64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// When an event left the queue: linked to a template, or final without a link.
const LEFT_QUEUE: &str = "COALESCE(linked_at, finished_at)";

/// A `WHERE` clause and its values: `column` in the period, and the scope's filters.
struct Where {
    backend: DbBackend,
    sql: String,
    values: Vec<Value>,
}

impl Where {
    fn new(backend: DbBackend) -> Self {
        Where {
            backend,
            sql: String::new(),
            values: Vec::new(),
        }
    }

    /// Adds `<expression> <op> ?`.
    fn and(&mut self, expression: &str, op: &str, value: Value) {
        self.values.push(value);
        let placeholder = time_sql::placeholder(self.backend, self.values.len());
        let joiner = if self.sql.is_empty() { "WHERE" } else { " AND" };
        self.sql
            .push_str(&format!("{joiner} {expression} {op} {placeholder}"));
    }

    /// `column` in `[from, to)` and the filters of `scope`.
    fn scoped(backend: DbBackend, column: &str, scope: &ReportScope) -> Self {
        let mut clause = Where::new(backend);
        clause.and(column, ">=", scope.from.into());
        clause.and(column, "<", scope.to.into());
        clause.filters(scope);
        clause
    }

    fn filters(&mut self, scope: &ReportScope) {
        if let Some(instance) = &scope.instance {
            self.and("instance_name", "=", instance.clone().into());
        }
        if let Some(channel) = scope.channel {
            self.and("channel", "=", channel.as_str().into());
        }
        if let Some(event_type) = &scope.event_type {
            self.and("event_type", "=", event_type.clone().into());
        }
    }

    fn statement(self, select: String) -> Statement {
        Statement::from_sql_and_values(self.backend, format!("{select} {}", self.sql), self.values)
    }
}

impl Store {
    /// The archived events that became final in the period, per bucket, instance, channel and type:
    /// counts per status and the sums of their three times.
    pub async fn report_outcomes(
        &self,
        scope: &ReportScope,
    ) -> Result<Vec<OutcomeGroup>, StoreError> {
        let backend = self.db.get_database_backend();
        let seconds =
            |later: &str, earlier: &str| time_sql::seconds_between(backend, later, earlier);
        let status_count = |status: EventStatus| {
            format!(
                "SUM(CASE WHEN status = '{}' THEN 1 ELSE 0 END)",
                status.as_str()
            )
        };
        let bucket = time_sql::epoch_bucket(backend, "finished_at", scope.bucket_seconds);
        let select = format!(
            "SELECT {bucket} AS bucket, instance_name, channel, event_type, COUNT(*) AS finished, \
             {sent} AS sent, {ignored} AS ignored, {failed} AS delivery_failed, \
             {not_taken} AS not_taken, {expired} AS expired, \
             COUNT(linked_at) AS linked, SUM({queue_time}) AS queue_seconds, \
             COUNT(accepted_at) AS accepted, SUM({delivery_time}) AS delivery_seconds, \
             SUM({processing_time}) AS processing_seconds \
             FROM archive_events",
            sent = status_count(EventStatus::Sent),
            ignored = status_count(EventStatus::Ignored),
            failed = status_count(EventStatus::DeliveryFailed),
            not_taken = status_count(EventStatus::NotTakenIntoAccount),
            expired = status_count(EventStatus::Expired),
            queue_time = seconds("linked_at", "created_at"),
            delivery_time = seconds("accepted_at", "linked_at"),
            processing_time = seconds("accepted_at", "created_at"),
        );
        let mut clause = Where::scoped(backend, "finished_at", scope);
        clause.sql.push_str(&format!(
            " GROUP BY {bucket}, instance_name, channel, event_type LIMIT {MAX_GROUPS}"
        ));
        let rows = OutcomeRow::find_by_statement(clause.statement(select))
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let mut groups: Vec<OutcomeGroup> = rows
            .into_iter()
            .map(|row| OutcomeGroup {
                key: GroupKey {
                    bucket: row.bucket,
                    instance: row.instance_name,
                    channel: row.channel,
                    event_type: row.event_type,
                },
                totals: MinuteTotals {
                    finished: count(row.finished),
                    sent: count(row.sent.unwrap_or(0)),
                    linked: count(row.linked),
                    queue_seconds: row.queue_seconds.unwrap_or(0.0),
                    accepted: count(row.accepted),
                    delivery_seconds: row.delivery_seconds.unwrap_or(0.0),
                    processing_seconds: row.processing_seconds.unwrap_or(0.0),
                },
                others: OtherStatuses {
                    ignored: count(row.ignored.unwrap_or(0)),
                    delivery_failed: count(row.delivery_failed.unwrap_or(0)),
                    not_taken_into_account: count(row.not_taken.unwrap_or(0)),
                    expired: count(row.expired.unwrap_or(0)),
                },
            })
            .collect();
        // Sorted here: the same order on both backends.
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(groups)
    }

    /// The archived events pushed in the period, per bucket, instance, channel and type.
    pub async fn report_incoming(
        &self,
        scope: &ReportScope,
    ) -> Result<Vec<IncomingGroup>, StoreError> {
        let backend = self.db.get_database_backend();
        let bucket = time_sql::epoch_bucket(backend, "created_at", scope.bucket_seconds);
        let select = format!(
            "SELECT {bucket} AS bucket, instance_name, channel, event_type, COUNT(*) AS count \
             FROM archive_events"
        );
        let mut clause = Where::scoped(backend, "created_at", scope);
        clause.sql.push_str(&format!(
            " GROUP BY {bucket}, instance_name, channel, event_type LIMIT {MAX_GROUPS}"
        ));
        let rows = IncomingRow::find_by_statement(clause.statement(select))
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let mut groups: Vec<IncomingGroup> = rows
            .into_iter()
            .map(|row| IncomingGroup {
                key: GroupKey {
                    bucket: row.bucket,
                    instance: row.instance_name,
                    channel: row.channel,
                    event_type: row.event_type,
                },
                pushed: count(row.count),
            })
            .collect();
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(groups)
    }

    /// The queue's moves over the period, per minute (at most one row per minute of the period).
    pub async fn report_queue_moves(&self, scope: &ReportScope) -> Result<QueueMoves, StoreError> {
        let backend = self.db.get_database_backend();
        let mut waiting = Where::new(backend);
        waiting.and("created_at", "<", scope.from.into());
        waiting.and(LEFT_QUEUE, ">=", scope.from.into());
        waiting.filters(scope);
        let waiting_at_start = Count::find_by_statement(
            waiting.statement("SELECT COUNT(*) AS count FROM archive_events".to_owned()),
        )
        .one(&self.db)
        .await
        .map_err(|e| self.error(e))?
        .map_or(0, |row| count(row.count));
        let mut per_minute = Vec::with_capacity(2);
        for column in ["created_at", LEFT_QUEUE] {
            let minute = time_sql::epoch_bucket(backend, column, 60);
            let mut clause = Where::scoped(backend, column, scope);
            clause.sql.push_str(&format!(" GROUP BY {minute}"));
            let rows = MinuteCount::find_by_statement(clause.statement(format!(
                "SELECT {minute} AS minute, COUNT(*) AS count FROM archive_events"
            )))
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
            let mut rows: Vec<(i64, u64)> = rows
                .into_iter()
                .map(|r| (r.minute, count(r.count)))
                .collect();
            rows.sort_unstable();
            per_minute.push(rows);
        }
        let left = per_minute.pop().unwrap_or_default();
        let pushed = per_minute.pop().unwrap_or_default();
        Ok(QueueMoves {
            waiting_at_start,
            pushed,
            left,
        })
    }
}

#[cfg(test)]
mod tests;
