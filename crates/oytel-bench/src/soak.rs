//! The soak: one server (API and workers) under a steady, mixed load for minutes, watched for
//! what a short benchmark cannot show — errors that come only with time, webhooks that go
//! missing, memory or descriptors that keep growing.
//!
//! The load is paced (`--rate` requests a second in all, spread over the connections), so
//! every minute asks the same of the server; each request is one of:
//!
//! | share | request | what follows from it |
//! |---|---|---|
//! | 35 % | `GET /api/v1/plans` | |
//! | 30 % | `GET /api/v1/esim/{id}/status` of an eSIM made in this run | |
//! | 10 % | `POST /api/v1/esim/provision` with an `Idempotency-Key` | an `esim.provisioned` webhook |
//! | 5 % | `GET /api/v1/esims?limit=20` | |
//! | 5 % | `POST /api/v1/operator/activations` of a provisioned eSIM | an `esim.activated` webhook |
//! | 15 % | `POST /api/v1/operator/usage`: 1,500 MB on an active eSIM | `usage.threshold` webhooks |
//!
//! Webhooks go to a local receiver that verifies every signature. The run fails when:
//!
//! | check | fails when |
//! |---|---|
//! | errors | any answer is not 2xx (a 5xx above all), or a request gets no answer (those under way at the end included) |
//! | rate | the requests answered fall below 90 % of `--rate` (the server fell behind) |
//! | webhooks | 60 s after the load, an eSIM provisioned or activated in the run has no verified webhook for it |
//! | memory | the server's RSS in the last third of the run stays above the first third's highest (after a warm-up), by more than 25 % and 16 MiB |
//! | descriptors | the server's open descriptors in the last third all exceed the first third's highest by more than 16 |

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use oytel_types::{EventType, WebhookEvent};

use crate::webhooks::receiver;

const OPERATOR_TOKEN: &str = "soak-operator-token";

/// What the soak is told.
pub(crate) struct SoakArgs {
    pub server_bin: PathBuf,
    pub postgres: Option<String>,
    pub minutes: f64,
    pub rate: u32,
    pub connections: usize,
    pub out: PathBuf,
}

/// One interval's figures, as printed.
#[derive(Debug, Clone, Serialize)]
struct Interval {
    minute: f64,
    requests: u64,
    per_second: f64,
    p99_ms: f64,
    not_2xx: u64,
    server_errors: u64,
    no_answer: u64,
    webhooks_verified: u64,
    rss_mb: f64,
    fds: u64,
}

#[derive(Debug, Serialize)]
struct SoakReport {
    backend: String,
    minutes: f64,
    rate: u32,
    connections: usize,
    intervals: Vec<Interval>,
    provisioned: u64,
    activated: u64,
    usage_records: u64,
    webhooks_missing: u64,
    rss_samples_mb: Vec<f64>,
    fd_samples: Vec<u64>,
    failures: Vec<String>,
}

/// eSIMs made in the run, by what has happened to them.
#[derive(Default)]
struct Esims {
    provisioned: Vec<(String, String)>,
    waiting: Vec<(String, String)>,
    active: Vec<(String, String)>,
    activated: HashSet<String>,
}

/// What the load recorded in the current interval.
#[derive(Default)]
struct Window {
    latencies_us: Vec<u32>,
    not_2xx: u64,
    server_errors: u64,
    no_answer: u64,
}

struct Load {
    base: String,
    key: String,
    esims: Mutex<Esims>,
    window: Mutex<Window>,
    serial: AtomicU64,
    usage_records: AtomicU64,
}

enum Step {
    Plans,
    Status,
    Provision,
    List,
    Activate,
    Usage,
}

fn step(i: u64) -> Step {
    match i % 20 {
        0..=6 => Step::Plans,
        7..=12 => Step::Status,
        13 | 14 => Step::Provision,
        15 => Step::List,
        16 => Step::Activate,
        _ => Step::Usage,
    }
}

