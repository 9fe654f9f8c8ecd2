//! A real server for tests (feature `test-support`): the app on `127.0.0.1:0` over a fresh
//! database (SQLite, or PostgreSQL with `OYTEL_TEST_BACKEND=postgres`; see
//! `oytel_store::testing`), with two partners, each with a sandbox and a live key and
//! $1,000.00 of live balance. Used by this crate's and `oytel-client`'s test suites. With
//! `OYTEL_TEST_PROFILES=simulator`, its profiles come from an SM-DP+ simulator over mutual
//! TLS ([`TestSmdp`]).

use std::sync::Arc;

use oytel_core::catalog::Catalog;
use oytel_core::clock::now;
use oytel_core::keys::generate_api_key;
use oytel_core::limits::LimitOverrides;
use oytel_core::ports::{Partner, Storage};
use oytel_core::provision::ProvisionSettings;
use oytel_store::testing::{fresh, Backend, TestDatabase};
use oytel_types::{Amount, Environment, Limits};

use std::time::Duration;

use oytel_core::webhooks::RetrySchedule;

use crate::state::{Settings, WebhookSettings};

/// The operator API token of test servers.
pub const OPERATOR_TOKEN: &str = "operator-test-token";

/// The live balance every test partner starts with, in cents.
pub const START_BALANCE_CENTS: i64 = 100_000;

/// A partner with one key per environment.
#[derive(Debug, Clone)]
pub struct TestPartner {
    /// `ptn_…`
    pub id: String,
    /// `sk_sandbox_…`
    pub sandbox_key: String,
    /// `sk_live_…`
    pub live_key: String,
}

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// The server's database.
    pub store: Arc<dyn Storage>,
    /// The main partner.
    pub partner: TestPartner,
    /// Another partner.
    pub other: TestPartner,
    /// The database (dropped with the server).
    pub database: TestDatabase,
    /// The server's state-changing requests still running (see [`crate::completion`]).
    pub in_flight: crate::completion::InFlight,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The SM-DP+ simulator its profiles come from (`OYTEL_TEST_PROFILES=simulator`).
    pub smdp: Option<TestSmdp>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base", &self.base)
            .field("database", &self.database)
            .finish_non_exhaustive()
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

/// Limits so high that tests not about limits never meet them.
pub const RAISED_LIMITS: LimitOverrides = LimitOverrides {
    provision_per_hour: Some(1_000_000),
    status_per_hour: Some(1_000_000),
    burst_per_second: Some(1_000_000),
};

/// A partner with both keys, [`START_BALANCE_CENTS`] of live balance and [`RAISED_LIMITS`].
///
/// # Panics
/// When the database refuses (a test setup failure).
pub async fn make_partner(store: &dyn Storage, name: &str) -> TestPartner {
    let partner = make_partner_with_default_limits(store, name).await;
    store
        .set_partner_limits(&partner.id, &RAISED_LIMITS)
        .await
        .expect("limits");
    partner
}

/// A partner with both keys, [`START_BALANCE_CENTS`] of live balance and the server's default
/// limits.
///
/// # Panics
/// When the database refuses (a test setup failure).
pub async fn make_partner_with_default_limits(store: &dyn Storage, name: &str) -> TestPartner {
    let partner = Partner::new(name, Some("ops@partner.example")).expect("valid partner");
    store.create_partner(&partner).await.expect("partner");
    store
        .credit(&partner.id, START_BALANCE_CENTS, "test top-up", now())
        .await
        .expect("credit");
    let sandbox = generate_api_key(&partner.id, Environment::Sandbox);
    store.create_api_key(&sandbox.record).await.expect("key");
    let live = generate_api_key(&partner.id, Environment::Production);
    store.create_api_key(&live.record).await.expect("key");
    TestPartner {
        id: partner.id,
        sandbox_key: sandbox.plaintext,
        live_key: live.plaintext,
    }
}

