//! Key lookups without a database round trip per request, with revocation still refused by
//! every instance from the moment the revoking command returns.
//!
//! Found keys are cached with the database's auth epoch ([`Storage::auth_epoch`]) as read
//! before the lookup; triggers bump the epoch in the same transaction as any revocation or
//! limit change. A request is served from the cache only if its entry was cached under the
//! epoch the instance serves with, which it knows in one of two ways:
//!
//! - **A lease** (the normal case, no database work per request): [`KeyCache::hold_lease`]
//!   polls the epoch every [`POLL`] and renews a lease in the database ([`LEASE`] on the
//!   database's clock) naming the epoch this instance serves with. A revocation commits, then
//!   waits until every instance with a live lease serves its epoch or the lease has run out
//!   ([`Storage::revoke_api_key`]). The instance trusts its epoch only for [`TRUST`] (less
//!   than the lease) after it began the renewal, so an instance that cannot renew (database
//!   unreachable, process stalled) stops trusting its epoch before a revocation stops waiting
//!   for it.
//! - **A shared read** (no lease held: starting up, or the database unreachable): the epoch is
//!   read *after the request arrived*. The read is shared: requests that arrive while one is in
//!   flight wait for the next, which starts when it ends, so no request is answered from a read
//!   that began before it arrived.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use oytel_core::keys::{authenticate, AuthFailure};
use oytel_core::ports::{KeyOwner, Storage, StoreError};
use oytel_core::CoreError;
use tokio::sync::watch;

/// Most keys kept; past it, entries of older epochs go, then all.
const MAX_CACHED_KEYS: usize = 10_000;
/// How long a lease lasts on the database's clock: the longest a revocation can wait for an
/// instance that stopped renewing.
pub const LEASE: Duration = Duration::from_secs(3);
/// How long an instance trusts its epoch after beginning a renewal: shorter than [`LEASE`].
pub const TRUST: Duration = Duration::from_secs(2);
/// How often the epoch is polled: about how long a revocation waits for running instances.
pub const POLL: Duration = Duration::from_millis(50);
/// How often the lease is renewed while the epoch does not change.
const RENEW: Duration = Duration::from_millis(500);

type EpochFuture = Pin<Box<dyn Future<Output = Result<i64, StoreError>> + Send>>;
type EpochSource = Box<dyn Fn() -> EpochFuture + Send + Sync>;

/// The authenticator of a server: the cache of key lookups and its epoch reads.
pub struct KeyCache {
    store: Arc<dyn Storage>,
    epoch: Arc<SharedRead>,
    lease: RwLock<Lease>,
    owners: RwLock<HashMap<String, (i64, KeyOwner)>>,
}

/// The epoch this instance serves with, and until when it may (while it holds a lease).
struct Lease {
    epoch: i64,
    trusted_until: Option<Instant>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

impl KeyCache {
    /// A cache in front of `store`.
    pub fn new(store: Arc<dyn Storage>) -> KeyCache {
        let source = store.clone();
        KeyCache {
            store,
            epoch: SharedRead::new(Box::new(move || {
                let store = source.clone();
                Box::pin(async move { store.auth_epoch().await })
            })),
            lease: RwLock::new(Lease {
                epoch: i64::MIN,
                trusted_until: None,
            }),
            owners: RwLock::default(),
        }
    }

    /// Holds this instance's lease on the auth epoch until `stop` turns true, then gives it
    /// up. While it runs, authentication needs no database work unless a key is new to this
    /// instance or the epoch moved.
    pub async fn hold_lease(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let instance = oytel_core::numbers::new_id("ins");
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewed_at: Option<Instant> = None;
        let mut failing = false;
        loop {
            tokio::select! {
                _ = poll.tick() => {}
                _ = stop.changed() => break,
            }
            let outcome = self.renew(&instance, &mut renewed_at).await;
            match (outcome, failing) {
                (Ok(()), true) => {
                    tracing::info!("auth epoch lease renewed again");
                    failing = false;
                }
                (Err(error), false) => {
                    tracing::warn!(%error, "cannot renew the auth epoch lease; keys are checked against the database until it is renewed");
                    failing = true;
                }
                _ => {}
            }
        }
        self.write_lease().trusted_until = None;
        if let Err(error) = self.store.release_epoch_lease(&instance).await {
            tracing::warn!(%error, "could not give the auth epoch lease up; it runs out by itself");
        }
    }

