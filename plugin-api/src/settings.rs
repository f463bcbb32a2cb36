//! Reading a workflow's settings: one way for every plugin, with errors that name the bad key.
//!
//! The host hands [`crate::Workflow::create`] its `[workflows.<name>]` table as JSON, with the keys the
//! host itself reads (`enabled`, `interval`, `timeout`, `batch_size`, ...) beside the plugin's own. A
//! plugin declares the keys it reads as a `#[derive(Deserialize)]` struct (without
//! `deny_unknown_fields`, since the host's keys are there too) and calls [`settings`]; checks serde
//! cannot express ("at least 1") go through [`WorkflowError::setting`], so every refusal reads
//! "invalid setting `key`: ...".

use serde::de::DeserializeOwned;

use crate::workflow::WorkflowError;

/// Deserializes the settings `create` received into `T`. A key of the wrong type or range is refused
/// with its path (`invalid setting `page_size`: invalid type: string "x", expected u64`).
pub fn settings<T: DeserializeOwned>(settings: &serde_json::Value) -> Result<T, WorkflowError> {
    serde_path_to_error::deserialize(settings).map_err(|e| {
        let key = e.path().to_string();
        WorkflowError::setting(&key, e.into_inner().to_string())
    })
}

impl WorkflowError {
    /// The error for a setting `key` that is refused, for `message` ("must be at least 1").
    pub fn setting(key: &str, message: impl std::fmt::Display) -> Self {
        WorkflowError::new(format!("invalid setting `{key}`: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default)]
    struct Example {
        page_size: u32,
        name: Option<String>,
    }

    impl Default for Example {
        fn default() -> Self {
            Example {
                page_size: 7,
                name: None,
            }
        }
    }

    #[test]
    fn reads_keys_keeps_defaults_and_ignores_the_hosts_keys() {
        let parsed: Example = settings(&json!({"enabled": true, "interval": "1s"})).unwrap();
        assert_eq!(parsed, Example::default());
        let parsed: Example = settings(&json!({"page_size": 3, "name": "x"})).unwrap();
        assert_eq!(parsed.page_size, 3);
        assert_eq!(parsed.name.as_deref(), Some("x"));
    }

    #[test]
    fn errors_name_the_key() {
        let err = settings::<Example>(&json!({"page_size": -1})).unwrap_err();
        assert!(
            err.message().starts_with("invalid setting `page_size`: "),
            "{err}"
        );
        let err = settings::<Example>(&json!({"name": 5})).unwrap_err();
        assert!(
            err.message().starts_with("invalid setting `name`: "),
            "{err}"
        );
        assert_eq!(
            WorkflowError::setting("batch_size", "must be at least 1").message(),
            "invalid setting `batch_size`: must be at least 1"
        );
    }
}
