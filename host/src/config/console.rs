//! `[console]` and `[[console.users]]`: the operator console on the admin listener (SPEC "Console").
//!
//! Users carry an argon2id PHC string, never a password: `message-center hash-password` prints one. Each
//! hash is parsed at start, so a truncated or foreign hash stops the server with the key at fault
//! instead of turning into a user who can never sign in.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::deserialize_duration;
use super::error::Problem;

/// `[console]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// How long a sign-in lasts (SPEC default 8 h); the session row expires then.
    #[serde(deserialize_with = "deserialize_duration")]
    pub session_lifetime: Duration,
    /// How long the one-time first-run link printed in the log stays valid.
    #[serde(deserialize_with = "deserialize_duration")]
    pub first_run_link_lifetime: Duration,
    /// Marks the session cookie `Secure`: set it when the admin listener is reached through TLS (a
    /// terminating proxy), so that the browser never sends the cookie in clear.
    pub secure_cookies: bool,
    /// How often the monitoring page fetches fresh figures.
    #[serde(deserialize_with = "deserialize_duration")]
    pub refresh: Duration,
    /// `[[console.users]]`.
    pub users: Vec<ConsoleUserConfig>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            session_lifetime: Duration::from_secs(8 * 3600),
            first_run_link_lifetime: Duration::from_secs(3600),
            secure_cookies: false,
            refresh: Duration::from_secs(5),
            users: Vec::new(),
        }
    }
}

/// `[[console.users]]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUserConfig {
    pub login: String,
    /// argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub password_hash: String,
    #[serde(default)]
    pub role: ConsoleRole,
}

/// Hand-written so that logs never print the hash (an offline guessing target).
impl fmt::Debug for ConsoleUserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleUserConfig")
            .field("login", &self.login)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// What a console user may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleRole {
    /// Reads every page; every change request is refused with 403.
    #[default]
    Viewer,
    /// Also starts and stops workflows, runs them now, reloads plugins.
    Operator,
}

impl ConsoleRole {
    /// The name in the configuration, the database and the pages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsoleRole::Viewer => "viewer",
            ConsoleRole::Operator => "operator",
        }
    }

    /// The role of that name.
    pub fn from_name(name: &str) -> Option<ConsoleRole> {
        match name {
            "viewer" => Some(ConsoleRole::Viewer),
            "operator" => Some(ConsoleRole::Operator),
            _ => None,
        }
    }
}

/// Whether `hash` is an argon2id PHC string the console can verify against.
pub fn is_argon2id_phc(hash: &str) -> Result<(), String> {
    let parsed =
        argon2::PasswordHash::new(hash).map_err(|e| format!("is not a PHC string: {e}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "must be an argon2id hash, not {} (`message-center hash-password` prints one)",
            parsed.algorithm
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("has no salt or no hash part".to_owned());
    }
    Ok(())
}

impl ConsoleConfig {
    pub(super) fn validate(&self) -> Result<(), Problem> {
        if self.session_lifetime < Duration::from_secs(60) {
            return Err(Problem::new(
                &["console", "session_lifetime"],
                "must be at least 1m",
            ));
        }
        if self.first_run_link_lifetime < Duration::from_secs(60) {
            return Err(Problem::new(
                &["console", "first_run_link_lifetime"],
                "must be at least 1m",
            ));
        }
        if self.refresh < Duration::from_millis(500) {
            return Err(Problem::new(
                &["console", "refresh"],
                "must be at least 500ms",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, user) in self.users.iter().enumerate() {
            let index = i.to_string();
            if user.login.trim().is_empty() || user.login.len() > 128 {
                return Err(Problem::new(
                    &["console", "users", &index, "login"],
                    "must be 1 to 128 characters",
                ));
            }
            if !seen.insert(user.login.as_str()) {
                return Err(Problem::new(
                    &["console", "users", &index, "login"],
                    format!("`{}` is listed twice", user.login),
                ));
            }
            is_argon2id_phc(&user.password_hash).map_err(|message| {
                Problem::new(&["console", "users", &index, "password_hash"], message)
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::test_support::*;
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

    #[test]
    fn defaults_and_users() {
        let config = Config::from_toml_str(
            &format!(
                "[console]\nsession_lifetime = \"2h\"\n[[console.users]]\nlogin = \"ana\"\npassword_hash = \"{HASH}\"\nrole = \"operator\"\n"
            ),
            no_env(),
        )
        .expect("valid");
        assert_eq!(config.console.session_lifetime, Duration::from_secs(7200));
        assert_eq!(config.console.users[0].role, ConsoleRole::Operator);
        assert!(!format!("{:?}", config.console).contains("argon2id$"));
        assert_eq!(
            Config::from_toml_str("", no_env()).unwrap().console,
            ConsoleConfig::default()
        );
    }

    #[test]
    fn a_hash_that_is_not_argon2id_is_refused_naming_the_key() {
        for bad in [
            "plain-text",
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        ] {
            let err = Config::from_toml_str(
                &format!("[[console.users]]\nlogin = \"ana\"\npassword_hash = \"{bad}\"\n"),
                no_env(),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("console.users.0.password_hash"), "{err}");
        }
        let err = Config::from_toml_str(
            &format!(
                "[[console.users]]\nlogin = \"a\"\npassword_hash = \"{HASH}\"\nrole = \"admin\"\n"
            ),
            no_env(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("role"), "{err}");
    }
}
