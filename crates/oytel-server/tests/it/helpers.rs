//! `TestApp`: a running server with a fresh database (SQLite, or PostgreSQL with
//! `OYTEL_TEST_BACKEND=postgres`), two partners and their keys; and `ServerProcess`, the real
//! binary.

use serde_json::{json, Value};

pub use oytel_server::testing::{fresh_database, make_partner, TestServer, START_BALANCE_CENTS};

/// A [`TestServer`] and an HTTP client to call it.
pub struct TestApp {
    server: TestServer,
    pub client: reqwest::Client,
}

impl std::ops::Deref for TestApp {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::wrap(TestServer::spawn().await)
    }

    pub fn wrap(server: TestServer) -> TestApp {
        TestApp {
            server,
            client: reqwest::Client::new(),
        }
    }

    /// The server, for a restart.
    pub fn into_server(self) -> TestServer {
        self.server
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

    /// Runs an admin command of the `oytel-server` binary on this server's database; its
    /// standard output, after asserting that it succeeded. The command runs on a blocking
    /// thread: the server shares this test's runtime, and must go on (finishing a write it
    /// started, say) while the command waits for the database.
    pub async fn admin(&self, args: &[&str]) -> Vec<u8> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let url = self.database.url.clone();
        let output = tokio::task::spawn_blocking({
            let args = args.clone();
            move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_oytel-server"))
                    .args(&args)
                    .env("OYTEL_DATABASE_URL", &url)
                    .output()
            }
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    pub async fn stop(self) {
        self.server.stop().await;
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

/// Creates a webhook endpoint at `receiver`'s `/events` for `key`, on the server at `base`.
pub async fn subscribe(base: &str, key: &str, receiver: &crate::receiver::Receiver) {
    let created = reqwest::Client::new()
        .post(format!("{base}/api/v1/webhooks/endpoints"))
        .bearer_auth(key)
        .json(&json!({"url": format!("{}/events", receiver.base)}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
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
    logs: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts `oytel-server serve` on `db_url` and waits until it is ready.
pub fn start_server(db_url: &str, mode: &str) -> ServerProcess {
    start_server_on(db_url, mode, "127.0.0.1:0")
}

/// Starts `oytel-server serve` on `db_url` listening on `listen`.
pub fn start_server_on(db_url: &str, mode: &str, listen: &str) -> ServerProcess {
    start_server_with(db_url, mode, listen, &[])
}

/// Starts `oytel-server serve` on `db_url` listening on `listen`, with more settings.
pub fn start_server_with(
    db_url: &str,
    mode: &str,
    listen: &str,
    env: &[(&str, &str)],
) -> ServerProcess {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_oytel-server"))
        .args(["serve", "--listen", listen, "--mode", mode])
        .envs(env.iter().copied())
        .env("OYTEL_DATABASE_URL", db_url)
        .env("OYTEL_LOG_FORMAT", "json")
        .env("OYTEL_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("OYTEL_WEBHOOK_RETRY_SCHEDULE", "200ms,500ms,1s,2s,5s")
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
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let kept = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Ok(mut all) = kept.lock() {
                all.push_str(&line);
                all.push('\n');
            }
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
        logs,
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

    /// Kills the process at once (SIGKILL): no shutdown, no flushing.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, waits for the exit, and returns everything the server logged.
    pub fn terminate_with_logs(self) -> (std::process::ExitStatus, String) {
        let logs = self.logs.clone();
        let status = self.terminate();
        // Give the reader thread a moment to take the last lines.
        std::thread::sleep(std::time::Duration::from_millis(100));
        (status, logs.lock().map(|l| l.clone()).unwrap_or_default())
    }

    /// What the server printed on stdout so far.
    /// What the server printed on stdout, trimmed, waiting up to a second for a first line
    /// (the demo key comes just after the ready log).
    pub fn printed(&self) -> Vec<String> {
        let first = self
            .stdout
            .recv_timeout(std::time::Duration::from_secs(1))
            .ok();
        first
            .into_iter()
            .chain(self.stdout.try_iter())
            .map(|line| line.trim().to_owned())
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
