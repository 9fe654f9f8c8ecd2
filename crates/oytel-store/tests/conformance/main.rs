//! The storage conformance suite: every port method, constraint, transaction and paging edge,
//! written once and run against every adapter (SQLite always; PostgreSQL when
//! `OYTEL_TEST_DATABASE_URL` is set, see `oytel_store::testing`).

#![allow(clippy::unwrap_used)]

/// Instantiates each test for each backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = oytel_store::testing::fresh(oytel_store::testing::Backend::Sqlite).await.unwrap();
                    super::$name(db.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(oytel_postgres), ignore = "needs PostgreSQL: build the tests with OYTEL_TEST_DATABASE_URL set (export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start))")]
                async fn $name() {
                    if let Some(db) = oytel_store::testing::fresh(oytel_store::testing::Backend::Postgres).await {
                        super::$name(db.store.clone()).await;
                    }
                }
            )*
        }
    };
}

mod billing;
mod deliveries;
mod downloads;
mod esims;
mod idempotency;
mod inventory;
mod orders;
mod partners;
mod quotas;
mod reservations;
mod sessions;
mod settings;
mod support;
mod topups;
mod upgrade;
mod webhooks;
