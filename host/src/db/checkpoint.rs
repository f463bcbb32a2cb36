//! WAL checkpoints of an SQLite file, in the background.
//!
//! SQLite runs a checkpoint by default in the connection whose commit makes the WAL pass 1000 pages:
//! that commit copies the pages into the database file and fsyncs it while it still holds the write
//! lock, and on this server every writer waits for the one write turn (`store::Store::write_turn`), so
//! every few seconds of load one commit took tens of milliseconds longer and everything queued behind
//! it (issue 20, BENCHMARKS.md). The server's connections therefore turn automatic checkpoints off
//! (`wal_autocheckpoint = 0`, [`super::connect`] and the ingest connection), and this task runs a
//! `PASSIVE` checkpoint every [`PERIOD`] on a pool connection: it copies what no reader still needs,
//! without the write turn and without blocking writers, which append to the WAL meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::shutdown::Shutdown;

/// How often a checkpoint runs: often enough that the WAL stays a few megabytes under load.
pub const PERIOD: Duration = Duration::from_millis(250);

/// Checkpoints `db` (an SQLite file's pool) every [`PERIOD`] until shutdown, then once more; not before
/// `migrated` says the migrations are done (a checkpoint on a file being created made the migration's
/// transaction fail with `database is locked`).
pub async fn run(db: DatabaseConnection, migrated: Arc<AtomicBool>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.recv() => break,
            _ = tick.tick() => {}
        }
        if !migrated.load(Ordering::SeqCst) {
            continue;
        }
        match db
            .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await
        {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("WAL checkpoints work again");
            }
            Ok(_) => {}
            // Said once per failing stretch: the database may be down for a while.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "WAL checkpoint failed; retrying");
            }
            Err(_) => {}
        }
    }
    // The last one leaves the database file up to date for whoever opens it next.
    if !migrated.load(Ordering::SeqCst) {
        return;
    }
    let _ = db
        .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
        .await;
}