impl Load {
    fn pick(
        &self,
        i: u64,
        from: impl Fn(&Esims) -> &Vec<(String, String)>,
    ) -> Option<(String, String)> {
        let esims = self.esims.lock().ok()?;
        let list = from(&esims);
        (!list.is_empty()).then(|| list[(i as usize * 7919) % list.len()].clone())
    }

    /// Sends the `i`-th request of the mix; records its outcome.
    async fn one(&self, client: &reqwest::Client, i: u64) {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let partner = |path: String| {
            client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
        };
        let request = match step(i) {
            Step::Plans => partner("/api/v1/plans".into()),
            Step::Status => match self.pick(i, |e| &e.provisioned) {
                Some((id, _)) => partner(format!("/api/v1/esim/{id}/status")),
                None => partner("/api/v1/plans".into()),
            },
            Step::List => partner("/api/v1/esims?limit=20".into()),
            Step::Provision => client
                .post(format!("{}/api/v1/esim/provision", self.base))
                .bearer_auth(&self.key)
                .header("Idempotency-Key", format!("soak-{n}"))
                .json(&serde_json::json!({
                    "plan_id": "uk-lite-10", "customer_email": "soak@example.com",
                    "customer_name": "Soak"
                })),
            Step::Activate => {
                let next = self.esims.lock().ok().and_then(|mut e| e.waiting.pop());
                match next {
                    Some(esim) => {
                        return self.activate(client, esim).await;
                    }
                    None => partner("/api/v1/plans".into()),
                }
            }
            Step::Usage => match self.pick(i, |e| &e.active) {
                Some((_, iccid)) => {
                    self.usage_records.fetch_add(1, Ordering::Relaxed);
                    client
                        .post(format!("{}/api/v1/operator/usage", self.base))
                        .bearer_auth(OPERATOR_TOKEN)
                        .json(&serde_json::json!({"records": [{
                            "record_id": format!("soak-usage-{n}"), "iccid": iccid,
                            "data_mb": 1500, "recorded_at": chrono::Utc::now()
                        }]}))
                }
                None => partner("/api/v1/plans".into()),
            },
        };
        let provision = matches!(step(i), Step::Provision);
        let started = Instant::now();
        let answer = request.send().await;
        let body = match answer {
            Ok(response) => {
                let status = response.status();
                let body = response.bytes().await.ok();
                self.record(started, Some(status.as_u16()), body.is_some());
                if status.is_success() {
                    body
                } else {
                    None
                }
            }
            Err(_) => {
                self.record(started, None, false);
                None
            }
        };
        if let (true, Some(body)) = (provision, body) {
            let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let (Some(id), Some(iccid)) = (answer["esim_id"].as_str(), answer["iccid"].as_str())
            {
                if let Ok(mut esims) = self.esims.lock() {
                    let esim = (id.to_owned(), iccid.to_owned());
                    esims.provisioned.push(esim.clone());
                    esims.waiting.push(esim);
                }
            }
        }
    }

    async fn activate(&self, client: &reqwest::Client, esim: (String, String)) {
        let started = Instant::now();
        let answer = client
            .post(format!("{}/api/v1/operator/activations", self.base))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&serde_json::json!({"activations": [{"iccid": esim.1}]}))
            .send()
            .await;
        let applied = match answer {
            Ok(response) => {
                let status = response.status();
                let body: Option<serde_json::Value> = response.json().await.ok();
                self.record(started, Some(status.as_u16()), body.is_some());
                status.is_success() && body.is_some_and(|b| b["results"][0]["status"] == "applied")
            }
            Err(_) => {
                self.record(started, None, false);
                false
            }
        };
        if let Ok(mut esims) = self.esims.lock() {
            if applied {
                esims.activated.insert(esim.0.clone());
                esims.active.push(esim);
            } else {
                esims.waiting.push(esim);
            }
        }
    }

    fn record(&self, started: Instant, status: Option<u16>, read_whole: bool) {
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        if let Ok(mut window) = self.window.lock() {
            window.latencies_us.push(us);
            match status {
                Some(s) if (200..300).contains(&s) && read_whole => {}
                Some(s) if s >= 500 => {
                    window.not_2xx += 1;
                    window.server_errors += 1;
                }
                Some(_) => window.not_2xx += 1,
                None => window.no_answer += 1,
            }
        }
    }
}

