//! The delivery engine: claims due attempts, decides (ignore, fail, send), sends through the channels,
//! records every attempt, and schedules retries with backoff.
//!
//! At-least-once: an attempt is claimed with a lease before it is sent, and its outcome is recorded after,
//! by one group transaction at a time while the other sends go on (group commit, as ingestion does). If
//! the process dies in between, the attempt is sent again once the claim is released (at the instance's
//! restart, or when the lease lapses for another instance): the duplicates are the sends accepted since
//! the last recorded group plus those in flight, at most 2 × [`RECORD_GROUP_MAX`] + the channel's
//! connections. An attempt whose send never started is simply sent.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, Semaphore};

use super::email::{EmailChannel, SendFor};
use super::outcome::SendOutcome;
use super::sms::SmsChannel;
use super::throttle::{Admission, Throttle};
use crate::config::RetryConfig;
use crate::db::entities::{delivery_log, event, template_version};
use crate::ingest::validate::{check_email, check_phone};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{AttemptResult, Store, StoreError};
use crate::templates::{RenderEvent, TemplateCache, TemplateContent};
use mc_plugin_api::DeliveryStatus;

/// How long a claimed attempt is ours; longer than any send with its timeout.
const LEASE: Duration = Duration::from_secs(120);
/// How often the engine looks for due retries when nobody wakes it.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Outcomes recorded per transaction at least (unless the round has no more): keeps commits (one fsync
/// each) fewer than sends at a trickle.
const RECORD_EVERY: usize = 8;
/// Outcomes recorded per transaction at most, and most outcomes waiting for the group being recorded:
/// bounds the re-sends after a crash to 2 × this plus the sends in flight. When the database falls that
/// far behind, sends wait for it.
const RECORD_GROUP_MAX: usize = 32;
/// Round loops claiming concurrently: while one round's last sends finish, the other claims and sends
/// what arrived meanwhile, so a round's tail never leaves connections idle or new attempts waiting. Each
/// channel's permits still bound the sends in flight.
const ROUNDS_IN_FLIGHT: usize = 2;
/// Back-off after a database error.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A configured channel with its retry policy and its concurrency.
pub struct Channel<C> {
    /// Shared with [`super::ProofSender`], so that proofs leave through the same connections.
    pub sender: Arc<C>,
    pub retry: RetryConfig,
    pub permits: Arc<Semaphore>,
}

/// Everything the engine needs.
pub struct Engine {
    pub store: Store,
    pub claimer: String,
    pub email: Option<Channel<EmailChannel>>,
    pub sms: Option<Channel<SmsChannel>>,
    /// Per recipient domain limits of the email channel.
    pub throttle: Throttle,
    pub templates: Arc<TemplateCache>,
    pub metrics: Metrics,
    /// `[quarantine] expire_after`: older entries no longer stop a send.
    pub quarantine_expiry: Option<Duration>,
    pub wake: Arc<Notify>,
    /// `[channels] wake_delay`: how long an idle engine, once woken, lets new attempts gather before
    /// it claims, so that a steady trickle is claimed a few at a time instead of a round per attempt.
    pub wake_delay: Duration,
    /// Called after a batch that produced final outcomes (wakes `updateEventsStatus`).
    pub on_final: Box<dyn Fn() + Send + Sync>,
}

impl Engine {
    /// Attempts claimed per round: enough to keep every channel connection busy.
    fn batch_size(&self) -> u64 {
        let email = self
            .email
            .as_ref()
            .map_or(0, |c| c.permits.available_permits());
        let sms = self
            .sms
            .as_ref()
            .map_or(0, |c| c.permits.available_permits());
        ((email + sms) * 8).clamp(16, 512) as u64
    }

