//! Per-domain throttling end to end (`[channels.email.domains."<domain>"] max_per_minute`): with 60 per
//! minute for one domain, 120 events to it and 120 to another, pushed together; the other domain's are
//! all sent at once, the throttled domain's at the configured pace (judged on the real SMTP server's
//! receive times, about two minutes), and none fails or uses a retry. On SQLite and on PostgreSQL.

use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

const SLOW: usize = 120;
const FAST: usize = 120;
const PER_MINUTE: usize = 60;
/// 119 one-second gaps, with room for a busy machine.
const TIMEOUT: Duration = Duration::from_secs(210);

fn received_millis(messages: &[Value]) -> Vec<i64> {
    let mut times: Vec<i64> = messages
        .iter()
        .map(|m| rfc3339_millis(m["receivedAt"].as_str().expect("receivedAt")))
        .collect();
    times.sort_unstable();
    times
}

async fn the_throttled_domain_is_paced_and_the_other_is_not(database: Option<PostgresDatabase>) {
    let smtp = SmtpServer::start();
    let mut options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(smtp.port())
        .with_email_channel(|email| {
            email.extra_toml = format!(
                "\n[channels.email.domains.\"slow.test\"]\nmax_per_minute = {PER_MINUTE}\nmax_connections = 2\n"
            );
        });
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
    // Interleaved, so that neither domain is simply first in line.
    let events: Vec<Value> = (0..FAST)
        .flat_map(|i| {
            let fast = json!({ "type": "HELLO", "email": format!("f{i}@fast.test") });
            let slow =
                (i < SLOW).then(|| json!({ "type": "HELLO", "email": format!("s{i}@SLOW.test") }));
            std::iter::once(fast).chain(slow)
        })
        .collect();
    let (status, answer) = server
        .post_json("/api/v1/events/batch", &json!({ "events": events }), &[])
        .await;
    assert_eq!(status, 201, "{answer}");
    let ids: Vec<String> = answer["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();

    let domain_of = |m: &Value| -> String {
        m["rcptTos"][0]
            .as_str()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    // The other domain's all arrive while the throttled one is still at the start of its pace.
    let fast = wait_for(TIMEOUT, "every fast.test message", async || {
        let messages = smtp.messages();
        let (fast, slow): (Vec<Value>, Vec<Value>) = messages
            .into_iter()
            .partition(|m| domain_of(m) == "fast.test");
        (fast.len() >= FAST).then_some((fast, slow.len()))
    })
    .await;
    assert!(
        fast.1 < SLOW / 3,
        "fast.test was not held up behind slow.test: {} slow.test messages were already in",
        fast.1
    );

    let all = smtp.wait_for_messages(FAST + SLOW, TIMEOUT).await;
    let slow: Vec<Value> = all
        .iter()
        .filter(|m| domain_of(m) == "slow.test")
        .cloned()
        .collect();
    assert_eq!(slow.len(), SLOW, "each slow.test event sent once");
    let times = received_millis(&slow);
    // At most 60 (+1 for the first, +1 for timing jitter) in any 60 s window ...
    for (i, start) in times.iter().enumerate() {
        if let Some(end) = times.get(i + PER_MINUTE + 2) {
            assert!(
                end - start >= 60_000,
                "{} messages within {} ms from #{i}",
                PER_MINUTE + 3,
                end - start
            );
        }
    }
    // ... and evenly spaced: at most 12 in any 10 s window.
    for (i, start) in times.iter().enumerate() {
        if let Some(end) = times.get(i + 12) {
            assert!(
                end - start >= 10_000,
                "13 messages within {} ms from #{i}",
                end - start
            );
        }
    }

    // None failed, none used a retry.
    for id in &ids {
        let event = server.wait_final(id, TIMEOUT).await;
        assert_eq!(event["status"], "sent", "{}", pretty(&event));
        let entries = event["deliveries"].as_array().expect("deliveries");
        assert_eq!(entries.len(), 1, "one attempt: {}", pretty(&event));
        assert_eq!(entries[0]["attempt"], 1, "{}", pretty(&event));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    the_throttled_domain_is_paced_and_the_other_is_not(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    the_throttled_domain_is_paced_and_the_other_is_not(Some(PostgresDatabase::create())).await;
}
