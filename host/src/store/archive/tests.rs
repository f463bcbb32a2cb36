use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use mc_plugin_api::Queue;

use super::*;
use crate::store::testing::{finalise_all, pg_pair, push, sqlite_store};

/// Finalisers on two pools race a reader that follows the feed with its cursor: the reader sees
/// every event exactly once. With numbers handed out in commit order it cannot skip an event whose
/// transaction committed after a later-numbered one was read.
async fn feed_reader_misses_nothing(first: Store, second: Store) {
    const EVENTS: usize = 900;
    push(&first, Queue::Realtime, EVENTS).await;
    let mut finalisers = Vec::new();
    for (instance, store) in [("A", &first), ("B", &second)] {
        for worker in 0..3 {
            let store = store.clone();
            finalisers.push(tokio::spawn(async move {
                finalise_all(&store, &format!("{instance}/{worker}"), 7)
                    .await
                    .len()
            }));
        }
    }
    let reader = {
        let store = second.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut cursor = FeedCursor::default();
            let mut last_seq = 0;
            while seen.len() < EVENTS {
                let page = store.archive_feed_page(cursor, 50).await.expect("page");
                for (event, _) in &page {
                    let seq = event.archive_seq.expect("a feed event has a number");
                    assert!(
                        seq >= last_seq,
                        "feed order went back: {seq} after {last_seq}"
                    );
                    last_seq = seq;
                    seen.push(event.id);
                }
                if let Some((last, _)) = page.last() {
                    cursor = FeedCursor::of(last);
                } else {
                    tokio::task::yield_now().await;
                }
            }
            seen
        })
    };
    let mut finalised = 0;
    for task in finalisers {
        finalised += task.await.expect("finaliser");
    }
    assert_eq!(finalised, EVENTS);
    let seen = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader saw every event")
        .expect("reader");
    let distinct: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), EVENTS, "events read, duplicates included");
    assert_eq!(distinct.len(), EVENTS, "an event was read twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_feed_reader_misses_nothing() {
    let (_pg, first, second) = pg_pair().await;
    feed_reader_misses_nothing(first, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_feed_reader_misses_nothing() {
    let (_dir, store) = sqlite_store().await;
    feed_reader_misses_nothing(store.clone(), store).await;
}

/// The purge deletes only acknowledged events (and their delivery logs), never past the cutoff.
async fn purge_waits_for_the_archive(store: Store) {
    push(&store, Queue::Realtime, 10).await;
    finalise_all(&store, "A", 3).await;
    let page = store
        .archive_feed_page(FeedCursor::default(), 100)
        .await
        .unwrap();
    assert_eq!(page.len(), 10);
    let soon = Utc::now() + chrono::Duration::seconds(60);
    let past = Utc::now() - chrono::Duration::seconds(60);

    assert_eq!(
        store.purge_finished_events(soon, true, 100).await.unwrap(),
        0,
        "nothing acknowledged"
    );
    assert_eq!(
        store.purge_finished_events(past, false, 100).await.unwrap(),
        0,
        "too recent"
    );

    let fourth = FeedCursor::of(&page[3].0);
    store.acknowledge_archive(fourth).await.unwrap();
    store
        .acknowledge_archive(FeedCursor::default())
        .await
        .unwrap();
    assert_eq!(
        store.archive_acknowledged().await.unwrap(),
        fourth,
        "never backwards"
    );
    assert_eq!(
        store.purge_finished_events(soon, true, 100).await.unwrap(),
        4
    );
    let left = store
        .archive_feed_page(FeedCursor::default(), 100)
        .await
        .unwrap();
    assert_eq!(left.len(), 6);
    assert_eq!(
        left[0].0.id, page[4].0.id,
        "the first unacknowledged event is kept"
    );
    assert_eq!(
        store.purge_finished_events(soon, false, 100).await.unwrap(),
        6
    );
}

#[tokio::test]
async fn postgres_purge_waits_for_the_archive() {
    let (_pg, store, _) = pg_pair().await;
    purge_waits_for_the_archive(store).await;
}

#[tokio::test]
async fn sqlite_purge_waits_for_the_archive() {
    let (_dir, store) = sqlite_store().await;
    purge_waits_for_the_archive(store).await;
}

fn archived(
    instance: &str,
    id: i64,
    status: &str,
    template: Option<&str>,
) -> archive_event::ActiveModel {
    let now = Utc::now();
    archive_event::ActiveModel {
        instance_name: Set(instance.to_owned()),
        event_id: Set(id),
        queue: Set("realtime".to_owned()),
        status: Set(status.to_owned()),
        event_type: Set("ORDER".to_owned()),
        channel: Set("email".to_owned()),
        email: Set(Some("a@example.com".to_owned())),
        mobile_phone: Set(None),
        external_id: Set(None),
        language: Set(None),
        ctx: Set(serde_json::json!({})),
        template_name: Set(template.map(str::to_owned)),
        template_version: Set(template.map(|_| 1)),
        delivery_logs: Set(serde_json::json!([])),
        created_at: Set(now),
        linked_at: Set(Some(now)),
        accepted_at: Set((status == "sent").then_some(now)),
        finished_at: Set(Some(now)),
        archived_at: Set(now),
        finished_day: Set(now.format("%Y-%m-%d").to_string()),
    }
}

/// A page stored twice changes nothing; the cursor moves only from where the caller read.
async fn pages_are_upserted(store: Store) {
    let rows = || {
        vec![
            archived("exec-1", 1, "sent", Some("welcome")),
            archived("exec-1", 2, "sent", Some("welcome")),
            archived("exec-1", 3, "not_taken_into_account", None),
        ]
    };
    let first = store
        .store_archive_page("exec-1", None, rows(), "5.3")
        .await
        .unwrap();
    assert_eq!(
        first,
        StoredPage {
            inserted: 3,
            archived_total: 3
        }
    );
    let stale = store
        .store_archive_page("exec-1", None, rows(), "5.3")
        .await;
    assert!(
        matches!(stale, Err(ArchiveStoreError::CursorMoved { .. })),
        "{stale:?}"
    );
    let again = store
        .store_archive_page("exec-1", Some("5.3"), rows(), "5.3")
        .await
        .unwrap();
    assert_eq!(
        again,
        StoredPage {
            inserted: 0,
            archived_total: 3
        }
    );
    store
        .store_archive_page(
            "exec-2",
            None,
            vec![archived("exec-2", 1, "sent", Some("welcome"))],
            "1.1",
        )
        .await
        .unwrap();
    assert_eq!(
        store.archive_cursor("exec-1").await.unwrap().as_deref(),
        Some("5.3")
    );

    let all = store
        .query_archive(&ArchiveFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4, "same id on two instances: two rows");
    let page = store
        .query_archive(&ArchiveFilter {
            limit: 2,
            after: Some((1, "exec-1".to_owned())),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<(i64, &str)> = page
        .iter()
        .map(|r| (r.event_id, r.instance_name.as_str()))
        .collect();
    assert_eq!(keys, vec![(1, "exec-2"), (2, "exec-1")]);

    let report = store
        .archive_report(&ArchiveFilter::default())
        .await
        .unwrap();
    let counts: Vec<(Option<&str>, &str, i64)> = report
        .iter()
        .map(|r| (r.template.as_deref(), r.status.as_str(), r.count))
        .collect();
    assert_eq!(
        counts,
        vec![
            (None, "not_taken_into_account", 1),
            (Some("welcome"), "sent", 3)
        ]
    );
    store.record_archive_error("exec-1", "down").await.unwrap();
    let cursors = store.archive_cursors().await.unwrap();
    assert_eq!(cursors[0].last_error.as_deref(), Some("down"));
    assert_eq!(
        cursors[0].cursor.as_deref(),
        Some("5.3"),
        "an error keeps the cursor"
    );
    assert_eq!(cursors[0].archived_events, 3);

    // An event back in the feed after a bounce replaces its archived copy, and is not counted again.
    let bounced = store
        .store_archive_page(
            "exec-1",
            Some("5.3"),
            vec![archived("exec-1", 2, "delivery_failed", Some("welcome"))],
            "9.2",
        )
        .await
        .unwrap();
    assert_eq!(
        bounced,
        StoredPage {
            inserted: 0,
            archived_total: 3
        }
    );
    let row = store
        .query_archive(&ArchiveFilter {
            status: Some("delivery_failed".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(row.len(), 1);
    assert_eq!(
        (row[0].event_id, row[0].instance_name.as_str()),
        (2, "exec-1")
    );
}

#[tokio::test]
async fn postgres_pages_are_upserted() {
    let (_pg, store, _) = pg_pair().await;
    pages_are_upserted(store).await;
}

#[tokio::test]
async fn sqlite_pages_are_upserted() {
    let (_dir, store) = sqlite_store().await;
    pages_are_upserted(store).await;
}

#[test]
fn cursors_round_trip_and_refuse_garbage() {
    let cursor: FeedCursor = "12.345".parse().unwrap();
    assert_eq!(
        cursor,
        FeedCursor {
            seq: 12,
            row_key: 345
        }
    );
    assert_eq!(cursor.to_string(), "12.345");
    for bad in ["", "12", "a.b", "-1.2", "1.-2", "1.2.3"] {
        assert!(bad.parse::<FeedCursor>().is_err(), "{bad}");
    }
}