fn rss_mb(pid: u32) -> f64 {
    crate::proc_status_kb(pid, "VmRSS:") / 1024.0
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Runs the soak and prints its figures; fails on any of the module's checks.
pub(crate) async fn soak(args: SoakArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("oytel-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (url, backend) = crate::fresh_database(args.postgres.as_deref(), &dir).await?;
    let (_scope, key) = crate::bench_partner(&url).await?;
    let log = dir.join("server.log");
    let server = crate::start_server(
        &args.server_bin,
        &url,
        &log,
        true,
        &[("OYTEL_OPERATOR_TOKEN", OPERATOR_TOKEN)],
    )?;
    let pid = server.child.id();

    let (hook_url, received, receiver_task) = receiver().await?;
    let client = reqwest::Client::new();
    let endpoint: serde_json::Value = client
        .post(format!("{}/api/v1/webhooks/endpoints", server.base))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": hook_url,
            "events": ["esim.provisioned", "esim.activated", "usage.threshold"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    received.set_secret(endpoint["secret"].as_str().context("endpoint secret")?)?;

    let load = Arc::new(Load {
        base: server.base.clone(),
        key,
        esims: Mutex::new(Esims::default()),
        window: Mutex::new(Window::default()),
        serial: AtomicU64::new(0),
        usage_records: AtomicU64::new(0),
    });
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let interval = Duration::from_secs(60).min(duration / 6);
    let started = Instant::now();
    let deadline = started + duration;
    let counter = Arc::new(AtomicU64::new(0));
    let per_connection = Duration::from_secs_f64(args.connections as f64 / f64::from(args.rate));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (load, counter) = (load.clone(), counter.clone());
        tasks.spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default();
            let mut tick = tokio::time::interval(per_connection);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < deadline {
                tick.tick().await;
                load.one(&client, counter.fetch_add(1, Ordering::Relaxed))
                    .await;
            }
        });
    }

    println!(
        "soak: {backend}, {:.1} min, {} requests/s over {} connections",
        args.minutes, args.rate, args.connections
    );
    println!(
        "{:>7} {:>9} {:>8} {:>9} {:>8} {:>5} {:>9} {:>9} {:>8} {:>5}",
        "minute",
        "requests",
        "req/s",
        "p99 ms",
        "not 2xx",
        "5xx",
        "no answer",
        "webhooks",
        "RSS MB",
        "fds"
    );
    let mut intervals = Vec::new();
    let (mut rss_samples, mut fd_samples) = (Vec::new(), Vec::new());
    let mut next_report = started + interval;
    let mut window_started = started;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5).min(interval)).await;
        rss_samples.push(rss_mb(pid));
        fd_samples.push(open_fds(pid));
        if Instant::now() >= next_report || Instant::now() >= deadline {
            let window =
                std::mem::take(&mut *load.window.lock().map_err(|_| anyhow::anyhow!("lock"))?);
            let seconds = window_started.elapsed().as_secs_f64();
            window_started = Instant::now();
            next_report += interval;
            let row = interval_row(started, seconds, window, received.count(), pid);
            print_row(&format!("{:.1}", row.minute), &row);
            intervals.push(row);
        }
    }
    while tasks.join_next().await.is_some() {}
    // The requests still under way at the deadline, counted with their outcome.
    let late = std::mem::take(&mut *load.window.lock().map_err(|_| anyhow::anyhow!("lock"))?);
    if !late.latencies_us.is_empty() || late.no_answer > 0 {
        let seconds = window_started.elapsed().as_secs_f64();
        let row = interval_row(started, seconds, late, received.count(), pid);
        print_row("end", &row);
        intervals.push(row);
    }

    // Every eSIM provisioned or activated has its webhook, within a minute of the load.
    let (provisioned, activated): (HashSet<String>, HashSet<String>) = {
        let esims = load.esims.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        (
            esims.provisioned.iter().map(|e| e.0.clone()).collect(),
            esims.activated.clone(),
        )
    };
    let missing = |received: &crate::webhooks::Received| {
        let mut seen: HashSet<(EventType, String)> = HashSet::new();
        for delivery in received.deliveries() {
            if let Ok(event) = serde_json::from_slice::<WebhookEvent>(&delivery.body) {
                seen.insert((event.event, event.data.esim_id));
            }
        }
        let lost = |kind: EventType, ids: &HashSet<String>| {
            ids.iter()
                .filter(|id| !seen.contains(&(kind, (*id).clone())))
                .count()
        };
        let lost_provisioned = lost(EventType::EsimProvisioned, &provisioned);
        let lost_activated = lost(EventType::EsimActivated, &activated);
        (lost_provisioned + lost_activated) as u64
    };
    let drain = Instant::now() + Duration::from_secs(60);
    let mut webhooks_missing = missing(&received);
    while webhooks_missing > 0 && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(250)).await;
        webhooks_missing = missing(&received);
    }
    receiver_task.abort();
    drop(server);

    let mut failures = Vec::new();
    let total = |f: fn(&Interval) -> u64| intervals.iter().map(f).sum::<u64>();
    let (not_2xx, server_errors, no_answer) = (
        total(|i| i.not_2xx),
        total(|i| i.server_errors),
        total(|i| i.no_answer),
    );
    if not_2xx + no_answer > 0 {
        failures.push(format!(
            "{not_2xx} answers were not 2xx ({server_errors} were 5xx) and {no_answer} requests got no answer"
        ));
    }
    // A server that stalls slows a paced load down instead of failing it: the rate must hold.
    let achieved = total(|i| i.requests) as f64 / duration.as_secs_f64();
    if achieved < 0.9 * f64::from(args.rate) {
        failures.push(format!(
            "the load ran at {achieved:.0} requests/s, below 90 % of the {} asked: the server fell behind",
            args.rate
        ));
    }
    if webhooks_missing > 0 {
        failures.push(format!(
            "{webhooks_missing} webhooks of eSIMs provisioned or activated in the run never arrived"
        ));
    }
    if provisioned.is_empty() || activated.is_empty() {
        failures.push("the run provisioned or activated nothing: the load did not work".into());
    }
    if let Some(grew) = keeps_growing(&rss_samples, |first, last| {
        last > first * 1.25 && last > first + 16.0
    }) {
        failures.push(format!("the server's RSS kept growing: {grew}"));
    }
    let fds: Vec<f64> = fd_samples.iter().map(|&n| n as f64).collect();
    if let Some(grew) = keeps_growing(&fds, |first, last| last > first + 16.0) {
        failures.push(format!(
            "the server's open descriptors kept growing: {grew}"
        ));
    }
    let report = SoakReport {
        backend,
        minutes: args.minutes,
        rate: args.rate,
        connections: args.connections,
        intervals,
        provisioned: provisioned.len() as u64,
        activated: activated.len() as u64,
        usage_records: load.usage_records.load(Ordering::Relaxed),
        webhooks_missing,
        rss_samples_mb: rss_samples,
        fd_samples,
        failures: failures.clone(),
    };
    let deliveries = received.deliveries();
    let distinct: HashSet<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    println!(
        "eSIMs provisioned {}, activated {}, usage records {}; webhooks verified {} ({} distinct), missing {}",
        report.provisioned,
        report.activated,
        report.usage_records,
        deliveries.len(),
        distinct.len(),
        report.webhooks_missing
    );
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("figures written to {}", args.out.display());
    let _ = std::fs::remove_dir_all(&dir);
    if !failures.is_empty() {
        bail!("the soak failed:\n- {}", failures.join("\n- "));
    }
    println!("soak passed: no error, no lost webhook, memory and descriptors level");
    Ok(())
}

