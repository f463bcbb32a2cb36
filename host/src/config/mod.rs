//! The host's configuration: a TOML file, `MC_*` environment overrides, defaults and validation.
//!
//! Loading happens in four steps so that every failure can name the exact key at fault:
//!
//! 1. the file is parsed into a plain [`toml::Table`] (a syntax error keeps the toml crate's
//!    line/column message);
//! 2. `MC_<SECTION>__<KEY>` environment variables are written into that table (`env`), so an
//!    override goes through exactly the same checks as the file;
//! 3. the table is deserialized through [`serde_path_to_error`] into the `schema` structs, which
//!    turns "invalid socket address syntax" into "configuration key `server.listen`: invalid socket
//!    address syntax", and `build` derives what the file does not spell out (workflow settings);
//! 4. cross-field rules that serde cannot express are checked (`validate`, [`ConfigError::Invalid`]
//!    again).
//!
//! Every table rejects unknown keys except `[workflows.<name>]`, whose extra keys are the plugin's
//! own settings (see `schema`). Durations are parsed by `duration`.

mod adobe;
mod bounces;
mod build;
mod channels;
mod console;
mod control;
mod dkim;
mod duration;
mod env;
mod error;
mod monitoring;
mod schema;
#[cfg(test)]
mod test_support;
mod throttle;
mod validate;
mod webhooks;

use std::path::Path;

use crate::urls::Scheme;

pub use adobe::{AdobeAccount, AdobeConfig};
pub use bounces::{BouncesConfig, QuarantineConfig};
pub use channels::{
    ChannelsConfig, EmailChannelConfig, RetryConfig, SmsChannelConfig, TemplatesConfig,
};
pub use console::{ConsoleConfig, ConsoleRole, ConsoleUserConfig, is_argon2id_phc};
pub use control::{ExecutionInstanceConfig, RetentionConfig};
pub use dkim::DkimKeyConfig;
pub(crate) use duration::deserialize_duration;
pub(crate) use duration::format_duration;
pub use duration::parse_duration;
pub use error::ConfigError;
pub use monitoring::{MonitoringConfig, ThresholdsConfig};
pub use schema::{
    AuthConfig, Config, DatabaseConfig, InstanceConfig, LogConfig, LogFormat, PluginsConfig, Role,
    ServerConfig, WorkflowConfig,
};
pub use throttle::DomainLimits;
pub use webhooks::{WebhooksConfig, parse_network};

impl Config {
    /// Reads `path`, applies the `MC_*` variables of the process environment, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let env = env::process_env_overrides()?;
        Self::parse(&text, &path.display().to_string(), env)
    }

    /// Like [`Config::load`] but from text and an explicit environment, so tests do not depend on
    /// (or have to mutate) the process environment.
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::parse(text, "configuration text", env)
    }

    /// Whether the database is SQLite (single writer, file-based) rather than PostgreSQL.
    pub fn is_sqlite(&self) -> bool {
        Scheme::of(&self.database.url) == Some(Scheme::Sqlite)
    }

    fn parse(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|err: toml::de::Error| ConfigError::Parse {
                    origin: origin.to_owned(),
                    message: err.to_string().trim_end().to_owned(),
                })?;
        let mut overrides = env::apply_env_overrides(&mut table, env)?;
        let raw = env::deserialize_raw(&mut table, &mut overrides)?;
        let config = build::build(raw, &table).map_err(|p| p.into_error(&overrides))?;
        validate::validate(&config).map_err(|p| p.into_error(&overrides))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn syntax_error_keeps_position_and_origin() {
        let err = Config::from_toml_str("[server]\nlisten = \n", no_env()).expect_err("syntax");
        match &err {
            ConfigError::Parse { origin, message } => {
                assert_eq!(origin, "configuration text");
                assert!(message.contains("line 2"), "{message}");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }

    #[test]
    fn load_reports_the_path() {
        let dir = std::env::temp_dir().join(format!("mc-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = dir.join("missing.toml");
        match Config::load(&missing) {
            Err(ConfigError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected Io, got {other:?}"),
        }
        let broken = dir.join("broken.toml");
        std::fs::write(&broken, "[server\n").expect("write");
        match Config::load(&broken) {
            Err(ConfigError::Parse { origin, message }) => {
                assert_eq!(origin, broken.display().to_string());
                assert!(message.contains("line 1"), "{message}");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
