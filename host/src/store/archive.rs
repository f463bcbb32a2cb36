//! The archive, both sides of it.
//!
//! Execution side: the feed (`GET /api/v1/archive/events?after=`) of finished events in the order they
//! became final, its acknowledgement, and the numbering that makes the order safe (see the
//! `archive_feed` migration). Control side: the archived copies of the execution instances' events, the
//! cursor kept per instance, and the queries and report over them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::{Store, StoreError};
use crate::db::entities::event::EventStatus;
use crate::db::entities::{archive_cursor, archive_event, archive_feed, delivery_log, event};

/// The single row of `archive_feed`.
const FEED_ROW: i32 = 1;

/// A position in an execution instance's archive feed: every event up to and including
/// `(seq, row_key)`. Written `"<seq>.<row key>"`; `"0.0"` is the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedCursor {
    pub seq: i64,
    pub row_key: i64,
}

impl fmt::Display for FeedCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.seq, self.row_key)
    }
}

impl FromStr for FeedCursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (seq, row_key) = text.split_once('.').ok_or(())?;
        let seq: i64 = seq.parse().map_err(|_| ())?;
        let row_key: i64 = row_key.parse().map_err(|_| ())?;
        if seq < 0 || row_key < 0 {
            return Err(());
        }
        Ok(FeedCursor { seq, row_key })
    }
}

impl FeedCursor {
    /// The cursor just past `e` (which must be in the feed).
    pub fn of(e: &event::Model) -> Self {
        FeedCursor {
            seq: e.archive_seq.unwrap_or(0),
            row_key: e.id,
        }
    }

    /// Rows strictly after this position.
    fn after(self) -> Condition {
        Condition::any()
            .add(event::Column::ArchiveSeq.gt(self.seq))
            .add(
                Condition::all()
                    .add(event::Column::ArchiveSeq.eq(self.seq))
                    .add(event::Column::Id.gt(self.row_key)),
            )
    }

    /// Rows at or before this position.
    fn up_to(self) -> Condition {
        Condition::any()
            .add(event::Column::ArchiveSeq.lt(self.seq))
            .add(
                Condition::all()
                    .add(event::Column::ArchiveSeq.eq(self.seq))
                    .add(event::Column::Id.lte(self.row_key)),
            )
    }
}

/// One finished event with its delivery log, as the feed serves it.
pub type FeedEntry = (event::Model, Vec<delivery_log::Model>);

/// Filters of `GET /api/v1/archive/events` on the control instance.
#[derive(Clone, Debug, Default)]
pub struct ArchiveFilter {
    pub instance: Option<String>,
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub channel: Option<String>,
    /// Finished at or after.
    pub from: Option<DateTime<Utc>>,
    /// Finished before.
    pub to: Option<DateTime<Utc>>,
    /// Keyset: rows after this (event id, instance name).
    pub after: Option<(i64, String)>,
    pub limit: u64,
}

/// One line of the archive report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRow {
    pub day: String,
    pub template: Option<String>,
    pub channel: String,
    pub status: String,
    pub count: i64,
}

/// What one stored page changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredPage {
    /// Rows new to the archive (a page read twice inserts nothing the second time).
    pub inserted: u64,
    /// Every event archived from this instance so far.
    pub archived_total: i64,
}

