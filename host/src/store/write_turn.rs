//! The write turn of an SQLite store: this process's writers queue here, in order, instead of at the
//! database. SQLite has one writer, and a connection that finds it busy sleeps in its busy handler with
//! growing back-off (1, 2, 5, 10 … ms), which put hundreds of milliseconds into the delivery pipeline's
//! tail. PostgreSQL's writers run concurrently and have no turn.
//!
//! On SQLite the turns are the pipeline's one serial resource: the time they are held, by operation, is
//! what bounds the messages per second (`mc_db_write_turn_seconds_total`, read by the pipeline bench).
//! An observer set once by the server (`Store::observe_write_turns`) is told of every turn when it ends.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

/// Told of each turn when it ends: the operation, how long it waited for the turn, how long it held it.
pub type TurnObserver = Box<dyn Fn(&'static str, Duration, Duration) + Send + Sync>;

/// The turn and its observer, shared by every clone of the store and by the ingest writer.
#[derive(Default)]
pub struct WriteGate {
    turn: Mutex<()>,
    observer: OnceLock<TurnObserver>,
}

/// A turn being held: the other writers of this process wait until it is dropped.
pub struct WriteTurn<'a> {
    _turn: MutexGuard<'a, ()>,
    gate: &'a WriteGate,
    operation: &'static str,
    waited: Duration,
    since: Instant,
}

impl WriteGate {
    /// Waits for the turn of `operation` (a store method's name, the label of its metrics).
    pub async fn take(&self, operation: &'static str) -> WriteTurn<'_> {
        let asked = Instant::now();
        let turn = self.turn.lock().await;
        self.held(turn, operation, asked)
    }

    /// The same from a thread outside the runtime (the group-commit writer's).
    pub fn take_blocking(&self, operation: &'static str) -> WriteTurn<'_> {
        let asked = Instant::now();
        let turn = self.turn.blocking_lock();
        self.held(turn, operation, asked)
    }

    fn held<'a>(
        &'a self,
        turn: MutexGuard<'a, ()>,
        operation: &'static str,
        asked: Instant,
    ) -> WriteTurn<'a> {
        let since = Instant::now();
        WriteTurn {
            _turn: turn,
            gate: self,
            operation,
            waited: since - asked,
            since,
        }
    }

    /// Sets the observer; a second call is ignored (the first server that set it keeps it).
    pub fn observe(&self, observer: TurnObserver) {
        let _ = self.observer.set(observer);
    }
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        if let Some(observer) = self.gate.observer.get() {
            observer(self.operation, self.waited, self.since.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};

    use super::*;

    /// What the observer was told: operation, waited, held.
    type Seen = Arc<StdMutex<Vec<(&'static str, Duration, Duration)>>>;

    #[tokio::test]
    async fn each_turn_is_observed_once_with_its_operation_and_its_wait() {
        let gate = Arc::new(WriteGate::default());
        let seen: Seen = Arc::default();
        let log = Arc::clone(&seen);
        gate.observe(Box::new(move |operation, waited, held| {
            log.lock().unwrap().push((operation, waited, held))
        }));
        let first = gate.take("first").await;
        let waiting = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { drop(gate.take("second").await) })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(first);
        waiting.await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "first");
        assert!(seen[0].2 >= Duration::from_millis(30), "{seen:?}");
        assert_eq!(seen[1].0, "second");
        assert!(seen[1].1 >= Duration::from_millis(25), "{seen:?}");
    }
}
