//! Group commit: concurrent ingestion requests share one transaction.
//!
//! An event must be durable before its `201` goes out, and a durable commit costs an fsync. One writer
//! task takes every submission waiting in its queue, stores them together with [`Store::submit`], and
//! answers each: under load, one fsync serves many requests; with a single request, it commits at once
//! (there is no timer to wait for). On SQLite the single writer is also what the database wants.

use std::time::{Duration, Instant};

use chrono::Utc;
use mc_plugin_api::services::Queue;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{
    EventRows, Store, StoreError, Submission, SubmissionOutcome, one_statement_fits,
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
    /// Starts the writer. It ends once every handle is dropped and the queue is empty; `on_commit` is
    /// called with the queues that received events after each commit (to wake their workflows).
    pub fn start(
        store: Store,
        instance_id: u8,
        metrics: Metrics,
        on_commit: impl Fn(&[Queue]) + Send + Sync + 'static,
        shutdown: Shutdown,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let sqlite = store.is_sqlite();
        let task = writer(store, instance_id, metrics, on_commit, rx, shutdown);
        if sqlite {
            // SQLite: the writer gets a thread and a runtime of its own. Every request waits for it, and
            // each of its commits is a round trip to SQLite's connection thread; on the shared runtime
            // each wake-up queued behind the HTTP connections' tasks, which made a commit take 1.1 ms
            // instead of 0.75 ms and cost a third of the throughput (BENCHMARKS.md). PostgreSQL's writer
            // stays on the shared runtime: a thread of its own measured no better there.
            let spawned = std::thread::Builder::new()
                .name("mc-group-commit".to_owned())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime.block_on(task),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start the group-commit runtime")
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the group-commit thread");
            }
        } else {
            tokio::spawn(task);
        }
        GroupCommit { tx }
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

/// The submissions of the next group, each converted into its rows as it arrives.
#[derive(Default)]
struct Group {
    submissions: Vec<Submission>,
    replies: Vec<Reply>,
    events: usize,
    rows: EventRows,
    /// Whether the group can still be stored by one statement (no idempotency key, one INSERT's worth
    /// of rows), so that converting its rows ahead is worth it.
    converting: bool,
}

impl Group {
    fn add(&mut self, instance_id: u8, (submission, reply): (Submission, Reply)) {
        if self.submissions.is_empty() {
            self.converting = true;
        }
        self.events += submission.events.len();
        if self.converting {
            if one_statement_fits(self.events, submission.idempotency.is_some()) {
                self.rows.push(instance_id, &submission, Utc::now());
            } else {
                self.converting = false;
                self.rows = EventRows::default();
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

/// Takes submissions into groups and commits one group at a time. While a group's commit is in flight,
/// the next group fills up and its rows are converted for the database (on SQLite, the previous commit
/// is then mostly SQLite's own work and its fsync, on its own thread); it is launched as soon as the
/// previous one is done, before the previous group's requests are answered: each answer wakes a request
/// task on another thread, and a group's thirty-odd wake-ups cost the database idle time when they came
/// first. The database sees one group after the other, never two at once.
async fn writer(
    store: Store,
    instance_id: u8,
    metrics: Metrics,
    on_commit: impl Fn(&[Queue]) + Send + Sync + 'static,
    mut rx: mpsc::Receiver<(Submission, Reply)>,
    // Held, not read: keeps the server's shutdown drain waiting until the last accepted request is stored.
    _shutdown: Shutdown,
) {
    let mut next = Group::default();
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
                let group = std::mem::take(&mut next);
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
    submissions: Vec<Submission>,
    replies: Vec<Reply>,
    events: usize,
    duration: Duration,
    outcomes: Vec<Result<SubmissionOutcome, StoreError>>,
}

/// Stores one group; its requests are answered by the writer, once the next group is on its way.
async fn commit_group(store: Store, instance_id: u8, group: Group) -> Committed {
    let started = Instant::now();
    let Group {
        submissions,
        replies,
        events,
        rows,
        ..
    } = group;
    let outcomes = commit(&store, instance_id, &submissions, rows).await;
    Committed {
        submissions,
        replies,
        events,
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
        metrics.record_group_commit(self.submissions.len(), self.events, self.duration);
        let mut accepted: Vec<(Queue, u64)> = Vec::new();
        for (submission, outcome) in self.submissions.iter().zip(&self.outcomes) {
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
        for (reply, outcome) in self.replies.into_iter().zip(self.outcomes) {
            // The requester may have gone away (client disconnected): its events are stored regardless.
            let _ = reply.send(outcome);
        }
        if !accepted.is_empty() {
            let woken: Vec<Queue> = accepted.iter().map(|(queue, _)| *queue).collect();
            on_commit(&woken);
        }
    }
}

/// Commits the group; if the group as a whole fails on a database error (not an outage), retries each
/// submission alone so that one bad submission (or a race on an idempotency key with another instance)
/// does not fail the others.
async fn commit(
    store: &Store,
    instance_id: u8,
    submissions: &[Submission],
    rows: EventRows,
) -> Vec<Result<SubmissionOutcome, StoreError>> {
    match store.submit_converted(instance_id, submissions, rows).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error @ StoreError::Unavailable { .. }) => {
            tracing::error!(%error, submissions = submissions.len(), "group commit failed: database unavailable");
            submissions
                .iter()
                .map(|_| Err(clone_unavailable(&error)))
                .collect()
        }
        Err(error) if submissions.len() > 1 => {
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
        Err(error) => vec![Err(error)],
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
