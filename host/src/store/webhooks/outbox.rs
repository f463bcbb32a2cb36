//! The outbox: notifications written in the transactions that make events final
//! ([`Store::enqueue_notifications`]), claimed by the `webhookDelivery` workflow, and settled a run's
//! attempts at a time ([`Store::record_webhook_attempts`]).

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
    /// Returns how many were written; the caller wakes `webhookDelivery` ([`Self::webhooks_written`])
    /// after its commit when that is more than none (before it, the run would find nothing yet).
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
        let _turn = self.write_turn("claim_webhook_notifications").await;
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
            .webhook_endpoints_by_id(&self.db, notifications.iter().map(|n| n.endpoint_id))
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
        conn: &impl ConnectionTrait,
        ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, webhook_endpoint::Model>, StoreError> {
        let mut ids: Vec<i64> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Id.is_in(ids))
            .all(conn)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|e| (e.id, e))
            .collect())
    }

    /// The notifications among `ids` that `claimer` holds, with their endpoints, by id: two queries.
    pub async fn claimed_webhook_notifications(
        &self,
        ids: &[i64],
        claimer: &str,
    ) -> Result<HashMap<i64, ClaimedNotification>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let notifications = webhook_notification::Entity::find()
            .filter(webhook_notification::Column::Id.is_in(ids.iter().copied()))
            .filter(webhook_notification::Column::ClaimedBy.eq(claimer))
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let endpoints = self
            .webhook_endpoints_by_id(&self.db, notifications.iter().map(|n| n.endpoint_id))
            .await?;
        Ok(notifications
            .into_iter()
            .filter_map(|notification| {
                let endpoint = endpoints.get(&notification.endpoint_id)?.clone();
                Some((
                    notification.id,
                    ClaimedNotification {
                        notification,
                        endpoint,
                    },
                ))
            })
            .collect())
    }

    /// Fixes the body of each notification in `bodies` unless an earlier attempt did, in one
    /// transaction; returns the body each must send (the one stored first).
    pub async fn freeze_webhook_bodies(
        &self,
        bodies: &[(i64, String)],
    ) -> Result<HashMap<i64, String>, StoreError> {
        if bodies.is_empty() {
            return Ok(HashMap::new());
        }
        let _turn = self.write_turn("freeze_webhook_bodies").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        for (id, body) in bodies {
            webhook_notification::Entity::update_many()
                .col_expr(
                    webhook_notification::Column::Body,
                    Expr::value(body.as_str()),
                )
                .filter(webhook_notification::Column::Id.eq(*id))
                .filter(webhook_notification::Column::Body.is_null())
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        let stored: Vec<(i64, Option<String>)> = webhook_notification::Entity::find()
            .select_only()
            .column(webhook_notification::Column::Id)
            .column(webhook_notification::Column::Body)
            .filter(webhook_notification::Column::Id.is_in(bodies.iter().map(|(id, _)| *id)))
            .into_tuple()
            .all(&txn)
            .await
            .map_err(|e| self.error(e))?;
        txn.commit().await.map_err(|e| self.error(e))?;
        let stored: HashMap<i64, String> = stored
            .into_iter()
            .filter_map(|(id, body)| Some((id, body?)))
            .collect();
        Ok(bodies
            .iter()
            .map(|(id, body)| (*id, stored.get(id).cloned().unwrap_or_else(|| body.clone())))
            .collect())
    }

    /// Stores these attempts and each notification's next state, and releases their claims, all in one
    /// transaction. `next(i, made)` decides the state after attempt `i`, `made` being the attempts of
    /// its notification with this one, read from the row held in the transaction. One answer per
    /// attempt, in order: `None` when `claimer` no longer holds that notification (the lease lapsed and
    /// another run took it over), or it came twice.
    pub async fn record_webhook_attempts(
        &self,
        claimer: &str,
        attempts: &[(i64, NewAttempt)],
        next: impl Fn(usize, u32) -> NextState,
    ) -> Result<Vec<Option<RecordedAttempt>>, StoreError> {
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let _turn = self.write_turn("record_webhook_attempts").await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let held: HashMap<i64, webhook_notification::Model> = webhook_notification::Entity::find()
            .filter(webhook_notification::Column::Id.is_in(attempts.iter().map(|(id, ..)| *id)))
            .filter(webhook_notification::Column::ClaimedBy.eq(claimer))
            .all(&txn)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|n| (n.id, n))
            .collect();
        let mut settled = Vec::with_capacity(attempts.len());
        let mut rows = Vec::new();
        let mut disable: HashMap<i64, String> = HashMap::new();
        for (index, (id, attempt)) in attempts.iter().enumerate() {
            let Some(notification) = held.get(id) else {
                settled.push(None);
                continue;
            };
            let made = u32::try_from(notification.attempts).unwrap_or(0) + 1;
            let next = next(index, made);
            let (status, next_at, finished_at) = match &next {
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
                .filter(webhook_notification::Column::Id.eq(*id))
                .filter(webhook_notification::Column::ClaimedBy.eq(claimer))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected;
            if changed == 0 {
                settled.push(None);
                continue;
            }
            rows.push(attempt.row(*id));
            if let NextState::Failed {
                disable_endpoint: Some(reason),
            } = next
            {
                disable.insert(notification.endpoint_id, reason);
            }
            settled.push(Some((notification.endpoint_id, status, next_at)));
        }
        // Several rows per statement, under SQLite's limit on bound values (6 per row).
        for chunk in rows.chunks(1000) {
            webhook_attempt::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        for (endpoint_id, reason) in &disable {
            webhook_endpoint::Entity::update_many()
                .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
                .col_expr(
                    webhook_endpoint::Column::DisabledReason,
                    Expr::value(reason.as_str()),
                )
                .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
                .filter(webhook_endpoint::Column::Id.eq(*endpoint_id))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        let endpoints = self
            .webhook_endpoints_by_id(&txn, settled.iter().flatten().map(|(e, ..)| *e))
            .await?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(settled
            .into_iter()
            .map(|settled| {
                settled.map(|(endpoint_id, status, next_at)| RecordedAttempt {
                    endpoint: endpoints
                        .get(&endpoint_id)
                        .map(|e| e.name.clone())
                        .unwrap_or_default(),
                    final_status: (status != NotificationStatus::Pending).then_some(status),
                    next_attempt_at: next_at,
                })
            })
            .collect())
    }

    /// Hands back the notifications still claimed under any of `claimers` (runs that ended without
    /// settling them), so they are claimable at once.
    pub async fn release_webhook_claims(&self, claimers: &[String]) -> Result<u64, StoreError> {
        let _turn = self.write_turn("release_webhook_claims").await;
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
