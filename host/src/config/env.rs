//! `MC_<SECTION>__<KEY>` environment overrides.
//!
//! The variables are written into the parsed [`toml::Table`] before it is deserialized, so an override
//! goes through exactly the same checks as the file, and every error can name the variable that set
//! the key at fault.

use super::error::{ConfigError, Problem};
use super::schema::RawConfig;

/// Prefix of the environment variables that override configuration keys.
const ENV_PREFIX: &str = "MC_";
/// Separator between key levels in an override variable (`MC_SERVER__LISTEN`); a single `_` belongs
/// to the key itself (`admin_listen`).
const ENV_SEPARATOR: &str = "__";

/// One applied `MC_*` variable, kept to name it in errors and to retry its value as a string.
pub(super) struct EnvOverride {
    pub(super) var: String,
    /// The keys it set, as spelled in the table after case-insensitive matching.
    pub(super) path: Vec<String>,
    raw: String,
    /// The value was parsed as a non-string TOML value and has not been retried as a string yet.
    typed: bool,
    /// The error the typed value gave, reported if the string retry fails too (it is the more
    /// useful one: "integer `300`, expected u8" rather than "string \"300\", expected u8").
    typed_error: Option<Problem>,
}

/// The `MC_*` variables of the process. Non-UTF-8 variables outside the prefix are skipped (they
/// are none of our business); an `MC_*` one is an error rather than silently ignored.
pub(super) fn process_env_overrides() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        match value.into_string() {
            Ok(value) => vars.push((name.to_owned(), value)),
            Err(_) => {
                return Err(ConfigError::Invalid {
                    key: name.to_owned(),
                    message: format!("environment variable {name} is not valid UTF-8"),
                });
            }
        }
    }
    Ok(vars)
}

/// Writes every `MC_<A>__<B>…` variable into `table`, in variable-name order so the result does
/// not depend on the order of the environment.
pub(super) fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<EnvOverride>, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains(ENV_SEPARATOR))
        })
        .collect();
    vars.sort();

    let mut applied = Vec::with_capacity(vars.len());
    for (var, raw) in vars {
        let rest = &var[ENV_PREFIX.len()..];
        let segments: Vec<&str> = rest.split(ENV_SEPARATOR).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::Invalid {
                key: rest.to_ascii_lowercase().replace(ENV_SEPARATOR, "."),
                message: format!(
                    "environment variable {var} has an empty key segment (levels are separated by exactly `__`)"
                ),
            });
        }
        // "Parse as TOML when it is one": numbers, booleans, arrays, inline tables. Anything else
        // (addresses, URLs, "2s") is a string; a typed value aimed at a string key is retried as
        // a string in `deserialize_raw`.
        let (value, typed) = match raw.parse::<toml::Value>() {
            Ok(toml::Value::String(s)) => (toml::Value::String(s), false),
            Ok(value) => (value, true),
            Err(_) => (toml::Value::String(raw.clone()), false),
        };
        let path = set_override(table, &segments, value)
            .map_err(|p| p.into_error(&[]))
            .map_err(|err| mention_var(err, &var))?;
        applied.push(EnvOverride {
            var,
            path,
            raw,
            typed,
            typed_error: None,
        });
    }
    Ok(applied)
}

fn mention_var(err: ConfigError, var: &str) -> ConfigError {
    match err {
        ConfigError::Invalid { key, message } => ConfigError::Invalid {
            key,
            message: format!("{message} (set by environment variable {var})"),
        },
        other => other,
    }
}

/// Sets `value` at the key path `segments` (matched case-insensitively), creating missing tables,
/// and returns the path as spelled in the table.
fn set_override(
    table: &mut toml::Table,
    segments: &[&str],
    value: toml::Value,
) -> Result<Vec<String>, Problem> {
    let mut resolved: Vec<String> = Vec::with_capacity(segments.len());
    let mut current = table;
    let Some((last, parents)) = segments.split_last() else {
        return Ok(resolved);
    };
    for segment in parents {
        let key = match_key(current, segment, &resolved)?;
        resolved.push(key.clone());
        let slot = current
            .entry(key)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match slot {
            toml::Value::Table(inner) => inner,
            other => {
                let message = format!(
                    "is a {}, not a table, so it has no key `{}`",
                    other.type_str(),
                    last.to_ascii_lowercase()
                );
                return Err(Problem {
                    path: resolved,
                    message,
                });
            }
        };
    }
    let key = match_key(current, last, &resolved)?;
    resolved.push(key.clone());
    current.insert(key, value);
    Ok(resolved)
}

