//! Every kind of plugin fault leaves the host running, leaves the other workflows alone and shows its
//! reason in the admin API.

use mc_plugin_api::abi::ABI_VERSION;
use message_center_tests::*;
use serde_json::Value;
use std::time::Duration;

/// The workflow (plugin rtEventsProcessing) that must keep running whatever the faulty plugin does.
const HEALTHY: &str = "healthy";

/// Starts a server whose plugin directory holds rt-events-processing plus what `plugins` already holds,
/// with the healthy workflow plus `workflows`.
fn start_with_healthy(plugins: PluginDir, workflows: &str) -> TestServer {
    plugins.add("rt-events-processing");
    TestServer::start(
        ServerOptions::new(plugins)
            .workflows(&healthy_workflow_toml(HEALTHY))
            .workflows(workflows),
    )
}

/// The host still answers, its healthy plugin is loaded and the healthy workflow keeps running cleanly.
async fn assert_host_unaffected(server: &TestServer) {
    server.assert_healthy().await;
    let rt = server
        .plugin_named("rtEventsProcessing")
        .await
        .expect("rtEventsProcessing is listed");
    assert_eq!(rt["state"], "loaded", "{}", pretty(&rt));
    server.assert_keeps_running(HEALTHY, 3, secs(30)).await;
}

/// Starts fault-probe workflow `name` in `mode` (10 s timeout) and waits until it has counted two errors
/// and its last run ended with outcome `mode`.
async fn start_erring(name: &str, mode: &str, what: &str) -> (TestServer, Value) {
    let server = start_fault_probe(name, &format!("timeout = \"10s\"\nmode = \"{mode}\""));
    let wf = server
        .wait_workflow(name, secs(30), what, |wf| {
            num(wf, "errors") >= 2 && last_outcome(wf) == Some(mode)
        })
        .await;
    (server, wf)
}

/// Waits until the last run of workflow `name` ended with `outcome`.
async fn wait_outcome(server: &TestServer, name: &str, what: &str, outcome: &str) -> Value {
    server
        .wait_workflow(name, secs(30), what, |wf| last_outcome(wf) == Some(outcome))
        .await
}

/// Waits until workflow `name` is in `state`, then checks that the host is unaffected and that the
/// workflow is still in `state`.
async fn assert_settles_in_state(server: &TestServer, name: &str, timeout: Duration, state: &str) {
    server
        .wait_workflow(name, timeout, &format!("state {state}"), |wf| {
            wf["state"] == state
        })
        .await;
    assert_host_unaffected(server).await;
    let wf = server.workflow(name).await;
    assert_eq!(wf["state"], state, "{}", pretty(&wf));
}

/// A plugin file `file` holding `bytes` is refused without a panic, and the host is unaffected.
async fn assert_refused_cleanly(file: &str, bytes: &[u8]) {
    let plugins = PluginDir::new();
    plugins.write_file(file, bytes);
    let server = start_with_healthy(plugins, "");

    let error = wait_refused(&server, file).await;
    assert!(!error.contains("panicked"), "{error}");
    assert_host_unaffected(&server).await;
}

/// Waits until the file is listed as refused; returns the error text.
async fn wait_refused(server: &TestServer, file_name: &str) -> String {
    let entry = server
        .wait_plugin_file(file_name, secs(15), "state refused with a reason", |p| {
            p["state"] == "refused" && p["error"].as_str().is_some_and(|e| !e.is_empty())
        })
        .await;
    entry["error"].as_str().unwrap().to_owned()
}

/// A fault-probe workflow table.
fn probe_workflow(name: &str, settings: &str) -> String {
    format!(
        "[workflows.{name}]\nenabled = true\nplugin = \"faultProbe\"\ninterval = \"200ms\"\n{settings}\n"
    )
}

/// A server with the healthy workflow and one fault-probe workflow `name` with `settings`.
fn start_fault_probe(name: &str, settings: &str) -> TestServer {
    let plugins = PluginDir::new();
    plugins.add("fault-probe");
    start_with_healthy(plugins, &probe_workflow(name, settings))
}

#[tokio::test]
async fn wrong_abi_version_is_refused_naming_both_versions() {
    let plugins = PluginDir::new();
    let file = plugins.add("wrong-abi");
    let server = start_with_healthy(plugins, "");

    let error = wait_refused(&server, "libwrong_abi.so").await;
    let numbers = numbers_in(
        &error,
        &[
            &file.display().to_string(),
            &server.plugin_dir().path().display().to_string(),
        ],
    );
    for version in [ABI_VERSION, ABI_VERSION + 1] {
        assert!(
            numbers.contains(&u64::from(version)),
            "the refusal does not name ABI version {version}: {error}"
        );
    }
    assert_host_unaffected(&server).await;
}