    /// Runs [`ROUNDS_IN_FLIGHT`] round loops until shutdown.
    pub async fn run(self, shutdown: Shutdown) {
        let engine = Arc::new(self);
        let loops: Vec<_> = (0..ROUNDS_IN_FLIGHT)
            .map(|_| tokio::spawn(Arc::clone(&engine).rounds(shutdown.clone())))
            .collect();
        for round_loop in loops {
            if let Err(e) = round_loop.await {
                tracing::error!(error = %e, "a delivery round loop ended abnormally");
            }
        }
    }

    /// Claims, sends and records round after round, waiting for a wake-up (or a due retry) when idle.
    async fn rounds(self: Arc<Self>, mut shutdown: Shutdown) {
        let engine = self;
        // Attempts claimed by a round that failed before recording them (the database went away): handed
        // back before the next claim, so they are sent once it returns instead of after their lease.
        let mut unsettled: Vec<i64> = Vec::new();
        loop {
            if shutdown.is_triggered() {
                return;
            }
            match engine.round(&mut unsettled).await {
                Ok(0) => {
                    tokio::select! {
                        biased;
                        _ = shutdown.recv() => return,
                        _ = engine.wake.notified() => {
                            if !engine.wake_delay.is_zero() {
                                tokio::select! {
                                    biased;
                                    _ = shutdown.recv() => return,
                                    _ = tokio::time::sleep(engine.wake_delay) => {}
                                }
                            }
                        }
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "delivery round failed");
                    tokio::select! {
                        _ = shutdown.recv() => return,
                        _ = tokio::time::sleep(ERROR_PAUSE) => {}
                    }
                }
            }
        }
    }

    /// One round: claim, send, record. Returns how many attempts it handled. `unsettled` holds the
    /// attempts of a round that failed half-way; they are released first.
    async fn round(self: &Arc<Self>, unsettled: &mut Vec<i64>) -> Result<usize, StoreError> {
        if !unsettled.is_empty() {
            let released = self
                .store
                .release_delivery_claims(&self.claimer, unsettled)
                .await?;
            tracing::info!(
                released,
                "released the attempts a failed delivery round had claimed"
            );
            unsettled.clear();
        }
        let claimed = self
            .store
            .claim_due_deliveries(&self.claimer, self.batch_size(), LEASE)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        unsettled.extend(claimed.iter().map(|d| d.id));
        let keys: Vec<i64> = claimed.iter().map(|d| d.event_id).collect();
        let events = self.store.events_by_row_keys(&keys).await?;
        let mut template_keys: Vec<(String, i32)> = claimed
            .iter()
            .filter_map(|d| d.template_name.clone().zip(d.template_version))
            .collect();
        template_keys.sort();
        template_keys.dedup();
        let versions = self.store.template_versions(&template_keys).await?;
        let addresses: Vec<&str> = claimed
            .iter()
            .filter_map(|d| d.address.as_deref())
            .collect();
        let quarantined = self
            .store
            .quarantined(&addresses, self.quarantine_expiry)
            .await?;

        let context = RoundContext {
            events,
            versions,
            quarantined,
        };
        let claimed = self.hold_back_throttled(claimed, &context).await?;
        if claimed.is_empty() {
            unsettled.clear();
            return Ok(1);
        }
        // All at once (each channel's semaphore bounds how many really send concurrently), recording
        // outcomes while the other sends go on: one group transaction at a time, taking every outcome
        // that completed meanwhile (at least RECORD_EVERY unless the round is done, at most
        // RECORD_GROUP_MAX). Sends are never left unpolled while a group commits, and after a crash
        // only the unrecorded outcomes (at most 2 × RECORD_GROUP_MAX) plus those in flight are repeated.
        let by_id: HashMap<i64, delivery_log::Model> =
            claimed.iter().map(|d| (d.id, d.clone())).collect();
        let mut attempts: FuturesUnordered<_> = FuturesUnordered::new();
        for entry in &claimed {
            attempts.push(self.attempt(entry, &context));
        }
        let mut done: Vec<AttemptResult> = Vec::with_capacity(RECORD_GROUP_MAX);
        let mut recording: Option<Recording<'_>> = None;
        loop {
            if recording.is_none()
                && !done.is_empty()
                && (done.len() >= RECORD_EVERY || attempts.is_empty())
            {
                let group = std::mem::take(&mut done);
                let (store, claimer, by_id) = (&self.store, self.claimer.as_str(), &by_id);
                recording = Some(Box::pin(async move {
                    store.record_attempts(claimer, by_id, &group).await?;
                    Ok(group.iter().any(|r| r.is_final))
                }));
            }
            if recording.is_none() && attempts.is_empty() {
                break;
            }
            tokio::select! {
                Some(result) = attempts.next(), if !attempts.is_empty() && done.len() < RECORD_GROUP_MAX => {
                    done.push(result);
                }
                recorded = async { recording.as_mut().expect("a group is recording").await }, if recording.is_some() => {
                    recording = None;
                    if recorded? {
                        (self.on_final)();
                    }
                }
            }
        }
        unsettled.clear();
        Ok(claimed.len())
    }

