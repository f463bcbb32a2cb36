//! DKIM signing of outgoing messages (SPEC "Deliverability"), with lettre's signer: relaxed/relaxed,
//! RSA-SHA256 or Ed25519-SHA256, over the usual header set. The keys are read and checked when the
//! email channel starts, so a missing, unreadable, mistyped or too short key stops the server with a
//! message naming the entry, never a send.
//!
//! Signatures are made on the blocking pool ([`DkimSigners::sign`]): an RSA-2048 signature costs about a
//! millisecond of CPU, and on the async workers it ran inside the delivery round's task, one signature at
//! a time whatever the number of cores. The pipeline bench's 20,000 batch events with RSA-2048: 953
//! messages/s with 1.19 of 2 CPUs busy in place, 1,458/s with 1.84 CPUs on the blocking pool; with
//! Ed25519: 6,563/s in place, 7,465/s on the blocking pool (BENCHMARKS.md, session 14).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

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

/// The signing configurations by lower-case `From` domain.
#[derive(Default)]
pub struct DkimSigners {
    by_domain: HashMap<String, Arc<DkimConfig>>,
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
            let config = DkimConfig::new(
                entry.selector.trim().to_owned(),
                domain.clone(),
                key,
                SIGNED_HEADERS
                    .iter()
                    .map(|h| HeaderName::new_from_ascii_str(h))
                    .collect(),
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            );
            tracing::info!(domain = %domain, selector = %entry.selector, "DKIM key loaded");
            by_domain.insert(domain, Arc::new(config));
        }
        Ok(DkimSigners { by_domain })
    }

    /// `message`, signed when its `From` domain (`from_domain`) has a key. An error only when the
    /// signing thread panicked or the runtime is shutting down; the message is then not sent.
    pub async fn sign(&self, mut message: Message, from_domain: &str) -> Result<Message, String> {
        if self.by_domain.is_empty() {
            return Ok(message);
        }
        let Some(config) = self.by_domain.get(&from_domain.to_ascii_lowercase()) else {
            return Ok(message);
        };
        let config = Arc::clone(config);
        tokio::task::spawn_blocking(move || {
            message.sign(&config);
            message
        })
        .await
        .map_err(|e| format!("DKIM signing failed: {e}"))
    }
}

/// The key of a PEM text, in the form lettre's signer takes (PKCS#1 PEM for RSA, the base64 seed for
/// Ed25519).
fn signing_key(pem: &str) -> Result<DkimSigningKey, String> {
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
                let seed = base64::engine::general_purpose::STANDARD.encode(ed.to_bytes());
                return DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
                    .map_err(|e| format!("lettre refused the Ed25519 key: {e}"));
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
    let pkcs1 = rsa
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| format!("cannot re-encode the RSA key: {e}"))?;
    DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
        .map_err(|e| format!("lettre refused the RSA key: {e}"))
}
