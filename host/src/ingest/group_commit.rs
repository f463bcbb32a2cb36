//! Group commit: concurrent ingestion requests share one transaction.
//!
//! An event must be durable before its `201` goes out, and a durable commit costs an fsync. One writer
//! takes every submission waiting in its queue, stores them together, and answers each: under load, one
//! fsync serves many requests; with a single request, it commits at once (there is no timer to wait
//! for). On SQLite the single writer is also what the database wants.
//!
//! On an SQLite file the writer is a thread of its own that runs each transaction itself, on a
//! synchronous connection ([`SqliteIngest`]); elsewhere (PostgreSQL, an in-memory SQLite database) it is
//! a task that stores through [`Store::submit`].

use std::time::{Duration, Instant};

use chrono::Utc;
use mc_plugin_api::Queue;
use tokio::runtime::Handle;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{
    EventRows, SqliteIngest, Store, StoreError, Submission, SubmissionOutcome, one_statement_fits,
};

/// Submissions per transaction at most, and events per transaction at most: bounds the transaction size
/// (and so the latency of the requests in it) under a flood.
const MAX_GROUP_SUBMISSIONS: usize = 512;
const MAX_GROUP_EVENTS: usize = 5_000;

/// Requests waiting for the writer before new ones are made to wait for room (back-pressure).
const QUEUE_CAPACITY: usize = 4_096;

type Reply = oneshot::Sender<Result<SubmissionOutcome, StoreError>>;

/// The handle request handlers submit through. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<(Submission, Reply)>,
}

/// Why a submission got no answer from the store.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl GroupCommit {
    /// Starts the writer: a thread driving `sqlite` when the store is on an SQLite file, a task on the
    /// current runtime otherwise. It ends once every handle is dropped and the queue is empty;
    /// `on_commit` is called with the queues that received events after each commit (to wake their
    /// workflows).
    pub fn start(
        store: Store,
        sqlite: Option<SqliteIngest>,
        instance_id: u8,
        metrics: Metrics,
        on_commit: impl Fn(&[Queue]) + Send + Sync + 'static,
        shutdown: Shutdown,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        match sqlite {
            Some(sqlite) => {
                let target = SqliteTarget {
                    sqlite,
                    store,
                    runtime: Handle::current(),
                };
                std::thread::Builder::new()
                    .name("mc-group-commit".to_owned())
                    .spawn(move || {
                        sqlite_writer(target, instance_id, metrics, on_commit, rx, shutdown)
                    })?;
            }
            None => {
                tokio::spawn(writer(store, instance_id, metrics, on_commit, rx, shutdown));
            }
        }
        Ok(GroupCommit { tx })
    }

    /// Stores one submission (with whatever else is waiting) and returns what became of it.
    pub async fn submit(&self, submission: Submission) -> Result<SubmissionOutcome, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((submission, reply))
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer
            .await
            .map_err(|_| IngestError::ShuttingDown)?
            .map_err(IngestError::from)
    }
}

/// The submissions of the next group.
struct Group {
    submissions: Vec<Submission>,
    replies: Vec<Reply>,
    events: usize,
    /// The group's rows, converted for [`Store::submit_converted`] as each submission arrives, while the
    /// group can still be stored by one statement (no idempotency key, one INSERT's worth of rows).
    /// `None` once it cannot, and for the SQLite writer, which binds the events itself.
    rows: Option<EventRows>,
}

impl Group {
    fn new(convert: bool) -> Self {
        Group {
            submissions: Vec::new(),
            replies: Vec::new(),
            events: 0,
            rows: convert.then(EventRows::default),
        }
    }

    fn add(&mut self, instance_id: u8, (submission, reply): (Submission, Reply)) {
        self.events += submission.events.len();
        if let Some(rows) = &mut self.rows {
            if one_statement_fits(self.events, submission.idempotency.is_some()) {
                rows.push(instance_id, &submission, Utc::now());
            } else {
                self.rows = None;
            }
        }
        self.submissions.push(submission);
        self.replies.push(reply);
    }

    fn has_room(&self) -> bool {
        self.submissions.len() < MAX_GROUP_SUBMISSIONS && self.events < MAX_GROUP_EVENTS
    }

