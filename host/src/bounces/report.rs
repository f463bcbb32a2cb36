//! What a message received on the bounce listener says: an RFC 3464 delivery status notification
//! (`message/delivery-status`), an ARF complaint (RFC 5965, `message/feedback-report`), a plain
//! non-delivery report (best effort: a failure notice from a mailer daemon with a status code in its
//! text), or nothing we act on. Parsed with `mail-parser`.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::store::BounceKind;

/// A bounce found in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounce {
    pub kind: BounceKind,
    /// The enhanced status code (`5.1.1`), when the report has one.
    pub status: Option<String>,
    /// What the remote side said (Diagnostic-Code, or the line with the status code).
    pub diagnostic: String,
    /// The recipient the report is about (Final-Recipient, Original-Rcpt-To), when it says.
    pub recipient: Option<String>,
}

/// Why a received message is not acted on (the `outcome` label of `mc_bounces_total` is `ignored`, the
/// reason goes to the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotABounce {
    /// No MIME structure could be read.
    Unparseable,
    /// A delivery status notification whose recipients were all delivered, relayed or expanded.
    NotAFailure,
    /// A `message/delivery-status` part without a per-recipient block saying what happened.
    MalformedDsn,
    /// An ordinary message or an auto-reply, with no failure status in it.
    NoFailureStatus,
}

impl NotABounce {
    pub const fn as_str(self) -> &'static str {
        match self {
            NotABounce::Unparseable => "unparseable",
            NotABounce::NotAFailure => "not_a_failure",
            NotABounce::MalformedDsn => "malformed_dsn",
            NotABounce::NoFailureStatus => "no_failure_status",
        }
    }
}

/// Reads `raw`; `null_sender` when it came with `MAIL FROM:<>` (as every DSN must).
pub fn classify(raw: &[u8], null_sender: bool) -> Result<Bounce, NotABounce> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(NotABounce::Unparseable)?;
    if let Some(report) = part_of_type(&message, "message", &["feedback-report"]) {
        return Ok(complaint(&report));
    }
    if let Some(status) = part_of_type(
        &message,
        "message",
        &["delivery-status", "global-delivery-status"],
    ) {
        return delivery_status(&status);
    }
    plain_report(&message, null_sender)
}

/// The contents of the first part of `ctype/subtype` (one of `subtypes`), as text.
fn part_of_type(message: &Message<'_>, ctype: &str, subtypes: &[&str]) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let content_type = part.content_type()?;
        let matches = content_type.ctype().eq_ignore_ascii_case(ctype)
            && content_type
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|t| s.eq_ignore_ascii_case(t)));
        matches.then(|| String::from_utf8_lossy(part.contents()).into_owned())
    })
}

/// The header-style fields of a DSN or ARF body, in blocks separated by blank lines, continuation lines
/// unfolded; names in lower case.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

fn field<'b>(block: &'b [(String, String)], name: &str) -> Option<&'b str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `rfc822; user@example.com` → `user@example.com`.
fn address_field(value: &str) -> String {
    value
        .split_once(';')
        .map_or(value, |(_, address)| address)
        .trim()
        .trim_matches(['<', '>'])
        .to_owned()
}

fn delivery_status(text: &str) -> Result<Bounce, NotABounce> {
    let blocks = field_blocks(text);
    let recipients: Vec<&Vec<(String, String)>> = blocks
        .iter()
        .filter(|b| field(b, "action").is_some() || field(b, "final-recipient").is_some())
        .collect();
    if recipients.is_empty() {
        return Err(NotABounce::MalformedDsn);
    }
    let mut delayed = None;
    for block in recipients {
        let action = field(block, "action").unwrap_or("").to_ascii_lowercase();
        let status =
            field(block, "status").map(|s| s.split_whitespace().next().unwrap_or("").to_owned());
        let kind = match (action.as_str(), status.as_deref()) {
            ("failed", Some(s)) if s.starts_with('4') => BounceKind::Soft,
            ("failed", _) => BounceKind::Hard,
            ("delayed", _) => BounceKind::Soft,
            (_, Some(s)) if s.starts_with('5') && action.is_empty() => BounceKind::Hard,
            _ => continue,
        };
        let recipient = field(block, "final-recipient")
            .or_else(|| field(block, "original-recipient"))
            .map(address_field);
        let diagnostic = field(block, "diagnostic-code")
            .map(address_field)
            .or_else(|| status.clone())
            .unwrap_or_else(|| action.clone());
        let bounce = Bounce {
            kind,
            status,
            diagnostic,
            recipient,
        };
        if kind == BounceKind::Soft {
            delayed.get_or_insert(bounce);
        } else {
            return Ok(bounce);
        }
    }
    delayed.ok_or(NotABounce::NotAFailure)
}

fn complaint(text: &str) -> Bounce {
    let fields: Vec<(String, String)> = field_blocks(text).into_iter().flatten().collect();
    let feedback = field(&fields, "feedback-type").unwrap_or("abuse");
    let agent = field(&fields, "user-agent")
        .map(|a| format!(" from {a}"))
        .unwrap_or_default();
    Bounce {
        kind: BounceKind::Complaint,
        status: None,
        diagnostic: format!("feedback report `{feedback}`{agent}"),
        recipient: field(&fields, "original-rcpt-to").map(address_field),
    }
}

