//! Decides which outside parts this build's tests can use, so that a test that cannot run is
//! compiled `#[ignore]`d with the reason and counted as not run, never as passed:
//! PostgreSQL when `OYTEL_TEST_DATABASE_URL` is set while building (`cfg(oytel_postgres)`),
//! the Python SDK suite when `python3` runs here (`cfg(oytel_python)`). CI sets
//! `OYTEL_REQUIRE_POSTGRES=1` and `OYTEL_REQUIRE_PYTHON=1`, which compile them to run
//! whatever is found, so that a missing part fails there instead of being left out.

fn main() {
    println!("cargo::rerun-if-env-changed=OYTEL_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=OYTEL_REQUIRE_POSTGRES");
    println!("cargo::rerun-if-env-changed=OYTEL_REQUIRE_PYTHON");
    let required = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    println!("cargo::rustc-check-cfg=cfg(oytel_postgres)");
    println!("cargo::rustc-check-cfg=cfg(oytel_python)");
    if std::env::var_os("OYTEL_TEST_DATABASE_URL").is_some_and(|url| !url.is_empty())
        || required("OYTEL_REQUIRE_POSTGRES")
    {
        println!("cargo::rustc-cfg=oytel_postgres");
    }
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if python || required("OYTEL_REQUIRE_PYTHON") {
        println!("cargo::rustc-cfg=oytel_python");
    }
}
