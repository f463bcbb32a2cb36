//! A control instance and two execution instances, each a separate `message-center` process with its own
//! ports and database (SQLite files, or PostgreSQL databases in the `postgres` variant), delivering to a
//! real SMTP server (aiosmtpd). Checks SPEC's control role end to end: a template published on the
//! control instance reaches both execution instances (and is withdrawn from both), events pushed to both
//! are delivered, every final event ends up in the control archive exactly once with its delivery log,
//! stopping one execution instance delays only its own archive (its error is visible), and the retention
//! purge removes only events the archive has acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

/// How long pushed events may take to be final, archived or purged on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(90);
/// The first execution instance requires this API key; the control instance is configured with it.
const EXEC_1_KEY: &str = "exec-1-key";
const EVENTS_PER_INSTANCE: usize = 12;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Cluster {
    control: TestServer,
    exec_1: TestServer,
    exec_2: Option<TestServer>,
    smtp: SmtpServer,
    // Dropped after the servers.
    _databases: Vec<PostgresDatabase>,
}

/// Each server's `[database] url`: its own PostgreSQL database, or its default SQLite file.
fn database(backend: Backend, databases: &mut Vec<PostgresDatabase>) -> Option<String> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let db = PostgresDatabase::create();
            let url = db.url().to_owned();
            databases.push(db);
            Some(url)
        }
    }
}

fn execution_options(
    id: u8,
    smtp: &SmtpServer,
    database_url: Option<String>,
    api_key: Option<&str>,
) -> ServerOptions {
    let mut options = ServerOptions::new(PluginDir::new())
        .instance_id(id)
        .processing_workflows()
        .email_channel(smtp.port())
        // Purge a finished event one second after it became final, once archived; check every 300 ms.
        .extra_toml(
            "[retention]\nfinished_events = \"1s\"\npurge_interval = \"300ms\"\nwait_for_archive = true",
        );
    if let Some(url) = database_url {
        options = options.database_url(&url);
    }
    if let Some(key) = api_key {
        options = options.api_keys(&[key]);
    }
    options
}

impl Cluster {
    fn start(backend: Backend) -> Cluster {
        let smtp = SmtpServer::start();
        let mut databases = Vec::new();
        let exec_1 = TestServer::start(execution_options(
            1,
            &smtp,
            database(backend, &mut databases),
            Some(EXEC_1_KEY),
        ));
        let exec_2 = TestServer::start(execution_options(
            2,
            &smtp,
            database(backend, &mut databases),
            None,
        ));
        let plugins = PluginDir::new();
        plugins.add("archiving");
        let mut control = ServerOptions::new(plugins)
            .role("control")
            .instance_id(100)
            .workflows("[workflows.archiving]\ninterval = \"200ms\"\npage_size = 5\nmax_pages = 3")
            .extra_toml(&format!(
                "[[execution_instances]]\nname = \"exec-1\"\nurl = \"http://{}\"\napi_key = {}\n\n\
                 [[execution_instances]]\nname = \"exec-2\"\nurl = \"http://{}\"\ntimeout = \"2s\"",
                exec_1.api_addr(),
                toml_string(EXEC_1_KEY),
                exec_2.api_addr(),
            ));
        if let Some(url) = database(backend, &mut databases) {
            control = control.database_url(&url);
        }
        Cluster {
            control: TestServer::start(control),
            exec_1,
            exec_2: Some(exec_2),
            smtp,
            _databases: databases,
        }
    }

    fn exec_2(&self) -> &TestServer {
        self.exec_2.as_ref().expect("exec-2 is running")
    }
}

/// The headers an execution instance needs: the key for exec-1, none for exec-2.
fn auth(server_is_exec_1: bool) -> Vec<(&'static str, String)> {
    if server_is_exec_1 {
        vec![("authorization", format!("Bearer {EXEC_1_KEY}"))]
    } else {
        Vec::new()
    }
}

async fn request(
    server: &TestServer,
    key: bool,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let headers = auth(key);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = body.map(|b| serde_json::to_vec(b).expect("JSON"));
    server.api().request(method, path, body, &headers).await
}

