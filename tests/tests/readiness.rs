//! `/readyz` tells whether the server can do its work: not while its database is unreachable, yes once it
//! is reachable and migrated, on SQLite and on PostgreSQL. `/healthz` only says the process answers.

use message_center_tests::*;

/// A server with one healthy workflow, on `database_url` or the default (an SQLite file of the test's).
fn server_on(database_url: Option<&str>) -> TestServer {
    let plugins = PluginDir::new();
    plugins.add("rt-events-processing");
    let mut options = ServerOptions::new(plugins).workflows(&healthy_workflow_toml("healthy"));
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    TestServer::start(options)
}

async fn wait_ready(server: &TestServer) {
    wait_for(secs(30), "GET /readyz to answer 200", async || {
        let (status, body) = server.admin_get("/readyz").await;
        (status == 200 && body["status"] == "ready").then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_database_is_live_but_not_ready() {
    // Nothing listens on port 1: the server must still start, answer /healthz and say why it is not ready.
    let server = server_on(Some("postgres://mc@127.0.0.1:1/message_center"));
    server.assert_healthy().await;
    let (status, body) = server.admin_get("/readyz").await;
    assert_eq!(status, 503, "{}", pretty(&body));
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{}",
        pretty(&body)
    );

    // The workflow runs, and its failing host call is reported as an error, not a crash.
    let wf = server
        .wait_workflow("healthy", secs(30), "a failed run", |wf| {
            last_outcome(wf) == Some("error")
        })
        .await;
    assert!(
        wf["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("host service events.") && e.contains("unavailable")),
        "{}",
        pretty(&wf)
    );
    server.assert_healthy().await;
}

#[tokio::test]
async fn sqlite_database_is_ready_and_workflows_reach_it() {
    let server = server_on(None);
    wait_ready(&server).await;
    server.assert_keeps_running("healthy", 3, secs(15)).await;
}

#[tokio::test]
async fn postgres_database_is_ready_and_workflows_reach_it() {
    let database = PostgresDatabase::create();
    let server = server_on(Some(database.url()));
    wait_ready(&server).await;
    server.assert_keeps_running("healthy", 3, secs(15)).await;
}
