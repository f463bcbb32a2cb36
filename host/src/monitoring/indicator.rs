//! The indicators of Adobe's Message Center monitoring screen, their thresholds and states (SPEC
//! "Monitoring").

use std::fmt;

use serde::Serialize;

/// One monitored quantity of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// Events `pending` now.
    QueueSize,
    /// Percentage of the window's finished events that are not `sent`.
    ErrorRate,
    /// Messages sent per hour over the window; low is bad.
    Throughput,
    /// Seconds from push to linked to a template.
    AvgQueueTime,
    /// Seconds from linked to accepted by the relay or gateway.
    AvgDeliveryTime,
    /// Seconds from push to accepted.
    AvgProcessingTime,
}

impl Indicator {
    /// Every indicator, in the order the monitoring screen shows them.
    pub const ALL: [Indicator; 6] = [
        Indicator::QueueSize,
        Indicator::ErrorRate,
        Indicator::Throughput,
        Indicator::AvgQueueTime,
        Indicator::AvgDeliveryTime,
        Indicator::AvgProcessingTime,
    ];

    /// The name in the API, the configuration and the metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Indicator::QueueSize => "queue_size",
            Indicator::ErrorRate => "error_rate",
            Indicator::Throughput => "throughput",
            Indicator::AvgQueueTime => "avg_queue_time",
            Indicator::AvgDeliveryTime => "avg_delivery_time",
            Indicator::AvgProcessingTime => "avg_processing_time",
        }
    }

    /// The indicator of that name.
    pub fn from_name(name: &str) -> Option<Indicator> {
        Self::ALL.into_iter().find(|i| i.as_str() == name)
    }

    /// The names, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Indicator::as_str).join(", ")
    }

    /// Throughput is the one indicator where a low value is the problem.
    pub const fn low_is_bad(self) -> bool {
        matches!(self, Indicator::Throughput)
    }

    /// Adobe's defaults; throughput has none (it depends on the traffic), so it is off unless set.
    pub const fn default_threshold(self) -> Option<Threshold> {
        let (warning, alert) = match self {
            Indicator::QueueSize => (100.0, 400.0),
            Indicator::ErrorRate => (1.0, 5.0),
            Indicator::Throughput => return None,
            Indicator::AvgQueueTime => (4.0, 8.0),
            Indicator::AvgDeliveryTime => (6.0, 12.0),
            Indicator::AvgProcessingTime => (10.0, 20.0),
        };
        Some(Threshold { warning, alert })
    }

    /// Whether the alert level lies beyond the warning level in the bad direction (or on it).
    pub fn is_ordered(self, threshold: Threshold) -> bool {
        if self.low_is_bad() {
            threshold.alert <= threshold.warning
        } else {
            threshold.alert >= threshold.warning
        }
    }

    /// The state of `value` against `threshold`: `alert` past the alert level, `warning` past the
    /// warning level, otherwise (and with no value or no threshold) `ok`.
    pub fn state(self, value: Option<f64>, threshold: Option<Threshold>) -> State {
        let (Some(value), Some(t)) = (value, threshold) else {
            return State::Ok;
        };
        let past = |level: f64| {
            if self.low_is_bad() {
                value < level
            } else {
                value >= level
            }
        };
        if past(t.alert) {
            State::Alert
        } else if past(t.warning) {
            State::Warning
        } else {
            State::Ok
        }
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A warning and an alert level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// Orange on Adobe's screen.
    pub warning: f64,
    /// Red.
    pub alert: f64,
}

/// How an indicator stands against its thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Warning,
    Alert,
}

impl State {
    /// The name in the API and the console's `data-state`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Alert => "alert",
        }
    }

    /// The value of `mc_monitoring_state`: 0 ok, 1 warning, 2 alert.
    pub const fn level(self) -> i64 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Alert => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_is_bad_for_all_but_throughput() {
        let t = Indicator::QueueSize.default_threshold();
        assert_eq!(Indicator::QueueSize.state(Some(99.0), t), State::Ok);
        assert_eq!(Indicator::QueueSize.state(Some(100.0), t), State::Warning);
        assert_eq!(Indicator::QueueSize.state(Some(400.0), t), State::Alert);
        assert_eq!(Indicator::QueueSize.state(None, t), State::Ok);
    }

    #[test]
    fn low_throughput_is_bad() {
        let t = Some(Threshold {
            warning: 100.0,
            alert: 10.0,
        });
        assert_eq!(Indicator::Throughput.state(Some(500.0), t), State::Ok);
        assert_eq!(Indicator::Throughput.state(Some(50.0), t), State::Warning);
        assert_eq!(Indicator::Throughput.state(Some(5.0), t), State::Alert);
        assert_eq!(Indicator::Throughput.state(Some(5.0), None), State::Ok);
    }

    #[test]
    fn names_round_trip() {
        for i in Indicator::ALL {
            assert_eq!(Indicator::from_name(i.as_str()), Some(i));
            assert_eq!(serde_json::to_value(i).unwrap(), i.as_str());
        }
        assert_eq!(Indicator::from_name("queue"), None);
    }
}
