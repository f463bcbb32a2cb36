//! Durations, RFC 3339 timestamps, and polling without a server.

use std::time::{Duration, Instant};

/// `Duration::from_secs`, shorter to read in timeouts.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `Duration::from_millis`.
pub fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How often the polling helpers ask again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

pub fn rfc3339(time: std::time::SystemTime) -> String {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a time after 1970");
    let secs = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// [`rfc3339`] of now plus `offset`.
pub fn rfc3339_in(offset: Duration) -> String {
    rfc3339(std::time::SystemTime::now() + offset)
}

/// [`rfc3339`] of now minus `offset`.
pub fn rfc3339_ago(offset: Duration) -> String {
    rfc3339(std::time::SystemTime::now() - offset)
}

/// Milliseconds since 1970 of an RFC 3339 UTC time as [`rfc3339`] writes it (`…T08:33:35.747Z`), or as
/// the server's JSON does (`…T08:33:35.747123+00:00`).
pub fn rfc3339_millis(text: &str) -> i64 {
    fn bad(text: &str) -> ! {
        panic!("`{text}` is not an RFC 3339 UTC time")
    }
    let (date, time) = text
        .trim_end_matches('Z')
        .trim_end_matches("+00:00")
        .split_once('T')
        .unwrap_or_else(|| bad(text));
    let numbers = |s: &str, sep: char| -> Vec<f64> {
        s.split(sep)
            .map(|n| n.parse().unwrap_or_else(|_| bad(text)))
            .collect()
    };
    let (d, t) = (numbers(date, '-'), numbers(time, ':'));
    let (y, m) = if d[1] <= 2.0 {
        (d[0] - 1.0, d[1] + 9.0)
    } else {
        (d[0], d[1] - 3.0)
    };
    // Howard Hinnant's days_from_civil.
    let (y, m, day) = (y as i64, m as i64, d[2] as i64);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400_000 + ((t[0] * 3600.0 + t[1] * 60.0 + t[2]) * 1000.0).round() as i64
}

/// Polls `done` every [`POLL_INTERVAL`] until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `probe` every [`POLL_INTERVAL`] until it returns `Ok`; returns that value. After `timeout`,
/// panics naming `what` and showing the last `Err` (what the probe last saw).
pub async fn poll_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last_seen) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}\nlast seen: {last_seen}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// Async version of [`wait_until`] that also returns a value: polls `probe` until it yields `Some`.
pub async fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_utc_with_millis() {
        let at = |secs: u64, millis: u64| {
            rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_767_225_599, 999), "2025-12-31T23:59:59.999Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        for millis in [0, 951_782_400_005, 1_767_225_599_999, 4_107_542_400_000] {
            let text = rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(millis));
            assert_eq!(rfc3339_millis(&text), millis as i64, "{text}");
        }
    }
}
