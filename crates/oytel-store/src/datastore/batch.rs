//! SQLite's group commit ([`crate::group_commit`]): the paid writes waiting for the one writer,
//! in one transaction, each in a savepoint of its own.

use oytel_core::ports::StoreError;

use super::orders::provision_in;
use super::packages::top_up_in;
use super::sql::begin_write;
use super::Store;
use crate::errors::db_error;
use crate::group_commit::{Done, Job};

/// Writes `jobs` in one transaction, each in a savepoint of its own: one that writes nothing
/// (a key taken, a balance too low, a collision of numbers) is rolled back to its savepoint
/// and the others stand. The answers, in the order of `jobs`, are given once the transaction
/// has committed; if the commit fails, every one of them fails with it and nothing is written.
#[allow(
    dead_code,
    reason = "SQLite's group commit calls it; PostgreSQL commits each write on its own"
)]
pub(crate) async fn write_batch(store: &Store, jobs: Vec<Job>) -> Vec<Done> {
    let all_fail = |e: StoreError| jobs.iter().map(|job| job.failed(e.clone())).collect();
    let mut tx = match begin_write(store).await {
        Ok(tx) => tx,
        Err(e) => return all_fail(e),
    };
    let mut answers = Vec::with_capacity(jobs.len());
    for (n, job) in jobs.iter().enumerate() {
        // One savepoint open at a time: the one before is released as the next is set (its
        // writes join the transaction), so SQLite keeps no journal of pages for it. With one
        // open, a rollback can only reach this write's own changes; without one, it fails,
        // and so does the batch.
        let set = if n == 0 {
            "SAVEPOINT paid_write"
        } else {
            "RELEASE paid_write; SAVEPOINT paid_write"
        };
        if let Err(e) = sqlx::query(set).execute(&mut *tx).await {
            return all_fail(db_error(e));
        }
        let done = match job {
            Job::Provision(write) => Done::Provision(provision_in(&mut tx, write).await),
            Job::TopUp(write) => Done::TopUp(top_up_in(&mut tx, write).await),
        };
        if !done.committed() {
            if let Err(e) = sqlx::query("ROLLBACK TO paid_write")
                .execute(&mut *tx)
                .await
            {
                // The transaction cannot be trusted: nothing of it is committed.
                return all_fail(db_error(e));
            }
        }
        answers.push(done);
    }
    if let Err(e) = tx.commit().await {
        return all_fail(db_error(e));
    }
    answers
}
