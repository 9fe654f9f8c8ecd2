//! `oytel-bench`: the server against bare baselines, measured in the same run on the same
//! machine. Run it with `cargo xtask bench` (which builds the release binaries first).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod baseline;
mod load;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use oytel_core::catalog::Catalog;
use oytel_core::clock::now;
use oytel_core::keys::generate_api_key;
use oytel_core::limits::LimitOverrides;
use oytel_core::ports::{Charge, Partner, ProvisionWrite, Storage};
use oytel_core::provision::{new_rows, validate, ProvisionSettings};
use oytel_core::Scope;
use oytel_types::{Amount, Environment, EventType, ProvisionRequest};
use serde::Serialize;

use crate::load::Stats;

#[derive(Debug, Parser)]
#[command(name = "oytel-bench")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the benchmark.
    Run(RunArgs),
    /// Serve the baselines (started by `run`).
    Baseline {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 8)]
        connections: u32,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// The oytel-server binary (release).
    #[arg(long)]
    server_bin: PathBuf,
    /// eSIMs in the database for the main runs.
    #[arg(long, default_value_t = 100_000)]
    esims: u64,
    /// The scale run compares 10k with 1M eSIMs (instead of 10k with --esims).
    #[arg(long)]
    large: bool,
    /// A few seconds per route, one connection count, a small database: checks that the bench
    /// runs, not speed.
    #[arg(long)]
    smoke: bool,
    /// Seconds per measurement (per side of a comparison).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Each comparison alternates baseline and server this many times, splitting the
    /// seconds between the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Connection counts.
    #[arg(long, value_delimiter = ',', default_value = "32,256")]
    connections: Vec<usize>,
    /// A PostgreSQL admin URL: benchmark on a fresh database there instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Where the JSON figures go.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
}

#[derive(Debug, Serialize)]
struct Comparison {
    route: String,
    connections: usize,
    baseline: String,
    ours: Stats,
    base: Stats,
    ratio: f64,
    target: f64,
    peak_rss_mb: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: String,
    esims: u64,
    machine: String,
    comparisons: Vec<Comparison>,
    scale: Vec<(u64, Stats)>,
    webhooks_per_second: f64,
    webhooks_delivered: u64,
    /// The same run with a second endpoint that never answers: the healthy one's rate.
    webhooks_beside_hanging_per_second: f64,
    webhooks_beside_hanging_delivered: u64,
    peak_rss_mb: f64,
}

