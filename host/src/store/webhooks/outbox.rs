//! The outbox: notifications written in the transactions that make events final
//! ([`Store::enqueue_notifications`]), claimed by the `webhookDelivery` workflow, and settled one attempt
//! at a time ([`Store::record_webhook_attempt`]).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mc_plugin_api::{EventStatus, NotificationStatus, WebhookEventType};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect, QueryTrait, TransactionTrait,
};

use super::{ClaimedNotification, NewAttempt, PendingByEndpoint, RecordedAttempt};
use crate::db::entities::{event, webhook_attempt, webhook_endpoint, webhook_notification};
use crate::store::{Store, StoreError};

/// Which events a transaction notifies, and as what.
#[derive(Clone, Copy, Debug)]
pub enum Finished<'a> {
    /// Events among these row keys that this transaction made final and that have not entered the
    /// archive feed yet (the same set `enter_archive_feed` then numbers), each as the type of its status.
    NewlyFinal(&'a [i64]),
    /// These events, as this type (`delivery.deferred`, `message.bounced`, or a final type that an
    /// event already in the feed took again).
    As(WebhookEventType, &'a [i64]),
}

/// What becomes of a notification after an attempt; decided by the workflow's verdict and the
/// host's retry schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextState {
    Delivered,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// Give up; with `disable_endpoint`, the endpoint is disabled for that reason too (`410 Gone`).
    Failed {
        disable_endpoint: Option<String>,
    },
}

/// `expr` in the custom SQL `template`, whose placeholders are written `$1`, `$2` … in order of use:
/// sea-query substitutes the backend's own placeholder there (`$n` on PostgreSQL, `?` on SQLite).
fn custom(backend: DbBackend, template: &str, exprs: Vec<Expr>) -> Expr {
    let mut text = template.to_owned();
    if backend != DbBackend::Postgres {
        for n in (1..=exprs.len()).rev() {
            text = text.replace(&format!("${n}"), "?");
        }
    }
    Expr::cust_with_exprs(text, exprs)
}

/// The webhook type of an event's final status: `'event.' || events.status` (the status names and the
/// `event.*` types are the same words; `WebhookEventType::of_final_status`).
pub(super) fn type_of_status(backend: DbBackend) -> Expr {
    custom(
        backend,
        "('event.' || $1)",
        vec![Expr::col((event::Entity, event::Column::Status))],
    )
}

/// Whether the stored subscription `events` (`,a,b,`) holds `kind`.
pub(super) fn subscribed(backend: DbBackend, events: Expr, kind: Expr) -> Expr {
    custom(
        backend,
        "($1 LIKE ('%,' || $2 || ',%'))",
        vec![events, kind],
    )
}

impl Store {
    /// Writes one notification per enabled endpoint subscribed to each finished event's type, in `txn`:
    /// one `INSERT … SELECT` over `webhook_endpoints × events`, so with no endpoint it costs one query
    /// that finds nothing, and an endpoint created later is not told of events that finished before it.
    /// Returns how many were written; the caller wakes `webhookDelivery` when that is more than none.
    pub(crate) async fn enqueue_notifications(
        &self,
        txn: &DatabaseTransaction,
        finished: Finished<'_>,
    ) -> Result<u64, StoreError> {
        let backend = self.db.get_database_backend();
        let (keys, type_expr) = match finished {
            Finished::NewlyFinal(keys) => (keys, type_of_status(backend)),
            Finished::As(kind, keys) => (keys, Expr::val(kind.as_str())),
        };
        if keys.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        let mut select = Query::select();
        select
            .expr(Expr::col((
                webhook_endpoint::Entity,
                webhook_endpoint::Column::Id,
            )))
            .expr(Expr::col((event::Entity, event::Column::Id)))
            .expr(type_expr.clone())
            .expr(Expr::val(NotificationStatus::Pending.as_str()))
            .expr(Expr::val(0))
            .expr(Expr::val(now))
            .expr(Expr::val(now))
            .from(webhook_endpoint::Entity)
            .from(event::Entity)
            .and_where(
                Expr::col((webhook_endpoint::Entity, webhook_endpoint::Column::Enabled)).eq(true),
            )
            .and_where(Expr::col((event::Entity, event::Column::Id)).is_in(keys.iter().copied()))
            .and_where(subscribed(
                backend,
                Expr::col((webhook_endpoint::Entity, webhook_endpoint::Column::Events)),
                type_expr,
            ));
        if let Finished::NewlyFinal(_) = finished {
            let finals: Vec<&str> = EventStatus::ALL
                .into_iter()
                .filter(|s| s.is_final())
                .map(EventStatus::as_str)
                .collect();
            select
                .and_where(Expr::col((event::Entity, event::Column::ArchiveSeq)).is_null())
                .and_where(Expr::col((event::Entity, event::Column::Status)).is_in(finals));
        }
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
        let written = txn
            .execute(&insert)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected();
        if written > 0 {
            self.webhooks_written();
        }
        Ok(written)
    }

