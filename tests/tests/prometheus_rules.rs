//! The shipped Prometheus alerting rules (config/prometheus/message-center-rules.yml) checked by
//! Prometheus's own `promtool` (Debian's `prometheus` package, installed by .ci/run): the file is valid
//! (`promtool check rules`), its unit tests pass (`promtool test rules`: a batch queue of 500 fires the
//! queue_size alert with the value in its annotation, an error rate at warning fires the warning only),
//! and it has a warning and an alert rule for every indicator the server reports.

use std::path::PathBuf;
use std::process::Command;

use message_center_tests::workspace_root;

/// Every indicator of SPEC "Monitoring", as `mc_monitoring_state{indicator}` names them.
const INDICATORS: [&str; 6] = [
    "queue_size",
    "error_rate",
    "throughput",
    "avg_queue_time",
    "avg_delivery_time",
    "avg_processing_time",
];

fn rules_dir() -> PathBuf {
    workspace_root().join("config").join("prometheus")
}

fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `promtool` ({e}): install Debian's `prometheus` package \
                 (`apt-get install -y prometheus`, as .ci/run does)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_rules() {
    let out = promtool(&["check", "rules", "message-center-rules.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_rules_fire_as_their_unit_tests_expect() {
    let out = promtool(&["test", "rules", "message-center-rules.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_indicator_has_a_warning_and_an_alert_rule() {
    let rules = std::fs::read_to_string(rules_dir().join("message-center-rules.yml"))
        .expect("read the rules file");
    for indicator in INDICATORS {
        for state in [1, 2] {
            let expr = format!("(mc_monitoring_state{{indicator=\"{indicator}\"}} == {state})");
            assert!(
                rules.contains(&expr),
                "no rule on `{expr}` in message-center-rules.yml"
            );
        }
    }
}
