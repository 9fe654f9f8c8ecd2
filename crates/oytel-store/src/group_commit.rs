//! Group commit for SQLite's one writer.
//!
//! SQLite writes one transaction at a time, so every paid write (a provisioning, a top-up)
//! waits for the writer connection. Taking it in turn, each paid its own `BEGIN`, `COMMIT` (an
//! fsync) and the pool's hand-back of the connection, and under a crowd of waiters the queue
//! was the pool's. Here they wait in one first-come, first-served queue instead, and the
//! writer takes everything waiting (up to [`MAX_BATCH`]) into one transaction, each write in a
//! savepoint of its own (`datastore/batch.rs`):
//!
//! | a write in the batch | what happens |
//! |---|---|
//! | writes | kept; answered once the whole transaction has committed |
//! | writes nothing (key taken, balance too low, out of stock, not allowed, numbers collided) | rolled back to its savepoint; the others stand |
//! | fails on a database error | rolled back to its savepoint, answered with the error |
//! | the commit (or a rollback to a savepoint) fails | nothing of the batch is written; every one is answered with the error |
//! | it waited longer than [`MAX_WAIT`] for the writer (an overloaded or stuck writer) | not written; answered "unavailable", as a wait for the pool's connection used to be |
//! | the batch panics | the transaction is dropped, so nothing of the batch is written; every one is answered "unavailable"; the next batch runs as usual |
//!
//! A batch runs to its end on its own task, whatever happens to the requests that queued it:
//! a client that disconnects cannot leave the writer inside a transaction (issue #24), and
//! its write is either committed whole, to be replayed by its retry's idempotency key, or not
//! written at all.

use std::future::Future;
use std::time::Duration;

use oytel_core::ports::{ProvisionResult, ProvisionWrite, StoreError, TopUpResult, TopUpWrite};
use tokio::sync::{mpsc, oneshot};

/// A write the group commit takes.
#[derive(Debug)]
pub(crate) enum Job {
    Provision(Box<ProvisionWrite>),
    TopUp(Box<TopUpWrite>),
}

/// A write's answer, of the job's kind.
#[derive(Debug)]
pub(crate) enum Done {
    Provision(Result<ProvisionResult, StoreError>),
    TopUp(Result<TopUpResult, StoreError>),
}

impl Job {
    /// This job's answer when it failed with `error`.
    pub(crate) fn failed(&self, error: StoreError) -> Done {
        match self {
            Job::Provision(_) => Done::Provision(Err(error)),
            Job::TopUp(_) => Done::TopUp(Err(error)),
        }
    }
}

impl Done {
    /// Whether the write was made: its savepoint stands (every other answer wrote nothing).
    pub(crate) fn committed(&self) -> bool {
        match self {
            Done::Provision(result) => result.as_ref().is_ok_and(ProvisionResult::committed),
            Done::TopUp(result) => result.as_ref().is_ok_and(TopUpResult::committed),
        }
    }
}

/// The write queue of a store.
pub(crate) type WriteQueue = Queue<Job, Done>;

/// Why a queued write has no answer: it was not taken in time, its batch failed, or the queue
/// has stopped. Nothing of it was written.
pub(crate) fn not_written() -> StoreError {
    StoreError::Unavailable(
        "the database writer did not make this write (overloaded or failed); nothing was written"
            .into(),
    )
}

/// The most writes one transaction takes; more wait for the next one.
pub(crate) const MAX_BATCH: usize = 128;

/// The longest a write waits for the writer before it is given up, unwritten: as long as a
/// wait for the pool's connection (`acquire_timeout` in `sqlite.rs`).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(10);

type Queued<J, R> = (J, oneshot::Sender<R>, tokio::time::Instant);

/// A queue of jobs `J`, run in batches by one task, each answered with its `R`.
#[derive(Debug)]
pub(crate) struct Queue<J, R> {
    jobs: mpsc::UnboundedSender<Queued<J, R>>,
}

impl<J, R> Clone for Queue<J, R> {
    fn clone(&self) -> Self {
        Queue {
            jobs: self.jobs.clone(),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> Queue<J, R> {
    /// Starts the task that runs the batches with `run`, which answers every job of a batch,
    /// in order. The task ends when the last clone of the queue is dropped.
    pub(crate) fn start<F, Fut>(run: F) -> Queue<J, R>
    where
        F: Fn(Vec<J>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (jobs, mut waiting) = mpsc::unbounded_channel::<Queued<J, R>>();
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match waiting.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                // A write that waited too long is dropped unwritten: its answer's sender goes,
                // and its request is told so.
                let now = tokio::time::Instant::now();
                let (batch, answers): (Vec<J>, Vec<oneshot::Sender<R>>) = batch
                    .into_iter()
                    .filter(|(_, _, queued)| now.duration_since(*queued) <= MAX_WAIT)
                    .map(|(job, answer, _)| (job, answer))
                    .unzip();
                if batch.is_empty() {
                    continue;
                }
                // Its own task, so that a panic ends this batch (its transaction dropped,
                // nothing written, its requests told so) and not the queue.
                let Ok(results) = tokio::spawn(run(batch)).await else {
                    continue;
                };
                for (answer, result) in answers.into_iter().zip(results) {
                    // A request that went away no longer waits for its answer.
                    let _ = answer.send(result);
                }
            }
        });
        Queue { jobs }
    }