/// One line of the table: `label` in the minute column.
fn print_row(label: &str, row: &Interval) {
    println!(
        "{label:>7} {:>9} {:>8.0} {:>9.1} {:>8} {:>5} {:>9} {:>9} {:>8.1} {:>5}",
        row.requests,
        row.per_second,
        row.p99_ms,
        row.not_2xx,
        row.server_errors,
        row.no_answer,
        row.webhooks_verified,
        row.rss_mb,
        row.fds
    );
}

fn interval_row(
    started: Instant,
    seconds: f64,
    mut window: Window,
    webhooks: u64,
    pid: u32,
) -> Interval {
    window.latencies_us.sort_unstable();
    let p99 = window
        .latencies_us
        .get(
            ((window.latencies_us.len() as f64 - 1.0) * 0.99)
                .round()
                .max(0.0) as usize,
        )
        .map_or(0.0, |us| f64::from(*us) / 1000.0);
    Interval {
        minute: started.elapsed().as_secs_f64() / 60.0,
        requests: window.latencies_us.len() as u64,
        per_second: window.latencies_us.len() as f64 / seconds.max(0.001),
        p99_ms: p99,
        not_2xx: window.not_2xx,
        server_errors: window.server_errors,
        no_answer: window.no_answer,
        webhooks_verified: webhooks,
        rss_mb: rss_mb(pid),
        fds: open_fds(pid),
    }
}

