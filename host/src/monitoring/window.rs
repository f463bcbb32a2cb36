//! The sliding window: per queue, the totals of each minute, from which the indicators are computed.
//!
//! The window is kept in memory as minute buckets. A refresh asks the database again only for the last
//! [`RECENT_MINUTES`] minutes (events finishing now, and late commits with a slightly older `finished_at`)
//! and replaces those buckets; older buckets are kept until they leave the window. The first refresh
//! reads the whole window once.

use std::collections::BTreeMap;

use mc_plugin_api::Queue;

use crate::store::MinuteTotals;

/// Minutes recomputed at every refresh.
pub const RECENT_MINUTES: i64 = 3;

/// Minute buckets of both queues.
#[derive(Debug, Default)]
pub struct Window {
    /// Window length in whole minutes.
    minutes: i64,
    /// Whether the whole window has been read once.
    loaded: bool,
    buckets: BTreeMap<(Queue, i64), MinuteTotals>,
}

impl Window {
    pub fn new(minutes: i64) -> Self {
        Self {
            minutes: minutes.max(1),
            loaded: false,
            buckets: BTreeMap::new(),
        }
    }

    /// The first minute a refresh at minute `now` must read: the whole window the first time, the last
    /// few minutes after.
    pub fn first_minute_to_read(&self, now: i64) -> i64 {
        if !self.loaded {
            self.oldest_minute(now)
        } else {
            (now - RECENT_MINUTES).max(self.oldest_minute(now))
        }
    }

    fn oldest_minute(&self, now: i64) -> i64 {
        now - self.minutes + 1
    }

    /// Replaces every bucket from `from` on with `rows` (minutes with no row are empty), and drops the
    /// buckets that left the window.
    pub fn replace_from(&mut self, now: i64, from: i64, rows: Vec<(Queue, i64, MinuteTotals)>) {
        let oldest = self.oldest_minute(now);
        self.loaded = true;
        self.buckets
            .retain(|&(_, minute), _| minute >= oldest && minute < from);
        for (queue, minute, totals) in rows {
            if minute >= oldest {
                self.buckets
                    .entry((queue, minute))
                    .or_default()
                    .add(&totals);
            }
        }
    }

    /// The sum over the window of one queue.
    pub fn total(&self, queue: Queue) -> MinuteTotals {
        let mut total = MinuteTotals::default();
        for ((q, _), totals) in &self.buckets {
            if *q == queue {
                total.add(totals);
            }
        }
        total
    }

    /// One minute of one queue.
    pub fn minute(&self, queue: Queue, minute: i64) -> MinuteTotals {
        self.buckets
            .get(&(queue, minute))
            .copied()
            .unwrap_or_default()
    }

    /// Window length in hours, for per-hour rates.
    pub fn hours(&self) -> f64 {
        self.minutes as f64 / 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(n: u64) -> MinuteTotals {
        MinuteTotals {
            finished: n,
            sent: n,
            ..Default::default()
        }
    }

    #[test]
    fn the_window_slides_and_recent_minutes_are_replaced() {
        let mut w = Window::new(60);
        assert_eq!(w.first_minute_to_read(1000), 941, "the whole window first");
        w.replace_from(
            1000,
            941,
            vec![(Queue::Batch, 941, sent(5)), (Queue::Batch, 1000, sent(1))],
        );
        assert_eq!(w.total(Queue::Batch).sent, 6);
        assert_eq!(w.total(Queue::Realtime).sent, 0);
        // A minute later: only the recent minutes are read again, and minute 941 has left the window.
        assert_eq!(w.first_minute_to_read(1001), 998);
        w.replace_from(
            1001,
            998,
            vec![(Queue::Batch, 1000, sent(3)), (Queue::Batch, 1001, sent(2))],
        );
        assert_eq!(w.total(Queue::Batch).sent, 5, "1000 replaced, 941 gone");
        assert_eq!(w.minute(Queue::Batch, 1000).sent, 3);
    }
}