#[tokio::test]
async fn a_file_that_is_not_a_library_is_refused() {
    let text = b"this is plain text, not an ELF shared library\n";
    assert_refused_cleanly("garbage.so", text).await;
}

#[tokio::test]
async fn a_truncated_library_is_refused() {
    assert_refused_cleanly("truncated.so", &truncated_library("fault-probe", 4096)).await;
}

#[tokio::test]
async fn a_plugin_file_writable_by_others_or_group_is_refused() {
    let plugins = PluginDir::new();
    plugins.add_as("fault-probe", "libworld_writable.so");
    plugins.chmod("libworld_writable.so", 0o777);
    plugins.add_as("reload-probe-v1", "libgroup_writable.so");
    plugins.chmod("libgroup_writable.so", 0o664);
    let server = start_with_healthy(plugins, "");

    for file in ["libworld_writable.so", "libgroup_writable.so"] {
        let error = wait_refused(&server, file).await;
        let lower = error.to_lowercase();
        assert!(
            lower.contains("writ") && (lower.contains("other") || lower.contains("group")),
            "{file}: the refusal does not say that other users can write it: {error}"
        );
    }
    assert_host_unaffected(&server).await;
}

#[tokio::test]
async fn a_panicking_run_is_reported_and_the_workflow_keeps_running() {
    let (server, wf) = start_erring("panicky", "panic", "two panicking runs").await;
    let context = pretty(&wf);
    assert!(
        text(&wf, "lastError").is_some_and(|e| e.contains("panics on purpose")),
        "{context}"
    );
    assert!(
        wf["lastRun"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("panics on purpose")),
        "{context}"
    );
    assert!(wf["lastRun"]["report"].is_null(), "{context}");
    assert!(!wf["lastErrorAt"].is_null(), "{context}");

    // Runs continue, and keep failing the same way.
    let (runs_then, errors_then) = (runs(&wf), num(&wf, "errors"));
    let later = server
        .wait_workflow("panicky", secs(30), "more panicking runs", |wf| {
            runs(wf) >= runs_then + 2 && num(wf, "errors") >= errors_then + 2
        })
        .await;
    assert_eq!(last_outcome(&later), Some("panic"), "{}", pretty(&later));
    assert_eq!(later["enabled"], true, "{}", pretty(&later));

    let metrics = server.metrics().await;
    let workflow = ("workflow", "panicky");
    let panics = metric_value(
        &metrics,
        "mc_workflow_runs_total",
        &[workflow, ("outcome", "panic")],
    );
    assert!(
        panics.is_some_and(|n| n >= 2.0),
        "panic runs: {panics:?}\n{metrics}"
    );
    let errors = metric_value(&metrics, "mc_workflow_errors_total", &[workflow]);
    assert!(
        errors.is_some_and(|n| n >= 1.0),
        "errors: {errors:?}\n{metrics}"
    );

    assert_host_unaffected(&server).await;
}

#[tokio::test]
async fn a_failing_run_is_reported_as_an_error() {
    let (server, wf) = start_erring("failing", "error", "two failed runs").await;
    assert!(
        text(&wf, "lastError").is_some_and(|e| e.contains("fails on purpose")),
        "{}",
        pretty(&wf)
    );
    assert_host_unaffected(&server).await;
}

#[tokio::test]
async fn a_run_hanging_past_its_deadline_times_out() {
    let server = start_fault_probe("hanging", "timeout = \"1s\"\nmode = \"hang\"");

    let wf = wait_outcome(&server, "hanging", "a run that timed out", "timeout").await;
    let context = pretty(&wf);
    assert!(num(&wf, "errors") >= 1, "{context}");
    assert!(!wf["lastError"].is_null(), "{context}");
    let duration = wf["lastRun"]["durationMs"].as_u64().unwrap_or(0);
    assert!(
        (900..30_000).contains(&duration),
        "a 1 s deadline, but the run lasted {duration} ms: {context}"
    );
    // An async hang is cancelled by dropping the future: the workflow is not stuck and runs again.
    assert_ne!(wf["state"], "stuck", "{context}");
    let runs_then = runs(&wf);
    let later = server
        .wait_workflow("hanging", secs(30), "another run that timed out", |wf| {
            runs(wf) > runs_then && last_outcome(wf) == Some("timeout")
        })
        .await;
    assert_ne!(later["state"], "stuck", "{}", pretty(&later));

    assert_host_unaffected(&server).await;
}