/// Whether `samples` (taken at a steady pace) keep growing: after a warm-up (the first sixth),
/// every sample of the last third is above the highest of the first third, and `grew(highest
/// first, lowest last)` holds. Returns the figures when they do.
fn keeps_growing(samples: &[f64], grew: impl Fn(f64, f64) -> bool) -> Option<String> {
    let warm = &samples[samples.len() / 6..];
    if warm.len() < 3 {
        return None;
    }
    let third = warm.len() / 3;
    let first = warm[..third.max(1)]
        .iter()
        .copied()
        .fold(f64::MIN, f64::max);
    let last = warm[warm.len() - third.max(1)..]
        .iter()
        .copied()
        .fold(f64::MAX, f64::min);
    grew(first, last).then(|| format!("from at most {first:.1} to at least {last:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_that_levels_off_is_not_growth_but_memory_that_climbs_is() {
        let rule = |first: f64, last: f64| last > first * 1.25 && last > first + 16.0;
        let warming_then_level = [
            20.0, 60.0, 80.0, 81.0, 80.0, 82.0, 81.0, 80.0, 82.0, 81.0, 82.0, 81.0,
        ];
        assert_eq!(keeps_growing(&warming_then_level, rule), None);
        let climbing: Vec<f64> = (0..12).map(|i| 50.0 + 10.0 * f64::from(i)).collect();
        assert!(keeps_growing(&climbing, rule).is_some());
        assert_eq!(
            keeps_growing(&[1.0, 2.0], rule),
            None,
            "too few samples to tell"
        );
    }

    #[test]
    fn the_mix_has_the_documented_shares() {
        let mut counts = [0u32; 6];
        for i in 0..20 {
            let slot = match step(i) {
                Step::Plans => 0,
                Step::Status => 1,
                Step::Provision => 2,
                Step::List => 3,
                Step::Activate => 4,
                Step::Usage => 5,
            };
            counts[slot] += 1;
        }
        assert_eq!(counts, [7, 6, 2, 1, 1, 3]);
    }
}
