//! Housekeeping that runs in the background of every instance: removing idempotency keys past their
//! 24 hours (the key lookup ignores them anyway; this keeps the table small).

use std::time::Duration;

use crate::shutdown::Shutdown;
use crate::store::Store;

/// How often housekeeping runs.
const PERIOD: Duration = Duration::from_secs(600);

pub async fn run(store: Store, mut shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.recv() => return,
            _ = ticker.tick() => {}
        }
        match store.purge_expired_idempotency_keys().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired idempotency keys removed"),
            Err(e) => tracing::warn!(error = %e, "idempotency key purge failed"),
        }
    }
}
