//! `oytel-smdp-sim`: the SM-DP+ simulator as a program (see the library's documentation for
//! its routes, and `docs/smdp.md`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use oytel_smdp_sim::{tls, NotifyConfig, SimConfig, Simulator};

/// An SM-DP+ simulator speaking GSMA ES2+, with a control API that plays the phone.
#[derive(Debug, Parser)]
#[command(name = "oytel-smdp-sim", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SMDP_SIM_LISTEN", default_value = "127.0.0.1:8700")]
    listen: String,
    /// Profiles in stock at start, `TYPE=COUNT`, comma-separated.
    #[arg(
        long,
        env = "SMDP_SIM_PROFILES",
        value_delimiter = ',',
        default_value = "default=1000"
    )]
    profiles: Vec<String>,
    /// The first digits of new profiles' ICCIDs (`89`, country code, issuer).
    #[arg(long, env = "SMDP_SIM_ICCID_PREFIX", default_value = oytel_smdp_sim::state::DEFAULT_ICCID_PREFIX)]
    iccid_prefix: String,
    /// The address in activation codes (`LPA:1$<address>$<matching ID>`).
    #[arg(long, env = "SMDP_SIM_ADDRESS", default_value = "smdp.sim.oytel.local")]
    smdp_address: String,
    /// Our `functionRequesterIdentifier` in notifications.
    #[arg(long, env = "SMDP_SIM_REQUESTER_ID", default_value = "oytel-smdp-sim")]
    requester_id: String,
    /// Our TLS certificate (PEM); plain HTTP without it.
    #[arg(long, env = "SMDP_SIM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "SMDP_SIM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS, as ES2+ requires.
    #[arg(long, env = "SMDP_SIM_CLIENT_CA", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// The operator's ES2+ base URL, where `handleDownloadProgressInfo` is sent.
    #[arg(long, env = "SMDP_SIM_NOTIFY_URL")]
    notify_url: Option<String>,
    /// Our client certificate and key for notifications (one PEM file holding both).
    #[arg(long, env = "SMDP_SIM_NOTIFY_IDENTITY")]
    notify_identity: Option<PathBuf>,
    /// The operator's CA for notifications (PEM).
    #[arg(long, env = "SMDP_SIM_NOTIFY_CA")]
    notify_ca: Option<PathBuf>,
    /// The `notificationPointId` sent for a deletion (products differ).
    #[arg(long, env = "SMDP_SIM_DELETION_POINT", default_value_t = 5)]
    deletion_point: u32,
}

fn read(path: &Option<PathBuf>) -> Result<Option<Vec<u8>>> {
    path.as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("SMDP_SIM_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .init();
    let cli = Cli::parse();
    let stock = cli
        .profiles
        .iter()
        .map(|entry| {
            let (kind, count) = entry
                .split_once('=')
                .with_context(|| format!("--profiles takes TYPE=COUNT, not `{entry}`"))?;
            Ok((
                kind.trim().to_owned(),
                count
                    .trim()
                    .parse()
                    .with_context(|| format!("`{count}` is not a count"))?,
            ))
        })
        .collect::<Result<Vec<(String, u32)>>>()?;
    let simulator = Simulator::new(SimConfig {
        stock,
        smdp_address: cli.smdp_address.clone(),
        requester_id: cli.requester_id.clone(),
        notify: NotifyConfig {
            base_url: cli.notify_url.clone(),
            identity_pem: read(&cli.notify_identity)?,
            ca_pem: read(&cli.notify_ca)?,
            deletion_point: cli.deletion_point,
        },
        iccid_prefix: cli.iccid_prefix.clone(),
    })?;
    let tls = match (read(&cli.tls_cert)?, read(&cli.tls_key)?) {
        (Some(cert), Some(key)) => Some(tls::server_config(
            &cert,
            &key,
            read(&cli.client_ca)?.as_deref(),
        )?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        tls = tls.is_some(),
        mutual_tls = cli.client_ca.is_some(),
        "SM-DP+ simulator ready"
    );
    tls::serve(listener, simulator.router(), tls).await
}