    /// Tells whoever listens (`webhookDelivery`'s runner) that notifications were written.
    pub(crate) fn webhooks_written(&self) {
        self.webhook_wake.notify_one();
    }

    /// Resolves when notifications were written since the last call (see [`Self::webhooks_written`]).
    pub async fn webhooks_notified(&self) {
        self.webhook_wake.notified().await;
    }

    /// Claims up to `limit` due notifications of enabled endpoints for `claimer`, for `lease`: one
    /// `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, as events are claimed.
    pub async fn claim_webhook_notifications(
        &self,
        limit: u64,
        claimer: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        let _turn = self.write_turn().await;
        let now = Utc::now();
        let backend = self.db.get_database_backend();
        let lease_end = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut enabled = Query::select();
        enabled
            .column(webhook_endpoint::Column::Id)
            .from(webhook_endpoint::Entity)
            .and_where(webhook_endpoint::Column::Enabled.eq(true));
        let mut candidates = Query::select();
        candidates
            .column(webhook_notification::Column::Id)
            .from(webhook_notification::Entity)
            .and_where(
                webhook_notification::Column::Status.eq(NotificationStatus::Pending.as_str()),
            )
            .and_where(webhook_notification::Column::NextAttemptAt.lte(now))
            .cond_where(
                sea_orm::Condition::any()
                    .add(webhook_notification::Column::ClaimExpiresAt.is_null())
                    .add(webhook_notification::Column::ClaimExpiresAt.lt(now)),
            )
            .and_where(Expr::col(webhook_notification::Column::EndpointId).in_subquery(enabled))
            .order_by(webhook_notification::Column::NextAttemptAt, Order::Asc)
            .order_by(webhook_notification::Column::Id, Order::Asc)
            .limit(limit);
        if backend == DbBackend::Postgres {
            candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let mut update = webhook_notification::Entity::update_many()
            .col_expr(
                webhook_notification::Column::ClaimedBy,
                Expr::value(claimer),
            )
            .col_expr(
                webhook_notification::Column::ClaimExpiresAt,
                Expr::value(lease_end),
            )
            .filter(Expr::col(webhook_notification::Column::Id).in_subquery(candidates))
            .into_query();
        update.returning_all();
        let rows = self
            .db
            .query_all_raw(backend.build(&update))
            .await
            .map_err(|e| self.error(e))?;
        let mut notifications = rows
            .iter()
            .map(|row| webhook_notification::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))?;
        notifications.sort_by_key(|n| n.id);
        let endpoints = self
            .webhook_endpoints_by_id(notifications.iter().map(|n| n.endpoint_id))
            .await?;
        Ok(notifications
            .into_iter()
            .filter_map(|notification| {
                let endpoint = endpoints.get(&notification.endpoint_id)?.clone();
                Some(ClaimedNotification {
                    notification,
                    endpoint,
                })
            })
            .collect())
    }

