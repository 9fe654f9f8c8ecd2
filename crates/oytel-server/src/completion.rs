//! Requests that change state run to completion, whatever happens to their connection.
//!
//! A request's future is dropped when its client disconnects, when the server's request
//! timeout fires, or when the server shuts down. Dropped half-way, a state-changing handler
//! would stop between the steps of its work (a quota drawn and no order; an idempotency key
//! claimed and never completed) and, worse, inside a database transaction: the SQLite driver
//! lost track of a transaction whose `BEGIN` it had sent, and the one writer connection went
//! back to the pool still holding the write lock (issue #24). So a request that may change
//! state runs in a task of its own, which nobody cancels; the connection's side only waits
//! for its answer. The storage adapters guard the pools as well (see `oytel_store`), but
//! this is what keeps a multi-step write whole.
//!
//! | request | client disconnects | request timeout fires | shutdown begins |
//! |---|---|---|---|
//! | `GET`, `HEAD`, `OPTIONS` | dropped (each of their writes is one statement, whole or not at all) | dropped, `503 REQUEST_TIMEOUT` | finishes |
//! | any other method | runs to completion, its answer discarded | runs to completion, `503 REQUEST_TIMEOUT` answered at once | waited for, up to [`SHUTDOWN_GRACE`], before the database closes |
//!
//! A client that did not get an answer learns the outcome of a provisioning by retrying with
//! the same `Idempotency-Key` (a replay of the committed answer, or a fresh attempt), and of
//! any other write by reading the resource.
//!
//! Shutdown waits for these tasks up to [`SHUTDOWN_GRACE`] after the listener has closed; a
//! task still running then (a client stalled mid-body) is abandoned with a warning, which is
//! safe: its transaction has not begun, or commits whole or not at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use oytel_types::ErrorCode;
use tokio::sync::Notify;

use crate::error::ApiError;

/// How long shutdown waits for state-changing requests still running.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The requests running in tasks of their own, so that shutdown can wait for them.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<Counter>);

#[derive(Debug, Default)]
struct Counter {
    running: AtomicUsize,
    idle: Notify,
}

/// Counts one running task while it lives.
struct Running(Arc<Counter>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Runs `future` in a task of its own, counted until it ends.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.0.clone());
        tokio::spawn(async move {
            let _running = running;
            future.await
        })
    }

    /// How many tasks are running.
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::Acquire)
    }

    /// Resolves once no task is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// How requests are run: where state-changing ones go, and how long a client waits.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Where state-changing requests run.
    pub in_flight: InFlight,
    /// How long a client waits for an answer.
    pub timeout: Duration,
}

impl Completion {
    /// Runs the work of a request with `method` (see the table above); `None` when the
    /// timeout fired first.
    pub async fn run<F>(&self, method: &Method, work: F) -> Option<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let answer = if method.is_safe() {
            tokio::time::timeout(self.timeout, work).await.ok()
        } else {
            match tokio::time::timeout(self.timeout, self.in_flight.spawn(work)).await {
                Ok(Ok(output)) => Some(output),
                // The handler's panics are caught inside it (a 500); a task fails only when
                // the runtime shuts down under it.
                Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Ok(Err(_)) | Err(_) => None,
            }
        };
        answer
    }
}

/// The answer to a request not answered within `timeout`.
pub fn timed_out(timeout: Duration) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RequestTimeout,
        format!(
            "the request was not answered within {} s; a request that changes something may \
             still complete: retry a provisioning with the same Idempotency-Key to learn its \
             outcome, and read the resource before retrying anything else",
            timeout.as_secs_f64()
        ),
    )
    .with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_resolves_only_after_every_task_has_ended() {
        let in_flight = InFlight::default();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let task = in_flight.spawn(async move {
            let _ = wait.await;
        });
        assert_eq!(in_flight.running(), 1);
        let idle = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!idle.is_finished(), "idle while a task still runs");
        let _ = release.send(());
        assert!(task.await.is_ok());
        assert!(
            matches!(
                tokio::time::timeout(Duration::from_secs(5), idle).await,
                Ok(Ok(()))
            ),
            "idle did not resolve after the task ended"
        );
        assert_eq!(in_flight.running(), 0);
    }

    #[tokio::test]
    async fn a_task_goes_on_after_its_handle_is_dropped() {
        let in_flight = InFlight::default();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        drop(in_flight.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = done.send(());
        }));
        assert!(
            tokio::time::timeout(Duration::from_secs(5), finished)
                .await
                .is_ok(),
            "the task was cancelled with its handle"
        );
        in_flight.idle().await;
    }
}
