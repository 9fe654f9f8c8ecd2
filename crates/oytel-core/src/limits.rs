//! Request limits: hourly quotas (provisioning, eSIM reads) counted in fixed windows aligned
//! to the hour, and the rules that say which limits apply to a partner.
//!
//! A quota is counted by a [`Quotas`] port: [`MemoryQuotas`] for a single instance (SQLite),
//! the database for several (PostgreSQL), so that no more than the quota is admitted across
//! all instances.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oytel_types::{Environment, Limits};

use crate::ports::StoreError;

/// Seconds in a quota window.
pub const WINDOW_SECONDS: i64 = 3600;

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// `POST /api/v1/esim/provision` (replays of completed requests excepted).
    Provision,
    /// Reads of eSIMs and orders: details, status, lists.
    Status,
}

impl QuotaKind {
    /// The name used in headers and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Provision => "provision_per_hour",
            QuotaKind::Status => "status_per_hour",
        }
    }

    /// The quota of this kind in `limits`.
    pub fn limit(self, limits: &Limits) -> u32 {
        match self {
            QuotaKind::Provision => limits.provision_per_hour,
            QuotaKind::Status => limits.status_per_hour,
        }
    }
}

/// Whose quota.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    /// Partner.
    pub partner_id: String,
    /// Environment (sandbox and production count apart).
    pub environment: Environment,
    /// What is counted.
    pub kind: QuotaKind,
}

/// The outcome of asking for one unit of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUse {
    /// Whether the request is admitted (and counted).
    pub allowed: bool,
    /// The quota.
    pub limit: u32,
    /// Units left in this window after this request.
    pub remaining: u32,
    /// When the window ends and the quota is whole again.
    pub reset_at: DateTime<Utc>,
}

/// The start of the window `now` falls in.
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let start = now.timestamp().div_euclid(WINDOW_SECONDS) * WINDOW_SECONDS;
    Utc.timestamp_opt(start, 0).single().unwrap_or(now)
}

/// The use of a quota after `count` units were admitted in the window (`count` 0: refused).
pub fn quota_use(count: Option<u32>, limit: u32, window: DateTime<Utc>) -> QuotaUse {
    QuotaUse {
        allowed: count.is_some(),
        limit,
        remaining: count.map_or(0, |c| limit.saturating_sub(c)),
        reset_at: window + chrono::Duration::seconds(WINDOW_SECONDS),
    }
}

