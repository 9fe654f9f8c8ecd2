//! The `oytel-server` binary: admin commands, first start, shutdown.

use std::process::{Command, Output};

use oytel_store::testing::Backend;

use crate::helpers::{fresh_database, start_server as start};

const BIN: &str = env!("CARGO_BIN_EXE_oytel-server");

pub(crate) fn run(db: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("OYTEL_DATABASE_URL", db)
        .output()
        .expect("run oytel-server")
}

pub(crate) fn ok(db: &str, args: &[&str]) -> String {
    let output = run(db, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .trim_end()
        .to_owned()
}

/// `migrate` creates a SQLite file and its directories; every other admin command refuses a
/// database that does not exist, says which it looked for, and creates nothing.
#[test]
fn only_migrate_creates_a_database_and_every_command_names_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/admin.db");
    let db = format!("sqlite:{}", path.display());
    for args in [
        &["partner", "create", "--name", "A"][..],
        &["partner", "list"],
        &["key", "list", "--partner", "ptn_x"],
    ] {
        let output = run(&db, args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "there is no database at sqlite:{}",
                path.display()
            )),
            "{stderr}"
        );
        assert!(stderr.contains("oytel-server migrate"), "{stderr}");
        assert!(
            !path.exists() && !dir.path().join("nested").exists(),
            "{args:?} created it"
        );
    }
    ok(&db, &["migrate"]);
    assert!(path.exists());
    let output = run(&db, &["partner", "create", "--name", "A"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("ptn_"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        format!("database: sqlite:{}", path.display())
    );
    // A PostgreSQL URL is shown without its credentials.
    let output = run(
        "postgres://admin:s3cret@127.0.0.1:1/oytel",
        &["partner", "list"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("database: postgres://127.0.0.1:1/oytel\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_print_machine_readable_output() {
    let database = fresh_database(Backend::from_env()).await;
    let db = database.url.clone();
    let partner = ok(
        &db,
        &[
            "partner",
            "create",
            "--name",
            "Acme Travel",
            "--email",
            "ops@acme.example",
        ],
    );
    assert!(
        partner.starts_with("ptn_") && !partner.contains('\n'),
        "{partner}"
    );
    let listed = ok(&db, &["partner", "list"]);
    let row: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(row["id"], partner.as_str());
    assert_eq!(row["name"], "Acme Travel");

    let key = ok(
        &db,
        &["key", "create", "--partner", &partner, "--env", "live"],
    );
    assert!(key.starts_with("sk_live_") && key.len() >= 48, "{key}");
    let sandbox = ok(
        &db,
        &["key", "create", "--partner", &partner, "--env", "sandbox"],
    );
    assert!(sandbox.starts_with("sk_sandbox_"));
    let keys = ok(&db, &["key", "list", "--partner", &partner]);
    assert_eq!(keys.lines().count(), 2);
    assert!(
        !keys.contains(&key[8..]) && !keys.contains(&sandbox[11..]),
        "keys are never shown again"
    );
    let first: serde_json::Value = serde_json::from_str(keys.lines().next().unwrap()).unwrap();

    assert_eq!(
        ok(&db, &["partner", "credit", &partner, "--amount", "200"]),
        "200.00"
    );
    assert_eq!(
        ok(
            &db,
            &[
                "partner",
                "credit",
                &partner,
                "--amount",
                "0.55",
                "--description",
                "adjustment"
            ]
        ),
        "200.55"
    );
    let ledger = ok(&db, &["partner", "ledger", &partner]);
    assert_eq!(ledger.lines().count(), 2);
    assert!(ledger.contains("\"balance_after\":\"200.55\""), "{ledger}");

    let key_id = first["id"].as_str().unwrap();
    assert_eq!(ok(&db, &["key", "revoke", key_id]), key_id);
    let again = run(&db, &["key", "revoke", key_id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no active key"));

    for bad in [
        vec!["key", "create", "--partner", "ptn_nope", "--env", "live"],
        vec!["key", "create", "--partner", &partner, "--env", "staging"],
        vec!["partner", "credit", &partner, "--amount", "-5"],
        vec!["partner", "credit", &partner, "--amount", "1.234"],
        vec!["partner", "credit", "ptn_nope", "--amount", "5"],
        vec!["partner", "create", "--name", ""],
        vec!["partner", "create", "--name", "X", "--email", "nope"],
        vec!["partner", "limits", "ptn_nope", "--burst-per-second", "5"],
        vec!["partner", "limits", &partner, "--burst-per-second", "-5"],
    ] {
        let output = run(&db, &bad);
        assert!(!output.status.success(), "{bad:?} should fail");
        assert!(output.stdout.is_empty(), "{bad:?} printed to stdout");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_seeds_one_demo_key_once_and_sigterm_stops_cleanly() {
    let database = fresh_database(Backend::from_env()).await;
    let db = database.url.clone();
    let server = start(&db, "development");
    let printed = server.printed();
    assert_eq!(printed.len(), 1, "{printed:?}");
    let key = &printed[0];
    assert!(key.starts_with("sk_sandbox_"), "{key}");
    let client = reqwest::Client::new();
    let plans = client
        .get(format!("{}/api/v1/plans", server.base))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(plans.status(), 200);
    // Demo data to look at: three sandbox eSIMs in their states, one with data used.
    let esims: serde_json::Value = client
        .get(format!("{}/api/v1/esims", server.base))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut seen: Vec<(String, String, u64)> = esims["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reference_id"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
                e["usage"]["data_used_mb"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let expected = [
        ("demo-trip-1", "active", 3_000),
        ("demo-trip-2", "active", 0),
        ("demo-trip-3", "provisioned", 0),
    ]
    .map(|(r, s, mb)| (r.to_owned(), s.to_owned(), mb));
    assert_eq!(seen, expected);
    assert!(server.terminate().success(), "SIGTERM exits 0");

    let again = start(&db, "development");
    assert!(again.printed().is_empty(), "no second demo key");
    let plans = client
        .get(format!("{}/api/v1/plans", again.base))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(plans.status(), 200, "the demo key survives a restart");
    // Another key for the demo partner, later: development mode only.
    let another = ok(&db, &["demo-key"]);
    assert!(
        another.starts_with("sk_sandbox_") && another != *key,
        "{another}"
    );
    let plans = client
        .get(format!("{}/api/v1/plans", again.base))
        .header("X-API-Key", &another)
        .send()
        .await
        .unwrap();
    assert_eq!(plans.status(), 200);
    let refused = run(&db, &["demo-key", "--mode", "production"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("development mode only"));
    assert!(again.terminate().success());
    assert_eq!(ok(&db, &["partner", "list"]).lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_never_seeds() {
    let database = fresh_database(Backend::from_env()).await;
    let db = database.url.clone();
    let server = start(&db, "production");
    assert!(server.printed().is_empty());
    assert!(server.terminate().success());
    assert_eq!(ok(&db, &["partner", "list"]), "");
}

/// Beside a server holding the SQLite write lock, a command waits for it (the busy timeout),
/// and says in plain words when it waited long enough, never a raw "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_wait_for_a_busy_database_and_say_so_when_it_stays_busy() {
    let database = fresh_database(Backend::Sqlite).await;
    let db = database.url.clone();
    let lock = database.hold_write_lock().await;
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking({
        let db = db.clone();
        move || {
            run(
                &db,
                &[
                    "partner",
                    "create",
                    "--name",
                    "A",
                    "--db-busy-timeout-seconds",
                    "1",
                ],
            )
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the database is busy")
            && stderr.contains("longer than 1 s")
            && !stderr.contains("database is locked"),
        "{stderr}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "it waited"
    );

    // Released while the command waits: the command goes through.
    let waiting = tokio::task::spawn_blocking(move || {
        ok(
            &db,
            &[
                "partner",
                "create",
                "--name",
                "B",
                "--db-busy-timeout-seconds",
                "10",
            ],
        )
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    lock.release().await;
    assert!(waiting.await.unwrap().starts_with("ptn_"));
}

/// Logs written to a pipe or a file are plain text: no colour codes.
#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("logs.db").display());
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--mode", "production"])
        .env("OYTEL_DATABASE_URL", &db)
        .env("OYTEL_LOG_FORMAT", "text")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("Oytel API ready"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in a pipe: {logs:?}");
}

/// A settings file shared by serve and the admin commands: its settings apply where no flag
/// or environment variable gives one; a misspelt name is refused with its line.
#[test]
fn a_settings_file_gives_every_command_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-config.db");
    let config = dir.path().join("oytel.toml");
    std::fs::write(
        &config,
        format!(
            "# the operator's settings\nOYTEL_DATABASE_URL = \"sqlite:{}\"\nOYTEL_DB_BUSY_TIMEOUT_SECONDS = 7\n",
            db.display()
        ),
    )
    .unwrap();
    let command = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("OYTEL_DATABASE_URL")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    assert!(command(&["migrate"]).status.success());
    assert!(db.exists(), "migrate used the file's database");
    let created = command(&["partner", "create", "--name", "Configured"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stderr).contains("from-config.db"));
    // The environment wins over the file.
    let elsewhere = dir.path().join("elsewhere.db");
    let output = Command::new(BIN)
        .args(["partner", "list", "--config"])
        .arg(&config)
        .env(
            "OYTEL_DATABASE_URL",
            format!("sqlite:{}", elsewhere.display()),
        )
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("elsewhere.db"));
    std::fs::write(&config, "OYTEL_DATABSE_URL = \"sqlite:x.db\"\n").unwrap();
    let refused = command(&["partner", "list"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 1: `OYTEL_DATABSE_URL` is not a setting"),
        "{stderr}"
    );
}
