//! Bounces: what a bounce (received on the bounce listener or reported over `POST /api/v1/bounces`) does
//! to the delivery log, the event, the archive feed and the quarantine, in one transaction
//! ([`Store::apply_bounce`]).

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::quarantine::{NewQuarantine, QuarantineReason};
use super::{Finished, Store, StoreError};
use crate::db::entities::{delivery_log, event};
use mc_plugin_api::{DeliveryStatus, EventStatus, WebhookEventType};

/// What kind of bounce (the `type` of `POST /api/v1/bounces`, the `kind` label of
/// `mc_bounces_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BounceKind {
    /// Permanent (DSN status 5.x.x): the entry becomes `bounced`, the event `delivery_failed`, the
    /// address is quarantined.
    Hard,
    /// Temporary (4.x.x, or a DSN whose action is `delayed`): recorded on the entry, nothing else.
    Soft,
    /// The recipient reported the message as unwanted (ARF): handled as a hard bounce, quarantined
    /// with reason `complaint`.
    Complaint,
}

impl BounceKind {
    pub const ALL: [BounceKind; 3] = [BounceKind::Hard, BounceKind::Soft, BounceKind::Complaint];

    pub const fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
            BounceKind::Complaint => "complaint",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Which delivery-log entry a bounce is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BounceTarget {
    /// A verified bounce token: the entry and its event's row key.
    Entry { log_id: i64, event_row_key: i64 },
    /// The Message-ID the message was sent with (with or without its angle brackets).
    MessageId(String),
    /// The event's row key: its last entry that was sent.
    Event(i64),
}

/// One bounce to apply.
#[derive(Clone, Debug)]
pub struct BounceReport {
    pub kind: BounceKind,
    /// What the remote side said (Diagnostic-Code, the DSN status, the HTTP `diagnostic`).
    pub diagnostic: String,
    /// The address the reporter says bounced: when given, an entry sent to another address is not it.
    pub address: Option<String>,
}

/// What [`Store::apply_bounce`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BounceOutcome {
    /// The entry is now `bounced`; `event_requalified` when the event turned `delivery_failed` by it.
    Bounced {
        entry: i64,
        address: Option<String>,
        event_requalified: bool,
    },
    /// A temporary bounce, recorded on the entry.
    Recorded { entry: i64 },
    /// The entry was bounced already: nothing changed.
    AlreadyBounced { entry: i64 },
    /// The entry is being sent right now (its outcome is not recorded yet): try again later.
    InFlight { entry: i64 },
    /// No such entry (unknown, purged, or not sent).
    Unknown,
}

