//! Two server processes on one PostgreSQL database, provisioning concurrently: every eSIM
//! unique, every charge exact, every idempotent request answered with one eSIM by both.

use std::collections::{HashMap, HashSet};

use oytel_store::testing::{fresh, Backend};
use serde_json::Value;

use crate::helpers::{make_partner, order, start_server, START_BALANCE_CENTS};

const DISTINCT: usize = 200;
const IDEMPOTENT_KEYS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(oytel_postgres),
    ignore = "needs PostgreSQL: build the tests with OYTEL_TEST_DATABASE_URL set (export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start))"
)]
async fn two_instances_on_one_database_never_duplicate_or_double_charge() {
    let Some(db) = fresh(Backend::Postgres).await else {
        return;
    };
    let partner = make_partner(db.store.as_ref(), "Two Instances").await;
    // uk-lite-10 costs 6.00: 220 orders need 1,320.00 on top of the minimum.
    db.store
        .credit(&partner.id, 200_000, "load test", oytel_core::clock::now())
        .await
        .unwrap();
    let balance_before = START_BALANCE_CENTS + 200_000;
    let a = start_server(&db.url, "production");
    let b = start_server(&db.url, "production");
    let bases = [a.base.clone(), b.base.clone()];
    let client = reqwest::Client::new();

    let send = |base: &str, key: Option<String>| {
        let mut request = client
            .post(format!("{base}/api/v1/esim/provision"))
            .bearer_auth(&partner.live_key)
            .json(&order("uk-lite-10"));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };

    // 200 distinct orders split between the instances, and each of 20 idempotency keys sent
    // to both instances at once; all in flight together.
    let mut tasks = Vec::new();
    for i in 0..DISTINCT {
        tasks.push((None, tokio::spawn(send(&bases[i % 2], None))));
    }
    for k in 0..IDEMPOTENT_KEYS {
        for base in &bases {
            let key = format!("multi-{k}");
            tasks.push((Some(key.clone()), tokio::spawn(send(base, Some(key)))));
        }
    }
    let mut esims: Vec<Value> = Vec::new();
    let mut by_key: HashMap<String, HashSet<String>> = HashMap::new();
    let mut in_progress = 0;
    let total_requests = tasks.len();
    for (key, task) in tasks {
        let response = task.await.unwrap().unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        match (status, &key) {
            (201, None) => esims.push(body),
            (201, Some(key)) => {
                by_key
                    .entry(key.clone())
                    .or_default()
                    .insert(body["esim_id"].as_str().unwrap().to_owned());
                esims.push(body);
            }
            (409, Some(_)) => {
                assert_eq!(body["code"], "IDEMPOTENCY_REQUEST_IN_PROGRESS");
                in_progress += 1;
            }
            _ => panic!("unexpected {status} for {key:?}: {body}"),
        }
    }
    // Every key, asked again of both instances, names one eSIM.
    for k in 0..IDEMPOTENT_KEYS {
        let key = format!("multi-{k}");
        for base in &bases {
            let response = send(base, Some(key.clone())).await.unwrap();
            assert_eq!(response.status(), 201);
            assert_eq!(response.headers()["idempotent-replayed"], "true");
            let body: Value = response.json().await.unwrap();
            by_key
                .entry(key.clone())
                .or_default()
                .insert(body["esim_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            by_key[&key].len(),
            1,
            "{key} named two eSIMs: {:?}",
            by_key[&key]
        );
    }

    let created: HashSet<&str> = esims
        .iter()
        .map(|e| e["esim_id"].as_str().unwrap())
        .collect();
    let expected = DISTINCT + IDEMPOTENT_KEYS;
    assert_eq!(created.len(), expected);
    let iccids: HashSet<&str> = esims.iter().map(|e| e["iccid"].as_str().unwrap()).collect();
    let numbers: HashSet<&str> = esims
        .iter()
        .map(|e| e["mobile_number"].as_str().unwrap())
        .collect();
    let scope = oytel_core::Scope {
        partner_id: partner.id.clone(),
        environment: oytel_types::Environment::Production,
    };
    let mut stored = 0;
    let mut before = None;
    loop {
        let page = oytel_core::ports::PageRequest { limit: 100, before };
        let rows = db
            .store
            .list_esims(&scope, &oytel_core::ports::EsimFilter::default(), page)
            .await
            .unwrap();
        stored += rows.len();
        match rows.last() {
            Some(last) => before = Some(last.seq),
            None => break,
        }
    }
    let balance = db.store.live_balance(&partner.id).await.unwrap();
    let ledger = db.store.ledger(&partner.id).await.unwrap();
    let charges = ledger
        .iter()
        .filter(|e| e.kind.as_str() == "charge")
        .count();
    let duplicates = (created.len() - iccids.len()) + (created.len() - numbers.len());
    println!(
        "two instances: {total_requests} concurrent requests, {} successes ({} distinct eSIMs, \
         {in_progress} answered 409 in progress), {stored} eSIMs stored, {charges} charges, \
         duplicates found: {duplicates}",
        esims.len(),
        created.len()
    );
    assert_eq!(duplicates, 0);
    assert_eq!(stored, expected);
    assert_eq!(charges, expected);
    assert_eq!(balance, balance_before - 600 * expected as i64);
    assert_eq!(ledger.iter().map(|e| e.amount_cents).sum::<i64>(), balance);
    assert!(a.terminate().success() && b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(oytel_postgres),
    ignore = "needs PostgreSQL: build the tests with OYTEL_TEST_DATABASE_URL set (export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start))"
)]
async fn two_instances_share_one_hourly_quota() {
    let Some(db) = fresh(Backend::Postgres).await else {
        return;
    };
    let partner =
        oytel_server::testing::make_partner_with_default_limits(db.store.as_ref(), "Quota").await;
    let no_burst = oytel_core::limits::LimitOverrides {
        burst_per_second: Some(100_000),
        ..Default::default()
    };
    db.store
        .set_partner_limits(&partner.id, &no_burst)
        .await
        .unwrap();
    let a = start_server(&db.url, "production");
    let b = start_server(&db.url, "production");
    let bases = [a.base.clone(), b.base.clone()];
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            tokio::spawn(
                client
                    .post(format!("{}/api/v1/esim/provision", bases[i % 2]))
                    .bearer_auth(&partner.live_key)
                    .json(&order("uk-lite-10"))
                    .send(),
            )
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap().unwrap().status().as_u16() {
            201 => admitted += 1,
            429 => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    println!("two instances, 300 concurrent provisions against a quota of 100: {admitted} admitted, {refused} refused");
    assert_eq!((admitted, refused), (100, 200));
    assert!(a.terminate().success() && b.terminate().success());
}
