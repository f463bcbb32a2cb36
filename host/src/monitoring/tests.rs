//! The monitor against real stores: the SQL of both dialects, the window and the states.

use super::*;
use crate::config::MonitoringConfig;
use crate::store::testing;

async fn check(store: Store) {
    testing::push(&store, Queue::Realtime, 3).await;
    testing::push(&store, Queue::Batch, 2).await;
    let finalised = testing::finalise_all(&store, "test", 10).await;
    assert_eq!(finalised.len(), 3);

    let monitor = Monitor::new(MonitoringConfig::default(), store.clone(), Metrics::new());
    assert!(
        monitor.snapshot().indicators.is_empty(),
        "nothing before the first refresh"
    );
    monitor.refresh(Utc::now()).await.expect("refresh");
    let snapshot = monitor.snapshot();
    assert_eq!(snapshot.window, "1h");
    assert_eq!(snapshot.indicators.len(), 12, "six indicators, two queues");
    let value = |queue, indicator| snapshot.get(queue, indicator).expect("indicator").clone();

    let batch_size = value(Queue::Batch, Indicator::QueueSize);
    assert_eq!(batch_size.value, Some(2.0));
    assert_eq!(
        (batch_size.warning, batch_size.alert),
        (Some(100.0), Some(400.0))
    );
    assert_eq!(batch_size.state, State::Ok);
    assert_eq!(
        value(Queue::Realtime, Indicator::QueueSize).value,
        Some(0.0)
    );

    // Three real-time events finished, none sent: 100 % errors, an alert.
    let errors = value(Queue::Realtime, Indicator::ErrorRate);
    assert_eq!(errors.value, Some(100.0));
    assert_eq!(errors.state, State::Alert);
    assert_eq!(
        value(Queue::Batch, Indicator::ErrorRate).value,
        None,
        "nothing finished"
    );
    let throughput = value(Queue::Realtime, Indicator::Throughput);
    assert_eq!(throughput.value, Some(0.0));
    assert_eq!(
        (throughput.warning, throughput.state),
        (None, State::Ok),
        "off unless set"
    );
    assert_eq!(
        value(Queue::Realtime, Indicator::AvgQueueTime).value,
        None,
        "never linked"
    );

    // A second refresh reads only what finished since, nothing, and finds the same.
    monitor.refresh(Utc::now()).await.expect("refresh");
    assert_eq!(
        monitor
            .snapshot()
            .get(Queue::Realtime, Indicator::ErrorRate)
            .unwrap()
            .value,
        Some(100.0)
    );
    let history = monitor.history(60);
    assert!(!history.is_empty());
    let last = history.last().unwrap();
    assert_eq!(last.batch.queue_size, 2);
    assert_eq!(last.realtime.errors, 3);

    // Two more finish: the next refresh adds them, once, and a refresh after it adds nothing.
    testing::push(&store, Queue::Realtime, 2).await;
    assert_eq!(testing::finalise_all(&store, "test", 10).await.len(), 2);
    for _ in 0..2 {
        monitor.refresh(Utc::now()).await.expect("refresh");
        let last = monitor.history(60).last().cloned().expect("a sample");
        assert_eq!(last.realtime.errors, 5);
    }
}

#[tokio::test]
async fn indicators_on_sqlite() {
    let (_dir, store) = testing::sqlite_store().await;
    check(store).await;
}

#[tokio::test]
async fn indicators_on_postgres() {
    let (_pg, store, _other) = testing::pg_pair().await;
    check(store).await;
}
