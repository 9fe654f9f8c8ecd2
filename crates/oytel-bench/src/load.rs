//! The load generator: `connections` tasks, each sending one request at a time over its own
//! keep-alive connection for a fixed duration, recording every latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Requests completed.
    pub requests: u64,
    /// Requests that failed or answered other than 2xx.
    pub errors: u64,
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Sends requests made by `make(i)` (`i` counts up across all connections) from
/// `connections` tasks for `duration`.
pub async fn run<F>(connections: usize, duration: Duration, make: F) -> Stats
where
    F: Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (make, counter) = (make.clone(), counter.clone());
            tokio::spawn(async move {
                // One client per task: one keep-alive connection each, like `wrk`.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap_or_default();
                let mut latencies = Vec::with_capacity(4096);
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let ok = match make(&client, i).send().await {
                        Ok(response) => {
                            let success = response.status().is_success();
                            response.bytes().await.is_ok() && success
                        }
                        Err(_) => false,
                    };
                    latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((latencies, e)) = task.await {
            all.extend(latencies);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let percentile = |p: f64| {
        if all.is_empty() {
            return 0.0;
        }
        let index = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[index]) / 1000.0
    };
    Stats {
        requests: all.len() as u64,
        errors,
        rps: all.len() as f64 / elapsed,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    }
}
