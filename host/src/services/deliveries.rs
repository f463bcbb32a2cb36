//! Delivery services: handing events to the delivery engine, and reading back final outcomes.

use mc_plugin_api::services::{
    AppliedOutcomes, ApplyDeliveryOutcomes, EnqueueDeliveries, EnqueuedDeliveries, FinalDeliveries,
    FinalDelivery, ListFinalDeliveries,
};

use super::{Caller, HostServices, ServiceError, stored};
use crate::db::entities::event::{public_id, split_public_id};
use mc_plugin_api::EventStatus;

/// Most entries one call lists.
const MAX_LIST: u32 = 10_000;

/// The event statuses a final delivery entry can give its event.
const DELIVERY_OUTCOMES: [EventStatus; 3] = [
    EventStatus::Sent,
    EventStatus::Ignored,
    EventStatus::DeliveryFailed,
];

impl HostServices {
    /// `delivery.enqueue`.
    pub(super) async fn enqueue_deliveries(
        &self,
        caller: Caller<'_>,
        request: EnqueueDeliveries,
    ) -> Result<EnqueuedDeliveries, ServiceError> {
        let items: Vec<(i64, String, i32)> = request
            .deliveries
            .into_iter()
            .map(|d| {
                (
                    split_public_id(d.event_id).1,
                    d.template_name,
                    d.template_version,
                )
            })
            .collect();
        let enqueued = self
            .store
            .enqueue_deliveries(caller.claims.claimer(), &items)
            .await?;
        if enqueued > 0
            && let Some(delivery) = &self.delivery
        {
            delivery.wake();
        }
        Ok(EnqueuedDeliveries { enqueued })
    }

    /// `deliveries.finalUncopied`.
    pub(super) async fn final_deliveries(
        &self,
        request: ListFinalDeliveries,
    ) -> Result<FinalDeliveries, ServiceError> {
        if request.limit == 0 || request.limit > MAX_LIST {
            return Err(ServiceError::BadRequest(format!(
                "limit must be 1 to {MAX_LIST}"
            )));
        }
        let entries = self
            .store
            .final_uncopied_deliveries(u64::from(request.limit))
            .await?;
        let events = self
            .store
            .events_by_row_keys(&entries.iter().map(|e| e.event_id).collect::<Vec<_>>())
            .await?;
        Ok(FinalDeliveries {
            deliveries: entries
                .into_iter()
                .map(|entry| {
                    Ok(FinalDelivery {
                        log_id: entry.id,
                        // The public id needs the event's instance byte; an entry whose event is gone
                        // keeps its row key so it can still be marked copied.
                        event_id: events
                            .get(&entry.event_id)
                            .map_or(entry.event_id, |e| public_id(e.instance_id, e.id)),
                        status: stored(&entry.status)?,
                    })
                })
                .collect::<Result<_, ServiceError>>()?,
        })
    }

    /// `events.applyDeliveryOutcomes`.
    pub(super) async fn apply_delivery_outcomes(
        &self,
        request: ApplyDeliveryOutcomes,
    ) -> Result<AppliedOutcomes, ServiceError> {
        let outcomes = request
            .outcomes
            .into_iter()
            .map(|o| {
                let status = o.event_status;
                if !DELIVERY_OUTCOMES.contains(&status) {
                    return Err(ServiceError::BadRequest(format!(
                        "`{status}` is not a delivery outcome (sent, ignored, delivery_failed)"
                    )));
                }
                Ok((o.log_id, split_public_id(o.event_id).1, status))
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        let applied = self.store.apply_delivery_outcomes(&outcomes).await?;
        for status in DELIVERY_OUTCOMES {
            let n = outcomes.iter().filter(|(_, _, s)| *s == status).count() as u64;
            self.metrics.record_events_final(status, n.min(applied));
        }
        Ok(AppliedOutcomes { applied })
    }
}
