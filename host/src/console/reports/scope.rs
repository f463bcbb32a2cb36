//! A report's period and filters, as typed in its form (and in the CSV link, the same query string):
//! `from`, `to` (UTC; default the last 24 hours), `granularity` (`hour` or `day`), `instance`,
//! `channel`, `type`. Bounded: at most [`MAX_HOURLY_DAYS`] days by the hour, [`MAX_DAILY_DAYS`] by the
//! day, so a report reads a bounded number of groups.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use super::super::view::{parse_time, time};
use crate::store::ReportScope;
use mc_plugin_api::Channel;

/// Longest period shown by the hour.
pub const MAX_HOURLY_DAYS: i64 = 31;
/// Longest period shown by the day.
pub const MAX_DAILY_DAYS: i64 = 92;

/// The length of a report's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub const ALL: [Granularity; 2] = [Granularity::Hour, Granularity::Day];

    pub const fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    pub fn from_name(name: &str) -> Option<Granularity> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    pub const fn seconds(self) -> i64 {
        match self {
            Granularity::Hour => 3600,
            Granularity::Day => 86_400,
        }
    }

    /// How a bucket is named in the tables and the CSV.
    pub const fn period_format(self) -> &'static str {
        match self {
            Granularity::Hour => "%Y-%m-%d %H:00",
            Granularity::Day => "%Y-%m-%d",
        }
    }

    /// How the chart's x axis is labelled.
    pub const fn axis_format(self) -> &'static str {
        match self {
            Granularity::Hour => "%m-%d %H:%M",
            Granularity::Day => "%Y-%m-%d",
        }
    }

    const fn max_days(self) -> i64 {
        match self {
            Granularity::Hour => MAX_HOURLY_DAYS,
            Granularity::Day => MAX_DAILY_DAYS,
        }
    }
}

/// The form as typed (or as defaulted), to show it again and to build the CSV link.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReportForm {
    pub from: String,
    pub to: String,
    pub granularity: String,
    pub instance: String,
    pub channel: String,
    pub event_type: String,
}

impl ReportForm {
    /// The query string of this form (what the CSV link and the page share).
    pub fn query(&self) -> String {
        let pairs: Vec<(String, String)> = [
            ("from", &self.from),
            ("to", &self.to),
            ("granularity", &self.granularity),
            ("instance", &self.instance),
            ("channel", &self.channel),
            ("type", &self.event_type),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
        crate::urls::encode_query(&pairs)
    }
}

/// The parsed form: the store's scope and the granularity.
#[derive(Clone, Debug)]
pub struct Scope {
    pub store: ReportScope,
    pub granularity: Granularity,
}

impl Scope {
    /// The start of bucket number `bucket`.
    pub fn bucket_start(&self, bucket: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(bucket.saturating_mul(self.granularity.seconds()), 0)
            .unwrap_or(self.store.from)
    }

    /// The bucket numbers of the period's first and last buckets.
    pub fn bucket_range(&self) -> (i64, i64) {
        let seconds = self.granularity.seconds();
        let last = (self.store.to - Duration::seconds(1)).max(self.store.from);
        (
            self.store.from.timestamp().div_euclid(seconds),
            last.timestamp().div_euclid(seconds),
        )
    }

    /// A bucket's name in the tables and the CSV.
    pub fn period_name(&self, bucket: i64) -> String {
        self.bucket_start(bucket)
            .format(self.granularity.period_format())
            .to_string()
    }

    /// Hours of one bucket (for a bucket's rate per hour): 1 or 24.
    pub fn bucket_hours(&self) -> f64 {
        self.granularity.seconds() as f64 / 3600.0
    }

