//! Process-wide logging: one `tracing` subscriber writing to stderr, as text or JSON lines.
//!
//! Logs go to stderr so that stdout stays free for anything a command prints on purpose, and so
//! that service managers and containers collect them without configuration.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;

use crate::config::{LogConfig, LogFormat};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter directives do not parse (the parse error is the `source`).
    #[error("invalid log filter `{directives}` in {origin}")]
    Filter {
        /// `RUST_LOG` or `log.level`.
        origin: &'static str,
        /// The text that was rejected.
        directives: String,
        /// What the filter parser said.
        source: ParseError,
    },
    /// A global subscriber is already installed (e.g. `init` was called twice).
    #[error("cannot install the global tracing subscriber")]
    Install(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Installs the global subscriber. `RUST_LOG`, when set and not blank, wins over `log.level`, so an
/// operator can turn up verbosity for one run without editing the configuration. A second call
/// returns [`TelemetryError::Install`] instead of panicking.
pub fn init(log: &LogConfig) -> Result<(), TelemetryError> {
    let (origin, directives) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => ("RUST_LOG", value),
        _ => ("log.level", log.level.clone()),
    };
    let filter = EnvFilter::try_new(&directives).map_err(|source| TelemetryError::Filter {
        origin,
        directives,
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match log.format {
        // Colours only for a human at a terminal; escape codes would garble files and collectors.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(TelemetryError::Install)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_init_returns_an_error_instead_of_panicking() {
        let log = LogConfig::default();
        // Another test of the binary may have installed a subscriber first; either way the
        // second call must come back as an error.
        let _ = init(&log);
        assert!(matches!(init(&log), Err(TelemetryError::Install(_))));
    }
}