    /// Hands back the email attempts over a per-domain limit, each due at its slot (no retry used, not
    /// failed); returns the others. Expired events are not held back: they are concluded at once.
    async fn hold_back_throttled(
        &self,
        claimed: Vec<delivery_log::Model>,
        context: &RoundContext,
    ) -> Result<Vec<delivery_log::Model>, StoreError> {
        if self.throttle.is_empty() {
            return Ok(claimed);
        }
        let limited: Vec<(i64, &str)> = claimed
            .iter()
            .filter(|d| channel_of(d) == mc_plugin_api::Channel::Email)
            .filter(|d| {
                context
                    .events
                    .get(&d.event_id)
                    .is_some_and(|e| expired(e).is_none())
            })
            .filter_map(|d| d.address.as_deref().map(|a| (d.id, a)))
            .collect();
        let mut deferred = Vec::new();
        for ((id, _), admission) in limited.iter().zip(self.throttle.admit(&limited)) {
            if let Admission::WaitUntil(at) = admission {
                deferred.push((*id, at));
            }
        }
        if deferred.is_empty() {
            return Ok(claimed);
        }
        let held = self
            .store
            .defer_deliveries(&self.claimer, &deferred)
            .await?;
        tracing::debug!(held, "attempts held back by per-domain limits");
        let ids: std::collections::HashSet<i64> = deferred.iter().map(|(id, _)| *id).collect();
        Ok(claimed
            .into_iter()
            .filter(|d| !ids.contains(&d.id))
            .collect())
    }

    /// Decides and, when there is something to send, sends one attempt.
    async fn attempt(&self, entry: &delivery_log::Model, context: &RoundContext) -> AttemptResult {
        let channel = channel_of(entry);
        let result = self.decide_and_send(entry, context).await;
        let label = match (result.status, result.is_final) {
            (DeliveryStatus::Sent, _) => "sent",
            (DeliveryStatus::Ignored, _) => "ignored",
            (_, true) if result.quarantine.is_some() => "permanent_failure",
            (_, true) => "failed",
            (_, false) => "transient_failure",
        };
        self.metrics.record_delivery_attempt(channel, label);
        result
    }

