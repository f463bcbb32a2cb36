//! Delivery-log queries: handing events to delivery, claiming due attempts, recording their outcomes,
//! quarantining refused addresses, and copying final outcomes back onto events.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbBackend, EntityTrait, FromQueryResult, Iterable,
    Order, QueryFilter, QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};

use super::claims::{unclaimed_deliveries, unclaimed_events};
use super::quarantine::{NewQuarantine, QuarantineReason};
use super::sqlite_rows;
use super::{Store, StoreError};
use crate::db::entities::event;
use crate::db::entities::{delivery_log, template_version};
use mc_plugin_api::{Channel, DeliveryStatus, EventStatus};

/// What became of one attempt, to record.
#[derive(Clone, Debug)]
pub struct AttemptResult {
    /// The claimed entry.
    pub log_id: i64,
    pub status: DeliveryStatus,
    pub is_final: bool,
    pub message_id: Option<String>,
    pub error: Option<String>,
    /// Queue another attempt at this time.
    pub retry_at: Option<DateTime<Utc>>,
    /// Quarantine the entry's address, with this reason.
    pub quarantine: Option<String>,
    /// The event's `expiration` passed before this attempt: the event turns `expired` (from
    /// `pending_delivery` only), in the same transaction as the entry.
    pub expire_event: bool,
}

impl AttemptResult {
    /// Accepted and final, with nothing else to do: no error, retry, quarantine or expiry.
    fn is_plain_sent(&self) -> bool {
        self.status == DeliveryStatus::Sent
            && self.is_final
            && self.error.is_none()
            && self.retry_at.is_none()
            && self.quarantine.is_none()
            && !self.expire_event
    }
}

