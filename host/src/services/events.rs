//! Event services: what workflows may ask of the event store.

use mc_plugin_api::services::{CountEvents, EventCount};

use super::{HostServices, ServiceError};

impl HostServices {
    /// `events.count`.
    pub(super) async fn count_events(
        &self,
        request: CountEvents,
    ) -> Result<EventCount, ServiceError> {
        let count = self
            .store
            .count_events(request.queue, request.status.as_deref())
            .await?;
        Ok(EventCount { count })
    }
}
