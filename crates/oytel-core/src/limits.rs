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
    ) -> Result<QuotaUse, StoreError>;
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
    async fn consume(
        &self,
        key: &QuotaKey,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<QuotaUse, StoreError> {
        let window = window_start(now);
        let mut windows = self
            .windows
            .lock()
            .map_err(|_| StoreError::Other("quota counters poisoned".into()))?;
        let entry = windows.entry(key.clone()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        let count = (entry.1 < limit).then(|| {
            entry.1 += 1;
            entry.1
        });
        Ok(quota_use(count, limit, window))
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
