//! Settings, from command-line flags or `OYTEL_*` environment variables (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use oytel_core::webhooks::RetrySchedule;
use oytel_types::{Amount, Limits};

/// Where the database is. Shared by `serve` and the admin commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite:<path>` (created if missing).
    #[arg(
        long,
        env = "OYTEL_DATABASE_URL",
        default_value = "sqlite:./data/oytel.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Connections in the database pool (for SQLite: readers; there is one writer).
    #[arg(
        long,
        env = "OYTEL_DB_MAX_CONNECTIONS",
        hide_env_values = true,
        default_value_t = 8,
        global = true
    )]
    pub db_max_connections: u32,

    /// SQLite: seconds a command waits for the database's write lock while another process
    /// (a running server) holds it, before giving up with a clear message.
    #[arg(
        long,
        env = "OYTEL_DB_BUSY_TIMEOUT_SECONDS",
        hide_env_values = true,
        default_value_t = 5,
        global = true
    )]
    pub db_busy_timeout_seconds: u64,
}

/// How the server is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A developer machine: on an empty database, creates a demo partner and prints a
    /// sandbox key.
    Development,
    /// Production: never creates anything by itself.
    Production,
}

/// `OYTEL_PROFILE_STOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileStockArg {
    /// Made up by the server.
    Generated,
    /// From the imported stock.
    Inventory,
}

impl From<ProfileStockArg> for oytel_core::provision::ProfileStock {
    fn from(arg: ProfileStockArg) -> Self {
        match arg {
            ProfileStockArg::Generated => oytel_core::provision::ProfileStock::Generated,
            ProfileStockArg::Inventory => oytel_core::provision::ProfileStock::Inventory,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "OYTEL_LISTEN",
        hide_env_values = true,
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// The base of absolute URLs the API returns, such as `qr_code_url`
    /// (default: `http://<listen address>`).
    #[arg(long, env = "OYTEL_PUBLIC_URL", hide_env_values = true, value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// The SM-DP+ address written into activation codes (`LPA:1$<address>$<matching id>`).
    #[arg(long, env = "OYTEL_SMDP_ADDRESS", hide_env_values = true, default_value = "smdp.oytel.online", value_parser = parse_smdp)]
    pub smdp_address: String,

    /// Where live eSIMs without an SM-DP+ get their ICCIDs: `generated` (made up by the
    /// server) or `inventory` (from the stock loaded with `oytel-server inventory import`;
    /// an empty stock refuses the order with `503 PROFILE_STOCK_EXHAUSTED`).
    #[arg(
        long,
        env = "OYTEL_PROFILE_STOCK",
        hide_env_values = true,
        value_enum,
        default_value = "generated"
    )]
    pub profile_stock: ProfileStockArg,

