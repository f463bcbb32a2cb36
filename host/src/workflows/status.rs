//! What `GET /admin/workflows` shows of a workflow: its state, counters and last run.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use mc_plugin_api::RunReport;
use serde::Serialize;

use super::runner::RunnerSettings;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    Idle,
    Running,
    Stopped,
    Stuck,
    WaitingForPlugin,
}

impl WorkflowState {
    /// The name in `GET /admin/workflows` and the console.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkflowState::Idle => "idle",
            WorkflowState::Running => "running",
            WorkflowState::Stopped => "stopped",
            WorkflowState::Stuck => "stuck",
            WorkflowState::WaitingForPlugin => "waiting_for_plugin",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    pub number: u64,
    pub generation: u64,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: &'static str,
    pub report: Option<RunReport>,
    pub error: Option<String>,
}

/// One entry of `GET /admin/workflows`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    pub name: String,
    pub plugin: String,
    pub enabled: bool,
    pub state: WorkflowState,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub generation: Option<u64>,
    pub runs: u64,
    pub errors: u64,
    pub processed: u64,
    pub running_since: Option<DateTime<Utc>>,
    pub last_run: Option<LastRun>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The mutable status, behind a lock taken only for short updates.
pub struct StatusCell(Mutex<WorkflowView>);

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl StatusCell {
    pub fn new(settings: &RunnerSettings) -> Self {
        StatusCell(Mutex::new(WorkflowView {
            name: settings.name.clone(),
            plugin: settings.plugin.clone(),
            enabled: settings.enabled,
            state: if settings.enabled {
                WorkflowState::Idle
            } else {
                WorkflowState::Stopped
            },
            interval_ms: millis(settings.interval),
            timeout_ms: millis(settings.timeout),
            generation: None,
            runs: 0,
            errors: 0,
            processed: 0,
            running_since: None,
            last_run: None,
            last_error: None,
            last_error_at: None,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, WorkflowView> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn view(&self) -> WorkflowView {
        self.lock().clone()
    }

    pub fn set_enabled(&self, enabled: bool) {
        let mut view = self.lock();
        view.enabled = enabled;
        if view.state != WorkflowState::Running && view.state != WorkflowState::Stuck {
            view.state = if enabled {
                WorkflowState::Idle
            } else {
                WorkflowState::Stopped
            };
        }
    }

    /// Returns true when this is news (the workflow was not already waiting for the same reason).
    pub fn set_waiting_for_plugin(&self, reason: &str) -> bool {
        let mut view = self.lock();
        let news = view.state != WorkflowState::WaitingForPlugin
            || view.last_error.as_deref() != Some(reason);
        view.state = WorkflowState::WaitingForPlugin;
        view.generation = None;
        if news {
            view.last_error = Some(reason.to_owned());
            view.last_error_at = Some(Utc::now());
        }
        news
    }

    pub fn set_running(&self, _number: u64, generation: u64, since: DateTime<Utc>) {
        let mut view = self.lock();
        view.state = WorkflowState::Running;
        view.generation = Some(generation);
        view.running_since = Some(since);
    }

    pub fn set_stuck(&self, message: &str) {
        let mut view = self.lock();
        view.state = WorkflowState::Stuck;
        view.errors += 1;
        view.last_error = Some(message.to_owned());
        view.last_error_at = Some(Utc::now());
    }

    pub fn record_error(&self, message: &str) {
        let mut view = self.lock();
        view.errors += 1;
        view.last_error = Some(message.to_owned());
        view.last_error_at = Some(Utc::now());
    }

    pub fn record_run(&self, run: LastRun) {
        let mut view = self.lock();
        view.runs += 1;
        view.running_since = None;
        if let Some(report) = &run.report {
            view.processed += report.processed;
        }
        if let Some(error) = &run.error {
            view.errors += 1;
            view.last_error = Some(error.clone());
            view.last_error_at = Some(Utc::now());
        }
        view.state = if view.enabled {
            WorkflowState::Idle
        } else {
            WorkflowState::Stopped
        };
        view.last_run = Some(run);
    }
}
