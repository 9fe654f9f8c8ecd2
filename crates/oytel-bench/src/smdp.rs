//! Provisioning through an SM-DP+: the simulator, in this process over mutual TLS with a PKI
//! made for the run, behind a second server instance whose profiles come from it
//! (`OYTEL_SMDP_*`), compared with the builtin profiles of the first.

use std::path::Path;

use anyhow::Result;
use oytel_smdp_sim::testing::{Pki, Sim};
use oytel_smdp_sim::{NotifyConfig, SimConfig};
use rcgen::ExtendedKeyUsagePurpose;

/// The route of the comparison in the report.
pub(crate) const SMDP_ROUTE: &str = "POST /api/v1/esim/provision via SM-DP+";

/// The simulator, and the settings of a server that takes its profiles from it.
pub(crate) struct Simulator {
    /// Kept running while it lives.
    sim: Sim,
    /// `OYTEL_SMDP_*` for the server.
    pub(crate) env: Vec<(String, String)>,
}

/// Starts the simulator with `stock` profiles of the bench plan's type (`uk`), writing the
/// server's certificate files into `dir`.
pub(crate) async fn start(dir: &Path, stock: u32) -> Result<Simulator> {
    let pki = Pki::new("Bench ES2 CA");
    let sim = Sim::start_with(
        &pki,
        SimConfig {
            stock: vec![("uk".into(), stock)],
            smdp_address: "smdp.bench".into(),
            requester_id: "sim".into(),
            notify: NotifyConfig::default(),
            iccid_prefix: "894421".into(),
        },
    )
    .await;
    let (cert, key) = pki.issue("oytel-bench", ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, text: &str| -> Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    };
    let env = vec![
        ("OYTEL_SMDP_URL".into(), sim.base.clone()),
        (
            "OYTEL_SMDP_CA_CERT".into(),
            write("smdp-ca.pem", &pki.ca_pem)?,
        ),
        (
            "OYTEL_SMDP_CLIENT_CERT".into(),
            write("smdp-client.pem", &cert)?,
        ),
        (
            "OYTEL_SMDP_CLIENT_KEY".into(),
            write("smdp-client.key", &key)?,
        ),
        // The bench's key is a sandbox key: its profiles come from the simulator too.
        ("OYTEL_SMDP_SANDBOX".into(), "true".into()),
    ];
    Ok(Simulator { sim, env })
}

impl Simulator {
    /// Profiles released for download so far (`confirmOrder` calls answered).
    pub(crate) async fn released(&self) -> u64 {
        self.sim.stock("uk", "Released").await
    }
}
