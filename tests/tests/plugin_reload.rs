//! Hot reload: a new generation takes the next runs while the run in flight finishes on the old one; a
//! broken file leaves the old generation running; an unchanged file is left alone.

use message_center_tests::*;
use serde_json::Value;

const FILE: &str = "libreload_probe.so";

/// The result for reloadProbe's file in a reload answer; panics with the answer if there is none.
fn probe_result(answer: &Value) -> &Value {
    find_result(answer, "reloadProbe", Some(FILE))
        .unwrap_or_else(|| panic!("no result for reloadProbe: {}", pretty(answer)))
}

/// The `/admin/plugins` entry of reloadProbe; panics with `what` if it is not listed.
async fn probe_entry(server: &TestServer, what: &str) -> Value {
    server.plugin_named("reloadProbe").await.expect(what)
}

/// Asserts that the workflow's last run succeeded on `generation`, reporting `detail` and `processed`.
#[track_caller]
fn assert_last_run_ok(workflow: &Value, generation: u64, detail: &str, processed: u64) {
    let last = &workflow["lastRun"];
    assert_eq!(last["outcome"], "ok", "{}", pretty(workflow));
    assert_eq!(last["generation"], generation, "{}", pretty(workflow));
    assert_eq!(last["report"]["detail"], detail, "{}", pretty(workflow));
    assert_eq!(
        last["report"]["processed"],
        processed,
        "{}",
        pretty(workflow)
    );
}

/// Waits until workflow `probe` has finished a run numbered above `number`.
async fn wait_run_after(server: &TestServer, number: u64, what: &str) -> Value {
    server
        .wait_workflow("probe", secs(30), what, |wf| {
            wf["lastRun"]["number"].as_u64().is_some_and(|n| n > number)
        })
        .await
}

