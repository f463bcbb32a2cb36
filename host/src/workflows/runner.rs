//! Runs one workflow: on its interval, at once when woken, and again at once while it reports more work.
//!
//! Each run is polled on a blocking-pool thread (inside the host runtime, so host services work as usual):
//! a plugin that blocks its thread, instead of awaiting, then stalls only its own workflow. A run that
//! outlives its deadline is dropped; one that does not even return to be dropped (blocked in the plugin's
//! own code) is reported `stuck` and its thread abandoned, while every other workflow goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use mc_plugin_api::export::PANIC_PREFIX;
use mc_plugin_api::{RunInfo, RunReport};
use tokio::sync::{Notify, watch};
use tracing::Instrument;

use super::status::{LastRun, StatusCell};
use crate::metrics::Metrics;
use crate::plugins::PluginRegistry;
use crate::plugins::host_vtable::RunScope;
use crate::services::{HostServices, RunClaims};
use crate::shutdown::Shutdown;

/// How long past its deadline a run may take to hand control back before it is declared stuck.
const STUCK_GRACE: Duration = Duration::from_secs(2);

/// What every runner shares.
#[derive(Clone)]
pub struct RunnerContext {
    pub registry: Arc<PluginRegistry>,
    pub services: Arc<HostServices>,
    pub metrics: Metrics,
    /// Turns true when shutdown starts, so plugins see `cancel_requested`.
    pub shutdown_flag: Arc<AtomicBool>,
}

/// Schedule and settings of one workflow.
#[derive(Clone, Debug)]
pub struct RunnerSettings {
    pub name: String,
    pub plugin: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// How long a woken run waits for more work to join it (`[workflows.<name>] wake_delay`).
    pub wake_delay: Duration,
    pub drain_timeout: Duration,
    pub enabled: bool,
}

pub struct WorkflowRunner {
    settings: RunnerSettings,
    enabled: watch::Sender<bool>,
    /// The inverse of `enabled`, readable from plugin threads for `cancel_requested`.
    stopped: Arc<AtomicBool>,
    wake: Notify,
    runs_started: AtomicU64,
    pub(super) status: StatusCell,
}

/// How a run ended, before it is recorded.
enum RunEnd {
    Finished(Result<String, String>),
    TimedOut,
    Drained,
}

