//! Scheduling from outside: the wake-up signal runs a workflow before its next tick; stop and start.

use message_center_tests::*;

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

#[tokio::test]
async fn a_wake_up_runs_the_workflow_before_its_next_tick() {
    let server = server();
    server
        .wait_workflow("slow", secs(15), "the first tick's run", |wf| runs(wf) >= 1)
        .await;
    for expected in [2, 3] {
        let (status, body) = server.admin_post("/admin/workflows/slow/run").await;
        assert_eq!(status, 202, "{}", pretty(&body));
        let wf = server
            .wait_workflow("slow", secs(15), "a run after the wake-up", |wf| {
                runs(wf) >= expected
            })
            .await;
        assert_eq!(last_outcome(&wf), Some("ok"), "{}", pretty(&wf));
    }
    let (status, _) = server.admin_post("/admin/workflows/nope/run").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_stopped_workflow_does_not_run_until_started() {
    let server = server();
    server
        .wait_workflow("healthy", secs(15), "first runs", |wf| runs(wf) >= 2)
        .await;

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