/// Why a page could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveStoreError {
    #[error(
        "the archive cursor of `{instance}` is `{stored}`, not `{expected}`: another archiving run moved it; the page is left for that run"
    )]
    CursorMoved {
        instance: String,
        stored: String,
        expected: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Takes the next feed number inside `txn`. The feed row stays locked until `txn` ends, so numbers
    /// are handed out in commit order (see the `archive_feed` migration).
    async fn next_archive_seq(&self, txn: &DatabaseTransaction) -> Result<i64, StoreError> {
        let rows = archive_feed::Entity::update_many()
            .col_expr(
                archive_feed::Column::LastSeq,
                Expr::col(archive_feed::Column::LastSeq).add(1),
            )
            .filter(archive_feed::Column::Id.eq(FEED_ROW))
            .exec_with_returning(txn)
            .await
            .map_err(|e| self.error(e))?;
        rows.first().map(|row| row.last_seq).ok_or_else(|| {
            StoreError::Database(sea_orm::DbErr::RecordNotFound(
                "the archive_feed row is missing; run the migrations".to_owned(),
            ))
        })
    }

    /// Gives the events among `row_keys` that this transaction made final their place in the feed, as
    /// its last statement before the commit, so the feed row stays locked only for that statement and
    /// the commit. Events already in the feed (finalised earlier, possibly by another instance) and events
    /// that are not final (a lost claim) are left alone. Returns how many webhook notifications it wrote:
    /// the caller wakes `webhookDelivery` after its commit when there are some.
    pub(super) async fn enter_archive_feed(
        &self,
        txn: &DatabaseTransaction,
        row_keys: Vec<i64>,
    ) -> Result<u64, StoreError> {
        if row_keys.is_empty() {
            return Ok(0);
        }
        // The webhooks outbox, for exactly the events this statement will number: final, not in the
        // feed yet. Before the feed row is locked, so the lock is held no longer for it.
        let notified = self
            .enqueue_notifications(txn, super::Finished::NewlyFinal(&row_keys))
            .await?;
        let seq = self.next_archive_seq(txn).await?;
        let finals: Vec<&str> = EventStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .map(EventStatus::as_str)
            .collect();
        event::Entity::update_many()
            .col_expr(event::Column::ArchiveSeq, Expr::value(seq))
            .filter(event::Column::Id.is_in(row_keys))
            .filter(event::Column::ArchiveSeq.is_null())
            .filter(event::Column::Status.is_in(finals))
            .exec(txn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(notified)
    }

    /// Moves an event that was already in the feed (and may have been archived) to the feed's end,
    /// after a change to its final status (a bounce turned it `delivery_failed`): the control instance
    /// reads it again past its cursor and replaces its archived copy, and the purge waits for that
    /// acknowledgement again. Like [`Self::enter_archive_feed`], the last statement before the commit.
    pub(super) async fn reenter_archive_feed(
        &self,
        txn: &DatabaseTransaction,
        row_key: i64,
    ) -> Result<(), StoreError> {
        let seq = self.next_archive_seq(txn).await?;
        event::Entity::update_many()
            .col_expr(event::Column::ArchiveSeq, Expr::value(seq))
            .filter(event::Column::Id.eq(row_key))
            .exec(txn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The last place handed out in the feed (0 before the first finished event).
    pub async fn archive_feed_end(&self) -> Result<i64, StoreError> {
        Ok(archive_feed::Entity::find_by_id(FEED_ROW)
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .map_or(0, |row| row.last_seq))
    }

    /// Up to `limit` finished events after `after`, in feed order, each with its delivery log.
    pub async fn archive_feed_page(
        &self,
        after: FeedCursor,
        limit: u64,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        // Read so that an event set apart for its unreadable `ctx` is archived (with `ctx` `null`)
        // rather than stopping the feed.
        let select = super::event_read::select()
            .filter(event::Column::ArchiveSeq.is_not_null())
            .filter(after.after())
            .order_by_asc(event::Column::ArchiveSeq)
            .order_by_asc(event::Column::Id)
            .limit(limit);
        let events: Vec<event::Model> = super::event_read::all(select, &self.db)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|read| read.event)
            .collect();
        let mut by_event: std::collections::HashMap<i64, Vec<delivery_log::Model>> =
            std::collections::HashMap::with_capacity(events.len());
        for log in self.delivery_logs_of(&events).await? {
            by_event.entry(log.event_id).or_default().push(log);
        }
        Ok(events
            .into_iter()
            .map(|e| {
                let logs = by_event.remove(&e.id).unwrap_or_default();
                (e, logs)
            })
            .collect())
    }

    async fn delivery_logs_of(
        &self,
        events: &[event::Model],
    ) -> Result<Vec<delivery_log::Model>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        delivery_log::Entity::find()
            .filter(delivery_log::Column::EventId.is_in(events.iter().map(|e| e.id)))
            .order_by_asc(delivery_log::Column::EventId)
            .order_by_asc(delivery_log::Column::Attempt)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Records that the control instance has read everything up to `upto`. Never moves backwards.
    pub async fn acknowledge_archive(&self, upto: FeedCursor) -> Result<(), StoreError> {
        let _turn = self.write_turn("acknowledge_archive").await;
        archive_feed::Entity::update_many()
            .col_expr(archive_feed::Column::AckedSeq, Expr::value(upto.seq))
            .col_expr(
                archive_feed::Column::AckedEventId,
                Expr::value(upto.row_key),
            )
            .col_expr(archive_feed::Column::AckedAt, Expr::value(Utc::now()))
            .filter(archive_feed::Column::Id.eq(FEED_ROW))
            .filter(
                Condition::any()
                    .add(archive_feed::Column::AckedSeq.lt(upto.seq))
                    .add(
                        Condition::all()
                            .add(archive_feed::Column::AckedSeq.eq(upto.seq))
                            .add(archive_feed::Column::AckedEventId.lt(upto.row_key)),
                    ),
            )
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The acknowledged position of the feed.
    pub async fn archive_acknowledged(&self) -> Result<FeedCursor, StoreError> {
        let row = archive_feed::Entity::find_by_id(FEED_ROW)
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.map_or(FeedCursor::default(), |r| FeedCursor {
            seq: r.acked_seq,
            row_key: r.acked_event_id,
        }))
    }

    /// Deletes up to `limit` finished events (and their delivery logs) that became final before
    /// `finished_before` and, when `acknowledged_only`, that the archive has acknowledged. One
    /// transaction; returns how many events went.
    pub async fn purge_finished_events(
        &self,
        finished_before: DateTime<Utc>,
        acknowledged_only: bool,
        limit: u64,
    ) -> Result<u64, StoreError> {
        let acked = if acknowledged_only {
            Some(self.archive_acknowledged().await?)
        } else {
            None
        };
        let _turn = self.write_turn("purge_finished_events").await;
        let mut query = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event::Column::ArchiveSeq.is_not_null())
            .filter(event::Column::FinishedAt.lt(finished_before))
            .order_by_asc(event::Column::Id)
            .limit(limit);
        if let Some(acked) = acked {
            query = query.filter(acked.up_to());
        }
        let ids: Vec<i64> = query
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        if ids.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        delivery_log::Entity::delete_many()
            .filter(delivery_log::Column::EventId.is_in(ids.iter().copied()))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?;
        let deleted = event::Entity::delete_many()
            .filter(event::Column::Id.is_in(ids))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(deleted)
    }

    // ---- control side ----

    /// The stored cursor of execution instance `instance` (`None` before its first page).
    pub async fn archive_cursor(&self, instance: &str) -> Result<Option<String>, StoreError> {
        Ok(archive_cursor::Entity::find_by_id(instance.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .and_then(|row| row.cursor))
    }

    /// Every instance's archive state.
    pub async fn archive_cursors(&self) -> Result<Vec<archive_cursor::Model>, StoreError> {
        archive_cursor::Entity::find()
            .order_by_asc(archive_cursor::Column::InstanceName)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Stores one page read from `instance` after `after`: inserts the events the archive does not have
    /// yet and moves the cursor to `next_cursor`, in one transaction. The cursor only moves from
    /// `after`, so two runs reading the same page cannot move it backwards.
    pub async fn store_archive_page(
        &self,
        instance: &str,
        after: Option<&str>,
        rows: Vec<archive_event::ActiveModel>,
        next_cursor: &str,
    ) -> Result<StoredPage, ArchiveStoreError> {
        let _turn = self.write_turn("store_archive_page").await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let current = archive_cursor::Entity::find_by_id(instance.to_owned())
            .one(&txn)
            .await
            .map_err(|e| self.error(e))?;
        let stored = current.as_ref().and_then(|c| c.cursor.as_deref());
        if stored != after {
            return Err(ArchiveStoreError::CursorMoved {
                instance: instance.to_owned(),
                stored: stored.unwrap_or("").to_owned(),
                expected: after.unwrap_or("").to_owned(),
            });
        }
        let mut inserted = 0;
        // Moved, not cloned, into the statements: each row carries the event's ctx and delivery log.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<archive_event::ActiveModel> = rows.by_ref().take(200).collect();
            // An event already archived is in the feed again because its final status changed (a
            // bounce turned it `delivery_failed`): its copy is replaced, and it is not counted again.
            let ids: Vec<i64> = chunk
                .iter()
                .filter_map(|row| row.event_id.try_as_ref().copied())
                .collect();
            let known = archive_event::Entity::find()
                .select_only()
                .column(archive_event::Column::EventId)
                .filter(archive_event::Column::InstanceName.eq(instance))
                .filter(archive_event::Column::EventId.is_in(ids))
                .into_tuple::<i64>()
                .all(&txn)
                .await
                .map_err(|e| self.error(e))?
                .len() as u64;
            let rows_in_chunk = chunk.len() as u64;
            archive_event::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([
                        archive_event::Column::InstanceName,
                        archive_event::Column::EventId,
                    ])
                    .update_columns([
                        archive_event::Column::Status,
                        archive_event::Column::DeliveryLogs,
                        archive_event::Column::FinishedAt,
                        archive_event::Column::FinishedDay,
                        archive_event::Column::LinkedAt,
                        archive_event::Column::AcceptedAt,
                        archive_event::Column::ArchivedAt,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(|e| self.error(e))?;
            inserted += rows_in_chunk.saturating_sub(known);
        }
        let archived_total = current.as_ref().map_or(0, |c| c.archived_events)
            + i64::try_from(inserted).unwrap_or(i64::MAX);
        let row = archive_cursor::ActiveModel {
            instance_name: Set(instance.to_owned()),
            cursor: Set(Some(next_cursor.to_owned())),
            archived_events: Set(archived_total),
            last_success_at: Set(Some(now)),
            last_error: Set(current.as_ref().and_then(|c| c.last_error.clone())),
            last_error_at: Set(current.as_ref().and_then(|c| c.last_error_at)),
            updated_at: Set(now),
        };
        archive_cursor::Entity::insert(row)
            .on_conflict(
                OnConflict::column(archive_cursor::Column::InstanceName)
                    .update_columns([
                        archive_cursor::Column::Cursor,
                        archive_cursor::Column::ArchivedEvents,
                        archive_cursor::Column::LastSuccessAt,
                        archive_cursor::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(|e| self.error(e))?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(StoredPage {
            inserted,
            archived_total,
        })
    }

    /// Records why archiving `instance` failed (kept until the next failure; `lastSuccessAt` tells
    /// whether it has recovered since).
    pub async fn record_archive_error(
        &self,
        instance: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn("record_archive_error").await;
        let now = Utc::now();
        let row = archive_cursor::ActiveModel {
            instance_name: Set(instance.to_owned()),
            cursor: Set(None),
            archived_events: Set(0),
            last_success_at: Set(None),
            last_error: Set(Some(error.to_owned())),
            last_error_at: Set(Some(now)),
            updated_at: Set(now),
        };
        archive_cursor::Entity::insert(row)
            .on_conflict(
                OnConflict::column(archive_cursor::Column::InstanceName)
                    .update_columns([
                        archive_cursor::Column::LastError,
                        archive_cursor::Column::LastErrorAt,
                        archive_cursor::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// A page of archived events, by (event id, instance).
    pub async fn query_archive(
        &self,
        filter: &ArchiveFilter,
    ) -> Result<Vec<archive_event::Model>, StoreError> {
        let mut query = archive_event::Entity::find()
            .filter(archive_filter(filter))
            .order_by_asc(archive_event::Column::EventId)
            .order_by_asc(archive_event::Column::InstanceName)
            .limit(filter.limit);
        if let Some((id, instance)) = &filter.after {
            query = query.filter(
                Condition::any()
                    .add(archive_event::Column::EventId.gt(*id))
                    .add(
                        Condition::all()
                            .add(archive_event::Column::EventId.eq(*id))
                            .add(archive_event::Column::InstanceName.gt(instance.as_str())),
                    ),
            );
        }
        query.all(&self.db).await.map_err(|e| self.error(e))
    }

    /// Archived events counted by day, template, channel and status.
    pub async fn archive_report(
        &self,
        filter: &ArchiveFilter,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows: Vec<(String, Option<String>, String, String, i64)> =
            archive_event::Entity::find()
                .select_only()
                .column(archive_event::Column::FinishedDay)
                .column(archive_event::Column::TemplateName)
                .column(archive_event::Column::Channel)
                .column(archive_event::Column::Status)
                .column_as(archive_event::Column::EventId.count(), "count")
                .filter(archive_filter(filter))
                .group_by(archive_event::Column::FinishedDay)
                .group_by(archive_event::Column::TemplateName)
                .group_by(archive_event::Column::Channel)
                .group_by(archive_event::Column::Status)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(|e| self.error(e))?;
        // Sorted here rather than by the database: the backends order NULL templates differently.
        let mut rows: Vec<ReportRow> = rows
            .into_iter()
            .map(|(day, template, channel, status, count)| ReportRow {
                day,
                template,
                channel,
                status,
                count,
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.day, &a.template, &a.channel, &a.status).cmp(&(
                &b.day,
                &b.template,
                &b.channel,
                &b.status,
            ))
        });
        Ok(rows)
    }
}

fn archive_filter(filter: &ArchiveFilter) -> Condition {
    let mut condition = Condition::all();
    if let Some(instance) = &filter.instance {
        condition = condition.add(archive_event::Column::InstanceName.eq(instance.as_str()));
    }
    if let Some(status) = &filter.status {
        condition = condition.add(archive_event::Column::Status.eq(status.as_str()));
    }
    if let Some(event_type) = &filter.event_type {
        condition = condition.add(archive_event::Column::EventType.eq(event_type.as_str()));
    }
    if let Some(channel) = &filter.channel {
        condition = condition.add(archive_event::Column::Channel.eq(channel.as_str()));
    }
    if let Some(from) = filter.from {
        condition = condition.add(archive_event::Column::FinishedAt.gte(from));
    }
    if let Some(to) = filter.to {
        condition = condition.add(archive_event::Column::FinishedAt.lt(to));
    }
    condition
}

#[cfg(test)]
mod tests;