    async fn decide_and_send(
        &self,
        entry: &delivery_log::Model,
        context: &RoundContext,
    ) -> AttemptResult {
        let Some(event) = context.events.get(&entry.event_id) else {
            return fail(entry, "the event no longer exists".to_owned());
        };
        if let Some(at) = expired(event) {
            return expire(entry, at);
        }
        let Some(address) = entry.address.as_deref() else {
            return ignore(
                entry,
                format!("no {} address", address_kind(channel_of(entry))),
            );
        };
        let valid = if channel_of(entry) == mc_plugin_api::Channel::Sms {
            check_phone(address)
        } else {
            check_email(address)
        };
        if let Err(reason) = valid {
            return ignore(entry, format!("invalid address `{address}`: {reason}"));
        }
        if context.quarantined.contains(address) {
            return ignore(entry, format!("`{address}` is quarantined"));
        }
        let Some((name, version)) = entry.template_name.clone().zip(entry.template_version) else {
            return fail(entry, "no template linked".to_owned());
        };
        let Some(template) = context.versions.get(&(name.clone(), version)) else {
            return fail(
                entry,
                format!("template `{name}` version {version} no longer exists"),
            );
        };
        let content = TemplateContent {
            from: template.from_address.clone(),
            subject: template.subject.clone(),
            text: template.text_body.clone(),
            html: template.html_body.clone(),
        };
        let input = RenderEvent {
            ctx: event.ctx.clone(),
            email: event.email.clone(),
            mobile_phone: event.mobile_phone.clone(),
            language: event.language.clone(),
            external_id: event.external_id.clone(),
        };
        let event_id = event.public_id() as u64;
        // The channel's permit (and the domain's, for email) before rendering: a round's attempts
        // render as they get a connection, at most the channel's concurrency at once, instead of the
        // whole round piling onto the blocking pool at its start.
        let via = if channel_of(entry) == mc_plugin_api::Channel::Sms {
            match &self.sms {
                Some(channel) => Via::Sms(channel),
                None => {
                    return fail(
                        entry,
                        "the sms channel is not configured ([channels.sms])".to_owned(),
                    );
                }
            }
        } else {
            match &self.email {
                Some(channel) => Via::Email(channel),
                None => {
                    return fail(
                        entry,
                        "the email channel is not configured ([channels.email])".to_owned(),
                    );
                }
            }
        };
        let domain_limit = match via {
            Via::Email(_) => self.throttle.connections(address),
            Via::Sms(_) => None,
        };
        let _domain_permit = match &domain_limit {
            Some(limit) => Some(limit.acquire().await),
            None => None,
        };
        let (_permit, retry) = match via {
            Via::Sms(channel) => (channel.permits.acquire().await, &channel.retry),
            Via::Email(channel) => (channel.permits.acquire().await, &channel.retry),
        };
        // Off the async workers and bounded (fuel, output size, deadline): a runaway template fails
        // this attempt, finally, and nothing else.
        let rendered = match self
            .templates
            .render_bounded(name, version, content, input)
            .await
        {
            Ok(rendered) => rendered,
            Err(e) => return fail(entry, format!("render error: {e}")),
        };
        let outcome = match via {
            Via::Sms(channel) => {
                let text = rendered.text.clone().unwrap_or_default();
                channel.sender.send(address, &text, Some(event_id)).await
            }
            Via::Email(channel) => {
                channel
                    .sender
                    .send(
                        address,
                        &rendered,
                        SendFor::Attempt {
                            event_id,
                            attempt: entry.attempt,
                            log_id: entry.id,
                        },
                    )
                    .await
            }
        };
        self.conclude(entry, event, outcome, retry)
    }

