//! Passwords (argon2id), tokens, and the back-off after repeated failed sign-ins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The PHC string of `password` under argon2id with the crate's default (OWASP) parameters and a
/// random salt; what `message-center hash-password` prints.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (its own parameters apply).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the login is unknown, so that an unknown login takes as long as a
/// wrong password and the timing does not tell which logins exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never matched").unwrap_or_default())
}

/// 32 random bytes, URL-safe base64: session, CSRF and first-run tokens.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256 of a token: what the database keeps instead of the token (a token has 256 random bits,
/// so a fast hash suffices).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Failures allowed before a pause.
pub const FREE_FAILURES: u32 = 5;
/// The first pause; each failure after it doubles the pause, up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_secs(30);
pub const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most; past it, those without a pause in force are forgotten first.
const MAX_ENTRIES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    paused_until: Option<Instant>,
}

/// Failed sign-ins per (login, peer address). After [`FREE_FAILURES`] failures every attempt is refused
/// without checking the password until the pause ends; each further failure doubles it. Keyed on the
/// login too, so one office behind a NAT does not lock out its colleagues; in memory, per instance (a
/// guesser spreading over instances gets each one's allowance, still a few guesses a minute).
#[derive(Default)]
pub struct Backoff {
    entries: Mutex<HashMap<(String, IpAddr), Failures>>,
}

impl Backoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpAddr), Failures>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long until this pair may try again; `None` when it may now.
    pub fn paused_for(&self, login: &str, peer: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self.lock();
        let until = entries.get(&(login.to_owned(), peer))?.paused_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failure; returns the pause it starts, if any.
    pub fn failed(&self, login: &str, peer: IpAddr, now: Instant) -> Option<Duration> {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, f| f.paused_until.is_some_and(|until| until > now));
        }
        let entry = entries.entry((login.to_owned(), peer)).or_insert(Failures {
            count: 0,
            paused_until: None,
        });
        entry.count = entry.count.saturating_add(1);
        let pause = pause_after(entry.count)?;
        entry.paused_until = Some(now + pause);
        Some(pause)
    }

    /// A successful sign-in clears the pair's failures.
    pub fn succeeded(&self, login: &str, peer: IpAddr) {
        self.lock().remove(&(login.to_owned(), peer));
    }
}

/// The pause after `failures` consecutive failures.
fn pause_after(failures: u32) -> Option<Duration> {
    let doublings = failures.checked_sub(FREE_FAILURES)?;
    let factor = 1u32.checked_shl(doublings.min(16)).unwrap_or(u32::MAX);
    Some(FIRST_PAUSE.saturating_mul(factor).min(MAX_PAUSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        crate::config::is_argon2id_phc(&hash).unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn five_failures_then_a_doubling_pause() {
        let backoff = Backoff::default();
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(backoff.failed("ana", peer, t0), None);
        }
        assert_eq!(backoff.failed("ana", peer, t0), Some(FIRST_PAUSE));
        assert_eq!(backoff.paused_for("ana", peer, t0), Some(FIRST_PAUSE));
        assert_eq!(backoff.paused_for("bob", peer, t0), None, "per login");
        assert_eq!(backoff.failed("ana", peer, t0), Some(FIRST_PAUSE * 2));
        assert_eq!(pause_after(40), Some(MAX_PAUSE));
        assert_eq!(
            backoff.paused_for("ana", peer, t0 + FIRST_PAUSE * 3),
            None,
            "over"
        );
        backoff.succeeded("ana", peer);
        assert_eq!(backoff.paused_for("ana", peer, t0), None);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
