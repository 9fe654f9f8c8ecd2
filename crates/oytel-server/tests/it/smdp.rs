//! Provisioning through an SM-DP+: the real server binary and the simulator, over HTTPS with
//! mutual TLS on port 0, on SQLite or PostgreSQL. Each fault of the saga is tested; the last
//! test kills the server (SIGKILL) between `downloadOrder` and `confirmOrder`.

use std::time::Duration;

use oytel_server::testing::{fresh_database, make_partner, TestPartner};
use oytel_smdp_sim::testing::{Pki, Sim};
use oytel_smdp_sim::{NotifyConfig, SimConfig};
use oytel_store::testing::{Backend, TestDatabase};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::{json, Value};

use crate::helpers::{order, start_server_with, ServerProcess};
use crate::receiver::Receiver;

/// The plan ordered: its profile type is its region, `uk`.
const PLAN: &str = "uk-lite-10";
const STOCK: u64 = 6;

/// The simulator with `STOCK` profiles of type `uk`, and the files the server reads.
struct Smdp {
    sim: Sim,
    files: tempfile::TempDir,
}

impl Smdp {
    async fn start() -> Smdp {
        Smdp::start_notifying(None).await
    }

    /// With the simulator sending its reports to our ES2+ listener on `port`, over mutual
    /// TLS (its client certificate and our server certificate from the same test CA).
    async fn start_notifying(port: Option<u16>) -> Smdp {
        let pki = Pki::new("ES2+ test CA");
        let files = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(files.path().join(name), text).unwrap();
        let (cert, key) = pki.issue("oytel-operator", ExtendedKeyUsagePurpose::ClientAuth);
        write("ca.pem", &pki.ca_pem);
        write("operator.pem", &cert);
        write("operator.key", &key);
        let (cert, key) = pki.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        write("es2plus.pem", &cert);
        write("es2plus.key", &key);
        let notify = match port {
            Some(port) => {
                let (cert, key) = pki.issue("smdp.sim.test", ExtendedKeyUsagePurpose::ClientAuth);
                NotifyConfig {
                    base_url: Some(format!("https://localhost:{port}")),
                    identity_pem: Some(format!("{cert}{key}").into_bytes()),
                    ca_pem: Some(pki.ca_pem.clone().into_bytes()),
                    deletion_point: 5,
                }
            }
            None => NotifyConfig::default(),
        };
        let sim = Sim::start_with(
            &pki,
            SimConfig {
                stock: vec![("uk".into(), STOCK as u32)],
                smdp_address: "smdp.sim.test".into(),
                requester_id: "sim".into(),
                notify,
                iccid_prefix: oytel_smdp_sim::state::DEFAULT_ICCID_PREFIX.into(),
            },
        )
        .await;
        Smdp { sim, files }
    }

    fn file(&self, name: &str) -> String {
        self.files.path().join(name).display().to_string()
    }

    /// The server in production mode, its live profiles from `url` (the simulator's unless
    /// given), with a reconciler that takes over reservations after `stale_seconds`.
    fn server(&self, db: &TestDatabase, url: Option<&str>, stale_seconds: u64) -> ServerProcess {
        self.server_with(db, url, stale_seconds, &[])
    }

    fn server_with(
        &self,
        db: &TestDatabase,
        url: Option<&str>,
        stale_seconds: u64,
        more: &[(&str, &str)],
    ) -> ServerProcess {
        let url = url.unwrap_or(&self.sim.base).to_owned();
        let (ca, cert, key) = (
            self.file("ca.pem"),
            self.file("operator.pem"),
            self.file("operator.key"),
        );
        let stale = stale_seconds.to_string();
        let mut env = vec![
            ("OYTEL_SMDP_URL", url.as_str()),
            ("OYTEL_SMDP_CA_CERT", &ca),
            ("OYTEL_SMDP_CLIENT_CERT", &cert),
            ("OYTEL_SMDP_CLIENT_KEY", &key),
            ("OYTEL_SMDP_REQUESTER_ID", "oytel-test"),
            ("OYTEL_SMDP_TIMEOUT_SECONDS", "1"),
            ("OYTEL_SMDP_STALE_AFTER_SECONDS", &stale),
        ];
        env.extend_from_slice(more);
        start_server_with(&db.url, "production", "127.0.0.1:0", &env)
    }

