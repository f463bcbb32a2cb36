//! The email channel: SMTP with pooled connections (our `TCP_NODELAY` pool over lettre's protocol
//! implementation for `smtp://`, lettre's own transport for `smtps://`; see `smtp_pool`).
//!
//! `smtp_url` decides the security: `smtp://` plain (for a local relay), `smtp://…?tls=required` STARTTLS
//! or fail, `smtp://…?tls=opportunistic` STARTTLS when offered, `smtps://` TLS from the first byte;
//! `user:password@` in the URL enables AUTH.
//!
//! With `[bounces] return_path_domain`, the envelope sender (`MAIL FROM`) of each message is its VERP
//! address `bounces+<token>@<domain>` (see `crate::bounces::token`) on both paths; the `From` header is
//! the template's or the channel's, as without.

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::dkim::{DkimKeyError, DkimSigners};
use super::outcome::{SendOutcome, is_permanent_for_recipient};
use super::smtp_pool::{SmtpPool, parse_smtp_url};
use crate::bounces::Bounces;
use crate::config::EmailChannelConfig;
use crate::templates::Rendered;

/// Whom a message is sent for.
#[derive(Clone, Copy, Debug)]
pub enum SendFor {
    /// Attempt `attempt` (delivery-log entry `log_id`) of event `event_id`.
    Attempt {
        event_id: u64,
        attempt: i32,
        log_id: i64,
    },
    /// A proof of a template to a seed address (`templates::proofs`): no event, no delivery-log entry.
    Proof,
}