/// A GET on the public API, with the API key when `key` is set.
async fn get(server: &TestServer, key: bool, path: &str) -> (u16, Value) {
    request(server, key, reqwest::Method::GET, path, None).await
}

async fn push(server: &TestServer, key: bool, event: Value) -> String {
    let (status, body) = request(
        server,
        key,
        reqwest::Method::POST,
        "/api/v1/events",
        Some(&event),
    )
    .await;
    assert_eq!(status, 201, "push {event}: {}", pretty(&body));
    body["id"].as_str().expect("id").to_owned()
}

async fn wait_final(server: &TestServer, key: bool, id: &str) -> Value {
    wait_for(TIMEOUT, &format!("event {id} to be final"), || async {
        let (status, body) = get(server, key, &format!("/api/v1/events/{id}")).await;
        assert_eq!(status, 200, "GET event {id}: {}", pretty(&body));
        is_final(&body).then_some(body)
    })
    .await
}

/// Like [`wait_final`], for a cluster whose execution instances purge archived events one second after
/// they become final: on a busy machine an event can be final, archived and purged before the test first
/// asks for it, and then its archived record (which has the same `status`) is the answer.
async fn wait_final_or_archived(
    server: &TestServer,
    key: bool,
    control: &TestServer,
    instance: &str,
    id: &str,
) -> Value {
    wait_for(TIMEOUT, &format!("event {id} to be final"), || async {
        let (status, body) = get(server, key, &format!("/api/v1/events/{id}")).await;
        match status {
            200 => is_final(&body).then_some(body),
            404 => archive(control, &format!("&instance={instance}"))
                .await
                .into_iter()
                .find(|e| e["id"] == id),
            _ => panic!("GET event {id}: {status} {}", pretty(&body)),
        }
    })
    .await
}

/// Every archived event on the control instance, following `nextAfter`.
async fn archive(control: &TestServer, filter: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/api/v1/archive/events?limit=1000&after={after}{filter}");
        let (status, body) = control.get_json(&path).await;
        assert_eq!(status, 200, "GET {path}: {}", pretty(&body));
        events.extend(body["events"].as_array().expect("events").iter().cloned());
        match body["nextAfter"].as_str() {
            Some(next) => after = next.replace('/', "%2F"),
            None => return events,
        }
    }
}