    /// One poll: renews the lease when it is getting old, then reads the epoch and takes it if
    /// it moved (reporting it at once, so that a waiting revocation can return).
    ///
    /// The read comes after the renewal on purpose: a revocation that found no lease of this
    /// instance (before its first renewal, or after it ran out) committed before the renewal,
    /// so the epoch read after it includes that revocation.
    async fn renew(
        &self,
        instance: &str,
        renewed_at: &mut Option<Instant>,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let due = !matches!(renewed_at, Some(at) if at.elapsed() < RENEW);
        if due {
            let serving = self.read_lease().epoch;
            self.store
                .renew_epoch_lease(instance, serving, LEASE)
                .await?;
        }
        let current = self.store.auth_epoch().await?;
        let moved = {
            let mut lease = self.write_lease();
            let moved = current > lease.epoch;
            lease.epoch = lease.epoch.max(current);
            moved
        };
        if moved {
            self.store
                .renew_epoch_lease(instance, current, LEASE)
                .await?;
        }
        if due {
            *renewed_at = Some(started);
            self.write_lease().trusted_until = Some(started + TRUST);
        }
        Ok(())
    }

    fn read_lease(&self) -> std::sync::RwLockReadGuard<'_, Lease> {
        self.lease.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lease(&self) -> std::sync::RwLockWriteGuard<'_, Lease> {
        self.lease.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The epoch served with, if a lease makes it trustworthy now.
    fn leased_epoch(&self) -> Option<i64> {
        let lease = self.read_lease();
        lease
            .trusted_until
            .filter(|until| Instant::now() < *until)
            .map(|_| lease.epoch)
    }

    /// Authenticates a presented key (see [`oytel_core::keys::authenticate`]).
    pub async fn authenticate(
        &self,
        presented: Option<&str>,
    ) -> Result<Result<KeyOwner, AuthFailure>, CoreError> {
        authenticate(presented, |hash| self.owner(hash)).await
    }

    /// The owner of the key with this hash (the web console's sessions keep it), revoked or
    /// expired keys included: the caller checks, as [`oytel_core::keys::authenticate`] does.
    pub async fn owner_of_hash(&self, hash: &str) -> Result<Option<KeyOwner>, StoreError> {
        self.owner(hash.to_owned()).await
    }

    async fn owner(&self, hash: String) -> Result<Option<KeyOwner>, StoreError> {
        let epoch = match self.leased_epoch() {
            Some(epoch) => epoch,
            None => self.epoch.read().await?,
        };
        if let Some(owner) = self.cached(&hash, epoch) {
            return Ok(Some(owner));
        }
        // Unknown keys are not cached: they would let anyone fill the cache, and failing
        // callers are slowed down by the failed-authentication limit instead.
        let owner = self.store.find_api_key(&hash).await?;
        if let Some(owner) = &owner {
            let mut owners = self.owners.write().unwrap_or_else(PoisonError::into_inner);
            if owners.len() >= MAX_CACHED_KEYS {
                owners.retain(|_, (cached_at, _)| *cached_at == epoch);
                if owners.len() >= MAX_CACHED_KEYS {
                    owners.clear();
                }
            }
            owners.insert(hash, (epoch, owner.clone()));
        }
        Ok(owner)
    }

    fn cached(&self, hash: &str, epoch: i64) -> Option<KeyOwner> {
        let owners = self.owners.read().unwrap_or_else(PoisonError::into_inner);
        owners
            .get(hash)
            .filter(|(cached_at, _)| *cached_at == epoch)
            .map(|(_, owner)| owner.clone())
    }
}

/// One read of a value shared by every caller that arrives while it is pending, and never
/// older than the caller: a caller arriving during a read waits for the next read.
struct SharedRead {
    source: EpochSource,
    rounds: Mutex<Rounds>,
    results: watch::Sender<Round>,
}

#[derive(Default)]
struct Rounds {
    /// Reads started so far; the one running, if any, is number `started`.
    started: u64,
    running: bool,
    /// The highest read number a caller waits for.
    wanted: u64,
}

#[derive(Clone)]
struct Round {
    number: u64,
    value: Result<i64, StoreError>,
}

impl SharedRead {
    fn new(source: EpochSource) -> Arc<SharedRead> {
        Arc::new(SharedRead {
            source,
            rounds: Mutex::default(),
            results: watch::Sender::new(Round {
                number: 0,
                value: Ok(0),
            }),
        })
    }

