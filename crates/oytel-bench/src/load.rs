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

/// Makes the `i`-th request (`i` counts up across all connections of a run).
pub type Maker = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// What one run recorded: every latency (µs), the failures and how long it took.
struct Samples {
    latencies: Vec<u32>,
    errors: u64,
    elapsed: f64,
}

impl Samples {
    fn merge(runs: Vec<Samples>) -> Samples {
        let mut merged = Samples {
            latencies: Vec::new(),
            errors: 0,
            elapsed: 0.0,
        };
        for run in runs {
            merged.latencies.extend(run.latencies);
            merged.errors += run.errors;
            merged.elapsed += run.elapsed;
        }
        merged
    }

    fn stats(mut self) -> Stats {
        self.latencies.sort_unstable();
        let all = &self.latencies;
        let percentile = |p: f64| {
            if all.is_empty() {
                return 0.0;
            }
            let index = ((all.len() as f64 - 1.0) * p).round() as usize;
            f64::from(all[index]) / 1000.0
        };
        Stats {
            requests: all.len() as u64,
            errors: self.errors,
            rps: if self.elapsed > 0.0 {
                all.len() as f64 / self.elapsed
            } else {
                0.0
            },
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
        }
    }
}

/// Sends requests made by `make` from `connections` tasks for `duration`.
pub async fn run(connections: usize, duration: Duration, make: Maker) -> Stats {
    sample(connections, duration, make).await.stats()
}

/// Measures `base` and `ours` alternately, `rounds` times each, for `duration` in all per
/// side: a slow moment of the machine then falls on both sides instead of one.
pub async fn compare(
    connections: usize,
    duration: Duration,
    rounds: u32,
    base: Maker,
    ours: Maker,
) -> (Stats, Stats) {
    let rounds = rounds.max(1);
    let slice = duration / rounds;
    let (mut base_runs, mut our_runs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        base_runs.push(sample(connections, slice, base.clone()).await);
        our_runs.push(sample(connections, slice, ours.clone()).await);
    }
    (
        Samples::merge(base_runs).stats(),
        Samples::merge(our_runs).stats(),
    )
}

async fn sample(connections: usize, duration: Duration, make: Maker) -> Samples {
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
    let mut samples = Samples {
        latencies: Vec::new(),
        errors: 0,
        elapsed: 0.0,
    };
    for task in tasks {
        if let Ok((latencies, e)) = task.await {
            samples.latencies.extend(latencies);
            samples.errors += e;
        }
    }
    samples.elapsed = started.elapsed().as_secs_f64();
    samples
}
