//! Bounces (SPEC "Deliverability"): the VERP envelope sender of outgoing mail ([`token`]), the bounce
//! SMTP listener (`[bounces] smtp_listen`, [`listener`] and [`session`]), what a received message says
//! ([`report`]), and applying a bounce to the delivery log, the event and the quarantine
//! ([`Bounces::apply`], over [`crate::store::Store::apply_bounce`]), for both the listener and
//! `POST /api/v1/bounces`.

pub mod listener;
pub mod report;
mod session;
pub mod token;

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config::BouncesConfig;
use crate::metrics::Metrics;
use crate::store::{BounceKind, BounceOutcome, BounceReport, BounceTarget, Store, StoreError};
pub use token::{TokenError, TokenSigner, TokenTarget};

/// The `host_secrets` row of the generated signing key.
const SIGNING_KEY_SECRET: &str = "bounce_signing_key";
/// Longest diagnostic kept (characters).
const MAX_DIAGNOSTIC_CHARS: usize = 1000;

/// `text` cut to [`MAX_DIAGNOSTIC_CHARS`], control characters turned into spaces.
pub fn clip(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DIAGNOSTIC_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Where a bounce came from (the `source` label of `mc_bounces_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceSource {
    Smtp,
    Http,
}

impl BounceSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            BounceSource::Smtp => "smtp",
            BounceSource::Http => "http",
        }
    }
}

/// The `outcome` label of `mc_bounces_total` for what [`Store::apply_bounce`] did.
pub fn outcome_label(outcome: &BounceOutcome, kind: BounceKind) -> &'static str {
    match (outcome, kind) {
        (BounceOutcome::Bounced { .. }, BounceKind::Complaint) => "complaint",
        (BounceOutcome::Bounced { .. }, _) => "bounced",
        (BounceOutcome::Recorded { .. }, _) => "soft_recorded",
        (BounceOutcome::AlreadyBounced { .. }, _) => "duplicate",
        (BounceOutcome::InFlight { .. }, _) => "in_flight",
        (BounceOutcome::Unknown, _) => "unknown",
    }
}

/// Signing, verifying and applying bounces. Cheap to clone.
#[derive(Clone)]
pub struct Bounces {
    store: Store,
    metrics: Metrics,
    /// `[bounces] return_path_domain`, lower case; `None`: no VERP.
    domain: Option<String>,
    configured_key: Option<String>,
    signer: Arc<OnceCell<TokenSigner>>,
}

impl Bounces {
    pub fn new(config: &BouncesConfig, store: Store, metrics: Metrics) -> Self {
        Bounces {
            store,
            metrics,
            domain: config.domain(),
            configured_key: config.signing_key.clone(),
            signer: Arc::new(OnceCell::new()),
        }
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The signer: the configured key, or the one kept in the database (generated on first use).
    pub async fn signer(&self) -> Result<&TokenSigner, StoreError> {
        self.signer
            .get_or_try_init(|| async {
                let key = match &self.configured_key {
                    Some(key) => key.clone(),
                    None => {
                        self.store
                            .host_secret(SIGNING_KEY_SECRET, random_key)
                            .await?
                    }
                };
                Ok(TokenSigner::new(key.as_bytes()))
            })
            .await
    }

    /// The envelope sender of entry `log_id` of event `event_id`: `bounces+<token>@<domain>`, or `None`
    /// without `return_path_domain` (or, logged, when the key cannot be read: the message then goes out
    /// with its `From` as envelope sender, as without VERP).
    pub async fn envelope_sender(&self, event_id: u64, log_id: i64) -> Option<String> {
        let domain = self.domain.as_deref()?;
        match self.signer().await {
            Ok(signer) => Some(signer.address(event_id, log_id, domain)),
            Err(error) => {
                tracing::warn!(%error, "cannot read the bounce signing key; sending without VERP");
                None
            }
        }
    }

    /// Applies one bounce and counts it.
    pub async fn apply(
        &self,
        source: BounceSource,
        target: &BounceTarget,
        report: &BounceReport,
    ) -> Result<BounceOutcome, StoreError> {
        let outcome = self.store.apply_bounce(target, report).await?;
        let label = outcome_label(&outcome, report.kind);
        self.metrics.record_bounce(source.as_str(), label);
        if let BounceOutcome::Bounced { .. } = outcome {
            let reason = if report.kind == BounceKind::Complaint {
                crate::store::QuarantineReason::Complaint
            } else {
                crate::store::QuarantineReason::HardBounce
            };
            self.metrics.record_quarantine_added(reason.as_str());
        }
        tracing::info!(
            source = source.as_str(),
            kind = report.kind.as_str(),
            ?target,
            outcome = label,
            diagnostic = %clip(&report.diagnostic),
            "bounce"
        );
        Ok(outcome)
    }
}

/// 32 random bytes in hex.
fn random_key() -> String {
    let mut bytes = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // No entropy source is a broken machine; refuse to sign with a guessable key.
        panic!("no random source for the bounce signing key: {e}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
