//! One SMTP session of the bounce listener: a receive-only RFC 5321 server (EHLO/HELO, MAIL, RCPT, DATA,
//! RSET, NOOP, VRFY, QUIT) that takes mail for `return_path_domain` only, within the listener's limits:
//! a command line is at most [`MAX_COMMAND_LINE`] bytes and must arrive within `command_timeout`, a
//! message's DATA within `data_timeout` and `max_message_bytes` (more is read, discarded, and refused
//! with `552`). A finished message is classified ([`super::report`]) and applied to the entry its token
//! names; whatever it is, the sender is told `250` unless trying again later can help (`451`), so
//! nothing bounces back and forth.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::report::{self, NotABounce};
use super::token::{TokenError, TokenTarget, find_tokens};
use super::{BounceSource, Bounces};
use crate::db::entities::event::split_public_id;
use crate::shutdown::Shutdown;
use crate::store::{BounceOutcome, BounceReport, BounceTarget};

/// Longest command line, CRLF included (RFC 5321 says 512; some clients send long parameters).
const MAX_COMMAND_LINE: usize = 2048;
/// Longest line of DATA read at once; a longer one is read in pieces (it only counts towards the size).
const MAX_DATA_CHUNK: usize = 64 * 1024;
/// Unknown or out-of-order commands before the session is closed.
const MAX_BAD_COMMANDS: u32 = 10;

pub struct SessionLimits {
    pub hostname: String,
    /// Lower case.
    pub domain: String,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
}

pub struct Session {
    limits: Arc<SessionLimits>,
    bounces: Bounces,
    peer: SocketAddr,
    greeted: bool,
    /// `Some` after MAIL: whether the sender was null (`MAIL FROM:<>`).
    mail: Option<bool>,
    /// Accepted recipients, each with the token it carried (`None` for the bare address).
    rcpts: Vec<Option<TokenTarget>>,
}

/// How a read ended.
enum Read {
    Line(Vec<u8>),
    /// The peer closed the connection.
    Closed,
    TooLong,
    TimedOut,
    ShuttingDown,
}

/// How DATA ended.
enum Data {
    Message(Vec<u8>),
    Oversized,
    Closed,
    TimedOut,
}

impl Session {
    pub fn new(limits: Arc<SessionLimits>, bounces: Bounces, peer: SocketAddr) -> Self {
        Session {
            limits,
            bounces,
            peer,
            greeted: false,
            mail: None,
            rcpts: Vec::new(),
        }
    }

    fn refuse(&self, reason: &str) {
        self.bounces.metrics().record_bounce_refusal(reason);
        tracing::info!(peer = %self.peer, reason, "bounce listener refused");
    }

    fn reset(&mut self) {
        self.mail = None;
        self.rcpts.clear();
    }

    pub async fn run(mut self, stream: TcpStream, mut shutdown: Shutdown) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let greeting = format!(
            "220 {} ESMTP message-center bounces\r\n",
            self.limits.hostname
        );
        if write.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
        let mut bad = 0;
        loop {
            let line = tokio::select! {
                read = read_line(&mut reader, MAX_COMMAND_LINE, self.limits.command_timeout) => read,
                _ = shutdown.recv() => Read::ShuttingDown,
            };
            let reply = match line {
                Read::Line(line) => {
                    let text = String::from_utf8_lossy(&line);
                    match self.command(text.trim_end_matches(['\r', '\n'])) {
                        Step::Reply(reply) => reply,
                        Step::Bad(reply) => {
                            bad += 1;
                            if bad >= MAX_BAD_COMMANDS {
                                self.refuse("bad_command");
                                let _ = write.write_all(b"421 4.7.0 too many errors\r\n").await;
                                return;
                            }
                            reply
                        }
                        Step::Quit => {
                            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                            return;
                        }
                        Step::Data => {
                            if write
                                .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                                .await
                                .is_err()
                            {
                                return;
                            }
                            match read_data(
                                &mut reader,
                                self.limits.max_message_bytes,
                                self.limits.data_timeout,
                            )
                            .await
                            {
                                Data::Message(raw) => {
                                    let reply = self.deliver(raw).await;
                                    self.reset();
                                    reply
                                }
                                Data::Oversized => {
                                    self.refuse("oversized");
                                    self.reset();
                                    format!(
                                        "552 5.3.4 message larger than {} bytes",
                                        self.limits.max_message_bytes
                                    )
                                }
                                Data::TimedOut => {
                                    self.refuse("data_timeout");
                                    let _ = write.write_all(b"421 4.4.2 DATA timed out\r\n").await;
                                    return;
                                }
                                Data::Closed => return,
                            }
                        }
                    }
                }
                Read::Closed => return,
                Read::TooLong => {
                    self.refuse("line_too_long");
                    let _ = write.write_all(b"500 5.5.2 line too long\r\n").await;
                    return;
                }
                Read::TimedOut => {
                    self.refuse("command_timeout");
                    let _ = write.write_all(b"421 4.4.2 timeout, closing\r\n").await;
                    return;
                }
                Read::ShuttingDown => {
                    let _ = write.write_all(b"421 4.3.2 shutting down\r\n").await;
                    return;
                }
            };
            if write
                .write_all(format!("{reply}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    fn command(&mut self, line: &str) -> Step {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                self.greeted = true;
                self.reset();
                Step::Reply(format!(
                    "250-{}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES",
                    self.limits.hostname, self.limits.max_message_bytes
                ))
            }
            "HELO" => {
                self.greeted = true;
                self.reset();
                Step::Reply(format!("250 {}", self.limits.hostname))
            }
            "MAIL" => self.mail(rest),
            "RCPT" => self.rcpt(rest),
            "DATA" if self.rcpts.is_empty() => Step::Bad("503 5.5.1 RCPT first".to_owned()),
            "DATA" => Step::Data,
            "RSET" => {
                self.reset();
                Step::Reply("250 2.0.0 OK".to_owned())
            }
            "NOOP" => Step::Reply("250 2.0.0 OK".to_owned()),
            "VRFY" => Step::Reply("252 2.1.5 cannot verify".to_owned()),
            "QUIT" => Step::Quit,
            _ => Step::Bad("502 5.5.2 command not implemented".to_owned()),
        }
    }

