//! What the control instance knows about each execution instance's archive: how far it got, when it was
//! last complete, and the last error. The archiving services update it; `/admin/workflows` shows it and
//! `/metrics` turns it into the `mc_archive_*` families. Kept in memory (seeded from `archive_cursors` at
//! start) so that both read it without a database round trip.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::db::entities::archive_cursor;
use crate::metrics::Metrics;

/// The archive state of one execution instance.
#[derive(Clone, Debug, Default)]
struct InstanceState {
    cursor: Option<String>,
    archived_events: i64,
    last_success_at: Option<DateTime<Utc>>,
    /// The last time a pull reached the end of the instance's feed.
    caught_up_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    /// Whether the last pull failed.
    failing: bool,
}

/// How an execution instance's archiving stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveState {
    /// No pull has succeeded yet.
    NotStarted,
    /// The last pull succeeded.
    Ok,
    /// The last pull failed.
    Failing,
}

impl ArchiveState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ArchiveState::NotStarted => "not_started",
            ArchiveState::Ok => "ok",
            ArchiveState::Failing => "failing",
        }
    }
}

/// One execution instance's archive, as the admin API and the console show it.
#[derive(Clone, Debug)]
pub struct ArchiveInstanceView {
    pub instance: String,
    pub state: ArchiveState,
    pub cursor: Option<String>,
    pub archived_events: i64,
    /// Seconds since the archive was last complete (since start when never).
    pub lag_seconds: f64,
    pub caught_up_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

pub struct ArchiveMonitor {
    instances: Mutex<BTreeMap<String, InstanceState>>,
    /// Lag is counted from here for an instance never caught up.
    started_at: DateTime<Utc>,
    metrics: Metrics,
}

impl ArchiveMonitor {
    /// A monitor for the instances `names`, with what the archive already holds.
    pub fn new<'a>(
        names: impl Iterator<Item = &'a str>,
        stored: &[archive_cursor::Model],
        metrics: Metrics,
    ) -> Self {
        let mut instances: BTreeMap<String, InstanceState> = names
            .map(|name| (name.to_owned(), InstanceState::default()))
            .collect();
        for row in stored {
            if let Some(state) = instances.get_mut(&row.instance_name) {
                state.cursor = row.cursor.clone();
                state.archived_events = row.archived_events;
                state.last_success_at = row.last_success_at;
                state.last_error = row.last_error.clone();
                state.last_error_at = row.last_error_at;
            }
        }
        ArchiveMonitor {
            instances: Mutex::new(instances),
            started_at: Utc::now(),
            metrics,
        }
    }

    fn with<R>(&self, instance: &str, f: impl FnOnce(&mut InstanceState) -> R) -> R {
        let mut instances = self
            .instances
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(instances.entry(instance.to_owned()).or_default())
    }

    /// A page was stored: the archive now holds `archived_events` from `instance`, up to `cursor`;
    /// `caught_up` when the page was the feed's last.
    pub fn page_stored(
        &self,
        instance: &str,
        cursor: &str,
        inserted: u64,
        archived_events: i64,
        caught_up: bool,
        delays: &[f64],
    ) {
        let now = Utc::now();
        self.with(instance, |state| {
            state.cursor = Some(cursor.to_owned());
            state.archived_events = archived_events;
            state.last_success_at = Some(now);
            state.failing = false;
            if caught_up {
                state.caught_up_at = Some(now);
            }
        });
        self.metrics.record_archive_page(instance, inserted, delays);
    }

    /// A pull from `instance` failed.
    pub fn failed(&self, instance: &str, error: &str) {
        let now = Utc::now();
        self.with(instance, |state| {
            state.last_error = Some(error.to_owned());
            state.last_error_at = Some(now);
            state.failing = true;
        });
        self.metrics
            .record_archive_error(instance, now.timestamp_millis() as f64 / 1000.0);
    }

    /// Seconds since `instance`'s archive was last complete.
    fn lag(&self, state: &InstanceState, now: DateTime<Utc>) -> f64 {
        let since = state.caught_up_at.unwrap_or(self.started_at);
        (now - since).num_milliseconds().max(0) as f64 / 1000.0
    }

    /// Sets `mc_archive_lag_seconds` for every instance; called at each scrape.
    pub fn refresh_metrics(&self) {
        let now = Utc::now();
        let instances = self
            .instances
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, state) in instances.iter() {
            self.metrics.set_archive_lag(name, self.lag(state, now));
        }
    }

    /// Each execution instance's archive, typed (the console renders it).
    pub fn instances(&self) -> Vec<ArchiveInstanceView> {
        let now = Utc::now();
        let instances = self
            .instances
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        instances
            .iter()
            .map(|(name, state)| ArchiveInstanceView {
                instance: name.clone(),
                state: if state.failing {
                    ArchiveState::Failing
                } else if state.last_success_at.is_some() {
                    ArchiveState::Ok
                } else {
                    ArchiveState::NotStarted
                },
                cursor: state.cursor.clone(),
                archived_events: state.archived_events,
                lag_seconds: self.lag(state, now),
                caught_up_at: state.caught_up_at,
                last_success_at: state.last_success_at,
                last_error: state.last_error.clone(),
                last_error_at: state.last_error_at,
            })
            .collect()
    }

    /// The `archive` part of `GET /admin/workflows`.
    pub fn snapshot(&self) -> Value {
        let list: Vec<Value> = self
            .instances()
            .into_iter()
            .map(|i| {
                json!({
                    "instance": i.instance,
                    "state": i.state.as_str(),
                    "cursor": i.cursor,
                    "archivedEvents": i.archived_events,
                    "lagSeconds": i.lag_seconds,
                    "caughtUpAt": i.caught_up_at.map(|t| t.to_rfc3339()),
                    "lastSuccessAt": i.last_success_at.map(|t| t.to_rfc3339()),
                    "lastError": i.last_error,
                    "lastErrorAt": i.last_error_at.map(|t| t.to_rfc3339()),
                })
            })
            .collect();
        Value::Array(list)
    }
}
