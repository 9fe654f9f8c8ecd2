//! `oytel-bench`: the server against bare baselines, measured in the same run on the same
//! machine. Run it with `cargo xtask bench` (which builds the release binaries first).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod baseline;
mod load;
mod report;
mod smdp;
mod soak;
mod webhooks;

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

use crate::report::{
    print_table, Comparison, Report, LOGGING_ROUTE, METRICS_PLANS_ROUTE, METRICS_STATUS_ROUTE,
    TRACES_PLANS_ROUTE,
};
use crate::webhooks::webhook_throughput;

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
    /// Only the route comparisons whose route contains this text (`provision`, `status`…);
    /// the other figures (logging, metrics, traces, SM-DP+, webhooks) are not measured and
    /// the report says so.
    #[arg(long)]
    only: Option<String>,
    /// A PostgreSQL admin URL: benchmark on a fresh database there instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Where the JSON figures go (default target/bench/results.json, or soak.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Instead of the comparisons, the soak: a steady mixed load on one server, with figures
    /// per minute; fails on any error, a lost webhook, or memory or descriptors that keep
    /// growing.
    #[arg(long)]
    soak: bool,
    /// Minutes of the soak.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Requests per second of the soak, in all.
    #[arg(long, default_value_t = 400)]
    rate: u32,
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

/// A figure of `/proc/<pid>/status` in kB (`VmHWM:`, `VmRSS:`), 0 where there is none.
fn proc_status_kb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
}

fn peak_rss_mb(pid: u32) -> f64 {
    proc_status_kb(pid, "VmHWM:") / 1024.0
}

