//! VERP tokens: the envelope sender `bounces+<token>@<return_path_domain>` of each message names the
//! delivery-log entry it was sent by, so a bounce that comes back to that address leads to it.
//!
//! `<token>` is `<event id>.<entry id>.<mac>`: the event's public id and the delivery-log entry's id in
//! decimal, and the first 10 bytes of HMAC-SHA256 over `mc-bounce-v1:<event id>.<entry id>` under the
//! signing key, in lower-case hex (so a relay that changes the case of the local part breaks nothing).
//! Without the key nobody can make a token that verifies, so a forged bounce cannot fail an arbitrary
//! event. 80 bits of MAC: guessing one takes 2^79 tries on average, against a listener that answers each
//! in a round trip.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The local part before the `+`.
pub const LOCAL_PREFIX: &str = "bounces";
/// Bytes of the MAC kept in the token.
const MAC_BYTES: usize = 10;
/// Domain separation: a MAC made for something else under the same key is never a token.
const CONTEXT: &[u8] = b"mc-bounce-v1:";

/// What a verified token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenTarget {
    /// The event's public id.
    pub event_id: u64,
    /// The delivery-log entry (one attempt).
    pub log_id: i64,
}

/// Why an address does not carry a valid token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the local part is not `bounces+<token>`")]
    NotVerp,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not verify")]
    Forged,
}

/// Signs and verifies tokens under one key.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<key redacted>)")
    }
}

impl TokenSigner {
    pub fn new(key: &[u8]) -> Self {
        TokenSigner { key: key.to_vec() }
    }

    fn mac(&self, event_id: u64, log_id: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(CONTEXT);
        mac.update(format!("{event_id}.{log_id}").as_bytes());
        mac
    }

    /// The token for entry `log_id` of event `event_id`.
    pub fn token(&self, event_id: u64, log_id: i64) -> String {
        let tag = self.mac(event_id, log_id).finalize().into_bytes();
        let hex: String = tag[..MAC_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{event_id}.{log_id}.{hex}")
    }

    /// The envelope sender for entry `log_id` of event `event_id`.
    pub fn address(&self, event_id: u64, log_id: i64, domain: &str) -> String {
        format!("{LOCAL_PREFIX}+{}@{domain}", self.token(event_id, log_id))
    }

    /// Checks a token (the part after `bounces+`), in constant time over the MAC.
    pub fn verify(&self, token: &str) -> Result<TokenTarget, TokenError> {
        let mut parts = token.split('.');
        let (Some(event), Some(log), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let event_id: u64 = event.parse().map_err(|_| TokenError::Malformed)?;
        let log_id: i64 = log.parse().map_err(|_| TokenError::Malformed)?;
        if hex.len() != MAC_BYTES * 2 || log_id < 0 {
            return Err(TokenError::Malformed);
        }
        let given: Vec<u8> = (0..MAC_BYTES)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| TokenError::Malformed)?;
        self.mac(event_id, log_id)
            .verify_truncated_left(&given)
            .map_err(|_| TokenError::Forged)?;
        Ok(TokenTarget { event_id, log_id })
    }

    /// Checks the local part of an address (`bounces+<token>`).
    pub fn verify_local_part(&self, local: &str) -> Result<TokenTarget, TokenError> {
        let (prefix, token) = local.split_once('+').ok_or(TokenError::NotVerp)?;
        if !prefix.eq_ignore_ascii_case(LOCAL_PREFIX) {
            return Err(TokenError::NotVerp);
        }
        self.verify(&token.to_ascii_lowercase())
    }
}

/// Every `bounces+<token>@<domain>` written anywhere in `text` (the original headers of a DSN, its
/// `X-Postfix-Sender`, a quoted envelope), for bounces sent to the bare address.
pub fn find_tokens<'t>(text: &'t str, domain: &str) -> Vec<&'t str> {
    let needle = format!("{LOCAL_PREFIX}+");
    let mut found = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let start = from + at + needle.len();
        let end = lower[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .map_or(lower.len(), |e| start + e);
        let rest = &lower[end..];
        if rest.starts_with('@') && rest[1..].starts_with(domain) {
            found.push(&text[start..end]);
        }
        from = end.max(start);
        if found.len() >= 16 {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_forgeries_do_not() {
        let signer = TokenSigner::new(b"0123456789abcdef");
        let token = signer.token(72057594037927937, 42);
        assert_eq!(
            signer.verify(&token),
            Ok(TokenTarget {
                event_id: 72057594037927937,
                log_id: 42
            })
        );
        let address = signer.address(7, 42, "bounce.example.com");
        let local = address.split_once('@').unwrap().0;
        assert!(local.len() <= 64, "{local} fits a local part");
        assert!(
            signer
                .verify_local_part(&local.to_ascii_uppercase())
                .is_ok()
        );
        // Another entry with the same MAC, another key, a truncated or garbled MAC.
        let mac = token.rsplit_once('.').unwrap().1;
        assert_eq!(
            signer.verify(&format!("72057594037927937.43.{mac}")),
            Err(TokenError::Forged)
        );
        assert_eq!(
            TokenSigner::new(b"another key, 16+").verify(&token),
            Err(TokenError::Forged)
        );
        assert_eq!(signer.verify("1.2.abc"), Err(TokenError::Malformed));
        assert_eq!(signer.verify("1.2"), Err(TokenError::Malformed));
        assert_eq!(
            signer.verify("1.2.zzzzzzzzzzzzzzzzzzzz"),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            signer.verify_local_part("postmaster"),
            Err(TokenError::NotVerp)
        );
        assert_eq!(
            signer.verify_local_part("other+1.2.3"),
            Err(TokenError::NotVerp)
        );
    }

    #[test]
    fn tokens_are_found_in_text() {
        let text =
            "X-Postfix-Sender: rfc822; Bounces+1.2.ab@Bounce.Example.com\nbounces+3.4.cd@other.org";
        assert_eq!(find_tokens(text, "bounce.example.com"), vec!["1.2.ab"]);
    }
}
