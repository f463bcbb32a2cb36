//! Poison events: an event whose `ctx` cannot be read back must neither get in nor hold the others back.
//!
//! A `ctx` nested 8,000 objects deep (48 KB, under `max_ctx_bytes`) used to be accepted, then fail every
//! claim of `rtEventsProcessing` that took it (`serde_json`'s recursion limit), with every event claimed
//! beside it, run after run; `GET` of it answered 500. Now (a) the intake refuses a `ctx` deeper than 32
//! levels, naming `ctx`, on REST single, REST batch and SOAP; (b) one already in the database (written
//! there by hand, the API refusing it) is set apart as `delivery_failed` with its reason in a delivery-log
//! entry, the 20 ordinary events claimed in the same run are delivered, and `GET` of it answers 200.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

const ROUTER: &str = "/nl/jsp/soaprouter.jsp";
const LOGIN: &str = "mc";
const PASSWORD: &str = "s3cret-pw";
const EVENT_TYPE: &str = "POISON_TEST";
const ORDINARY: usize = 20;

/// `levels` objects inside one another: `{"a":{"a":…1…}}`.
fn nested_json(levels: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
}

fn server_options(smtp: &SmtpServer, database_url: Option<&str>) -> ServerOptions {
    let mut options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(smtp.port())
        .extra_toml(&format!(
            "[adobe]\nenabled = true\naccounts = [{{ login = {}, password = {} }}]\n",
            toml_string(LOGIN),
            toml_string(PASSWORD)
        ));
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    options
}

/// A PushEvent call whose `<rtEvent>` holds `ctx` (the XML of the `<ctx>` element).
fn soap_push_event(ctx: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:nms:rtEvent"><soapenv:Body><urn:PushEvent><urn:sessiontoken>{LOGIN}/{PASSWORD}</urn:sessiontoken><urn:domEvent><rtEvent type="{EVENT_TYPE}" email="soap@example.com" wishedChannel="0">{ctx}</rtEvent></urn:domEvent></urn:PushEvent></soapenv:Body></soapenv:Envelope>"#
    )
}

async fn post_soap(server: &TestServer, body: String) -> (u16, String) {
    let headers = [
        ("content-type", "text/xml; charset=utf-8"),
        ("SOAPAction", "nms:rtEvent#PushEvent"),
    ];
    match server.api().post_raw(ROUTER, body, &headers).await {
        (status, Value::String(text)) => (status, text),
        (status, other) => panic!("SOAP PushEvent: {status} with a body that is not XML: {other}"),
    }
}

/// POSTs `body` (JSON text, valid or not) to `path`: status and answer.
async fn post_json_text(server: &TestServer, path: &str, body: String) -> (u16, Value) {
    server
        .post_raw(path, body, &[("content-type", "application/json")])
        .await
}

/// Asserts a 400 whose error names `field`.
fn assert_refused_field(status: u16, answer: &Value, field: &str) {
    assert_eq!(status, 400, "{}", pretty(answer));
    assert_eq!(answer["error"]["field"], field, "{}", pretty(answer));
}

async fn event_count(server: &TestServer) -> usize {
    let (status, page) = server.get_json("/api/v1/events?limit=1000").await;
    assert_eq!(status, 200, "{}", pretty(&page));
    page["events"].as_array().expect("events").len()
}

