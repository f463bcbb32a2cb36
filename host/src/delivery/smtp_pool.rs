//! Our own pool of SMTP connections for `smtp://` relays, on lettre's connection type.
//!
//! Why not lettre's pooled transport: it writes a message's body and its terminating `\r\n.\r\n` in two
//! writes on a socket without `TCP_NODELAY`, so Nagle's algorithm holds the terminator back until the
//! relay's delayed ACK, about 40 ms on Linux: every message took 43 ms at the relay and each connection
//! topped out near 22 messages/s (measured in `benches/delivery.rs`). Here the socket is opened by us
//! with `TCP_NODELAY`, then handed to lettre for the protocol (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA).
//! `smtps://` (TLS from the first byte) keeps lettre's own transport.
//!
//! When the relay advertises `PIPELINING` (RFC 2920), `MAIL FROM`, the `RCPT TO`s and `DATA` leave in
//! one write and their answers are read after it, then the content and its terminating `.` in a second
//! write: a message costs two round trips and two writes instead of four round trips and five writes
//! (lettre's connection sends one command per round trip and the terminator apart from the content; it
//! does not read those capabilities from EHLO, so the pool asks with a second EHLO once per connection).
//! When the relay also advertises `CHUNKING` (RFC 3030; Postfix does since 3.0), the content goes as one
//! `BDAT <size> LAST` chunk in the same write as `MAIL` and `RCPT`: one write and one round trip per
//! message, and no dot-stuffing.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;

use crate::urls::percent_decode;

/// Whether and how to upgrade a connection with STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartTls {
    Never,
    /// When the relay offers it.
    Opportunistic,
    /// Or fail.
    Required,
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub starttls: StartTls,
    pub credentials: Option<(String, String)>,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The relay answered (4xx or 5xx) or the protocol failed.
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Connecting or talking to the relay failed at the network level.
    #[error("{0}")]
    Network(String),
    /// The message needs an extension the relay does not offer (as lettre's own `send` says).
    #[error("{0}")]
    NotOffered(&'static str),
}

impl PoolError {
    /// A 5xx answer about the message or recipient: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, PoolError::Smtp(e) if super::outcome::is_permanent_for_recipient(e))
    }
}

/// An open connection and what its relay takes: pipelined commands, `BDAT` chunks.
struct Session {
    connection: AsyncSmtpConnection,
    pipelining: bool,
    chunking: bool,
}

pub struct SmtpPool {
    target: SmtpTarget,
    /// For STARTTLS.
    tls: TlsParameters,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<Session>>,
    max_idle: usize,
}

impl SmtpPool {
    pub fn new(target: SmtpTarget, tls: TlsParameters, timeout: Duration, max_idle: usize) -> Self {
        SmtpPool {
            target,
            tls,
            timeout,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn take_idle(&self) -> Option<Session> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn give_back(&self, session: Session) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(session);
        }
    }