    async fn stock(&self, state: &str) -> u64 {
        self.sim.stock("uk", state).await
    }

    async fn fault(&self, fault: Value) {
        self.sim.post("/control/faults", fault).await;
    }

    /// Waits until `state` holds `count` profiles, or fails after `seconds`.
    async fn wait_for(&self, state: &str, count: u64, seconds: u64) {
        let until = std::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let now = self.stock(state).await;
            if now == count {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "{state}: {now} profiles, expected {count} within {seconds} s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn provision(server: &ServerProcess, key: &str, idempotency_key: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/esim/provision", server.base))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .json(&order(PLAN))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A partner's call with `key` on `server`: its status and JSON body.
async fn call(server: &ServerProcess, method: &str, key: &str, path: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Live charges in the ledger, and live orders.
async fn charges_and_orders(db: &TestDatabase, partner: &TestPartner) -> (usize, usize) {
    let charges = db
        .store
        .ledger(&partner.id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind.as_str() == "charge")
        .count();
    let scope = oytel_core::Scope {
        partner_id: partner.id.clone(),
        environment: oytel_types::Environment::Production,
    };
    let orders = db
        .store
        .list_orders(
            &scope,
            None,
            oytel_core::ports::PageRequest {
                limit: 100,
                before: None,
            },
        )
        .await
        .unwrap()
        .len();
    (charges, orders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_esim_gets_its_profile_from_the_smdp_and_sandbox_keeps_builtin_ones() {
    let smdp = Smdp::start().await;
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Smdp").await;
    let metrics = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let server = smdp.server_with(&db, None, 120, &[("OYTEL_METRICS_LISTEN", &metrics)]);

    let (status, body) = provision(&server, &partner.live_key, "live-1").await;
    assert_eq!(status, 201, "{body}");
    let iccid = body["esim"]["iccid"].as_str().unwrap();
    let profile = smdp.sim.get(&format!("/control/profiles/{iccid}")).await;
    assert_eq!(profile["state"], "Released", "{profile}");
    let matching_id = profile["matching_id"].as_str().unwrap();
    assert_eq!(
        body["esim"]["activation_code"],
        format!("LPA:1$smdp.sim.test${matching_id}")
    );
    assert_eq!(smdp.stock("Available").await, STOCK - 1);
    assert_eq!(charges_and_orders(&db, &partner).await, (1, 1));

    // A retry of the same request is its replay: no second profile, no second charge.
    let (status, again) = provision(&server, &partner.live_key, "live-1").await;
    assert_eq!(
        (status, &again["esim"]["iccid"]),
        (201, &body["esim"]["iccid"])
    );
    assert_eq!(smdp.stock("Available").await, STOCK - 1);

    // Sandbox keys keep the builtin profiles unless configured otherwise.
    let (status, sandbox) = provision(&server, &partner.sandbox_key, "sandbox-1").await;
    assert_eq!(status, 201, "{sandbox}");
    assert!(sandbox["esim"]["activation_code"]
        .as_str()
        .unwrap()
        .starts_with("LPA:1$smdp.oytel.online$"));
    assert_eq!(smdp.stock("Available").await, STOCK - 1);
    assert_eq!(smdp.sim.calls("downloadOrder").await, 1);

    // The metrics count each ES2+ call by function and outcome, and the journal by state.
    let scraped = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"oytel_smdp_calls_total{function="downloadOrder",outcome="success"} 1"#,
        r#"oytel_smdp_calls_total{function="confirmOrder",outcome="success"} 1"#,
        r#"oytel_smdp_call_duration_seconds_count{function="confirmOrder"} 1"#,
        r#"oytel_smdp_reservations{state="sold"} 1"#,
    ] {
        assert!(scraped.lines().any(|l| l == line), "{line} in\n{scraped}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_charges_nothing_and_leaves_no_profile_held_for_nobody() {
    let smdp = Smdp::start().await;
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Faults").await;
    let server = smdp.server(&db, None, 120);
    let live = partner.live_key.as_str();

    // fault, injected fault, expected status and code, words the message must have
    let cases: [(&str, Value, u16, &str, &str); 4] = [
        (
            "refused (no stock of the type)",
            json!({"function": "downloadOrder", "reject": {"subject_code": "8.2.5", "reason_code": "3.7", "message": "no stock"}}),
            502,
            "SMDP_REJECTED",
            "profile type",
        ),
        (
            "downloadOrder answered late (after acting)",
            json!({"function": "downloadOrder", "count": 3, "delay_ms": 2500}),
            504,
            "SMDP_TIMEOUT",
            "in time",
        ),
        (
            "confirmOrder failing with HTTP 503",
            json!({"function": "confirmOrder", "count": 3, "http_status": 503}),
            502,
            "SMDP_PROTOCOL_ERROR",
            "could not be understood",
        ),
        (
            "confirmOrder refused",
            json!({"function": "confirmOrder", "reject": {"subject_code": "8.2.1", "reason_code": "3.8", "message": "refused"}}),
            502,
            "SMDP_REJECTED",
            "confirmOrder",
        ),
    ];
    println!("| fault | answer | charged | put back (cancelOrder) | held for nobody | the retry with its key | profiles sold | charges |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut sold = 0;
    for (i, (what, fault, status, code, words)) in cases.into_iter().enumerate() {
        smdp.fault(fault).await;
        let cancels = smdp.sim.calls("cancelOrder").await;
        let key = format!("fault-{i}");
        let (got, body) = provision(&server, live, &key).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(words), "{what}: {message}");
        let charged = charges_and_orders(&db, &partner).await.0 - sold;
        assert_eq!(
            charges_and_orders(&db, &partner).await,
            (sold, sold),
            "{what}"
        );
        // Whatever it may have reserved goes back to Available (the reconciler repeats a
        // timed-out downloadOrder to learn its ICCID: within its 5 s interval).
        smdp.sim.post("/control/faults", json!({})).await;
        smdp.wait_for("Available", STOCK - sold as u64, 20).await;
        let held = smdp.stock("Released").await + smdp.stock("Allocated").await - sold as u64;
        assert_eq!(held, 0, "{what}: held for nobody");
        let put_back = smdp.sim.calls("cancelOrder").await - cancels;

        // The retry with the same key, the fault gone: one profile, one charge.
        let (got, retried) = provision(&server, live, &key).await;
        assert_eq!(got, 201, "{what}: {retried}");
        sold += 1;
        let (charges, orders) = charges_and_orders(&db, &partner).await;
        assert_eq!((charges, orders), (sold, sold), "{what}");
        assert_eq!(smdp.stock("Released").await, sold as u64);
        println!(
            "| {what} | {status} {code} | {charged} | {put_back} | {held} | 201 | {sold} | {charges} |"
        );
    }
    // Refused before any call: a live balance that cannot pay reserves nothing.
    let poor = oytel_core::ports::Partner::new("Poor", None).unwrap();
    db.store.create_partner(&poor).await.unwrap();
    let key = oytel_core::keys::generate_api_key(&poor.id, oytel_types::Environment::Production);
    db.store.create_api_key(&key.record).await.unwrap();
    let calls = smdp.sim.calls("downloadOrder").await;
    let (got, body) = provision(&server, &key.plaintext, "poor-1").await;
    assert_eq!(
        (got, body["code"].as_str()),
        (402, Some("INSUFFICIENT_BALANCE")),
        "{body}"
    );
    assert_eq!(smdp.sim.calls("downloadOrder").await, calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_smdp_is_a_503_with_nothing_ordered_or_charged() {
    let smdp = Smdp::start().await;
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Down").await;
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("https://localhost:{}", probe.local_addr().unwrap().port())
    };
    let server = smdp.server(&db, Some(&closed), 120);
    let (status, body) = provision(&server, &partner.live_key, "down-1").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("SMDP_UNAVAILABLE")),
        "{body}"
    );
    assert_eq!(charges_and_orders(&db, &partner).await, (0, 0));
    let counts = db.store.reservation_counts().await.unwrap();
    assert_eq!(
        counts,
        [(oytel_core::profiles::ReservationState::Cancelled, 1)],
        "nothing held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_between_download_and_confirm_charges_nothing_and_puts_the_profile_back() {
    let smdp = Smdp::start().await;
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Killed").await;
    // Stale after 12 s: the key is held 9 s, longer than two calls of 3 attempts of 1 s.
    let server = smdp.server(&db, None, 12);
    smdp.fault(json!({"function": "confirmOrder", "count": 3, "delay_ms": 5000}))
        .await;
    let base = server.base.clone();
    let live = partner.live_key.clone();
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/esim/provision"))
            .bearer_auth(live)
            .header("Idempotency-Key", "killed-1")
            .json(&order(PLAN))
            .send()
            .await
    });
    // Killed once the profile is allocated and confirmOrder is under way.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while smdp.sim.calls("confirmOrder").await == 0 {
        assert!(
            std::time::Instant::now() < until,
            "confirmOrder never called"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    assert!(
        pending.await.unwrap().is_err(),
        "the client lost its connection"
    );
    assert_eq!(smdp.stock("Available").await, STOCK - 1, "one profile held");
    smdp.sim.post("/control/faults", json!({})).await;

    // Started again: the reconciler takes the reservation over and puts the profile back.
    let server = smdp.server(&db, None, 12);
    smdp.wait_for("Available", STOCK, 30).await;
    assert_eq!(charges_and_orders(&db, &partner).await, (0, 0));

    // The partner's retry with the same key: one profile, one charge.
    let mut answer = provision(&server, &partner.live_key, "killed-1").await;
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while answer.0 == 409 && std::time::Instant::now() < until {
        // The key is still held by the request that died (9 s from its claim).
        tokio::time::sleep(Duration::from_millis(500)).await;
        answer = provision(&server, &partner.live_key, "killed-1").await;
    }
    assert_eq!(answer.0, 201, "{}", answer.1);
    assert_eq!(charges_and_orders(&db, &partner).await, (1, 1));
    assert_eq!(
        (smdp.stock("Available").await, smdp.stock("Released").await),
        (STOCK - 1, 1)
    );
    let counts = db.store.reservation_counts().await.unwrap();
    println!("reservations after the kill, the restart and the retry: {counts:?}");
    use oytel_core::profiles::ReservationState::{Cancelled, Sold};
    assert_eq!(counts, [(Cancelled, 1), (Sold, 1)]);
}

/// The simulator reporting to our ES2+ listener, and our server with that listener, on a
/// fresh database: (the simulator, the database, the server, the listener's port).
async fn reporting() -> (Smdp, TestDatabase, ServerProcess, u16) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let smdp = Smdp::start_notifying(Some(port)).await;
    let db = fresh_database(Backend::from_env()).await;
    let listen = format!("127.0.0.1:{port}");
    let (cert, key, ca) = (
        smdp.file("es2plus.pem"),
        smdp.file("es2plus.key"),
        smdp.file("ca.pem"),
    );
    let server = smdp.server_with(
        &db,
        None,
        120,
        &[
            ("OYTEL_ES2PLUS_LISTEN", &listen),
            ("OYTEL_ES2PLUS_TLS_CERT", &cert),
            ("OYTEL_ES2PLUS_TLS_KEY", &key),
            ("OYTEL_ES2PLUS_CLIENT_CA", &ca),
        ],
    );
    (smdp, db, server, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_esim_retires_a_profile_never_downloaded_and_leaves_one_on_a_phone() {
    let (smdp, db, server, _) = reporting().await;
    let partner = make_partner(db.store.as_ref(), "Cancels").await;
    let (_, never) = provision(&server, &partner.live_key, "never").await;
    let (_, phone) = provision(&server, &partner.live_key, "phone").await;
    let iccid = |body: &Value| body["esim"]["iccid"].as_str().unwrap().to_owned();
    let path = format!("/control/profiles/{}/download", iccid(&phone));
    smdp.sim
        .post(&path, json!({"eid": "89049032123451234512345678901235"}))
        .await;
    for body in [&never, &phone] {
        let id = body["esim"]["esim_id"].as_str().unwrap();
        let cancelled = reqwest::Client::new()
            .post(format!("{}/api/v1/esim/{id}/cancel", server.base))
            .bearer_auth(&partner.live_key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(cancelled.status(), 200);
    }
    // The reconciler (every 5 s) retires the one never downloaded: its customer holds the
    // activation code, so it is not sold again.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while smdp.sim.state(&iccid(&never)).await != "Unavailable" {
        assert!(std::time::Instant::now() < until, "never retired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(smdp.sim.state(&iccid(&phone)).await, "Downloaded");
    assert_eq!(smdp.stock("Available").await, STOCK - 2);
    use oytel_core::profiles::ReservationState::{Cancelled, Sold};
    assert_eq!(
        db.store.reservation_counts().await.unwrap(),
        [(Cancelled, 1), (Sold, 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phones_steps_reach_the_partner_as_the_profile_its_state_and_events() {
    let (smdp, db, server, port) = reporting().await;
    let partner = make_partner(db.store.as_ref(), "Phones").await;
    let receiver = Receiver::start().await;
    let api = reqwest::Client::new();
    let created = api
        .post(format!("{}/api/v1/webhooks/endpoints", server.base))
        .bearer_auth(&partner.live_key)
        .json(&json!({"url": format!("{}/events", receiver.base),
            "events": ["esim.profile_downloaded", "esim.installation_failed", "esim.activated"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let esim = |id: String| {
        let (server, key) = (&server, partner.live_key.clone());
        async move {
            call(server, "GET", &key, &format!("/api/v1/esim/{id}"))
                .await
                .1
        }
    };
    let (_, first) = provision(&server, &partner.live_key, "phone-1").await;
    let (_, second) = provision(&server, &partner.live_key, "phone-2").await;
    let (first_id, first_iccid) = (
        first["esim"]["esim_id"].as_str().unwrap().to_owned(),
        first["esim"]["iccid"].as_str().unwrap().to_owned(),
    );
    let second_iccid = second["esim"]["iccid"].as_str().unwrap().to_owned();
    let (_, third) = provision(&server, &partner.live_key, "phone-3").await;
    let (_, fourth) = provision(&server, &partner.live_key, "phone-4").await;
    let iccid_of = |body: &Value| body["esim"]["iccid"].as_str().unwrap().to_owned();
    assert_eq!(esim(first_id.clone()).await["profile"]["state"], "released");

    // The phone downloads (point 3) and installs (point 4): each report is answered 204.
    let eid = "89049032123451234512345678901235";
    let step = |iccid: &str, step: &str, body: Value| {
        let (sim, path) = (&smdp.sim, format!("/control/profiles/{iccid}/{step}"));
        async move { sim.post(&path, body).await["notification"]["delivered"].clone() }
    };
    assert_eq!(
        step(&first_iccid, "download", json!({"eid": eid})).await,
        "HTTP 204"
    );
    let shown = esim(first_id.clone()).await;
    assert_eq!(shown["profile"]["state"], "downloaded", "{shown}");
    assert_eq!(shown["profile"]["eid"], eid);
    assert_eq!(shown["status"], "provisioned");
    assert_eq!(step(&first_iccid, "install", json!({})).await, "HTTP 204");
    let shown = esim(first_id.clone()).await;
    assert_eq!(
        (&shown["status"], &shown["profile"]["state"]),
        (&json!("active"), &json!("installed"))
    );

    // The other's download fails, with the SM-DP+'s reason.
    let failed = json!({"point": 3, "subject_code": "8.1", "reason_code": "6.4", "message": "profile too large"});
    assert_eq!(step(&second_iccid, "fail", failed).await, "HTTP 204");
    // The eligibility check (point 1) and the confirmation (point 2) fail on two others.
    for (body, point, reason) in [(&third, 1, "3.8"), (&fourth, 2, "6.1")] {
        let failed = json!({"point": point, "subject_code": "8.1", "reason_code": reason});
        assert_eq!(step(&iccid_of(body), "fail", failed).await, "HTTP 204");
        let id = body["esim"]["esim_id"].as_str().unwrap().to_owned();
        let shown = esim(id).await;
        assert_eq!(shown["profile"]["state"], "error", "point {point}: {shown}");
        assert_eq!(shown["status"], "provisioned");
    }

    let events = receiver.wait_for("/events", 5).await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let e = e.json();
            (
                e["event"].as_str().unwrap().to_owned(),
                e["data"]["profile"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        ("esim.profile_downloaded", "downloaded"),
        ("esim.activated", "installed"),
        ("esim.installation_failed", "error"),
    ];
    for (event, state) in expected {
        assert!(
            seen.contains(&(event.to_owned(), state.to_owned())),
            "{event} with the profile {state}: {seen:?}"
        );
    }
    let mut reasons: Vec<String> = events
        .iter()
        .map(|e| e.json())
        .filter(|e| e["event"] == "esim.installation_failed")
        .map(|e| {
            e["data"]["profile"]["last_result"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for (reason, codes) in reasons.iter().zip(["8.1/3.8", "8.1/6.1", "8.1/6.4"]) {
        assert!(reason.starts_with(codes), "{reasons:?}");
    }

    // Deleted from the phone: the profile says so; the eSIM stays active.
    assert_eq!(step(&first_iccid, "delete", json!({})).await, "HTTP 204");
    let shown = esim(first_id.clone()).await;
    assert_eq!(
        (&shown["status"], &shown["profile"]["state"]),
        (&json!("active"), &json!("deleted"))
    );

    // Only a client certificate of the SM-DP+'s CA gets through; the partners' port does
    // not serve ES2+ at all.
    let stranger = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let path = "/gsma/rsp2/es2plus/handleDownloadProgressInfo";
    assert!(stranger
        .post(format!("https://localhost:{port}{path}"))
        .json(&json!({}))
        .send()
        .await
        .is_err());
    let public = api
        .post(format!("{}{path}", server.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);

    // A report repeated, at a point that changes nothing, or about an unknown ICCID: 204,
    // kept, nothing applied twice.
    let report = |iccid: &str, call: &str, point: u32| {
        json!({"header": {"functionRequesterIdentifier": "sim", "functionCallIdentifier": call},
            "iccid": iccid, "profileType": "uk", "timestamp": "2030-01-01T00:00:00Z",
            "notificationPointId": point,
            "notificationPointStatus": {"status": "Executed-Success"}})
    };
    for body in [
        report(&second_iccid, "again-1", 9),
        report(&second_iccid, "again-1", 9),
        report("8999000000000009999", "again-2", 3),
    ] {
        let answer = smdp
            .sim
            .control
            .post(format!("https://localhost:{port}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
    }
    let answer = smdp
        .sim
        .control
        .post(format!("https://localhost:{port}{path}"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received("/events").len(),
        5,
        "no event for a kept report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_activation_plays_the_phone_at_the_simulator() {
    let smdp = Smdp::start().await;
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Sandbox").await;
    let server = smdp.server_with(
        &db,
        None,
        120,
        &[
            ("OYTEL_SMDP_SANDBOX", "true"),
            ("OYTEL_SMDP_SIMULATOR", "true"),
        ],
    );
    let (status, body) = provision(&server, &partner.sandbox_key, "sandbox-phone").await;
    assert_eq!(status, 201, "{body}");
    let (id, iccid) = (
        body["esim"]["esim_id"].as_str().unwrap(),
        body["esim"]["iccid"].as_str().unwrap(),
    );
    assert_eq!(smdp.sim.state(iccid).await, "Released");
    let key = &partner.sandbox_key;
    let activate = format!("/api/v1/sandbox/esim/{id}/activate");
    assert_eq!(call(&server, "POST", key, &activate).await.0, 200);
    assert_eq!(smdp.sim.state(iccid).await, "Installed");
    let (_, shown) = call(&server, "GET", key, &format!("/api/v1/esim/{id}")).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["profile"]["state"], "installed");
    assert_eq!(shown["profile"]["eid"], oytel_server::smdp::SANDBOX_EID);
    // Activating again is refused as before: it is no longer provisioned.
    assert_eq!(call(&server, "POST", key, &activate).await.0, 409);
}
