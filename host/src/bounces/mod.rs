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
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::config::BouncesConfig;
use crate::metrics::Metrics;
use crate::store::{BounceKind, BounceOutcome, BounceReport, BounceTarget, Store, StoreError};
pub use token::{TokenError, TokenSigner, TokenTarget};

/// The `host_secrets` row of the generated signing key.
const SIGNING_KEY_SECRET: &str = "bounce_signing_key";
/// How long a bounce for an entry still being sent or recorded waits for its outcome before the
/// sender is told to try again later.
const IN_FLIGHT_PATIENCE: Duration = Duration::from_secs(5);
/// The first pause between two tries of such a bounce; it doubles up to [`IN_FLIGHT_MAX_PAUSE`].
const IN_FLIGHT_FIRST_PAUSE: Duration = Duration::from_millis(25);
const IN_FLIGHT_MAX_PAUSE: Duration = Duration::from_millis(500);
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

    /// Applies one bounce and counts it. A bounce for an entry whose send is not recorded yet is tried
    /// again for up to [`IN_FLIGHT_PATIENCE`]: a relay next door can bounce faster than the delivery
    /// engine writes its group of outcomes, and answering `451` there would leave the bounce to the
    /// relay's retry schedule (Postfix: five minutes and more).
    pub async fn apply(
        &self,
        source: BounceSource,
        target: &BounceTarget,
        report: &BounceReport,
    ) -> Result<BounceOutcome, StoreError> {
        let deadline = tokio::time::Instant::now() + IN_FLIGHT_PATIENCE;
        let mut pause = IN_FLIGHT_FIRST_PAUSE;
        let outcome = loop {
            let outcome = self.store.apply_bounce(target, report).await?;
            if !matches!(outcome, BounceOutcome::InFlight { .. })
                || tokio::time::Instant::now() + pause > deadline
            {
                break outcome;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(IN_FLIGHT_MAX_PAUSE);
        };
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use mc_plugin_api::{DeliveryStatus, Queue};

    use super::*;
    use crate::db::entities::delivery_log;
    use crate::store::testing::{plain_email_event, sqlite_store};
    use crate::store::{AttemptResult, Submission};

    const LEASE: Duration = Duration::from_secs(60);

    /// A bounce that comes in while its entry's send is still being recorded waits for the outcome
    /// (a relay next door bounces within milliseconds of its `250`), and one whose entry stays
    /// unrecorded is answered `InFlight` once the patience is spent.
    #[tokio::test]
    async fn a_bounce_racing_its_sends_outcome_waits_for_it() {
        let (_dir, store) = sqlite_store().await;
        let submission = Submission {
            queue: Queue::Realtime,
            events: vec![plain_email_event(), plain_email_event()],
            idempotency: None,
        };
        store.submit(1, &[submission]).await.unwrap();
        let events = store
            .claim_events(Queue::Realtime, 10, "rt", LEASE)
            .await
            .unwrap()
            .events;
        let items: Vec<(i64, String, i32)> =
            events.iter().map(|e| (e.id, "t".to_owned(), 1)).collect();
        store.enqueue_deliveries("rt", &items).await.unwrap();
        let claimed = store.claim_due_deliveries("mail", 10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 2);
        let target = |entry: &delivery_log::Model| BounceTarget::Entry {
            log_id: entry.id,
            event_row_key: entry.event_id,
        };
        let report = BounceReport {
            kind: BounceKind::Hard,
            diagnostic: "5.1.1 mailbox unavailable".to_owned(),
            address: None,
        };
        let bounces = Bounces::new(&BouncesConfig::default(), store.clone(), Metrics::new());

        let racing = {
            let (bounces, target, report) = (bounces.clone(), target(&claimed[0]), report.clone());
            tokio::spawn(async move { bounces.apply(BounceSource::Smtp, &target, &report).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!racing.is_finished(), "the bounce waits for the outcome");
        let by_id: HashMap<i64, _> = claimed.iter().map(|d| (d.id, d.clone())).collect();
        let sent = AttemptResult {
            log_id: claimed[0].id,
            status: DeliveryStatus::Sent,
            is_final: true,
            message_id: Some("<m@example.com>".to_owned()),
            error: None,
            retry_at: None,
            quarantine: None,
            expire_event: false,
        };
        store
            .record_attempts("mail", &by_id, &[sent])
            .await
            .unwrap();
        let outcome = racing.await.unwrap().unwrap();
        assert!(
            matches!(outcome, BounceOutcome::Bounced { entry, .. } if entry == claimed[0].id),
            "{outcome:?}"
        );

        let started = tokio::time::Instant::now();
        let unrecorded = bounces
            .apply(BounceSource::Http, &target(&claimed[1]), &report)
            .await
            .unwrap();
        assert_eq!(
            unrecorded,
            BounceOutcome::InFlight {
                entry: claimed[1].id
            }
        );
        let waited = started.elapsed();
        assert!(
            waited >= IN_FLIGHT_PATIENCE - IN_FLIGHT_MAX_PAUSE,
            "it gave up after {waited:?}"
        );
    }
}