    /// `development` seeds a demo partner with a sandbox key on an empty database;
    /// `production` never does.
    #[arg(
        long,
        env = "OYTEL_MODE",
        hide_env_values = true,
        value_enum,
        default_value = "development"
    )]
    pub mode: Mode,

    /// The live balance (USD) that must remain after any charge.
    #[arg(long, env = "OYTEL_MIN_BALANCE_USD", hide_env_values = true, default_value = "25.00", value_parser = parse_usd)]
    pub min_balance_usd: Amount,

    /// A plan catalog JSON file replacing the built-in one.
    #[arg(long, env = "OYTEL_CATALOG", hide_env_values = true)]
    pub catalog: Option<PathBuf>,

    /// Log format.
    #[arg(
        long,
        env = "OYTEL_LOG_FORMAT",
        hide_env_values = true,
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Provisioning requests per hour that partners are told apply to them.
    #[arg(
        long,
        env = "OYTEL_LIMIT_PROVISION_PER_HOUR",
        hide_env_values = true,
        default_value_t = 100
    )]
    pub provision_per_hour: u32,

    /// Status reads per hour that partners are told apply to them.
    #[arg(
        long,
        env = "OYTEL_LIMIT_STATUS_PER_HOUR",
        hide_env_values = true,
        default_value_t = 1000
    )]
    pub status_per_hour: u32,

    /// Requests per second that partners are told apply to them.
    #[arg(
        long,
        env = "OYTEL_LIMIT_BURST_PER_SECOND",
        hide_env_values = true,
        default_value_t = 10
    )]
    pub burst_per_second: u32,

    /// The bearer token of the operator API (usage records, activation notices); unset
    /// disables that API.
    #[arg(long, env = "OYTEL_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,

    /// Delays between webhook attempts after the first.
    #[arg(long, env = "OYTEL_WEBHOOK_RETRY_SCHEDULE", hide_env_values = true, default_value = "5s,5m,30m,2h,5h,10h,10h",
        value_parser = RetrySchedule::parse)]
    pub webhook_retry_schedule: RetrySchedule,

    /// Allow webhook deliveries to private, loopback and link-local addresses (default:
    /// allowed in development mode only).
    #[arg(long, env = "OYTEL_WEBHOOK_ALLOW_PRIVATE", hide_env_values = true)]
    pub webhook_allow_private: Option<bool>,

    /// Seconds allowed for one webhook delivery attempt.
    #[arg(
        long,
        env = "OYTEL_WEBHOOK_TIMEOUT_SECONDS",
        hide_env_values = true,
        default_value_t = 15
    )]
    pub webhook_timeout_seconds: u64,

    /// Webhook destinations one instance delivers to at once (one request in flight each).
    #[arg(long, env = "OYTEL_WEBHOOK_CONCURRENCY", hide_env_values = true, default_value_t = 64,
        value_parser = clap::value_parser!(u16).range(1..))]
    pub webhook_concurrency: u16,

    /// Seconds between looks for expired eSIMs.
    #[arg(
        long,
        env = "OYTEL_EXPIRY_INTERVAL_SECONDS",
        hide_env_values = true,
        default_value_t = 30
    )]
    pub expiry_interval_seconds: u64,

    /// Failed authentications allowed per client address per minute, before that address is
    /// refused for a while.
    #[arg(long, env = "OYTEL_AUTH_FAILURES_PER_MINUTE", hide_env_values = true, default_value_t = crate::ratelimit::AUTH_FAILURES_PER_MINUTE)]
    pub auth_failures_per_minute: u32,

    /// Seconds a client waits for an answer before `503 REQUEST_TIMEOUT`; a request that
    /// changes something goes on to completion all the same.
    #[arg(
        long,
        env = "OYTEL_REQUEST_TIMEOUT_SECONDS",
        hide_env_values = true,
        default_value_t = 30
    )]
    pub request_timeout_seconds: u64,

    /// Seconds a client has, from connecting or from a request's first byte, to send the
    /// request's headers.
    #[arg(long, env = "OYTEL_HEADER_TIMEOUT_SECONDS", hide_env_values = true, default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_seconds: u64,

    /// Seconds a client has to send a request's body, from the server's first read of it
    /// (`408 REQUEST_BODY_TIMEOUT` after that).
    #[arg(long, env = "OYTEL_BODY_TIMEOUT_SECONDS", hide_env_values = true, default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_seconds: u64,

    /// Seconds an idle keep-alive connection stays open (keep it longer than the load
    /// balancer's idle timeout).
    #[arg(long, env = "OYTEL_IDLE_TIMEOUT_SECONDS", hide_env_values = true, default_value_t = 75,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_seconds: u64,

    /// Connections open at once; one more is answered `503` and closed.
    #[arg(long, env = "OYTEL_MAX_CONNECTIONS", hide_env_values = true, default_value_t = 8192,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// The proxies (load balancers) in front of the server, as comma-separated addresses and
    /// ranges (`10.0.0.0/8, 2001:db8::/32`): only from these are `Forwarded` and
    /// `X-Forwarded-For` believed for the client's address. Default: none.
    #[arg(long, env = "OYTEL_TRUSTED_PROXIES", hide_env_values = true, default_value = "",
        value_parser = crate::client_addr::TrustedProxies::parse)]
    pub trusted_proxies: crate::client_addr::TrustedProxies,

    /// Address and port of the Prometheus metrics (`GET /metrics`), a listener of its own,
    /// never the partners' port. Unset: no metrics are kept.
    #[arg(long, env = "OYTEL_METRICS_LISTEN", hide_env_values = true)]
    pub metrics_listen: Option<SocketAddr>,

    /// Run the background workers (webhook delivery, expiry, the SM-DP+ reconciler) in this
    /// instance.
    #[arg(long, env = "OYTEL_WORKERS", hide_env_values = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub workers: bool,

    /// The SM-DP+ (see docs/smdp.md).
    #[command(flatten)]
    pub smdp: SmdpArgs,

    /// Where the SM-DP+ sends its reports (see docs/smdp.md).
    #[command(flatten)]
    pub es2plus: Es2PlusListenArgs,
}