    fn is_empty(&self) -> bool {
        self.submissions.is_empty()
    }
}

/// Where the SQLite writer stores: on its own connection, and through the store's pool, on the server's
/// runtime, what that connection does not take.
struct SqliteTarget {
    sqlite: SqliteIngest,
    store: Store,
    runtime: Handle,
}

/// The writer of a store on an SQLite file, on a thread of its own. It sleeps only when its queue is
/// empty: a request that finds it busy (committing) leaves its submission in the queue without waking
/// it, and the writer takes all of them when the commit is done. A group without idempotency keys is
/// stored on the writer's own connection; a keyed group, and the retry of a group that failed, go
/// through [`Store::submit`] on the server's runtime.
fn sqlite_writer(
    SqliteTarget {
        mut sqlite,
        store,
        runtime,
    }: SqliteTarget,
    instance_id: u8,
    metrics: Metrics,
    on_commit: impl Fn(&[Queue]),
    mut rx: mpsc::Receiver<(Submission, Reply)>,
    // Held, not read: keeps the server's shutdown drain waiting until the last accepted request is stored.
    _shutdown: Shutdown,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = Group::new(false);
        group.add(instance_id, first);
        // Disconnected means empty too: the next `blocking_recv` ends the loop.
        while group.has_room()
            && let Ok(received) = rx.try_recv()
        {
            group.add(instance_id, received);
        }
        let started = Instant::now();
        let submissions = &group.submissions;
        let outcomes = if submissions.iter().any(|s| s.idempotency.is_some()) {
            runtime.block_on(commit(&store, instance_id, submissions, None))
        } else {
            match sqlite.insert(instance_id, submissions, Utc::now()) {
                Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
                Err(error) => runtime.block_on(settle(&store, instance_id, submissions, error)),
            }
        };
        Committed {
            group,
            duration: started.elapsed(),
            outcomes,
        }
        .answer(&metrics, &on_commit);
    }
}