/// The existing key `segment` designates: the exact spelling, else the lowercase one, else the only
/// case-insensitive match (so `RTEVENTSPROCESSING` finds `rtEventsProcessing`); a new key is
/// lowercase, since that is how every host key is spelled.
fn match_key(table: &toml::Table, segment: &str, parent: &[String]) -> Result<String, Problem> {
    let lower = segment.to_ascii_lowercase();
    if table.contains_key(segment) {
        return Ok(segment.to_owned());
    }
    if table.contains_key(&lower) {
        return Ok(lower);
    }
    let mut matches = table.keys().filter(|k| k.eq_ignore_ascii_case(segment));
    match (matches.next(), matches.next()) {
        (None, _) => Ok(lower),
        (Some(only), None) => Ok(only.clone()),
        (Some(a), Some(b)) => {
            let mut path = parent.to_vec();
            path.push(lower);
            Err(Problem {
                path,
                message: format!("ambiguous: matches both `{a}` and `{b}`"),
            })
        }
    }
}

/// Sets a value at a path that [`set_override`] already created.
fn reset_value(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        match current.get_mut(key) {
            Some(toml::Value::Table(inner)) => current = inner,
            _ => return,
        }
    }
    current.insert(last.clone(), value);
}

/// Deserializes the table, retrying as a string any typed override that a string key refused
/// (`MC_AUTH__ADMIN_TOKEN=12345` is a token, not an integer).
pub(super) fn deserialize_raw(
    table: &mut toml::Table,
    overrides: &mut [EnvOverride],
) -> Result<RawConfig, ConfigError> {
    loop {
        let err = match serde_path_to_error::deserialize::<_, RawConfig>(table.clone()) {
            Ok(raw) => return Ok(raw),
            Err(err) => err,
        };
        let problem = Problem {
            path: err.path().iter().map(|s| s.to_string()).collect(),
            message: err.inner().message().to_owned(),
        };
        let Some(culprit) = overrides.iter_mut().rev().find(|o| o.path == problem.path) else {
            return Err(problem.into_error(overrides));
        };
        if culprit.typed {
            culprit.typed = false;
            culprit.typed_error = Some(problem);
            let value = toml::Value::String(culprit.raw.clone());
            let path = culprit.path.clone();
            reset_value(table, &path, value);
            continue;
        }
        let reported = culprit.typed_error.clone().unwrap_or(problem);
        return Err(reported.into_error(overrides));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    /// `toml` with the environment `vars` applied; panics with `what` when it is refused.
    fn with_env(toml: &str, vars: &[(&str, &str)], what: &str) -> Config {
        Config::from_toml_str(toml, env(vars)).expect(what)
    }

    #[test]
    fn env_overrides_strings_numbers_and_durations() {
        let config = with_env(
            FULL,
            &[
                ("MC_SERVER__LISTEN", "0.0.0.0:7000"),
                ("MC_SERVER__MAX_BATCH_EVENTS", "75"),
                ("MC_SERVER__SHUTDOWN_TIMEOUT", "2m"),
                ("MC_DATABASE__URL", "sqlite::memory:"),
                ("MC_DATABASE__CONNECT_TIMEOUT", "9"),
                ("MC_AUTH__ADMIN_TOKEN", "from-env"),
                ("MC_INSTANCE__ROLE", "control"),
                ("MC_LOG__FORMAT", "text"),
                ("MC_PLUGINS__REQUIRE_SAME_RUSTC", "false"),
            ],
            "valid overrides",
        );
        assert_eq!(config.server.listen, "0.0.0.0:7000".parse().expect("addr"));
        assert_eq!(config.server.max_batch_events, 75);
        assert_eq!(config.server.shutdown_timeout, Duration::from_secs(120));
        assert_eq!(config.database.url, "sqlite::memory:");
        assert!(config.is_sqlite());
        assert_eq!(config.database.connect_timeout, Duration::from_secs(9));
        assert_eq!(config.auth.admin_token.as_deref(), Some("from-env"));
        assert_eq!(config.instance.role, Role::Control);
        assert_eq!(config.log.format, LogFormat::Text);
        assert!(!config.plugins.require_same_rustc);
    }

    #[test]
    fn env_override_matches_workflow_names_case_insensitively() {
        let config = with_env(
            FULL,
            &[
                ("MC_WORKFLOWS__RTEVENTSPROCESSING__ENABLED", "false"),
                ("MC_WORKFLOWS__ARCHIVING__PAGE_SIZE", "50"),
            ],
            "valid overrides",
        );
        assert!(!config.workflows["rtEventsProcessing"].enabled);
        assert_eq!(
            config.workflows["rtEventsProcessing"].settings["enabled"],
            false
        );
        assert_eq!(config.workflows["archiving"].settings["page_size"], 50);
        assert_eq!(config.workflows.len(), 4, "no new workflow created");
    }

    #[test]
    fn env_override_can_add_keys_and_tables() {
        let config = with_env(
            "",
            &[
                ("MC_WORKFLOWS__NIGHTLY__INTERVAL", "1d"),
                ("MC_INSTANCE__NAME", "from-env"),
            ],
            "valid overrides",
        );
        let nightly = &config.workflows["nightly"];
        assert_eq!(nightly.interval, Duration::from_secs(86_400));
        assert_eq!(nightly.settings["interval"], "1d");
        assert_eq!(config.instance.name.as_deref(), Some("from-env"));
    }

    #[test]
    fn env_override_arrays_and_typed_values_for_string_keys() {
        let config = with_env(
            "",
            &[
                ("MC_AUTH__API_KEYS", r#"["a", "b"]"#),
                // Valid TOML integers and booleans, but these keys are strings.
                ("MC_AUTH__ADMIN_TOKEN", "12345"),
                ("MC_INSTANCE__NAME", "true"),
            ],
            "valid overrides",
        );
        assert_eq!(config.auth.api_keys, ["a", "b"]);
        assert_eq!(config.auth.admin_token.as_deref(), Some("12345"));
        assert_eq!(config.instance.name.as_deref(), Some("true"));
    }

    #[test]
    fn env_variables_without_double_underscore_are_ignored() {
        let config = with_env(
            "",
            &[
                ("MC_SERVER", "whatever"),
                ("MC_DEBUG", "1"),
                ("OTHER__SERVER__LISTEN", "nonsense"),
            ],
            "ignored variables",
        );
        assert_eq!(config, Config::default());
    }

    #[test]
    fn bad_override_names_key_and_variable() {
        // (variable, value, the key named, what the message says besides the variable)
        for (variable, value, expected_key, says) in [
            (
                "MC_SERVER__LISEN",
                "127.0.0.1:1",
                "server.lisen",
                Some("unknown field"),
            ),
            (
                "MC_SERVER__ADMIN_LISTEN",
                "nowhere",
                "server.admin_listen",
                Some("invalid socket address"),
            ),
            // The typed error is reported, not the one of the string retry.
            (
                "MC_INSTANCE__ID",
                "300",
                "instance.id",
                Some("integer `300`"),
            ),
            // Validation errors name the variable too.
            ("MC_DATABASE__URL", "mysql://x", "database.url", None),
            // Going below a non-table.
            ("MC_LOG__LEVEL__X", "1", "log.level", None),
        ] {
            let (key, message) = invalid("", env(&[(variable, value)]));
            assert_eq!(key, expected_key);
            if let Some(says) = says {
                assert!(message.contains(says), "{message}");
            }
            assert!(message.contains(variable), "{message}");
        }

        let (_, message) = invalid("", env(&[("MC_SERVER____LISTEN", "x")]));
        assert!(message.contains("empty key segment"), "{message}");
    }
}
