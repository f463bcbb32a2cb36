//! Delivery: the host sends what the processing workflows hand over, through the channels it owns
//! (SMTP, the SMS gateway), and records every attempt in the delivery log.

mod dkim;
mod email;
mod engine;
mod mime;
mod outcome;
mod proof;
mod sms;
mod smtp_pool;
mod throttle;

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};

pub use dkim::{DkimKeyError, DkimSigners};
pub use email::EmailChannel;
pub use engine::{Channel, Engine};
pub use outcome::SendOutcome;
pub use proof::{ProofError, ProofSender};
pub use sms::SmsChannel;

use crate::bounces::Bounces;
use crate::config::ChannelsConfig;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::templates::{RenderLimits, TemplateCache};

/// Compiled templates kept by the engine.
const TEMPLATE_CACHE_CAPACITY: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Email(#[from] email::EmailConfigError),
    #[error(transparent)]
    Sms(#[from] sms::SmsConfigError),
}

/// Wakes the engine when new attempts are queued.
#[derive(Clone)]
pub struct DeliveryHandle {
    wake: Arc<Notify>,
    proofs: ProofSender,
}

impl DeliveryHandle {
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The engine's channels, for proofs.
    pub fn proofs(&self) -> ProofSender {
        self.proofs.clone()
    }
}

/// What the engine needs beside the channels' configuration.
pub struct DeliverySetup {
    pub limits: RenderLimits,
    /// VERP envelope senders (`[bounces]`).
    pub bounces: Bounces,
    /// `[quarantine] expire_after`.
    pub quarantine_expiry: Option<std::time::Duration>,
}

/// Builds the channels and starts the engine, rendering under `setup.limits`.
pub fn start(
    channels: &ChannelsConfig,
    setup: DeliverySetup,
    store: Store,
    claimer: String,
    metrics: Metrics,
    on_final: impl Fn() + Send + Sync + 'static,
    shutdown: Shutdown,
) -> Result<DeliveryHandle, DeliveryError> {
    let email = match &channels.email {
        Some(config) => Some(Channel {
            sender: Arc::new(EmailChannel::new(config)?.with_bounces(setup.bounces.clone())),
            retry: config.retry.clone(),
            permits: Arc::new(Semaphore::new(config.pool_size.max(1) as usize)),
        }),
        None => None,
    };
    let throttle = channels
        .email
        .as_ref()
        .map(|config| throttle::Throttle::new(&config.domains))
        .unwrap_or_default();
    let sms = match &channels.sms {
        Some(config) => Some(Channel {
            sender: Arc::new(SmsChannel::new(config)?),
            retry: config.retry.clone(),
            permits: Arc::new(Semaphore::new(config.concurrency.max(1) as usize)),
        }),
        None => None,
    };
    if email.is_none() && sms.is_none() {
        tracing::warn!(
            "no delivery channel configured: deliveries will fail until [channels.email] or [channels.sms] is set"
        );
    }
    let proofs = ProofSender {
        email: email
            .as_ref()
            .map(|c| (Arc::clone(&c.sender), Arc::clone(&c.permits))),
        sms: sms
            .as_ref()
            .map(|c| (Arc::clone(&c.sender), Arc::clone(&c.permits))),
    };
    let wake = Arc::new(Notify::new());
    let engine = Engine {
        store,
        claimer,
        email,
        sms,
        throttle,
        templates: Arc::new(TemplateCache::with_limits(
            TEMPLATE_CACHE_CAPACITY,
            setup.limits,
        )),
        metrics,
        quarantine_expiry: setup.quarantine_expiry,
        wake: Arc::clone(&wake),
        wake_delay: channels.wake_delay,
        on_final: Box::new(on_final),
    };
    tokio::spawn(engine.run(shutdown));
    Ok(DeliveryHandle { wake, proofs })
}
