//! The notification is written in the transaction that makes the event final: events finalised while
//! `webhookDelivery` is disabled, then a SIGKILL of the server, and a restart with it enabled deliver every
//! notification (at least once: counted by unique `webhook-id`), none lost.

use std::collections::BTreeSet;

use super::*;

const EVENTS: usize = 20;

on_both_databases!(sigkill_before_notifying_loses_nothing);

async fn sigkill_before_notifying_loses_nothing(backend: Backend) {
    let held = Setup {
        delivery_enabled: false,
        ..Setup::default()
    };
    let mut env = Env::start(backend, held).await;
    env.endpoint("all", "ok", None).await;
    let mut ids = BTreeSet::new();
    for n in 0..EVENTS {
        ids.insert(
            env.push(&format!("ok-crash-{n}@example.com"), json!({}))
                .await,
        );
    }
    for id in &ids {
        let event = env.server.wait_final(id, TIMEOUT).await;
        assert_eq!(event["status"], "sent", "{}", pretty(&event));
    }
    // Final, and their notifications are waiting in the outbox; none was sent.
    let pending = wait_history(&env.server, "all", "one pending per event", |all| {
        all.len() == EVENTS
    })
    .await;
    assert!(
        pending.iter().all(|d| d["status"] == "pending"),
        "{}",
        pretty(&json!(pending))
    );
    assert!(
        env.receiver.requests().is_empty(),
        "webhookDelivery is disabled"
    );

    env.restart(&Setup::default());
    let received = wait_unique(&env.receiver, "all", EVENTS).await;
    let notified: BTreeSet<String> = received.values().map(|r| event_id_of(&r[0])).collect();
    assert_eq!(notified, ids, "every final event notified");
    assert!(
        received
            .values()
            .all(|r| body_of(&r[0])["type"] == "event.sent"),
        "{}",
        pretty(&json!(received))
    );
    let pending_ids: BTreeSet<&str> = pending.iter().filter_map(|d| d["id"].as_str()).collect();
    let received_ids: BTreeSet<&str> = received.keys().map(String::as_str).collect();
    assert_eq!(
        received_ids, pending_ids,
        "the notifications written before the crash are the ones sent after it"
    );
    wait_history(&env.server, "all", "all delivered", |all| {
        all.len() == EVENTS && all.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert_all_verified(&env.receiver);
}