    /// Sends one message. A pooled connection that turns out dead (the relay closed it while idle) is
    /// replaced by a fresh one once, so an idle timeout on the relay's side never fails a delivery.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), PoolError> {
        if let Some(session) = self.take_idle() {
            match self.send_on(session, envelope, message).await {
                Err(PoolError::Network(_)) => {}
                Err(PoolError::Smtp(e)) if !e.is_response() => {}
                other => return other,
            }
        }
        let session = self.connect().await?;
        self.send_on(session, envelope, message).await
    }

    async fn send_on(
        &self,
        mut session: Session,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), PoolError> {
        let transaction = async {
            if session.pipelining {
                send_pipelined(&mut session.connection, envelope, message, session.chunking).await
            } else {
                session.connection.send(envelope, message).await?;
                Ok(())
            }
        };
        match tokio::time::timeout(self.timeout, transaction).await {
            Ok(Ok(())) => {
                if !session.connection.has_broken() {
                    self.give_back(session);
                }
                Ok(())
            }
            Ok(Err(e)) => {
                // After a refused recipient the session is still usable, but a clean slate is simpler
                // (and after a pipelined group, answers may still be unread).
                session.connection.abort().await;
                Err(e)
            }
            Err(_) => Err(PoolError::Network(format!(
                "no answer from the relay within {:?}",
                self.timeout
            ))),
        }
    }

    async fn connect(&self) -> Result<Session, PoolError> {
        let target = &self.target;
        let address = (target.host.as_str(), target.port);
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                PoolError::Network(format!(
                    "connecting to {}:{} timed out",
                    target.host, target.port
                ))
            })?
            .map_err(|e| {
                PoolError::Network(format!(
                    "cannot connect to {}:{}: {e}",
                    target.host, target.port
                ))
            })?;
        stream
            .set_nodelay(true)
            .map_err(|e| PoolError::Network(format!("cannot set TCP_NODELAY: {e}")))?;
        let mut connection = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
        )
        .await
        .map_err(|_| PoolError::Network("the relay did not greet in time".to_owned()))??;
        let upgrade = match target.starttls {
            StartTls::Required => true,
            StartTls::Opportunistic => connection.can_starttls(),
            StartTls::Never => false,
        };
        // Each step under the timeout: a relay that never answers STARTTLS or AUTH would otherwise hold
        // the attempt (and its claim) forever.
        let late =
            |step: &str| PoolError::Network(format!("the relay did not answer {step} in time"));
        if upgrade {
            tokio::time::timeout(
                self.timeout,
                connection.starttls(self.tls.clone(), &self.hello),
            )
            .await
            .map_err(|_| late("STARTTLS"))??;
        }
        // Before AUTH, so that the second EHLO cannot reset an authenticated session on any relay.
        let capabilities = tokio::time::timeout(
            self.timeout,
            connection.command(Ehlo::new(self.hello.clone())),
        )
        .await
        .map_err(|_| late("EHLO"))??;
        let offered = |keyword: &str| {
            capabilities
                .message()
                .any(|line| line.trim().eq_ignore_ascii_case(keyword))
        };
        let (pipelining, chunking) = (offered("PIPELINING"), offered("CHUNKING"));
        if let Some((user, password)) = &target.credentials {
            let credentials = Credentials::new(user.clone(), password.clone());
            tokio::time::timeout(
                self.timeout,
                connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials),
            )
            .await
            .map_err(|_| late("AUTH"))??;
        }
        Ok(Session {
            connection,
            pipelining,
            chunking,
        })
    }
}