/// Starts `oytel-server` on `url` (with its workers or without, with more settings in `env`)
/// and waits until it is ready.
/// An OTLP/HTTP collector that takes every export and keeps nothing: its base URL.
async fn otlp_sink() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(|_: axum::body::Bytes| async { axum::http::StatusCode::OK }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

fn start_server(
    bin: &PathBuf,
    url: &str,
    log: &PathBuf,
    workers: bool,
    env: &[(&str, &str)],
) -> Result<Proc> {
    let log_file = std::fs::File::create(log)?;
    let child = Command::new(bin)
        .envs(env.iter().copied())
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
    // Not left running behind a failed run.
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
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

/// The log filter of the instance that logs no requests.
const QUIET_LOG: &str = "info,sqlx=warn,oytel_server::context=warn";

/// eSIMs seeded so far in this run: the source of their numbers.
static SEEDED: AtomicU64 = AtomicU64::new(0);

/// Seeds `count` sandbox eSIMs for `scope`, in transactions of 5000; returns some of their ids.
async fn seed(url: &str, scope: &Scope, count: u64) -> Result<Vec<String>> {
    let catalog = Catalog::default_catalog();
    let request = ProvisionRequest::new("eu-roam-50", "bench@example.com", "Bench");
    let command = validate(&request, &catalog)?;
    let settings = ProvisionSettings {
        smdp_address: "smdp.bench".into(),
        minimum_balance: Amount::ZERO,
        smdp: None,
        stock: Default::default(),
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
                    reservation: None,
                    from_stock: None,
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

/// A fresh database for a run: on the PostgreSQL server of `postgres` (an admin URL), or a
/// SQLite file in `dir`. Returns its URL and the backend's name.
async fn fresh_database(postgres: Option<&str>, dir: &std::path::Path) -> Result<(String, String)> {
    Ok(match postgres {
        Some(admin) => {
            let name = format!("oytel_bench_{}", std::process::id());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut conn)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
            (format!("{base}/{name}"), "PostgreSQL".to_owned())
        }
        None => (
            format!("sqlite:{}", dir.join("bench.db").display()),
            "SQLite".to_owned(),
        ),
    })
}

/// A partner whose limits do not get in the way, with a sandbox key: its scope and the key.
async fn bench_partner(url: &str) -> Result<(Scope, String)> {
    let opened = oytel_store::open(url, &oytel_store::PoolOptions::default()).await?;
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
    Ok((scope, key.plaintext))
}

async fn run(args: RunArgs) -> Result<()> {
    if args.soak {
        return soak::soak(soak::SoakArgs {
            server_bin: args.server_bin,
            postgres: args.postgres,
            minutes: args.minutes,
            rate: args.rate.max(1),
            connections: args.connections.first().copied().unwrap_or(32).max(1),
            out: args.out.unwrap_or_else(|| "target/bench/soak.json".into()),
        })
        .await;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| "target/bench/results.json".into());
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
    let (url, backend) = fresh_database(args.postgres.as_deref(), &dir).await?;
    let (scope, api_key) = bench_partner(&url).await?;

    // Scale, small: 10k eSIMs.
    let small = 10_000.min(esims);
    eprintln!("seeding {small} eSIMs…");
    let mut ids = seed(&url, &scope, small).await?;
    let log = dir.join("server.log");
    // The API instance runs no workers; the webhook run starts one that does.
    let server = start_server(&args.server_bin, &url, &log, false, &[])?;
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
            let (ids1, ids2, ids3, ids4, ids5) = (
                ids.clone(),
                ids.clone(),
                ids.clone(),
                ids.clone(),
                ids.clone(),
            );
            let (k2, k3, k4, k5, s2, s3, s4, s5, b2, b3, b4, b5) = (
                k.clone(),
                k.clone(),
                k.clone(),
                k.clone(),
                s.clone(),
                s.clone(),
                s.clone(),
                s.clone(),
                b.clone(),
                b.clone(),
                b.clone(),
                b.clone(),
            );
            let (serial, serial2) = (serial.clone(), serial.clone());
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
                (
                    "POST /api/v1/esim/{id}/topups",
                    "raw insert tx",
                    0.4,
                    Arc::new(move |c: &reqwest::Client, _| c.post(format!("{b5}/insert"))),
                    Arc::new(move |c: &reqwest::Client, i| {
                        let n = serial2.fetch_add(1, Ordering::Relaxed);
                        let id = &ids5[(i as usize) % ids5.len()];
                        c.post(format!("{s5}/api/v1/esim/{id}/topups"))
                            .bearer_auth(&k5)
                            .header("Idempotency-Key", format!("bench-topup-{n}"))
                            .json(&serde_json::json!({"topup_id": "eu-boost-1"}))
                    }),
                ),
            ]
        };
        let chosen = routes
            .into_iter()
            .filter(|(route, ..)| args.only.as_deref().is_none_or(|only| route.contains(only)));
        for (route, base_name, target, base_make, ours_make) in chosen {
            eprintln!("{route} at {conns} connections…");
            let measured = load::compare(conns, duration, rounds, base_make, ours_make).await;
            comparisons.push(Comparison::new(
                route,
                conns,
                base_name,
                measured,
                target,
                peak_rss_mb(pid),
            ));
        }
    }
    drop(baseline);
    // The other figures, unless only some routes were asked for.
    let webhooks = 'others: {
        if args.only.is_some() {
            break 'others None;
        }

        // What request logging costs: the same route on a second instance that does not log
        // requests (its other lines, "ready" among them, as usual), measured alternately.
        let quiet = start_server(
            &args.server_bin,
            &url,
            &dir.join("quiet.log"),
            false,
            &[("OYTEL_LOG", QUIET_LOG)],
        )?;
        for &conns in &connections {
            let (quiet_base, loud_base, k1, k2) = (
                quiet.base.clone(),
                server.base.clone(),
                api_key.clone(),
                api_key.clone(),
            );
            eprintln!("GET /api/v1/plans with and without request logging at {conns} connections…");
            let measured = load::compare(
                conns,
                duration,
                rounds,
                Arc::new(move |c: &reqwest::Client, _| {
                    c.get(format!("{quiet_base}/api/v1/plans")).bearer_auth(&k1)
                }),
                Arc::new(move |c: &reqwest::Client, _| {
                    c.get(format!("{loud_base}/api/v1/plans")).bearer_auth(&k2)
                }),
            )
            .await;
            comparisons.push(Comparison::new(
                LOGGING_ROUTE,
                conns,
                "no request lines",
                measured,
                0.9,
                peak_rss_mb(pid),
            ));
        }
        drop(quiet);

        // What the metrics cost: the plans and status routes on a second instance that keeps
        // metrics (OYTEL_METRICS_LISTEN), measured alternately with the first, which keeps none.
        let metered = start_server(
            &args.server_bin,
            &url,
            &dir.join("metered.log"),
            false,
            &[("OYTEL_METRICS_LISTEN", "127.0.0.1:0")],
        )?;
        for &conns in &connections {
            for (route, path) in [
                (METRICS_PLANS_ROUTE, "/api/v1/plans".to_owned()),
                (
                    METRICS_STATUS_ROUTE,
                    format!("/api/v1/esim/{}/status", ids[0]),
                ),
            ] {
                let request = |base: String, key: String, path: String| -> load::Maker {
                    Arc::new(move |c: &reqwest::Client, _| {
                        c.get(format!("{base}{path}")).bearer_auth(&key)
                    })
                };
                eprintln!("{route} at {conns} connections…");
                let measured = load::compare(
                    conns,
                    duration,
                    rounds,
                    request(server.base.clone(), api_key.clone(), path.clone()),
                    request(metered.base.clone(), api_key.clone(), path),
                )
                .await;
                comparisons.push(Comparison::new(
                    route,
                    conns,
                    "no metrics",
                    measured,
                    0.9,
                    peak_rss_mb(pid),
                ));
            }
        }
        drop(metered);

        // What traces cost at full sampling: a third instance exports a span for every request to
        // an OTLP/HTTP sink, measured alternately with the first, which exports nothing.
        let sink = otlp_sink().await?;
        let traced = start_server(
            &args.server_bin,
            &url,
            &dir.join("traced.log"),
            false,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.as_str()),
                ("OTEL_TRACES_SAMPLER", "always_on"),
            ],
        )?;
        for &conns in &connections {
            let request = |base: String, key: String| -> load::Maker {
                Arc::new(move |c: &reqwest::Client, _| {
                    c.get(format!("{base}/api/v1/plans")).bearer_auth(&key)
                })
            };
            eprintln!("{TRACES_PLANS_ROUTE} at {conns} connections…");
            let measured = load::compare(
                conns,
                duration,
                rounds,
                request(server.base.clone(), api_key.clone()),
                request(traced.base.clone(), api_key.clone()),
            )
            .await;
            comparisons.push(Comparison::new(
                TRACES_PLANS_ROUTE,
                conns,
                "no traces",
                measured,
                0.0,
                peak_rss_mb(pid),
            ));
        }
        drop(traced);

        // Provisioning through an SM-DP+ (two ES2+ calls over mutual TLS, each journalled):
        // a second instance whose live profiles come from the simulator, measured alternately
        // with the builtin profiles of the first.
        let simulator = smdp::start(&dir, if args.smoke { 20_000 } else { 400_000 }).await?;
        let env: Vec<(&str, &str)> = simulator
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let via_smdp = start_server(&args.server_bin, &url, &dir.join("smdp.log"), false, &env)?;
        for &conns in &connections {
            let provision = |base: String, key: String, tag: &'static str| -> load::Maker {
                let serial = serial.clone();
                Arc::new(move |c: &reqwest::Client, _| {
                    let n = serial.fetch_add(1, Ordering::Relaxed);
                    c.post(format!("{base}/api/v1/esim/provision"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", format!("bench-{tag}-{n}"))
                    .json(&serde_json::json!({"plan_id": "uk-lite-10", "customer_email": "b@example.com", "customer_name": "B"}))
                })
            };
            eprintln!(
                "POST /api/v1/esim/provision through the SM-DP+ simulator at {conns} connections…"
            );
            let measured = load::compare(
                conns,
                duration,
                rounds,
                provision(server.base.clone(), api_key.clone(), "builtin"),
                provision(via_smdp.base.clone(), api_key.clone(), "smdp"),
            )
            .await;
            comparisons.push(Comparison::new(
                smdp::SMDP_ROUTE,
                conns,
                "builtin profiles",
                measured,
                0.0,
                peak_rss_mb(pid),
            ));
        }
        drop(via_smdp);
        let released = simulator.released().await;
        eprintln!("the simulator released {released} profiles");
        if released == 0 {
            bail!("no provisioning went through the SM-DP+ simulator");
        }
        drop(simulator);
        eprintln!("webhook deliveries…");
        let events = if args.smoke { 200 } else { 5_000 };
        let worker_log = dir.join("worker.log");
        let (delivered, per_second) =
            webhook_throughput(&server.base, &api_key, events, false, || {
                start_server(&args.server_bin, &url, &worker_log, true, &[])
            })
            .await?;
        eprintln!("webhook deliveries beside an endpoint that never answers…");
        let (beside_hanging, beside_hanging_per_second) =
            webhook_throughput(&server.base, &api_key, events, true, || {
                start_server(&args.server_bin, &url, &worker_log, true, &[])
            })
            .await?;
        Some(report::Webhooks {
            per_second,
            delivered,
            beside_hanging_per_second,
            beside_hanging_delivered: beside_hanging,
        })
    };
    let report = Report {
        smoke: args.smoke,
        backend,
        esims: large,
        machine: machine(),
        comparisons,
        scale,
        webhooks,
        peak_rss_mb: peak_rss_mb(pid),
    };
    drop(server);
    finish(&report, &out, &dir)
}

/// The machine the figures were measured on.
fn machine() -> String {
    format!(
        "{} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH
    )
}

/// Prints the report, writes its figures to `out` and removes the run's directory; fails if
/// a measurement completed nothing.
fn finish(report: &Report, out: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    print_table(report);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(report)?)?;
    println!("figures written to {}", out.display());
    let _ = std::fs::remove_dir_all(dir);
    if report
        .comparisons
        .iter()
        .any(|c| c.ours.requests == 0 || c.base.requests == 0)
        || report
            .webhooks
            .as_ref()
            .is_some_and(|w| w.delivered == 0 || w.beside_hanging_delivered == 0)
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
