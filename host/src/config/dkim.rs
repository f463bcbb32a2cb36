//! `[[channels.email.dkim]]`: the keys messages are signed with, one per `From` domain (SPEC
//! "Deliverability"). The key files themselves are read and checked when the email channel starts
//! (`delivery::dkim`); here only the shape of the entries is checked.

use std::path::PathBuf;

use serde::Deserialize;

/// One `[[channels.email.dkim]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    /// The `d=` domain: messages whose `From` address is in this domain (case-insensitive) are signed.
    pub domain: String,
    /// The `s=` selector: the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// A PEM file: an RSA key of at least 2048 bits (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1
    /// `BEGIN RSA PRIVATE KEY`) or an Ed25519 key (PKCS#8, what `openssl genpkey -algorithm ed25519`
    /// writes).
    pub private_key_file: PathBuf,
}

/// `(path, message)` of the first bad entry: empty fields, a domain listed twice.
pub(super) fn check(entries: &[DkimKeyConfig]) -> Result<(), (Vec<String>, String)> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let at = |key: &str| {
            vec![
                "channels".to_owned(),
                "email".to_owned(),
                "dkim".to_owned(),
                format!("[{index}]"),
                key.to_owned(),
            ]
        };
        let domain = entry.domain.trim();
        if domain.is_empty() || domain.contains(['@', ' ', '/']) {
            return Err((at("domain"), format!("`{}` is not a domain", entry.domain)));
        }
        if !seen.insert(domain.to_ascii_lowercase()) {
            return Err((
                at("domain"),
                format!("`{domain}` has two entries; one key per domain"),
            ));
        }
        let selector = entry.selector.trim();
        if selector.is_empty() || selector.contains(['@', ' ', '/', ';']) {
            return Err((
                at("selector"),
                format!("`{}` is not a selector", entry.selector),
            ));
        }
        if entry.private_key_file.as_os_str().is_empty() {
            return Err((at("private_key_file"), "must not be empty".to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    const EMAIL: &str = "[channels.email]\nsmtp_url = \"smtp://127.0.0.1:25\"\n";

    #[test]
    fn dkim_entries_are_read_and_checked() {
        let text = format!(
            "{EMAIL}[[channels.email.dkim]]\ndomain = \"example.com\"\nselector = \"s1\"\nprivate_key_file = \"/k.pem\"\n"
        );
        let config = Config::from_toml_str(&text, no_env()).expect("valid");
        let email = config.channels.email.expect("email");
        assert_eq!(email.dkim.len(), 1);
        assert_eq!(email.dkim[0].selector, "s1");

        let twice = format!(
            "{text}[[channels.email.dkim]]\ndomain = \"EXAMPLE.com\"\nselector = \"s2\"\nprivate_key_file = \"/k2.pem\"\n"
        );
        let (key, message) = invalid(&twice, no_env());
        assert_eq!(key, "channels.email.dkim[1].domain");
        assert!(message.contains("two entries"), "{message}");

        let no_selector = format!(
            "{EMAIL}[[channels.email.dkim]]\ndomain = \"example.com\"\nselector = \"\"\nprivate_key_file = \"/k.pem\"\n"
        );
        assert_eq!(
            invalid(&no_selector, no_env()).0,
            "channels.email.dkim[0].selector"
        );
    }

    #[test]
    fn domain_limits_are_read_and_checked() {
        let text = format!(
            "{EMAIL}tls_ca_file = \"/ca.pem\"\n[channels.email.domains.\"gmail.com\"]\nmax_per_minute = 60\n"
        );
        let config = Config::from_toml_str(&text, no_env()).expect("valid");
        let email = config.channels.email.expect("email");
        assert_eq!(email.domains["gmail.com"].max_per_minute, Some(60));
        assert_eq!(email.domains["gmail.com"].max_connections, None);
        assert_eq!(
            email.tls_ca_file.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );

        let zero = format!("{EMAIL}[channels.email.domains.\"gmail.com\"]\nmax_connections = 0\n");
        let (key, message) = invalid(&zero, no_env());
        assert_eq!(key, "channels.email.domains.gmail.com.max_connections");
        assert!(message.contains("at least 1"), "{message}");
    }
}
