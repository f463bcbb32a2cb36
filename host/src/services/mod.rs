//! The services plugins call through the host vtable. A request names its service (`events.count`) and
//! carries JSON shaped by the request type in `mc_plugin_api::services`, so host and plugins share one
//! definition of every request and answer.

mod archive;
mod deliveries;
mod events;
mod templates;

pub use archive::ControlServices;

use std::future::Future;

use mc_plugin_api::HostRequest;
use mc_plugin_api::services::{
    ApplyDeliveryOutcomes, ClaimEvents, CountEvents, EnqueueDeliveries, FindPublishedTemplate,
    GetArchiveCursor, GetEvent, ListFinalDeliveries, ListInstances, RecordArchiveError,
    RequestInstance, StoreArchivePage, UpdateEvents,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::delivery::DeliveryHandle;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Every service name this host answers, for the error a plugin gets when it asks for another one.
pub const SERVICES: &[&str] = &[
    CountEvents::SERVICE,
    ClaimEvents::SERVICE,
    UpdateEvents::SERVICE,
    GetEvent::SERVICE,
    FindPublishedTemplate::SERVICE,
    EnqueueDeliveries::SERVICE,
    ListFinalDeliveries::SERVICE,
    ApplyDeliveryOutcomes::SERVICE,
    ListInstances::SERVICE,
    RequestInstance::SERVICE,
    GetArchiveCursor::SERVICE,
    StoreArchivePage::SERVICE,
    RecordArchiveError::SERVICE,
];

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("unknown host service `{service}`; this host offers: {}", SERVICES.join(", "))]
    Unknown { service: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An execution instance could not be reached or answered garbage.
    #[error("{0}")]
    Instance(String),
    /// The request lost a race with another run; nothing was changed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value outside the vocabulary this host knows (written by a newer version).
    #[error("the store holds an {0}")]
    Unreadable(#[from] mc_plugin_api::UnknownName),
}

/// A stored column value as its vocabulary type.
fn stored<T>(value: &str) -> Result<T, ServiceError>
where
    T: std::str::FromStr<Err = mc_plugin_api::UnknownName>,
{
    Ok(value.parse()?)
}

/// Who is calling, for logs and (later) per-workflow limits.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub workflow: &'a str,
    pub plugin: &'a str,
}

/// The host's services, shared by every run.
pub struct HostServices {
    pub store: Store,
    /// Who this process is in claims (see [`HostServices::claimer_for`]).
    claimer: String,
    /// The delivery engine, woken when attempts are queued (absent on a control-only instance).
    delivery: Option<DeliveryHandle>,
    /// The execution instances and archive monitor (a control instance with `[[execution_instances]]`).
    control: Option<std::sync::Arc<ControlServices>>,
    metrics: Metrics,
}

impl HostServices {
    pub fn new(
        store: Store,
        claimer: String,
        delivery: Option<DeliveryHandle>,
        control: Option<std::sync::Arc<ControlServices>>,
        metrics: Metrics,
    ) -> Self {
        HostServices {
            store,
            claimer,
            delivery,
            control,
            metrics,
        }
    }

    /// Who this process is in claims: the instance and the process, so that the claims of a crashed
    /// process are never mistaken for this one's.
    pub fn claimer_for(instance: &str) -> String {
        format!("{instance}/pid-{}", std::process::id())
    }

    /// Answers one call: decodes the request, runs the service, encodes the answer.
    pub async fn dispatch(
        &self,
        caller: Caller<'_>,
        service: &str,
        request: &str,
    ) -> Result<String, ServiceError> {
        tracing::trace!(
            workflow = caller.workflow,
            plugin = caller.plugin,
            service,
            "host service call"
        );
        match service {
            CountEvents::SERVICE => answer(request, |r| self.count_events(r)).await,
            ClaimEvents::SERVICE => answer(request, |r| self.claim_events(r)).await,
            UpdateEvents::SERVICE => answer(request, |r| self.update_events(r)).await,
            GetEvent::SERVICE => answer(request, |r| self.get_event(r)).await,
            FindPublishedTemplate::SERVICE => {
                answer(request, |r| self.find_published_template(r)).await
            }
            EnqueueDeliveries::SERVICE => answer(request, |r| self.enqueue_deliveries(r)).await,
            ListFinalDeliveries::SERVICE => answer(request, |r| self.final_deliveries(r)).await,
            ApplyDeliveryOutcomes::SERVICE => {
                answer(request, |r| self.apply_delivery_outcomes(r)).await
            }
            ListInstances::SERVICE => answer(request, |r| self.list_instances(r)).await,
            RequestInstance::SERVICE => answer(request, |r| self.request_instance(r)).await,
            GetArchiveCursor::SERVICE => answer(request, |r| self.archive_cursor(r)).await,
            StoreArchivePage::SERVICE => answer(request, |r| self.store_archive_page(r)).await,
            RecordArchiveError::SERVICE => answer(request, |r| self.record_archive_error(r)).await,
            other => Err(ServiceError::Unknown {
                service: other.to_owned(),
            }),
        }
    }
}

async fn answer<R, F, Fut>(request: &str, service: F) -> Result<String, ServiceError>
where
    R: HostRequest + DeserializeOwned,
    R::Response: Serialize,
    F: FnOnce(R) -> Fut,
    Fut: Future<Output = Result<R::Response, ServiceError>>,
{
    let request: R =
        serde_json::from_str(request).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let response = service(request).await?;
    serde_json::to_string(&response).map_err(|e| ServiceError::BadRequest(e.to_string()))
}