/// The listener for the SM-DP+'s reports on downloads (ES2+ `handleDownloadProgressInfo`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "SM-DP+ notifications (ES2+)")]
pub struct Es2PlusListenArgs {
    /// Address and port where the SM-DP+ sends `handleDownloadProgressInfo` (its own port,
    /// never the partners'); register `https://<this>/` with the SM-DP+. Unset: no listener.
    #[arg(long, env = "OYTEL_ES2PLUS_LISTEN", hide_env_values = true)]
    pub es2plus_listen: Option<SocketAddr>,

    /// Our server certificate on that port (PEM file).
    #[arg(long, env = "OYTEL_ES2PLUS_TLS_CERT", hide_env_values = true)]
    pub es2plus_tls_cert: Option<PathBuf>,

    /// Its private key (PEM file).
    #[arg(long, env = "OYTEL_ES2PLUS_TLS_KEY", hide_env_values = true)]
    pub es2plus_tls_key: Option<PathBuf>,

    /// The CA whose client certificates are accepted (PEM file): only the SM-DP+ gets in.
    #[arg(long, env = "OYTEL_ES2PLUS_CLIENT_CA", hide_env_values = true)]
    pub es2plus_client_ca: Option<PathBuf>,

    /// The notification point at which the SM-DP+ reports a deletion (products differ).
    #[arg(long, env = "OYTEL_ES2PLUS_DELETION_POINT", hide_env_values = true,
        default_value_t = oytel_core::downloads::DEFAULT_DELETION_POINT)]
    pub es2plus_deletion_point: u32,
}

/// The SM-DP+ that live profiles come from (GSMA ES2+); none: builtin profiles.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "SM-DP+ (ES2+)")]
pub struct SmdpArgs {
    /// The SM-DP+'s ES2+ base URL (`https://…`; `http://` in development mode only). Setting
    /// it makes live keys' profiles come from this SM-DP+; unset, the server makes them.
    #[arg(long, env = "OYTEL_SMDP_URL", hide_env_values = true)]
    pub smdp_url: Option<String>,

    /// Our client certificate for the SM-DP+'s mutual TLS (PEM file).
    #[arg(long, env = "OYTEL_SMDP_CLIENT_CERT", hide_env_values = true)]
    pub smdp_client_cert: Option<PathBuf>,

    /// The private key of that certificate (PEM file).
    #[arg(long, env = "OYTEL_SMDP_CLIENT_KEY", hide_env_values = true)]
    pub smdp_client_key: Option<PathBuf>,

    /// The CA that signs the SM-DP+'s server certificate (PEM file); the system's roots when
    /// unset.
    #[arg(long, env = "OYTEL_SMDP_CA_CERT", hide_env_values = true)]
    pub smdp_ca_cert: Option<PathBuf>,

