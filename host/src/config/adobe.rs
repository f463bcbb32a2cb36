//! `[adobe]`: the Adobe Campaign compatible SOAP endpoint (`POST /nl/jsp/soaprouter.jsp`).
//!
//! Adobe Campaign clients authenticate with a session token, either Adobe's `login/password` form or a
//! token that `xtk:session#Logon` issued; both are checked against the accounts listed here, never against
//! the REST API keys, so that moving a client over needs no change to its credentials.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::deserialize_duration;

/// `[adobe]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdobeConfig {
    /// Serve `POST /nl/jsp/soaprouter.jsp`. Off by default: an endpoint that accepts passwords in request
    /// bodies is something an operator turns on, not something a new instance exposes unasked.
    pub enabled: bool,
    /// The operators SOAP clients log on as (Adobe's `mc` operator and the like).
    pub accounts: Vec<AdobeAccount>,
    /// How long a session token issued by `xtk:session#Logon` is accepted.
    #[serde(deserialize_with = "deserialize_duration")]
    pub session_lifetime: Duration,
}

impl Default for AdobeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            accounts: Vec::new(),
            session_lifetime: Duration::from_secs(24 * 3600),
        }
    }
}

/// One operator: `accounts = [{ login = "mc", password = "…" }]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdobeAccount {
    pub login: String,
    pub password: String,
}

impl AdobeConfig {
    /// Rules serde cannot express: the key path at fault and why.
    pub(super) fn check(&self) -> Result<(), (Vec<String>, String)> {
        let at = |index: usize, key: &str| {
            vec![
                "adobe".to_owned(),
                "accounts".to_owned(),
                format!("[{index}]"),
                key.to_owned(),
            ]
        };
        if self.enabled && self.accounts.is_empty() {
            return Err((
                vec!["adobe".to_owned(), "accounts".to_owned()],
                "must list at least one account when `adobe.enabled` is true: SOAP clients log on as one"
                    .to_owned(),
            ));
        }
        let mut logins = BTreeSet::new();
        for (index, account) in self.accounts.iter().enumerate() {
            // A `/` would make Adobe's `login/password` token ambiguous.
            if account.login.is_empty() || account.login.contains('/') {
                return Err((
                    at(index, "login"),
                    "must be 1 or more characters without `/`".to_owned(),
                ));
            }
            if account.password.is_empty() {
                return Err((at(index, "password"), "must not be empty".to_owned()));
            }
            if !logins.insert(account.login.as_str()) {
                return Err((
                    at(index, "login"),
                    format!("`{}` is listed twice", account.login),
                ));
            }
        }
        if self.session_lifetime.is_zero() {
            return Err((
                vec!["adobe".to_owned(), "session_lifetime".to_owned()],
                "must be greater than 0".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Hand-written so that logging the configuration never prints a password.
impl fmt::Debug for AdobeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let logins: Vec<&str> = self.accounts.iter().map(|a| a.login.as_str()).collect();
        f.debug_struct("AdobeConfig")
            .field("enabled", &self.enabled)
            .field("accounts", &logins)
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn error_of(toml: &str) -> String {
        match Config::from_toml_str(toml, Vec::new()) {
            Ok(_) => panic!("accepted: {toml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accounts_and_lifetime_are_read() {
        let config = Config::from_toml_str(
            "[adobe]\nenabled = true\nsession_lifetime = \"2h\"\naccounts = [{ login = \"mc\", password = \"pw\" }]\n",
            Vec::new(),
        )
        .expect("valid [adobe]");
        assert!(config.adobe.enabled);
        assert_eq!(config.adobe.accounts[0].login, "mc");
        assert_eq!(config.adobe.session_lifetime.as_secs(), 7200);
        assert!(!format!("{:?}", config.adobe).contains("pw"));
        assert!(!Config::default().adobe.enabled);
    }

    #[test]
    fn the_environment_can_turn_it_on() {
        let vars = [
            ("MC_ADOBE__ENABLED", "true"),
            (
                "MC_ADOBE__ACCOUNTS",
                "[{ login = \"mc\", password = \"pw\" }]",
            ),
        ];
        let config = Config::from_toml_str(
            "",
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .expect("valid overrides");
        assert!(config.adobe.enabled);
        assert_eq!(config.adobe.accounts[0].password, "pw");
    }

    #[test]
    fn bad_accounts_are_named() {
        let cases = [
            ("[adobe]\nenabled = true\n", "adobe.accounts"),
            (
                "[adobe]\naccounts = [{ login = \"a/b\", password = \"p\" }]\n",
                "adobe.accounts[0].login",
            ),
            (
                "[adobe]\naccounts = [{ login = \"a\", password = \"\" }]\n",
                "adobe.accounts[0].password",
            ),
            (
                "[adobe]\naccounts = [{ login = \"a\", password = \"p\" }, { login = \"a\", password = \"q\" }]\n",
                "adobe.accounts[1].login",
            ),
            (
                "[adobe]\nsession_lifetime = \"0s\"\n",
                "adobe.session_lifetime",
            ),
            ("[adobe]\nenable = true\n", "enable"),
        ];
        for (toml, key) in cases {
            let error = error_of(toml);
            assert!(error.contains(key), "{toml}: {error}");
        }
    }
}