impl Store {
    /// Applies a bounce to the entry `target` names, in one transaction:
    ///
    /// - hard bounce or complaint: the entry becomes `bounced` (final, copied onto its event) with the
    ///   diagnostic; its event, when it is `sent` (or still `pending_delivery`), becomes
    ///   `delivery_failed` and re-enters the archive feed at its end, so the control instance archives
    ///   the change; the address is quarantined (`hard_bounce` / `complaint`);
    /// - soft bounce: the diagnostic is recorded on the entry's `error`, nothing else changes.
    ///
    /// An entry that is not `sent` yet (pending or in flight) is [`BounceOutcome::InFlight`]; failed and
    /// ignored entries are [`BounceOutcome::Unknown`] (nothing was delivered to bounce).
    pub async fn apply_bounce(
        &self,
        target: &BounceTarget,
        report: &BounceReport,
    ) -> Result<BounceOutcome, StoreError> {
        let _turn = self.write_turn("apply_bounce").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let Some(entry) = self.bounce_entry(&txn, target).await? else {
            return Ok(BounceOutcome::Unknown);
        };
        if let Some(address) = &report.address
            && !entry
                .address
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(address.trim()))
        {
            return Ok(BounceOutcome::Unknown);
        }
        let status: Option<DeliveryStatus> = entry.status.parse().ok();
        match status {
            Some(DeliveryStatus::Bounced) => {
                return Ok(BounceOutcome::AlreadyBounced { entry: entry.id });
            }
            Some(DeliveryStatus::Pending) => {
                return Ok(BounceOutcome::InFlight { entry: entry.id });
            }
            Some(DeliveryStatus::Sent) => {}
            _ => return Ok(BounceOutcome::Unknown),
        }
        let now = Utc::now();
        let diagnostic = crate::bounces::clip(&report.diagnostic);
        if report.kind == BounceKind::Soft {
            delivery_log::Entity::update_many()
                .col_expr(
                    delivery_log::Column::Error,
                    Expr::value(format!("soft bounce: {diagnostic}")),
                )
                .col_expr(delivery_log::Column::UpdatedAt, Expr::value(now))
                .filter(delivery_log::Column::Id.eq(entry.id))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?;
            txn.commit().await.map_err(|e| self.error(e))?;
            return Ok(BounceOutcome::Recorded { entry: entry.id });
        }
        delivery_log::Entity::update_many()
            .col_expr(
                delivery_log::Column::Status,
                Expr::value(DeliveryStatus::Bounced.as_str()),
            )
            .col_expr(delivery_log::Column::IsFinal, Expr::value(true))
            // The host sets the event itself (below): updateEventsStatus has nothing left to copy.
            .col_expr(delivery_log::Column::CopiedToEvent, Expr::value(true))
            .col_expr(
                delivery_log::Column::Error,
                Expr::value(format!("{} bounce: {diagnostic}", report.kind.as_str())),
            )
            .col_expr(delivery_log::Column::UpdatedAt, Expr::value(now))
            .filter(delivery_log::Column::Id.eq(entry.id))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?;
        let requalified = event::Entity::update_many()
            .col_expr(
                event::Column::Status,
                Expr::value(EventStatus::DeliveryFailed.as_str()),
            )
            .col_expr(event::Column::FinishedAt, Expr::value(now))
            .col_expr(event::Column::UpdatedAt, Expr::value(now))
            .filter(event::Column::Id.eq(entry.event_id))
            .filter(event::Column::Status.is_in([
                EventStatus::Sent.as_str(),
                EventStatus::PendingDelivery.as_str(),
            ]))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected
            > 0;
        if let Some(address) = &entry.address {
            let reason = if report.kind == BounceKind::Complaint {
                QuarantineReason::Complaint
            } else {
                QuarantineReason::HardBounce
            };
            self.put_quarantine_in(
                &txn,
                &NewQuarantine {
                    address: address.clone(),
                    channel: entry.channel.clone(),
                    reason,
                    diagnostic: Some(diagnostic.clone()),
                },
            )
            .await?;
        }
        // Webhooks, in this transaction so that no bounce or requalification goes unnotified across a
        // crash: `message.bounced`, and `event.delivery_failed` when the event changed by it.
        let keys = [entry.event_id];
        let mut notified = self
            .enqueue_notifications(&txn, Finished::As(WebhookEventType::MessageBounced, &keys))
            .await?;
        if requalified {
            notified += self
                .enqueue_notifications(
                    &txn,
                    Finished::As(WebhookEventType::EventDeliveryFailed, &keys),
                )
                .await?;
        }
        if requalified {
            // Last before the commit: the feed row stays locked only for this statement and the commit.
            self.reenter_archive_feed(&txn, entry.event_id).await?;
        }
        txn.commit().await.map_err(|e| self.error(e))?;
        if notified > 0 {
            self.webhooks_written();
        }
        Ok(BounceOutcome::Bounced {
            entry: entry.id,
            address: entry.address,
            event_requalified: requalified,
        })
    }

    /// The entry a bounce is about, read in `txn`.
    async fn bounce_entry(
        &self,
        txn: &DatabaseTransaction,
        target: &BounceTarget,
    ) -> Result<Option<delivery_log::Model>, StoreError> {
        let query = delivery_log::Entity::find();
        let query = match target {
            BounceTarget::Entry {
                log_id,
                event_row_key,
            } => query
                .filter(delivery_log::Column::Id.eq(*log_id))
                .filter(delivery_log::Column::EventId.eq(*event_row_key)),
            BounceTarget::MessageId(id) => {
                let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
                query.filter(
                    delivery_log::Column::MessageId.is_in([format!("<{bare}>"), bare.to_owned()]),
                )
            }
            BounceTarget::Event(row_key) => query
                .filter(delivery_log::Column::EventId.eq(*row_key))
                .filter(delivery_log::Column::Status.is_in([
                    DeliveryStatus::Sent.as_str(),
                    DeliveryStatus::Bounced.as_str(),
                ]))
                .order_by_desc(delivery_log::Column::Attempt),
        };
        query.limit(1).one(txn).await.map_err(|e| self.error(e))
    }
}
