//! Why loading failed: the public [`ConfigError`], and the [`Problem`] each step reports before
//! the loader names the environment variable behind it.

use std::path::PathBuf;

use super::env::EnvOverride;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (the I/O error is the `source`).
    #[error("cannot read configuration file `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("invalid TOML in {origin}: {message}")]
    Parse {
        /// The file path, or a description of where the text came from.
        origin: String,
        /// The toml crate's message, with line and column.
        message: String,
    },
    /// A key has a bad value, is unknown, or breaks a rule.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Full dotted path, e.g. `server.listen` or `workflows.archiving.interval`.
        key: String,
        /// What is wrong, and the environment variable that set it if one did.
        message: String,
    },
}

/// A configuration error not yet annotated with the environment variable that caused it.
#[derive(Clone)]
pub(super) struct Problem {
    pub(super) path: Vec<String>,
    pub(super) message: String,
}

impl Problem {
    pub(super) fn new(path: &[&str], message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
        }
    }

    pub(super) fn into_error(self, overrides: &[EnvOverride]) -> ConfigError {
        // The last variable wins when several set the same key, so it is the one to blame.
        let culprit = overrides
            .iter()
            .rev()
            .find(|o| self.path.starts_with(&o.path) || o.path.starts_with(&self.path));
        let message = match culprit {
            Some(o) => format!("{} (set by environment variable {})", self.message, o.var),
            None => self.message,
        };
        ConfigError::Invalid {
            key: join_path(&self.path),
            message,
        }
    }
}

/// `a.b[0].c`: sequence indexes are already bracketed and take no dot.
pub(super) fn join_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}
