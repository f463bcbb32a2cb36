//! Durations in the configuration: `"250ms"`, `"2s"`, `"5m"`, `"1h"`, `"1d"`, or a bare integer
//! number of seconds, in the file as in `MC_*` overrides.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// The accepted duration forms, repeated in every duration error so the fix is in the message.
const DURATION_FORMS: &str = "an integer followed by `ms`, `s`, `m`, `h` or `d` (\"250ms\", \"2s\", \"5m\", \"1h\", \"1d\"), or a bare integer number of seconds";

/// Parses a duration: `"250ms"`, `"2s"`, `"5m"`, `"1h"`, `"1d"`, or a bare integer of seconds
/// (`"30"`). The error says what is wrong and lists the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let bad = || format!("invalid duration `{text}`: expected {DURATION_FORMS}");
    if digits.is_empty() {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let millis_per_unit: u64 = match unit.trim_start() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

/// The shortest exact rendering of `d` in the syntax [`parse_duration`] accepts, for defaults in
/// workflow settings.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// serde `deserialize_with` for durations: a string in [`parse_duration`] syntax, or a
/// non-negative integer of seconds.
pub(crate) fn deserialize_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a duration: {DURATION_FORMS}")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            v.checked_mul(1_000)
                .map(Duration::from_millis)
                .ok_or_else(|| E::custom(format!("duration of {v} seconds is too large")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom(format!(
                    "invalid duration {v}: must not be negative; expected {DURATION_FORMS}"
                ))),
            }
        }
    }

    deserializer.deserialize_any(DurationVisitor)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
        for bad in [
            "",
            "s",
            "1.5s",
            "-1s",
            "2w",
            "1 h x",
            "99999999999999999999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("99999999999999999d").is_err());
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn bad_duration_is_named_with_the_accepted_forms() {
        let (key, message) = invalid("[workflows.archiving]\ninterval = \"soon\"\n", no_env());
        assert_eq!(key, "workflows.archiving.interval");
        assert!(message.contains("`soon`"), "{message}");
        assert!(message.contains("\"250ms\""), "{message}");
        let (key, message) = invalid("[server]\nshutdown_timeout = -5\n", no_env());
        assert_eq!(key, "server.shutdown_timeout");
        assert!(message.contains("negative"), "{message}");
        let (key, _) = invalid("[plugins]\ndrain_timeout = true\n", no_env());
        assert_eq!(key, "plugins.drain_timeout");
    }
}
