//! From the deserialized file to a [`Config`]: each workflow's `settings` object for its plugin, and
//! the one meaning of "no admin token".

use std::collections::BTreeMap;

use super::duration::format_duration;
use super::error::Problem;
use super::schema::{RawConfig, RawWorkflow};
use super::{Config, WorkflowConfig};

/// Turns the deserialized file into a [`Config`], building each workflow's `settings`.
pub(super) fn build(raw: RawConfig, table: &toml::Table) -> Result<Config, Problem> {
    let workflow_tables = table.get("workflows").and_then(toml::Value::as_table);
    let mut workflows = BTreeMap::new();
    for (name, wf) in raw.workflows {
        let wf_table = match workflow_tables.and_then(|t| t.get(&name)) {
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                return Err(Problem::new(
                    &["workflows", &name],
                    format!("must be a table, found a {}", other.type_str()),
                ));
            }
            None => &toml::Table::new(),
        };
        let settings = workflow_settings(&name, &wf, wf_table)?;
        workflows.insert(
            name,
            WorkflowConfig {
                enabled: wf.enabled,
                plugin: wf.plugin,
                interval: wf.interval,
                timeout: wf.timeout,
                batch_size: wf.batch_size,
                wake_delay: wf.wake_delay,
                settings,
            },
        );
    }
    let mut auth = raw.auth;
    // One meaning for "no admin token", so consumers need not check both None and "".
    if auth.admin_token.as_deref() == Some("") {
        auth.admin_token = None;
    }
    Ok(Config {
        instance: raw.instance,
        server: raw.server,
        database: raw.database,
        plugins: raw.plugins,
        workflows,
        auth,
        log: raw.log,
        channels: raw.channels,
        templates: raw.templates,
        execution_instances: raw.execution_instances,
        retention: raw.retention,
        adobe: raw.adobe,
        bounces: raw.bounces,
        quarantine: raw.quarantine,
        monitoring: raw.monitoring,
        console: raw.console,
        webhooks: raw.webhooks,
    })
}

/// The JSON object handed to the plugin (see [`WorkflowConfig::settings`]).
fn workflow_settings(
    name: &str,
    wf: &RawWorkflow,
    table: &toml::Table,
) -> Result<serde_json::Value, Problem> {
    let mut settings: serde_json::Map<String, serde_json::Value> = table
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect();
    for (key, duration) in [
        ("interval", wf.interval),
        ("timeout", wf.timeout),
        ("wake_delay", wf.wake_delay),
    ] {
        let ms_key = format!("{key}_ms");
        if table.contains_key(&ms_key) {
            // Two sources for one value would let the plugin and the scheduler disagree.
            return Err(Problem::new(
                &["workflows", name, &ms_key],
                format!("is reserved: the host derives it from `{key}`, set `{key}` instead"),
            ));
        }
        if !table.contains_key(key) {
            settings.insert(key.to_owned(), format_duration(duration).into());
        }
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        settings.insert(ms_key, ms.into());
    }
    settings.insert("enabled".to_owned(), wf.enabled.into());
    let plugin = wf.plugin.as_deref().unwrap_or(name);
    settings.insert("plugin".to_owned(), plugin.into());
    settings.insert("batch_size".to_owned(), wf.batch_size.into());
    Ok(serde_json::Value::Object(settings))
}

/// TOML to JSON for plugin settings. Datetimes have no JSON type and become their TOML text;
/// NaN and infinities have no JSON representation and become `null`.
fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn workflow_extra_keys_reach_settings() {
        let config = Config::from_toml_str(FULL, no_env()).expect("valid file");
        let settings = &config.workflows["archiving"].settings;
        assert_eq!(settings["page_size"], 500);
        assert_eq!(settings["since"], "2024-01-01T00:00:00Z");
        assert_eq!(settings["accounts"], serde_json::json!(["a", "b"]));
        assert_eq!(settings["nested"]["deep"], 1.5);
        // Known keys with their effective values, durations twice.
        assert_eq!(settings["enabled"], true);
        assert_eq!(settings["plugin"], "archiving");
        assert_eq!(settings["batch_size"], 100);
        assert_eq!(settings["interval"], "1h");
        assert_eq!(settings["interval_ms"], 3_600_000);
        assert_eq!(settings["timeout"], "1m");
        assert_eq!(settings["timeout_ms"], 60_000);
        assert_eq!(settings["wake_delay"], "3ms");
        assert_eq!(settings["wake_delay_ms"], 3);
        assert_eq!(
            config.workflows["archiving"].wake_delay,
            super::super::schema::DEFAULT_WAKE_DELAY
        );

        let rt = &config.workflows["rtEventsProcessing"].settings;
        assert_eq!(rt["plugin"], "rtEventsProcessing");
        assert_eq!(rt["interval"], "250ms");
        assert_eq!(rt["interval_ms"], 250);
        assert_eq!(rt["batch_size"], 10);
    }

    #[test]
    fn wake_delay_is_read_and_bounded() {
        let config = Config::from_toml_str(
            "[workflows.rtEventsProcessing]\nwake_delay = \"0s\"\n",
            no_env(),
        )
        .expect("valid");
        assert!(config.workflows["rtEventsProcessing"].wake_delay.is_zero());
        let refused = Config::from_toml_str(
            "[workflows.rtEventsProcessing]\nwake_delay = \"2s\"\n",
            no_env(),
        )
        .map(drop)
        .expect_err("refused")
        .to_string();
        assert!(
            refused.contains("workflows.rtEventsProcessing.wake_delay"),
            "{refused}"
        );
    }

    #[test]
    fn plugin_name_prefers_the_explicit_plugin() {
        let text = "[workflows.nightly]\nplugin = \"archiving\"\n[workflows.archiving]\n";
        let config = Config::from_toml_str(text, no_env()).expect("valid");
        assert_eq!(
            config.workflows["nightly"].plugin_name("nightly"),
            "archiving"
        );
        assert_eq!(
            config.workflows["archiving"].plugin_name("archiving"),
            "archiving"
        );
        assert_eq!(config.workflows["nightly"].settings["plugin"], "archiving");
    }

    #[test]
    fn empty_admin_token_means_none() {
        let config = Config::from_toml_str("[auth]\nadmin_token = \"\"\n", no_env()).expect("ok");
        assert_eq!(config.auth.admin_token, None);
        let config = Config::from_toml_str("", env(&[("MC_AUTH__ADMIN_TOKEN", "")])).expect("ok");
        assert_eq!(config.auth.admin_token, None);
    }
}
