//! Reading the JSON answers of the server (events, workflows, plugins, reload results) and its
//! Prometheus text.

use std::path::Path;

use serde_json::Value;

/// Every event status of SPEC.md, the two transient ones first.
pub const EVENT_STATUSES: [&str; 7] = [
    "pending",
    "pending_delivery",
    "sent",
    "ignored",
    "delivery_failed",
    "not_taken_into_account",
    "expired",
];

/// The statuses an event never leaves.
pub const FINAL_STATUSES: &[&str] = EVENT_STATUSES.split_at(2).1;

/// True if the event (a `GET /api/v1/events/{id}` body) has a final status.
pub fn is_final(event: &Value) -> bool {
    event["status"]
        .as_str()
        .is_some_and(|s| FINAL_STATUSES.contains(&s))
}

/// Pretty JSON for failure messages.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Asserts that the `error.<key>` string of an error answer (`code` or `message`) passes `check`,
/// showing the whole answer when it does not.
#[track_caller]
pub fn assert_error_field(answer: &Value, key: &str, check: impl FnOnce(&str) -> bool) {
    assert!(
        answer["error"][key].as_str().is_some_and(check),
        "{}",
        pretty(answer)
    );
}

/// A non-negative integer field; panics with the object if it is missing.
pub fn num(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| {
        panic!(
            "field `{key}` is not a non-negative integer in {}",
            pretty(value)
        )
    })
}

/// A string field, or `None` if missing or null.
pub fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value[key].as_str()
}

/// `runs` of a workflow.
pub fn runs(workflow: &Value) -> u64 {
    num(workflow, "runs")
}

/// `lastRun.report.detail` of a workflow (null if it has not run or reported nothing).
pub fn last_detail(workflow: &Value) -> &Value {
    &workflow["lastRun"]["report"]["detail"]
}

/// `lastRun.outcome` of a workflow, if it has run.
pub fn last_outcome(workflow: &Value) -> Option<&str> {
    workflow["lastRun"]["outcome"].as_str()
}

/// The `plugins` array of an `/admin/plugins` answer.
pub fn plugin_entries(plugins: &Value) -> &[Value] {
    plugins["plugins"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no `plugins` array in {}", pretty(plugins)))
}

/// The entry of an `/admin/plugins` answer whose `name` is `name`.
pub fn find_plugin_by_name<'a>(plugins: &'a Value, name: &str) -> Option<&'a Value> {
    plugin_entries(plugins).iter().find(|p| p["name"] == name)
}

/// The entry of an `/admin/plugins` answer whose `file` has the file name `file_name`.
pub fn find_plugin_by_file<'a>(plugins: &'a Value, file_name: &str) -> Option<&'a Value> {
    plugin_entries(plugins).iter().find(|p| {
        p["file"]
            .as_str()
            .is_some_and(|f| file_name_of(f) == file_name)
    })
}

/// The `results` entry of a reload answer for plugin `name` (or, failing that, for file `file_name`).
pub fn find_result<'a>(
    answer: &'a Value,
    name: &str,
    file_name: Option<&str>,
) -> Option<&'a Value> {
    let results = answer["results"].as_array()?;
    results.iter().find(|r| r["name"] == name).or_else(|| {
        let file_name = file_name?;
        results.iter().find(|r| {
            r["file"]
                .as_str()
                .is_some_and(|f| file_name_of(f) == file_name)
        })
    })
}

fn file_name_of(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// The integers written in `text` once every string of `strip` (paths, which may contain digits) is
/// removed: used to check that a message names two ABI versions.
pub fn numbers_in(text: &str, strip: &[&str]) -> Vec<u64> {
    let mut text = text.to_owned();
    for s in strip {
        if !s.is_empty() {
            text = text.replace(s, " ");
        }
    }
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// The value of the first sample of metric `name` (exact name, e.g. `mc_workflow_runs_total`) whose labels
/// include every `(label, value)` of `labels`.
pub fn metric_value(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        let all = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if all { value.trim().parse().ok() } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lookup() {
        let text = "# TYPE mc_plugin_reloads counter\n\
                    mc_plugin_reloads_total{plugin=\"reloadProbe\",outcome=\"reloaded\"} 1\n\
                    mc_plugin_reloads_total{plugin=\"reloadProbe\",outcome=\"unchanged\"} 2\n";
        assert_eq!(
            metric_value(text, "mc_plugin_reloads_total", &[("outcome", "unchanged")]),
            Some(2.0)
        );
        assert_eq!(metric_value(text, "mc_plugin_reloads", &[]), None);
    }

    #[test]
    fn numbers_skip_paths() {
        assert_eq!(
            numbers_in(
                "/tmp/x1/lib.so: ABI version 2, host speaks 1",
                &["/tmp/x1/lib.so"]
            ),
            vec![2, 1]
        );
    }
}