/// One mail transaction with `MAIL`, `RCPT`s and `DATA` in one write (RFC 2920), then the content and
/// its terminator in another; or, when `chunking` (and the content is UTF-8, as lettre formats it),
/// `MAIL`, `RCPT`s and the content as one `BDAT … LAST` chunk, all in one write (RFC 3030).
/// The answers are read in order, so the first refusal is the one reported, as without pipelining; a
/// session that saw one is dropped, unread answers and all (`send_on`).
/// The parameters are lettre's own `send`'s: `SMTPUTF8` for non-ASCII addresses, `8BITMIME` for
/// non-ASCII content, each refused locally when the relay does not offer it.
async fn send_pipelined(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
    chunking: bool,
) -> Result<(), PoolError> {
    let offers = |extension| connection.server_info().supports_feature(extension);
    let mut parameters = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
    if non_ascii {
        if !offers(Extension::SmtpUtfEight) {
            return Err(PoolError::NotOffered(
                "the envelope has non-ASCII addresses and the relay does not offer SMTPUTF8",
            ));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !offers(Extension::EightBitMime) {
            return Err(PoolError::NotOffered(
                "the message has non-ASCII content and the relay does not offer 8BITMIME",
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    // lettre's connection writes commands as text (a `Display`); the messages it formats are UTF-8.
    // Anything else goes after `DATA` through its `message`, in two writes.
    let text = std::str::from_utf8(message).ok();
    let content = match text {
        Some(text) if chunking => Content::Chunk(text),
        _ => Content::Data,
    };
    let chunked = matches!(content, Content::Chunk(_));
    let group = Pipelined {
        mail: Mail::new(envelope.from().cloned(), parameters),
        recipients: envelope
            .to()
            .iter()
            .map(|to| Rcpt::new(to.clone(), Vec::new()))
            .collect(),
        content,
    };
    // `command` writes the whole group and reads the answer to `MAIL`.
    connection.command(group).await?;
    for _ in envelope.to() {
        connection.read_response().await?;
    }
    // The answer to `BDAT` (250: accepted), or to `DATA` (354: the content follows).
    connection.read_response().await?;
    match text {
        _ if chunked => {}
        Some(text) => {
            connection.command(DataContent(text)).await?;
        }
        None => {
            connection.message(message).await?;
        }
    }
    Ok(())
}

/// `MAIL FROM`, every `RCPT TO`, then `DATA` or the whole message as one `BDAT` chunk, each command
/// with its CRLF, written as one command.
struct Pipelined<'a> {
    mail: Mail,
    recipients: Vec<Rcpt>,
    content: Content<'a>,
}

/// How a pipelined group ends.
enum Content<'a> {
    /// `DATA`: the content follows the relay's 354 (RFC 2920 ends a group there).
    Data,
    /// `BDAT <size> LAST` and the message itself, ending in CRLF (RFC 3030: no dot-stuffing).
    Chunk(&'a str),
}

impl fmt::Display for Pipelined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mail)?;
        for recipient in &self.recipients {
            write!(f, "{recipient}")?;
        }
        match self.content {
            Content::Data => write!(f, "{Data}"),
            Content::Chunk(message) => {
                let end = if message.ends_with("\r\n") {
                    ""
                } else {
                    "\r\n"
                };
                write!(
                    f,
                    "BDAT {} LAST\r\n{message}{end}",
                    message.len() + end.len()
                )
            }
        }
    }
}

/// A message's content after `DATA`, as lettre's connection writes it (every line starting with `.`
/// gets another, then `CRLF.CRLF`), but in one write: lettre writes the terminator apart, a second
/// system call and, on a relay that reads it apart, a second wake-up there.
struct DataContent<'a>(&'a str);

impl fmt::Display for DataContent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = self.0.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
            if lines.peek().is_some() {
                f.write_str("\r\n")?;
            }
        }
        f.write_str("\r\n.\r\n")
    }
}

