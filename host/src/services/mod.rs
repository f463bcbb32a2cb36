//! The services plugins call through the host vtable. A request names its service (`events.count`) and
//! carries JSON shaped by the request type in `mc_plugin_api::services`, so host and plugins share one
//! definition of every request and answer.

mod archive;
mod deliveries;
mod events;
mod templates;
pub mod webhooks;

pub use archive::ControlServices;

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mc_plugin_api::HostRequest;
use mc_plugin_api::services::{
    ApplyDeliveryOutcomes, ClaimEvents, CountEvents, EnqueueDeliveries, FindPublishedTemplate,
    GetArchiveCursor, GetEvent, ListFinalDeliveries, ListInstances, RecordArchiveError,
    RequestInstance, StoreArchivePage, UpdateEvents,
};
use mc_plugin_api::services::{ClaimWebhooks, RecordWebhookAttempts, SendWebhooks};
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
    ClaimWebhooks::SERVICE,
    SendWebhooks::SERVICE,
    RecordWebhookAttempts::SERVICE,
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

/// Who is calling: for logs, and the run whose claims a service call takes or settles.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub workflow: &'a str,
    pub plugin: &'a str,
    /// The claims of the calling run.
    pub claims: &'a RunClaims,
}

/// The claims of one workflow run. Each run claims events under a name of its own
/// (`<instance>/pid-<pid>/<workflow>#<run>`), so that when a run ends without settling what it claimed
/// (an error, a panic, a timeout, the database lost mid-run) the host can hand those events back at
/// once ([`HostServices::abandon`]) instead of leaving them to wait out their lease; a late call from an
/// abandoned run can then change nothing, since its name no longer holds any claim.
#[derive(Debug)]
pub struct RunClaims {
    claimer: String,
    claimed: AtomicBool,
}

impl RunClaims {
    /// The claims of run `run` of `workflow` in the process whose claimer is `process`.
    pub fn new(process: &str, workflow: &str, run: u64) -> RunClaims {
        RunClaims {
            claimer: format!("{process}/{workflow}#{run}"),
            claimed: AtomicBool::new(false),
        }
    }

    /// The name the run's claims are held under.
    pub fn claimer(&self) -> &str {
        &self.claimer
    }

    /// Whether the run claimed anything (only such a run can leave claims behind).
    pub fn claimed_any(&self) -> bool {
        self.claimed.load(Ordering::Relaxed)
    }

    fn note_claimed(&self) {
        self.claimed.store(true, Ordering::Relaxed);
    }
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
    /// Webhook delivery (an execution instance); `None` answers the webhook services with an error.
    webhooks: Option<std::sync::Arc<webhooks::WebhookDelivery>>,
    /// Claimers of runs that ended without settling their claims, released before the next claim.
    abandoned: Mutex<Vec<String>>,
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
            webhooks: None,
            abandoned: Mutex::default(),
        }
    }

    /// The same services, delivering webhooks with `delivery`.
    pub fn with_webhooks(mut self, delivery: webhooks::WebhookDelivery) -> Self {
        self.webhooks = Some(std::sync::Arc::new(delivery));
        self
    }

    /// This process's claimer (see [`HostServices::claimer_for`]).
    pub fn claimer(&self) -> &str {
        &self.claimer
    }

    /// Called by the runner when a run ended other than with a report (error, panic, timeout, drained):
    /// what it still holds is released before the next claim, rather than when its lease lapses. The
    /// release is deferred, not done here, because the usual reason a run fails is that the database is
    /// unreachable, and then the release could not be written either.
    pub fn abandon(&self, claims: &RunClaims) {
        if claims.claimed_any() {
            self.abandoned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(claims.claimer.clone());
        }
    }

    /// Releases the claims of abandoned runs; on failure they stay listed for the next attempt.
    async fn release_abandoned(&self) {
        let claimers = std::mem::take(
            &mut *self
                .abandoned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if claimers.is_empty() {
            return;
        }
        let released = match self.store.release_event_claims(&claimers).await {
            Ok(events) => self
                .store
                .release_webhook_claims(&claimers)
                .await
                .map(|notifications| events + notifications),
            Err(e) => Err(e),
        };
        match released {
            Ok(released) => {
                if released > 0 {
                    tracing::info!(
                        released,
                        runs = claimers.len(),
                        "released the events that failed runs had claimed"
                    );
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not release the claims of failed runs yet");
                self.abandoned
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(claimers);
            }
        }
    }

    /// Who this process is in claims: the instance and the process, so that the claims of a crashed
    /// process are never mistaken for this one's. Workflow runs claim events under this name followed by
    /// their own ([`RunClaims`]); the delivery engine claims attempts under this name.
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
            ClaimEvents::SERVICE => answer(request, |r| self.claim_events(caller, r)).await,
            UpdateEvents::SERVICE => answer(request, |r| self.update_events(caller, r)).await,
            GetEvent::SERVICE => answer(request, |r| self.get_event(r)).await,
            FindPublishedTemplate::SERVICE => {
                answer(request, |r| self.find_published_template(r)).await
            }
            EnqueueDeliveries::SERVICE => {
                answer(request, |r| self.enqueue_deliveries(caller, r)).await
            }
            ListFinalDeliveries::SERVICE => answer(request, |r| self.final_deliveries(r)).await,
            ApplyDeliveryOutcomes::SERVICE => {
                answer(request, |r| self.apply_delivery_outcomes(r)).await
            }
            ListInstances::SERVICE => answer(request, |r| self.list_instances(r)).await,
            RequestInstance::SERVICE => answer(request, |r| self.request_instance(r)).await,
            GetArchiveCursor::SERVICE => answer(request, |r| self.archive_cursor(r)).await,
            StoreArchivePage::SERVICE => answer(request, |r| self.store_archive_page(r)).await,
            RecordArchiveError::SERVICE => answer(request, |r| self.record_archive_error(r)).await,
            ClaimWebhooks::SERVICE => answer(request, |r| self.claim_webhooks(caller, r)).await,
            SendWebhooks::SERVICE => answer(request, |r| self.send_webhooks(caller, r)).await,
            RecordWebhookAttempts::SERVICE => {
                answer(request, |r| self.record_webhooks(caller, r)).await
            }
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