/// (a) The 8,000-deep `ctx` is refused at the door, naming `ctx`, on every way in; nothing is stored.
async fn deep_ctx_is_refused(database_url: Option<&str>) {
    let smtp = SmtpServer::start();
    let server = TestServer::start(server_options(&smtp, database_url));
    let deep = nested_json(8_000);
    assert!(deep.len() > 40_000, "48 KB of JSON: {}", deep.len());
    let event =
        |ctx: &str| format!(r#"{{"type":"{EVENT_TYPE}","email":"a@example.com","ctx":{ctx}}}"#);

    let (status, answer) = post_json_text(&server, "/api/v1/events", event(&deep)).await;
    assert_refused_field(status, &answer, "ctx");
    assert_eq!(
        answer["error"]["code"],
        "invalid_field",
        "{}",
        pretty(&answer)
    );
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("32 levels"), "{message}");

    let batch = format!(r#"{{"events":[{},{}]}}"#, event("{}"), event(&deep));
    let (status, answer) = post_json_text(&server, "/api/v1/events/batch", batch).await;
    assert_refused_field(status, &answer, "events[1].ctx");

    // 32 levels are accepted: the limit is where it says.
    let (status, answer) = post_json_text(&server, "/api/v1/events", event(&nested_json(32))).await;
    assert_eq!(status, 201, "{}", pretty(&answer));

    // SOAP answers refusals as Adobe does, HTTP 500 with a `SOAP-ENV:Client` fault whose faultstring
    // names the field. A `<ctx>` within the XML reader's own nesting bound (64 elements in all) but
    // deeper than 32 levels of JSON is refused by the same validation, naming `ctx`; the 8,000-deep one
    // does not get past the XML reader.
    let xml_ctx = |levels: usize| {
        format!(
            "<ctx>{}x{}</ctx>",
            "<a>".repeat(levels),
            "</a>".repeat(levels)
        )
    };
    let (status, answer) = post_soap(&server, soap_push_event(&xml_ctx(40))).await;
    assert_eq!(status, 500, "{answer}");
    assert!(answer.contains("SOAP-ENV:Client"), "{answer}");
    assert!(answer.contains("invalid field `ctx`"), "{answer}");
    assert!(answer.contains("32 levels"), "{answer}");
    let (status, answer) = post_soap(&server, soap_push_event(&xml_ctx(8_000))).await;
    assert_eq!(status, 500, "{answer}");
    assert!(answer.contains("SOAP-ENV:Client"), "{answer}");
    assert!(answer.contains("nested deeper"), "{answer}");
    // And a SOAP ctx of 31 levels is accepted.
    let (status, answer) = post_soap(&server, soap_push_event(&xml_ctx(31))).await;
    assert_eq!(status, 200, "{answer}");

    assert_eq!(
        event_count(&server).await,
        2,
        "only the two accepted events"
    );
    server.assert_healthy().await;
}

#[tokio::test]
async fn sqlite_deep_ctx_is_refused_on_rest_and_soap() {
    deep_ctx_is_refused(None).await;
}

#[tokio::test]
async fn postgres_deep_ctx_is_refused_on_rest_and_soap() {
    let database = PostgresDatabase::create();
    deep_ctx_is_refused(Some(database.url())).await;
}

/// Writes `sql` to the SQLite database at `path` with the `sqlite3` CLI (the statement on its standard
/// input: it is 48 KB long), waiting for the server's write lock if need be.
fn sqlite3(path: &Path, sql: &str) {
    use std::io::Write;
    let mut child = Command::new("sqlite3")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the sqlite3 CLI (apt-get install sqlite3)");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, ".bail on\n.timeout 10000\n{sql};").expect("write to sqlite3");
    drop(stdin);
    let output = child.wait_with_output().expect("sqlite3");
    assert!(
        output.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// (b) A poison event already in the database, due together with 20 ordinary ones.
async fn poison_event_is_set_apart(database: Option<&PostgresDatabase>) {
    let smtp = SmtpServer::start();
    let server = TestServer::start(server_options(&smtp, database.map(|d| d.url())));
    let template = json!({
        "eventType": EVENT_TYPE,
        "channel": "email",
        "from": "Shop <shop@example.com>",
        "subject": "Hello {{ ctx.name }}",
        "text": "Hello {{ ctx.name }}",
    });
    server.put_template("poison-test", &template).await;

    // All due at the same moment, a few seconds ahead: time to poison the first one before any run
    // claims it, and then one run claims all 21 (batch_size 100).
    let due = std::time::SystemTime::now() + Duration::from_secs(5);
    let mut ids = Vec::new();
    for n in 0..=ORDINARY {
        let body = json!({
            "type": EVENT_TYPE,
            "email": format!("u{n}@example.com"),
            "scheduled": rfc3339(due),
            "ctx": { "name": format!("user {n}") },
        });
        let (status, answer) = server.post_json("/api/v1/events", &body, &[]).await;
        assert_eq!(status, 201, "{}", pretty(&answer));
        ids.push(answer["id"].as_str().expect("id").to_owned());
    }
    let poison = ids[0].clone();
    let row_key = poison.parse::<u64>().expect("id") & ((1 << 56) - 1);
    let sql = format!(
        "UPDATE events SET ctx = '{}' WHERE id = {row_key}",
        nested_json(8_000)
    );
    match database {
        Some(database) => {
            psql(database.url(), &sql).unwrap_or_else(|e| panic!("{e}"));
        }
        None => {
            let url = server.database_url();
            let path = url
                .strip_prefix("sqlite://")
                .and_then(|rest| rest.split('?').next())
                .expect("an SQLite URL");
            sqlite3(Path::new(path), &sql);
        }
    }
    assert!(
        std::time::SystemTime::now() < due,
        "the poison was written after the events became due: make `due` later"
    );

    // Readable while still pending: 200, `ctx` null (the listing too).
    let pending = server.event(&poison).await;
    assert_eq!(pending["status"], "pending", "{}", pretty(&pending));
    assert_eq!(pending["ctx"], Value::Null, "{}", pretty(&pending));
    assert_eq!(event_count(&server).await, ORDINARY + 1);

    // The 20 are delivered promptly (a run that failed on the poison would have handed them back, to
    // fail again with it).
    for id in &ids[1..] {
        let event = server
            .wait_event(id, Duration::from_secs(30), "sent", |e| {
                e["status"] == "sent"
            })
            .await;
        assert_eq!(
            event["deliveries"][0]["status"],
            "sent",
            "{}",
            pretty(&event)
        );
    }
    let event = server.wait_final(&poison, Duration::from_secs(10)).await;
    assert_eq!(event["status"], "delivery_failed", "{}", pretty(&event));
    assert_eq!(event["ctx"], Value::Null, "{}", pretty(&event));
    assert!(event["finishedAt"].is_string(), "{}", pretty(&event));
    let deliveries = event["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 1, "{}", pretty(&event));
    let entry = &deliveries[0];
    assert_eq!(entry["attempt"], 0, "{}", pretty(&event));
    assert_eq!(entry["status"], "failed", "{}", pretty(&event));
    assert_eq!(entry["final"], true, "{}", pretty(&event));
    assert_eq!(entry["address"], "u0@example.com", "{}", pretty(&event));
    let error = entry["error"].as_str().expect("the reason");
    assert!(
        error.contains("`ctx`") && error.contains("100 levels"),
        "{error}"
    );
    assert!(
        smtp.messages().len() >= ORDINARY,
        "nothing sent for the poison"
    );

    // It stays set apart: updateEventsStatus does not touch it, nothing retries it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = server.event(&poison).await;
    assert_eq!(again["status"], "delivery_failed");
    assert_eq!(again["deliveries"].as_array().map(Vec::len), Some(1));

    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"mc_events_unreadable_total{queue="realtime"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mc_events_final_total{status="delivery_failed"} 1"#),
        "{metrics}"
    );
    assert!(
        server
            .log_contents()
            .contains("event set apart as delivery_failed"),
        "{}",
        server.log_tail(40)
    );
    let workflow = server.workflow("rtEventsProcessing").await;
    assert_eq!(num(&workflow, "errors"), 0, "{}", pretty(&workflow));
    server.assert_healthy().await;
}

#[tokio::test]
async fn sqlite_poison_event_is_set_apart_and_the_others_are_delivered() {
    poison_event_is_set_apart(None).await;
}

#[tokio::test]
async fn postgres_poison_event_is_set_apart_and_the_others_are_delivered() {
    let database = PostgresDatabase::create();
    poison_event_is_set_apart(Some(&database)).await;
}