    /// Hours of the whole period, at least one (for the period's rate per hour: a period shorter than
    /// an hour is not extrapolated to one).
    pub fn hours(&self) -> f64 {
        (((self.store.to - self.store.from).num_seconds().max(0) as f64) / 3600.0).max(1.0)
    }
}

/// Reads the query string's pairs into the form and its scope, or what is wrong (naming the field).
/// `now` is the default end of the period.
pub fn parse(
    pairs: &[(String, String)],
    now: DateTime<Utc>,
) -> (ReportForm, Result<Scope, String>) {
    let mut form = ReportForm::default();
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "from" => &mut form.from,
            "to" => &mut form.to,
            "granularity" => &mut form.granularity,
            "instance" => &mut form.instance,
            "channel" => &mut form.channel,
            "type" => &mut form.event_type,
            _ => continue,
        };
        *slot = value.trim().to_owned();
    }
    let now = now.duration_trunc(Duration::seconds(1)).unwrap_or(now);
    if form.to.is_empty() {
        form.to = time(now);
    }
    if form.granularity.is_empty() {
        form.granularity = Granularity::Hour.as_str().to_owned();
    }
    let scope = scope(&mut form);
    (form, scope)
}

fn scope(form: &mut ReportForm) -> Result<Scope, String> {
    let granularity = Granularity::from_name(&form.granularity).ok_or_else(|| {
        format!(
            "granularity: must be hour or day, not `{}`",
            form.granularity
        )
    })?;
    let to = parse_time("to", &form.to)?;
    if form.from.is_empty() {
        form.from = time(to - Duration::hours(24));
    }
    let from = parse_time("from", &form.from)?;
    if from >= to {
        return Err(format!(
            "from: `{}` is not before `to` ({})",
            form.from, form.to
        ));
    }
    if to - from > Duration::days(granularity.max_days()) {
        return Err(format!(
            "from: a period of at most {} days by the {} (or choose another granularity)",
            granularity.max_days(),
            granularity.as_str()
        ));
    }
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let channel = match form.channel.as_str() {
        "" => None,
        name => Some(
            name.parse::<Channel>()
                .map_err(|_| format!("channel: must be email or sms, not `{name}`"))?,
        ),
    };
    Ok(Scope {
        store: ReportScope {
            from,
            to,
            bucket_seconds: granularity.seconds(),
            instance: text(&form.instance),
            channel,
            event_type: text(&form.event_type),
        },
        granularity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_default_is_the_last_day_by_the_hour() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T09:30:15.5Z")
            .unwrap()
            .to_utc();
        let (form, scope) = parse(&[], now);
        let scope = scope.expect("valid");
        assert_eq!(form.to, "2026-12-03T09:30:15Z");
        assert_eq!(form.from, "2026-12-02T09:30:15Z");
        assert_eq!(scope.granularity, Granularity::Hour);
        let (first, last) = scope.bucket_range();
        assert_eq!(
            last - first,
            24,
            "25 hour buckets, the first and last partly"
        );
        assert_eq!(scope.period_name(first), "2026-12-02 09:00");
        assert!((scope.hours() - 24.0).abs() < 1e-9);
        assert!((scope.bucket_hours() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_input_names_its_field() {
        let now = Utc::now();
        for (query, field) in [
            (vec![("granularity", "week")], "granularity"),
            (vec![("to", "yesterday")], "to"),
            (
                vec![
                    ("from", "2026-12-03T10:00:00Z"),
                    ("to", "2026-12-03T09:00:00Z"),
                ],
                "from",
            ),
            (
                vec![
                    ("from", "2026-01-01T00:00:00Z"),
                    ("to", "2026-12-03T09:00:00Z"),
                ],
                "from",
            ),
            (vec![("channel", "fax")], "channel"),
        ] {
            let (_, scope) = parse(&pairs(&query), now);
            let error = scope.expect_err("refused");
            assert!(error.starts_with(&format!("{field}:")), "{error}");
        }
        let (_, scope) = parse(
            &pairs(&[
                ("from", "2026-10-01T00:00:00Z"),
                ("to", "2026-12-03T00:00:00Z"),
                ("granularity", "day"),
            ]),
            now,
        );
        assert!(scope.is_ok(), "63 days by the day");
    }
}