impl TestServer {
    /// Starts a server on the backend of `OYTEL_TEST_BACKEND`.
    ///
    /// # Panics
    /// When it cannot start (a test setup failure).
    pub async fn spawn() -> TestServer {
        TestServer::spawn_with(|_| {}).await
    }

    /// The settings tests start with: internal webhook destinations allowed, a short retry
    /// schedule, the operator token `operator-test-token`.
    pub fn test_settings(base: &str) -> Settings {
        Settings {
            public_url: base.to_owned(),
            provision: ProvisionSettings {
                smdp_address: "smdp.test.oytel".into(),
                minimum_balance: Amount::from_cents(2_500),
                smdp: None,
                stock: Default::default(),
            },
            limits: Limits {
                provision_per_hour: 100,
                status_per_hour: 1000,
                burst_per_second: 10,
            },
            webhooks: WebhookSettings {
                schedule: RetrySchedule(vec![Duration::from_millis(300); 3]),
                allow_internal: true,
                timeout: Duration::from_secs(2),
                disable_after: oytel_core::webhooks::DISABLE_AFTER,
                poll_interval: Duration::from_millis(50),
                concurrency: 64,
            },
            operator_token: Some(OPERATOR_TOKEN.into()),
            expiry_interval: Duration::from_millis(200),
            workers: true,
            auth_failures_per_minute: crate::ratelimit::AUTH_FAILURES_PER_MINUTE,
            request_timeout: Duration::from_secs(30),
            trusted_proxies: crate::client_addr::TrustedProxies::default(),
            connections: crate::listener::ConnectionLimits::default(),
            sandbox_phone: None,
        }
    }

    /// Starts a server whose [`TestServer::test_settings`] `adjust` may change.
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let database = fresh_database(Backend::from_env()).await;
        let partner = make_partner(database.store.as_ref(), "Partner A").await;
        let other = make_partner(database.store.as_ref(), "Partner B").await;
        TestServer::start(database, partner, other, adjust).await
    }

    /// Stops this server and starts another on the same database and partners (what a
    /// restart or a deploy does).
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn restart(self, adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let (partner, other) = (self.partner.clone(), self.other.clone());
        let database = self.stop_keeping_database().await;
        TestServer::start(database, partner, other, adjust).await
    }

    async fn start(
        database: TestDatabase,
        partner: TestPartner,
        other: TestPartner,
        adjust: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let store = database.store.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let mut settings = TestServer::test_settings(&base);
        let smdp = if profiles_from_simulator() {
            let smdp = TestSmdp::start().await;
            let configured = smdp.configured();
            settings.provision.smdp = Some(configured.route);
            settings.sandbox_phone = configured.phone;
            Some(smdp)
        } else {
            None
        };
        adjust(&mut settings);
        let state = crate::state(
            store.clone(),
            database.quotas.clone(),
            Catalog::default_catalog(),
            settings,
        )
        .expect("state");
        let in_flight = state.completion.in_flight.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(listener, state, async {
            let _ = rx.await;
        }));
        TestServer {
            base,
            store,
            partner,
            other,
            database,
            in_flight,
            shutdown: Some(tx),
            server: Some(server),
            smdp,
        }
    }

    /// Stops the server, letting requests in flight finish.
    ///
    /// # Panics
    /// When the server failed.
    pub async fn stop(self) {
        let _ = self.stop_keeping_database().await;
    }

    async fn stop_keeping_database(mut self) -> TestDatabase {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server");
        }
        self.database
    }
}

/// Whether test servers take their profiles from an SM-DP+ simulator:
/// `OYTEL_TEST_PROFILES=simulator` (CI runs the SDK suites so); builtin profiles otherwise.
pub fn profiles_from_simulator() -> bool {
    std::env::var("OYTEL_TEST_PROFILES").is_ok_and(|v| v == "simulator")
}

