//! `[bounces]` and `[quarantine]`: the envelope sender of outgoing mail (VERP), the bounce listener, and
//! how long quarantine entries last.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::deserialize_duration;
use super::error::Problem;

/// `[bounces]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BouncesConfig {
    /// The domain of every message's envelope sender, `bounces+<token>@<return_path_domain>` (VERP);
    /// its MX (or the relay's transport map) must lead to `smtp_listen`. Unset: the envelope sender is
    /// the `From` address, as before, and bounces can only be reported over HTTP by Message-ID/event.
    pub return_path_domain: Option<String>,
    /// The bounce SMTP listener; needs `return_path_domain`. Unset: no listener.
    pub smtp_listen: Option<SocketAddr>,
    /// The key bounce tokens are signed with (HMAC-SHA256), at least 16 characters. Unset: a random key
    /// generated once and kept in the database (`host_secrets`), so instances sharing it agree.
    pub signing_key: Option<String>,
    /// The name the listener greets with; `return_path_domain` when unset.
    pub hostname: Option<String>,
    /// Largest message accepted (bytes); a larger one is refused with 552 and discarded.
    pub max_message_bytes: usize,
    /// How long the listener waits for each command line; then 421 and the connection is closed.
    #[serde(deserialize_with = "deserialize_duration")]
    pub command_timeout: Duration,
    /// How long one message's DATA may take to arrive in full; then 421 and the connection is closed.
    #[serde(deserialize_with = "deserialize_duration")]
    pub data_timeout: Duration,
    /// Connections served at once; one more is answered 421 and closed.
    pub max_connections: usize,
    /// Recipients accepted per message.
    pub max_recipients: usize,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        Self {
            return_path_domain: None,
            smtp_listen: None,
            signing_key: None,
            hostname: None,
            max_message_bytes: 10 * 1024 * 1024,
            command_timeout: Duration::from_secs(60),
            data_timeout: Duration::from_secs(300),
            max_connections: 100,
            max_recipients: 100,
        }
    }
}

/// Hand-written so that logs never print the signing key.
impl fmt::Debug for BouncesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BouncesConfig")
            .field("return_path_domain", &self.return_path_domain)
            .field("smtp_listen", &self.smtp_listen)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("hostname", &self.hostname)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("command_timeout", &self.command_timeout)
            .field("data_timeout", &self.data_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_recipients", &self.max_recipients)
            .finish()
    }
}

/// Shortest `[bounces] signing_key`.
const MIN_SIGNING_KEY_CHARS: usize = 16;

impl BouncesConfig {
    /// `return_path_domain` in lower case, when set.
    pub fn domain(&self) -> Option<String> {
        self.return_path_domain
            .as_deref()
            .map(|d| d.trim().to_ascii_lowercase())
    }

    pub(super) fn validate(&self) -> Result<(), Problem> {
        if let Some(domain) = &self.return_path_domain {
            let valid = !domain.is_empty()
                && domain.len() <= 253
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !valid {
                return Err(Problem::new(
                    &["bounces", "return_path_domain"],
                    format!("`{domain}` is not a domain name (letters, digits, `-` and dots)"),
                ));
            }
        }
        if self.smtp_listen.is_some() && self.return_path_domain.is_none() {
            return Err(Problem::new(
                &["bounces", "smtp_listen"],
                "needs `bounces.return_path_domain`: the listener accepts mail for that domain only",
            ));
        }
        if let Some(key) = &self.signing_key
            && key.chars().count() < MIN_SIGNING_KEY_CHARS
        {
            return Err(Problem::new(
                &["bounces", "signing_key"],
                format!("must be at least {MIN_SIGNING_KEY_CHARS} characters"),
            ));
        }
        for (key, zero) in [
            ("max_message_bytes", self.max_message_bytes == 0),
            ("command_timeout", self.command_timeout.is_zero()),
            ("data_timeout", self.data_timeout.is_zero()),
            ("max_connections", self.max_connections == 0),
            ("max_recipients", self.max_recipients == 0),
        ] {
            if zero {
                return Err(Problem::new(&["bounces", key], "must be greater than 0"));
            }
        }
        Ok(())
    }
}

/// `[quarantine]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuarantineConfig {
    /// Entries stop counting this long after they were made (as if released); unset: never.
    #[serde(deserialize_with = "deserialize_optional_duration")]
    pub expire_after: Option<Duration>,
}

impl QuarantineConfig {
    pub(super) fn validate(&self) -> Result<(), Problem> {
        if self.expire_after.is_some_and(|d| d.is_zero()) {
            return Err(Problem::new(
                &["quarantine", "expire_after"],
                "must be greater than 0 (leave it out to keep entries until released)",
            ));
        }
        Ok(())
    }
}

fn deserialize_optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    struct Present(#[serde(deserialize_with = "deserialize_duration")] Duration);
    Ok(Some(Present::deserialize(deserializer)?.0))
}
