//! DKIM signing of outgoing messages (SPEC "Deliverability"): relaxed/relaxed, RSA-SHA256 or
//! Ed25519-SHA256 (RFC 8463), over the usual header set, of the message as it goes on the wire
//! ([`canonical`]). The keys are read and checked when the email channel starts, so a missing,
//! unreadable, mistyped or too short key stops the server with a message naming the entry, never a send.
//!
//! Why not lettre's signer, which this used before: it signs RSA with the `rsa` crate, about 1 ms of CPU
//! per RSA-2048 signature on the project machine, where `ring` (already in the dependency tree, through
//! rustls) takes 0.43 ms. On RSA, signing is most of what a message costs.
//!
//! Signatures are made on the blocking pool ([`DkimSigners::sign`]): on the async workers they ran inside
//! the delivery round's task, one at a time whatever the number of cores. The pipeline bench's 20,000
//! batch events signed with RSA-2048 went from 953 messages/s (lettre's signer, in place) to 2,591/s
//! (BENCHMARKS.md, session 14). dkimpy, an independent implementation, verifies what this signs
//! (`tests/tests/dkim.rs`).

mod canonical;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::config::DkimKeyConfig;

/// The shortest RSA key accepted (RFC 8301 asks for 1024 at least; 2048 is today's floor).
const MIN_RSA_BITS: usize = 2048;

/// The signed headers: those a recipient sees and those that shape the body.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Why a `[[channels.email.dkim]]` entry cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "channels.email.dkim[{index}] (domain `{domain}`, selector `{selector}`): private_key_file `{file}`: {reason}"
)]
pub struct DkimKeyError {
    index: usize,
    domain: String,
    selector: String,
    file: String,
    reason: String,
}

/// The signing keys by lower-case `From` domain.
#[derive(Default)]
pub struct DkimSigners {
    by_domain: HashMap<String, Arc<Signer>>,
}

/// One `[[channels.email.dkim]]` entry, ready to sign.
struct Signer {
    /// `d=`, lower case.
    domain: String,
    /// `s=`.
    selector: String,
    key: Key,
}

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(ed25519_dalek::SigningKey),
}

impl DkimSigners {
    /// Reads and checks every entry's key.
    pub fn load(entries: &[DkimKeyConfig]) -> Result<Self, DkimKeyError> {
        let mut by_domain = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let error = |reason: String| DkimKeyError {
                index,
                domain: entry.domain.clone(),
                selector: entry.selector.clone(),
                file: entry.private_key_file.display().to_string(),
                reason,
            };
            let pem = std::fs::read_to_string(&entry.private_key_file)
                .map_err(|e| error(format!("cannot read it: {e}")))?;
            let key = signing_key(&pem).map_err(error)?;
            let domain = entry.domain.trim().to_ascii_lowercase();
            tracing::info!(domain = %domain, selector = %entry.selector, "DKIM key loaded");
            let signer = Signer {
                domain: domain.clone(),
                selector: entry.selector.trim().to_owned(),
                key,
            };
            by_domain.insert(domain, Arc::new(signer));
        }
        Ok(DkimSigners { by_domain })
    }

    /// `message` (as it goes on the wire), with a `DKIM-Signature` header first when its `From` domain
    /// (`from_domain`) has a key. An error only when signing failed (a panic on the signing thread, the
    /// runtime shutting down, ring refusing): the message is then not sent.
    pub async fn sign(&self, message: Vec<u8>, from_domain: &str) -> Result<Vec<u8>, String> {
        if self.by_domain.is_empty() {
            return Ok(message);
        }
        let Some(signer) = self.by_domain.get(&from_domain.to_ascii_lowercase()) else {
            return Ok(message);
        };
        let signer = Arc::clone(signer);
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tokio::task::spawn_blocking(move || signer.sign(message, timestamp))
            .await
            .map_err(|e| format!("DKIM signing failed: {e}"))?
    }
}

impl Signer {
    /// RFC 6376 section 3.7: the body hash over the relaxed body, then the signature over the relaxed
    /// signed headers followed by this `DKIM-Signature` header with an empty `b=` (and no final CRLF).
    fn sign(&self, mut message: Vec<u8>, timestamp: u64) -> Result<Vec<u8>, String> {
        let base64 = &base64::engine::general_purpose::STANDARD;
        let (headers, body) = canonical::split(&message);
        let body_hash = base64.encode(Sha256::digest(canonical::body(body)));
        let fields = canonical::fields(headers);
        let mut signed = Vec::with_capacity(headers.len() + 512);
        let mut names = Vec::new();
        for name in SIGNED_HEADERS {
            // The last instance, as verifiers take them from the bottom.
            if let Some((field, value)) = fields
                .iter()
                .rev()
                .find(|(field, _)| field.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
            {
                canonical::header(field, value, &mut signed);
                names.push(name.to_ascii_lowercase());
            }
        }
        let algorithm = match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        let unsigned = format!(
            " v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={}; t={timestamp};\r\n\th={};\r\n\tbh={body_hash};\r\n\tb=",
            self.domain,
            self.selector,
            names.join(":"),
        );
        canonical::header(b"DKIM-Signature", unsigned.as_bytes(), &mut signed);
        signed.truncate(signed.len() - 2);
        let signature = match &self.key {
            Key::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    &signed,
                    &mut signature,
                )
                .map_err(|_| "DKIM signing failed: ring refused to sign".to_owned())?;
                signature
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the data.
            Key::Ed25519(key) => key.sign(&Sha256::digest(&signed)).to_bytes().to_vec(),
        };
        let header = format!("DKIM-Signature:{unsigned}{}\r\n", base64.encode(signature));
        message.splice(0..0, header.into_bytes());
        Ok(message)
    }
}

/// The key of a PEM text: PKCS#1 or PKCS#8 RSA (at least [`MIN_RSA_BITS`]), or PKCS#8 Ed25519.
fn signing_key(pem: &str) -> Result<Key, String> {
    let label = pem
        .lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| "not a PEM file (no `-----BEGIN ...-----` line)".to_owned())?;
    let rsa = match label {
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(pem)
            .map_err(|e| format!("not a readable PKCS#1 RSA key: {e}"))?,
        "PRIVATE KEY" => match RsaPrivateKey::from_pkcs8_pem(pem) {
            Ok(key) => key,
            Err(_) => {
                let ed = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|e| format!("a PKCS#8 key that is neither RSA nor Ed25519 ({e})"))?;
                return Ok(Key::Ed25519(ed));
            }
        },
        "ENCRYPTED PRIVATE KEY" => {
            return Err(
                "an encrypted key: store it unencrypted (readable only by the server)".to_owned(),
            );
        }
        other => {
            return Err(format!(
                "a `{other}` PEM block, not an RSA or Ed25519 private key"
            ));
        }
    };
    let bits = rsa.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "an RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    let der = rsa
        .to_pkcs1_der()
        .map_err(|e| format!("cannot re-encode the RSA key: {e}"))?;
    RsaKeyPair::from_der(der.as_bytes())
        .map(Key::Rsa)
        .map_err(|e| format!("ring refused the RSA key: {e}"))
}