struct Proc {
    child: Child,
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn start_server(bin: &PathBuf, url: &str, log: &PathBuf, workers: bool) -> Result<Proc> {
    let log_file = std::fs::File::create(log)?;
    let child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--mode", "production"])
        .env("OYTEL_DATABASE_URL", url)
        .env("OYTEL_WORKERS", if workers { "true" } else { "false" })
        .env("OYTEL_LOG_FORMAT", "json")
        .env("OYTEL_WEBHOOK_ALLOW_PRIVATE", "true")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("starting oytel-server")?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if v["fields"]["message"] == "Oytel API ready" {
                    let listen = v["fields"]["listen"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    return Ok(Proc {
                        child,
                        base: format!("http://{listen}"),
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("oytel-server did not become ready; see {}", log.display())
}

fn start_baseline(url: &str) -> Result<Proc> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["baseline", "--listen", "127.0.0.1:0", "--database-url", url])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("baseline stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("ready ")
        .context("baseline did not start")?;
    Ok(Proc {
        base: format!("http://{address}"),
        child,
    })
}

/// eSIMs seeded so far in this run: the source of their numbers.
static SEEDED: AtomicU64 = AtomicU64::new(0);

/// Seeds `count` sandbox eSIMs for `scope`, in transactions of 5000; returns some of their ids.
async fn seed(url: &str, scope: &Scope, count: u64) -> Result<Vec<String>> {
    let catalog = Catalog::default_catalog();
    let request = ProvisionRequest {
        plan_id: "eu-roam-50".into(),
        term_months: 1,
        customer_email: "bench@example.com".into(),
        customer_name: "Bench".into(),
        reference_id: None,
        webhook_url: None,
    };
    let command = validate(&request, &catalog)?;
    let settings = ProvisionSettings {
        smdp_address: "smdp.bench".into(),
        minimum_balance: Amount::ZERO,
    };
    let pool = oytel_store::PoolOptions::default();
    let (sqlite, pg) = if url.starts_with("sqlite:") {
        (
            Some(oytel_store::SqliteStore::open(url, &pool).await?),
            None,
        )
    } else {
        (None, Some(oytel_store::PgStore::open(url, &pool).await?))
    };
    let mut sample = Vec::new();
    let mut left = count;
    let mut collisions = 0;
    while left > 0 {
        let batch = left.min(5000);
        let writes: Vec<ProvisionWrite> = (0..batch)
            .map(|_| {
                let (order, mut esim) =
                    new_rows(&command, scope, &settings, "USD", "req_seed", now());
                // Random numbers would collide in almost every batch once a million are
                // stored (provisioning retries a collision; a batch would be lost whole), so
                // seeded eSIMs take valid numbers from a counter instead.
                let n = SEEDED.fetch_add(1, Ordering::Relaxed);
                esim.msisdn = format!("+4479{n:08}");
                let body = format!("{}9{n:011}", oytel_core::numbers::ICCID_PREFIX);
                esim.iccid = format!("{body}{}", oytel_core::numbers::luhn_check_digit(&body));
                let event = oytel_core::webhooks::esim_event(
                    EventType::EsimProvisioned,
                    &esim,
                    None,
                    now(),
                );
                ProvisionWrite {
                    order,
                    esim,
                    charge: Charge::Sandbox {
                        balance_cents: 10_000,
                    },
                    idempotency: None,
                    event,
                }
            })
            .collect();
        let seeded = match (&sqlite, &pg) {
            (Some(s), _) => match s.seed(&writes).await {
                Ok(()) => s.checkpoint().await,
                failed => failed,
            },
            (_, Some(p)) => p.seed(&writes).await,
            _ => unreachable!("one store is open"),
        };
        match seeded {
            // Random numbers collide now and then (the birthday bound), as in provisioning:
            // the batch was rolled back, so draw it again.
            Err(oytel_core::ports::StoreError::Duplicate(_)) if collisions < 50 => {
                collisions += 1;
                continue;
            }
            result => result?,
        }
        if sample.len() < 2000 {
            sample.extend(writes.iter().take(50).map(|w| w.esim.id.clone()));
        }
        left -= batch;
    }
    if collisions > 0 {
        eprintln!("({collisions} seed batches drew colliding numbers and were drawn again)");
    }
    match (&sqlite, &pg) {
        (Some(s), _) => s.analyze().await?,
        (_, Some(p)) => p.analyze().await?,
        _ => unreachable!("one store is open"),
    }
    Ok(sample)
}

/// What the webhook receiver counts: verified deliveries and when they arrived.
#[derive(Clone, Default)]
struct Received {
    secret: Arc<std::sync::Mutex<Option<oytel_webhooks::Secret>>>,
    times: Arc<std::sync::Mutex<Vec<Instant>>>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Received>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let Some(secret) = r.secret.lock().ok().and_then(|s| s.clone()) else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    };
    let now = chrono::Utc::now().timestamp();
    let verified = oytel_webhooks::verify(
        &secret,
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        now,
    );
    if verified.is_err() {
        return axum::http::StatusCode::BAD_REQUEST;
    }
    if let Ok(mut times) = r.times.lock() {
        times.push(Instant::now());
    }
    axum::http::StatusCode::NO_CONTENT
}

/// An endpoint that accepts connections, reads, and never answers: every attempt to it runs
/// into the worker's timeout.
async fn hanging_endpoint() -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok((url, task))
}

/// Provisions `events` eSIMs through `server` (which runs no workers, so their
/// `esim.provisioned` deliveries wait), then starts an instance that delivers them, and
/// measures how fast they reach a local receiver that verifies every signature: verified
/// deliveries per second, from the first to the last. With `beside_hanging`, a second
/// endpoint that never answers gets the same events: the figure is still the healthy
/// receiver's. The endpoints are deleted afterwards, so a later run starts clean.
async fn webhook_throughput(
    server: &str,
    key: &str,
    events: u64,
    beside_hanging: bool,
    start_worker: impl FnOnce() -> Result<Proc>,
) -> Result<(u64, f64)> {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let hanging = if beside_hanging {
        Some(hanging_endpoint().await?)
    } else {
        None
    };
    let mut endpoints = Vec::new();
    let urls = std::iter::once(receiver_url.clone()).chain(hanging.iter().map(|h| h.0.clone()));
    for url in urls {
        let created: serde_json::Value = client
            .post(format!("{server}/api/v1/webhooks/endpoints"))
            .bearer_auth(key)
            .json(&serde_json::json!({"url": url, "events": ["esim.provisioned"]}))
            .send()
            .await?
            .json()
            .await?;
        if url == receiver_url {
            let secret = oytel_webhooks::Secret::parse(
                created["secret"].as_str().context("endpoint secret")?,
            )?;
            if let Ok(mut slot) = received.secret.lock() {
                *slot = Some(secret);
            }
        }
        endpoints.push(created["id"].as_str().context("endpoint id")?.to_owned());
    }
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, server, key) = (client.clone(), server.to_owned(), key.to_owned());
        senders.spawn(async move {
            for _ in 0..events.div_ceil(16) {
                let _ = client
                    .post(format!("{server}/api/v1/esim/provision"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"plan_id": "uk-lite-10", "customer_email": "w@example.com", "customer_name": "W"}))
                    .send()
                    .await;
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let worker = start_worker()?;
    let expected = events.div_ceil(16) * 16;
    let deadline = Instant::now() + Duration::from_secs(180);
    let count = || {
        received
            .times
            .lock()
            .map(|t| t.len() as u64)
            .unwrap_or_default()
    };
    while count() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    drop(worker);
    if let Some((_, hanging)) = hanging {
        hanging.abort();
    }
    for id in endpoints {
        client
            .delete(format!("{server}/api/v1/webhooks/endpoints/{id}"))
            .bearer_auth(key)
            .send()
            .await?
            .error_for_status()?;
    }
    let times = received.times.lock().map(|t| t.clone()).unwrap_or_default();
    let rate = match (times.first(), times.last()) {
        (Some(first), Some(last)) if last > first => {
            times.len() as f64 / (*last - *first).as_secs_f64()
        }
        _ => 0.0,
    };
    Ok((times.len() as u64, rate))
}

fn print_table(report: &Report) {
    println!();
    println!(
        "Oytel benchmark — {} backend, {} eSIMs, {}",
        report.backend, report.esims, report.machine
    );
    println!(
        "{:<34} {:>5} {:>10} {:>8} {:>8} {:>6} {:>10} {:>8} {:>8} {:>7} {:>7}",
        "route (baseline)",
        "conns",
        "ours rps",
        "p50 ms",
        "p99 ms",
        "errs",
        "base rps",
        "p50 ms",
        "p99 ms",
        "ratio",
        "target"
    );
    for c in &report.comparisons {
        println!(
            "{:<34} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>6} {:>10.0} {:>8.2} {:>8.2} {:>6.2}x {:>6.1}x{}",
            format!("{} ({})", c.route, c.baseline),
            c.connections,
            c.ours.rps,
            c.ours.p50_ms,
            c.ours.p99_ms,
            c.ours.errors,
            c.base.rps,
            c.base.p50_ms,
            c.base.p99_ms,
            c.ratio,
            c.target,
            if c.ratio >= c.target { "" } else { "  MISSED" }
        );
    }
    for (esims, stats) in &report.scale {
        println!(
            "status with {esims:>8} eSIMs (32 conns): p50 {:.2} ms, p99 {:.2} ms, {:.0} rps",
            stats.p50_ms, stats.p99_ms, stats.rps
        );
    }
    if let [(_, small), (_, large)] = report.scale.as_slice() {
        let ratio = if small.p50_ms > 0.0 {
            large.p50_ms / small.p50_ms
        } else {
            0.0
        };
        println!("status p50 large/small: {ratio:.2}x (target at most 1.3x)");
    }
    println!(
        "webhooks: {} delivered and verified, {:.0} per second (target 2000)",
        report.webhooks_delivered, report.webhooks_per_second
    );
    let ratio = if report.webhooks_per_second > 0.0 {
        report.webhooks_beside_hanging_per_second / report.webhooks_per_second
    } else {
        0.0
    };
    println!(
        "webhooks beside an endpoint that never answers: {} delivered, {:.0} per second, \
         {ratio:.2}x the all-healthy figure (target at least 0.8x)",
        report.webhooks_beside_hanging_delivered, report.webhooks_beside_hanging_per_second
    );
    println!(
        "server peak RSS: {:.1} MB (target under 64 MB)",
        report.peak_rss_mb
    );
}

async fn run(args: RunArgs) -> Result<()> {
    let (esims, seconds, connections, rounds) = if args.smoke {
        (1_000, 1, vec![32], 1)
    } else {
        (
            args.esims,
            args.seconds,
            args.connections.clone(),
            args.rounds,
        )
    };
    let duration = Duration::from_secs(seconds.max(1));
    let dir = std::env::temp_dir().join(format!("oytel-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (url, backend) = match &args.postgres {
        Some(admin) => {
            let name = format!("oytel_bench_{}", std::process::id());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut conn)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            (format!("{base}/{name}"), "PostgreSQL".to_owned())
        }
        None => (
            format!("sqlite:{}", dir.join("bench.db").display()),
            "SQLite".to_owned(),
        ),
    };
    // A partner whose limits do not get in the way, with a sandbox key.
    let opened = oytel_store::open(&url, &oytel_store::PoolOptions::default()).await?;
    let store: Arc<dyn Storage> = opened.storage;
    let partner = Partner::new("Bench", None)?;
    store.create_partner(&partner).await?;
    let unlimited = LimitOverrides {
        provision_per_hour: Some(u32::MAX),
        status_per_hour: Some(u32::MAX),
        burst_per_second: Some(1_000_000),
    };
    store.set_partner_limits(&partner.id, &unlimited).await?;
    let key = generate_api_key(&partner.id, Environment::Sandbox);
    store.create_api_key(&key.record).await?;
    let scope = Scope {
        partner_id: partner.id.clone(),
        environment: Environment::Sandbox,
    };
    let api_key = key.plaintext;

    // Scale, small: 10k eSIMs.
    let small = 10_000.min(esims);
    eprintln!("seeding {small} eSIMs…");
    let mut ids = seed(&url, &scope, small).await?;
    let log = dir.join("server.log");
    // The API instance runs no workers; the webhook run starts one that does.
    let server = start_server(&args.server_bin, &url, &log, false)?;
    let pid = server.child.id();
    let status_load = |base: String, key: String, ids: Arc<Vec<String>>| -> load::Maker {
        Arc::new(move |client: &reqwest::Client, i: u64| {
            let id = &ids[(i as usize) % ids.len()];
            client
                .get(format!("{base}/api/v1/esim/{id}/status"))
                .bearer_auth(&key)
        })
    };
    let mut scale = Vec::new();
    let stats = load::run(
        32,
        duration,
        status_load(server.base.clone(), api_key.clone(), Arc::new(ids.clone())),
    )
    .await;
    scale.push((small, stats));
    let large = if args.large && !args.smoke {
        1_000_000
    } else {
        esims.max(small)
    };
    if large > small {
        eprintln!("seeding up to {large} eSIMs…");
        ids.extend(seed(&url, &scope, large - small).await?);
        let stats = load::run(
            32,
            duration,
            status_load(server.base.clone(), api_key.clone(), Arc::new(ids.clone())),
        )
        .await;
        scale.push((large, stats));
    }
    let ids = Arc::new(ids);

    let baseline = start_baseline(&url)?;
    let mut comparisons = Vec::new();
    let serial = Arc::new(AtomicU64::new(0));
    for &conns in &connections {
        let routes: Vec<(&str, &str, f64, load::Maker, load::Maker)> = {
            let (b, s, k) = (baseline.base.clone(), server.base.clone(), api_key.clone());
            let (ids1, ids2, ids3, ids4) = (ids.clone(), ids.clone(), ids.clone(), ids.clone());
            let (k2, k3, k4, s2, s3, s4, b2, b3, b4) = (
                k.clone(),
                k.clone(),
                k.clone(),
                s.clone(),
                s.clone(),
                s.clone(),
                b.clone(),
                b.clone(),
                b.clone(),
            );
            let serial = serial.clone();
            vec![
                (
                    "GET /api/v1/plans",
                    "bare axum JSON",
                    0.6,
                    Arc::new(move |c: &reqwest::Client, _| c.get(format!("{b}/json"))),
                    Arc::new(move |c: &reqwest::Client, _| {
                        c.get(format!("{s}/api/v1/plans")).bearer_auth(&k)
                    }),
                ),
                (
                    "GET /api/v1/esim/{id}/status",
                    "raw sqlx PK read",
                    0.6,
                    Arc::new(move |c: &reqwest::Client, i| {
                        c.get(format!("{b2}/row/{}", ids1[(i as usize) % ids1.len()]))
                    }),
                    Arc::new(move |c: &reqwest::Client, i| {
                        c.get(format!(
                            "{s2}/api/v1/esim/{}/status",
                            ids2[(i as usize) % ids2.len()]
                        ))
                        .bearer_auth(&k2)
                    }),
                ),
                (
                    "GET /api/v1/esim/{id}",
                    "raw sqlx PK read",
                    0.6,
                    Arc::new(move |c: &reqwest::Client, i| {
                        c.get(format!("{b3}/row/{}", ids3[(i as usize) % ids3.len()]))
                    }),
                    Arc::new(move |c: &reqwest::Client, i| {
                        c.get(format!(
                            "{s3}/api/v1/esim/{}",
                            ids4[(i as usize) % ids4.len()]
                        ))
                        .bearer_auth(&k3)
                    }),
                ),
                (
                    "POST /api/v1/esim/provision",
                    "raw insert tx",
                    0.4,
                    Arc::new(move |c: &reqwest::Client, _| c.post(format!("{b4}/insert"))),
                    Arc::new(move |c: &reqwest::Client, _| {
                        let n = serial.fetch_add(1, Ordering::Relaxed);
                        c.post(format!("{s4}/api/v1/esim/provision"))
                            .bearer_auth(&k4)
                            .header("Idempotency-Key", format!("bench-{n}"))
                            .json(&serde_json::json!({"plan_id": "uk-lite-10", "customer_email": "b@example.com", "customer_name": "B"}))
                    }),
                ),
            ]
        };
        for (route, base_name, target, base_make, ours_make) in routes {
            eprintln!("{route} at {conns} connections…");
            let (base, ours) = load::compare(conns, duration, rounds, base_make, ours_make).await;
            let ratio = if base.rps > 0.0 {
                ours.rps / base.rps
            } else {
                0.0
            };
            comparisons.push(Comparison {
                route: route.to_owned(),
                connections: conns,
                baseline: base_name.to_owned(),
                ours,
                base,
                ratio,
                target,
                peak_rss_mb: peak_rss_mb(pid),
            });
        }
    }
    drop(baseline);
    eprintln!("webhook deliveries…");
    let events = if args.smoke { 200 } else { 5_000 };
    let worker_log = dir.join("worker.log");
    let (delivered, per_second) = webhook_throughput(&server.base, &api_key, events, false, || {
        start_server(&args.server_bin, &url, &worker_log, true)
    })
    .await?;
    eprintln!("webhook deliveries beside an endpoint that never answers…");
    let (beside_hanging, beside_hanging_per_second) =
        webhook_throughput(&server.base, &api_key, events, true, || {
            start_server(&args.server_bin, &url, &worker_log, true)
        })
        .await?;
    let report = Report {
        backend,
        esims: large,
        machine: format!(
            "{} cores, {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            std::env::consts::ARCH
        ),
        comparisons,
        scale,
        webhooks_per_second: per_second,
        webhooks_delivered: delivered,
        webhooks_beside_hanging_per_second: beside_hanging_per_second,
        webhooks_beside_hanging_delivered: beside_hanging,
        peak_rss_mb: peak_rss_mb(pid),
    };
    drop(server);
    print_table(&report);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("figures written to {}", args.out.display());
    let _ = std::fs::remove_dir_all(&dir);
    if report
        .comparisons
        .iter()
        .any(|c| c.ours.requests == 0 || c.base.requests == 0)
        || delivered == 0
        || beside_hanging == 0
    {
        bail!("a measurement completed no request");
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::Baseline {
            listen,
            database_url,
            connections,
        } => runtime.block_on(baseline::serve(&listen, &database_url, connections)),
        Cmd::Run(args) => runtime.block_on(run(args)),
    }
}