/// A non-delivery report without `message/delivery-status`: sent by a mailer daemon (a null envelope
/// sender, or `MAILER-DAEMON` / `postmaster` in `From`), with an enhanced status code (`5.1.1`) or, failing
/// that, an SMTP reply code of 5xx in its text.
fn plain_report(message: &Message<'_>, null_sender: bool) -> Result<Bounce, NotABounce> {
    let from_daemon = message
        .from()
        .and_then(|from| from.first())
        .and_then(|a| a.address())
        .is_some_and(|a| {
            let local = a.split('@').next().unwrap_or("").to_ascii_lowercase();
            local == "mailer-daemon" || local == "postmaster"
        });
    if !null_sender && !from_daemon {
        return Err(NotABounce::NoFailureStatus);
    }
    let mut text = String::new();
    for part in &message.parts {
        if let PartType::Text(body) = &part.body {
            text.push_str(body);
            text.push('\n');
        }
    }
    for line in text.lines() {
        if let Some(status) = enhanced_status(line) {
            let kind = if status.starts_with('5') {
                BounceKind::Hard
            } else {
                BounceKind::Soft
            };
            return Ok(Bounce {
                kind,
                status: Some(status),
                diagnostic: line.trim().to_owned(),
                recipient: None,
            });
        }
    }
    for line in text.lines() {
        if reply_code_5xx(line) {
            return Ok(Bounce {
                kind: BounceKind::Hard,
                status: None,
                diagnostic: line.trim().to_owned(),
                recipient: None,
            });
        }
    }
    Err(NotABounce::NoFailureStatus)
}

/// The first `4.x.y` / `5.x.y` (RFC 3463) standing alone in `line`.
fn enhanced_status(line: &str) -> Option<String> {
    line.split(|c: char| {
        c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';' | '<' | '>')
    })
    .find(|word| {
        let mut parts = word.split('.');
        let (Some(class), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        matches!(class, "4" | "5")
            && (1..=3).contains(&subject.len())
            && (1..=3).contains(&detail.len())
            && subject.bytes().all(|b| b.is_ascii_digit())
            && detail.bytes().all(|b| b.is_ascii_digit())
    })
    .map(str::to_owned)
}

/// A line that starts with (or says after `said:`) a 5xx SMTP reply code.
fn reply_code_5xx(line: &str) -> bool {
    let code = |s: &str| {
        let s = s.trim_start();
        s.len() >= 4
            && s.as_bytes()[0] == b'5'
            && s.as_bytes()[1..3].iter().all(u8::is_ascii_digit)
            && matches!(s.as_bytes()[3], b' ' | b'-')
    };
    code(line) || line.split_once("said:").is_some_and(|(_, rest)| code(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@relay.example\r\nTo: bounces+1.2.aa@b.example\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; relay.example\r\nX-Postfix-Sender: rfc822; bounces+1.2.aa@b.example\r\n\r\n\
Final-Recipient: rfc822; reject-me@example.com\r\nOriginal-Recipient: rfc822;reject-me@example.com\r\n\
Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 mailbox\r\n    unavailable\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\n\r\n--B--\r\n";

    #[test]
    fn a_dsn_is_a_hard_bounce_with_its_diagnostic() {
        let bounce = classify(DSN.as_bytes(), true).unwrap();
        assert_eq!(bounce.kind, BounceKind::Hard);
        assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
        assert_eq!(bounce.diagnostic, "550 5.1.1 mailbox unavailable");
        assert_eq!(bounce.recipient.as_deref(), Some("reject-me@example.com"));
        let delayed = DSN
            .replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1");
        assert_eq!(
            classify(delayed.as_bytes(), true).unwrap().kind,
            BounceKind::Soft
        );
        let delivered = DSN.replace("Action: failed", "Action: delivered");
        assert_eq!(
            classify(delivered.as_bytes(), true),
            Err(NotABounce::NotAFailure)
        );
    }

    #[test]
    fn arf_reports_are_complaints() {
        let arf = "From: fbl@isp.example\r\nSubject: FW: hello\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"A\"\r\n\r\n\
--A\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report\r\n\
--A\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\n\
Version: 1\r\nOriginal-Rcpt-To: <user@example.com>\r\n\r\n--A--\r\n";
        let bounce = classify(arf.as_bytes(), false).unwrap();
        assert_eq!(bounce.kind, BounceKind::Complaint);
        assert_eq!(bounce.recipient.as_deref(), Some("user@example.com"));
        assert!(bounce.diagnostic.contains("abuse"), "{}", bounce.diagnostic);
    }

    #[test]
    fn plain_reports_and_ordinary_mail() {
        let ndr = "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nSubject: failure notice\r\n\r\n\
Sorry, we were unable to deliver your message.\r\n<x@example.com>: host mx said: 550 5.7.1 relaying denied\r\n";
        let bounce = classify(ndr.as_bytes(), false).unwrap();
        assert_eq!(bounce.kind, BounceKind::Hard);
        assert_eq!(bounce.status.as_deref(), Some("5.7.1"));
        let old = "From: postmaster@mx.example\r\nSubject: failure\r\n\r\nremote said: 554 no such user\r\n";
        assert_eq!(
            classify(old.as_bytes(), false).unwrap().kind,
            BounceKind::Hard
        );
        let hello =
            "From: someone@example.com\r\nSubject: hi\r\n\r\nSee section 5.1.1 of the manual\r\n";
        assert_eq!(
            classify(hello.as_bytes(), false),
            Err(NotABounce::NoFailureStatus)
        );
        let vacation =
            "From: someone@example.com\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n";
        assert_eq!(
            classify(vacation.as_bytes(), true),
            Err(NotABounce::NoFailureStatus)
        );
        assert_eq!(classify(b"", true), Err(NotABounce::Unparseable));
    }
}
