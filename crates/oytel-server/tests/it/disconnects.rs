//! Clients that go away mid-request (issue #24): a client with a short timeout, a mobile
//! network, a load balancer. Every state-changing route is sent requests whose connections
//! are reset at a spread of moments, from before the body is read to after the commit;
//! meanwhile and afterwards the server must serve every route, each dropped request must have
//! happened whole or not at all, money must add up, and `/readyz` must never say `ok` while
//! writes fail. Then the same under the server's request timeout and during a shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::*;
use oytel_server::completion::InFlight;
use oytel_server::testing::OPERATOR_TOKEN;

/// When the client resets its connection.
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// With half of the body sent.
    MidBody,
    /// This long after the whole request was sent.
    After(Duration),
}

/// The moments tried: before the body is read, then from at once to well after a commit.
fn moments() -> Vec<Leave> {
    let mut moments = vec![Leave::MidBody];
    moments.extend(
        [0, 100, 250, 500, 1_000, 2_000, 4_000, 8_000]
            .map(|us| Leave::After(Duration::from_micros(us))),
    );
    moments
}

/// A request as bytes on the wire.
#[derive(Debug, Clone)]
struct Raw {
    method: &'static str,
    path: String,
    token: String,
    body: String,
    idempotency_key: Option<String>,
}

impl Raw {
    fn new(method: &'static str, path: impl Into<String>, token: &str, body: Value) -> Raw {
        Raw {
            method,
            path: path.into(),
            token: token.to_owned(),
            body: if body.is_null() {
                String::new()
            } else {
                body.to_string()
            },
            idempotency_key: None,
        }
    }

