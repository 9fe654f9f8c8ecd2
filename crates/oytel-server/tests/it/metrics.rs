//! Prometheus metrics: after a scripted flow, the scraped counters and histograms moved by
//! the expected amounts; no label carries an id or a secret; the metrics are not on the
//! partners' port.

use std::collections::BTreeMap;

use oytel_server::testing::{fresh_database, make_partner, make_partner_with_default_limits};
use oytel_store::testing::Backend;

use crate::helpers::{order, start_server_with, subscribe};
use crate::receiver::Receiver;

/// A scrape: each series (its name and sorted labels, `name{a="x",b="y"}`) and its value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (key, value) = line.rsplit_once(' ').unwrap();
        let key = match key.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => key.to_owned(),
        };
        series.insert(key, value.parse().unwrap());
    }
    series
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_flow_moves_the_counters_by_what_it_did() {
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Metrics").await;
    let limited = make_partner_with_default_limits(db.store.as_ref(), "Limited").await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let server = start_server_with(
        &db.url,
        "production",
        "127.0.0.1:0",
        &[("OYTEL_METRICS_LISTEN", &listen)],
    );
    let api = reqwest::Client::new();
    let key = &partner.sandbox_key;
    let url = |path: &str| format!("{}{path}", server.base);
    let receiver = Receiver::start().await;
    subscribe(&server.base, key, &receiver).await;

    for _ in 0..2 {
        let plans = api
            .get(url("/api/v1/plans"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(plans.status(), 200);
    }
    let provision = |idempotency_key: &'static str, plan: &'static str| {
        api.post(url("/api/v1/esim/provision"))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency_key)
            .json(&order(plan))
            .send()
    };
    assert_eq!(provision("m-1", "uk-lite-10").await.unwrap().status(), 201);
    assert_eq!(provision("m-1", "uk-lite-10").await.unwrap().status(), 201);
    assert_eq!(
        provision("m-2", "no-such-plan").await.unwrap().status(),
        404
    );
    // More than the default burst of 10 a second: some are refused.
    let burst: Vec<_> = (0..25)
        .map(|_| {
            let request = api
                .get(url("/api/v1/plans"))
                .bearer_auth(&limited.sandbox_key);
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut refused = 0;
    for answer in burst {
        if answer.await.unwrap() == 429 {
            refused += 1;
        }
    }
    assert!(refused > 0);
    receiver.wait_for("/events", 1).await;

    let scrape = || async {
        let text = reqwest::get(format!("http://{listen}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (parse(&text), text)
    };
    let (mut series, mut text) = scrape().await;
    // The delivery's attempt is counted once the worker has recorded it.
    for _ in 0..50 {
        if series.contains_key("oytel_webhook_attempts_total{outcome=\"delivered\"}") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        (series, text) = scrape().await;
    }
    let value = |key: &str| {
        series
            .get(key)
            .copied()
            .unwrap_or_else(|| panic!("{key} in\n{text}"))
    };
    assert_eq!(
        value(r#"oytel_http_requests_total{method="GET",route="/api/v1/plans",status="200"}"#),
        2.0 + (25 - refused) as f64
    );
    assert_eq!(
        value(
            r#"oytel_http_requests_total{method="POST",route="/api/v1/esim/provision",status="201"}"#
        ),
        2.0
    );
    assert!(
        value(
            r#"oytel_http_request_duration_seconds_count{method="POST",route="/api/v1/esim/provision"}"#
        ) >= 3.0
    );
    assert_eq!(
        value(r#"oytel_provisionings_total{code="",environment="sandbox",outcome="created"}"#),
        1.0
    );
    assert_eq!(
        value(r#"oytel_provisionings_total{code="",environment="sandbox",outcome="replayed"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"oytel_provisionings_total{code="PLAN_NOT_FOUND",environment="sandbox",outcome="refused"}"#
        ),
        1.0
    );
    assert_eq!(
        value(r#"oytel_idempotent_replays_total{operation="provision"}"#),
        1.0
    );
    assert_eq!(
        value(r#"oytel_rate_limited_total{limit="burst_per_second"}"#),
        refused as f64
    );
    assert!(value(r#"oytel_webhook_attempts_total{outcome="delivered"}"#) >= 1.0);
    assert!(value("oytel_webhook_pending") >= 0.0);
    // SQLite has a writer and readers, PostgreSQL one storage pool and the quota counters'.
    let pools: Vec<&String> = series
        .keys()
        .filter(|k| k.starts_with("oytel_db_pool_connections{"))
        .collect();
    assert_eq!(pools.len(), 4, "{pools:?}");

    // No label carries an id, a key or an address.
    for key in series.keys() {
        for secret in ["esim_", "ptn_", "ord_", "sk_", "evt_", "127.0.0.1"] {
            assert!(!key.contains(secret), "{key}");
        }
    }
    // The partners' port does not serve the metrics.
    let public = api.get(url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
}

/// The operator kit (`docs/ops`: the alert rules and the Grafana dashboard) reads only
/// metrics the server has: each `oytel_…` name in them is in the table of `metrics.rs`.
#[test]
fn the_alert_rules_and_the_dashboard_name_only_metrics_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = std::fs::read_to_string(root.join("src/metrics.rs")).unwrap();
    let known: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("//! | `oytel_"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(known.len() >= 15, "{known:?}");
    let kit = root.join("../../docs/ops");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kit.join("grafana-dashboard.json")).unwrap())
            .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 10);
    for file in ["alerts.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(kit.join(file)).unwrap();
        let mut named = 0;
        for (at, _) in text.match_indices("oytel_") {
            let name: String = text[at + "oytel_".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                known.contains(&base),
                "{file}: oytel_{name} is no metric of the server"
            );
            named += 1;
        }
        assert!(named >= 5, "{file} names {named} metrics");
    }
}