    /// Our `functionRequesterIdentifier`, as the SM-DP+ knows us.
    #[arg(
        long,
        env = "OYTEL_SMDP_REQUESTER_ID",
        hide_env_values = true,
        default_value = "oytel"
    )]
    pub smdp_requester_id: String,

    /// Seconds one ES2+ call attempt may take (3 attempts per call).
    #[arg(long, env = "OYTEL_SMDP_TIMEOUT_SECONDS", hide_env_values = true, default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=60))]
    pub smdp_timeout_seconds: u64,

    /// Sandbox keys' profiles come from the SM-DP+ too (a test SM-DP+ or the simulator);
    /// by default sandbox keys keep builtin profiles.
    #[arg(long, env = "OYTEL_SMDP_SANDBOX", hide_env_values = true, default_value_t = false, action = clap::ArgAction::Set)]
    pub smdp_sandbox: bool,

    /// The SM-DP+ is `oytel-smdp-sim`: the sandbox's activation route plays the phone
    /// through its control API (download, install) instead of activating directly.
    #[arg(long, env = "OYTEL_SMDP_SIMULATOR", hide_env_values = true, default_value_t = false, action = clap::ArgAction::Set)]
    pub smdp_simulator: bool,

    /// Send 19-digit ICCIDs padded with `F` (SM-DP+s before SGP.22 v2.2).
    #[arg(long, env = "OYTEL_SMDP_PAD_ICCID", hide_env_values = true, default_value_t = false, action = clap::ArgAction::Set)]
    pub smdp_pad_iccid: bool,

    /// Seconds after which an unfinished reservation (its server stopped) is put back by the
    /// reconciler; a request's `Idempotency-Key` is held for three quarters of it.
    #[arg(long, env = "OYTEL_SMDP_STALE_AFTER_SECONDS", hide_env_values = true, default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub smdp_stale_after_seconds: u64,
}

impl ServeArgs {
    /// The webhook settings.
    pub fn webhooks(&self) -> crate::state::WebhookSettings {
        crate::state::WebhookSettings {
            schedule: self.webhook_retry_schedule.clone(),
            allow_internal: self
                .webhook_allow_private
                .unwrap_or(self.mode == Mode::Development),
            timeout: std::time::Duration::from_secs(self.webhook_timeout_seconds.max(1)),
            concurrency: usize::from(self.webhook_concurrency),
            ..crate::state::WebhookSettings::default()
        }
    }

    /// The listener's connection limits.
    pub fn connections(&self) -> crate::listener::ConnectionLimits {
        let seconds = std::time::Duration::from_secs;
        crate::listener::ConnectionLimits {
            header_timeout: seconds(self.header_timeout_seconds),
            body_timeout: seconds(self.body_timeout_seconds),
            idle_timeout: seconds(self.idle_timeout_seconds),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// The limits partners are shown.
    pub fn limits(&self) -> Limits {
        Limits {
            provision_per_hour: self.provision_per_hour,
            status_per_hour: self.status_per_hour,
            burst_per_second: self.burst_per_second,
        }
    }
}

/// Parses a USD amount with at most two decimals.
pub fn parse_usd(text: &str) -> Result<Amount, String> {
    Amount::parse_decimal(text)
        .filter(|a| a.cents() >= 0)
        .ok_or_else(|| {
            format!("`{text}` is not a non-negative USD amount with at most two decimals")
        })
}

/// Checks an SM-DP+ address: a host name (letters, digits, `-` and `.`).
pub fn parse_smdp(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 253
        && text
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if ok {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("`{text}` is not a host name"))
    }
}

/// Checks a public URL and drops a trailing slash.
pub fn parse_public_url(text: &str) -> Result<String, String> {
    let url = url_like(text)?;
    Ok(url.trim_end_matches('/').to_owned())
}

fn url_like(text: &str) -> Result<&str, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}` must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') || text.contains(char::is_whitespace) {
        return Err(format!("`{text}` is not an absolute URL"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_settings() {
        assert_eq!(parse_usd("25").unwrap().cents(), 2500);
        assert!(parse_usd("-1").is_err());
        assert!(parse_usd("1.001").is_err());
        assert_eq!(parse_smdp("SMDP.Example.com").unwrap(), "smdp.example.com");
        assert!(parse_smdp("bad$host").is_err());
        assert_eq!(
            parse_public_url("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert!(parse_public_url("ftp://x").is_err());
        assert!(parse_public_url("http://").is_err());
    }
}
