//! The report queries on both backends, over archive rows with known times: the buckets, the sums of
//! the three times and the queue's moves are the same on SQLite and PostgreSQL.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;

use super::*;
use crate::db::entities::archive_event;
use crate::store::testing::{pg_pair, sqlite_store};

/// 2026-12-03T09:00:00Z, an hour boundary.
fn nine() -> DateTime<Utc> {
    DateTime::from_timestamp(1_796_288_400, 0).expect("time")
}

/// An archived event of `instance` pushed `pushed` seconds after nine, linked 2 s later (unless
/// `not_taken_into_account`), accepted 3 s after that when `sent`.
fn row(
    instance: &str,
    id: i64,
    event_type: &str,
    status: EventStatus,
    pushed: i64,
) -> archive_event::ActiveModel {
    let created = nine() + Duration::seconds(pushed);
    let linked =
        (status != EventStatus::NotTakenIntoAccount).then(|| created + Duration::seconds(2));
    let accepted = (status == EventStatus::Sent).then(|| created + Duration::seconds(5));
    let finished = created + Duration::seconds(5);
    archive_event::ActiveModel {
        instance_name: Set(instance.to_owned()),
        event_id: Set(id),
        queue: Set("realtime".to_owned()),
        status: Set(status.as_str().to_owned()),
        event_type: Set(event_type.to_owned()),
        channel: Set("email".to_owned()),
        email: Set(Some("a@example.com".to_owned())),
        mobile_phone: Set(None),
        external_id: Set(None),
        language: Set(None),
        ctx: Set(serde_json::json!({})),
        template_name: Set(None),
        template_version: Set(None),
        delivery_logs: Set(serde_json::json!([])),
        created_at: Set(created),
        linked_at: Set(linked),
        accepted_at: Set(accepted),
        finished_at: Set(Some(finished)),
        archived_at: Set(finished),
        finished_day: Set(finished.format("%Y-%m-%d").to_string()),
    }
}

fn scope(instance: Option<&str>) -> ReportScope {
    ReportScope {
        from: nine(),
        to: nine() + Duration::hours(2),
        bucket_seconds: 3600,
        instance: instance.map(str::to_owned),
        channel: None,
        event_type: None,
    }
}

async fn reports_add_up(store: Store) {
    let rows = vec![
        row("exec-1", 1, "ORDER", EventStatus::Sent, 10),
        row("exec-1", 2, "ORDER", EventStatus::Sent, 30),
        row("exec-1", 3, "ORDER", EventStatus::DeliveryFailed, 30),
        row("exec-1", 4, "RESET", EventStatus::NotTakenIntoAccount, 3650),
        // Pushed before the period, linked inside it: waiting when it begins.
        row("exec-1", 5, "ORDER", EventStatus::Sent, -1),
    ];
    store
        .store_archive_page("exec-1", None, rows, "1.5")
        .await
        .expect("store");
    let rows = vec![row("exec-2", 1, "ORDER", EventStatus::Sent, 90)];
    store
        .store_archive_page("exec-2", None, rows, "1.1")
        .await
        .expect("store");

    let outcomes = store.report_outcomes(&scope(None)).await.expect("outcomes");
    let hour = nine().timestamp() / 3600;
    let keys: Vec<(i64, &str, &str)> = outcomes
        .iter()
        .map(|g| {
            (
                g.key.bucket,
                g.key.instance.as_str(),
                g.key.event_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            (hour, "exec-1", "ORDER"),
            (hour, "exec-2", "ORDER"),
            (hour + 1, "exec-1", "RESET")
        ]
    );
    let order = &outcomes[0];
    assert_eq!(order.totals.finished, 4);
    assert_eq!(order.totals.sent, 3);
    assert_eq!(order.others.delivery_failed, 1);
    assert_eq!(order.totals.linked, 4);
    assert!((order.totals.queue_seconds - 8.0).abs() < 0.01, "{order:?}");
    assert_eq!(order.totals.accepted, 3);
    assert!(
        (order.totals.delivery_seconds - 9.0).abs() < 0.01,
        "{order:?}"
    );
    assert!(
        (order.totals.processing_seconds - 15.0).abs() < 0.01,
        "{order:?}"
    );
    let reset = &outcomes[2];
    assert_eq!(reset.others.not_taken_into_account, 1);
    assert_eq!(reset.totals.linked, 0);

    let incoming = store
        .report_incoming(&scope(Some("exec-1")))
        .await
        .expect("incoming");
    let pushed: Vec<(i64, u64)> = incoming.iter().map(|g| (g.key.bucket, g.pushed)).collect();
    assert_eq!(
        pushed,
        vec![(hour, 3), (hour + 1, 1)],
        "event 5 was pushed before the period"
    );

    let moves = store
        .report_queue_moves(&scope(Some("exec-1")))
        .await
        .expect("moves");
    let minute = nine().timestamp() / 60;
    assert_eq!(moves.waiting_at_start, 1);
    assert_eq!(moves.pushed, vec![(minute, 3), (minute + 60, 1)]);
    assert_eq!(moves.left, vec![(minute, 4), (minute + 60, 1)]);
}

#[tokio::test]
async fn sqlite_reports_add_up() {
    let (_dir, store) = sqlite_store().await;
    reports_add_up(store).await;
}

#[tokio::test]
async fn postgres_reports_add_up() {
    let (_pg, store, _) = pg_pair().await;
    reports_add_up(store).await;
}
