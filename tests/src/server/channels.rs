//! The `[channels.email]` and `[channels.sms]` tables a test server can be configured with.

use super::options::toml_string;

/// The `[channels.email] from` that [`ServerOptions::email_channel`](crate::ServerOptions::email_channel) configures.
pub const DEFAULT_EMAIL_FROM: &str = "Message Center <noreply@example.com>";

/// The `[channels.sms] api_key` that [`ServerOptions::sms_channel`](crate::ServerOptions::sms_channel) configures.
pub const DEFAULT_SMS_API_KEY: &str = "gw-key";

/// The `[channels.sms] from` that [`ServerOptions::sms_channel`](crate::ServerOptions::sms_channel) configures.
pub const DEFAULT_SMS_FROM: &str = "MC";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    pub retries: u32,
    pub retry_backoff: String,
    pub retry_max_backoff: String,
    pub retry_period: String,
}

impl Default for RetryOptions {
    /// 3 retries, 200 ms backoff doubling up to 1 s, within 1 minute.
    fn default() -> Self {
        RetryOptions {
            retries: 3,
            retry_backoff: "200ms".to_owned(),
            retry_max_backoff: "1s".to_owned(),
            retry_period: "1m".to_owned(),
        }
    }
}

impl RetryOptions {
    /// Sets `retries` and `retry_backoff`.
    pub fn set_retries(&mut self, retries: u32, backoff: &str) {
        self.retries = retries;
        self.retry_backoff = backoff.to_owned();
    }

    /// Sets `retry_max_backoff` and `retry_period`.
    pub fn set_limits(&mut self, max_backoff: &str, period: &str) {
        self.retry_max_backoff = max_backoff.to_owned();
        self.retry_period = period.to_owned();
    }

    fn toml(&self) -> String {
        format!(
            "retries = {}\nretry_backoff = {}\nretry_max_backoff = {}\nretry_period = {}\n",
            self.retries,
            toml_string(&self.retry_backoff),
            toml_string(&self.retry_max_backoff),
            toml_string(&self.retry_period)
        )
    }
}

/// `[channels.email]`, pointing at an SMTP server on `127.0.0.1:smtp_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChannelOptions {
    pub smtp_port: u16,
    pub from: String,
    pub pool_size: u32,
    pub timeout: String,
    pub retry: RetryOptions,
    /// Replaces `smtp://127.0.0.1:<smtp_port>` (TLS, AUTH).
    pub smtp_url: Option<String>,
    /// More TOML after the table's keys: `tls_ca_file = ...`, `[[channels.email.dkim]]` tables, ...
    pub extra_toml: String,
}

impl EmailChannelOptions {
    pub fn new(smtp_port: u16) -> Self {
        EmailChannelOptions {
            smtp_port,
            from: DEFAULT_EMAIL_FROM.to_owned(),
            pool_size: 4,
            timeout: "5s".to_owned(),
            retry: RetryOptions::default(),
            smtp_url: None,
            extra_toml: String::new(),
        }
    }

    /// The `[channels.email]` table (and the tables of [`EmailChannelOptions::extra_toml`]).
    pub fn toml(&self) -> String {
        let url = self
            .smtp_url
            .clone()
            .unwrap_or_else(|| format!("smtp://127.0.0.1:{}", self.smtp_port));
        format!(
            "[channels.email]\nsmtp_url = {}\nfrom = {}\npool_size = {}\ntimeout = {}\n{}{}\n",
            toml_string(&url),
            toml_string(&self.from),
            self.pool_size,
            toml_string(&self.timeout),
            self.retry.toml(),
            self.extra_toml
        )
    }
}

/// `[channels.sms]`, pointing at an SMS gateway on `http://127.0.0.1:gateway_port/sms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsChannelOptions {
    pub gateway_port: u16,
    pub api_key: String,
    pub from: String,
    pub concurrency: u32,
    pub timeout: String,
    pub retry: RetryOptions,
}

impl SmsChannelOptions {
    pub fn new(gateway_port: u16) -> Self {
        SmsChannelOptions {
            gateway_port,
            api_key: DEFAULT_SMS_API_KEY.to_owned(),
            from: DEFAULT_SMS_FROM.to_owned(),
            concurrency: 4,
            timeout: "5s".to_owned(),
            retry: RetryOptions::default(),
        }
    }

    /// The `[channels.sms]` table.
    pub fn toml(&self) -> String {
        format!(
            "[channels.sms]\ngateway_url = {}\napi_key = {}\nfrom = {}\nconcurrency = {}\ntimeout = {}\n{}",
            toml_string(&format!("http://127.0.0.1:{}/sms", self.gateway_port)),
            toml_string(&self.api_key),
            toml_string(&self.from),
            self.concurrency,
            toml_string(&self.timeout),
            self.retry.toml()
        )
    }
}