    async fn webhook_endpoints_by_id(
        &self,
        ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, webhook_endpoint::Model>, StoreError> {
        let ids: Vec<i64> = ids.collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|e| (e.id, e))
            .collect())
    }

    /// The notification `id` while `claimer` holds it, with its endpoint.
    pub async fn claimed_webhook_notification(
        &self,
        id: i64,
        claimer: &str,
    ) -> Result<Option<ClaimedNotification>, StoreError> {
        let Some(notification) = webhook_notification::Entity::find_by_id(id)
            .filter(webhook_notification::Column::ClaimedBy.eq(claimer))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let endpoint = webhook_endpoint::Entity::find_by_id(notification.endpoint_id)
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(endpoint.map(|endpoint| ClaimedNotification {
            notification,
            endpoint,
        }))
    }

    /// Fixes the body of notification `id` unless an earlier attempt did; returns the body every
    /// attempt must send.
    pub async fn freeze_webhook_body(&self, id: i64, body: &str) -> Result<String, StoreError> {
        let _turn = self.write_turn().await;
        webhook_notification::Entity::update_many()
            .col_expr(webhook_notification::Column::Body, Expr::value(body))
            .filter(webhook_notification::Column::Id.eq(id))
            .filter(webhook_notification::Column::Body.is_null())
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let stored = webhook_notification::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .and_then(|n| n.body);
        Ok(stored.unwrap_or_else(|| body.to_owned()))
    }

    /// Stores one attempt of notification `id` and its next state, in one transaction, and releases the
    /// claim; nothing when `claimer` no longer holds it (the lease lapsed and another run took it over).
    pub async fn record_webhook_attempt(
        &self,
        id: i64,
        claimer: &str,
        attempt: &NewAttempt,
        next: &NextState,
    ) -> Result<Option<RecordedAttempt>, StoreError> {
        let _turn = self.write_turn().await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let Some(notification) = webhook_notification::Entity::find_by_id(id)
            .filter(webhook_notification::Column::ClaimedBy.eq(claimer))
            .one(&txn)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let (status, next_at, finished_at) = match next {
            NextState::Delivered => (NotificationStatus::Delivered, None, Some(now)),
            NextState::Retry(at) => (NotificationStatus::Pending, Some(*at), None),
            NextState::Failed { .. } => (NotificationStatus::Failed, None, Some(now)),
        };
        let changed = webhook_notification::Entity::update_many()
            .col_expr(
                webhook_notification::Column::Status,
                Expr::value(status.as_str()),
            )
            .col_expr(
                webhook_notification::Column::Attempts,
                Expr::col(webhook_notification::Column::Attempts).add(1),
            )
            .col_expr(
                webhook_notification::Column::NextAttemptAt,
                Expr::value(next_at),
            )
            .col_expr(
                webhook_notification::Column::FinishedAt,
                Expr::value(finished_at),
            )
            .col_expr(
                webhook_notification::Column::ClaimedBy,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                webhook_notification::Column::ClaimExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook_notification::Column::Id.eq(id))
            .filter(webhook_notification::Column::ClaimedBy.eq(claimer))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        if changed == 0 {
            return Ok(None);
        }
        webhook_attempt::Entity::insert(attempt.row(id))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| self.error(e))?;
        if let NextState::Failed {
            disable_endpoint: Some(reason),
        } = next
        {
            webhook_endpoint::Entity::update_many()
                .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
                .col_expr(
                    webhook_endpoint::Column::DisabledReason,
                    Expr::value(reason.as_str()),
                )
                .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
                .filter(webhook_endpoint::Column::Id.eq(notification.endpoint_id))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        let endpoint = webhook_endpoint::Entity::find_by_id(notification.endpoint_id)
            .one(&txn)
            .await
            .map_err(|e| self.error(e))?
            .map(|e| e.name)
            .unwrap_or_default();
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(Some(RecordedAttempt {
            endpoint,
            final_status: (status != NotificationStatus::Pending).then_some(status),
            next_attempt_at: next_at,
        }))
    }

    /// Hands back the notifications still claimed under any of `claimers` (runs that ended without
    /// settling them), so they are claimable at once.
    pub async fn release_webhook_claims(&self, claimers: &[String]) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(webhook_notification::Entity::update_many()
            .col_expr(
                webhook_notification::Column::ClaimedBy,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                webhook_notification::Column::ClaimExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(
                webhook_notification::Column::ClaimedBy.is_in(claimers.iter().map(String::as_str)),
            )
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected)
    }

    /// Pending notifications per endpoint and the creation time of the oldest, for the gauges.
    pub async fn pending_webhook_notifications(
        &self,
    ) -> Result<Vec<PendingByEndpoint>, StoreError> {
        #[derive(FromQueryResult)]
        struct Row {
            endpoint_id: i64,
            pending: i64,
            oldest: Option<DateTime<Utc>>,
        }
        let rows = webhook_notification::Entity::find()
            .select_only()
            .column(webhook_notification::Column::EndpointId)
            .column_as(webhook_notification::Column::Id.count(), "pending")
            .column_as(webhook_notification::Column::CreatedAt.min(), "oldest")
            .filter(webhook_notification::Column::Status.eq(NotificationStatus::Pending.as_str()))
            .group_by(webhook_notification::Column::EndpointId)
            .into_model::<Row>()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let counts: HashMap<i64, Row> = rows.into_iter().map(|r| (r.endpoint_id, r)).collect();
        Ok(self
            .list_webhook_endpoints()
            .await?
            .into_iter()
            .map(|endpoint| {
                let row = counts.get(&endpoint.id);
                PendingByEndpoint {
                    endpoint: endpoint.name,
                    pending: row.map_or(0, |r| u64::try_from(r.pending).unwrap_or(0)),
                    oldest: row.and_then(|r| r.oldest),
                }
            })
            .collect())
    }
}

impl Store {
    /// Hands back the notifications that earlier processes of `instance` claimed (they died holding
    /// them), as `release_claims_of_previous_processes` does for events: claimable at once rather than
    /// when their lease lapses. Returns how many.
    pub async fn release_webhook_claims_of_previous_processes(
        &self,
        instance: &str,
        current: &str,
    ) -> Result<u64, StoreError> {
        let prefix = format!("{instance}/");
        let own_runs = format!("{current}/");
        let claimers: Vec<Option<String>> = webhook_notification::Entity::find()
            .select_only()
            .column(webhook_notification::Column::ClaimedBy)
            .filter(webhook_notification::Column::ClaimedBy.is_not_null())
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let stale: Vec<String> = claimers
            .into_iter()
            .flatten()
            .filter(|c| c.starts_with(&prefix) && c != current && !c.starts_with(&own_runs))
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        self.release_webhook_claims(&stale).await
    }
}
