//! The benchmark's report: each comparison of a route against its baseline, and the table
//! printed from them (ratios against a baseline measured in the same run).

use serde::Serialize;

use crate::load::Stats;

/// The comparison of the plans route with request logging on (ours) and off (the baseline).
pub(crate) const LOGGING_ROUTE: &str = "GET /api/v1/plans, logging on";

/// The plans and status routes with metrics kept (ours) and not (the baseline).
pub(crate) const METRICS_PLANS_ROUTE: &str = "GET /api/v1/plans, metrics on";
pub(crate) const METRICS_STATUS_ROUTE: &str = "GET /api/v1/esim/{id}/status, metrics on";

/// The plans route with every request traced and exported (ours) and without traces.
pub(crate) const TRACES_PLANS_ROUTE: &str = "GET /api/v1/plans, traces on";

#[derive(Debug, Serialize)]
pub(crate) struct Comparison {
    pub(crate) route: String,
    pub(crate) connections: usize,
    pub(crate) baseline: String,
    pub(crate) ours: Stats,
    pub(crate) base: Stats,
    pub(crate) ratio: f64,
    pub(crate) target: f64,
    pub(crate) peak_rss_mb: f64,
}

impl Comparison {
    /// Ours against the baseline, with their ratio of requests per second.
    pub(crate) fn new(
        route: &str,
        connections: usize,
        baseline: &str,
        (base, ours): (Stats, Stats),
        target: f64,
        peak_rss_mb: f64,
    ) -> Comparison {
        let ratio = if base.rps > 0.0 {
            ours.rps / base.rps
        } else {
            0.0
        };
        Comparison {
            route: route.to_owned(),
            connections,
            baseline: baseline.to_owned(),
            ours,
            base,
            ratio,
            target,
            peak_rss_mb,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) backend: String,
    pub(crate) esims: u64,
    pub(crate) machine: String,
    pub(crate) comparisons: Vec<Comparison>,
    pub(crate) scale: Vec<(u64, Stats)>,
    /// The webhook throughput; `None` when not measured (`--only`).
    pub(crate) webhooks: Option<Webhooks>,
    pub(crate) peak_rss_mb: f64,
    /// A smoke run (`--smoke`): it checks that the bench runs, so no verdict is printed.
    pub(crate) smoke: bool,
}

/// Signed deliveries to a local receiver.
#[derive(Debug, Serialize)]
pub(crate) struct Webhooks {
    pub(crate) per_second: f64,
    pub(crate) delivered: u64,
    /// The same run with a second endpoint that never answers: the healthy one's rate.
    pub(crate) beside_hanging_per_second: f64,
    pub(crate) beside_hanging_delivered: u64,
}

pub(crate) fn print_table(report: &Report) {
    println!();
    println!(
        "Oytel benchmark — {} backend, {} eSIMs, {}",
        report.backend, report.esims, report.machine
    );
    if report.smoke {
        println!("smoke run: it checks that the benchmark runs; the figures judge nothing");
    }
    // The verdict, given only where the run measures speed.
    let verdict = |met: bool| match (report.smoke, met) {
        (true, _) => "-",
        (false, true) => "met",
        (false, false) => "MISSED",
    };
    let width = |text: fn(&Comparison) -> &str, title: &str| {
        report
            .comparisons
            .iter()
            .map(|c| text(c).chars().count())
            .chain(std::iter::once(title.len()))
            .max()
            .unwrap_or(0)
    };
    let route_w = width(|c| &c.route, "route");
    let base_w = width(|c| &c.baseline, "baseline");
    println!(
        "{:<route_w$}  {:<base_w$} {:>5} {:>10} {:>8} {:>8} {:>6} {:>10} {:>8} {:>8} {:>7} {:>7}  verdict",
        "route",
        "baseline",
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
            "{:<route_w$}  {:<base_w$} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>6} {:>10.0} {:>8.2} {:>8.2} {:>6.2}x {:>6.1}x  {}",
            c.route,
            c.baseline,
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
            if c.target > 0.0 {
                verdict(c.ratio >= c.target)
            } else {
                "-"
            }
        );
    }
    for c in report
        .comparisons
        .iter()
        .filter(|c| c.route == crate::smdp::SMDP_ROUTE)
    {
        println!(
            "provisioning through the SM-DP+ simulator (downloadOrder and confirmOrder over mutual TLS, \
             journalled) at {} connections: {:.0} rps, {:.2}x the builtin profiles, p50 {:.2} ms \
             (no target: a real SM-DP+'s own speed decides)",
            c.connections, c.ours.rps, c.ratio, c.ours.p50_ms
        );
    }
    for c in report
        .comparisons
        .iter()
        .filter(|c| c.route == LOGGING_ROUTE)
    {
        println!(
            "request logging costs {:.1} % of the plans route at {} connections (target under 10 %): {}",
            (1.0 - c.ratio) * 100.0,
            c.connections,
            verdict(c.ratio >= 0.9)
        );
    }
    for c in report
        .comparisons
        .iter()
        .filter(|c| c.route == METRICS_PLANS_ROUTE || c.route == METRICS_STATUS_ROUTE)
    {
        println!(
            "metrics cost {:.1} % of {} at {} connections (target under 10 %): {}",
            (1.0 - c.ratio) * 100.0,
            c.route.trim_end_matches(", metrics on"),
            c.connections,
            verdict(c.ratio >= 0.9)
        );
    }
    for c in report
        .comparisons
        .iter()
        .filter(|c| c.route == TRACES_PLANS_ROUTE)
    {
        println!(
            "traces (every request sampled and exported over OTLP/HTTP) cost {:.1} % of the plans \
             route at {} connections (no target: sample fewer with OTEL_TRACES_SAMPLER)",
            (1.0 - c.ratio) * 100.0,
            c.connections,
        );
    }
    // Tail latency of the writes: a queue for the single writer that serves in turn keeps
    // the slowest answers within a few times the median.
    for c in report
        .comparisons
        .iter()
        .filter(|c| c.route.starts_with("POST") && c.connections >= 256)
    {
        let tail = if c.ours.p50_ms > 0.0 {
            c.ours.p99_ms / c.ours.p50_ms
        } else {
            0.0
        };
        println!(
            "{} at {} connections: p99 {:.0} ms = {tail:.2}x p50 (target at most 3x): {}",
            c.route,
            c.connections,
            c.ours.p99_ms,
            verdict(tail <= 3.0)
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
        println!(
            "status p50 large/small: {ratio:.2}x (target at most 1.3x): {}",
            verdict(ratio <= 1.3)
        );
    }
    match &report.webhooks {
        Some(w) => {
            println!(
                "webhooks: {} delivered and verified, {:.0} per second (target 2000): {}",
                w.delivered,
                w.per_second,
                verdict(w.per_second >= 2000.0)
            );
            let ratio = if w.per_second > 0.0 {
                w.beside_hanging_per_second / w.per_second
            } else {
                0.0
            };
            println!(
                "webhooks beside an endpoint that never answers: {} delivered, {:.0} per second, \
                 {ratio:.2}x the all-healthy figure (target at least 0.8x): {}",
                w.beside_hanging_delivered,
                w.beside_hanging_per_second,
                verdict(ratio >= 0.8)
            );
        }
        None => println!(
            "not run (--only): request logging, metrics, traces, the SM-DP+ route and webhooks"
        ),
    }
    println!(
        "server peak RSS: {:.1} MB (target under 64 MB): {}",
        report.peak_rss_mb,
        verdict(report.peak_rss_mb < 64.0)
    );
}