#[tokio::test]
async fn reload_swaps_generations_without_disturbing_the_run_in_flight() {
    let plugins = PluginDir::new();
    plugins.add_as("reload-probe-v1", FILE);
    let server = TestServer::start(ServerOptions::new(plugins).workflows(SLOW_PROBE_WORKFLOW_TOML));

    let entry = probe_entry(&server, "reloadProbe listed").await;
    assert_eq!(entry["version"], "1.0.0", "{}", pretty(&entry));
    assert_eq!(entry["generation"], 1, "{}", pretty(&entry));

    // Catch a run at its start: wait for a first run to finish, then for the next one to be running.
    let first = server
        .wait_workflow("probe", secs(30), "a first finished run", |wf| {
            !wf["lastRun"].is_null()
        })
        .await;
    assert_eq!(last_detail(&first), "reload-probe v1", "{}", pretty(&first));
    let finished = num(&first["lastRun"], "number");
    server
        .wait_workflow("probe", secs(30), "the next run in flight", |wf| {
            wf["state"] == "running" && wf["lastRun"]["number"] == finished
        })
        .await;

    // Deploy v2 as a deploy would (temporary name, then rename over) and reload.
    server.plugin_dir().replace_with(FILE, "reload-probe-v2");
    let (status, answer) = server.reload_plugin("reloadProbe").await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let result = probe_result(&answer);
    assert_eq!(result["outcome"], "reloaded", "{}", pretty(&answer));
    assert_eq!(result["generation"], 2, "{}", pretty(&answer));
    assert_eq!(result["previousGeneration"], 1, "{}", pretty(&answer));
    assert!(result["error"].is_null(), "{}", pretty(&answer));

    // The run caught above was still in flight when the reload answered...
    let now = server.workflow("probe").await;
    assert_eq!(
        now["lastRun"]["number"],
        finished,
        "run {} finished before the reload answered: the reload must not wait for the old generation's \
         run in flight (or the machine is far too slow for a 1.5 s run): {}",
        finished + 1,
        pretty(&now)
    );

    // ...and it finishes normally, on generation 1.
    let in_flight = wait_run_after(&server, finished, "the run in flight to finish").await;
    let last = &in_flight["lastRun"];
    assert_eq!(
        last["number"],
        finished + 1,
        "missed the end of the run in flight: {}",
        pretty(&in_flight)
    );
    assert_last_run_ok(&in_flight, 1, "reload-probe v1", 1);

    // The next runs are served by generation 2.
    let next = wait_run_after(&server, finished + 1, "a run on generation 2").await;
    assert_last_run_ok(&next, 2, "reload-probe v2", 2);
    assert_eq!(num(&next, "errors"), 0, "{}", pretty(&next));

    // The plugin listing shows the new generation and, once drained, no retiring one.
    let entry = server
        .wait_plugin_file(FILE, secs(15), "generation 1 retired", |p| {
            p["retiringGenerations"]
                .as_array()
                .is_some_and(|g| g.is_empty())
        })
        .await;
    assert_eq!(entry["name"], "reloadProbe", "{}", pretty(&entry));
    assert_eq!(entry["state"], "loaded", "{}", pretty(&entry));
    assert_eq!(entry["version"], "2.0.0", "{}", pretty(&entry));
    assert_eq!(entry["generation"], 2, "{}", pretty(&entry));
    assert!(entry["error"].is_null(), "{}", pretty(&entry));

    // Reloading an unchanged file changes nothing.
    let (status, answer) = server.reload_plugin("reloadProbe").await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let result = probe_result(&answer);
    assert_eq!(result["outcome"], "unchanged", "{}", pretty(&answer));
    assert_eq!(result["generation"], 2, "{}", pretty(&answer));

    // A broken file is refused with 422 and generation 2 keeps running.
    server
        .plugin_dir()
        .replace_with_bytes(FILE, &truncated_library("reload-probe-v2", 4096));
    let (status, answer) = server.reload_plugin("reloadProbe").await;
    assert_eq!(status, 422, "{}", pretty(&answer));
    assert_error_field(&answer, "code", |c| !c.is_empty());
    assert_error_field(&answer, "message", |m| !m.is_empty());
    let result = probe_result(&answer);
    assert_eq!(result["outcome"], "refused", "{}", pretty(&answer));
    assert!(
        result["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        pretty(&answer)
    );

    let entry = probe_entry(&server, "still listed").await;
    assert_eq!(entry["state"], "loaded", "{}", pretty(&entry));
    assert_eq!(entry["generation"], 2, "{}", pretty(&entry));
    assert_eq!(entry["version"], "2.0.0", "{}", pretty(&entry));
    assert!(
        entry["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the failed reload's reason is not shown: {}",
        pretty(&entry)
    );

    let before = server.workflow("probe").await;
    let last_number = num(&before["lastRun"], "number");
    let after = wait_run_after(&server, last_number, "a run after the failed reload").await;
    assert_eq!(after["lastRun"]["outcome"], "ok", "{}", pretty(&after));
    assert_eq!(after["lastRun"]["generation"], 2, "{}", pretty(&after));
    assert_eq!(last_detail(&after), "reload-probe v2", "{}", pretty(&after));

    // Reloads are counted.
    let metrics = server.metrics().await;
    for outcome in ["reloaded", "unchanged", "refused"] {
        let count = metric_value(
            &metrics,
            "mc_plugin_reloads_total",
            &[("plugin", "reloadProbe"), ("outcome", outcome)],
        );
        assert!(
            count.is_some_and(|n| n >= 1.0),
            "mc_plugin_reloads_total{{plugin=\"reloadProbe\",outcome=\"{outcome}\"}} is {count:?}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn reloading_an_unknown_plugin_is_not_found() {
    let plugins = PluginDir::new();
    plugins.add_as("reload-probe-v1", FILE);
    let server = TestServer::start(ServerOptions::new(plugins));

    let (status, answer) = server.reload_plugin("noSuchPlugin").await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    let entry = probe_entry(&server, "listed").await;
    assert_eq!(entry["generation"], 1, "{}", pretty(&entry));
}
