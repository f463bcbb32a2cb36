//! `[webhooks]`: how the host delivers webhook notifications (SPEC "Webhooks"): the retry schedule, the
//! destinations allowed although private, the per-attempt timeout and the per-endpoint concurrency.

use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use super::deserialize_duration;
use super::duration::parse_duration;

/// `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The waits after the 1st, 2nd, … failed attempt; once exhausted the notification is `failed`.
    #[serde(deserialize_with = "deserialize_schedule")]
    pub retry_schedule: Vec<Duration>,
    /// Addresses and CIDR blocks a destination may resolve to although loopback, private, link-local or
    /// unspecified (`["127.0.0.1/32"]` for a receiver on the same machine).
    #[serde(deserialize_with = "deserialize_networks")]
    pub allowed_destinations: Vec<IpNet>,
    /// One attempt, connection and answer included.
    #[serde(deserialize_with = "deserialize_duration")]
    pub request_timeout: Duration,
    /// Requests in flight to one endpoint; more wait, other endpoints are not held back.
    pub max_concurrent_per_endpoint: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            retry_schedule: ["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"]
                .into_iter()
                .map(|d| parse_duration(d).expect("default schedule"))
                .collect(),
            allowed_destinations: Vec::new(),
            request_timeout: Duration::from_secs(15),
            max_concurrent_per_endpoint: 4,
        }
    }
}

impl WebhooksConfig {
    /// The rules serde cannot express, as (key, message).
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.retry_schedule.is_empty() {
            return Err((
                "retry_schedule",
                "must list at least one wait (e.g. [\"5s\"])".to_owned(),
            ));
        }
        if self.retry_schedule.iter().any(Duration::is_zero) {
            return Err((
                "retry_schedule",
                "every wait must be greater than 0".to_owned(),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(("request_timeout", "must be greater than 0".to_owned()));
        }
        if self.max_concurrent_per_endpoint == 0 {
            return Err((
                "max_concurrent_per_endpoint",
                "must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

fn deserialize_schedule<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| parse_duration(text))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn deserialize_networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| parse_network(text))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// An address (`127.0.0.1`, `::1`) or a CIDR block (`10.0.0.0/8`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("`{text}` is neither an IP address nor a CIDR block (e.g. 127.0.0.1/32)")
        })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn defaults_are_the_contract() {
        let config = WebhooksConfig::default();
        assert_eq!(config.retry_schedule.len(), 9);
        assert_eq!(config.retry_schedule[0], Duration::from_secs(5));
        assert_eq!(config.retry_schedule[8], Duration::from_secs(24 * 3600));
        assert_eq!(config.request_timeout, Duration::from_secs(15));
        assert_eq!(config.max_concurrent_per_endpoint, 4);
        assert!(config.check().is_ok());
    }

    #[test]
    fn networks_parse_as_addresses_or_blocks() {
        assert_eq!(
            parse_network("127.0.0.1").unwrap(),
            "127.0.0.1/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert!(parse_network("::1").is_ok());
        assert!(parse_network("localhost").is_err());
        assert!(parse_network("10.0.0.0/33").is_err());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            (
                "[webhooks]\nallowed_destinations = [\"nope\"]\n",
                "webhooks.allowed_destinations",
            ),
            (
                "[webhooks]\nretry_schedule = [\"5x\"]\n",
                "webhooks.retry_schedule",
            ),
            (
                "[webhooks]\nretry_schedule = []\n",
                "webhooks.retry_schedule",
            ),
            (
                "[webhooks]\nmax_concurrent_per_endpoint = 0\n",
                "webhooks.max_concurrent_per_endpoint",
            ),
        ] {
            let (found, message) = invalid(text, no_env());
            assert_eq!(found, key, "{message}");
        }
        let config = Config::from_toml_str(
            "[webhooks]\nretry_schedule = [\"1s\", \"2s\"]\nallowed_destinations = [\"127.0.0.1/32\"]\n",
            no_env(),
        )
        .unwrap();
        assert_eq!(
            config.webhooks.retry_schedule,
            vec![Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert_eq!(config.webhooks.allowed_destinations.len(), 1);
    }
}