    /// Queues `job` and waits for its answer; `None` if it was not written (waited too long,
    /// its batch failed) or the task has stopped.
    pub(crate) async fn submit(&self, job: J) -> Option<R> {
        let (answer, answered) = oneshot::channel();
        let queued = tokio::time::Instant::now();
        self.jobs.send((job, answer, queued)).ok()?;
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn jobs_waiting_together_run_as_one_batch_in_the_order_they_came() {
        let batches = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let (gate, gate_rx) = tokio::sync::watch::channel(false);
        let seen = batches.clone();
        let queue = Queue::start(move |jobs: Vec<u32>| {
            let (seen, started, mut gate) = (seen.clone(), started_tx.clone(), gate_rx.clone());
            async move {
                let _ = started.send(());
                // Every batch waits for the gate: the jobs sent meanwhile queue up.
                let _ = gate.wait_for(|open| *open).await;
                seen.lock().unwrap().push(jobs.clone());
                jobs.into_iter().map(|j| j * 10).collect()
            }
        });
        let first = tokio::spawn({
            let queue = queue.clone();
            async move { queue.submit(0).await }
        });
        started.recv().await;
        let waiting: Vec<_> = (1..=5)
            .map(|n| {
                let (answer, answered) = oneshot::channel();
                queue
                    .jobs
                    .send((n, answer, tokio::time::Instant::now()))
                    .unwrap();
                answered
            })
            .collect();
        gate.send_replace(true);
        assert_eq!(first.await.unwrap(), Some(0));
        let mut answers = Vec::new();
        for answered in waiting {
            answers.push(answered.await.unwrap());
        }
        assert_eq!(
            answers,
            [10, 20, 30, 40, 50],
            "each job gets its own answer"
        );
        assert_eq!(
            *batches.lock().unwrap(),
            [vec![0], vec![1, 2, 3, 4, 5]],
            "the jobs that waited during the first batch ran together, in the order they came"
        );
    }

    #[tokio::test]
    async fn a_request_that_goes_away_does_not_stop_its_job() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let seen = done.clone();
        let queue = Queue::start(move |jobs: Vec<u32>| {
            let seen = seen.clone();
            async move {
                tokio::task::yield_now().await;
                seen.lock().unwrap().extend(jobs.iter().copied());
                jobs
            }
        });
        // Queued, then abandoned before its answer (a client that disconnects).
        let abandoned = tokio::spawn({
            let queue = queue.clone();
            async move { queue.submit(7).await }
        });
        tokio::task::yield_now().await;
        abandoned.abort();
        assert_eq!(queue.submit(8).await, Some(8));
        assert_eq!(
            *done.lock().unwrap(),
            [7, 8],
            "the abandoned job was still run"
        );
    }

    #[tokio::test]
    async fn a_batch_that_panics_writes_nothing_and_the_next_batch_runs() {
        let queue = Queue::start(|jobs: Vec<u32>| async move {
            assert!(!jobs.contains(&13), "a bug met while writing");
            jobs
        });
        assert_eq!(queue.submit(13).await, None, "told it was not written");
        assert_eq!(queue.submit(14).await, Some(14), "the queue goes on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_waited_longer_than_the_limit_is_given_up_unwritten() {
        let (gate, gate_rx) = tokio::sync::watch::channel(false);
        let ran = Arc::new(Mutex::new(Vec::new()));
        let seen = ran.clone();
        let queue = Queue::start(move |jobs: Vec<u32>| {
            let (seen, mut gate) = (seen.clone(), gate_rx.clone());
            async move {
                // A stuck writer: the first batch holds it until the gate opens.
                let _ = gate.wait_for(|open| *open).await;
                seen.lock().unwrap().extend(jobs.iter().copied());
                jobs
            }
        });
        let first = tokio::spawn({
            let queue = queue.clone();
            async move { queue.submit(1).await }
        });
        tokio::task::yield_now().await;
        let late = tokio::spawn({
            let queue = queue.clone();
            async move { queue.submit(2).await }
        });
        tokio::task::yield_now().await;
        tokio::time::advance(MAX_WAIT + Duration::from_secs(1)).await;
        gate.send_replace(true);
        assert_eq!(first.await.unwrap(), Some(1));
        assert_eq!(late.await.unwrap(), None, "given up after waiting too long");
        assert_eq!(queue.submit(3).await, Some(3), "a fresh write is taken");
        assert_eq!(*ran.lock().unwrap(), [1, 3], "the late write was never run");
    }
}