/// The writer of a store on PostgreSQL (or an in-memory SQLite database), a task on the server's
/// runtime (a thread of its own measured no better on PostgreSQL). Takes submissions into groups and
/// commits one group at a time. While a group's commit is in flight, the next group fills up and its
/// rows are converted for the database; it is launched as soon as the previous one is done, before the
/// previous group's requests are answered: each answer wakes a request task, and a group's thirty-odd
/// wake-ups cost the database idle time when they came first. The database sees one group after the
/// other, never two at once (two groups in flight on two connections measured worse on PostgreSQL:
/// BENCHMARKS.md, session 4).
async fn writer(
    store: Store,
    instance_id: u8,
    metrics: Metrics,
    on_commit: impl Fn(&[Queue]) + Send + Sync + 'static,
    mut rx: mpsc::Receiver<(Submission, Reply)>,
    // Held, not read: keeps the server's shutdown drain waiting until the last accepted request is stored.
    _shutdown: Shutdown,
) {
    let mut next = Group::new(true);
    let mut in_flight: Option<JoinHandle<Committed>> = None;
    let mut finished: Option<Committed> = None;
    let mut open = true;
    loop {
        if in_flight.is_none() {
            while open && next.has_room() {
                match rx.try_recv() {
                    Ok(received) => next.add(instance_id, received),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            if !next.is_empty() {
                let group = std::mem::replace(&mut next, Group::new(true));
                in_flight = Some(tokio::spawn(commit_group(
                    store.clone(),
                    instance_id,
                    group,
                )));
            }
        }
        if let Some(committed) = finished.take() {
            committed.answer(&metrics, &on_commit);
        }
        match in_flight.as_mut() {
            // Nothing in flight, so nothing is waiting either (it would have been launched above).
            None if open => match rx.recv().await {
                Some(received) => next.add(instance_id, received),
                None => open = false,
            },
            None => break,
            Some(task) => tokio::select! {
                done = task => {
                    in_flight = None;
                    match done {
                        Ok(committed) => finished = Some(committed),
                        Err(e) => tracing::error!(error = %e, "a group commit did not finish; its requests get no answer"),
                    }
                }
                received = rx.recv(), if open && next.has_room() => match received {
                    Some(received) => next.add(instance_id, received),
                    None => open = false,
                },
            },
        }
    }
}

/// A group whose statement has ended, with what became of each of its submissions.
struct Committed {
    group: Group,
    duration: Duration,
    outcomes: Vec<Result<SubmissionOutcome, StoreError>>,
}

/// Stores one group; its requests are answered by the writer, once the next group is on its way.
async fn commit_group(store: Store, instance_id: u8, mut group: Group) -> Committed {
    let started = Instant::now();
    let rows = group.rows.take();
    let outcomes = commit(&store, instance_id, &group.submissions, rows).await;
    Committed {
        group,
        duration: started.elapsed(),
        outcomes,
    }
}

impl Committed {
    /// Answers each request of the group, counts its events and wakes the workflows of the queues it fed.
    /// Accepted events are counted before any answer goes out (a client that reads `/metrics` after its
    /// `201` sees its events), once per queue for the whole group: a metric label lookup per request was
    /// work on the writer, which every request waits for.
    fn answer(self, metrics: &Metrics, on_commit: &impl Fn(&[Queue])) {
        let Group {
            submissions,
            replies,
            events,
            ..
        } = self.group;
        metrics.record_group_commit(submissions.len(), events, self.duration);
        let mut accepted: Vec<(Queue, u64)> = Vec::new();
        for (submission, outcome) in submissions.iter().zip(&self.outcomes) {
            match outcome {
                Ok(SubmissionOutcome::Created(ids)) => {
                    let events = ids.len() as u64;
                    match accepted
                        .iter_mut()
                        .find(|(queue, _)| *queue == submission.queue)
                    {
                        Some((_, total)) => *total += events,
                        None => accepted.push((submission.queue, events)),
                    }
                }
                Ok(_) => {}
                Err(_) => metrics.record_events_refused(submission.queue, "unavailable"),
            }
        }
        for (queue, events) in &accepted {
            metrics.record_events_accepted(*queue, *events);
        }
        for (reply, outcome) in replies.into_iter().zip(self.outcomes) {
            // The requester may have gone away (client disconnected): its events are stored regardless.
            let _ = reply.send(outcome);
        }
        if !accepted.is_empty() {
            let woken: Vec<Queue> = accepted.iter().map(|(queue, _)| *queue).collect();
            on_commit(&woken);
        }
    }
}

/// Commits the group, with its rows if they were converted ahead; see [`settle`] for a failure.
async fn commit(
    store: &Store,
    instance_id: u8,
    submissions: &[Submission],
    rows: Option<EventRows>,
) -> Vec<Result<SubmissionOutcome, StoreError>> {
    let stored = match rows {
        Some(rows) => store.submit_converted(instance_id, submissions, rows).await,
        None => store.submit(instance_id, submissions).await,
    };
    match stored {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error) => settle(store, instance_id, submissions, error).await,
    }
}

/// Answers a group that failed as a whole with `error`, of which nothing was stored: on an outage
/// every request gets the error; on another database error each submission is retried alone, so that
/// one bad submission (or a race on an idempotency key with another instance) does not fail the others.
async fn settle(
    store: &Store,
    instance_id: u8,
    submissions: &[Submission],
    error: StoreError,
) -> Vec<Result<SubmissionOutcome, StoreError>> {
    match error {
        error @ StoreError::Unavailable { .. } => {
            tracing::error!(%error, submissions = submissions.len(), "group commit failed: database unavailable");
            submissions
                .iter()
                .map(|_| Err(clone_unavailable(&error)))
                .collect()
        }
        error if submissions.len() > 1 => {
            tracing::warn!(%error, submissions = submissions.len(), "group commit failed; retrying one by one");
            let mut outcomes = Vec::with_capacity(submissions.len());
            for submission in submissions {
                outcomes.push(
                    store
                        .submit(instance_id, std::slice::from_ref(submission))
                        .await
                        .and_then(|mut o| {
                            o.pop().ok_or_else(|| {
                                StoreError::Database(sea_orm::DbErr::Custom("no outcome".into()))
                            })
                        }),
                );
            }
            outcomes
        }
        error => vec![Err(error)],
    }
}

/// `StoreError` holds a driver error that is not `Clone`; every request of a failed group gets the same
/// description.
fn clone_unavailable(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable { target, source } => StoreError::Unavailable {
            target: target.clone(),
            source: sea_orm::DbErr::Custom(source.to_string()),
        },
        StoreError::Database(source) => {
            StoreError::Database(sea_orm::DbErr::Custom(source.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::shutdown::ShutdownController;
    use crate::store::IdempotencyClaim;
    use crate::store::testing::{refuse_events_to, sqlite_store, verbatim_event};

    fn submission(n: usize, key: Option<&str>) -> Submission {
        Submission {
            queue: if n % 3 == 0 {
                Queue::Batch
            } else {
                Queue::Realtime
            },
            events: vec![verbatim_event(n as u32)],
            idempotency: key.map(|key| IdempotencyClaim {
                key: key.to_owned(),
                request_hash: "h".to_owned(),
            }),
        }
    }

    /// The SQLite writer under concurrent requests: plain and keyed ones (the keyed go through the pool),
    /// a replayed key, and one event that the database refuses (a trigger): that request alone gets the
    /// error, the others of its group are stored once each, with the ids they were answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_writer_answers_each_request_of_its_groups() {
        let (dir, store) = sqlite_store().await;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display());
        refuse_events_to(&store, "u13@example.com").await;
        let sqlite = store.sqlite_ingest(&url).unwrap().expect("a file");
        let woken = Arc::new(Mutex::new(Vec::new()));
        let shutdown = ShutdownController::new();
        let ingest = {
            let woken = Arc::clone(&woken);
            GroupCommit::start(
                store.clone(),
                Some(sqlite),
                4,
                Metrics::new(),
                move |queues| woken.lock().unwrap().extend_from_slice(queues),
                shutdown.subscribe(),
            )
            .unwrap()
        };
        // First every request but the replays, all at once; then the replays, with more plain ones.
        let send = |n: usize| {
            let ingest = ingest.clone();
            let key = match n % 10 {
                4 => Some(format!("key-{n}")),
                // The same key and request as request n - 1: a replay.
                5 => Some(format!("key-{}", n - 1)),
                _ => None,
            };
            tokio::spawn(async move { (n, ingest.submit(submission(n, key.as_deref())).await) })
        };
        let mut answers = Vec::new();
        for phase in [
            (0..60)
                .filter(|n| n % 10 != 5 && n % 10 != 6)
                .collect::<Vec<_>>(),
            (0..60).filter(|n| n % 10 == 5 || n % 10 == 6).collect(),
        ] {
            let requests: Vec<_> = phase.into_iter().map(send).collect();
            for request in requests {
                answers.push(request.await.unwrap());
            }
        }
        let mut stored = Vec::new();
        for (n, outcome) in answers {
            match (n, outcome) {
                (13, Err(IngestError::Store(StoreError::Database(e)))) => {
                    assert!(e.to_string().contains("refused by the test"), "{e}")
                }
                (13, other) => panic!("the refused event was answered {other:?}"),
                (n, Ok(SubmissionOutcome::Replayed(ids))) if n % 10 == 5 => {
                    stored.push((n - 1, ids[0]))
                }
                (n, Ok(SubmissionOutcome::Created(ids))) if n % 10 != 5 => stored.push((n, ids[0])),
                (n, other) => panic!("request {n} was answered {other:?}"),
            }
        }
        assert_eq!(stored.len(), 59);
        assert_eq!(store.count_events(None, None).await.unwrap(), 53);
        for (n, id) in stored {
            assert_eq!(split(id), 4, "instance id in the top byte");
            let (event, _) = store.get_event(id).await.unwrap().expect("stored");
            assert_eq!(event.email, Some(format!("u{n}@example.com")), "id {id}");
        }
        let woken = woken.lock().unwrap().clone();
        assert!(woken.contains(&Queue::Realtime) && woken.contains(&Queue::Batch));
        drop(ingest);
        assert!(
            shutdown.drain(Duration::from_secs(5)).await,
            "the writer ends"
        );
    }

    fn split(id: i64) -> u8 {
        crate::db::entities::event::split_public_id(id).0
    }
}
