//! What the API reads and re-sends: the history of an endpoint's notifications with every attempt
//! (`GET /api/v1/webhooks/{name}/deliveries`), one retried (`…/retry`), a time range replayed
//! (`…/replay`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mc_plugin_api::{EventStatus, NotificationStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::db::entities::{
    delivery_log, event, webhook_attempt, webhook_endpoint, webhook_notification,
};
use crate::store::{Store, StoreError};

/// Filters of the history page.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub status: Option<NotificationStatus>,
    /// The page after this notification id in the list's order: greater ids, or lower ones when
    /// `newest_first`.
    pub after: Option<i64>,
    pub limit: u64,
    /// Newest first (the console) instead of oldest first (the API).
    pub newest_first: bool,
}

/// One notification of the history, with its event's public id and every attempt, oldest first.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub notification: webhook_notification::Model,
    pub event_public_id: i64,
    pub attempts: Vec<webhook_attempt::Model>,
}

impl Store {
    /// A page of `endpoint`'s notifications in id order (descending when `filter.newest_first`).
    pub async fn webhook_history(
        &self,
        endpoint: &webhook_endpoint::Model,
        filter: &HistoryFilter,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut select = webhook_notification::Entity::find()
            .filter(webhook_notification::Column::EndpointId.eq(endpoint.id))
            .limit(filter.limit);
        select = if filter.newest_first {
            select.order_by_desc(webhook_notification::Column::Id)
        } else {
            select.order_by_asc(webhook_notification::Column::Id)
        };
        if let Some(status) = filter.status {
            select = select.filter(webhook_notification::Column::Status.eq(status.as_str()));
        }
        if let Some(after) = filter.after {
            select = select.filter(if filter.newest_first {
                webhook_notification::Column::Id.lt(after)
            } else {
                webhook_notification::Column::Id.gt(after)
            });
        }
        let notifications = select.all(&self.db).await.map_err(|e| self.error(e))?;
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempts: HashMap<i64, Vec<webhook_attempt::Model>> = HashMap::new();
        for attempt in webhook_attempt::Entity::find()
            .filter(
                webhook_attempt::Column::NotificationId.is_in(notifications.iter().map(|n| n.id)),
            )
            .order_by_asc(webhook_attempt::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?
        {
            attempts
                .entry(attempt.notification_id)
                .or_default()
                .push(attempt);
        }
        let instances = self
            .event_instances(notifications.iter().map(|n| n.event_id))
            .await?;
        Ok(notifications
            .into_iter()
            .map(|notification| HistoryEntry {
                event_public_id: event::public_id(
                    instances.get(&notification.event_id).copied().unwrap_or(0),
                    notification.event_id,
                ),
                attempts: attempts.remove(&notification.id).unwrap_or_default(),
                notification,
            })
            .collect())
    }

    /// Makes notification `id` of `endpoint` due now again, whatever became of it (a `delivered` one is
    /// sent once more, with the same id and body). Whether there is such a notification.
    pub async fn retry_webhook_notification(
        &self,
        endpoint: &webhook_endpoint::Model,
        id: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn("retry_webhook_notification").await;
        let now = Utc::now();
        let changed = webhook_notification::Entity::update_many()
            .col_expr(
                webhook_notification::Column::Status,
                Expr::value(NotificationStatus::Pending.as_str()),
            )
            .col_expr(
                webhook_notification::Column::NextAttemptAt,
                Expr::value(now),
            )
            .col_expr(
                webhook_notification::Column::FinishedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook_notification::Column::Id.eq(id))
            .filter(webhook_notification::Column::EndpointId.eq(endpoint.id))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        if changed > 0 {
            self.webhooks_written();
        }
        Ok(changed > 0)
    }

    /// Writes a new notification (new id) to `endpoint` for each event that became final in
    /// `[from, to)` with a status of a type it subscribes to: one `INSERT … SELECT`. Returns how many.
    pub async fn replay_webhook(
        &self,
        endpoint: &webhook_endpoint::Model,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn("replay_webhook").await;
        let now = Utc::now();
        let backend = self.db.get_database_backend();
        let type_expr = super::outbox::type_of_status(backend);
        let finals: Vec<&str> = EventStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .map(EventStatus::as_str)
            .collect();
        let mut select = Query::select();
        select
            .expr(Expr::val(endpoint.id))
            .expr(Expr::col((event::Entity, event::Column::Id)))
            .expr(type_expr.clone())
            .expr(Expr::val(NotificationStatus::Pending.as_str()))
            .expr(Expr::val(0))
            .expr(Expr::val(now))
            .expr(Expr::val(now))
            .from(event::Entity)
            .and_where(Expr::col((event::Entity, event::Column::Status)).is_in(finals))
            .and_where(Expr::col((event::Entity, event::Column::FinishedAt)).gte(from))
            .and_where(Expr::col((event::Entity, event::Column::FinishedAt)).lt(to))
            .and_where(super::outbox::subscribed(
                backend,
                Expr::val(endpoint.events.clone()),
                type_expr,
            ));
        let mut insert = Query::insert();
        insert
            .into_table(webhook_notification::Entity)
            .columns([
                webhook_notification::Column::EndpointId,
                webhook_notification::Column::EventId,
                webhook_notification::Column::EventType,
                webhook_notification::Column::Status,
                webhook_notification::Column::Attempts,
                webhook_notification::Column::NextAttemptAt,
                webhook_notification::Column::CreatedAt,
            ])
            .select_from(select)
            .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        let written = self
            .db
            .execute(&insert)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected();
        if written > 0 {
            self.webhooks_written();
        }
        Ok(written)
    }
}

impl Store {
    /// The instance id of each of these events (row key → instance), for their public ids.
    pub async fn event_instances(
        &self,
        row_keys: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, i32>, StoreError> {
        let keys: Vec<i64> = row_keys.collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .column(event::Column::InstanceId)
            .filter(event::Column::Id.is_in(keys))
            .into_tuple::<(i64, i32)>()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .collect())
    }

    /// The events with these row keys, each with its delivery log in attempt order, as
    /// `GET /api/v1/events/{id}` shows them: two queries, whatever their number (a `ctx` that cannot be
    /// read comes back `null`).
    pub async fn events_with_deliveries(
        &self,
        row_keys: &[i64],
    ) -> Result<HashMap<i64, (event::Model, Vec<delivery_log::Model>)>, StoreError> {
        if row_keys.is_empty() {
            return Ok(HashMap::new());
        }
        let select =
            super::super::event_read::select().filter(event::Column::Id.is_in(row_keys.to_vec()));
        let mut found: HashMap<i64, (event::Model, Vec<delivery_log::Model>)> =
            super::super::event_read::all(select, &self.db)
                .await
                .map_err(|e| self.error(e))?
                .into_iter()
                .map(|read| (read.event.id, (read.event, Vec::new())))
                .collect();
        let deliveries = delivery_log::Entity::find()
            .filter(delivery_log::Column::EventId.is_in(row_keys.to_vec()))
            .order_by_asc(delivery_log::Column::Attempt)
            .order_by_asc(delivery_log::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        for delivery in deliveries {
            if let Some((_, list)) = found.get_mut(&delivery.event_id) {
                list.push(delivery);
            }
        }
        Ok(found)
    }
}
