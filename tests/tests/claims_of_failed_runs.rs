//! A workflow run that fails after claiming events (an error half-way, the database lost mid-run) must
//! not leave them to wait out their lease: the host hands them back, and the next run claims them at once.
//! The `faultProbe` plugin in `claim` mode claims with a 60 s lease; with `fail_first_runs = 2` its first
//! two runs claim and then fail without settling anything.

use message_center_tests::*;
use serde_json::json;

const EVENTS: usize = 5;

async fn failed_runs_release_their_claims(database_url: Option<&str>) {
    let plugins = PluginDir::new();
    plugins.add("fault-probe");
    let mut options = ServerOptions::new(plugins).workflows(
        r#"
[workflows.claimer]
enabled = true
plugin = "faultProbe"
mode = "claim"
fail_first_runs = 2
batch_size = 50
interval = "200ms"
timeout = "30s"
"#,
    );
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    let server = TestServer::start(options);
    let mut ids = Vec::new();
    for n in 0..EVENTS {
        let body = json!({ "type": "CLAIM", "email": format!("u{n}@example.com") });
        let (status, answer) = server.post_json("/api/v1/events", &body, &[]).await;
        assert_eq!(status, 201, "{}", pretty(&answer));
        ids.push(answer["id"].as_str().expect("id").to_owned());
    }
    // Well inside the 60 s lease: only a release by the host lets the third run have them.
    for id in &ids {
        let event = server.wait_final(id, secs(20)).await;
        assert_eq!(
            event["status"],
            "not_taken_into_account",
            "{}",
            pretty(&event)
        );
    }
    let workflow = server.workflow("claimer").await;
    assert!(num(&workflow, "errors") >= 2, "{}", pretty(&workflow));
    assert!(
        server
            .log_contents()
            .contains("released the events that failed runs had claimed"),
        "{}",
        server.log_tail(40)
    );
}

#[tokio::test]
async fn sqlite_failed_runs_release_their_claims() {
    failed_runs_release_their_claims(None).await;
}

#[tokio::test]
async fn postgres_failed_runs_release_their_claims() {
    let database = PostgresDatabase::create();
    failed_runs_release_their_claims(Some(database.url())).await;
}
