//! `[channels.email.domains."<domain>"]`: per recipient domain limits, Adobe's MX rules (SPEC
//! "Deliverability"): how many messages to the domain may be in flight at once and how many may leave
//! per minute. A message over a limit waits (`delivery::throttle`); it is never failed for it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The limits of one recipient domain. Absent keys mean no limit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainLimits {
    /// Messages to the domain being sent at once (on the relay's connections).
    pub max_connections: Option<u32>,
    /// Messages to the domain that may leave per minute, evenly spaced (one every 60 s / n).
    pub max_per_minute: Option<u32>,
}

/// `(path, message)` of the first bad entry: an empty domain or a limit of 0.
pub(super) fn check(domains: &BTreeMap<String, DomainLimits>) -> Result<(), (Vec<String>, String)> {
    let mut seen = std::collections::BTreeSet::new();
    for (domain, limits) in domains {
        let at = |key: &str| {
            let mut path = vec![
                "channels".to_owned(),
                "email".to_owned(),
                "domains".to_owned(),
                domain.clone(),
            ];
            if !key.is_empty() {
                path.push(key.to_owned());
            }
            path
        };
        if domain.trim().is_empty() || domain.contains(['@', ' ', '/']) {
            return Err((at(""), format!("`{domain}` is not a domain")));
        }
        if !seen.insert(domain.trim().to_ascii_lowercase()) {
            return Err((
                at(""),
                format!("`{domain}` is listed twice (domains are case-insensitive)"),
            ));
        }
        for (key, value) in [
            ("max_connections", limits.max_connections),
            ("max_per_minute", limits.max_per_minute),
        ] {
            if value == Some(0) {
                return Err((at(key), "must be at least 1".to_owned()));
            }
        }
    }
    Ok(())
}