    /// The value as of a read that started after this call.
    async fn read(self: &Arc<Self>) -> Result<i64, StoreError> {
        let mut results = self.results.subscribe();
        let wanted = {
            let mut rounds = self.rounds.lock().unwrap_or_else(PoisonError::into_inner);
            let wanted = rounds.started + 1;
            if rounds.running {
                rounds.wanted = wanted;
            } else {
                rounds.running = true;
                rounds.started = wanted;
                // The reads run in their own task so that a caller that goes away (a client
                // disconnecting) never leaves the others waiting.
                tokio::spawn(self.clone().run(wanted));
            }
            wanted
        };
        let round = results
            .wait_for(|round| round.number >= wanted)
            .await
            .map_err(|_| StoreError::Unavailable("key cache stopped".into()))?;
        round.value.clone()
    }

    async fn run(self: Arc<Self>, mut number: u64) {
        loop {
            let value = (self.source)().await;
            let mut rounds = self.rounds.lock().unwrap_or_else(PoisonError::into_inner);
            self.results.send_replace(Round { number, value });
            if rounds.wanted > number {
                number += 1;
                rounds.started = number;
            } else {
                rounds.running = false;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    /// A source whose reads take their value when they start (like a database snapshot),
    /// then wait for the test to release them; it counts the reads.
    fn gated(
        value: Arc<AtomicI64>,
        gate: Arc<Semaphore>,
        count: Arc<AtomicUsize>,
    ) -> Arc<SharedRead> {
        SharedRead::new(Box::new(move || {
            let (value, gate, count) = (value.clone(), gate.clone(), count.clone());
            Box::pin(async move {
                count.fetch_add(1, Ordering::SeqCst);
                let snapshot = value.load(Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                Ok(snapshot)
            })
        }))
    }

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn callers_share_reads_but_never_one_older_than_themselves() {
        let (value, gate, count) = (
            Arc::new(AtomicI64::new(1)),
            Arc::new(Semaphore::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let shared = gated(value.clone(), gate.clone(), count.clone());
        // The first caller starts read 1.
        let first = tokio::spawn({
            let shared = shared.clone();
            async move { shared.read().await }
        });
        settle().await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // The value changes while read 1 is in flight; 50 callers arrive after the change.
        value.store(2, Ordering::SeqCst);
        let later: Vec<_> = (0..50)
            .map(|_| {
                let shared = shared.clone();
                tokio::spawn(async move { shared.read().await })
            })
            .collect();
        settle().await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "they wait for read 1 to end"
        );
        gate.add_permits(1);
        // Read 1 saw the old value; none of the later callers may be answered by it.
        assert_eq!(first.await.unwrap().unwrap(), 1);
        settle().await;
        assert_eq!(count.load(Ordering::SeqCst), 2, "one read serves all 50");
        assert!(later.iter().all(|caller| !caller.is_finished()));
        gate.add_permits(1);
        for caller in later {
            assert_eq!(caller.await.unwrap().unwrap(), 2);
        }
        // Idle again: the next caller starts a read of its own.
        value.store(3, Ordering::SeqCst);
        gate.add_permits(1);
        assert_eq!(shared.read().await.unwrap(), 3);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_read_fails_its_callers_and_the_next_read_recovers() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let shared = SharedRead::new(Box::new({
            let fail = fail.clone();
            move || {
                let fail = fail.load(Ordering::SeqCst);
                Box::pin(async move {
                    if fail {
                        Err(StoreError::Unavailable("down".into()))
                    } else {
                        Ok(7)
                    }
                })
            }
        }));
        assert!(matches!(
            shared.read().await,
            Err(StoreError::Unavailable(_))
        ));
        fail.store(false, Ordering::SeqCst);
        assert_eq!(shared.read().await.unwrap(), 7);
    }

    #[tokio::test]
    async fn lookups_are_cached_until_the_epoch_moves() {
        use oytel_core::ports::MockStorage;
        let key = oytel_core::keys::generate_api_key("ptn_1", oytel_types::Environment::Sandbox);
        let epoch = Arc::new(AtomicI64::new(5));
        let mut store = MockStorage::new();
        store.expect_auth_epoch().returning({
            let epoch = epoch.clone();
            move || Ok(epoch.load(Ordering::SeqCst))
        });
        let revoked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hash = key.record.hash.clone();
        store.expect_find_api_key().times(2).returning({
            let revoked = revoked.clone();
            move |h| {
                assert_eq!(h, hash);
                Ok(Some(KeyOwner {
                    key_id: "key_1".into(),
                    partner_id: "ptn_1".into(),
                    environment: oytel_types::Environment::Sandbox,
                    revoked: revoked.load(Ordering::SeqCst),
                    expires_at: None,
                    limits: Default::default(),
                }))
            }
        });
        let cache = KeyCache::new(Arc::new(store));
        for _ in 0..3 {
            let owner = cache.authenticate(Some(&key.plaintext)).await.unwrap();
            assert_eq!(owner.unwrap().partner_id, "ptn_1");
        }
        // A revocation bumps the epoch: the next request looks the key up again.
        revoked.store(true, Ordering::SeqCst);
        epoch.fetch_add(1, Ordering::SeqCst);
        for _ in 0..2 {
            let refused = cache.authenticate(Some(&key.plaintext)).await.unwrap();
            assert_eq!(refused.unwrap_err(), AuthFailure::Revoked);
        }
    }

    #[tokio::test]
    async fn under_a_lease_requests_need_no_epoch_read_and_without_one_they_do() {
        use oytel_core::ports::MockStorage;
        let key = oytel_core::keys::generate_api_key("ptn_1", oytel_types::Environment::Sandbox);
        // The store's calls, in order: "epoch" or "lease <serving epoch>".
        let calls = Arc::new(Mutex::new(Vec::<String>::new()));
        let epoch_reads = {
            let calls = calls.clone();
            move || {
                let calls = calls.lock().unwrap();
                calls.iter().filter(|c| *c == "epoch").count()
            }
        };
        let mut store = MockStorage::new();
        store.expect_auth_epoch().returning({
            let calls = calls.clone();
            move || {
                calls.lock().unwrap().push("epoch".into());
                Ok(9)
            }
        });
        store
            .expect_renew_epoch_lease()
            .withf(|instance, _, lease| instance == "ins_t" && *lease == LEASE)
            .returning({
                let calls = calls.clone();
                move |_, serving, _| {
                    calls.lock().unwrap().push(format!("lease {serving}"));
                    Ok(())
                }
            });
        store.expect_find_api_key().times(1).returning(|_| {
            Ok(Some(KeyOwner {
                key_id: "key_1".into(),
                partner_id: "ptn_1".into(),
                environment: oytel_types::Environment::Sandbox,
                revoked: false,
                expires_at: None,
                limits: Default::default(),
            }))
        });
        let cache = KeyCache::new(Arc::new(store));
        let mut renewed_at = None;
        // The first poll takes the lease (serving nothing yet), and only then reads the epoch,
        // and reports it.
        cache.renew("ins_t", &mut renewed_at).await.unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            [
                format!("lease {}", i64::MIN),
                "epoch".into(),
                "lease 9".into()
            ]
        );
        for _ in 0..5 {
            assert!(cache
                .authenticate(Some(&key.plaintext))
                .await
                .unwrap()
                .is_ok());
        }
        assert_eq!(epoch_reads(), 1, "served under the lease");
        // A poll soon after, with the epoch unchanged, reads it but does not renew.
        cache.renew("ins_t", &mut renewed_at).await.unwrap();
        assert_eq!(calls.lock().unwrap().len(), 4);
        assert_eq!(epoch_reads(), 2);
        // Once the trust has run out, each request reads the epoch again.
        cache.write_lease().trusted_until = Some(Instant::now());
        assert!(cache
            .authenticate(Some(&key.plaintext))
            .await
            .unwrap()
            .is_ok());
        assert_eq!(epoch_reads(), 3);
    }
}
