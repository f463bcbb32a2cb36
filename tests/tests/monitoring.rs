//! Adobe's monitoring indicators against a real server, on SQLite and PostgreSQL: `GET /admin/monitoring`
//! and `mc_monitoring_value` / `mc_monitoring_state` in `/metrics` (SPEC "Monitoring").
//!
//! 500 events wait in the batch queue with `batchEventsProcessing` stopped: its `queue_size` is 500, an
//! alert (default 100 / 400). Ten real-time events go through the real SMTP test server, two of them to
//! addresses it refuses (550): `error_rate` is 20 %, an alert (default 1 / 5), throughput is 8 sent per
//! hour, and the three times are measured. Starting the batch workflow again brings `queue_size` to 0, ok.

use message_center_tests::*;
use serde_json::{Value, json};

const EVENT_TYPE: &str = "MONITORED";

fn indicator<'a>(snapshot: &'a Value, queue: &str, name: &str) -> &'a Value {
    snapshot["indicators"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|i| i["queue"] == queue && i["indicator"] == name)
        })
        .unwrap_or_else(|| panic!("no {queue}/{name} in {}", pretty(snapshot)))
}

/// Polls `GET /admin/monitoring` until `done` holds for the snapshot; returns it.
async fn wait_snapshot(server: &TestServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    poll_until(secs(60), what, async || {
        let (status, snapshot) = server.admin_get("/admin/monitoring").await;
        if status != 200 {
            return Err(format!("{status}: {}", pretty(&snapshot)));
        }
        if done(&snapshot) {
            Ok(snapshot)
        } else {
            Err(pretty(&snapshot))
        }
    })
    .await
}

/// The value of the `/metrics` sample `family{queue,indicator}`, whatever the label order.
fn sample(metrics: &str, family: &str, queue: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(family)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        (labels.contains(&format!("queue=\"{queue}\""))
            && labels.contains(&format!("indicator=\"{name}\"")))
        .then(|| value.trim().parse().ok())?
    })
}

async fn indicators_follow_the_queues(database: Option<&PostgresDatabase>) {
    let smtp = SmtpServer::start();
    let mut options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(smtp.port())
        .extra_toml("[monitoring]\nrefresh = \"200ms\"\n");
    if let Some(database) = database {
        options = options.database_url(database.url());
    }
    let server = TestServer::start(options);
    server
        .put_template(
            "monitored",
            &json!({
                "eventType": EVENT_TYPE,
                "channel": "email",
                "from": "Shop <shop@example.com>",
                "subject": "Hello {{ ctx.n }}",
                "text": "Hello {{ ctx.n }}",
            }),
        )
        .await;

    // The batch queue fills with its workflow stopped.
    let (status, answer) = server
        .admin_post("/admin/workflows/batchEventsProcessing/stop")
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let events: Vec<Value> = (0..500)
        .map(|n| json!({ "type": EVENT_TYPE, "email": format!("batch{n}@example.com"), "ctx": { "n": n } }))
        .collect();
    let (status, answer) = server
        .post_json("/api/v1/events/batch", &json!({ "events": events }), &[])
        .await;
    assert_eq!(status, 201, "{}", pretty(&answer));

    let snapshot = wait_snapshot(&server, "batch queue_size 500", |s| {
        indicator(s, "batch", "queue_size")["value"] == 500.0
    })
    .await;
    let size = indicator(&snapshot, "batch", "queue_size");
    assert_eq!(size["state"], "alert", "{}", pretty(&snapshot));
    assert_eq!(
        (size["warning"].clone(), size["alert"].clone()),
        (json!(100.0), json!(400.0))
    );
    assert_eq!(snapshot["window"], "1h");
    assert_eq!(
        indicator(&snapshot, "realtime", "queue_size")["state"],
        "ok"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "mc_monitoring_value", "batch", "queue_size"),
        Some(500.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mc_monitoring_state", "batch", "queue_size"),
        Some(2.0),
        "{metrics}"
    );

    // Ten real-time events, two refused by the relay.
    let ids = server.push_realtime_events(EVENT_TYPE, 10, 2).await;
    for id in &ids {
        server.wait_final(id, secs(60)).await;
    }
    let snapshot = wait_snapshot(&server, "real-time error_rate 20 %", |s| {
        indicator(s, "realtime", "error_rate")["value"] == 20.0
            && indicator(s, "realtime", "avg_processing_time")["value"].is_number()
    })
    .await;
    assert_eq!(
        indicator(&snapshot, "realtime", "error_rate")["state"],
        "alert"
    );
    assert_eq!(
        indicator(&snapshot, "realtime", "throughput")["value"],
        8.0,
        "8 sent in a 1 h window"
    );
    let seconds = |name: &str| {
        indicator(&snapshot, "realtime", name)["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {}", pretty(&snapshot)))
    };
    let (queue, delivery, processing) = (
        seconds("avg_queue_time"),
        seconds("avg_delivery_time"),
        seconds("avg_processing_time"),
    );
    for (name, value) in [
        ("queue", queue),
        ("delivery", delivery),
        ("processing", processing),
    ] {
        assert!(
            (0.0..60.0).contains(&value),
            "avg {name} time {value} s: {}",
            pretty(&snapshot)
        );
    }
    assert!(
        processing >= delivery,
        "push → accepted includes linked → accepted: {}",
        pretty(&snapshot)
    );
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "mc_monitoring_value", "realtime", "error_rate"),
        Some(20.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mc_monitoring_state", "realtime", "error_rate"),
        Some(2.0),
        "{metrics}"
    );

    // The batch workflow drains its queue: back to ok.
    let (status, answer) = server
        .admin_post("/admin/workflows/batchEventsProcessing/start")
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let snapshot = wait_snapshot(&server, "batch queue_size 0", |s| {
        indicator(s, "batch", "queue_size")["value"] == 0.0
    })
    .await;
    assert_eq!(indicator(&snapshot, "batch", "queue_size")["state"], "ok");
}

#[tokio::test]
async fn sqlite_indicators_follow_the_queues() {
    indicators_follow_the_queues(None).await;
}

#[tokio::test]
async fn postgres_indicators_follow_the_queues() {
    let database = PostgresDatabase::create();
    indicators_follow_the_queues(Some(&database)).await;
}
