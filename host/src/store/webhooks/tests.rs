//! The outbox against both backends: written with the final status (and only for endpoints that existed
//! and subscribe), claimed once, settled, replayed.

use std::time::Duration;

use chrono::Utc;
use mc_plugin_api::services::Queue;
use mc_plugin_api::{NotificationStatus, WebhookEventType};

use super::{EndpointChange, EndpointPut, HistoryFilter, NewAttempt, NextState};
use crate::store::Store;
use crate::store::testing::{finalise_all, pg_pair, push, sqlite_store};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn endpoint(store: &Store, name: &str, events: Option<Vec<WebhookEventType>>) -> i64 {
    let change = EndpointChange {
        url: format!("http://127.0.0.1:9/{name}"),
        events,
        enabled: None,
        secret: None,
    };
    match store
        .put_webhook_endpoint(name, change, SECRET)
        .await
        .unwrap()
    {
        EndpointPut::Created(e) => e.id,
        EndpointPut::Updated(e) => panic!("{} existed", e.name),
    }
}

async fn history(store: &Store, name: &str) -> Vec<super::HistoryEntry> {
    let endpoint = store.webhook_endpoint(name).await.unwrap().unwrap();
    let filter = HistoryFilter {
        limit: 100,
        ..Default::default()
    };
    store.webhook_history(&endpoint, &filter).await.unwrap()
}

async fn the_outbox_follows_final_statuses(store: Store) {
    // Finished before any endpoint: never notified.
    push(&store, Queue::Realtime, 1).await;
    let early = finalise_all(&store, "inst/pid-1/w#1", 10).await;
    assert_eq!(early.len(), 1);

    endpoint(&store, "all", None).await;
    endpoint(&store, "sent-only", Some(vec![WebhookEventType::EventSent])).await;
    push(&store, Queue::Realtime, 2).await;
    let late = finalise_all(&store, "inst/pid-1/w#2", 10).await;
    assert_eq!(late.len(), 2);

    let all = history(&store, "all").await;
    assert_eq!(all.len(), 2, "one per event finished after the endpoint");
    assert!(
        all.iter()
            .all(|e| !early.contains(&e.notification.event_id))
    );
    assert!(all.iter().all(|e| {
        e.notification.event_type == "event.not_taken_into_account"
            && e.notification.status == NotificationStatus::Pending.as_str()
            && e.attempts.is_empty()
    }));
    assert!(history(&store, "sent-only").await.is_empty());

    // Claimed once: a second claimer finds nothing while the lease holds.
    let lease = Duration::from_secs(60);
    let claimed = store
        .claim_webhook_notifications(10, "inst/pid-1/d#1", lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        store
            .claim_webhook_notifications(10, "inst/pid-2/d#1", lease)
            .await
            .unwrap()
            .is_empty()
    );

    // One delivered, one retried; a lost claim records nothing.
    let attempt = NewAttempt {
        at: Utc::now(),
        http_status: Some(204),
        duration_ms: 3,
        ..Default::default()
    };
    let first = claimed[0].notification.id;
    let second = claimed[1].notification.id;
    let lost = store
        .record_webhook_attempts("someone-else", &[(first, attempt.clone())], |_, _| {
            NextState::Delivered
        })
        .await
        .unwrap();
    assert!(lost.len() == 1 && lost[0].is_none());
    // Both in one call; the same notification twice is recorded once.
    let later = Utc::now() + chrono::Duration::seconds(3600);
    let nexts = [
        NextState::Delivered,
        NextState::Retry(later),
        NextState::Delivered,
    ];
    let recorded = store
        .record_webhook_attempts(
            "inst/pid-1/d#1",
            &[
                (first, attempt.clone()),
                (
                    second,
                    NewAttempt {
                        http_status: Some(500),
                        ..attempt.clone()
                    },
                ),
                (first, attempt.clone()),
            ],
            |index, made| {
                assert_eq!(made, 1, "the first attempt of each");
                nexts[index].clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(recorded.len(), 3);
    let done = recorded[0].clone().unwrap();
    assert_eq!(done.endpoint, "all");
    assert_eq!(done.final_status, Some(NotificationStatus::Delivered));
    let retried = recorded[1].clone().unwrap();
    assert_eq!(retried.final_status, None);
    assert!(recorded[2].is_none());
    let all = history(&store, "all").await;
    assert_eq!(all[0].notification.status, "delivered");
    assert_eq!(all[0].attempts.len(), 1);
    assert_eq!(all[1].notification.status, "pending");
    assert_eq!(all[1].notification.attempts, 1);
    assert_eq!(all[1].attempts[0].http_status, Some(500));
    // Not due before its time, due again after a retry.
    assert!(
        store
            .claim_webhook_notifications(10, "inst/pid-1/d#2", lease)
            .await
            .unwrap()
            .is_empty()
    );
    let endpoint_row = store.webhook_endpoint("all").await.unwrap().unwrap();
    assert!(
        store
            .retry_webhook_notification(&endpoint_row, second)
            .await
            .unwrap()
    );
    let again = store
        .claim_webhook_notifications(10, "inst/pid-1/d#3", lease)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);

    // 410: failed, and the endpoint disabled with its reason; nothing of it is claimed any more.
    store
        .record_webhook_attempts(
            "inst/pid-1/d#3",
            &[(
                second,
                NewAttempt {
                    http_status: Some(410),
                    ..attempt.clone()
                },
            )],
            |_, made| {
                assert_eq!(made, 2, "the retried notification's second attempt");
                NextState::Failed {
                    disable_endpoint: Some("gone".to_owned()),
                }
            },
        )
        .await
        .unwrap()[0]
        .clone()
        .unwrap();
    let disabled = store.webhook_endpoint("all").await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("gone"));

    // Replay: every event final in the range, the early one included, as new notifications.
    let queued = store
        .replay_webhook(
            &disabled,
            Utc::now() - chrono::Duration::seconds(3600),
            Utc::now() + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(queued, 3);
    assert!(
        store
            .claim_webhook_notifications(10, "inst/pid-1/d#4", lease)
            .await
            .unwrap()
            .is_empty(),
        "a disabled endpoint's notifications wait"
    );
    let pending = store.pending_webhook_notifications().await.unwrap();
    let all_pending = pending.iter().find(|p| p.endpoint == "all").unwrap();
    assert_eq!(all_pending.pending, 3);
    assert!(all_pending.oldest.is_some());

    // Deleting the endpoint takes its outbox and history.
    assert!(store.delete_webhook_endpoint("all").await.unwrap());
    assert!(
        store
            .pending_webhook_notifications()
            .await
            .unwrap()
            .iter()
            .all(|p| p.endpoint != "all")
    );
}

#[tokio::test]
async fn sqlite_outbox_follows_final_statuses() {
    let (_dir, store) = sqlite_store().await;
    the_outbox_follows_final_statuses(store).await;
}

#[tokio::test]
async fn postgres_outbox_follows_final_statuses() {
    let (_pg, store, _other) = pg_pair().await;
    the_outbox_follows_final_statuses(store).await;
}