impl WorkflowRunner {
    pub fn new(settings: RunnerSettings) -> Self {
        let (enabled, _) = watch::channel(settings.enabled);
        WorkflowRunner {
            stopped: Arc::new(AtomicBool::new(!settings.enabled)),
            status: StatusCell::new(&settings),
            settings,
            enabled,
            wake: Notify::new(),
            runs_started: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn settings(&self) -> &RunnerSettings {
        &self.settings
    }

    /// Asks for a run now instead of at the next tick (coalesced if one is already pending).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// `POST /admin/workflows/{name}/start|stop`. Stopping lets a run in flight finish; the plugin sees
    /// `cancel_requested`.
    pub fn set_enabled(&self, enabled: bool) {
        self.stopped.store(!enabled, Ordering::SeqCst);
        self.enabled.send_replace(enabled);
        self.status.set_enabled(enabled);
    }

    pub fn is_enabled(&self) -> bool {
        *self.enabled.borrow()
    }

    /// The scheduling loop; returns on shutdown.
    pub async fn run_loop(self: Arc<Self>, context: RunnerContext, mut shutdown: Shutdown) {
        let mut enabled = self.enabled.subscribe();
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !*enabled.borrow_and_update() {
                tokio::select! {
                    _ = shutdown.recv() => return,
                    changed = enabled.changed() => {
                        if changed.is_err() { return; }
                        continue;
                    }
                }
            }
            // Biased: after a long run the next tick is already due, and shutdown must win that race.
            tokio::select! {
                biased;
                _ = shutdown.recv() => return,
                _ = ticker.tick() => {}
                _ = self.wake.notified() => {
                    // What arrives in the next moments joins this run instead of starting its own.
                    if !self.settings.wake_delay.is_zero() {
                        tokio::select! {
                            biased;
                            _ = shutdown.recv() => return,
                            _ = tokio::time::sleep(self.settings.wake_delay) => {}
                        }
                    }
                }
                changed = enabled.changed() => {
                    if changed.is_err() { return; }
                    continue;
                }
            }
            loop {
                if shutdown.is_triggered() || !*enabled.borrow() {
                    break;
                }
                let more_work = self.run_once(&context, &mut shutdown).await;
                if !more_work {
                    break;
                }
            }
        }
    }

    /// One run; returns whether the workflow reported more work.
    async fn run_once(&self, context: &RunnerContext, shutdown: &mut Shutdown) -> bool {
        let name = self.settings.name.clone();
        let active = match context.registry.instance_for(&name) {
            Ok(active) => active,
            Err(reason) => {
                if self.status.set_waiting_for_plugin(&reason) {
                    tracing::warn!(workflow = %name, %reason, "workflow waiting for its plugin");
                    context.metrics.record_workflow_error(&name, "no_plugin");
                }
                return false;
            }
        };
        let number = self.runs_started.fetch_add(1, Ordering::Relaxed) + 1;
        let generation = active.generation.number;
        let info = RunInfo {
            workflow: name.clone(),
            run_number: number,
            generation,
            deadline_millis: u64::try_from(self.settings.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let info_json = match serde_json::to_string(&info) {
            Ok(json) => json,
            Err(e) => {
                self.status
                    .record_error(&format!("run info could not be encoded: {e}"));
                return false;
            }
        };
        let claims = Arc::new(RunClaims::new(context.services.claimer(), &name, number));
        let scope = Arc::new(RunScope {
            services: Arc::clone(&context.services),
            workflow: name.clone(),
            plugin: self.settings.plugin.clone(),
            generation,
            claims: Arc::clone(&claims),
            stop: vec![
                Arc::clone(&context.shutdown_flag),
                Arc::clone(&self.stopped),
            ],
            retired: active.generation.retired(),
        });
        let started_at = Utc::now();
        let started = Instant::now();
        self.status.set_running(number, generation, started_at);

        let span = tracing::info_span!(
            "workflow_run",
            workflow = %name,
            plugin = %self.settings.plugin,
            generation,
            run = number
        );
        let timeout = self.settings.timeout;
        let drain = self.settings.drain_timeout;
        let runtime = tokio::runtime::Handle::current();
        let mut task = tokio::task::spawn_blocking(move || {
            let mut retired = active.generation.retired();
            let work = async move {
                let run = active.instance.start_run(scope.handle(), &info_json);
                let end = tokio::select! {
                    result = run => RunEnd::Finished(result),
                    _ = tokio::time::sleep(timeout) => RunEnd::TimedOut,
                    _ = async {
                        if retired.wait_for(|r| *r).await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        tokio::time::sleep(drain).await;
                    } => RunEnd::Drained,
                };
                // The run's future is gone; only now may the scope and the instance go.
                drop(scope);
                drop(active);
                end
            };
            runtime.block_on(work.instrument(span))
        });

        let joined = tokio::select! {
            joined = &mut task => Some(joined),
            _ = tokio::time::sleep(timeout + STUCK_GRACE) => None,
        };
        let joined = match joined {
            Some(joined) => joined,
            None => {
                let message = format!(
                    "run {number} blocked its thread inside the plugin for more than its deadline of {timeout:?}; the thread is abandoned and the workflow waits for it"
                );
                tracing::error!(workflow = %name, "{message}");
                self.status.set_stuck(&message);
                context.metrics.record_workflow_error(&name, "stuck");
                tokio::select! {
                    joined = &mut task => joined,
                    _ = shutdown.recv() => return false,
                }
            }
        };
        let elapsed = started.elapsed();
        let end = match joined {
            Ok(end) => end,
            Err(e) => {
                RunEnd::Finished(Err(format!("host failure while running the workflow: {e}")))
            }
        };
        // A run that did not finish with a report may have left claims behind: hand them back.
        if !matches!(end, RunEnd::Finished(Ok(_))) {
            context.services.abandon(&claims);
        }
        self.record(context, number, generation, started_at, elapsed, end)
    }

    fn record(
        &self,
        context: &RunnerContext,
        number: u64,
        generation: u64,
        started_at: chrono::DateTime<Utc>,
        elapsed: Duration,
        end: RunEnd,
    ) -> bool {
        let name = &self.settings.name;
        let (outcome, report, error) = match end {
            RunEnd::Finished(Ok(json)) => match serde_json::from_str::<RunReport>(&json) {
                Ok(report) => ("ok", Some(report), None),
                Err(e) => (
                    "error",
                    None,
                    Some(format!("the plugin returned an invalid run report: {e}")),
                ),
            },
            RunEnd::Finished(Err(message)) if message.starts_with(PANIC_PREFIX) => {
                ("panic", None, Some(message))
            }
            RunEnd::Finished(Err(message)) => ("error", None, Some(message)),
            RunEnd::TimedOut => (
                "timeout",
                None,
                Some(format!(
                    "run {number} exceeded its deadline of {:?} and was dropped",
                    self.settings.timeout
                )),
            ),
            RunEnd::Drained => (
                "drained",
                None,
                Some(format!(
                    "generation {generation} was retired and run {number} did not finish within plugins.drain_timeout ({:?})",
                    self.settings.drain_timeout
                )),
            ),
        };
        let processed = report.as_ref().map_or(0, |r| r.processed);
        let more_work = report.as_ref().is_some_and(|r| r.more_work);
        context
            .metrics
            .record_run(name, outcome, elapsed, processed);
        match &error {
            Some(message) => {
                context.metrics.record_workflow_error(name, outcome);
                tracing::error!(workflow = %name, run = number, generation, outcome, error = %message, "workflow run failed");
            }
            None => {
                tracing::debug!(workflow = %name, run = number, generation, processed, ?elapsed, "workflow run finished");
            }
        }
        self.status.record_run(LastRun {
            number,
            generation,
            started_at,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            outcome,
            report,
            error,
        });
        more_work
    }
}
