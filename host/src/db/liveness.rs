//! Pooled PostgreSQL connections that sat idle across a lost connection are checked before use.
//!
//! A pooled connection is pinged before it is handed out only when it has been idle for
//! [`super::PING_IF_IDLE_FOR`]: pinging on every checkout would cost a round trip per query. But when
//! the server restarts (or a failover, or a proxy drops its clients), every idle connection of the pool
//! is dead at once, and without a check each of them would fail the next query given to it: after a
//! restart, as many `503`s as the pool had idle connections, long after the database is back. The
//! pipeline and the API have pools of their own (`db::Commits`), and the API's can sit idle through a
//! whole outage.
//!
//! So the store notes every "no working connection" error it sees ([`connection_lost`]), and a
//! connection that has been idle since before the last such error is pinged before it is used
//! ([`idle_across_a_loss`]); a dead one is discarded and the pool opens or takes another. Once the pool's
//! connections have been used since, nothing is pinged again.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Microseconds from [`origin`] to the last lost connection, plus one; 0: none seen.
static LAST_LOSS: AtomicU64 = AtomicU64::new(0);

/// The instant [`LAST_LOSS`] counts from.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Notes that a query found no working connection (the store's `Unavailable` errors): connections idle
/// since then are checked before they are handed out.
pub fn connection_lost() {
    let since = origin().elapsed().as_micros() as u64;
    LAST_LOSS.fetch_max(since + 1, Ordering::Relaxed);
}

/// Whether a connection idle for `idle_for` was last used before the last lost connection.
pub fn idle_across_a_loss(idle_for: Duration) -> bool {
    let loss = LAST_LOSS.load(Ordering::Relaxed);
    loss != 0 && used_before(loss - 1, origin().elapsed(), idle_for)
}

/// Whether a connection idle for `idle_for` at `now` (both since the origin) was last used before the
/// loss at `loss_micros`.
fn used_before(loss_micros: u64, now: Duration, idle_for: Duration) -> bool {
    let last_used = now.saturating_sub(idle_for);
    last_used.as_micros() as u64 <= loss_micros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_idle_since_before_the_loss_are_checked() {
        let loss = 10_000_000; // 10 s after the origin
        let now = Duration::from_secs(12);
        // Used 3 s ago (9 s): before the loss.
        assert!(used_before(loss, now, Duration::from_secs(3)));
        // Used 1 s ago (11 s): after it.
        assert!(!used_before(loss, now, Duration::from_secs(1)));
        // Idle longer than the process has run.
        assert!(used_before(loss, now, Duration::from_secs(60)));
    }

    #[test]
    fn a_noted_loss_marks_the_connections_idle_across_it() {
        connection_lost();
        // (Other tests of this process may note losses too: only the positive case is certain here.)
        assert!(idle_across_a_loss(Duration::from_secs(3600)));
    }
}
