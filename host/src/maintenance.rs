//! Housekeeping that runs in the background of every instance: removing idempotency keys past their
//! 24 hours (the key lookup ignores them anyway; this keeps the table small), and, on an execution
//! instance, the `[retention]` purge of finished events.

use std::time::Duration;

use crate::config::RetentionConfig;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// How often idempotency keys are purged.
const KEY_PURGE_PERIOD: Duration = Duration::from_secs(600);
/// Events deleted per transaction, so a large purge never holds the writer for long.
const PURGE_CHUNK: u64 = 1000;

/// Runs until shutdown. `retention` is `None` on an instance that keeps no events of its own (control).
pub async fn run(
    store: Store,
    retention: Option<RetentionConfig>,
    metrics: Metrics,
    quarantine_expiry: Option<Duration>,
    mut shutdown: Shutdown,
) {
    let mut quarantine = tokio::time::interval(QUARANTINE_GAUGE_PERIOD);
    quarantine.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keys = tokio::time::interval(KEY_PURGE_PERIOD);
    keys.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let purge_period = retention
        .as_ref()
        .map_or(Duration::from_secs(3600), |r| r.purge_interval);
    let mut events = tokio::time::interval(purge_period);
    events.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.recv() => return,
            _ = keys.tick() => purge_idempotency_keys(&store).await,
            _ = quarantine.tick() => count_quarantine(&store, &metrics, quarantine_expiry).await,
            _ = events.tick(), if retention.is_some() => {
                if let Some(retention) = &retention {
                    purge_finished_events(&store, retention, &metrics, &mut shutdown).await;
                }
            }
        }
    }
}

/// How often `mc_quarantine_entries` is recounted.
const QUARANTINE_GAUGE_PERIOD: Duration = Duration::from_secs(15);

/// Sets `mc_quarantine_entries{reason}` from the entries in force.
async fn count_quarantine(store: &Store, metrics: &Metrics, expire_after: Option<Duration>) {
    match store.quarantine_counts(expire_after).await {
        Ok(counts) => {
            let reasons: Vec<&str> = crate::store::QuarantineReason::ALL
                .iter()
                .map(|r| r.as_str())
                .collect();
            metrics.set_quarantine_entries(&reasons, &counts);
        }
        Err(e) => tracing::debug!(error = %e, "could not count the quarantine"),
    }
}

async fn purge_idempotency_keys(store: &Store) {
    match store.purge_expired_idempotency_keys().await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "expired idempotency keys removed"),
        Err(e) => tracing::warn!(error = %e, "idempotency key purge failed"),
    }
}

/// Deletes finished events older than `[retention] finished_events` that the archive has acknowledged
/// (unless `wait_for_archive = false`), a chunk per transaction.
async fn purge_finished_events(
    store: &Store,
    retention: &RetentionConfig,
    metrics: &Metrics,
    shutdown: &mut Shutdown,
) {
    let Some(cutoff) = chrono::Duration::from_std(retention.finished_events)
        .ok()
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
    else {
        return;
    };
    let mut removed = 0;
    loop {
        if shutdown.is_triggered() {
            break;
        }
        match store
            .purge_finished_events(cutoff, retention.wait_for_archive, PURGE_CHUNK)
            .await
        {
            Ok(n) => {
                removed += n;
                metrics.record_events_purged(n);
                if n < PURGE_CHUNK {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "purge of finished events failed");
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            wait_for_archive = retention.wait_for_archive,
            "finished events purged"
        );
    }
}
