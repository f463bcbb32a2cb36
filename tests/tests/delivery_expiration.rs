//! An event's `expiration` is checked again before every delivery attempt: a retry due after it makes
//! the event `expired` (the delivery-log entry says why) instead of sending it late. The relay is the real
//! test SMTP server, answering `451` to `tempfail…` recipients; on SQLite and on PostgreSQL.

use std::time::{Duration, SystemTime};

use message_center_tests::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn a_retry_after_the_expiration_expires_the_event(database: Option<PostgresDatabase>) {
    let smtp = SmtpServer::start();
    let mut options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(smtp.port())
        .email_retries(20, "500ms")
        .email_retry_limits("500ms", "10m");
    if let Some(db) = &database {
        options = options.database_url(db.url());
    }
    let server = TestServer::start(options);
    server
        .put_template(
            "hello",
            &json!({ "eventType": "HELLO", "channel": "email", "subject": "Hello", "text": "Hello" }),
        )
        .await;
    let to = "tempfail-expiring@dest.test";
    let expiration = SystemTime::now() + Duration::from_secs(3);
    let body = json!({ "type": "HELLO", "email": to, "expiration": rfc3339(expiration) });
    let (status, answer) = server.post_json("/api/v1/events", &body, &[]).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().expect("an id").to_owned();

    let event = server.wait_final(&id, TIMEOUT).await;
    assert_eq!(event["status"], "expired", "{}", pretty(&event));
    let entries = event["deliveries"].as_array().expect("deliveries");
    assert!(
        entries.len() >= 2,
        "it was tried, then retried: {}",
        pretty(&event)
    );
    let last = entries
        .iter()
        .max_by_key(|d| d["attempt"].as_u64())
        .expect("an entry");
    let error = last["error"].as_str().unwrap_or("");
    assert!(
        error.contains("expired") && error.contains("not sent"),
        "the last entry says why: {}",
        pretty(&event)
    );
    // Every RCPT the relay saw came before the expiration (give or take the send in flight at that
    // moment), and later retries sent nothing.
    let attempts = smtp.attempts_to(to);
    assert!(!attempts.is_empty(), "the relay was tried");
    let latest = attempts
        .iter()
        .filter_map(|a| a["at"].as_str())
        .max()
        .expect("attempt times")
        .to_owned();
    assert!(
        latest < rfc3339(expiration + Duration::from_secs(1)),
        "no attempt after the expiration ({}): the last at {latest}",
        rfc3339(expiration)
    );
    assert!(smtp.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    a_retry_after_the_expiration_expires_the_event(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    a_retry_after_the_expiration_expires_the_event(Some(PostgresDatabase::create())).await;
}
