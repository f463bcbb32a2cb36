//! Scheduling from outside: the wake-up signal runs a workflow before its next tick; stop and start.

use message_center_tests::*;
use serde_json::Value;

/// A workflow on rtEventsProcessing whose interval is an hour: after its first tick (at start), any further
/// run can only come from a wake-up.
const SLOW: &str = r#"
[workflows.slow]
enabled = true
plugin = "rtEventsProcessing"
interval = "1h"
timeout = "30s"
"#;

fn server() -> TestServer {
    let plugins = PluginDir::new();
    plugins.add("rt-events-processing");
    let workflows = format!("{SLOW}\n{}", healthy_workflow_toml("healthy"));
    TestServer::start(ServerOptions::new(plugins).workflows(&workflows))
}

/// Waits (up to 15 s) until workflow `name` has run at least `n` times; returns it.
async fn wait_runs(server: &TestServer, name: &str, n: u64, what: &str) -> Value {
    server
        .wait_workflow(name, secs(15), what, |wf| runs(wf) >= n)
        .await
}

#[tokio::test]
async fn a_wake_up_runs_the_workflow_before_its_next_tick() {
    let server = server();
    wait_runs(&server, "slow", 1, "the first tick's run").await;
    for expected in [2, 3] {
        let (status, body) = server.admin_post("/admin/workflows/slow/run").await;
        assert_eq!(status, 202, "{}", pretty(&body));
        let wf = wait_runs(&server, "slow", expected, "a run after the wake-up").await;
        assert_eq!(last_outcome(&wf), Some("ok"), "{}", pretty(&wf));
    }
    let (status, _) = server.admin_post("/admin/workflows/nope/run").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_stopped_workflow_does_not_run_until_started() {
    let server = server();
    wait_runs(&server, "healthy", 2, "first runs").await;

    let (status, body) = server.admin_post("/admin/workflows/healthy/stop").await;
    assert_eq!(status, 200, "{}", pretty(&body));
    assert_eq!(body["enabled"], false);
    let stopped = server
        .wait_workflow("healthy", secs(15), "state stopped", |wf| {
            wf["state"] == "stopped"
        })
        .await;
    let runs_when_stopped = runs(&stopped);

    // Ten wake-ups' worth of time (interval 100 ms): a stopped workflow must not have run, and waking it
    // is refused.
    let (status, body) = server.admin_post("/admin/workflows/healthy/run").await;
    assert_eq!(status, 422, "{}", pretty(&body));
    assert_eq!(body["error"]["code"], "workflow_stopped");
    tokio::time::sleep(millis(1000)).await;
    let still = server.workflow("healthy").await;
    assert_eq!(runs(&still), runs_when_stopped, "{}", pretty(&still));
    assert_eq!(still["enabled"], false);

    let (status, body) = server.admin_post("/admin/workflows/healthy/start").await;
    assert_eq!(status, 200, "{}", pretty(&body));
    server.assert_keeps_running("healthy", 3, secs(15)).await;

    let (status, _) = server.admin_post("/admin/workflows/nope/stop").await;
    assert_eq!(status, 404);
}
