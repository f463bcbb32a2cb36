//! `[monitoring]`: the window and refresh of Adobe's Message Center indicators, and their thresholds.
//!
//! Thresholds come as `[monitoring.thresholds.<indicator>] warning, alert` (both queues) or
//! `[monitoring.thresholds.<queue>.<indicator>]` (one queue, which wins over the shared pair). The table
//! mixes queue and indicator names as keys, which serde's derive cannot express, so it is read as a plain
//! TOML table and checked here, each error naming the key at fault.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::deserialize_duration;
use crate::monitoring::{Indicator, Threshold};
use mc_plugin_api::Queue;

/// `[monitoring]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// The sliding window the rates and averages are computed over (Adobe: one hour).
    #[serde(deserialize_with = "deserialize_duration")]
    pub window: Duration,
    /// How often the indicators are recomputed; readers (admin API, `/metrics`, console) read the last
    /// snapshot, so a page refreshing every second costs no query.
    #[serde(deserialize_with = "deserialize_duration")]
    pub refresh: Duration,
    /// The operator's thresholds, over the defaults.
    pub thresholds: ThresholdsConfig,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3600),
            refresh: Duration::from_secs(5),
            thresholds: ThresholdsConfig::default(),
        }
    }
}

/// The thresholds the file sets: per indicator for both queues, and per (queue, indicator).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThresholdsConfig {
    /// `[monitoring.thresholds.<indicator>]`.
    pub shared: BTreeMap<Indicator, Threshold>,
    /// `[monitoring.thresholds.<queue>.<indicator>]`.
    pub per_queue: BTreeMap<(Queue, Indicator), Threshold>,
}

// Thresholds are checked to be finite numbers, so equality is total.
impl Eq for ThresholdsConfig {}

impl ThresholdsConfig {
    /// The threshold in force for one queue's indicator: the queue's own, the shared one, the default.
    pub fn for_indicator(&self, queue: Queue, indicator: Indicator) -> Option<Threshold> {
        self.per_queue
            .get(&(queue, indicator))
            .or_else(|| self.shared.get(&indicator))
            .copied()
            .or_else(|| indicator.default_threshold())
    }
}

impl<'de> Deserialize<'de> for ThresholdsConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        parse_thresholds(&table).map_err(serde::de::Error::custom)
    }
}

fn parse_thresholds(table: &toml::Table) -> Result<ThresholdsConfig, String> {
    let mut config = ThresholdsConfig::default();
    for (key, value) in table {
        let Some(sub) = value.as_table() else {
            return Err(format!("`{key}` must be a table"));
        };
        if let Some(indicator) = Indicator::from_name(key) {
            config
                .shared
                .insert(indicator, parse_pair(key, indicator, sub)?);
        } else if let Ok(queue) = key.parse::<Queue>() {
            for (name, value) in sub {
                let path = format!("{key}.{name}");
                let indicator = Indicator::from_name(name).ok_or_else(|| {
                    format!(
                        "`{path}`: unknown indicator `{name}` ({})",
                        Indicator::names()
                    )
                })?;
                let pair = value
                    .as_table()
                    .ok_or_else(|| format!("`{path}` must be a table"))?;
                config
                    .per_queue
                    .insert((queue, indicator), parse_pair(&path, indicator, pair)?);
            }
        } else {
            return Err(format!(
                "`{key}`: neither an indicator ({}) nor a queue (realtime, batch)",
                Indicator::names()
            ));
        }
    }
    Ok(config)
}

/// One `{ warning, alert }` pair, with the alert beyond the warning in the bad direction.
fn parse_pair(path: &str, indicator: Indicator, table: &toml::Table) -> Result<Threshold, String> {
    let mut warning = None;
    let mut alert = None;
    for (key, value) in table {
        let number = match value {
            toml::Value::Integer(i) => *i as f64,
            toml::Value::Float(f) if f.is_finite() => *f,
            _ => return Err(format!("`{path}.{key}` must be a finite number")),
        };
        match key.as_str() {
            "warning" => warning = Some(number),
            "alert" => alert = Some(number),
            other => {
                return Err(format!("`{path}.{other}`: unknown key (warning, alert)"));
            }
        }
    }
    let (Some(warning), Some(alert)) = (warning, alert) else {
        return Err(format!("`{path}` needs both `warning` and `alert`"));
    };
    let threshold = Threshold { warning, alert };
    if !indicator.is_ordered(threshold) {
        let relation = if indicator.low_is_bad() {
            "below"
        } else {
            "above"
        };
        return Err(format!(
            "`{path}`: alert ({alert}) must be {relation} warning ({warning}) for {}",
            indicator.as_str()
        ));
    }
    Ok(threshold)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Config, ConfigError};
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, no_env())
    }

    #[test]
    fn defaults_are_adobes() {
        let config = load("").expect("empty file");
        let m = &config.monitoring;
        assert_eq!(m.window, Duration::from_secs(3600));
        let t = m
            .thresholds
            .for_indicator(Queue::Batch, Indicator::QueueSize)
            .expect("default");
        assert_eq!((t.warning, t.alert), (100.0, 400.0));
        assert!(
            m.thresholds
                .for_indicator(Queue::Realtime, Indicator::Throughput)
                .is_none(),
            "throughput is off unless set"
        );
    }

    #[test]
    fn queue_thresholds_win_over_shared_ones() {
        let config = load(
            "[monitoring.thresholds.queue_size]\nwarning = 10\nalert = 20\n\
             [monitoring.thresholds.batch.queue_size]\nwarning = 1000\nalert = 5000\n\
             [monitoring.thresholds.throughput]\nwarning = 100\nalert = 10\n",
        )
        .expect("valid");
        let t = &config.monitoring.thresholds;
        let rt = t
            .for_indicator(Queue::Realtime, Indicator::QueueSize)
            .unwrap();
        let batch = t.for_indicator(Queue::Batch, Indicator::QueueSize).unwrap();
        assert_eq!((rt.warning, rt.alert), (10.0, 20.0));
        assert_eq!((batch.warning, batch.alert), (1000.0, 5000.0));
        let tp = t
            .for_indicator(Queue::Batch, Indicator::Throughput)
            .unwrap();
        assert_eq!((tp.warning, tp.alert), (100.0, 10.0));
    }

    #[test]
    fn bad_thresholds_name_the_key() {
        for (text, expected) in [
            (
                "[monitoring.thresholds.queue_sise]\nwarning = 1\nalert = 2\n",
                "queue_sise",
            ),
            (
                "[monitoring.thresholds.batch.errors]\nwarning = 1\nalert = 2\n",
                "batch.errors",
            ),
            (
                "[monitoring.thresholds.error_rate]\nwarning = 5\nalert = 1\n",
                "must be above warning",
            ),
            (
                "[monitoring.thresholds.throughput]\nwarning = 5\nalert = 10\n",
                "must be below warning",
            ),
            (
                "[monitoring.thresholds.error_rate]\nwarning = 5\n",
                "needs both",
            ),
            (
                "[monitoring.thresholds.error_rate]\nwarning = \"x\"\nalert = 1\n",
                "error_rate.warning",
            ),
        ] {
            let error = load(text).expect_err(text).to_string();
            assert!(error.contains("monitoring.thresholds"), "{error}");
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