    fn mail(&mut self, rest: &str) -> Step {
        if !self.greeted {
            return Step::Bad("503 5.5.1 EHLO first".to_owned());
        }
        if self.mail.is_some() {
            return Step::Bad("503 5.5.1 MAIL already given".to_owned());
        }
        let Some((address, params)) = path_argument(rest, "FROM:") else {
            return Step::Bad("501 5.5.4 syntax: MAIL FROM:<address>".to_owned());
        };
        let size = params
            .split_whitespace()
            .find_map(|p| p.strip_prefix("SIZE=").or_else(|| p.strip_prefix("size=")))
            .and_then(|n| n.parse::<u64>().ok());
        if size.is_some_and(|n| n > self.limits.max_message_bytes as u64) {
            self.refuse("oversized");
            return Step::Reply(format!(
                "552 5.3.4 message larger than {} bytes",
                self.limits.max_message_bytes
            ));
        }
        self.mail = Some(address.is_empty());
        Step::Reply("250 2.1.0 OK".to_owned())
    }

    fn rcpt(&mut self, rest: &str) -> Step {
        if self.mail.is_none() {
            return Step::Bad("503 5.5.1 MAIL first".to_owned());
        }
        let Some((address, _)) = path_argument(rest, "TO:") else {
            return Step::Bad("501 5.5.4 syntax: RCPT TO:<address>".to_owned());
        };
        let Some((local, domain)) = address.rsplit_once('@') else {
            self.refuse("other_domain");
            return Step::Reply("550 5.1.2 bounces are taken for one domain only".to_owned());
        };
        if !domain.eq_ignore_ascii_case(&self.limits.domain) {
            self.refuse("other_domain");
            return Step::Reply(format!(
                "550 5.7.1 relaying denied: this server takes mail for {} only",
                self.limits.domain
            ));
        }
        if self.rcpts.len() >= self.limits.max_recipients {
            self.refuse("too_many_recipients");
            return Step::Reply("452 4.5.3 too many recipients".to_owned());
        }
        // The key is loaded at start; without it (a database down since then) a token cannot be checked.
        let Some(signer) = self.bounces.signer.get() else {
            return Step::Reply("451 4.3.0 not ready, try again later".to_owned());
        };
        match signer.verify_local_part(local) {
            Ok(target) => self.rcpts.push(Some(target)),
            Err(TokenError::NotVerp) => self.rcpts.push(None),
            Err(e) => {
                self.bounces.metrics().record_bounce("smtp", "forged_token");
                tracing::warn!(peer = %self.peer, rcpt = %address, error = %e, "bounce for a token that does not verify refused");
                return Step::Reply("550 5.1.1 no such bounce address".to_owned());
            }
        }
        Step::Reply("250 2.1.5 OK".to_owned())
    }

