//! For test suites (feature `test-support`): a test PKI made for the run, and the simulator
//! running on an HTTPS port 0 that requires client certificates of that PKI, with a client
//! of its control API.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use serde_json::Value;

use crate::{tls, NotifyConfig, SimConfig, Simulator};

/// A CA and what it signs.
pub struct Pki {
    /// The CA's certificate, PEM.
    pub ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl Pki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).expect("a CA");
        Pki {
            ca_pem: ca.pem(),
            ca,
            ca_key,
        }
    }

    /// A certificate for `name` and its key, PEM.
    pub fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

/// The simulator on an HTTPS port that requires client certificates of a [`Pki`], stopped
/// when dropped.
#[derive(Debug)]
pub struct Sim {
    /// Its base URL, `https://localhost:<port>`.
    pub base: String,
    /// A client of its control API (with a client certificate of the PKI).
    pub control: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sim {
    /// With 3 profiles of type `uk-5g`, answering `smdp.sim.test` as its address.
    pub async fn start(pki: &Pki, notify: NotifyConfig) -> Sim {
        Sim::start_with(
            pki,
            SimConfig {
                stock: vec![("uk-5g".into(), 3)],
                smdp_address: "smdp.sim.test".into(),
                requester_id: "sim".into(),
                notify,
                iccid_prefix: crate::state::DEFAULT_ICCID_PREFIX.into(),
            },
        )
        .await
    }

    /// With `config`.
    pub async fn start_with(pki: &Pki, config: SimConfig) -> Sim {
        let simulator = Simulator::new(config).expect("a simulator");
        let (cert, key) = pki.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let config =
            tls::server_config(cert.as_bytes(), key.as_bytes(), Some(pki.ca_pem.as_bytes()))
                .expect("TLS config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            let _ = tls::serve(listener, simulator.router(), Some(config)).await;
        });
        // The control API over the same mutual TLS.
        let (cert, key) = pki.issue("test-control", ExtendedKeyUsagePurpose::ClientAuth);
        let control = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA"),
            )
            .identity(
                reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).expect("identity"),
            )
            .build()
            .expect("a client");
        Sim {
            base: format!("https://localhost:{port}"),
            control,
            task,
        }
    }

    /// `GET` of the control API, asserting success.
    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .control
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("control GET");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    /// `POST` of the control API, asserting success.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .control
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control POST");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// A profile's state.
    pub async fn state(&self, iccid: &str) -> String {
        self.get(&format!("/control/profiles/{iccid}")).await["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Profiles of `profile_type` in `state`.
    pub async fn stock(&self, profile_type: &str, state: &str) -> u64 {
        self.get("/control/stats").await["stock"][profile_type][state]
            .as_u64()
            .unwrap_or(0)
    }

    /// Calls received of `function` (replays included).
    pub async fn calls(&self, function: &str) -> u64 {
        self.get("/control/stats").await["calls"][function]
            .as_u64()
            .unwrap_or(0)
    }

    /// The `traceparent` header of the latest call of `function` that carried one.
    pub async fn traceparent(&self, function: &str) -> Option<String> {
        self.get("/control/stats").await["traceparents"][function]
            .as_str()
            .map(str::to_owned)
    }
}
