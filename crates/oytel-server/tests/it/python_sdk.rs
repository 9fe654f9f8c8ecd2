//! Runs the published Python SDK's README flows (`tests/python`) against the real binary.
//!
//! A virtual environment with the pinned `tests/python/requirements.txt` is made once under
//! the target directory. Built where `python3` does not run (see `build.rs`), the test is
//! compiled ignored, and the summary counts it as not run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn venv() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let requirements = std::fs::read_to_string(tests.join("requirements.txt")).unwrap();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-sdk-venv");
    let stamp = venv.join("requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str()) {
        return venv;
    }
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(status.success(), "python3 -m venv failed");
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(tests.join("requirements.txt"))
        .status()
        .unwrap();
    assert!(status.success(), "pip install of the Python SDK failed");
    std::fs::write(&stamp, requirements).unwrap();
    venv
}

#[test]
#[cfg_attr(
    not(oytel_python),
    ignore = "needs python3 on PATH when the tests are built"
)]
fn the_published_python_sdk_works_unchanged() {
    let venv = venv();
    // With OYTEL_TEST_PROFILES=simulator the server's profiles come from an SM-DP+ simulator
    // (this test's runtime serves it), live and sandbox.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let smdp = oytel_server::testing::profiles_from_simulator()
        .then(|| runtime.block_on(oytel_server::testing::TestSmdp::start()));
    let output = Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"))
        .env("OYTEL_SERVER_BIN", env!("CARGO_BIN_EXE_oytel-server"))
        .envs(smdp.iter().flat_map(|s| s.env()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the Python SDK suite failed");
    assert!(stdout.contains(" passed"), "pytest ran no test");
    if let Some(smdp) = &smdp {
        let ordered = runtime.block_on(smdp.sim.calls("downloadOrder"));
        eprintln!("the suite's profiles came from the simulator: {ordered} downloadOrder calls");
        assert!(ordered > 0, "no profile came from the simulator");
    }
}
