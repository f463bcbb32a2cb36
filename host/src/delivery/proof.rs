//! Sending a proof (`templates::proofs`): one rendered message to a seed address, now, through the same
//! channel senders and connection permits as the engine's deliveries (not a second SMTP client), with
//! no event, no delivery-log entry, no retry and no VERP envelope.

use std::sync::Arc;

use mc_plugin_api::Channel;
use tokio::sync::Semaphore;

use super::email::{EmailChannel, SendFor};
use super::outcome::SendOutcome;
use super::sms::SmsChannel;
use crate::ingest::validate::{check_email, check_phone};
use crate::templates::Rendered;

/// The channels a proof can leave through; cheap to clone.
#[derive(Clone, Default)]
pub struct ProofSender {
    pub(super) email: Option<(Arc<EmailChannel>, Arc<Semaphore>)>,
    pub(super) sms: Option<(Arc<SmsChannel>, Arc<Semaphore>)>,
}

/// Why a proof was not sent at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("the {0} channel is not configured on this instance ([channels.{0}])")]
    NotConfigured(&'static str),
    #[error("invalid address `{address}`: {reason}")]
    InvalidAddress {
        address: String,
        reason: &'static str,
    },
}

impl ProofSender {
    /// Sends `rendered` to `address` on `channel`; the channel's verdict, or why nothing was sent.
    pub async fn send(
        &self,
        channel: Channel,
        address: &str,
        rendered: &Rendered,
    ) -> Result<SendOutcome, ProofError> {
        let invalid = |reason| ProofError::InvalidAddress {
            address: address.to_owned(),
            reason,
        };
        match channel {
            Channel::Email => {
                check_email(address).map_err(invalid)?;
                let (sender, permits) = self
                    .email
                    .as_ref()
                    .ok_or(ProofError::NotConfigured("email"))?;
                let _permit = permits.acquire().await;
                Ok(sender.send(address, rendered, SendFor::Proof).await)
            }
            Channel::Sms => {
                check_phone(address).map_err(invalid)?;
                let (sender, permits) =
                    self.sms.as_ref().ok_or(ProofError::NotConfigured("sms"))?;
                let _permit = permits.acquire().await;
                let text = rendered.text.clone().unwrap_or_default();
                Ok(sender.send(address, &text, None).await)
            }
        }
    }
}
