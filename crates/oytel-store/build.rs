//! Decides whether this build's tests can reach PostgreSQL: with `OYTEL_TEST_DATABASE_URL`
//! set while building, the PostgreSQL tests are compiled to run (`cfg(oytel_postgres)`);
//! without it they are compiled `#[ignore]`d with the reason, so that the test summary counts
//! them as not run instead of passed. `OYTEL_REQUIRE_POSTGRES=1` (CI) compiles them to run
//! whatever is set, so that a missing database fails there instead of being left out.

fn main() {
    println!("cargo::rerun-if-env-changed=OYTEL_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=OYTEL_REQUIRE_POSTGRES");
    println!("cargo::rustc-check-cfg=cfg(oytel_postgres)");
    let required = std::env::var("OYTEL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    if std::env::var_os("OYTEL_TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) || required {
        println!("cargo::rustc-cfg=oytel_postgres");
    }
}
