//! The builtin profile stock: `oytel-server inventory` imports batches whole or not at all,
//! and with `OYTEL_PROFILE_STOCK=inventory` live eSIMs take their ICCIDs from it; an empty
//! stock refuses the order with a 503 and charges nothing.

use std::collections::HashSet;

use oytel_server::testing::{fresh_database, make_partner};
use oytel_store::testing::Backend;
use serde_json::{json, Value};

use crate::cli::{ok, run};
use crate::helpers::{order, start_server_with, ServerProcess};

async fn provision(server: &ServerProcess, key: &str, idempotency_key: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/esim/provision", server.base))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .json(&order("uk-lite-10"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn stock(db: &str) -> Vec<Value> {
    ok(db, &["inventory", "list"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_orders_take_iccids_from_the_imported_stock_and_an_empty_stock_charges_nothing() {
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Stock").await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let import = |path: &str| {
        let args = [
            "inventory",
            "import",
            "--profile-type",
            "uk",
            "--file",
            path,
        ];
        run(&db.url, &args)
    };

    // A file with bad lines: every one named, nothing imported.
    let bad = file(
        "bad.csv",
        "iccid\n8944100000000000000\n8944100000000000001\n12\n",
    );
    let refused = import(&bad);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("line 3: `8944100000000000001`: the check digit is wrong (Luhn)"),
        "{said}"
    );
    assert!(said.contains("line 4: `12`: not an ICCID"), "{said}");
    assert!(
        said.contains("nothing imported: 2 line(s) refused"),
        "{said}"
    );
    assert!(stock(&db.url).is_empty());

    let good = file("good.csv", "8944100000000000000\n8944-1000-0000-0000-018\n");
    let imported: Value =
        serde_json::from_str(&String::from_utf8(import(&good).stdout).unwrap()).unwrap();
    assert_eq!(
        (&imported["imported"], &imported["environment"]),
        (&json!(2), &json!("production"))
    );
    // The same ICCIDs again: refused whole, each named.
    let again = import(&good);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("8944100000000000000"));

    let server = start_server_with(
        &db.url,
        "production",
        "127.0.0.1:0",
        &[("OYTEL_PROFILE_STOCK", "inventory")],
    );
    let mut iccids = HashSet::new();
    for key in ["a", "b"] {
        let (status, body) = provision(&server, &partner.live_key, key).await;
        assert_eq!(status, 201, "{body}");
        iccids.insert(body["esim"]["iccid"].as_str().unwrap().to_owned());
    }
    let expected: HashSet<String> = ["8944100000000000000", "8944100000000000018"]
        .map(str::to_owned)
        .into();
    assert_eq!(iccids, expected);

    // Out of stock: a clear 503, nothing charged; sandbox keys keep made-up profiles.
    let (status, body) = provision(&server, &partner.live_key, "c").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("PROFILE_STOCK_EXHAUSTED")),
        "{body}"
    );
    let charges = || async {
        let ledger = db.store.ledger(&partner.id).await.unwrap();
        ledger
            .iter()
            .filter(|e| e.kind.as_str() == "charge")
            .count()
    };
    assert_eq!(charges().await, 2);
    assert_eq!(provision(&server, &partner.sandbox_key, "s").await.0, 201);

    // A test batch, and the refused order's retry with its key goes through.
    let generated = ok(
        &db.url,
        &[
            "inventory",
            "generate",
            "--profile-type",
            "uk",
            "--count",
            "5",
        ],
    );
    assert!(generated.contains("\"imported\":5"), "{generated}");
    let (status, body) = provision(&server, &partner.live_key, "c").await;
    assert_eq!(status, 201, "{body}");
    assert!(body["esim"]["iccid"].as_str().unwrap().starts_with("8999"));
    assert_eq!(charges().await, 3);
    let listed = stock(&db.url);
    assert_eq!(
        listed,
        [
            json!({"profile_type": "uk", "environment": "production", "available": 4,
            "allocated": 3, "low": true})
        ]
    );
}
