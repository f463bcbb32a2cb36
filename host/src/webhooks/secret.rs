//! Endpoint secrets: `whsec_` + base64 of 24 to 64 random bytes (Standard Webhooks), generated when an
//! endpoint is created without one, never shown again after that answer (only [`hint`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What every secret starts with.
pub const PREFIX: &str = "whsec_";
/// Fewest and most key bytes a secret may carry.
pub const MIN_BYTES: usize = 24;
pub const MAX_BYTES: usize = 64;
/// Bytes of a generated secret.
const GENERATED_BYTES: usize = 32;

/// A new random secret.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; GENERATED_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a secret: {e}"))?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
}

/// The HMAC key of `secret`: the bytes its base64 part decodes to, or why it is not a secret.
pub fn key_bytes(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("must start with `{PREFIX}`"))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| format!("the part after `{PREFIX}` is not base64: {e}"))?;
    if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
        return Err(format!(
            "must encode {MIN_BYTES} to {MAX_BYTES} bytes, not {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// What `GET` shows instead of the secret: enough to tell two apart, not enough to sign.
pub fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{PREFIX}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_valid_and_different() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(key_bytes(&a).unwrap().len(), 32);
        assert!(hint(&a).starts_with("whsec_…"));
        assert!(!hint(&a).contains(&a[6..20]));
    }

    #[test]
    fn bad_secrets_say_why() {
        assert!(key_bytes("abc").unwrap_err().contains("whsec_"));
        assert!(key_bytes("whsec_!!!").unwrap_err().contains("base64"));
        let short = format!("whsec_{}", STANDARD.encode([1u8; 23]));
        assert!(key_bytes(&short).unwrap_err().contains("23"));
        let long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
        assert!(key_bytes(&long).is_err());
        let ok = format!("whsec_{}", STANDARD.encode([1u8; 24]));
        assert_eq!(key_bytes(&ok).unwrap().len(), 24);
    }
}
