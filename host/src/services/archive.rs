//! Control-instance services: the execution instances, HTTP to them, and the archive.

use std::sync::Arc;

use chrono::Utc;
use mc_plugin_api::services::{
    ArchiveCursor, GetArchiveCursor, InstanceAnswer, InstanceInfo, InstanceList, ListInstances,
    RecordArchiveError, RecordedArchiveError, RequestInstance, StoreArchivePage, StoredArchivePage,
};

use super::{HostServices, ServiceError};
use crate::control::feed::FeedEvent;
use crate::control::{ArchiveMonitor, ExecutionInstances};
use crate::store::ArchiveStoreError;

/// What a control instance adds to the services.
pub struct ControlServices {
    pub instances: Arc<ExecutionInstances>,
    pub monitor: Arc<ArchiveMonitor>,
}

/// Longest error text kept per instance.
const MAX_ERROR_CHARS: usize = 2000;

impl HostServices {
    fn control(&self) -> Result<&ControlServices, ServiceError> {
        self.control.as_deref().ok_or_else(|| {
            ServiceError::BadRequest(
                "this instance has no [[execution_instances]]: it is not a control instance"
                    .to_owned(),
            )
        })
    }

    /// `instances.list`.
    pub(super) async fn list_instances(
        &self,
        _request: ListInstances,
    ) -> Result<InstanceList, ServiceError> {
        let Some(control) = self.control.as_deref() else {
            return Ok(InstanceList {
                instances: Vec::new(),
            });
        };
        let instances = &control.instances;
        Ok(InstanceList {
            instances: instances
                .names()
                .map(|name| InstanceInfo {
                    name: name.to_owned(),
                    url: instances.url_of(name).unwrap_or_default().to_owned(),
                })
                .collect(),
        })
    }

    /// `instances.request`.
    pub(super) async fn request_instance(
        &self,
        request: RequestInstance,
    ) -> Result<InstanceAnswer, ServiceError> {
        let answer = self
            .control()?
            .instances
            .request(
                &request.instance,
                &request.method,
                &request.path,
                request.body.as_ref(),
            )
            .await
            .map_err(|e| ServiceError::Instance(e.to_string()))?;
        Ok(InstanceAnswer {
            status: answer.status,
            body: answer.body,
        })
    }

    /// `archive.cursor`.
    pub(super) async fn archive_cursor(
        &self,
        request: GetArchiveCursor,
    ) -> Result<ArchiveCursor, ServiceError> {
        self.known_instance(&request.instance)?;
        Ok(ArchiveCursor {
            cursor: self.store.archive_cursor(&request.instance).await?,
        })
    }

    /// `archive.store`.
    pub(super) async fn store_archive_page(
        &self,
        request: StoreArchivePage,
    ) -> Result<StoredArchivePage, ServiceError> {
        let control = self.known_instance(&request.instance)?;
        let now = Utc::now();
        let mut rows = Vec::with_capacity(request.events.len());
        let mut delays = Vec::with_capacity(request.events.len());
        for (index, value) in request.events.into_iter().enumerate() {
            let event = FeedEvent::parse(value)
                .map_err(|e| ServiceError::BadRequest(format!("events[{index}]: {e}")))?;
            if let Some(finished) = event.finished_at {
                delays.push((now - finished).num_milliseconds().max(0) as f64 / 1000.0);
            }
            rows.push(event.into_archive_row(&request.instance, now));
        }
        let stored = self
            .store
            .store_archive_page(
                &request.instance,
                request.after.as_deref(),
                rows,
                &request.next_cursor,
            )
            .await
            .map_err(|e| match e {
                ArchiveStoreError::Store(e) => ServiceError::Store(e),
                moved @ ArchiveStoreError::CursorMoved { .. } => {
                    ServiceError::Conflict(moved.to_string())
                }
            })?;
        // A page with events the archive already had was read before (a retried run): its delays say
        // nothing about how late archiving is, so they are not recorded.
        let fresh = usize::try_from(stored.inserted).is_ok_and(|n| n == delays.len());
        let new_delays: &[f64] = if fresh { &delays } else { &[] };
        control.monitor.page_stored(
            &request.instance,
            &request.next_cursor,
            stored.inserted,
            stored.archived_total,
            request.caught_up,
            new_delays,
        );
        Ok(StoredArchivePage {
            inserted: stored.inserted,
            archived_total: stored.archived_total,
        })
    }

    /// `archive.recordError`.
    pub(super) async fn record_archive_error(
        &self,
        request: RecordArchiveError,
    ) -> Result<RecordedArchiveError, ServiceError> {
        let control = self.known_instance(&request.instance)?;
        let error: String = request.error.chars().take(MAX_ERROR_CHARS).collect();
        control.monitor.failed(&request.instance, &error);
        tracing::warn!(instance = %request.instance, error = %error, "archiving an execution instance failed");
        self.store
            .record_archive_error(&request.instance, &error)
            .await?;
        Ok(RecordedArchiveError {})
    }

    fn known_instance(&self, name: &str) -> Result<&ControlServices, ServiceError> {
        let control = self.control()?;
        if control.instances.names().any(|n| n == name) {
            Ok(control)
        } else {
            Err(ServiceError::BadRequest(format!(
                "no execution instance named `{name}` is configured"
            )))
        }
    }
}