async fn wait_archived(control: &TestServer, ids: &BTreeSet<(String, String)>) -> Vec<Value> {
    wait_for(
        TIMEOUT,
        &format!("{} events in the archive", ids.len()),
        || async {
            let events = archive(control, "").await;
            let archived: BTreeSet<(String, String)> = events
                .iter()
                .map(|e| {
                    (
                        e["instance"].as_str().unwrap_or_default().to_owned(),
                        e["id"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            ids.is_subset(&archived).then_some(events)
        },
    )
    .await
}

async fn archive_state(control: &TestServer, instance: &str) -> Value {
    let (status, body) = control.admin_get("/admin/workflows").await;
    assert_eq!(status, 200, "{}", pretty(&body));
    body["archive"]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["instance"] == instance))
        .cloned()
        .unwrap_or_else(|| panic!("no archive state for {instance}: {}", pretty(&body)))
}

async fn template_on(server: &TestServer, key: bool, name: &str) -> (u16, Value) {
    get(server, key, &format!("/api/v1/templates/{name}")).await
}

/// Asserts the `instance → status` map of a publish or unpublish answer.
#[track_caller]
fn assert_instances(body: &Value, expected: [(&str, &str); 2]) {
    assert_eq!(
        status_by_instance(body),
        BTreeMap::from(expected),
        "{}",
        pretty(body)
    );
}

/// `instance → status` of a publish or unpublish answer.
fn status_by_instance(body: &Value) -> BTreeMap<&str, &str> {
    body["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("no instances: {}", pretty(body)))
        .iter()
        .map(|r| {
            (
                r["instance"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

async fn control_instance_end_to_end(backend: Backend) {
    let mut cluster = Cluster::start(backend);
    let control = &cluster.control;

    // The control instance refuses the execution routes.
    let (status, body) = control
        .post_json("/api/v1/events", &json!({ "type": "ORDER" }), &[])
        .await;
    assert_eq!(status, 404, "{}", pretty(&body));
    assert_error_field(&body, "message", |m| m.contains("control instance"));

    // ---- publishing ----
    let template = json!({
        "eventType": "ORDER_CONFIRMED",
        "channel": "email",
        "subject": "Order {{ ctx.orderId }} confirmed",
        "text": "Hello {{ ctx.firstName }}, order {{ ctx.orderId }} is confirmed.",
        "html": "<p>Hello {{ ctx.firstName }}</p>",
        "publish": false,
    });
    let (status, body) = control
        .api()
        .put_json("/api/v1/templates/order-confirmed", &template, &[])
        .await;
    assert_eq!(status, 201, "{}", pretty(&body));
    for (server, key) in [(&cluster.exec_1, true), (cluster.exec_2(), false)] {
        let (status, _) = template_on(server, key, "order-confirmed").await;
        assert_eq!(
            status, 404,
            "not published yet, so not on the execution instances"
        );
    }
    let (status, body) = control
        .post_json("/api/v1/templates/order-confirmed/publish", &json!({}), &[])
        .await;
    assert_eq!(status, 200, "publish: {}", pretty(&body));
    assert_eq!(body["failed"], 0, "{}", pretty(&body));
    assert_instances(&body, [("exec-1", "published"), ("exec-2", "published")]);
    assert_eq!(body["template"]["publishedVersion"], 1, "{}", pretty(&body));
    for (server, key) in [(&cluster.exec_1, true), (cluster.exec_2(), false)] {
        let (status, body) = template_on(server, key, "order-confirmed").await;
        assert_eq!(status, 200, "{}", pretty(&body));
        assert_eq!(body["publishedVersion"], 1, "{}", pretty(&body));
        assert_eq!(
            body["content"]["subject"],
            template["subject"],
            "the control instance's content: {}",
            pretty(&body)
        );
    }

    // ---- delivery on both execution instances ----
    let mut pushed: BTreeMap<(String, String), String> = BTreeMap::new();
    for (name, server, key) in [
        ("exec-1", &cluster.exec_1, true),
        ("exec-2", cluster.exec_2(), false),
    ] {
        for n in 0..EVENTS_PER_INSTANCE {
            let email = format!("{name}-{n}@example.com");
            let id = push(
                server,
                key,
                json!({
                    "type": "ORDER_CONFIRMED",
                    "email": email,
                    "ctx": { "firstName": format!("Ann {n}"), "orderId": format!("{name}/{n}") },
                }),
            )
            .await;
            pushed.insert((name.to_owned(), id), "sent".to_owned());
        }
        // No template for this type: final at once, archived too.
        let id = push(
            server,
            key,
            json!({ "type": "NO_SUCH_TEMPLATE", "email": "nobody@example.com" }),
        )
        .await;
        pushed.insert((name.to_owned(), id), "not_taken_into_account".to_owned());
    }
    for ((name, id), expected) in &pushed {
        let server = if name == "exec-1" {
            &cluster.exec_1
        } else {
            cluster.exec_2()
        };
        let event =
            wait_final_or_archived(server, name == "exec-1", &cluster.control, name, id).await;
        assert_eq!(event["status"], expected.as_str(), "{}", pretty(&event));
    }
    let messages = cluster
        .smtp
        .wait_for_messages(2 * EVENTS_PER_INSTANCE, TIMEOUT)
        .await;
    assert_eq!(messages.len(), 2 * EVENTS_PER_INSTANCE);
    assert!(
        messages
            .iter()
            .any(|m| message_is_to(m, "exec-2-3@example.com")),
        "a message of exec-2 reached the SMTP server"
    );

    // ---- archive: every final event exactly once, with its delivery log ----
    let wanted: BTreeSet<(String, String)> = pushed.keys().cloned().collect();
    let archived = wait_archived(control, &wanted).await;
    assert_eq!(
        archived.len(),
        wanted.len(),
        "exactly the pushed events, none twice: {}",
        pretty(&Value::Array(archived.clone()))
    );
    let ids: BTreeSet<&str> = archived.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        archived.len(),
        "ids are distinct across instances"
    );
    for event in &archived {
        let key = (
            event["instance"].as_str().unwrap().to_owned(),
            event["id"].as_str().unwrap().to_owned(),
        );
        assert_eq!(event["status"], pushed[&key].as_str(), "{}", pretty(event));
        let deliveries = event["deliveries"].as_array().expect("deliveries");
        if event["status"] == "sent" {
            assert_eq!(
                event["template"]["name"],
                "order-confirmed",
                "{}",
                pretty(event)
            );
            assert!(
                deliveries.iter().any(|d| d["status"] == "sent"
                    && d["final"] == true
                    && d["messageId"].is_string()),
                "a sent event's final delivery is archived with it: {}",
                pretty(event)
            );
        } else {
            assert!(deliveries.is_empty(), "{}", pretty(event));
        }
        assert!(event["finishedAt"].is_string() && event["archivedAt"].is_string());
    }
    // The top byte of the id is the instance id.
    for event in &archived {
        let id: u64 = event["id"].as_str().unwrap().parse().unwrap();
        let expected = if event["instance"] == "exec-1" { 1 } else { 2 };
        assert_eq!(id >> 56, expected, "{}", pretty(event));
    }

    // Filters and report.
    let sent_on_2 = archive(control, "&instance=exec-2&status=sent").await;
    assert_eq!(sent_on_2.len(), EVENTS_PER_INSTANCE);
    let (status, body) = control
        .get_json("/api/v1/archive/events?status=pending")
        .await;
    assert_eq!(status, 400, "{}", pretty(&body));
    assert_eq!(body["error"]["field"], "status", "{}", pretty(&body));
    let (status, report) = control.get_json("/api/v1/archive/report").await;
    assert_eq!(status, 200, "{}", pretty(&report));
    assert_eq!(report["total"], wanted.len(), "{}", pretty(&report));
    let sent_row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["template"] == "order-confirmed" && r["status"] == "sent")
        .unwrap_or_else(|| panic!("no sent row: {}", pretty(&report)));
    assert_eq!(
        sent_row["count"],
        2 * EVENTS_PER_INSTANCE,
        "{}",
        pretty(&report)
    );
    assert_eq!(sent_row["channel"], "email");
    assert!(sent_row["day"].as_str().is_some_and(|d| d.len() == 10));

    // Re-reading the feed from the start changes nothing: the archive is upserted.
    let exec_1 = &cluster.exec_1;
    let (status, body) = get(exec_1, true, "/api/v1/archive/events?after=0.0&limit=1000").await;
    assert_eq!(status, 200, "{}", pretty(&body));

    // A cursor past the end of the feed is refused: it would acknowledge events nobody has read.
    let (status, body) = get(exec_1, true, "/api/v1/archive/events?after=999999.0").await;
    assert_eq!(status, 400, "{}", pretty(&body));
    assert_eq!(body["error"]["field"], "after", "{}", pretty(&body));

    // ---- the purge removes archived events only ----
    // Everything above is archived, so the execution instances purge it (1 s after final).
    for (server, key) in [(&cluster.exec_1, true), (cluster.exec_2(), false)] {
        wait_for(TIMEOUT, "archived events purged", || async {
            let (status, body) = get(server, key, "/api/v1/events?limit=1000").await;
            assert_eq!(status, 200);
            body["events"]
                .as_array()
                .is_some_and(Vec::is_empty)
                .then_some(())
        })
        .await;
    }
    assert_eq!(
        archive(control, "").await.len(),
        wanted.len(),
        "the archive keeps them"
    );

    // Stop archiving: new final events must outlive several purge rounds.
    let (status, _) = control.admin_post("/admin/workflows/archiving/stop").await;
    assert_eq!(status, 200);
    let unarchived = push(
        &cluster.exec_1,
        true,
        json!({ "type": "NO_SUCH_TEMPLATE", "email": "late@example.com" }),
    )
    .await;
    wait_final(&cluster.exec_1, true, &unarchived).await;
    // Not a timing assertion: the purge must never delete it, however long we wait; 2 s is more than six
    // purge rounds past its one-second retention.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = get(
        &cluster.exec_1,
        true,
        &format!("/api/v1/events/{unarchived}"),
    )
    .await;
    assert_eq!(
        status,
        200,
        "an unarchived event is never purged: {}",
        pretty(&body)
    );
    let purged = metric_value(
        &cluster.exec_1.metrics().await,
        "mc_events_purged_total",
        &[],
    );
    assert_eq!(
        purged,
        Some((EVENTS_PER_INSTANCE + 1) as f64),
        "exactly the archived events of exec-1 were purged"
    );

    // ---- one execution instance down delays only its own archive ----
    let mut exec_2 = cluster.exec_2.take().expect("exec-2");
    exec_2.sigterm();
    exec_2.wait_exit(Duration::from_secs(30)).await;
    let (status, _) = control.admin_post("/admin/workflows/archiving/start").await;
    assert_eq!(status, 200);
    let after_outage = push(
        &cluster.exec_1,
        true,
        json!({ "type": "ORDER_CONFIRMED", "email": "after@example.com", "ctx": { "firstName": "Bo", "orderId": "x" } }),
    )
    .await;
    wait_final(&cluster.exec_1, true, &after_outage).await;
    let mut more = BTreeSet::new();
    more.insert(("exec-1".to_owned(), unarchived.clone()));
    more.insert(("exec-1".to_owned(), after_outage.clone()));
    wait_archived(control, &more).await;
    let down = wait_for(TIMEOUT, "exec-2 reported failing", || async {
        let state = archive_state(control, "exec-2").await;
        (state["state"] == "failing").then_some(state)
    })
    .await;
    let last_error = text(&down, "lastError");
    assert!(
        last_error.is_some_and(|e| e.contains("exec-2") && e.contains("unreachable")),
        "{}",
        pretty(&down)
    );
    let up = archive_state(control, "exec-1").await;
    assert_eq!(up["state"], "ok", "{}", pretty(&up));
    assert_eq!(
        up["archivedEvents"],
        EVENTS_PER_INSTANCE + 3,
        "{}",
        pretty(&up)
    );
    let metrics = control.metrics().await;
    assert_eq!(
        metric_value(&metrics, "mc_archive_up", &[("instance", "exec-2")]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&metrics, "mc_archive_up", &[("instance", "exec-1")]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "mc_archive_events_total",
            &[("instance", "exec-1")]
        ),
        Some((EVENTS_PER_INSTANCE + 3) as f64)
    );
    assert!(
        metric_value(
            &metrics,
            "mc_archive_errors_total",
            &[("instance", "exec-2")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        metric_value(
            &metrics,
            "mc_archive_lag_seconds",
            &[("instance", "exec-2")]
        )
        .is_some_and(|lag| lag > 0.0),
        "the lag of the stopped instance is counted"
    );

    // ---- unpublish: withdrawn where reachable, the unreachable instance reported ----
    let (status, body) = control
        .post_json(
            "/api/v1/templates/order-confirmed/unpublish",
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(status, 502, "exec-2 is down: {}", pretty(&body));
    assert_instances(&body, [("exec-1", "unpublished"), ("exec-2", "failed")]);
    let id = push(
        &cluster.exec_1,
        true,
        json!({ "type": "ORDER_CONFIRMED", "email": "withdrawn@example.com" }),
    )
    .await;
    let event = wait_final(&cluster.exec_1, true, &id).await;
    assert_eq!(
        event["status"],
        "not_taken_into_account",
        "{}",
        pretty(&event)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    control_instance_end_to_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    control_instance_end_to_end(Backend::Postgres).await;
}
