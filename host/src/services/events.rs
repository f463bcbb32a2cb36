//! Event services: what workflows may ask of the event store.

use std::time::Duration;

use mc_plugin_api::services::{
    ClaimEvents, ClaimedEvents, CountEvents, DeliveryRecord, EventCount, EventRecord,
    EventWithDeliveries, GetEvent, UpdateEvents, UpdatedEvents,
};

use super::{Caller, HostServices, ServiceError, stored};
use crate::api::view;
use crate::db::entities::delivery_log;
use crate::db::entities::event::{self, split_public_id};
use crate::store::{EventUpdate, Unreadable};
use mc_plugin_api::{EventStatus, Queue};

/// Longest lease a plugin may take: a claim outliving its workflow's deadline would only delay
/// takeover after a crash.
const MAX_LEASE: Duration = Duration::from_secs(3600);
/// Most events one claim returns.
const MAX_CLAIM: u32 = 10_000;

impl HostServices {
    /// `events.count`.
    pub(super) async fn count_events(
        &self,
        request: CountEvents,
    ) -> Result<EventCount, ServiceError> {
        let count = self
            .store
            .count_events(request.queue, request.status.map(EventStatus::as_str))
            .await?;
        Ok(EventCount { count })
    }

    /// `events.claim`.
    pub(super) async fn claim_events(
        &self,
        caller: Caller<'_>,
        request: ClaimEvents,
    ) -> Result<ClaimedEvents, ServiceError> {
        if request.limit == 0 || request.limit > MAX_CLAIM {
            return Err(ServiceError::BadRequest(format!(
                "limit must be 1 to {MAX_CLAIM}"
            )));
        }
        if request.lease_seconds == 0 {
            return Err(ServiceError::BadRequest(
                "leaseSeconds must be at least 1".to_owned(),
            ));
        }
        let lease = Duration::from_secs(u64::from(request.lease_seconds)).min(MAX_LEASE);
        self.release_abandoned().await;
        let claim = self
            .store
            .claim_events(
                request.queue,
                u64::from(request.limit),
                caller.claims.claimer(),
                lease,
            )
            .await?;
        if !claim.events.is_empty() || !claim.unreadable.is_empty() {
            caller.claims.note_claimed();
        }
        let mut events = Vec::with_capacity(claim.events.len());
        let mut unreadable = claim.unreadable;
        for event in claim.events {
            match record(&event) {
                Ok(record) => events.push(record),
                // A value outside this host's vocabulary (a channel written by a newer version): the
                // workflow could not handle it either.
                Err(e) => unreadable.push(Unreadable {
                    event,
                    reason: e.to_string(),
                }),
            }
        }
        if !unreadable.is_empty() {
            self.set_apart(caller, request.queue, &unreadable).await?;
        }
        Ok(ClaimedEvents { events })
    }

    /// Sets apart claimed events that cannot be processed (see `store::set_apart`), so the run goes on
    /// with the others; says so in the log and the metrics.
    async fn set_apart(
        &self,
        caller: Caller<'_>,
        queue: Queue,
        unreadable: &[Unreadable],
    ) -> Result<(), ServiceError> {
        let set_apart = self
            .store
            .set_apart_events(caller.claims.claimer(), unreadable)
            .await?;
        for item in unreadable
            .iter()
            .filter(|u| set_apart.contains(&u.event.id))
        {
            tracing::warn!(
                workflow = caller.workflow,
                event = %view::id_string(item.event.public_id()),
                queue = queue.as_str(),
                reason = %item.reason,
                "event set apart as delivery_failed: it cannot be processed"
            );
        }
        let n = set_apart.len() as u64;
        self.metrics.record_events_unreadable(queue, n);
        self.metrics
            .record_events_final(EventStatus::DeliveryFailed, n);
        Ok(())
    }

    /// `events.update`.
    pub(super) async fn update_events(
        &self,
        caller: Caller<'_>,
        request: UpdateEvents,
    ) -> Result<UpdatedEvents, ServiceError> {
        let updates = request
            .changes
            .into_iter()
            .map(|change| {
                let status = change.status;
                let template = match (change.template_name, change.template_version) {
                    (Some(name), Some(version)) => Some((name, version)),
                    (None, None) => None,
                    _ => {
                        return Err(ServiceError::BadRequest(
                            "templateName and templateVersion go together".to_owned(),
                        ));
                    }
                };
                Ok(EventUpdate {
                    row_key: split_public_id(change.id).1,
                    status,
                    template,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let updated = self
            .store
            .update_claimed_events(caller.claims.claimer(), &updates)
            .await?;
        // Counted when every change applied (the usual case); a partial update means some claims had
        // lapsed, and those events will be counted by whoever finishes them.
        if updated as usize == updates.len() {
            for status in EventStatus::ALL.into_iter().filter(|s| s.is_final()) {
                let n = updates.iter().filter(|u| u.status == status).count() as u64;
                self.metrics.record_events_final(status, n);
            }
        }
        Ok(UpdatedEvents { updated })
    }

    /// `events.get`.
    pub(super) async fn get_event(
        &self,
        request: GetEvent,
    ) -> Result<EventWithDeliveries, ServiceError> {
        Ok(match self.store.get_event(request.id).await? {
            Some((event, deliveries)) => EventWithDeliveries {
                event: Some(record(&event)?),
                deliveries: deliveries
                    .iter()
                    .map(delivery_record)
                    .collect::<Result<_, _>>()?,
            },
            None => EventWithDeliveries {
                event: None,
                deliveries: Vec::new(),
            },
        })
    }
}

fn record(e: &event::Model) -> Result<EventRecord, ServiceError> {
    Ok(EventRecord {
        id: e.public_id(),
        queue: stored(&e.queue)?,
        status: stored(&e.status)?,
        event_type: e.event_type.clone(),
        channel: stored(&e.channel)?,
        email: e.email.clone(),
        mobile_phone: e.mobile_phone.clone(),
        external_id: e.external_id.clone(),
        language: e.language.clone(),
        ctx: e.ctx.clone(),
        scheduled_at_millis: e.scheduled_at.map(|t| t.timestamp_millis()),
        expires_at_millis: e.expires_at.map(|t| t.timestamp_millis()),
        created_at_millis: e.created_at.timestamp_millis(),
        template_name: e.template_name.clone(),
        template_version: e.template_version,
    })
}

fn delivery_record(d: &delivery_log::Model) -> Result<DeliveryRecord, ServiceError> {
    Ok(DeliveryRecord {
        attempt: d.attempt,
        channel: stored(&d.channel)?,
        address: d.address.clone(),
        status: stored(&d.status)?,
        message_id: d.message_id.clone(),
        error: d.error.clone(),
        is_final: d.is_final,
        at_millis: d.created_at.timestamp_millis(),
    })
}