/// Reads an `smtp://` URL: host, port (25 by default), `user:password@`, `?tls=required|opportunistic`.
/// `None` for any other scheme (lettre's transport handles `smtps://`).
pub fn parse_smtp_url(url: &str) -> Result<Option<SmtpTarget>, String> {
    let Some(rest) = url.strip_prefix("smtp://") else {
        return Ok(None);
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (
                Some((percent_decode(user), percent_decode(password))),
                host_port,
            )
        }
        None => (None, authority),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host_port.starts_with('[') => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("`{port}` is not a port"))?,
        ),
        _ => (host_port, 25),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the URL has no host".to_owned());
    }
    let mut starttls = StartTls::Never;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("tls", "required")) => starttls = StartTls::Required,
            Some(("tls", "opportunistic")) => starttls = StartTls::Opportunistic,
            Some(("tls", other)) => {
                return Err(format!(
                    "tls=`{other}`: expected `required` or `opportunistic`"
                ));
            }
            _ => return Err(format!("unknown parameter `{pair}`")),
        }
    }
    Ok(Some(SmtpTarget {
        host: host.to_owned(),
        port,
        starttls,
        credentials,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The group written in one go: each command with its CRLF, `DATA` last (RFC 2920 ends a group
    /// there). A relay that advertises PIPELINING gets it: Postfix in `tests/tests/bounces_postfix.rs`,
    /// the sink of the benches; aiosmtpd (the other tests' relay) does not, and gets one command per
    /// round trip.
    #[test]
    fn a_pipelined_group_is_mail_every_rcpt_and_data() {
        let group = |content| Pipelined {
            mail: Mail::new(Some("bounces+t@example.org".parse().unwrap()), Vec::new()),
            recipients: ["a@example.com", "b@example.com"]
                .into_iter()
                .map(|to| Rcpt::new(to.parse().unwrap(), Vec::new()))
                .collect(),
            content,
        };
        assert_eq!(
            group(Content::Data).to_string(),
            "MAIL FROM:<bounces+t@example.org>\r\nRCPT TO:<a@example.com>\r\n\
             RCPT TO:<b@example.com>\r\nDATA\r\n"
        );
        // A chunk counts its bytes exactly, the CRLF a message lacks at its end included.
        assert_eq!(
            group(Content::Chunk("Subject: x\r\n\r\n.hi")).to_string(),
            "MAIL FROM:<bounces+t@example.org>\r\nRCPT TO:<a@example.com>\r\n\
             RCPT TO:<b@example.com>\r\nBDAT 19 LAST\r\nSubject: x\r\n\r\n.hi\r\n"
        );
        assert_eq!(
            group(Content::Chunk("a\r\n"))
                .to_string()
                .split_once("BDAT")
                .unwrap()
                .1,
            " 3 LAST\r\na\r\n"
        );
    }

    /// The content after `DATA` is byte for byte what lettre's connection writes (its codec adds a
    /// `.` to every line that starts with one, then `\r\n.\r\n`), in one piece.
    #[tokio::test]
    async fn data_content_is_what_lettre_writes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for message in [
            "Subject: x\r\n\r\nbody\r\n",
            ".starts\r\n..two\r\nmid.dle\r\n.\r\nlast.",
            "",
            "\r\n.\r\n",
        ] {
            // lettre's own writing, captured from a loopback socket.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let relay = tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                socket.write_all(b"220 x\r\n").await.unwrap();
                let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
                // EHLO, answered; then the content up to its terminator.
                for (end, answer) in [
                    (&b"\r\n"[..], &b"250 x\r\n"[..]),
                    (b"\r\n.\r\n", b"250 ok\r\n"),
                ] {
                    seen.clear();
                    while !seen.ends_with(end) {
                        let n = socket.read(&mut buf).await.unwrap();
                        assert!(n > 0, "lettre closed the connection");
                        seen.extend_from_slice(&buf[..n]);
                    }
                    socket.write_all(answer).await.unwrap();
                }
                seen
            });
            let stream = TcpStream::connect(address).await.unwrap();
            let mut connection =
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                    .await
                    .unwrap_or_else(|e| panic!("{message:?}: {e}"));
            connection.message(message.as_bytes()).await.unwrap();
            let lettre = relay.await.unwrap();
            assert_eq!(
                DataContent(message).to_string().as_bytes(),
                lettre.as_slice(),
                "{message:?}"
            );
        }
    }

    #[test]
    fn reads_smtp_urls() {
        let t = parse_smtp_url("smtp://127.0.0.1:2525").unwrap().unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.starttls),
            ("127.0.0.1", 2525, StartTls::Never)
        );
        assert!(t.credentials.is_none());
        let t = parse_smtp_url("smtp://me%40x.org:p%3Ass@mail.example.com?tls=required")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.starttls),
            ("mail.example.com", 25, StartTls::Required)
        );
        assert_eq!(
            t.credentials,
            Some(("me@x.org".to_owned(), "p:ss".to_owned()))
        );
        assert!(
            parse_smtp_url("smtps://mail.example.com")
                .unwrap()
                .is_none()
        );
        assert!(parse_smtp_url("smtp://host:port").is_err());
        assert!(parse_smtp_url("smtp://host?tls=maybe").is_err());
        assert!(parse_smtp_url("smtp://").is_err());
    }
}
