//! `[channels.email]` and `[channels.sms]`: where messages go, and how failed sends are retried.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::deserialize_duration;
use super::dkim::DkimKeyConfig;
use super::throttle::DomainLimits;

/// `[channels]`. A channel that is not configured makes its events fail delivery with that reason.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsConfig {
    pub email: Option<EmailChannelConfig>,
    pub sms: Option<SmsChannelConfig>,
    /// Once woken by new attempts, how long the idle delivery engine waits before it claims, so that
    /// those handed over meanwhile go in the same round (as `[workflows.<name>] wake_delay`).
    #[serde(deserialize_with = "deserialize_duration")]
    pub wake_delay: Duration,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig {
            email: None,
            sms: None,
            wake_delay: super::schema::DEFAULT_WAKE_DELAY,
        }
    }
}

/// `[channels.email]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailChannelConfig {
    /// `smtp://host:port` (plain; STARTTLS when the server offers it), `smtp://host:port?tls=required`
    /// (STARTTLS or fail), or `smtps://host:port` (TLS from the first byte); `user:password@` for AUTH.
    pub smtp_url: String,
    /// Default sender when the template has no `from`: `"Name <address>"` or an address.
    pub from: String,
    /// Pooled SMTP connections, and so concurrent sends.
    pub pool_size: u32,
    /// Connect/command timeout of one attempt.
    #[serde(deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    #[serde(flatten)]
    pub retry: RetryConfig,
    /// A PEM file of CA certificates trusted for the relay's TLS (STARTTLS and `smtps://`) besides the
    /// built-in web PKI roots: for a relay with a private CA.
    pub tls_ca_file: Option<PathBuf>,
    /// `[[channels.email.dkim]]`: signing keys by `From` domain.
    pub dkim: Vec<DkimKeyConfig>,
    /// `[channels.email.domains."<domain>"]`: limits by recipient domain.
    pub domains: BTreeMap<String, DomainLimits>,
}

impl Default for EmailChannelConfig {
    fn default() -> Self {
        Self {
            smtp_url: "smtp://127.0.0.1:25".to_owned(),
            from: "Message Center <noreply@localhost.localdomain>".to_owned(),
            pool_size: 8,
            timeout: Duration::from_secs(30),
            retry: RetryConfig::default(),
            tls_ca_file: None,
            dkim: Vec::new(),
            domains: BTreeMap::new(),
        }
    }
}

/// Hand-written so that logs never print the SMTP password.
impl fmt::Debug for EmailChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannelConfig")
            .field("smtp_url", &crate::urls::redact(&self.smtp_url))
            .field("from", &self.from)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("dkim", &self.dkim)
            .field("domains", &self.domains)
            .finish()
    }
}

/// `[channels.sms]`: an HTTP gateway that takes `POST {"to","text","from","eventId"}` as JSON.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsChannelConfig {
    pub gateway_url: String,
    /// Sent as `Authorization: Bearer <api_key>` when set.
    pub api_key: Option<String>,
    /// Sender id passed to the gateway.
    pub from: Option<String>,
    /// Concurrent requests to the gateway.
    pub concurrency: u32,
    #[serde(deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    #[serde(flatten)]
    pub retry: RetryConfig,
}

impl Default for SmsChannelConfig {
    fn default() -> Self {
        Self {
            gateway_url: "http://127.0.0.1:9090/sms".to_owned(),
            api_key: None,
            from: None,
            concurrency: 8,
            timeout: Duration::from_secs(10),
            retry: RetryConfig::default(),
        }
    }
}

impl fmt::Debug for SmsChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsChannelConfig")
            .field("gateway_url", &crate::urls::redact(&self.gateway_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Retries of transient failures, with exponential backoff: attempt n+1 waits
/// `min(retry_backoff × 2^(n-1), retry_max_backoff)`; after `retries` retries, or once `retry_period`
/// has passed since the first attempt, the delivery fails for good.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    pub retries: u32,
    #[serde(deserialize_with = "deserialize_duration")]
    pub retry_backoff: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub retry_max_backoff: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub retry_period: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            retries: 5,
            retry_backoff: Duration::from_secs(2),
            retry_max_backoff: Duration::from_secs(300),
            retry_period: Duration::from_secs(3600),
        }
    }
}

impl RetryConfig {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.retry_backoff
            .saturating_mul(factor)
            .min(self.retry_max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let retry = RetryConfig {
            retries: 10,
            retry_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(10),
            retry_period: Duration::from_secs(3600),
        };
        let waits: Vec<u64> = (1..=6).map(|n| retry.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }
}

/// `[templates]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplatesConfig {
    /// A directory of `<name>.json` templates (the body of `PUT /api/v1/templates/<name>`) created and
    /// published at start when no template of that name exists yet: how a new installation gets its
    /// sample templates. Existing templates are never overwritten.
    pub seed_dir: Option<std::path::PathBuf>,
    /// Instructions rendering one part may execute (docs/api.md "Template limits").
    pub max_render_fuel: u64,
    /// Bytes one rendered part may have.
    pub max_output_bytes: usize,
    /// How long rendering one message's parts may take.
    #[serde(deserialize_with = "deserialize_duration")]
    pub render_timeout: Duration,
}

impl Default for TemplatesConfig {
    fn default() -> Self {
        Self {
            seed_dir: None,
            max_render_fuel: crate::templates::DEFAULT_MAX_RENDER_FUEL,
            max_output_bytes: crate::templates::DEFAULT_MAX_OUTPUT_BYTES,
            render_timeout: crate::templates::DEFAULT_RENDER_TIMEOUT,
        }
    }
}