    fn conclude(
        &self,
        entry: &delivery_log::Model,
        event: &event::Model,
        outcome: SendOutcome,
        retry: &RetryConfig,
    ) -> AttemptResult {
        match outcome {
            SendOutcome::Sent { message_id } => {
                let latency = (Utc::now() - event.created_at).to_std().unwrap_or_default();
                self.metrics
                    .record_delivery_latency(channel_of(entry), latency);
                AttemptResult {
                    log_id: entry.id,
                    status: DeliveryStatus::Sent,
                    is_final: true,
                    message_id,
                    error: None,
                    retry_at: None,
                    quarantine: None,
                    expire_event: false,
                }
            }
            SendOutcome::Permanent(reason) => AttemptResult {
                log_id: entry.id,
                status: DeliveryStatus::Failed,
                is_final: true,
                message_id: None,
                quarantine: Some(reason.clone()),
                expire_event: false,
                error: Some(reason),
                retry_at: None,
            },
            SendOutcome::Transient(reason) => {
                let now = Utc::now();
                let retries_done = u32::try_from(entry.attempt.max(1) - 1).unwrap_or(0);
                let next = now
                    + chrono::Duration::from_std(retry.backoff(retries_done + 1))
                        .unwrap_or_default();
                let deadline = entry.first_attempt_at.unwrap_or(entry.created_at)
                    + chrono::Duration::from_std(retry.retry_period)
                        .unwrap_or(chrono::Duration::MAX);
                if retries_done < retry.retries && next <= deadline {
                    AttemptResult {
                        log_id: entry.id,
                        status: DeliveryStatus::Failed,
                        is_final: false,
                        message_id: None,
                        error: Some(format!(
                            "{reason}; retry {} of {} at {}",
                            retries_done + 1,
                            retry.retries,
                            next.to_rfc3339()
                        )),
                        retry_at: Some(next),
                        quarantine: None,
                        expire_event: false,
                    }
                } else {
                    AttemptResult {
                        log_id: entry.id,
                        status: DeliveryStatus::Failed,
                        is_final: true,
                        message_id: None,
                        error: Some(format!(
                            "{reason}; gave up after {} attempts",
                            entry.attempt
                        )),
                        retry_at: None,
                        quarantine: None,
                        expire_event: false,
                    }
                }
            }
        }
    }
}

/// A group of outcomes being recorded: resolves to whether any of them was final.
type Recording<'a> = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>>;

/// The channel an attempt leaves through.
#[derive(Clone, Copy)]
enum Via<'a> {
    Email(&'a Channel<EmailChannel>),
    Sms(&'a Channel<SmsChannel>),
}

/// What one round loaded for all its attempts at once.
struct RoundContext {
    events: HashMap<i64, event::Model>,
    versions: HashMap<(String, i32), template_version::Model>,
    quarantined: std::collections::HashSet<String>,
}

/// The channel an entry goes out on: its stored name, anything but `sms` being email (the only other
/// value ingestion writes).
fn channel_of(entry: &delivery_log::Model) -> mc_plugin_api::Channel {
    match entry.channel.parse() {
        Ok(channel) => channel,
        Err(_) => mc_plugin_api::Channel::Email,
    }
}

fn address_kind(channel: mc_plugin_api::Channel) -> &'static str {
    match channel {
        mc_plugin_api::Channel::Sms => "mobile phone",
        mc_plugin_api::Channel::Email => "email",
    }
}

fn ignore(entry: &delivery_log::Model, reason: String) -> AttemptResult {
    AttemptResult {
        log_id: entry.id,
        status: DeliveryStatus::Ignored,
        is_final: true,
        message_id: None,
        error: Some(reason),
        retry_at: None,
        quarantine: None,
        expire_event: false,
    }
}

/// When `event`'s `expiration` has passed, that time: it is then not sent, not even on a retry.
fn expired(event: &event::Model) -> Option<chrono::DateTime<Utc>> {
    event.expires_at.filter(|at| *at <= Utc::now())
}

/// The attempt is not made: the event turns `expired`, the entry says why.
fn expire(entry: &delivery_log::Model, at: chrono::DateTime<Utc>) -> AttemptResult {
    AttemptResult {
        expire_event: true,
        ..fail(
            entry,
            format!(
                "not sent: the event expired at {} before attempt {}",
                at.to_rfc3339(),
                entry.attempt
            ),
        )
    }
}

fn fail(entry: &delivery_log::Model, reason: String) -> AttemptResult {
    AttemptResult {
        log_id: entry.id,
        status: DeliveryStatus::Failed,
        is_final: true,
        message_id: None,
        error: Some(reason),
        retry_at: None,
        quarantine: None,
        expire_event: false,
    }
}