/// Counts quota units.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Quotas: Send + Sync + 'static {
    /// Takes one unit of `key`'s quota of `limit` per window, if one is left.
    async fn consume(
        &self,
        key: &QuotaKey,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<QuotaUse, StoreError> {
        Ok(self.reserve(key, limit, 1, now).await?.1)
    }
    /// Takes up to `want` units in one step, as many as are left: how many were granted
    /// (0: refused), and the use of the quota after them.
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u32,
        want: u32,
        now: DateTime<Utc>,
    ) -> Result<(u32, QuotaUse), StoreError>;
    /// Gives back one unit of `key`'s quota drawn at `drawn_at` (a request that turned out
    /// to be a replay, which draws nothing). Nothing happens if that window has ended.
    async fn refund(&self, key: &QuotaKey, drawn_at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Forgets windows that ended before `now`.
    async fn purge(&self, now: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Quotas counted in this process: exact for a single instance. Counts start again when the
/// process restarts.
#[derive(Debug, Default)]
pub struct MemoryQuotas {
    windows: Mutex<HashMap<QuotaKey, (DateTime<Utc>, u32)>>,
}

#[async_trait]
impl Quotas for MemoryQuotas {
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u32,
        want: u32,
        now: DateTime<Utc>,
    ) -> Result<(u32, QuotaUse), StoreError> {
        let window = window_start(now);
        let mut windows = self
            .windows
            .lock()
            .map_err(|_| StoreError::Other("quota counters poisoned".into()))?;
        let entry = windows.entry(key.clone()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        let granted = want.min(limit.saturating_sub(entry.1));
        entry.1 += granted;
        Ok((
            granted,
            quota_use((granted > 0).then_some(entry.1), limit, window),
        ))
    }

    async fn refund(&self, key: &QuotaKey, drawn_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut windows = self
            .windows
            .lock()
            .map_err(|_| StoreError::Other("quota counters poisoned".into()))?;
        if let Some((start, count)) = windows.get_mut(key) {
            if *start == window_start(drawn_at) {
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let window = window_start(now);
        if let Ok(mut windows) = self.windows.lock() {
            windows.retain(|_, (start, _)| *start >= window);
        }
        Ok(())
    }
}

/// Status quotas taken from a shared counter (the database's, for several instances) a block
/// at a time: one write admits a block of requests, served from this process. It never admits
/// more than the limit in all; an instance may end a window holding up to a block unused, so
/// the block is 1 % of the limit, at most 32 (a quota under 200 is counted one by one, exactly).
/// Provisioning quotas are always counted one by one.
pub struct ReservingQuotas {
    shared: std::sync::Arc<dyn Quotas>,
    blocks: Mutex<HashMap<QuotaKey, Block>>,
}

/// Units reserved by this process and not yet used.
#[derive(Debug, Clone, Copy)]
struct Block {
    window: DateTime<Utc>,
    limit: u32,
    left: u32,
    /// The shared count after this process's last reservation.
    counted: u32,
}

impl Block {
    /// The quota is used up for this window: nothing gives status units back.
    fn spent(&self) -> bool {
        self.left == 0 && self.counted >= self.limit
    }

    fn quota_use(&self) -> QuotaUse {
        QuotaUse {
            allowed: true,
            limit: self.limit,
            remaining: self.limit.saturating_sub(self.counted) + self.left,
            reset_at: self.window + chrono::Duration::seconds(WINDOW_SECONDS),
        }
    }
}

impl std::fmt::Debug for ReservingQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReservingQuotas").finish_non_exhaustive()
    }
}

impl ReservingQuotas {
    /// Reserves from `shared`.
    pub fn new(shared: std::sync::Arc<dyn Quotas>) -> ReservingQuotas {
        ReservingQuotas {
            shared,
            blocks: Mutex::default(),
        }
    }

    /// Units taken at once for a quota of `limit`.
    pub fn block_size(limit: u32) -> u32 {
        (limit / 100).clamp(1, 32)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<QuotaKey, Block>> {
        self.blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One unit from this process's block, or a refusal once the quota is spent; `None` when
    /// the shared counter must be asked.
    fn take_reserved(&self, key: &QuotaKey, limit: u32, window: DateTime<Utc>) -> Option<QuotaUse> {
        let mut blocks = self.lock();
        let block = blocks.get_mut(key)?;
        if block.window != window || block.limit != limit {
            return None;
        }
        if block.spent() {
            return Some(QuotaUse {
                allowed: false,
                remaining: 0,
                ..block.quota_use()
            });
        }
        if block.left == 0 {
            return None;
        }
        block.left -= 1;
        Some(block.quota_use())
    }
}

#[async_trait]
impl Quotas for ReservingQuotas {
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u32,
        want: u32,
        now: DateTime<Utc>,
    ) -> Result<(u32, QuotaUse), StoreError> {
        if key.kind == QuotaKind::Provision || want != 1 {
            return self.shared.reserve(key, limit, want, now).await;
        }
        let window = window_start(now);
        if let Some(used) = self.take_reserved(key, limit, window) {
            return Ok((u32::from(used.allowed), used));
        }
        let (granted, used) = self
            .shared
            .reserve(key, limit, Self::block_size(limit), now)
            .await?;
        let counted = if granted == 0 {
            limit
        } else {
            limit.saturating_sub(used.remaining)
        };
        let mut blocks = self.lock();
        let block = blocks.entry(key.clone()).or_insert(Block {
            window,
            limit,
            left: 0,
            counted,
        });
        if block.window != window || block.limit != limit {
            *block = Block {
                window,
                limit,
                left: 0,
                counted,
            };
        }
        block.counted = block.counted.max(counted);
        if granted == 0 {
            // Spent: later requests this window are refused here, without a write.
            return Ok((0, used));
        }
        // Units left from a concurrent reservation stay usable.
        block.left += granted - 1;
        Ok((1, block.quota_use()))
    }

    async fn refund(&self, key: &QuotaKey, drawn_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.shared.refund(key, drawn_at).await
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let window = window_start(now);
        self.lock().retain(|_, block| block.window >= window);
        self.shared.purge(now).await
    }
}

/// Per-partner changes to the server's default limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// Provisioning requests per hour.
    pub provision_per_hour: Option<u32>,
    /// eSIM reads per hour.
    pub status_per_hour: Option<u32>,
    /// Requests per second.
    pub burst_per_second: Option<u32>,
}

impl LimitOverrides {
    /// The limits that apply: each override, else the default.
    pub fn apply(&self, defaults: &Limits) -> Limits {
        Limits {
            provision_per_hour: self
                .provision_per_hour
                .unwrap_or(defaults.provision_per_hour),
            status_per_hour: self.status_per_hour.unwrap_or(defaults.status_per_hour),
            burst_per_second: self.burst_per_second.unwrap_or(defaults.burst_per_second),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> QuotaKey {
        QuotaKey {
            partner_id: "ptn_1".into(),
            environment: Environment::Sandbox,
            kind: QuotaKind::Provision,
        }
    }

    #[test]
    fn windows_align_to_the_hour() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 19, 42, 7).unwrap();
        assert_eq!(
            window_start(t),
            Utc.with_ymd_and_hms(2026, 11, 26, 19, 0, 0).unwrap()
        );
        let u = quota_use(Some(3), 100, window_start(t));
        assert_eq!((u.allowed, u.remaining), (true, 97));
        assert_eq!(
            u.reset_at,
            Utc.with_ymd_and_hms(2026, 11, 26, 20, 0, 0).unwrap()
        );
        assert!(!quota_use(None, 100, t).allowed);
    }

    /// Counts the reservations that reach the shared counter.
    struct Counted {
        shared: MemoryQuotas,
        calls: std::sync::atomic::AtomicU32,
    }

    #[async_trait]
    impl Quotas for Counted {
        async fn reserve(
            &self,
            key: &QuotaKey,
            limit: u32,
            want: u32,
            now: DateTime<Utc>,
        ) -> Result<(u32, QuotaUse), StoreError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.shared.reserve(key, limit, want, now).await
        }
        async fn refund(&self, key: &QuotaKey, at: DateTime<Utc>) -> Result<(), StoreError> {
            self.shared.refund(key, at).await
        }
        async fn purge(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
            self.shared.purge(now).await
        }
    }

    #[tokio::test]
    async fn status_units_are_reserved_in_blocks_and_never_beyond_the_limit() {
        let shared = std::sync::Arc::new(Counted {
            shared: MemoryQuotas::default(),
            calls: 0.into(),
        });
        // Two instances on one shared counter.
        let (a, b) = (
            ReservingQuotas::new(shared.clone()),
            ReservingQuotas::new(shared.clone()),
        );
        let status = QuotaKey {
            kind: QuotaKind::Status,
            ..key()
        };
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 19, 0, 0).unwrap();
        assert_eq!(ReservingQuotas::block_size(1000), 10);
        let mut admitted = 0;
        let mut last_remaining = u32::MAX;
        for i in 0..1_200 {
            let quotas = if i % 3 == 0 { &b } else { &a };
            let used = quotas.consume(&status, 1000, t).await.unwrap();
            if used.allowed {
                admitted += 1;
                if i % 3 != 0 {
                    assert!(used.remaining < last_remaining, "{used:?}");
                    last_remaining = used.remaining;
                }
            }
        }
        assert!(admitted <= 1000, "{admitted}");
        assert!(
            admitted > 1000 - 2 * 10,
            "at most a block unused per instance: {admitted}"
        );
        let calls = shared.calls.load(std::sync::atomic::Ordering::SeqCst);
        assert!(calls <= 110, "about one shared write per block: {calls}");
        // A small quota is counted one unit at a time, exactly.
        let small = QuotaKey {
            partner_id: "ptn_2".into(),
            ..status.clone()
        };
        let mut admitted = 0;
        for i in 0..10 {
            let quotas = if i % 2 == 0 { &a } else { &b };
            admitted += u32::from(quotas.consume(&small, 5, t).await.unwrap().allowed);
        }
        assert_eq!(admitted, 5);
    }

    #[tokio::test]
    async fn provisioning_units_are_counted_one_by_one() {
        let shared = std::sync::Arc::new(Counted {
            shared: MemoryQuotas::default(),
            calls: 0.into(),
        });
        let quotas = ReservingQuotas::new(shared.clone());
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 19, 0, 0).unwrap();
        for _ in 0..50 {
            assert!(quotas.consume(&key(), 10_000, t).await.unwrap().allowed);
        }
        assert_eq!(shared.calls.load(std::sync::atomic::Ordering::SeqCst), 50);
        quotas.refund(&key(), t).await.unwrap();
        assert_eq!(
            quotas.consume(&key(), 10_000, t).await.unwrap().remaining,
            10_000 - 50
        );
    }

    #[tokio::test]
    async fn memory_quotas_admit_exactly_the_limit_per_window() {
        let quotas = MemoryQuotas::default();
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 19, 0, 0).unwrap();
        for i in 0..3 {
            let u = quotas.consume(&key(), 3, t).await.unwrap();
            assert!(u.allowed);
            assert_eq!(u.remaining, 2 - i);
        }
        assert!(!quotas.consume(&key(), 3, t).await.unwrap().allowed);
        let other = QuotaKey {
            environment: Environment::Production,
            ..key()
        };
        assert!(
            quotas.consume(&other, 3, t).await.unwrap().allowed,
            "environments count apart"
        );
        let next_hour = t + chrono::Duration::hours(1);
        assert!(quotas.consume(&key(), 3, next_hour).await.unwrap().allowed);
        quotas.purge(next_hour).await.unwrap();
        assert_eq!(quotas.windows.lock().unwrap().len(), 1);
        assert!(
            !quotas.consume(&key(), 0, t).await.unwrap().allowed,
            "a zero quota admits nothing"
        );
    }

    #[test]
    fn overrides_replace_defaults() {
        let defaults = Limits {
            provision_per_hour: 100,
            status_per_hour: 1000,
            burst_per_second: 10,
        };
        let o = LimitOverrides {
            burst_per_second: Some(50),
            ..LimitOverrides::default()
        };
        assert_eq!(
            o.apply(&defaults),
            Limits {
                burst_per_second: 50,
                ..defaults.clone()
            }
        );
    }
}
