//! The queue's size over a report's period, from the archive's moves ([`QueueMoves`]): sampled at the
//! end of every minute (or at the period's end, for its last minute) as the events pushed before that
//! moment that had not left the queue yet (linked to a template, or final without one). Per bucket,
//! the largest, smallest and average sample.

use chrono::{DateTime, Utc};

use crate::store::QueueMoves;

/// The queue's size over one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueueSize {
    pub max: u64,
    pub min: u64,
    pub average: f64,
}

/// Per bucket (`bucket_seconds` long) of `[from, end)`, the samples' max, min and average; buckets
/// without a sampled minute (`end` before them) are absent.
pub fn per_bucket(
    moves: &QueueMoves,
    from: DateTime<Utc>,
    end: DateTime<Utc>,
    bucket_seconds: i64,
) -> Vec<(i64, QueueSize)> {
    let first = from.timestamp().div_euclid(60);
    let end_seconds = end.timestamp();
    if end_seconds <= from.timestamp() {
        return Vec::new();
    }
    let last = (end_seconds - 1).div_euclid(60);
    let mut pushed = moves.pushed.iter().peekable();
    let mut left = moves.left.iter().peekable();
    let mut size = i64::try_from(moves.waiting_at_start).unwrap_or(i64::MAX);
    let mut out: Vec<(i64, QueueSize)> = Vec::new();
    // (bucket, max, min, sum, samples) of the bucket being filled.
    let mut current: Option<(i64, u64, u64, f64, u64)> = None;
    for minute in first..=last {
        while let Some((_, n)) = pushed.next_if(|(m, _)| *m <= minute) {
            size = size.saturating_add(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        while let Some((_, n)) = left.next_if(|(m, _)| *m <= minute) {
            size = size.saturating_sub(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let sample = u64::try_from(size).unwrap_or(0);
        let bucket = (minute * 60).div_euclid(bucket_seconds.max(60));
        match &mut current {
            Some((b, max, min, sum, samples)) if *b == bucket => {
                *max = (*max).max(sample);
                *min = (*min).min(sample);
                *sum += sample as f64;
                *samples += 1;
            }
            _ => {
                if let Some(done) = current.take() {
                    out.push(finish(done));
                }
                current = Some((bucket, sample, sample, sample as f64, 1));
            }
        }
    }
    if let Some(done) = current {
        out.push(finish(done));
    }
    out
}

fn finish((bucket, max, min, sum, samples): (i64, u64, u64, f64, u64)) -> (i64, QueueSize) {
    (
        bucket,
        QueueSize {
            max,
            min,
            average: sum / samples.max(1) as f64,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_every_minute_end() {
        let from = DateTime::from_timestamp(3600 * 10, 0).unwrap();
        let minute = 600;
        let moves = QueueMoves {
            waiting_at_start: 2,
            // 4 pushed in the first minute, 1 in the 61st.
            pushed: vec![(minute, 4), (minute + 60, 1)],
            // 1 left in the first minute, 5 in the second.
            left: vec![(minute, 1), (minute + 1, 5)],
        };
        let end = from + chrono::Duration::minutes(90);
        let buckets = per_bucket(&moves, from, end, 3600);
        assert_eq!(buckets.len(), 2);
        // Samples of the first hour: 5, then 0 for the 59 others.
        assert_eq!(buckets[0].0, 10);
        assert_eq!(buckets[0].1.max, 5);
        assert_eq!(buckets[0].1.min, 0);
        assert!((buckets[0].1.average - 5.0 / 60.0).abs() < 1e-9);
        // Second hour (30 minutes sampled): 1 from its first minute on.
        assert_eq!(buckets[1].1.max, 1);
        assert_eq!(buckets[1].1.min, 1);
        assert!(per_bucket(&moves, from, from, 3600).is_empty());
    }
}