    /// Classifies a received message and applies it; the reply to its DATA.
    async fn deliver(&mut self, raw: Vec<u8>) -> String {
        let null_sender = self.mail.unwrap_or(false);
        let mut targets: Vec<TokenTarget> = self.rcpts.iter().flatten().copied().collect();
        let domain = self.limits.domain.clone();
        let signer = self.bounces.signer.get().cloned();
        let search = targets.is_empty();
        let classified = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            if let (true, Some(signer)) = (search, signer) {
                // Sent to the bare address: the token may be quoted in the report.
                let text = String::from_utf8_lossy(&raw);
                for token in find_tokens(&text, &domain) {
                    if let Ok(target) = signer.verify(&token.to_ascii_lowercase()) {
                        found.push(target);
                    }
                }
            }
            (report::classify(&raw, null_sender), found)
        })
        .await;
        let Ok((verdict, found)) = classified else {
            return "451 4.3.0 could not read the message, try again later".to_owned();
        };
        targets.extend(found);
        targets.dedup();
        let bounce = match verdict {
            Ok(bounce) => bounce,
            Err(reason) => return self.ignore(reason),
        };
        if targets.is_empty() {
            self.bounces.metrics().record_bounce("smtp", "no_token");
            tracing::info!(peer = %self.peer, "bounce without a valid token ignored");
            return "250 2.0.0 OK, no bounce token: ignored".to_owned();
        }
        let report = BounceReport {
            kind: bounce.kind,
            diagnostic: match &bounce.status {
                Some(status) if !bounce.diagnostic.contains(status.as_str()) => {
                    format!("{status} {}", bounce.diagnostic)
                }
                _ => bounce.diagnostic.clone(),
            },
            // The token names the entry; the report's Final-Recipient may be a rewritten address.
            address: None,
        };
        let mut retry = false;
        for target in targets {
            let entry = BounceTarget::Entry {
                log_id: target.log_id,
                event_row_key: split_public_id(target.event_id as i64).1,
            };
            match self
                .bounces
                .apply(BounceSource::Smtp, &entry, &report)
                .await
            {
                Ok(BounceOutcome::InFlight { .. }) => retry = true,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "could not apply a bounce");
                    retry = true;
                }
            }
        }
        if retry {
            "451 4.3.0 try again later".to_owned()
        } else {
            "250 2.0.0 OK".to_owned()
        }
    }

    fn ignore(&self, reason: NotABounce) -> String {
        self.bounces.metrics().record_bounce("smtp", "not_a_bounce");
        tracing::info!(peer = %self.peer, reason = reason.as_str(), "message on the bounce listener is not a bounce: ignored");
        "250 2.0.0 OK, not a bounce: ignored".to_owned()
    }
}

enum Step {
    Reply(String),
    /// A reply to a command out of order or unknown (counted).
    Bad(String),
    Data,
    Quit,
}

/// `FROM:<a@b> SIZE=1` → (`a@b`, `SIZE=1`), the keyword matched case-insensitively.
fn path_argument<'l>(rest: &'l str, keyword: &str) -> Option<(&'l str, &'l str)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (path, params) = rest.split_once('>')?;
    // A source route (`@a,@b:user@c`) is ignored, as RFC 5321 allows.
    let path = path.rsplit_once(':').map_or(path, |(_, p)| p);
    Some((path.trim(), params.trim()))
}

/// One line (up to `max` bytes, LF included) within `timeout`.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    max: usize,
    timeout: Duration,
) -> Read {
    let mut line = Vec::new();
    let read = tokio::time::timeout(
        timeout,
        (&mut *reader).take(max as u64).read_until(b'\n', &mut line),
    )
    .await;
    match read {
        Err(_) => Read::TimedOut,
        Ok(Err(_)) | Ok(Ok(0)) => Read::Closed,
        Ok(Ok(_)) if line.ends_with(b"\n") => Read::Line(line),
        Ok(Ok(_)) if line.len() >= max => Read::TooLong,
        Ok(Ok(_)) => Read::Closed,
    }
}

/// The message after `DATA`, dot-unstuffed, up to `max` bytes, all of it within `timeout`.
async fn read_data<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    max: usize,
    timeout: Duration,
) -> Data {
    let deadline = Instant::now() + timeout;
    let mut message = Vec::new();
    let mut oversized = false;
    let mut at_line_start = true;
    loop {
        let mut chunk = Vec::new();
        let read = tokio::time::timeout_at(
            deadline,
            (&mut *reader)
                .take(MAX_DATA_CHUNK as u64)
                .read_until(b'\n', &mut chunk),
        )
        .await;
        match read {
            Err(_) => return Data::TimedOut,
            Ok(Err(_)) | Ok(Ok(0)) => return Data::Closed,
            Ok(Ok(_)) => {}
        }
        let complete = chunk.ends_with(b"\n");
        if at_line_start && (chunk == b".\r\n" || chunk == b".\n") {
            return if oversized {
                Data::Oversized
            } else {
                Data::Message(message)
            };
        }
        let body = if at_line_start && chunk.starts_with(b".") {
            &chunk[1..]
        } else {
            &chunk[..]
        };
        at_line_start = complete;
        if oversized {
            continue;
        }
        if message.len() + body.len() > max {
            oversized = true;
            message = Vec::new();
            continue;
        }
        message.extend_from_slice(body);
    }
}