/// How messages leave: our own `TCP_NODELAY` pool for `smtp://`, lettre's transport for `smtps://`.
enum Sender {
    Pool(SmtpPool),
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct EmailChannel {
    sender: Sender,
    default_from: Mailbox,
    /// Domain of the Message-IDs this instance generates.
    id_domain: String,
    /// VERP envelope senders, when `[bounces] return_path_domain` is set.
    bounces: Option<Bounces>,
    /// `[[channels.email.dkim]]`.
    dkim: DkimSigners,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailConfigError {
    #[error("channels.email.smtp_url: {0}")]
    Url(String),
    #[error("channels.email.from: `{0}` is not a mailbox (\"Name <address>\" or an address)")]
    From(String),
    #[error("channels.email.tls_ca_file `{file}`: {reason}")]
    TlsCa { file: String, reason: String },
    #[error(transparent)]
    Dkim(#[from] DkimKeyError),
}

impl EmailChannel {
    pub fn new(config: &EmailChannelConfig) -> Result<Self, EmailConfigError> {
        let dkim = DkimSigners::load(&config.dkim)?;
        let ca = match &config.tls_ca_file {
            Some(file) => Some(read_ca(file)?),
            None => None,
        };
        let sender = match parse_smtp_url(&config.smtp_url).map_err(EmailConfigError::Url)? {
            Some(target) => {
                let tls = tls_parameters(&target.host, ca.as_ref())?;
                Sender::Pool(SmtpPool::new(
                    target,
                    tls,
                    config.timeout,
                    config.pool_size.max(1) as usize,
                ))
            }
            None => Sender::Lettre(Self::lettre_transport(config, ca.as_ref())?),
        };
        let default_from: Mailbox = config
            .from
            .parse()
            .map_err(|_| EmailConfigError::From(config.from.clone()))?;
        let id_domain = default_from.email.domain().to_owned();
        Ok(EmailChannel {
            sender,
            default_from,
            id_domain,
            bounces: None,
            dkim,
        })
    }

    /// Sends with VERP envelope senders made by `bounces` (when it has a return-path domain).
    pub fn with_bounces(mut self, bounces: Bounces) -> Self {
        self.bounces = bounces.domain().is_some().then_some(bounces);
        self
    }

    /// The envelope of `message`, its sender replaced by the VERP address of entry `log_id`.
    async fn envelope(&self, message: &Message, event_id: u64, log_id: i64) -> Envelope {
        let envelope = message.envelope().clone();
        let Some(bounces) = &self.bounces else {
            return envelope;
        };
        let Some(sender) = bounces.envelope_sender(event_id, log_id).await else {
            return envelope;
        };
        match sender.parse::<Address>() {
            Ok(sender) => Envelope::new(Some(sender), envelope.to().to_vec()).unwrap_or(envelope),
            Err(_) => envelope,
        }
    }

    /// lettre's pooled transport, for the URLs our pool does not take (`smtps://`).
    fn lettre_transport(
        config: &EmailChannelConfig,
        ca: Option<&Certificate>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailConfigError> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| EmailConfigError::Url(e.to_string()))?;
        if let Some(ca) = ca {
            // `smtps://` is TLS from the first byte: the same, with the extra CA trusted.
            let host = url::Url::parse(&config.smtp_url)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
                .ok_or_else(|| EmailConfigError::Url("the URL has no host".to_owned()))?;
            builder = builder.tls(Tls::Wrapper(tls_parameters(&host, Some(ca))?));
        }
        Ok(builder
            // Room for twice the concurrent sends: lettre hands a used connection back to its pool from
            // another task, and a send that starts before it is back would otherwise open a new
            // connection and make the pool close the returning one (hundreds of reconnections per
            // thousand messages, measured).
            .pool_config(PoolConfig::new().max_size(config.pool_size.max(1) * 2))
            .timeout(Some(config.timeout))
            .build())
    }

    /// Sends one rendered message to `to` for `purpose`. For an event's attempt the Message-ID names the
    /// event (a message found in a mailbox leads back to it) and the envelope sender is its VERP address;
    /// a proof's Message-ID says `proof` and its envelope sender is the plain `From`, so that a bounce of
    /// a proof matches no delivery-log entry.
    pub async fn send(&self, to: &str, rendered: &Rendered, purpose: SendFor) -> SendOutcome {
        let to: Mailbox = match to.parse() {
            Ok(to) => to,
            Err(e) => return SendOutcome::Permanent(format!("invalid recipient `{to}`: {e}")),
        };
        let from = match rendered.from.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(from) => match from.parse::<Mailbox>() {
                Ok(from) => from,
                Err(e) => {
                    return SendOutcome::Permanent(format!(
                        "the template's from `{from}` is invalid: {e}"
                    ));
                }
            },
            None => self.default_from.clone(),
        };
        let message_id = match purpose {
            SendFor::Attempt {
                event_id, attempt, ..
            } => format!("<mc.{event_id}.{attempt}.{}@{}>", nonce(), self.id_domain),
            SendFor::Proof => format!("<mc.proof.{}@{}>", nonce(), self.id_domain),
        };
        let from_domain = from.email.domain().to_owned();
        let builder = Message::builder()
            .from(from)
            .to(to)
            .subject(rendered.subject.clone().unwrap_or_default())
            .message_id(Some(message_id.clone()));
        let message = super::mime::build(builder, rendered);
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                return SendOutcome::Permanent(format!("the message could not be built: {e}"));
            }
        };
        let envelope = match purpose {
            SendFor::Attempt {
                event_id, log_id, ..
            } => self.envelope(&message, event_id, log_id).await,
            SendFor::Proof => message.envelope().clone(),
        };
        let formatted = match self.dkim.sign(message.formatted(), &from_domain).await {
            Ok(formatted) => formatted,
            Err(e) => return SendOutcome::Transient(e),
        };
        let permanent = match &self.sender {
            Sender::Pool(pool) => pool
                .send(&envelope, &formatted)
                .await
                .map_err(|e| (e.is_permanent(), e.to_string())),
            Sender::Lettre(transport) => transport
                .send_raw(&envelope, &formatted)
                .await
                .map(|_| ())
                .map_err(|e| (is_permanent_for_recipient(&e), e.to_string())),
        };
        match permanent {
            Ok(()) => SendOutcome::Sent {
                message_id: Some(message_id),
            },
            Err((true, e)) => SendOutcome::Permanent(format!("SMTP: {e}")),
            Err((false, e)) => SendOutcome::Transient(format!("SMTP: {e}")),
        }
    }
}

/// The CA certificates of `[channels.email] tls_ca_file`.
fn read_ca(file: &std::path::Path) -> Result<Certificate, EmailConfigError> {
    let error = |reason: String| EmailConfigError::TlsCa {
        file: file.display().to_string(),
        reason,
    };
    let pem = std::fs::read(file).map_err(|e| error(format!("cannot read it: {e}")))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(error("no PEM certificate in it".to_owned()));
    }
    Certificate::from_pem(&pem).map_err(|e| error(e.to_string()))
}

/// TLS towards `host` (STARTTLS or `smtps://`), trusting the web PKI roots and `ca` when given.
fn tls_parameters(host: &str, ca: Option<&Certificate>) -> Result<TlsParameters, EmailConfigError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(ca) = ca {
        builder = builder.add_root_certificate(ca.clone());
    }
    builder
        .build_rustls()
        .map_err(|e| EmailConfigError::Url(format!("TLS towards `{host}`: {e}")))
}

/// A short random token, so Message-IDs stay unique across retries and instances.
fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", hasher.finish())
}