#[tokio::test]
async fn a_run_blocking_its_thread_is_stuck_and_others_keep_running() {
    let server = start_fault_probe("blocking", "timeout = \"1s\"\nmode = \"block\"");

    // Still stuck afterwards (the thread sleeps for an hour): not a transient state.
    assert_settles_in_state(&server, "blocking", secs(30), "stuck").await;
}

#[tokio::test]
async fn a_removed_plugin_is_unloaded_and_its_workflow_waits() {
    let server = start_fault_probe("probe", "timeout = \"10s\"\nmode = \"ok\"");

    let wf = wait_outcome(&server, "probe", "a successful run", "ok").await;
    assert_eq!(last_detail(&wf), "fault-probe ok", "{}", pretty(&wf));

    server.plugin_dir().remove("libfault_probe.so");
    let (status, answer) = server.reload_all().await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let removed = find_result(&answer, "faultProbe", Some("libfault_probe.so"))
        .unwrap_or_else(|| panic!("no result for faultProbe: {}", pretty(&answer)));
    assert_eq!(removed["outcome"], "unloaded", "{}", pretty(&answer));
    let kept = find_result(&answer, "rtEventsProcessing", None)
        .unwrap_or_else(|| panic!("no result for rtEventsProcessing: {}", pretty(&answer)));
    assert_eq!(kept["outcome"], "unchanged", "{}", pretty(&answer));

    let entry = server
        .plugin_named("faultProbe")
        .await
        .expect("a removed plugin stays listed");
    assert_eq!(entry["state"], "removed", "{}", pretty(&entry));
    assert_settles_in_state(&server, "probe", secs(15), "waiting_for_plugin").await;
}

#[tokio::test]
async fn a_failing_create_is_reported_and_the_host_keeps_running() {
    let plugins = PluginDir::new();
    plugins.add("fault-probe");
    let workflows = [
        probe_workflow("create_panics", "create = \"panic\""),
        probe_workflow("create_fails", "create = \"error\""),
        probe_workflow("unknown_mode", "mode = \"explode\""),
    ]
    .concat();
    let server = start_with_healthy(plugins, &workflows);

    // Each reason is visible somewhere in the admin API (the workflow's or the plugin's error).
    for needle in [
        "create panics on purpose",
        "create fails on purpose",
        "`mode`",
    ] {
        wait_for(
            secs(15),
            &format!("{needle:?} in the admin API"),
            async || {
                let everything = Value::Array(vec![
                    Value::Array(server.workflows().await),
                    server.plugins().await,
                ])
                .to_string();
                everything.contains(needle).then_some(())
            },
        )
        .await;
    }
    for name in ["create_panics", "create_fails", "unknown_mode"] {
        let wf = server.workflow(name).await;
        assert_eq!(
            runs(&wf),
            0,
            "a workflow that was never created ran: {}",
            pretty(&wf)
        );
    }
    assert_host_unaffected(&server).await;
}

#[tokio::test]
async fn admin_api_without_a_configured_token_is_disabled() {
    let server = TestServer::start(ServerOptions::new(PluginDir::new()).admin_token(None));

    for (method, path) in [
        (reqwest::Method::GET, "/admin/plugins"),
        (reqwest::Method::GET, "/admin/workflows"),
        (reqwest::Method::POST, "/admin/plugins/reload"),
        (reqwest::Method::GET, "/metrics"),
    ] {
        for token in [None, Some(DEFAULT_ADMIN_TOKEN), Some("")] {
            let (status, body) = server.admin_request(method.clone(), path, token).await;
            assert_eq!(status, 403, "{method} {path} with token {token:?}: {body}");
            if path.starts_with("/admin") {
                let body: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"));
                assert_eq!(
                    body["error"]["code"], "admin_disabled",
                    "{method} {path}: {body}"
                );
            }
        }
    }
    // Health needs no token.
    server.assert_healthy().await;
}

#[tokio::test]
async fn admin_api_with_a_wrong_or_missing_token_is_unauthorized() {
    let server = TestServer::start(ServerOptions::new(PluginDir::new()));

    for (method, path) in [
        (reqwest::Method::GET, "/admin/plugins"),
        (reqwest::Method::GET, "/admin/workflows"),
        (reqwest::Method::POST, "/admin/plugins/reload"),
        (reqwest::Method::GET, "/metrics"),
    ] {
        for token in [
            None,
            Some("wrong-token"),
            Some("test-admin-token-but-longer"),
        ] {
            let (status, body) = server.admin_request(method.clone(), path, token).await;
            assert_eq!(status, 401, "{method} {path} with token {token:?}: {body}");
        }
    }
    // The right token works, and health needs none.
    let (status, body) = server.admin_get("/admin/plugins").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(plugin_entries(&body).len(), 0, "{}", pretty(&body));
    server.assert_healthy().await;
}
