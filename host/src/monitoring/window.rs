//! The sliding window: per queue, the totals of each minute, from which the indicators are computed.
//!
//! The window is kept in memory as minute buckets. The first refresh reads the whole window once; each
//! later refresh asks the database only for the events that finished since the previous one (those
//! that entered the archive feed after the place it read up to: `Store::finished_minutes`) and adds
//! them to their minutes' buckets; buckets are dropped as they leave the window. An event finishes
//! once, so it is counted once, in the minute of its `finished_at`; one whose final status a bounce
//! changes later re-enters the feed and is counted again, with its new status (the `sent` of its first
//! count stays: a rare overcount). Reading the last three minutes again at every refresh, as this did
//! before, cost a refresh every event of those minutes, and with SQLite's plan for the join (see
//! `store::time_sql::not_for_index`) the server went from 1.02 to about 1.5 CPUs at 1000 events/s
//! (BENCHMARKS.md, session 11).

use std::collections::BTreeMap;

use mc_plugin_api::Queue;

use crate::store::MinuteTotals;

/// Minute buckets of both queues.
#[derive(Debug, Default)]
pub struct Window {
    /// Window length in whole minutes.
    minutes: i64,
    /// The archive-feed place read up to, once the whole window has been read.
    read_upto: Option<i64>,
    buckets: BTreeMap<(Queue, i64), MinuteTotals>,
}

impl Window {
    pub fn new(minutes: i64) -> Self {
        Self {
            minutes: minutes.max(1),
            read_upto: None,
            buckets: BTreeMap::new(),
        }
    }

    /// What a refresh at minute `now` must read: the feed places after the returned one, finished in
    /// or after the returned minute (the whole window the first time, then what finished since).
    pub fn to_read(&self, now: i64) -> (i64, i64) {
        (self.read_upto.unwrap_or(0), self.oldest_minute(now))
    }

    fn oldest_minute(&self, now: i64) -> i64 {
        now - self.minutes + 1
    }

    /// Adds `rows`, read up to feed place `upto`, to their buckets, and drops the buckets that left the
    /// window.
    pub fn add(&mut self, now: i64, upto: i64, rows: Vec<(Queue, i64, MinuteTotals)>) {
        let oldest = self.oldest_minute(now);
        self.read_upto = Some(upto.max(self.read_upto.unwrap_or(0)));
        self.buckets.retain(|&(_, minute), _| minute >= oldest);
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
    fn the_window_slides_and_later_refreshes_add_what_finished_since() {
        let mut w = Window::new(60);
        assert_eq!(w.to_read(1000), (0, 941), "the whole window first");
        w.add(
            1000,
            7,
            vec![(Queue::Batch, 941, sent(5)), (Queue::Batch, 1000, sent(1))],
        );
        assert_eq!(w.total(Queue::Batch).sent, 6);
        assert_eq!(w.total(Queue::Realtime).sent, 0);
        // A minute later: only the places after 7 are read; minute 941 has left the window.
        assert_eq!(w.to_read(1001), (7, 942));
        w.add(
            1001,
            9,
            vec![(Queue::Batch, 1000, sent(3)), (Queue::Batch, 1001, sent(2))],
        );
        assert_eq!(w.total(Queue::Batch).sent, 6, "1000 added to, 941 gone");
        assert_eq!(w.minute(Queue::Batch, 1000).sent, 4);
        // Nothing new: the place read up to does not go back.
        w.add(1001, 0, Vec::new());
        assert_eq!(w.to_read(1001), (9, 942));
    }
}