impl Store {
    /// Claims up to `limit` due pending attempts (real-time first, then oldest), for `lease`; like event
    /// claims, with `FOR UPDATE SKIP LOCKED` on PostgreSQL.
    pub async fn claim_due_deliveries(
        &self,
        claimer: &str,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<delivery_log::Model>, StoreError> {
        let now = Utc::now();
        let lease_end = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut due = Query::select();
        due.column(delivery_log::Column::Id)
            .from(delivery_log::Entity)
            .and_where(delivery_log::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .and_where(delivery_log::Column::NextAttemptAt.lte(now))
            .cond_where(
                Condition::any()
                    .add(delivery_log::Column::ClaimExpiresAt.is_null())
                    .add(delivery_log::Column::ClaimExpiresAt.lt(now)),
            )
            .order_by(delivery_log::Column::Priority, Order::Asc)
            .order_by(delivery_log::Column::Id, Order::Asc)
            .limit(limit);
        if self.db.get_database_backend() == DbBackend::Postgres {
            due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let claim = delivery_log::Entity::update_many()
            .col_expr(delivery_log::Column::ClaimedBy, Expr::value(claimer))
            .col_expr(delivery_log::Column::ClaimExpiresAt, Expr::value(lease_end))
            .filter(Expr::col(delivery_log::Column::Id).in_subquery(due));
        // On an SQLite file, on the synchronous writer (the turn held for SQLite's work only).
        let mut claim = claim.into_query();
        claim.returning(Query::returning().columns(delivery_log::Column::iter()));
        let mut claimed = match self
            .rows_on_writer("claim_due_deliveries", &claim, sqlite_rows::delivery_log)
            .await
        {
            Some(claimed) => claimed?,
            None => {
                let rows = self.rows_on_pool("claim_due_deliveries", &claim).await?;
                rows.iter()
                    .map(|row| delivery_log::Model::from_query_result(row, ""))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.error(e))?
            }
        };
        claimed.sort_by_key(|d| (d.priority, d.id));
        Ok(claimed)
    }

    /// Hands back the attempts `ids` that `claimer` still holds without having recorded an outcome (a
    /// delivery round that lost its database half-way), so they are due again at once. Returns how many.
    pub async fn release_delivery_claims(
        &self,
        claimer: &str,
        ids: &[i64],
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn("release_delivery_claims").await;
        let mut released = 0;
        for chunk in ids.chunks(500) {
            released += unclaimed_deliveries()
                .filter(delivery_log::Column::Id.is_in(chunk.iter().copied()))
                .filter(delivery_log::Column::ClaimedBy.eq(claimer))
                .exec(&self.db)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected;
        }
        Ok(released)
    }

    /// Hands back attempts that `claimer` holds but must not send yet (a per-domain limit), each due
    /// again at its time: their status, attempt number and retries are untouched. Returns how many.
    pub async fn defer_deliveries(
        &self,
        claimer: &str,
        deferred: &[(i64, DateTime<Utc>)],
    ) -> Result<u64, StoreError> {
        if deferred.is_empty() {
            return Ok(0);
        }
        let _turn = self.write_turn("defer_deliveries").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut changed = 0;
        for (id, at) in deferred {
            changed += unclaimed_deliveries()
                .col_expr(delivery_log::Column::NextAttemptAt, Expr::value(*at))
                .filter(delivery_log::Column::Id.eq(*id))
                .filter(delivery_log::Column::ClaimedBy.eq(claimer))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected;
        }
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(changed)
    }

    /// The events with these row keys.
    pub async fn events_by_row_keys(
        &self,
        keys: &[i64],
    ) -> Result<HashMap<i64, event::Model>, StoreError> {
        Ok(event::Entity::find()
            .filter(event::Column::Id.is_in(keys.iter().copied()))
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|e| (e.id, e))
            .collect())
    }

    /// The template versions named by `keys` (those that still exist).
    pub async fn template_versions(
        &self,
        keys: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), template_version::Model>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut any = Condition::any();
        for (name, version) in keys {
            any = any.add(
                Condition::all()
                    .add(template_version::Column::TemplateName.eq(name.as_str()))
                    .add(template_version::Column::Version.eq(*version)),
            );
        }
        Ok(template_version::Entity::find()
            .filter(any)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|v| ((v.template_name.clone(), v.version), v))
            .collect())
    }

    /// Records a claimed batch of attempts in one transaction: each entry's outcome (only while
    /// `claimer` still holds it), the next attempts of transient failures, and quarantined addresses.
    pub async fn record_attempts(
        &self,
        claimer: &str,
        claimed: &HashMap<i64, delivery_log::Model>,
        results: &[AttemptResult],
    ) -> Result<(), StoreError> {
        // The common outcome, accepted and final, in one statement for the whole group (each entry's
        // Message-ID in a CASE) rather than one per entry: nothing follows from it but its row.
        let (sent, others): (Vec<&AttemptResult>, Vec<&AttemptResult>) = results
            .iter()
            .filter(|r| claimed.contains_key(&r.log_id))
            .partition(|r| r.is_plain_sent());
        if others.is_empty() && !sent.is_empty() {
            // On an SQLite file, a group of nothing else goes through the synchronous writer.
            if let Some(done) = self.record_sent_synchronously(claimer, &sent).await {
                return done;
            }
        }
        let _turn = self.write_turn("record_attempts").await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut retries = Vec::new();
        let mut quarantined = Vec::new();
        let mut expired = Vec::new();
        let mut notified = 0;
        if let Some((first, rest)) = sent.split_first() {
            let message_ids = rest
                .iter()
                .fold(
                    Expr::case(
                        delivery_log::Column::Id.eq(first.log_id),
                        Expr::value(first.message_id.clone()),
                    ),
                    |case, r| {
                        case.case(
                            delivery_log::Column::Id.eq(r.log_id),
                            Expr::value(r.message_id.clone()),
                        )
                    },
                )
                .finally(Expr::col(delivery_log::Column::MessageId));
            // Entries whose lease lapsed and which another sender took over are left out by the
            // claimer filter: that sender's outcome wins.
            unclaimed_deliveries()
                .col_expr(delivery_log::Column::AcceptedAt, Expr::value(now))
                .col_expr(
                    delivery_log::Column::Status,
                    Expr::value(DeliveryStatus::Sent.as_str()),
                )
                .col_expr(delivery_log::Column::IsFinal, Expr::value(true))
                .col_expr(delivery_log::Column::MessageId, message_ids.into())
                .col_expr(delivery_log::Column::Error, Expr::value(None::<String>))
                .col_expr(delivery_log::Column::UpdatedAt, Expr::value(now))
                .filter(delivery_log::Column::Id.is_in(sent.iter().map(|r| r.log_id)))
                .filter(delivery_log::Column::ClaimedBy.eq(claimer))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        for result in others {
            let Some(entry) = claimed.get(&result.log_id) else {
                continue;
            };
            let mut update = unclaimed_deliveries();
            if result.status == DeliveryStatus::Sent {
                // Monitoring's timeline, in the statement that records the outcome.
                update = update.col_expr(delivery_log::Column::AcceptedAt, Expr::value(now));
            }
            let changed = update
                .col_expr(
                    delivery_log::Column::Status,
                    Expr::value(result.status.as_str()),
                )
                .col_expr(delivery_log::Column::IsFinal, Expr::value(result.is_final))
                .col_expr(
                    delivery_log::Column::MessageId,
                    Expr::value(result.message_id.clone()),
                )
                .col_expr(
                    delivery_log::Column::Error,
                    Expr::value(result.error.clone()),
                )
                .col_expr(delivery_log::Column::UpdatedAt, Expr::value(now))
                .filter(delivery_log::Column::Id.eq(result.log_id))
                .filter(delivery_log::Column::ClaimedBy.eq(claimer))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected;
            if changed == 0 {
                // The lease lapsed and another sender took the entry over: its outcome wins.
                continue;
            }
            if let Some(at) = result.retry_at {
                retries.push(delivery_log::ActiveModel {
                    event_id: Set(entry.event_id),
                    attempt: Set(entry.attempt + 1),
                    channel: Set(entry.channel.clone()),
                    address: Set(entry.address.clone()),
                    status: Set(DeliveryStatus::Pending.as_str().to_owned()),
                    template_name: Set(entry.template_name.clone()),
                    template_version: Set(entry.template_version),
                    is_final: Set(false),
                    copied_to_event: Set(false),
                    next_attempt_at: Set(Some(at)),
                    created_at: Set(now),
                    updated_at: Set(now),
                    priority: Set(entry.priority),
                    first_attempt_at: Set(entry.first_attempt_at),
                    ..Default::default()
                });
            }
            if result.expire_event {
                expired.push(entry.event_id);
            }
            if let (Some(reason), Some(address)) = (&result.quarantine, &entry.address) {
                quarantined.push(NewQuarantine {
                    address: address.clone(),
                    channel: entry.channel.clone(),
                    reason: QuarantineReason::DeliveryFailure,
                    diagnostic: Some(reason.clone()),
                });
            }
        }
        if !retries.is_empty() {
            // `delivery.deferred`: a transient failure, a retry scheduled; written with the retry.
            let deferred: Vec<i64> = retries
                .iter()
                .filter_map(|r| r.event_id.clone().take())
                .collect();
            notified += self
                .enqueue_notifications(
                    &txn,
                    super::Finished::As(
                        mc_plugin_api::WebhookEventType::DeliveryDeferred,
                        &deferred,
                    ),
                )
                .await?;
            delivery_log::Entity::insert_many(retries)
                .exec_without_returning(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        if !expired.is_empty() {
            // The entry is final and will be copied by updateEventsStatus like any other, but the
            // event is no longer `pending_delivery` then, so `expired` stays.
            event::Entity::update_many()
                .col_expr(
                    event::Column::Status,
                    Expr::value(EventStatus::Expired.as_str()),
                )
                .col_expr(event::Column::FinishedAt, Expr::value(now))
                .col_expr(event::Column::UpdatedAt, Expr::value(now))
                .filter(event::Column::Id.is_in(expired))
                .filter(event::Column::Status.eq(EventStatus::PendingDelivery.as_str()))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        for entry in &quarantined {
            self.put_quarantine_in(&txn, entry).await?;
        }
        txn.commit().await.map_err(|e| self.error(e))?;
        if notified > 0 {
            self.webhooks_written();
        }
        Ok(())
    }

    /// The oldest final entries not yet copied onto their events.
    pub async fn final_uncopied_deliveries(
        &self,
        limit: u64,
    ) -> Result<Vec<delivery_log::Model>, StoreError> {
        delivery_log::Entity::find()
            .filter(delivery_log::Column::IsFinal.eq(true))
            .filter(delivery_log::Column::CopiedToEvent.eq(false))
            .order_by_asc(delivery_log::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Sets each event's final status from its entry (only events still `pending_delivery`) and marks
    /// the entries copied, in one transaction. Returns how many events changed.
    pub async fn apply_delivery_outcomes(
        &self,
        outcomes: &[(i64, i64, EventStatus)],
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn("apply_delivery_outcomes").await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut applied = 0;
        let mut by_status: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
        for (_, row_key, status) in outcomes {
            by_status.entry(status.as_str()).or_default().push(*row_key);
        }
        for (status, keys) in by_status {
            applied += event::Entity::update_many()
                .col_expr(event::Column::Status, Expr::value(status))
                .col_expr(event::Column::FinishedAt, Expr::value(now))
                .col_expr(event::Column::UpdatedAt, Expr::value(now))
                .filter(event::Column::Id.is_in(keys))
                .filter(event::Column::Status.eq(EventStatus::PendingDelivery.as_str()))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected;
        }
        let notified = self
            .enter_archive_feed(&txn, outcomes.iter().map(|(_, key, _)| *key).collect())
            .await?;
        delivery_log::Entity::update_many()
            .col_expr(delivery_log::Column::CopiedToEvent, Expr::value(true))
            .filter(delivery_log::Column::Id.is_in(outcomes.iter().map(|(log, _, _)| *log)))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?;
        txn.commit().await.map_err(|e| self.error(e))?;
        if notified > 0 {
            self.webhooks_written();
        }
        Ok(applied)
    }
}

/// The address an event is delivered to on its channel.
pub(super) fn address_of(e: &event::Model) -> Option<String> {
    address_on(&e.channel, e.email.as_deref(), e.mobile_phone.as_deref())
}

/// The address on `channel` (a stored channel name) of an event with these addresses.
pub(super) fn address_on(
    channel: &str,
    email: Option<&str>,
    mobile_phone: Option<&str>,
) -> Option<String> {
    if channel == Channel::Sms.as_str() {
        mobile_phone.map(str::to_owned)
    } else {
        email.map(str::to_owned)
    }
}

impl Store {
    /// Releases the event and delivery claims held by earlier processes of this instance (claimers
    /// `"<instance>/pid-…"` other than `current` and its runs' `current/…`): after a crash and restart
    /// they are known dead, so
    /// their work need not wait for the leases to lapse. Instance names are unique (they own the top
    /// byte of event ids), so no other live process is affected. Returns (events, deliveries) released.
    pub async fn release_claims_of_previous_processes(
        &self,
        instance: &str,
        current: &str,
    ) -> Result<(u64, u64), StoreError> {
        let _turn = self
            .write_turn("release_claims_of_previous_processes")
            .await;
        let prefix = format!("{instance}/");
        let own_runs = format!("{current}/");
        let stale = |claimers: Vec<Option<String>>| -> Vec<String> {
            claimers
                .into_iter()
                .flatten()
                .filter(|c| c.starts_with(&prefix) && c != current && !c.starts_with(&own_runs))
                .collect()
        };
        let event_claimers: Vec<Option<String>> = event::Entity::find()
            .select_only()
            .column(event::Column::ClaimedBy)
            .filter(event::Column::ClaimedBy.is_not_null())
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let delivery_claimers: Vec<Option<String>> = delivery_log::Entity::find()
            .select_only()
            .column(delivery_log::Column::ClaimedBy)
            .filter(delivery_log::Column::ClaimedBy.is_not_null())
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        let events = unclaimed_events()
            .filter(event::Column::ClaimedBy.is_in(stale(event_claimers)))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        let deliveries = unclaimed_deliveries()
            .filter(delivery_log::Column::ClaimedBy.is_in(stale(delivery_claimers)))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        Ok((events, deliveries))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mc_plugin_api::Queue;

    use crate::store::Submission;
    use crate::store::testing::{plain_email_event, sqlite_store};

    #[tokio::test]
    async fn a_restarted_instance_releases_only_its_own_dead_claims() {
        let (_dir, store) = sqlite_store().await;
        let event = plain_email_event();
        let submission = Submission {
            queue: Queue::Realtime,
            events: vec![event.clone(), event],
            idempotency: None,
        };
        let three = Submission {
            events: vec![submission.events[0].clone(); 3],
            ..submission.clone()
        };
        store.submit(1, &[submission, three]).await.unwrap();
        let lease = Duration::from_secs(600);
        assert_eq!(
            store
                .claim_events(Queue::Realtime, 1, "inst/pid-1", lease)
                .await
                .unwrap()
                .events
                .len(),
            1
        );
        assert_eq!(
            store
                .claim_events(Queue::Realtime, 1, "other/pid-9", lease)
                .await
                .unwrap()
                .events
                .len(),
            1
        );

        let (events, deliveries) = store
            .release_claims_of_previous_processes("inst", "inst/pid-2")
            .await
            .unwrap();
        assert_eq!((events, deliveries), (1, 0));
        // The dead process's event is claimable again; the other instance's claim still holds.
        let again = store
            .claim_events(Queue::Realtime, 1, "inst/pid-2", lease)
            .await
            .unwrap()
            .events;
        assert_eq!(again.len(), 1);
        // The current process's workflow runs claim under `inst/pid-2/<workflow>#<run>`.
        let by_run = store
            .claim_events(
                Queue::Realtime,
                10,
                "inst/pid-2/rtEventsProcessing#7",
                lease,
            )
            .await
            .unwrap()
            .events;
        assert_eq!(by_run.len(), 3);
        assert_eq!(
            store
                .release_claims_of_previous_processes("inst", "inst/pid-2")
                .await
                .unwrap(),
            (0, 0),
            "the current process's own claims, and its runs', are kept"
        );
        // A run that ended without settling its claims hands them back at once, and only its own.
        assert_eq!(
            store
                .release_event_claims(&["inst/pid-2/rtEventsProcessing#7".to_owned()])
                .await
                .unwrap(),
            3
        );
        let reclaimed = store
            .claim_events(
                Queue::Realtime,
                10,
                "inst/pid-2/rtEventsProcessing#8",
                lease,
            )
            .await
            .unwrap()
            .events;
        assert_eq!(reclaimed.len(), 3, "released events are claimable at once");

        // A delivery round that claimed attempts and lost its database hands them back on its next
        // round: they are due again at once, and only the claimer's own are released.
        let items: Vec<(i64, String, i32)> = reclaimed
            .iter()
            .map(|e| (e.id, "welcome".to_owned(), 1))
            .collect();
        let run = "inst/pid-2/rtEventsProcessing#8";
        assert_eq!(store.enqueue_deliveries(run, &items).await.unwrap(), 3);
        let attempts = store
            .claim_due_deliveries("inst/pid-2", 10, lease)
            .await
            .unwrap();
        assert_eq!(attempts.len(), 3);
        assert!(
            store
                .claim_due_deliveries("inst/pid-2", 10, lease)
                .await
                .unwrap()
                .is_empty(),
            "claimed attempts are not due while their lease runs"
        );
        let ids: Vec<i64> = attempts.iter().map(|d| d.id).collect();
        assert_eq!(
            store
                .release_delivery_claims("other/pid-9", &ids)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .release_delivery_claims("inst/pid-2", &ids)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store
                .claim_due_deliveries("inst/pid-2", 10, lease)
                .await
                .unwrap()
                .len(),
            3,
            "released attempts are due again at once"
        );
    }
}
