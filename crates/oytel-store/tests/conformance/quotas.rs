//! Hourly quotas: exactly the limit is admitted, on every backend; PostgreSQL's counts skip
//! the WAL flush, the storage's writes do not.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::numbers::new_id;
use oytel_core::Environment;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_quotas_admit_exactly_the_limit() {
    let db = oytel_store::testing::fresh(oytel_store::testing::Backend::Sqlite)
        .await
        .unwrap();
    quotas_admit_exactly_the_limit(db.quotas.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(oytel_postgres),
    ignore = "needs PostgreSQL: build the tests with OYTEL_TEST_DATABASE_URL set (export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start))"
)]
async fn postgres_quotas_admit_exactly_the_limit() {
    if let Some(db) = oytel_store::testing::fresh(oytel_store::testing::Backend::Postgres).await {
        quotas_admit_exactly_the_limit(db.quotas.clone()).await;
    }
}

/// Quota counts commit without waiting for the WAL flush; everything else the storage writes
/// (orders, charges, keys) waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(oytel_postgres),
    ignore = "needs PostgreSQL: build the tests with OYTEL_TEST_DATABASE_URL set (export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start))"
)]
async fn postgres_only_quota_counts_skip_the_wal_flush() {
    if let Some(db) = oytel_store::testing::fresh(oytel_store::testing::Backend::Postgres).await {
        let store = oytel_store::PgStore::open(&db.url, &oytel_store::PoolOptions::default())
            .await
            .unwrap();
        let [storage, counters] = store.synchronous_commit().await.unwrap();
        assert_eq!(counters, ("off".to_owned(), "client".to_owned()));
        // The test server runs without flushing at all; what matters is that the storage's
        // connections keep the server's setting, whatever the operator chose.
        assert_ne!(
            storage.1, "client",
            "the storage must not relax durability: {storage:?}"
        );
        store.close().await;
    }
}

async fn quotas_admit_exactly_the_limit(quotas: Arc<dyn oytel_core::limits::Quotas>) {
    use oytel_core::limits::{QuotaKey, QuotaKind};
    let key = QuotaKey {
        partner_id: new_id("ptn"),
        environment: Environment::Production,
        kind: QuotaKind::Provision,
    };
    let at = now();
    let tasks: Vec<_> = (0..150)
        .map(|_| {
            let (quotas, key) = (quotas.clone(), key.clone());
            tokio::spawn(async move { quotas.consume(&key, 100, at).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    let mut remaining = HashSet::new();
    for task in tasks {
        let used = task.await.unwrap();
        if used.allowed {
            admitted += 1;
            assert!(
                remaining.insert(used.remaining),
                "each admission sees its own count"
            );
        }
        assert_eq!(used.limit, 100);
        assert!(used.reset_at > at && used.reset_at <= at + Duration::hours(1));
    }
    assert_eq!(admitted, 100);
    // A unit given back (a replay) admits exactly one more; one from an ended window, none.
    quotas.refund(&key, at - Duration::hours(1)).await.unwrap();
    assert!(!quotas.consume(&key, 100, at).await.unwrap().allowed);
    quotas.refund(&key, at).await.unwrap();
    let again = quotas.consume(&key, 100, at).await.unwrap();
    assert!(again.allowed && again.remaining == 0, "{again:?}");
    assert!(!quotas.consume(&key, 100, at).await.unwrap().allowed);
    let status = QuotaKey {
        kind: QuotaKind::Status,
        ..key.clone()
    };
    assert!(
        quotas.consume(&status, 100, at).await.unwrap().allowed,
        "kinds count apart"
    );
    // Several units at once, as many as are left.
    let block = QuotaKey {
        partner_id: new_id("ptn"),
        ..key.clone()
    };
    let mut grants = Vec::new();
    for _ in 0..4 {
        let (granted, used) = quotas.reserve(&block, 10, 4, at).await.unwrap();
        grants.push((granted, used.allowed, used.remaining));
    }
    assert_eq!(
        grants,
        [(4, true, 6), (4, true, 2), (2, true, 0), (0, false, 0)]
    );
    let next = at + Duration::hours(1);
    assert!(
        quotas.consume(&key, 100, next).await.unwrap().allowed,
        "a new window starts whole"
    );
    quotas.purge(next).await.unwrap();
    assert!(!quotas.consume(&key, 0, next).await.unwrap().allowed);
}