    fn head(&self) -> String {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.method,
            self.path,
            self.token,
            self.body.len()
        );
        if let Some(key) = &self.idempotency_key {
            head.push_str(&format!("Idempotency-Key: {key}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

/// Sends `raw` and resets the connection at `leave` (RST: the socket lingers for 0 s).
async fn send_and_leave(addr: SocketAddr, raw: &Raw, leave: Leave) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return; // The server is restarting (the shutdown test).
    };
    stream.set_zero_linger().unwrap();
    let _ = stream.write_all(raw.head().as_bytes()).await;
    match leave {
        Leave::MidBody => {
            let _ = stream
                .write_all(&raw.body.as_bytes()[..raw.body.len() / 2])
                .await;
        }
        Leave::After(delay) => {
            let _ = stream.write_all(raw.body.as_bytes()).await;
            // Finer than the timer wheel's millisecond.
            let until = Instant::now() + delay;
            while Instant::now() < until {
                tokio::task::yield_now().await;
            }
        }
    }
    drop(stream);
}

fn addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// Resends a provisioning until it is no longer in progress; whether it was a replay.
async fn settle_provision(app: &TestApp, key: &str, idempotency_key: &str, body: &Value) -> bool {
    for _ in 0..200 {
        let response = app
            .client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency_key)
            .json(body)
            .send()
            .await
            .unwrap();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let (status, answer) = split(response).await;
        match status {
            201 => return replayed,
            409 => tokio::time::sleep(Duration::from_millis(25)).await,
            _ => panic!("a retry of {idempotency_key}: {status} {answer}"),
        }
    }
    panic!("{idempotency_key} stayed in progress")
}

/// Normal traffic beside the storm: readiness probes and sandbox provisions, counted.
#[derive(Default)]
struct Canary {
    stop: AtomicBool,
    ready: AtomicUsize,
    served: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Canary {
    async fn run(self: Arc<Self>, base: String, key: String) {
        let client = reqwest::Client::new();
        let mut i = 0;
        while !self.stop.load(Ordering::Acquire) {
            i += 1;
            let ready = client.get(format!("{base}/readyz")).send().await;
            match ready.map(|r| r.status().as_u16()) {
                Ok(200) => self.ready.fetch_add(1, Ordering::Relaxed),
                other => {
                    self.fail(format!("readyz: {other:?}"));
                    0
                }
            };
            let provision = client
                .post(format!("{base}/api/v1/esim/provision"))
                .bearer_auth(&key)
                .header("Idempotency-Key", format!("canary-{i}"))
                .timeout(Duration::from_secs(10))
                .json(&order("uk-lite-10"))
                .send()
                .await;
            match provision.map(|r| r.status().as_u16()) {
                Ok(201) => self.served.fetch_add(1, Ordering::Relaxed),
                other => {
                    self.fail(format!("provision: {other:?}"));
                    0
                }
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// Runs `requests`, each left at one of the moments, eight connections at a time, waiting
/// for the server's detached writes to drain to at most eight between rounds (as clients
/// that retry do), when `in_flight` is given; how many.
async fn storm(addr: SocketAddr, requests: Vec<Raw>, in_flight: Option<&InFlight>) -> usize {
    let moments = moments();
    let mut sent = 0;
    for chunk in requests.chunks(8) {
        let tasks: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let (raw, leave) = (raw.clone(), moments[(sent + i) % moments.len()]);
                tokio::spawn(async move { send_and_leave(addr, &raw, leave).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        sent += chunk.len();
        while in_flight.is_some_and(|f| f.running() > 8) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_disconnect_mid_request_break_nothing() {
    let app = TestApp::spawn().await;
    let (live, sandbox) = (
        app.partner.live_key.clone(),
        app.partner.sandbox_key.clone(),
    );
    let addr = addr(&app);

    // What the routes act on.
    let live_esim = app.provision(&live, "uk-lite-10").await;
    let iccid = live_esim["iccid"].as_str().unwrap().to_owned();
    let live_esim_id = live_esim["esim_id"].as_str().unwrap().to_owned();
    let sandbox_esim = app.provision(&sandbox, "uk-lite-10").await;
    let sandbox_esim = sandbox_esim["esim_id"].as_str().unwrap().to_owned();
    let (_, endpoint) = app
        .post(
            &sandbox,
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://hooks.example/a"}),
        )
        .await;
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let (_, test) = app
        .post(
            &sandbox,
            &format!("/api/v1/webhooks/endpoints/{endpoint}/test"),
            &json!({}),
        )
        .await;
    let event = test["event_id"].as_str().unwrap().to_owned();
    let mut doomed = Vec::new();
    for i in 0..9 {
        let (status, e) = app
            .post(
                &sandbox,
                "/api/v1/webhooks/endpoints",
                &json!({"url": format!("https://hooks.example/doomed-{i}")}),
            )
            .await;
        assert_eq!(status, 201, "{e}");
        doomed.push(e["id"].as_str().unwrap().to_owned());
    }
    let charges_before = app.store.ledger(&app.partner.id).await.unwrap().len();

    let canary = Arc::new(Canary::default());
    let canary_task = tokio::spawn(canary.clone().run(app.base.clone(), sandbox.clone()));

    // The routes, each with its requests (every one left at one of the moments).
    // Each request is left at one of the moments, every moment a few times per route.
    let n = 2 * moments().len();
    let routes: Vec<(&str, Vec<Raw>)> = vec![
        (
            "provision",
            (0..6 * n)
                .map(|i| Raw {
                    idempotency_key: Some(format!("drop-{i}")),
                    ..Raw::new("POST", "/api/v1/esim/provision", &live, order("uk-lite-10"))
                })
                .collect(),
        ),
        (
            "endpoint create",
            (0..2 * n)
                .map(|i| {
                    Raw::new(
                        "POST",
                        "/api/v1/webhooks/endpoints",
                        &sandbox,
                        json!({"url": format!("https://hooks.example/new-{i}")}),
                    )
                })
                .collect(),
        ),
        (
            "endpoint update",
            (0..2 * n)
                .map(|i| {
                    Raw::new(
                        "PATCH",
                        format!("/api/v1/webhooks/endpoints/{endpoint}"),
                        &sandbox,
                        json!({"description": format!("version {i}")}),
                    )
                })
                .collect(),
        ),
        (
            "endpoint delete",
            doomed
                .iter()
                .map(|id| {
                    Raw::new(
                        "DELETE",
                        format!("/api/v1/webhooks/endpoints/{id}"),
                        &sandbox,
                        Value::Null,
                    )
                })
                .collect(),
        ),
        (
            "endpoint rotate",
            (0..2 * n)
                .map(|_| {
                    Raw::new(
                        "POST",
                        format!("/api/v1/webhooks/endpoints/{endpoint}/rotate-secret"),
                        &sandbox,
                        json!({}),
                    )
                })
                .collect(),
        ),
        (
            "endpoint test",
            (0..2 * n)
                .map(|_| {
                    Raw::new(
                        "POST",
                        format!("/api/v1/webhooks/endpoints/{endpoint}/test"),
                        &sandbox,
                        json!({}),
                    )
                })
                .collect(),
        ),
        (
            "secret rotate",
            (0..2 * n)
                .map(|_| {
                    Raw::new(
                        "POST",
                        "/api/v1/webhooks/secret/rotate",
                        &sandbox,
                        json!({}),
                    )
                })
                .collect(),
        ),
        (
            "redeliver",
            (0..2 * n)
                .map(|_| {
                    Raw::new(
                        "POST",
                        format!("/api/v1/webhooks/events/{event}/redeliver"),
                        &sandbox,
                        json!({}),
                    )
                })
                .collect(),
        ),
        (
            "sandbox usage",
            (0..2 * n)
                .map(|_| {
                    Raw::new(
                        "POST",
                        format!("/api/v1/sandbox/esim/{sandbox_esim}/usage"),
                        &sandbox,
                        json!({"data_mb": 1}),
                    )
                })
                .collect(),
        ),
        (
            "sandbox activate",
            (0..n)
                .map(|_| {
                    Raw::new(
                        "POST",
                        format!("/api/v1/sandbox/esim/{sandbox_esim}/activate"),
                        &sandbox,
                        json!({}),
                    )
                })
                .collect(),
        ),
        (
            "operator usage",
            (0..4 * n)
                .map(|i| {
                    Raw::new(
                        "POST",
                        "/api/v1/operator/usage",
                        OPERATOR_TOKEN,
                        usage_batch(&iccid, i),
                    )
                })
                .collect(),
        ),
        (
            "operator activations",
            (0..n)
                .map(|_| {
                    Raw::new(
                        "POST",
                        "/api/v1/operator/activations",
                        OPERATOR_TOKEN,
                        json!({"activations": [{"iccid": iccid}]}),
                    )
                })
                .collect(),
        ),
    ];
    let started = Instant::now();
    let mut figures = Vec::new();
    let mut total = 0;
    for (name, requests) in &routes {
        let sent = storm(addr, requests.clone(), Some(&app.in_flight)).await;
        figures.push(format!("{name} {sent}"));
        total += sent;
    }
    let storm_time = started.elapsed();
    canary.stop.store(true, Ordering::Release);
    canary_task.await.unwrap();

    // Every dropped provisioning either committed (a replay now) or wrote nothing (a fresh
    // attempt now): exactly one order and one charge per key either way.
    let (mut replayed, mut fresh) = (0, 0);
    for raw in &routes[0].1 {
        let key = raw.idempotency_key.as_deref().unwrap();
        if settle_provision(&app, &live, key, &order("uk-lite-10")).await {
            replayed += 1;
        } else {
            fresh += 1;
        }
    }
    let ledger = app.store.ledger(&app.partner.id).await.unwrap();
    let charges: Vec<_> = ledger[charges_before..].iter().collect();
    assert_eq!(
        charges.len(),
        routes[0].1.len(),
        "one charge per idempotency key"
    );
    for charge in &charges {
        let order_id = charge
            .order_id
            .as_deref()
            .expect("a charge names its order");
        let (status, order) = app.get(&live, &format!("/api/v1/orders/{order_id}")).await;
        assert_eq!(status, 200, "a charged order exists: {order}");
    }
    let balance = app.store.live_balance(&app.partner.id).await.unwrap();
    let sum: i64 = ledger.iter().map(|e| e.amount_cents).sum();
    assert_eq!(sum, balance, "the ledger adds up to the balance");
    let (_, account) = app.get(&live, "/api/v1/account").await;
    assert_eq!(account["balance"]["available_cents"], balance, "{account}");

    // Usage records are applied once each, whether their batch's client stayed or not.
    let records = routes[10].1.len();
    for i in 0..records {
        let (status, body) = post_operator(&app, &usage_batch(&iccid, i)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, s) = app
        .get(&live, &format!("/api/v1/esim/{live_esim_id}/status"))
        .await;
    assert_eq!(s["usage"]["data_used_mb"], records, "each record once: {s}");

    // Every endpoint that exists reads back whole.
    let (_, list) = app
        .get(&sandbox, "/api/v1/webhooks/endpoints?limit=100")
        .await;
    for e in list["data"].as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        let (status, one) = app
            .get(&sandbox, &format!("/api/v1/webhooks/endpoints/{id}"))
            .await;
        assert_eq!(status, 200, "{one}");
        assert!(one["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://hooks.example/")));
    }

    // Each route still works, and a rotation answered 200 is the secret after a restart.
    assert_every_route_answers(&app, &endpoint, &event, &sandbox_esim).await;
    let (status, rotated) = app
        .post(&sandbox, "/api/v1/webhooks/secret/rotate", &json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_cli_works_beside_the_server(&app).await;
    let failures = canary.failures.lock().unwrap().clone();
    let app = TestApp::wrap(app_restart(app).await);
    let (_, secret) = app.get(&sandbox, "/api/v1/webhooks/secret").await;
    assert_eq!(
        secret["secret"], rotated["secret"],
        "the answered secret is the stored one"
    );

    println!(
        "disconnects: {total} requests reset mid-request in {:.1} s ({}); provisions: {replayed} \
         had committed (replayed), {fresh} had written nothing (fresh); normal traffic \
         meanwhile: {} provisions and {} readiness probes, {} failed",
        storm_time.as_secs_f64(),
        figures.join(", "),
        canary.served.load(Ordering::Relaxed),
        canary.ready.load(Ordering::Relaxed),
        failures.len(),
    );
    assert!(failures.is_empty(), "normal traffic failed: {failures:?}");
    assert!(total >= 400, "hundreds of disconnects");
    app.stop().await;
}

fn usage_batch(iccid: &str, i: usize) -> Value {
    json!({"records": [{"record_id": format!("net-{i}"), "iccid": iccid, "data_mb": 1,
        "recorded_at": chrono::Utc::now().to_rfc3339()}]})
}

async fn post_operator(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/operator/usage"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    split(response).await
}

async fn app_restart(app: TestApp) -> oytel_server::testing::TestServer {
    app.into_server().restart(|_| {}).await
}

/// One normal request to each state-changing route answers 2xx.
async fn assert_every_route_answers(app: &TestApp, endpoint: &str, event: &str, esim: &str) {
    let key = &app.partner.sandbox_key;
    let calls = [
        (
            "/api/v1/webhooks/endpoints".to_owned(),
            json!({"url": "https://hooks.example/after"}),
            201,
        ),
        (
            format!("/api/v1/webhooks/endpoints/{endpoint}/rotate-secret"),
            json!({}),
            200,
        ),
        (
            format!("/api/v1/webhooks/endpoints/{endpoint}/test"),
            json!({}),
            202,
        ),
        (
            format!("/api/v1/webhooks/events/{event}/redeliver"),
            json!({}),
            202,
        ),
        (
            format!("/api/v1/sandbox/esim/{esim}/usage"),
            json!({"data_mb": 1}),
            200,
        ),
    ];
    for (path, body, expected) in calls {
        let (status, answer) = app.post(key, &path, &body).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/webhooks/endpoints/{endpoint}")))
        .bearer_auth(key)
        .json(&json!({"description": "after"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let fresh = app.provision(&app.partner.live_key, "uk-lite-10").await;
    assert!(fresh["esim_id"].is_string());
}

/// The admin command line, beside the running server, gets the database.
async fn assert_cli_works_beside_the_server(app: &TestApp) {
    app.admin(&["partner", "credit", &app.partner.id, "--amount", "1.00"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_timeout_answers_503_and_the_write_still_completes_once() {
    let server = oytel_server::testing::TestServer::spawn_with(|s| {
        s.request_timeout = Duration::from_millis(1)
    })
    .await;
    let app = TestApp::wrap(server);
    let key = app.partner.live_key.clone();
    let before = app.store.live_balance(&app.partner.id).await.unwrap();
    let mut timed_out = Vec::new();
    for i in 0..20 {
        let idempotency_key = format!("slow-{i}");
        let (status, body) = app
            .post_with(
                &key,
                "/api/v1/esim/provision",
                &order("uk-lite-10"),
                Some(&idempotency_key),
            )
            .await;
        match status {
            503 => {
                assert_error(status, &body, 503, "REQUEST_TIMEOUT");
                timed_out.push(idempotency_key);
            }
            201 => {}
            _ => panic!("{status} {body}"),
        }
    }
    assert!(
        !timed_out.is_empty(),
        "a 1 ms timeout fired on some provisioning"
    );
    // With a timeout that lets answers through, every key tells what happened: a replay.
    let app = TestApp::wrap(
        app.into_server()
            .restart(|s| s.request_timeout = Duration::from_secs(30))
            .await,
    );
    for idempotency_key in &timed_out {
        assert!(
            settle_provision(&app, &key, idempotency_key, &order("uk-lite-10")).await,
            "{idempotency_key} timed out, yet it was committed and replays"
        );
    }
    let ledger = app.store.ledger(&app.partner.id).await.unwrap();
    let charges = ledger
        .iter()
        .filter(|e| e.kind.as_str() == "charge")
        .count();
    assert_eq!(charges, 20, "each of the 20 keys charged once");
    let after = app.store.live_balance(&app.partner.id).await.unwrap();
    let spent: i64 = ledger
        .iter()
        .filter(|e| e.kind.as_str() == "charge")
        .map(|e| e.amount_cents)
        .sum();
    assert_eq!(before + spent, after);
    println!(
        "request timeout: {} of 20 provisions answered 503 REQUEST_TIMEOUT, every one committed \
         and replayed once, 20 charges",
        timed_out.len()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shutdown_finishes_the_writes_whose_clients_left() {
    let app = TestApp::spawn().await;
    let key = app.partner.live_key.clone();
    let addr = addr(&app);
    let requests: Vec<Raw> = (0..40)
        .map(|i| Raw {
            idempotency_key: Some(format!("shutdown-{i}")),
            ..Raw::new("POST", "/api/v1/esim/provision", &key, order("uk-lite-10"))
        })
        .collect();
    let leaving = tokio::spawn(storm(addr, requests.clone(), None));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let app = TestApp::wrap(app.into_server().restart(|_| {}).await);
    let _ = leaving.await;
    let (mut replayed, mut fresh) = (0, 0);
    for raw in &requests {
        if settle_provision(
            &app,
            &key,
            raw.idempotency_key.as_deref().unwrap(),
            &order("uk-lite-10"),
        )
        .await
        {
            replayed += 1;
        } else {
            fresh += 1;
        }
    }
    let ledger = app.store.ledger(&app.partner.id).await.unwrap();
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.kind.as_str() == "charge")
            .count(),
        40,
        "one charge per key"
    );
    let sum: i64 = ledger.iter().map(|e| e.amount_cents).sum();
    assert_eq!(sum, app.store.live_balance(&app.partner.id).await.unwrap());
    println!("shutdown: 40 provisions reset around a restart; {replayed} had committed, {fresh} had written nothing; one charge each");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_fails_while_writes_cannot_commit_and_recovers() {
    let app = TestApp::spawn().await;
    let ready = |app: &TestApp| {
        let request = app.client.get(app.url("/readyz"));
        async move { split(request.send().await.unwrap()).await }
    };
    assert_eq!(ready(&app).await.0, 200);
    let lock = app.database.hold_write_lock().await;
    tokio::time::sleep(oytel_server::routes::health::PROBE_REUSE).await;
    let started = Instant::now();
    let (status, body) = ready(&app).await;
    let answered_in = started.elapsed();
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("cannot commit a write"),
        "{body}"
    );
    lock.release().await;
    let mut recovered = None;
    for _ in 0..50 {
        if ready(&app).await.0 == 200 {
            recovered = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.expect("ready again once writes commit");
    println!(
        "readiness: 503 within {:.1} s while another process held the write lock, 200 again {:.1} s after the probe began",
        answered_in.as_secs_f64(),
        recovered.as_secs_f64()
    );
    assert!(answered_in < Duration::from_secs(5), "a bounded probe");
    app.stop().await;
}
