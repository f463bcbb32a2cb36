//! Graceful shutdown: one broadcast tells every task to stop, and a drain counter tells `main` when the
//! last one has finished (each task holds a [`DrainGuard`]; the receiver sees the channel close when the
//! last guard is dropped), the way mini-redis does it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

/// The sending side, owned by `main`.
pub struct ShutdownController {
    notify: broadcast::Sender<()>,
    triggered: Arc<AtomicBool>,
    drain_tx: Option<mpsc::Sender<()>>,
    drain_rx: mpsc::Receiver<()>,
}

impl Default for ShutdownController {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownController {
    pub fn new() -> Self {
        let (notify, _) = broadcast::channel(1);
        let (drain_tx, drain_rx) = mpsc::channel(1);
        ShutdownController {
            notify,
            triggered: Arc::new(AtomicBool::new(false)),
            drain_tx: Some(drain_tx),
            drain_rx,
        }
    }

    /// A listener for a task, with the guard that keeps `drain` waiting for it.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            notify: self.notify.subscribe(),
            triggered: Arc::clone(&self.triggered),
            _guard: DrainGuard(self.drain_tx.clone()),
        }
    }

    /// A flag that turns true when shutdown starts, for code that polls rather than awaits.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.triggered)
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        let _ = self.notify.send(());
    }

    /// Waits until every [`Shutdown`] has been dropped, or `timeout` passes. True if all drained.
    pub async fn drain(mut self, timeout: Duration) -> bool {
        self.drain_tx.take();
        tokio::time::timeout(timeout, self.drain_rx.recv())
            .await
            .is_ok()
    }
}

/// Keeps [`ShutdownController::drain`] waiting while alive.
#[derive(Clone)]
pub struct DrainGuard(#[allow(dead_code)] Option<mpsc::Sender<()>>);

/// A task's view of shutdown.
pub struct Shutdown {
    notify: broadcast::Receiver<()>,
    triggered: Arc<AtomicBool>,
    _guard: DrainGuard,
}

impl Clone for Shutdown {
    fn clone(&self) -> Self {
        Shutdown {
            notify: self.notify.resubscribe(),
            triggered: Arc::clone(&self.triggered),
            _guard: self._guard.clone(),
        }
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown has been triggered (at once if it already was).
    pub async fn recv(&mut self) {
        if self.is_triggered() {
            return;
        }
        let _ = self.notify.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_every_subscriber() {
        let controller = ShutdownController::new();
        let mut task = controller.subscribe();
        let handle = tokio::spawn(async move {
            task.recv().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(task);
        });
        controller.trigger();
        assert!(controller.drain(Duration::from_secs(5)).await);
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn drain_times_out_when_a_task_never_stops() {
        let controller = ShutdownController::new();
        let _stuck = controller.subscribe();
        controller.trigger();
        assert!(!controller.drain(Duration::from_millis(50)).await);
    }
}
