//! The process's open-file limit. Every connection is a file descriptor, and so is every database and
//! SMTP connection and every plugin library: with the usual soft limit of 1024, a few hundred idle clients
//! would leave the server unable to accept or to reach its database (`accept failed … Too many open
//! files`). At start the soft limit is raised to the hard limit, and the configured connection caps are
//! checked against it, keeping headroom for everything else the process opens.

use crate::config::Config;

/// Descriptors kept for what is not a client connection: database and SMTP pools, plugin files, logs,
/// the SQLite WAL, the SMS gateway's and control instances' HTTP clients.
const HEADROOM: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and warns, naming `server.max_connections`, when
/// both listeners' caps together with the pools would not fit. Returns the limit in force.
pub fn raise_limit(config: &Config) -> Option<u64> {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let needed = needed(config);
    if needed > limit {
        tracing::warn!(
            limit,
            needed,
            max_connections = config.server.max_connections,
            "the open-file limit is lower than two listeners at server.max_connections plus the pools \
             need: lower server.max_connections or raise the hard limit (ulimit -Hn)"
        );
    } else {
        tracing::debug!(limit, needed, "open-file limit");
    }
    Some(limit)
}

/// What the configuration may open at once.
fn needed(config: &Config) -> u64 {
    let listeners = 2 * config.server.max_connections as u64;
    let database = u64::from(config.database.max_connections);
    let smtp = config
        .channels
        .email
        .as_ref()
        .map_or(0, |email| u64::from(email.pool_size));
    listeners + database + smtp + HEADROOM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let config = Config::from_toml_str("", std::iter::empty()).expect("defaults");
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        let limit = raise_limit(&config).expect("raised");
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        assert_eq!(soft, limit);
        assert_eq!(soft, hard.min(limit));
        assert!(needed(&config) >= 2 * 4096 + HEADROOM);
    }
}
