//! `cargo xtask fuzz`: the fuzz targets of `crates/oytel-fuzz`, coverage-guided by libFuzzer,
//! on the stable toolchain. It does what `cargo fuzz` does (which needs nightly for its
//! sanitizer flags): builds the targets with LLVM's SanitizerCoverage instrumentation, passed
//! as stable `-C` flags, for the host target only (so build scripts and proc macros are not
//! instrumented), in a target directory of their own; then runs each for a bounded time.
//!
//! | path | what is there |
//! |---|---|
//! | `crates/oytel-fuzz/corpus/<target>/` | the committed seeds and regressions, read, never written |
//! | `target/fuzz/corpus/<target>/` | what this machine's runs found, kept between runs |
//! | `target/fuzz/artifacts/<target>/` | an input that broke the target's rule (`crash-…`) |
//! | `target/fuzz/<target>.log` | libFuzzer's output |
//!
//! A crash fails the task; copy the input into the committed corpus as `regression-<what>` and
//! `cargo test -p oytel-fuzz` runs it from then on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

pub const USAGE: &str = "usage: cargo xtask fuzz [--seconds S] [TARGET ...]

Builds the fuzz targets of crates/oytel-fuzz with coverage instrumentation (stable toolchain)
and runs each under libFuzzer for S seconds (default 60), seeded with the committed corpus.
Prints, per target, the inputs tried, the coverage reached and the corpus found; fails if any
input breaks a target's rule. Targets: body, cursor, headers, webhook, catalog, es2plus, inventory (default: all).
";

/// The flags `cargo fuzz` gives rustc for libFuzzer, minus the sanitizer (nightly-only; our
/// code forbids `unsafe`, so a broken rule is a panic, which libFuzzer catches as it is).
/// libFuzzer's seed.
const SEED: u32 = 20_261_130;

const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
    "--cfg=fuzzing",
];

struct Outcome {
    target: String,
    runs: u64,
    seconds: f64,
    coverage: u64,
    corpus: usize,
    crash: Option<PathBuf>,
}

/// Runs the task with its command-line options.
pub fn run(root: &Path, options: &[&str]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match *option {
            "--seconds" => {
                seconds = options
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| *s > 0)
                    .context("--seconds takes a whole number of seconds above 0")?;
            }
            name if target_names().any(|t| t == name) => targets.push(name),
            other => bail!("unknown fuzz target or option `{other}`\n\n{USAGE}"),
        }
    }
    if targets.is_empty() {
        targets = target_names().collect();
    }

    let out = root.join("target/fuzz");
    let bin_dir = build(root, &out)?;
    let mut outcomes = Vec::new();
    for target in targets {
        outcomes.push(fuzz(root, &out, &bin_dir, target, seconds)?);
    }
    report(&outcomes);
    let crashed: Vec<_> = outcomes.iter().filter(|o| o.crash.is_some()).collect();
    if !crashed.is_empty() {
        for outcome in &crashed {
            let input = outcome.crash.as_deref().unwrap_or(Path::new("?"));
            let name = input
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let what = if name.starts_with("timeout-") {
                "took more than 10 s (a hang, or a machine far too busy)"
            } else if name.starts_with("oom-") {
                "used more than 2 GiB"
            } else {
                "broke the rule"
            };
            eprintln!(
                "{}: {} {what}; see target/fuzz/{}.log",
                outcome.target,
                input.display(),
                outcome.target
            );
        }
        bail!("fuzzing found inputs that break a target's rule");
    }
    Ok(())
}

fn target_names() -> impl Iterator<Item = &'static str> {
    oytel_fuzz::TARGETS.iter().map(|(name, _)| *name)
}

fn build(root: &Path, out: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = host_triple()?;
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "oytel-fuzz",
            "--features",
            "libfuzzer",
        ])
        .args(["--bins", "--target", &host])
        .env("CARGO_TARGET_DIR", out.join("build"))
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(root)
        .status()
        .context("running cargo build for the fuzz targets")?;
    if !status.success() {
        bail!("building the fuzz targets failed");
    }
    Ok(out.join("build").join(host).join("release"))
}

fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

fn fuzz(root: &Path, out: &Path, bin_dir: &Path, target: &str, seconds: u64) -> Result<Outcome> {
    let seeds = root.join("crates/oytel-fuzz/corpus").join(target);
    let found = out.join("corpus").join(target);
    let artifacts = out.join("artifacts").join(target);
    for dir in [&found, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log_path = out.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)?;
    eprintln!("fuzzing {target} for {seconds} s");
    let started = Instant::now();
    let status = Command::new(bin_dir.join(target))
        .arg(format!("-max_total_time={seconds}"))
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        // The same exploration on every run of a commit: CI fails for the code, not for luck.
        .arg(format!("-seed={SEED}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&found)
        .arg(&seeds)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("running the {target} fuzz target"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let stat = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let coverage = text
        .lines()
        .rev()
        .find_map(|l| l.split(" cov: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let crash = (!status.success())
        .then(|| newest_file(&artifacts).unwrap_or_else(|| artifacts.join("(no input written)")));
    Ok(Outcome {
        target: target.to_owned(),
        runs: stat("number_of_executed_units"),
        seconds: elapsed,
        coverage,
        corpus: std::fs::read_dir(&found).map(|d| d.count()).unwrap_or(0)
            + std::fs::read_dir(&seeds).map(|d| d.count()).unwrap_or(0),
        crash,
    })
}

fn newest_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
}

#[allow(clippy::print_stdout)]
fn report(outcomes: &[Outcome]) {
    println!(
        "\n{:<10} {:>8} {:>12} {:>10} {:>9} {:>8}  outcome",
        "target", "seconds", "inputs", "inputs/s", "coverage", "corpus"
    );
    for o in outcomes {
        println!(
            "{:<10} {:>8.0} {:>12} {:>10.0} {:>9} {:>8}  {}",
            o.target,
            o.seconds,
            o.runs,
            o.runs as f64 / o.seconds.max(0.001),
            o.coverage,
            o.corpus,
            if o.crash.is_some() { "CRASH" } else { "ok" }
        );
    }
}
