//! What a send attempt can end in, and what the engine does about each.

/// The channel's verdict on one send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted by the SMTP relay or the gateway.
    Sent { message_id: Option<String> },
    /// Refused for good (SMTP 5xx, gateway 4xx): fail now and quarantine the address.
    Permanent(String),
    /// Might work later (connection refused, timeout, SMTP 4xx, gateway 5xx): retry with backoff.
    Transient(String),
}

impl SendOutcome {
    /// The `outcome` label of `mc_delivery_attempts_total`.
    pub fn label(&self) -> &'static str {
        match self {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::Permanent(_) => "permanent_failure",
            SendOutcome::Transient(_) => "transient_failure",
        }
    }
}

/// Whether an SMTP error is a verdict on the message or its recipient (a 5xx), so that retrying will
/// not help and the address may be quarantined. A 53x (authentication required or refused, RFC 4954) is
/// not: the relay refuses our credentials, which says nothing of the recipient, so it is retried like a
/// transient failure and then fails with the relay's answer, quarantining no one.
pub fn is_permanent_for_recipient(e: &lettre::transport::smtp::Error) -> bool {
    e.is_permanent()
        && !e
            .status()
            .is_some_and(|code| code.to_string().starts_with("53"))
}
