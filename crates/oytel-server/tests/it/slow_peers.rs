//! Slow and hostile webhook receivers: a destination that hangs, answers 500, breaks off
//! mid-response or trickles its answer delays only its own events. Every healthy endpoint of
//! every partner gets every event within seconds, on one instance and on two, while the bad
//! ones are still being tried. The tests print their figures.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{order, start_server_with, TestApp, TestServer};
use crate::receiver::Receiver;

/// The attempt timeout in these tests: far longer than healthy deliveries may take.
const TIMEOUT_SECONDS: u64 = 30;

/// How long healthy endpoints get for all their events (a sixth of one bad attempt).
const HEALTHY_WITHIN: Duration = Duration::from_secs(5);

/// How a bad receiver misbehaves.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Reads the request and never answers.
    Hangs,
    /// Answers `500` at once.
    Fails,
    /// Sends half a status line and closes the connection.
    BreaksOff,
    /// Sends a `200` one byte a second.
    Trickles,
}

/// A receiver on port 0 that misbehaves on every request, counting them.
struct BadReceiver {
    url: String,
    fault: Fault,
    requests: Arc<AtomicUsize>,
    /// The `webhook-id`s it was sent (each event once, however often it was tried).
    ids: Arc<std::sync::Mutex<HashSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BadReceiver {
    async fn start(fault: Fault) -> BadReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let ids: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
        let (counted, seen_ids) = (requests.clone(), ids.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (counted, seen_ids) = (counted.clone(), seen_ids.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    // The request (these tests' payloads fit one read or a few).
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buffer[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&seen).into_owned();
                    let id = head.lines().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("webhook-id")
                            .then(|| value.trim().to_owned())
                    });
                    if let Some(id) = id {
                        seen_ids.lock().unwrap().insert(id);
                    }
                    match fault {
                        Fault::Hangs => {
                            let _ = socket.read(&mut buffer).await;
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Fault::Fails => {
                            let _ = socket
                                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                        }
                        Fault::BreaksOff => {
                            let _ = socket.write_all(b"HTTP/1.1 2").await;
                        }
                        Fault::Trickles => {
                            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" {
                                if socket.write_all(&[*byte]).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                });
            }
        });
        BadReceiver {
            url,
            fault,
            requests,
            ids,
            task,
        }
    }

    /// Distinct events it was sent.
    fn events(&self) -> usize {
        self.ids.lock().unwrap().len()
    }
}

impl Drop for BadReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One partner's part in a run: its key, its healthy receivers and its bad ones.
struct Tenant {
    name: &'static str,
    key: String,
    healthy: Vec<Receiver>,
    bad: Vec<BadReceiver>,
}

impl Tenant {
    async fn new(name: &'static str, key: &str, healthy: usize, faults: &[Fault]) -> Tenant {
        let mut receivers = Vec::new();
        for _ in 0..healthy {
            receivers.push(Receiver::start().await);
        }
        let mut bad = Vec::new();
        for fault in faults {
            bad.push(BadReceiver::start(*fault).await);
        }
        Tenant {
            name,
            key: key.to_owned(),
            healthy: receivers,
            bad,
        }
    }