/// An SM-DP+ simulator for test servers, over mutual TLS with a PKI made for the run, with
/// stock of every profile type of the built-in catalog; stopped when dropped.
pub struct TestSmdp {
    /// The simulator.
    pub sim: oytel_smdp_sim::testing::Sim,
    identity_pem: String,
    ca_pem: String,
    files: tempfile::TempDir,
}

impl std::fmt::Debug for TestSmdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSmdp")
            .field("base", &self.sim.base)
            .finish_non_exhaustive()
    }
}

impl TestSmdp {
    /// Profiles of each type in stock.
    pub const STOCK: u32 = 5_000;

    /// Starts one.
    ///
    /// # Panics
    /// When it cannot start (a test setup failure).
    pub async fn start() -> TestSmdp {
        use oytel_smdp_sim::testing::{Pki, Sim};
        use rcgen::ExtendedKeyUsagePurpose;
        let pki = Pki::new("Oytel test ES2+ CA");
        let mut types: Vec<String> = Catalog::default_catalog()
            .plans
            .iter()
            .map(|p| p.profile_type().to_owned())
            .collect();
        types.sort();
        types.dedup();
        let sim = Sim::start_with(
            &pki,
            oytel_smdp_sim::SimConfig {
                stock: types.into_iter().map(|t| (t, Self::STOCK)).collect(),
                smdp_address: "smdp.sim.test".into(),
                requester_id: "sim".into(),
                notify: oytel_smdp_sim::NotifyConfig::default(),
                // A UK operator's range, like builtin ICCIDs.
                iccid_prefix: "894420".into(),
            },
        )
        .await;
        let (cert, key) = pki.issue("oytel-test", ExtendedKeyUsagePurpose::ClientAuth);
        let files = tempfile::tempdir().expect("a directory");
        for (name, text) in [
            ("ca.pem", &pki.ca_pem),
            ("client.pem", &cert),
            ("client.key", &key),
        ] {
            std::fs::write(files.path().join(name), text).expect("a PEM file");
        }
        TestSmdp {
            sim,
            identity_pem: format!("{cert}{key}"),
            ca_pem: pki.ca_pem,
            files,
        }
    }

    /// The SM-DP+ of an in-process server: live and sandbox profiles from the simulator,
    /// and the sandbox's phone played there.
    ///
    /// # Panics
    /// When the client cannot be made.
    pub fn configured(&self) -> crate::smdp::Configured {
        use oytel_es2plus::client::{ClientConfig, Es2PlusClient};
        let mut config = ClientConfig::new(&self.sim.base, "oytel-test");
        config.identity_pem = Some(self.identity_pem.clone().into_bytes());
        config.ca_pem = Some(self.ca_pem.clone().into_bytes());
        config.timeout = Duration::from_secs(5);
        let client = Es2PlusClient::new(&config).expect("an ES2+ client");
        crate::smdp::Configured {
            longest_calls: Duration::from_secs(30),
            phone: Some(Arc::new(crate::smdp::SimulatorPhone::new(
                &client,
                oytel_core::downloads::DEFAULT_DELETION_POINT,
            ))),
            route: oytel_core::provision::SmdpRoute {
                source: Arc::new(crate::smdp::Es2PlusSource::new(client)),
                sandbox: true,
                hold: Duration::from_secs(90),
                stale_after: oytel_core::profiles::STALE_AFTER,
            },
        }
    }

    /// The settings of an `oytel-server` process that does the same.
    pub fn env(&self) -> Vec<(String, String)> {
        let file = |name: &str| self.files.path().join(name).display().to_string();
        [
            ("OYTEL_SMDP_URL", self.sim.base.clone()),
            ("OYTEL_SMDP_CA_CERT", file("ca.pem")),
            ("OYTEL_SMDP_CLIENT_CERT", file("client.pem")),
            ("OYTEL_SMDP_CLIENT_KEY", file("client.key")),
            ("OYTEL_SMDP_SANDBOX", "true".into()),
            ("OYTEL_SMDP_SIMULATOR", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
