//! PostgreSQL stopped for 10 s while clients push (issue "Hardening", item 6). The database is a private
//! cluster that the test creates, stops and starts itself (`initdb` / `pg_ctl` of the machine's
//! PostgreSQL), never the shared one on 5432.
//!
//! What must hold: a push during the outage is answered `503 unavailable` (never a hang past the pool's
//! connect timeout, never a `201` for an event that is not stored, never a `500`); when the database comes
//! back the server recovers by itself; every event acknowledged with `201`, before, during or after, is
//! stored and delivered once the workflows resume.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use message_center_tests::*;
use serde_json::{Value, json};

/// Concurrent pushing clients.
const PUSHERS: usize = 8;
/// How long the database stays down.
const OUTAGE: Duration = Duration::from_secs(10);
/// The server's `[database] connect_timeout` (its default): the longest a push waits for a connection.
const CONNECT_TIMEOUT_SECS: u64 = 5;

/// One push and how it went.
#[derive(Debug, Clone)]
struct Push {
    sent_at: Instant,
    answered_at: Instant,
    status: u16,
    body: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_load_gets_503s_and_the_server_recovers_losing_nothing() {
    let cluster = PrivatePostgres::start();
    let smtp = SmtpServer::start();
    let server = TestServer::start(
        ServerOptions::new(PluginDir::new())
            .processing_workflows()
            .email_channel(smtp.port())
            .database_url(&cluster.url()),
    );
    put_template(&server).await;

    let pushes: Arc<Mutex<Vec<Push>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pushers = Vec::new();
    for pusher in 0..PUSHERS {
        let api = server.api();
        let pushes = Arc::clone(&pushes);
        let stop = Arc::clone(&stop);
        pushers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({
                    "type": "OUTAGE",
                    "email": format!("p{pusher}-{n}@example.com"),
                    "ctx": { "pusher": pusher, "n": n },
                });
                let sent_at = Instant::now();
                let (status, answer) = api.post_json("/api/v1/events", &body, &[]).await;
                let answered_at = Instant::now();
                pushes.lock().expect("pushes").push(Push {
                    sent_at,
                    answered_at,
                    status,
                    body: answer,
                });
                n += 1;
                // Open-ish loop: about 100 pushes/s per client while the database answers.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopping = Instant::now();
    cluster.stop();
    let stopped = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let restarting = Instant::now();
    cluster.start_again();
    let restarted = Instant::now();

    // The server recovers by itself: pushes succeed again without a restart.
    wait_for(
        secs(60),
        "a push to succeed after the database came back",
        async || {
            let list = pushes.lock().expect("pushes");
            list.iter()
                .any(|p| p.sent_at > restarted && p.status == 201)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for pusher in pushers {
        pusher.await.expect("pusher");
    }
    let pushes = pushes.lock().expect("pushes").clone();

    // Every answer is a 201 or a 503 `unavailable`; never a 500, a transport error or a hang.
    let bound = Duration::from_secs(CONNECT_TIMEOUT_SECS * 3 + 2);
    for push in &pushes {
        let took = push.answered_at - push.sent_at;
        assert!(
            took <= bound,
            "a push took {took:?} (bound {bound:?}): {}",
            pretty(&push.body)
        );
        match push.status {
            201 => {}
            503 => assert_eq!(
                push.body["error"]["code"],
                "unavailable",
                "{}",
                pretty(&push.body)
            ),
            other => panic!("a push got {other}: {}", pretty(&push.body)),
        }
    }
    // While the database was down (stopped, not yet restarting) nothing was acknowledged, and what was
    // pushed then was refused (a push sent during the outage may still succeed if its turn to commit
    // came after the restart: it is then durable).
    let acknowledged_while_down = pushes
        .iter()
        .filter(|p| p.status == 201 && p.answered_at >= stopped && p.answered_at <= restarting)
        .count();
    assert_eq!(
        acknowledged_while_down, 0,
        "pushes were acknowledged while the database was down"
    );
    let refused: Vec<&Push> = pushes.iter().filter(|p| p.status == 503).collect();
    assert!(!refused.is_empty(), "no push was refused during the outage");
    for push in &refused {
        assert!(
            push.answered_at >= stopping && push.sent_at <= restarted,
            "a push was refused while the database was up: sent {:?} after the stop began, answered \
             {:?} after it, the restart done {:?} after it: {}",
            push.sent_at.saturating_duration_since(stopping),
            push.answered_at.saturating_duration_since(stopping),
            restarted - stopping,
            pretty(&push.body)
        );
    }
    let before = pushes.iter().filter(|p| p.answered_at < stopping).count();
    let after = pushes
        .iter()
        .filter(|p| p.sent_at > restarted && p.status == 201)
        .count();
    assert!(
        before > 0 && after > 0,
        "{before} pushes before, {after} after"
    );

    // Nothing acknowledged is lost, and the workflows resumed: each acknowledged event is delivered.
    let acknowledged: Vec<String> = pushes
        .iter()
        .filter(|p| p.status == 201)
        .map(|p| p.body["id"].as_str().expect("id").to_owned())
        .collect();
    let statuses = wait_all_sent(&server, &acknowledged).await;
    assert!(statuses.iter().all(|s| s == "sent"), "{statuses:?}");
    let messages = smtp.wait_for_messages(acknowledged.len(), secs(60)).await;
    assert!(
        messages.len() >= acknowledged.len(),
        "{} messages for {} acknowledged events",
        messages.len(),
        acknowledged.len()
    );
    let (status, ready) = server.admin_get("/readyz").await;
    assert_eq!(status, 200, "{}", pretty(&ready));
    eprintln!(
        "pushes: {} in all, {before} before the outage, {} refused with 503 during it, {after} \
         acknowledged after; {} acknowledged events delivered",
        pushes.len(),
        refused.len(),
        acknowledged.len()
    );
}

/// `PUT /api/v1/templates/outage` for the `OUTAGE` email events, published.
async fn put_template(server: &TestServer) {
    let body = json!({
        "eventType": "OUTAGE",
        "channel": "email",
        "subject": "Outage {{ ctx.n }}",
        "text": "Pusher {{ ctx.pusher }}, event {{ ctx.n }}",
    });
    server.put_template("outage", &body).await;
}

/// Polls until every one of `ids` is final; their statuses.
async fn wait_all_sent(server: &TestServer, ids: &[String]) -> Vec<String> {
    let deadline = Instant::now() + secs(120);
    let mut statuses = Vec::with_capacity(ids.len());
    for id in ids {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = server.wait_final(id, left).await;
        statuses.push(event["status"].as_str().unwrap_or("").to_owned());
    }
    statuses
}
