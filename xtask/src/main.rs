//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `openapi`: writes `openapi/oytel-v1.json` and `openapi/oytel-v1.yaml` from the code.
//! - `openapi --check`: fails, naming the stale file and the fixing command, when the
//!   committed spec differs from what the code generates.
//! - `bench [options]`: builds the release binaries and runs `oytel-bench` (the server
//!   against bare baselines in the same run); `--smoke` for a quick run that checks it works.
//! - `fuzz [--seconds S] [TARGET ...]`: the fuzz targets under libFuzzer (see [`fuzz`]).
//! - `public-api [--check]`: the recorded public surface of the partners' crates (see
//!   [`public_api`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

mod fuzz;
mod public_api;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  openapi [--check]   write openapi/oytel-v1.{json,yaml} from the code (--check: fail if stale)
  bench [options]     build the release binaries and run the benchmark (bench --help for options)
  fuzz [options]      run the fuzz targets under libFuzzer (fuzz --help for options)
  public-api [--check]
                      write crates/{oytel-types,oytel-client}/public-api.txt, the surface partners
                      build on (--check: fail if it changed without the files)
";

const BENCH_USAGE: &str = "usage: cargo xtask bench [options]

Builds oytel-server and oytel-bench in release mode, then measures each route against a bare
baseline in the same run and prints the ratios (docs/performance.md).

options:
  --smoke              a few seconds on a small database: checks that the bench runs, no verdicts
  --esims N            eSIMs in the database for the main runs (default 100000)
  --large              compare 10k with 1M eSIMs for the status route
  --seconds S          seconds per measurement (default 5)
  --rounds R           alternate baseline and server R times per comparison (default 3)
  --connections LIST   connection counts, comma-separated (default 32,256)
  --only TEXT          only the route comparisons whose route contains TEXT (e.g. provision);
                       logging, metrics, traces, SM-DP+ and webhooks are then not measured
  --postgres URL       benchmark on a fresh database on this PostgreSQL server instead of SQLite
  --out FILE           where the JSON figures go (default target/bench/results.json)
  --soak               instead: the soak, a steady mixed load on one server (API, workers,
                       webhooks to a local receiver, usage ingestion) with figures per minute;
                       fails on any error, a lost webhook, or RSS or descriptors that keep growing
  --minutes M          minutes of the soak (default 10)
  --rate R             requests per second of the soak, in all (default 400); its connections
                       are the first of --connections
";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Writes `contents` to `path`, or in check mode fails if the file differs. Returns whether
/// the file was (or would have been) changed.
fn ensure_file_contents(path: &Path, contents: &str, check: bool) -> Result<bool> {
    ensure_file_contents_for(path, contents, check, "cargo xtask openapi")
}

/// [`ensure_file_contents`] of a file that `fix` writes.
fn ensure_file_contents_for(path: &Path, contents: &str, check: bool, fix: &str) -> Result<bool> {
    let current = std::fs::read_to_string(path).ok();
    if current.as_deref() == Some(contents) {
        return Ok(false);
    }
    let shown = path
        .strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string();
    if check {
        bail!(
            "{shown} was not up-to-date with the code; run `{fix}`, review the difference and commit the result"
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {shown}"))?;
    eprintln!("updated {shown}");
    Ok(true)
}

/// Generates the spec files (or checks them).
fn openapi(check: bool) -> Result<()> {
    let spec = oytel_server::openapi::spec();
    let json = oytel_server::openapi::to_json(&spec).map_err(anyhow::Error::msg)?;
    let yaml = oytel_server::openapi::to_yaml(&spec).map_err(anyhow::Error::msg)?;
    let dir = workspace_root().join("openapi");
    let mut errors = Vec::new();
    for (name, contents) in [("oytel-v1.json", json), ("oytel-v1.yaml", yaml)] {
        if let Err(e) = ensure_file_contents(&dir.join(name), &contents, check) {
            errors.push(e.to_string());
        }
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    if check {
        eprintln!("openapi/ is up to date");
    }
    Ok(())
}

/// Builds `oytel-server` and `oytel-bench` in release mode and runs the benchmark.
fn bench(options: &[&str]) -> Result<()> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "oytel-server",
            "-p",
            "oytel-bench",
        ])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !built.success() {
        bail!("cargo build --release failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let release = target.join("release");
    let status = std::process::Command::new(release.join("oytel-bench"))
        .arg("run")
        .arg("--server-bin")
        .arg(release.join("oytel-server"))
        .args(options)
        .current_dir(&root)
        .status()
        .context("running oytel-bench")?;
    if !status.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}

/// Prints a help text: the answer a `--help` asks for.
#[allow(clippy::print_stdout)]
fn help(text: &str) -> Result<()> {
    print!("{text}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] | ["help" | "--help" | "-h"] | ["openapi", "--help" | "-h"] => help(USAGE),
        ["bench", options @ ..] if options.iter().any(|o| matches!(*o, "--help" | "-h")) => {
            help(BENCH_USAGE)
        }
        ["fuzz", options @ ..] if options.iter().any(|o| matches!(*o, "--help" | "-h")) => {
            help(fuzz::USAGE)
        }
        ["fuzz", options @ ..] => fuzz::run(&workspace_root(), options),
        ["public-api"] => public_api::run(false),
        ["public-api", "--check"] => public_api::run(true),
        ["openapi"] => openapi(false),
        ["openapi", "--check"] => openapi(true),
        ["bench", options @ ..] => bench(options),
        _ => Err(anyhow::anyhow!("unknown task or option\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test` fails when the committed spec is stale, like `cargo xtask openapi --check`.
    #[test]
    fn committed_openapi_spec_is_up_to_date() {
        if let Err(e) = openapi(true) {
            panic!("{e}");
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let a = oytel_server::openapi::to_json(&oytel_server::openapi::spec()).unwrap();
        let b = oytel_server::openapi::to_json(&oytel_server::openapi::spec()).unwrap();
        assert_eq!(a, b);
        let a = oytel_server::openapi::to_yaml(&oytel_server::openapi::spec()).unwrap();
        let b = oytel_server::openapi::to_yaml(&oytel_server::openapi::spec()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn check_mode_names_the_stale_file_and_the_fix() {
        let dir = std::env::temp_dir().join(format!("xtask-check-{}", std::process::id()));
        let path = dir.join("spec.json");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, "old").unwrap();
        let err = ensure_file_contents(&path, "new", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("spec.json was not up-to-date"), "{err}");
        assert!(err.contains("cargo xtask openapi"), "{err}");
        assert!(ensure_file_contents(&path, "new", false).unwrap());
        assert!(!ensure_file_contents(&path, "new", true).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
