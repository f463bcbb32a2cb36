//! Prometheus metrics. One registry for the process; each subsystem records through the typed methods
//! here, so metric names and labels are defined in one place; a new subsystem adds its families here.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use mc_plugin_api::{Channel, EventStatus, Queue};

type Labels = Vec<(&'static str, String)>;

/// Labels of `mc_http_requests_total`: all `'static` or integers, so counting a request allocates nothing
/// (it happens on every request).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    listener: &'static str,
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// Labels of `mc_db_statements_total` and `mc_db_statement_seconds_total` (see `db::statements`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DbStatementLabels {
    verb: &'static str,
    table: String,
}

/// Labels of `mc_db_write_turn_seconds_total` and `mc_db_write_turns_total` (see `store::write_turn`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteTurnLabels {
    operation: &'static str,
}

/// Labels of `mc_db_write_turn_seconds_total`: the same, and whether waiting for the turn or holding it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteTurnPhaseLabels {
    operation: &'static str,
    phase: &'static str,
}

/// Labels of `mc_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRouteLabels {
    listener: &'static str,
    route: &'static str,
}

/// The method as a `'static` label value; methods the APIs do not use are lumped together.
fn method_label(method: &hyper::Method) -> &'static str {
    match *method {
        hyper::Method::GET => "GET",
        hyper::Method::POST => "POST",
        hyper::Method::PUT => "PUT",
        hyper::Method::DELETE => "DELETE",
        hyper::Method::HEAD => "HEAD",
        hyper::Method::OPTIONS => "OPTIONS",
        hyper::Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

fn duration_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// All the host's metric families. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    workflow_runs: Family<Labels, Counter>,
    workflow_run_duration: Family<Labels, Histogram, fn() -> Histogram>,
    workflow_errors: Family<Labels, Counter>,
    workflow_processed: Family<Labels, Counter>,
    plugin_reloads: Family<Labels, Counter>,
    plugin_generation: Family<Labels, Gauge>,
    http_requests: Family<HttpLabels, Counter>,
    http_request_duration: Family<HttpRouteLabels, Histogram, fn() -> Histogram>,
    events_accepted: Family<Labels, Counter>,
    events_refused: Family<Labels, Counter>,
    queue_depth: Family<Labels, Gauge>,
    queue_oldest_pending_age: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    group_commit_submissions: Histogram,
    group_commit_events: Histogram,
    group_commit_duration: Histogram,
    delivery_attempts: Family<Labels, Counter>,
    delivery_latency: Family<Labels, Histogram, fn() -> Histogram>,
    events_final: Family<Labels, Counter>,
    events_unreadable: Family<Labels, Counter>,
    archive_events: Family<Labels, Counter>,
    archive_errors: Family<Labels, Counter>,
    archive_lag: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    archive_up: Family<Labels, Gauge>,
    archive_last_error: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    archive_delay: Family<Labels, Histogram, fn() -> Histogram>,
    monitoring_value: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    monitoring_state: Family<Labels, Gauge>,
    events_purged: Counter,
    bounces: Family<Labels, Counter>,
    bounce_refusals: Family<Labels, Counter>,
    quarantine_added: Family<Labels, Counter>,
    quarantine_entries: Family<Labels, Gauge>,
    webhook_notifications: Family<Labels, Counter>,
    webhook_attempts: Family<Labels, Counter>,
    webhook_pending: Family<Labels, Gauge>,
    webhook_oldest_pending: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    webhook_attempt_duration: Family<Labels, Histogram, fn() -> Histogram>,
    db_statements: Family<DbStatementLabels, Counter>,
    db_statement_seconds: Family<DbStatementLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    db_write_turns: Family<WriteTurnLabels, Counter>,
    db_write_turn_seconds: Family<WriteTurnPhaseLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mc");
        let workflow_runs = Family::<Labels, Counter>::default();
        registry.register(
            "workflow_runs",
            "Workflow runs by workflow and outcome (ok, error, panic, timeout, drained)",
            workflow_runs.clone(),
        );
        let workflow_run_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "workflow_run_duration_seconds",
            "Duration of workflow runs",
            workflow_run_duration.clone(),
        );
        let workflow_errors = Family::<Labels, Counter>::default();
        registry.register(
            "workflow_errors",
            "Workflow failures by kind (error, panic, timeout, stuck, no_plugin)",
            workflow_errors.clone(),
        );
        let workflow_processed = Family::<Labels, Counter>::default();
        registry.register(
            "workflow_processed",
            "Items handled by workflow runs, as the workflows report them",
            workflow_processed.clone(),
        );
        let plugin_reloads = Family::<Labels, Counter>::default();
        registry.register(
            "plugin_reloads",
            "Plugin load attempts by plugin and outcome (loaded, reloaded, refused, unloaded)",
            plugin_reloads.clone(),
        );
        let plugin_generation = Family::<Labels, Gauge>::default();
        registry.register(
            "plugin_generation",
            "Generation of the active library of each plugin (0 when unloaded)",
            plugin_generation.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by listener, route, method and status",
            http_requests.clone(),
        );
        let http_request_duration =
            Family::<HttpRouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request handling time by listener and route",
            http_request_duration.clone(),
        );
        let events_accepted = Family::<Labels, Counter>::default();
        registry.register(
            "events_accepted",
            "Events stored by the ingestion API, by queue",
            events_accepted.clone(),
        );
        let events_refused = Family::<Labels, Counter>::default();
        registry.register(
            "events_refused",
            "Ingestion requests refused, by queue and reason (the error code)",
            events_refused.clone(),
        );
        let queue_depth = Family::<Labels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Pending events per queue (refreshed at each scrape)",
            queue_depth.clone(),
        );
        let queue_oldest_pending_age =
            Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "queue_oldest_pending_age_seconds",
            "Age of the oldest pending event per queue, 0 when none (refreshed at each scrape)",
            queue_oldest_pending_age.clone(),
        );
        let group_commit_submissions = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "ingest_group_commit_submissions",
            "Requests stored per group-commit transaction",
            group_commit_submissions.clone(),
        );
        let group_commit_events = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "ingest_group_commit_events",
            "Events stored per group-commit transaction",
            group_commit_events.clone(),
        );
        let group_commit_duration = duration_histogram();
        registry.register(
            "ingest_group_commit_duration_seconds",
            "Duration of group-commit transactions",
            group_commit_duration.clone(),
        );
        let delivery_attempts = Family::<Labels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts by channel and outcome (sent, ignored, failed, permanent_failure, transient_failure)",
            delivery_attempts.clone(),
        );
        let delivery_latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "delivery_push_to_accepted_seconds",
            "Time from an event's acceptance to its message's acceptance by the SMTP relay or gateway",
            delivery_latency.clone(),
        );
        let events_final = Family::<Labels, Counter>::default();
        registry.register(
            "events_final",
            "Events that reached a final status, by status",
            events_final.clone(),
        );
        let events_unreadable = Family::<Labels, Counter>::default();
        registry.register(
            "events_unreadable",
            "Claimed events set apart as delivery_failed because they cannot be processed (a ctx that cannot be read back), by queue",
            events_unreadable.clone(),
        );
        let archive_events = Family::<Labels, Counter>::default();
        registry.register(
            "archive_events",
            "Events archived by this control instance, by execution instance",
            archive_events.clone(),
        );
        let archive_errors = Family::<Labels, Counter>::default();
        registry.register(
            "archive_errors",
            "Failed archive pulls, by execution instance",
            archive_errors.clone(),
        );
        let archive_lag = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "archive_lag_seconds",
            "Seconds since the archive last held everything the execution instance had finished (refreshed at each scrape)",
            archive_lag.clone(),
        );
        let archive_up = Family::<Labels, Gauge>::default();
        registry.register(
            "archive_up",
            "1 when the last archive pull from the execution instance succeeded, 0 when it failed",
            archive_up.clone(),
        );
        let archive_last_error =
            Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "archive_last_error_timestamp_seconds",
            "Unix time of the last failed archive pull, by execution instance (the message is in /admin/workflows)",
            archive_last_error.clone(),
        );
        let archive_delay = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "archive_delay_seconds",
            "Time from an event's final status on its execution instance to its archiving",
            archive_delay.clone(),
        );
        let monitoring_value =
            Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "monitoring_value",
            "Adobe's Message Center indicators (GET /admin/monitoring), by queue and indicator; absent while there is nothing to measure",
            monitoring_value.clone(),
        );
        let monitoring_state = Family::<Labels, Gauge>::default();
        registry.register(
            "monitoring_state",
            "State of each monitoring indicator against its thresholds: 0 ok, 1 warning, 2 alert",
            monitoring_state.clone(),
        );
        let events_purged = Counter::default();
        registry.register(
            "events_purged",
            "Finished events deleted by the retention purge",
            events_purged.clone(),
        );
        let bounces = Family::<Labels, Counter>::default();
        registry.register(
            "bounces",
            "Bounces received, by source (smtp, http) and outcome (bounced, complaint, soft_recorded, \
             duplicate, in_flight, unknown, forged_token, no_token, not_a_bounce)",
            bounces.clone(),
        );
        let bounce_refusals = Family::<Labels, Counter>::default();
        registry.register(
            "bounce_listener_refusals",
            "What the bounce SMTP listener refused, by reason (other_domain, oversized, \
             too_many_recipients, command_timeout, data_timeout, too_many_connections, bad_command, \
             line_too_long)",
            bounce_refusals.clone(),
        );
        let quarantine_added = Family::<Labels, Counter>::default();
        registry.register(
            "quarantine_added",
            "Addresses and domains quarantined, by reason",
            quarantine_added.clone(),
        );
        let quarantine_entries = Family::<Labels, Gauge>::default();
        registry.register(
            "quarantine_entries",
            "Quarantine entries in force, by reason",
            quarantine_entries.clone(),
        );
        let webhook_notifications = Family::<Labels, Counter>::default();
        registry.register(
            "webhook_notifications",
            "Webhook notifications settled, by endpoint and outcome (delivered, failed)",
            webhook_notifications.clone(),
        );
        let webhook_attempts = Family::<Labels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by endpoint and result (2xx, 3xx, 4xx, 5xx, no_answer)",
            webhook_attempts.clone(),
        );
        let webhook_pending = Family::<Labels, Gauge>::default();
        registry.register(
            "webhook_notifications_pending",
            "Webhook notifications not delivered or failed yet, by endpoint",
            webhook_pending.clone(),
        );
        let webhook_oldest_pending =
            Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "webhook_oldest_pending_seconds",
            "Age of the oldest pending webhook notification, by endpoint (0 when none)",
            webhook_oldest_pending.clone(),
        );
        let webhook_attempt_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "webhook_attempt_duration_seconds",
            "Duration of webhook delivery attempts, by endpoint",
            webhook_attempt_duration.clone(),
        );
        let db_statements = Family::<DbStatementLabels, Counter>::default();
        registry.register(
            "db_statements",
            "Statements run through the store's pool, by verb and first table named (the group-commit \
             ingest writer has a connection of its own: see the group_commit families)",
            db_statements.clone(),
        );
        let db_statement_seconds =
            Family::<DbStatementLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "db_statement_seconds",
            "Time spent in those statements, from the call to its result, by verb and table",
            db_statement_seconds.clone(),
        );
        let db_write_turns = Family::<WriteTurnLabels, Counter>::default();
        registry.register(
            "db_write_turns",
            "SQLite only: write turns taken by this process's writers (one per write transaction, the \
             group-commit ingest writer's included), by store operation",
            db_write_turns.clone(),
        );
        let db_write_turn_seconds =
            Family::<WriteTurnPhaseLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "db_write_turn_seconds",
            "SQLite only: time waiting for the write turn and holding it (phase=waited|held), by store \
             operation; the held time of all operations is the pipeline's serial work",
            db_write_turn_seconds.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                workflow_runs,
                workflow_run_duration,
                workflow_errors,
                workflow_processed,
                plugin_reloads,
                plugin_generation,
                http_requests,
                http_request_duration,
                events_accepted,
                events_refused,
                queue_depth,
                queue_oldest_pending_age,
                group_commit_submissions,
                group_commit_events,
                group_commit_duration,
                delivery_attempts,
                delivery_latency,
                events_final,
                events_unreadable,
                archive_events,
                archive_errors,
                archive_lag,
                archive_up,
                archive_last_error,
                archive_delay,
                monitoring_value,
                monitoring_state,
                events_purged,
                bounces,
                bounce_refusals,
                quarantine_added,
                quarantine_entries,
                webhook_notifications,
                webhook_attempts,
                webhook_pending,
                webhook_oldest_pending,
                webhook_attempt_duration,
                db_statements,
                db_statement_seconds,
                db_write_turns,
                db_write_turn_seconds,
            }),
        }
    }

    /// A page from `instance` stored: `inserted` new events, each `delays` (seconds from final status
    /// to archived).
    pub fn record_archive_page(&self, instance: &str, inserted: u64, delays: &[f64]) {
        let labels = vec![("instance", instance.to_owned())];
        self.inner
            .archive_events
            .get_or_create(&labels)
            .inc_by(inserted);
        self.inner.archive_up.get_or_create(&labels).set(1);
        let histogram = self.inner.archive_delay.get_or_create(&labels);
        for delay in delays {
            histogram.observe(*delay);
        }
    }

    /// A pull from `instance` failed at `at_unix` seconds.
    pub fn record_archive_error(&self, instance: &str, at_unix: f64) {
        let labels = vec![("instance", instance.to_owned())];
        self.inner.archive_errors.get_or_create(&labels).inc();
        self.inner.archive_up.get_or_create(&labels).set(0);
        self.inner
            .archive_last_error
            .get_or_create(&labels)
            .set(at_unix);
    }

    pub fn set_archive_lag(&self, instance: &str, seconds: f64) {
        self.inner
            .archive_lag
            .get_or_create(&vec![("instance", instance.to_owned())])
            .set(seconds);
    }

    /// A bounce from `source` (`smtp`, `http`) ended in `outcome`.
    pub fn record_bounce(&self, source: &str, outcome: &str) {
        self.inner
            .bounces
            .get_or_create(&vec![
                ("source", source.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// The bounce listener refused something, for `reason`.
    pub fn record_bounce_refusal(&self, reason: &str) {
        self.inner
            .bounce_refusals
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    pub fn record_quarantine_added(&self, reason: &str) {
        self.inner
            .quarantine_added
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// One webhook attempt to `endpoint`: its result class and duration, and the notification's
    /// outcome when the attempt settled it (`delivered`, `failed`).
    pub fn record_webhook_attempt(
        &self,
        endpoint: &str,
        http_status: Option<u16>,
        duration: Duration,
        outcome: Option<&str>,
    ) {
        let result = match http_status {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            _ => "no_answer",
        };
        let endpoint_label = vec![("endpoint", endpoint.to_owned())];
        self.inner
            .webhook_attempts
            .get_or_create(&vec![
                ("endpoint", endpoint.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
        self.inner
            .webhook_attempt_duration
            .get_or_create(&endpoint_label)
            .observe(duration.as_secs_f64());
        if let Some(outcome) = outcome {
            self.inner
                .webhook_notifications
                .get_or_create(&vec![
                    ("endpoint", endpoint.to_owned()),
                    ("outcome", outcome.to_owned()),
                ])
                .inc();
        }
    }

    /// Pending webhook notifications of `endpoint` and the age of the oldest.
    pub fn set_webhook_pending(&self, endpoint: &str, pending: u64, oldest_seconds: f64) {
        let labels = vec![("endpoint", endpoint.to_owned())];
        self.inner
            .webhook_pending
            .get_or_create(&labels)
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.inner
            .webhook_oldest_pending
            .get_or_create(&labels)
            .set(oldest_seconds);
    }

    /// The entries in force by reason (every reason of `all` is set, 0 when absent).
    pub fn set_quarantine_entries(&self, all: &[&str], counts: &[(String, i64)]) {
        for reason in all {
            let n = counts
                .iter()
                .find(|(r, _)| r == reason)
                .map_or(0, |(_, n)| *n);
            self.inner
                .quarantine_entries
                .get_or_create(&vec![("reason", (*reason).to_owned())])
                .set(n);
        }
    }

    /// One monitoring indicator's value (`None`: nothing to measure, the series is withdrawn) and state.
    pub fn set_monitoring(&self, queue: Queue, indicator: &str, value: Option<f64>, state: i64) {
        let labels = vec![
            ("queue", queue.as_str().to_owned()),
            ("indicator", indicator.to_owned()),
        ];
        match value {
            Some(value) => {
                self.inner
                    .monitoring_value
                    .get_or_create(&labels)
                    .set(value);
            }
            None => {
                self.inner.monitoring_value.remove(&labels);
            }
        }
        self.inner
            .monitoring_state
            .get_or_create(&labels)
            .set(state);
    }

    pub fn record_events_purged(&self, events: u64) {
        self.inner.events_purged.inc_by(events);
    }

    pub fn record_run(&self, workflow: &str, outcome: &str, duration: Duration, processed: u64) {
        let wf = vec![("workflow", workflow.to_owned())];
        self.inner
            .workflow_runs
            .get_or_create(&vec![
                ("workflow", workflow.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
        self.inner
            .workflow_run_duration
            .get_or_create(&wf)
            .observe(duration.as_secs_f64());
        if processed > 0 {
            self.inner
                .workflow_processed
                .get_or_create(&wf)
                .inc_by(processed);
        }
    }

    pub fn record_workflow_error(&self, workflow: &str, kind: &str) {
        self.inner
            .workflow_errors
            .get_or_create(&vec![
                ("workflow", workflow.to_owned()),
                ("kind", kind.to_owned()),
            ])
            .inc();
    }

    pub fn record_reload(&self, plugin: &str, outcome: &str) {
        self.inner
            .plugin_reloads
            .get_or_create(&vec![
                ("plugin", plugin.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    pub fn set_plugin_generation(&self, plugin: &str, generation: u64) {
        self.inner
            .plugin_generation
            .get_or_create(&vec![("plugin", plugin.to_owned())])
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    pub fn record_http(
        &self,
        listener: &'static str,
        route: &'static str,
        method: &hyper::Method,
        status: u16,
        duration: Duration,
    ) {
        self.inner
            .http_requests
            .get_or_create(&HttpLabels {
                listener,
                route,
                method: method_label(method),
                status,
            })
            .inc();
        self.inner
            .http_request_duration
            .get_or_create(&HttpRouteLabels { listener, route })
            .observe(duration.as_secs_f64());
    }

    pub fn record_events_accepted(&self, queue: Queue, events: u64) {
        self.inner
            .events_accepted
            .get_or_create(&vec![("queue", queue.as_str().to_owned())])
            .inc_by(events);
    }

    pub fn record_events_refused(&self, queue: Queue, reason: &str) {
        self.inner
            .events_refused
            .get_or_create(&vec![
                ("queue", queue.as_str().to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    pub fn record_group_commit(&self, submissions: usize, events: usize, duration: Duration) {
        self.inner
            .group_commit_submissions
            .observe(submissions as f64);
        self.inner.group_commit_events.observe(events as f64);
        self.inner
            .group_commit_duration
            .observe(duration.as_secs_f64());
    }

    pub fn record_delivery_attempt(&self, channel: Channel, outcome: &str) {
        self.inner
            .delivery_attempts
            .get_or_create(&vec![
                ("channel", channel.as_str().to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    pub fn record_delivery_latency(&self, channel: Channel, latency: Duration) {
        self.inner
            .delivery_latency
            .get_or_create(&vec![("channel", channel.as_str().to_owned())])
            .observe(latency.as_secs_f64());
    }

    pub fn record_events_final(&self, status: EventStatus, events: u64) {
        if events > 0 {
            self.inner
                .events_final
                .get_or_create(&vec![("status", status.as_str().to_owned())])
                .inc_by(events);
        }
    }

    pub fn record_events_unreadable(&self, queue: Queue, events: u64) {
        if events > 0 {
            self.inner
                .events_unreadable
                .get_or_create(&vec![("queue", queue.as_str().to_owned())])
                .inc_by(events);
        }
    }

    pub fn set_queue_gauges(&self, queue: Queue, depth: u64, oldest_pending_age: Option<Duration>) {
        let labels = vec![("queue", queue.as_str().to_owned())];
        self.inner
            .queue_depth
            .get_or_create(&labels)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.inner
            .queue_oldest_pending_age
            .get_or_create(&labels)
            .set(oldest_pending_age.map_or(0.0, |age| age.as_secs_f64()));
    }

    /// One statement run through the store's pool (sea-orm's metric callback, `server::run`).
    pub fn record_db_statement(&self, sql: &str, elapsed: Duration) {
        let (verb, table) = crate::db::statements::classify(sql);
        let labels = DbStatementLabels {
            verb,
            table: table.to_owned(),
        };
        self.inner.db_statements.get_or_create(&labels).inc();
        self.inner
            .db_statement_seconds
            .get_or_create(&labels)
            .inc_by(elapsed.as_secs_f64());
    }

    /// One write turn of the SQLite store, when it ended (`Store::observe_write_turns`, `server::run`).
    pub fn record_write_turn(&self, operation: &'static str, waited: Duration, held: Duration) {
        let inner = &self.inner;
        inner
            .db_write_turns
            .get_or_create(&WriteTurnLabels { operation })
            .inc();
        for (phase, time) in [("waited", waited), ("held", held)] {
            inner
                .db_write_turn_seconds
                .get_or_create(&WriteTurnPhaseLabels { operation, phase })
                .inc_by(time.as_secs_f64());
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_recorded_families_with_labels() {
        let metrics = Metrics::new();
        metrics.record_run("rtEventsProcessing", "ok", Duration::from_millis(3), 2);
        metrics.record_reload("rtEventsProcessing", "reloaded");
        metrics.record_http(
            "admin",
            "/admin/plugins",
            &hyper::Method::GET,
            200,
            Duration::from_millis(1),
        );
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"mc_workflow_runs_total{workflow="rtEventsProcessing",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"mc_plugin_reloads_total{plugin="rtEventsProcessing",outcome="reloaded"} 1"#
        ));
        assert!(text.contains(r#"mc_http_requests_total{listener="admin",route="/admin/plugins",method="GET",status="200"} 1"#));
        assert!(text.contains("mc_workflow_processed_total"));
    }
}