    async fn register(&self, client: &reqwest::Client, base: &str) {
        let urls = self
            .healthy
            .iter()
            .map(|r| format!("{}/hook", r.base))
            .chain(self.bad.iter().map(|b| b.url.clone()));
        for url in urls {
            let response = client
                .post(format!("{base}/api/v1/webhooks/endpoints"))
                .bearer_auth(&self.key)
                .json(&json!({"url": url, "events": ["esim.provisioned"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        }
    }
}

/// Registers every tenant's endpoints, provisions `esims` eSIMs per tenant (spread over
/// `bases`, all at once), then waits for every healthy endpoint to hold every event. Asserts
/// that each did within [`HEALTHY_WITHIN`] of the last provisioning answer, with no event
/// missing or twice, and returns the figures to print.
async fn healthy_endpoints_get_every_event(
    label: &str,
    bases: &[String],
    tenants: &[Tenant],
    esims: usize,
) -> String {
    let client = reqwest::Client::new();
    for tenant in tenants {
        tenant.register(&client, &bases[0]).await;
    }
    let mut sent = tokio::task::JoinSet::new();
    for tenant in tenants {
        for i in 0..esims {
            let request = client
                .post(format!("{}/api/v1/esim/provision", bases[i % bases.len()]))
                .bearer_auth(&tenant.key)
                .json(&order("uk-lite-10"));
            sent.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
        }
    }
    while let Some(done) = sent.join_next().await {
        assert_eq!(done.unwrap().unwrap(), 201);
    }
    let provisioned = Instant::now();
    let mut slowest = Duration::ZERO;
    for tenant in tenants {
        for (n, receiver) in tenant.healthy.iter().enumerate() {
            let deadline = provisioned + HEALTHY_WITHIN;
            let mut got = receiver.received("/hook");
            while got.len() < esims && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
                got = receiver.received("/hook");
            }
            let took = provisioned.elapsed();
            let ids: HashSet<String> = got.iter().map(|r| r.webhook_id()).collect();
            assert_eq!(
                (got.len(), ids.len()),
                (esims, esims),
                "{label}: {} healthy endpoint {n} got {} events ({} distinct) of {esims} within {HEALTHY_WITHIN:?}",
                tenant.name,
                got.len(),
                ids.len()
            );
            slowest = slowest.max(took);
        }
    }
    let bad: Vec<String> = tenants
        .iter()
        .flat_map(|t| t.bad.iter())
        .map(|b| format!("{:?} {} tried", b.fault, b.requests.load(Ordering::SeqCst)))
        .collect();
    let healthy: usize = tenants.iter().map(|t| t.healthy.len()).sum();
    format!(
        "{label}: {healthy} healthy endpoints had all {esims} events each {} ms after the last \
         eSIM was provisioned; meanwhile {} (attempt timeout {TIMEOUT_SECONDS} s)",
        slowest.as_millis(),
        bad.join(", ")
    )
}

/// Partner A with three healthy endpoints and one of each fault; partner B with three healthy.
async fn ten_endpoints(app: &TestApp) -> [Tenant; 2] {
    let faults = [
        Fault::Hangs,
        Fault::Fails,
        Fault::BreaksOff,
        Fault::Trickles,
    ];
    [
        Tenant::new("A", &app.partner.sandbox_key, 3, &faults).await,
        Tenant::new("B", &app.other.sandbox_key, 3, &[]).await,
    ]
}

async fn server() -> TestApp {
    TestApp::wrap(
        TestServer::spawn_with(|s| {
            s.webhooks.timeout = Duration::from_secs(TIMEOUT_SECONDS);
        })
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hanging_endpoint_of_two_delays_only_itself() {
    let app = server().await;
    let tenants = [Tenant::new("A", &app.partner.sandbox_key, 1, &[Fault::Hangs]).await];
    let figures = healthy_endpoints_get_every_event(
        "two endpoints",
        std::slice::from_ref(&app.base),
        &tenants,
        40,
    )
    .await;
    println!("{figures}");
    assert!(tenants[0].bad[0].requests.load(Ordering::SeqCst) >= 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_bad_endpoints_of_ten_delay_only_themselves_for_every_partner() {
    let app = server().await;
    let tenants = ten_endpoints(&app).await;
    let figures = healthy_endpoints_get_every_event(
        "ten endpoints",
        std::slice::from_ref(&app.base),
        &tenants,
        40,
    )
    .await;
    println!("{figures}");
    let failing = &tenants[0].bad[1];
    let deadline = Instant::now() + HEALTHY_WITHIN;
    while failing.events() < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        failing.events(),
        40,
        "the endpoint answering 500 is tried for every event, not held back by the others"
    );
    let stopping = Instant::now();
    app.stop().await;
    let stopped_in = stopping.elapsed();
    println!(
        "stopped in {} ms with attempts to the hanging and trickling endpoints under way",
        stopped_in.as_millis()
    );
    assert!(
        stopped_in < Duration::from_secs(TIMEOUT_SECONDS / 3),
        "shutdown does not wait for the attempt timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_keep_bad_endpoints_apart_too() {
    let app = server().await;
    let timeout = TIMEOUT_SECONDS.to_string();
    let second = start_server_with(
        &app.database.url,
        "production",
        "127.0.0.1:0",
        &[("OYTEL_WEBHOOK_TIMEOUT_SECONDS", timeout.as_str())],
    );
    let tenants = ten_endpoints(&app).await;
    let bases = [app.base.clone(), second.base.clone()];
    let figures =
        healthy_endpoints_get_every_event("two instances, ten endpoints", &bases, &tenants, 40)
            .await;
    println!("{figures}");
    drop(second);
    app.stop().await;
}

/// What a partner sees of a bad endpoint: its attempts, logged as they happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoints_attempts_are_logged_as_they_time_out() {
    let app = TestApp::wrap(
        TestServer::spawn_with(|s| {
            s.webhooks.timeout = Duration::from_secs(1);
        })
        .await,
    );
    let tenants = [Tenant::new("A", &app.partner.sandbox_key, 0, &[Fault::Hangs]).await];
    tenants[0].register(&app.client, &app.base).await;
    for _ in 0..3 {
        app.provision(&app.partner.sandbox_key, "uk-lite-10").await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let attempts = loop {
        let (status, page) = app
            .get(&app.partner.sandbox_key, "/api/v1/webhooks/attempts")
            .await;
        assert_eq!(status, 200, "{page}");
        let data: Vec<Value> = page["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= 2 || Instant::now() > deadline {
            break data;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert!(attempts
        .iter()
        .all(|a| a["error"].as_str().is_some_and(|e| e.contains("timed out"))));
    app.stop().await;
}
