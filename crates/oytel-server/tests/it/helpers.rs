//! `TestApp`: a running server with a fresh database (SQLite, or PostgreSQL with
//! `OYTEL_TEST_BACKEND=postgres`), two partners and their keys; and `ServerProcess`, the real
//! binary.

use std::sync::Arc;

use oytel_core::catalog::Catalog;
use oytel_core::keys::generate_api_key;
use oytel_core::numbers::new_id;
use oytel_core::ports::{Partner, Storage};
use oytel_core::provision::{now, ProvisionSettings};
use oytel_server::state::Settings;
use oytel_store::testing::{fresh, Backend, TestDatabase};
use oytel_types::{Amount, Environment, Limits};
use serde_json::{json, Value};

/// A partner with one key per environment.
#[allow(dead_code)]
pub struct TestPartner {
    pub id: String,
    pub sandbox_key: String,
    pub live_key: String,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Storage>,
    /// The main partner, with $1,000.00 of live balance.
    pub partner: TestPartner,
    /// Another partner, with $1,000.00 of live balance.
    pub other: TestPartner,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _db: TestDatabase,
}

pub const START_BALANCE_CENTS: i64 = 100_000;

impl TestApp {
    pub async fn spawn() -> TestApp {
        let db = fresh_database(Backend::from_env()).await;
        let store = db.store.clone();
        let partner = make_partner(store.as_ref(), "Partner A").await;
        let other = make_partner(store.as_ref(), "Partner B").await;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let settings = Settings {
            public_url: base.clone(),
            provision: ProvisionSettings {
                smdp_address: "smdp.test.oytel".into(),
                minimum_balance: Amount::from_cents(2_500),
            },
            limits: Limits {
                provision_per_hour: 100,
                status_per_hour: 1000,
                burst_per_second: 10,
            },
        };
        let state =
            oytel_server::state(store.clone(), Catalog::default_catalog(), settings).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            oytel_server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestApp {
            base,
            client: reqwest::Client::new(),
            store,
            partner,
            other,
            shutdown: Some(tx),
            server: Some(server),
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        split(response).await
    }

    pub async fn post(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(key, path, body, None).await
    }

    pub async fn post_with(
        &self,
        key: &str,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.client.post(self.url(path)).bearer_auth(key).json(body);
        if let Some(k) = idempotency_key {
            request = request.header("Idempotency-Key", k);
        }
        split(request.send().await.unwrap()).await
    }

    /// Provisions with a valid body, asserting success.
    pub async fn provision(&self, key: &str, plan_id: &str) -> Value {
        let (status, body) = self
            .post(key, "/api/v1/esim/provision", &order(plan_id))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// How many eSIMs the key sees.
    pub async fn esim_count(&self, key: &str) -> usize {
        let (status, body) = self.get(key, "/api/v1/esims?limit=100").await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().len()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }
}

/// A fresh database of `backend`.
///
/// # Panics
/// When PostgreSQL is asked for but `OYTEL_TEST_DATABASE_URL` is not set.
pub async fn fresh_database(backend: Backend) -> TestDatabase {
    fresh(backend)
        .await
        .expect("OYTEL_TEST_BACKEND=postgres needs OYTEL_TEST_DATABASE_URL")
}

pub async fn make_partner(store: &dyn Storage, name: &str) -> TestPartner {
    let partner = Partner {
        id: new_id("ptn"),
        name: name.into(),
        email: Some("ops@partner.example".into()),
        created_at: now(),
    };
    store.create_partner(&partner).await.unwrap();
    store
        .credit(&partner.id, START_BALANCE_CENTS, "test top-up", now())
        .await
        .unwrap();
    let sandbox = generate_api_key(&partner.id, Environment::Sandbox);
    store.create_api_key(&sandbox.record).await.unwrap();
    let live = generate_api_key(&partner.id, Environment::Production);
    store.create_api_key(&live.record).await.unwrap();
    TestPartner {
        id: partner.id,
        sandbox_key: sandbox.plaintext,
        live_key: live.plaintext,
    }
}

pub async fn split(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, body)
}

/// A valid provisioning body.
pub fn order(plan_id: &str) -> Value {
    json!({
        "plan_id": plan_id,
        "term_months": 1,
        "customer_email": "customer@example.com",
        "customer_name": "Jane Customer",
    })
}

/// Asserts an error envelope with this status and code, and returns it.
#[track_caller]
pub fn assert_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert!(
        body["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_")),
        "{body}"
    );
}

/// Sends every request at once, each on its own task, and returns the responses in order.
pub async fn send_all(
    requests: impl IntoIterator<Item = reqwest::RequestBuilder>,
) -> Vec<reqwest::Result<reqwest::Response>> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|r| tokio::spawn(r.send()))
        .collect();
    let mut responses = Vec::with_capacity(tasks.len());
    for task in tasks {
        responses.push(task.await.expect("request task"));
    }
    responses
}

/// The `oytel-server` binary, started on `127.0.0.1:0`.
pub struct ServerProcess {
    child: std::process::Child,
    pub base: String,
    stdout: std::sync::mpsc::Receiver<String>,
}

/// Starts `oytel-server serve` on `db_url` and waits until it is ready.
pub fn start_server(db_url: &str, mode: &str) -> ServerProcess {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_oytel-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--mode", mode])
        .env("OYTEL_DATABASE_URL", db_url)
        .env("OYTEL_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out_tx, stdout) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Ok(log) = serde_json::from_str::<Value>(&line) {
                if log["fields"]["message"] == "Oytel API ready" {
                    let _ = ready_tx.send(log["fields"]["listen"].as_str().unwrap().to_owned());
                }
            }
        }
    });
    let listen = ready_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("server ready");
    ServerProcess {
        child,
        base: format!("http://{listen}"),
        stdout,
    }
}

impl ServerProcess {
    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// What the server printed on stdout so far.
    pub fn printed(&self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
