//! The last day of the indicators, a sample per minute, for the console's charts.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;

use mc_plugin_api::Queue;

/// Samples kept: one a minute for a day.
pub const HISTORY_MINUTES: usize = 24 * 60;

/// One minute of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSample {
    /// Events `pending` at the last refresh of the minute.
    pub queue_size: u64,
    /// Events that finished `sent` in the minute.
    pub sent: u64,
    /// Events that finished otherwise in the minute.
    pub errors: u64,
    /// Average seconds of the events that finished in the minute (none when none did).
    pub avg_queue_time: Option<f64>,
    pub avg_delivery_time: Option<f64>,
    pub avg_processing_time: Option<f64>,
}

/// One minute of both queues.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    /// Events accepted in the minute, both queues (from the row-key sequence, so approximately: keys of
    /// rolled-back transactions count too).
    pub events_in: u64,
    pub realtime: QueueSample,
    pub batch: QueueSample,
}

impl Sample {
    /// The sample of one queue.
    pub fn queue(&self, queue: Queue) -> &QueueSample {
        match queue {
            Queue::Realtime => &self.realtime,
            Queue::Batch => &self.batch,
        }
    }
}

/// A ring of [`Sample`]s, newest last; the sample of the current minute is replaced at every refresh.
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    /// The event row key at the end of the previous minute, and at the last refresh.
    key_before: Option<i64>,
    key_now: i64,
}

impl History {
    /// Records the state at a refresh of minute `minute` (Unix minutes), with the highest event key now.
    pub fn record(&mut self, minute: i64, max_key: i64, realtime: QueueSample, batch: QueueSample) {
        let at = DateTime::from_timestamp(minute * 60, 0).unwrap_or_default();
        let same_minute = self.samples.back().is_some_and(|s| s.minute == at);
        if !same_minute {
            // A new minute: the key at the last refresh of the previous one is its baseline.
            self.key_before = Some(if self.samples.is_empty() {
                max_key
            } else {
                self.key_now
            });
        }
        self.key_now = max_key;
        let events_in = u64::try_from(max_key - self.key_before.unwrap_or(max_key)).unwrap_or(0);
        let sample = Sample {
            minute: at,
            events_in,
            realtime,
            batch,
        };
        if same_minute {
            if let Some(last) = self.samples.back_mut() {
                *last = sample;
            }
        } else {
            self.samples.push_back(sample);
            while self.samples.len() > HISTORY_MINUTES {
                self.samples.pop_front();
            }
        }
    }

    /// The samples of the last `minutes` minutes, oldest first.
    pub fn last(&self, minutes: usize) -> Vec<Sample> {
        let skip = self.samples.len().saturating_sub(minutes);
        self.samples.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_a_minute_and_events_in_from_the_key_sequence() {
        let mut h = History::default();
        let q = |n| QueueSample {
            queue_size: n,
            ..Default::default()
        };
        h.record(100, 10, q(1), q(0));
        h.record(100, 15, q(2), q(0));
        h.record(101, 40, q(3), q(0));
        let samples = h.last(10);
        assert_eq!(samples.len(), 2);
        assert_eq!(
            samples[0].realtime.queue_size, 2,
            "replaced within its minute"
        );
        assert_eq!(samples[0].events_in, 5);
        assert_eq!(samples[1].events_in, 25);
        assert_eq!(h.last(1).len(), 1);
    }
}
