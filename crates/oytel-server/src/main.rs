//! `oytel-server`: the API server (`serve`, the default) and the admin commands.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use oytel_core::catalog::Catalog;
use oytel_core::clock::now;
use oytel_core::keys::generate_api_key;
use oytel_core::lifecycle::{Suspender, SuspensionChange};
use oytel_core::limits::LimitOverrides;
use oytel_core::ports::{Partner, Storage, StoreError, SuspensionResult};
use oytel_core::provision::ProvisionSettings;
use oytel_server::config::{parse_usd, DatabaseArgs, LogFormat, Mode, ServeArgs};
use oytel_server::state::Settings;
use oytel_store::PoolOptions;
use oytel_types::{Amount, Environment};

/// The Oytel eSIM API server and its admin commands.
///
/// Without a command it serves the API. Every setting can also be given as an environment
/// variable (shown in brackets).
#[derive(Debug, Parser)]
#[command(
    name = "oytel-server",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Logging: OYTEL_LOG sets what is logged, as tracing's filter syntax \
                  (default `info,sqlx=warn`; e.g. `warn`, or `info,oytel_server=debug`)."
)]
struct Cli {
    /// A settings file shared by `serve` and the admin commands: `OYTEL_… = value` lines
    /// (TOML), below flags and environment variables in precedence.
    #[arg(long, env = "OYTEL_CONFIG", hide_env_values = true, global = true)]
    config: Option<std::path::PathBuf>,

    #[command(flatten)]
    database: DatabaseArgs,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Manage partners.
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Suspend and resume eSIMs (an operator's suspension, which partners cannot lift).
    #[command(subcommand)]
    Esim(EsimCommand),
    /// Development mode: a new sandbox key for the demo partner (printed once).
    DemoKey {
        /// `development` or `production` (refused).
        #[arg(
            long,
            env = "OYTEL_MODE",
            hide_env_values = true,
            default_value = "development"
        )]
        mode: Mode,
    },
}

#[derive(Debug, Subcommand)]
enum EsimCommand {
    /// List a partner's eSIMs, newest first, one JSON object per line.
    List {
        /// Partner id.
        #[arg(long)]
        partner: String,
        /// `sandbox` or `production` (`live` too); both when left out.
        #[arg(long)]
        env: Option<Environment>,
        /// Only eSIMs in this state.
        #[arg(long)]
        status: Option<oytel_types::EsimStatus>,
    },
    /// One eSIM, of any partner, as JSON.
    Show {
        /// eSIM id (`esim_…`).
        esim_id: String,
    },
    /// Suspend an eSIM; its partner cannot resume it. Prints its state as JSON.
    Suspend {
        /// eSIM id (`esim_…`).
        esim_id: String,
        /// Why (kept with the eSIM, never shown to the partner).
        #[arg(long)]
        reason: String,
    },
    /// Resume an eSIM, whoever suspended it. Prints its state as JSON.
    Resume {
        /// eSIM id (`esim_…`).
        esim_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Create a partner; prints its id.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Contact email.
        #[arg(long)]
        email: Option<String>,
    },
    /// List partners, one JSON object per line.
    List,
    /// One partner at a glance, as JSON: balance, threshold, limits, keys, eSIMs by state
    /// and environment, and the last order.
    Show {
        /// Partner id.
        partner_id: String,
    },
    /// Add to a partner's live balance (recorded in the ledger); prints the new balance.
    Credit {
        /// Partner id.
        partner_id: String,
        /// USD, at most two decimals.
        #[arg(long, value_parser = parse_usd)]
        amount: Amount,
        /// Why (kept in the ledger).
        #[arg(long, default_value = "top-up")]
        description: String,
    },
    /// Set the live balance below which the partner is sent `account.balance_low`; prints
    /// it as JSON (`null`: none).
    LowBalance {
        /// Partner id.
        partner_id: String,
        /// USD, at most two decimals.
        #[arg(long, value_parser = parse_usd, conflicts_with = "clear", required_unless_present = "clear")]
        threshold: Option<Amount>,
        /// Remove the threshold.
        #[arg(long)]
        clear: bool,
    },
    /// Print a partner's ledger, one JSON object per line.
    Ledger {
        /// Partner id.
        partner_id: String,
    },
    /// Set a partner's own limits (others keep the server's defaults); prints them as JSON
    /// (`null`: the default).
    Limits {
        /// Partner id.
        partner_id: String,
        /// Provisioning requests per hour.
        #[arg(long)]
        provision_per_hour: Option<u32>,
        /// eSIM and order reads per hour.
        #[arg(long)]
        status_per_hour: Option<u32>,
        /// Requests per second.
        #[arg(long)]
        burst_per_second: Option<u32>,
        /// Go back to the defaults for every limit not given.
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key; prints the key, which is shown only this once.
    Create {
        /// Partner id.
        #[arg(long)]
        partner: String,
        /// `sandbox` or `production` (`live` too).
        #[arg(long)]
        env: Environment,
    },
    /// List a partner's keys (never the keys themselves), one JSON object per line.
    List {
        /// Partner id.
        #[arg(long)]
        partner: String,
    },
    /// Revoke a key at once; prints its id.
    Revoke {
        /// Key id (`key_…`).
        key_id: String,
    },
    /// Replace a key: prints a new key of the same partner and environment (shown only now)
    /// and revokes the old one at once, after --grace-hours, or never (--keep-old: revoke it
    /// yourself with `key revoke` once the partner has switched).
    Rotate {
        /// Key id (`key_…`) of the key to replace.
        key_id: String,
        /// Leave the old key working.
        #[arg(long, conflicts_with = "grace_hours")]
        keep_old: bool,
        /// Hours the old key keeps working, then it is refused as revoked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8760))]
        grace_hours: Option<u32>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OYTEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a person at a terminal: a log file or a collector gets plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .fmt_fields(oytel_server::logfmt::JsonSpanFields)
            .event_format(oytel_server::logfmt::JsonLines)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

async fn open(database: &DatabaseArgs) -> Result<oytel_store::Opened> {
    let pool = PoolOptions {
        max_connections: database.db_max_connections,
        busy_timeout: std::time::Duration::from_secs(database.db_busy_timeout_seconds),
    };
    Ok(oytel_store::open(&database.database_url, &pool).await?)
}

/// Opens the database for an admin command: says on stderr which database it is, and refuses
/// to create one, so that a command run from the wrong folder (the default URL is relative)
/// cannot write partners or keys into a new, empty database. `serve` and `migrate` create it.
async fn open_existing(database: &DatabaseArgs) -> Result<oytel_store::Opened> {
    let url = &database.database_url;
    let path = sqlite_path(url);
    let shown = match &path {
        Some(path) => format!(
            "sqlite:{}",
            std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
        ),
        None => without_credentials(url),
    };
    note(format_args!("database: {shown}"));
    if path.as_ref().is_some_and(|p| !p.exists()) {
        bail!(
            "there is no database at {shown}: point --database-url (OYTEL_DATABASE_URL) at the \
             server's database, or create this one with `oytel-server migrate`"
        );
    }
    open(database).await
}

/// The file of a SQLite URL (`sqlite:path`, `sqlite://path`, with or without `?options`);
/// `None` for other databases and in-memory ones.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && !file.contains(":memory:")).then(|| std::path::PathBuf::from(file))
}

/// A database URL without its user name and password.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}/{path}")
        }
        None => url.split(':').next().unwrap_or_default().to_owned() + ":…",
    }
}

#[allow(clippy::print_stderr)]
fn note(line: impl std::fmt::Display) {
    eprintln!("{line}");
}

#[allow(clippy::print_stdout)]
fn out(line: impl std::fmt::Display) {
    println!("{line}");
}

async fn serve(database: DatabaseArgs, args: ServeArgs) -> Result<()> {
    init_logging(args.log_format);
    let store = open(&database).await?;
    let catalog = match &args.catalog {
        Some(path) => Catalog::from_json(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading the catalog {}", path.display()))?,
        )?,
        None => Catalog::default_catalog(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    if args.public_url.is_none() && local.ip().is_unspecified() {
        tracing::warn!("OYTEL_PUBLIC_URL is not set: QR code URLs will name {public_url}");
    }
    let settings = Settings {
        public_url: public_url.clone(),
        provision: ProvisionSettings {
            smdp_address: args.smdp_address.clone(),
            minimum_balance: args.min_balance_usd,
        },
        limits: args.limits(),
        webhooks: args.webhooks(),
        operator_token: args.operator_token.clone().filter(|t| !t.is_empty()),
        expiry_interval: std::time::Duration::from_secs(args.expiry_interval_seconds.max(1)),
        workers: args.workers,
        auth_failures_per_minute: args.auth_failures_per_minute,
        request_timeout: std::time::Duration::from_secs(args.request_timeout_seconds.max(1)),
        trusted_proxies: args.trusted_proxies.clone(),
        connections: args.connections(),
    };
    if let Some(files) = oytel_server::listener::open_files_limit() {
        let wanted = u64::from(args.max_connections) + 256;
        if files < wanted {
            tracing::warn!(
                open_files = files,
                max_connections = args.max_connections,
                "the open-files limit is below OYTEL_MAX_CONNECTIONS + 256: raise it (ulimit -n, \
                 LimitNOFILE=) or lower OYTEL_MAX_CONNECTIONS, or connections beyond it will fail \
                 to be accepted"
            );
        }
    }
    let demo = match args.mode {
        Mode::Development => seed_demo(store.storage.as_ref()).await?,
        Mode::Production => None,
    };
    let state = oytel_server::state(store.storage, store.quotas, catalog, settings)
        .map_err(anyhow::Error::msg)?;
    let shutdown = oytel_server::shutdown_signal();
    tracing::info!(listen = %local, public_url = %public_url, plans = state.catalog.plans.len(), "Oytel API ready");
    if let Some((partner_id, key)) = demo {
        show_demo_key(&partner_id, &key, &public_url);
    }
    oytel_server::serve(listener, state, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// On the first start of an empty development database: a demo partner and one sandbox key,
/// to show once (never to the logs). `None` on any later start.
async fn seed_demo(store: &dyn Storage) -> Result<Option<(String, String)>> {
    if !store.list_partners().await?.is_empty()
        || !store
            .set_setting_once("demo_seeded", &now().to_rfc3339())
            .await?
    {
        return Ok(None);
    }
    let partner = create_partner(store, DEMO_PARTNER, Some(DEMO_EMAIL.into())).await?;
    let key = generate_api_key(&partner.id, Environment::Sandbox);
    store.create_api_key(&key.record).await?;
    Ok(Some((partner.id, key.plaintext)))
}

/// The demo partner's name and email (development mode's first start).
const DEMO_PARTNER: &str = "Demo Partner";
const DEMO_EMAIL: &str = "demo@example.com";

/// Shows a demo key framed on stderr, after everything else the start printed, with the key
/// itself alone on stdout (for scripts).
fn show_demo_key(partner_id: &str, key: &str, public_url: &str) {
    let rule = "-".repeat(72);
    note(format_args!(
        "\n{rule}\n  Demo partner {partner_id}: its sandbox API key, shown only now:\n"
    ));
    out(format_args!("    {key}"));
    note(format_args!(
        "\n  Try:  curl -H \"Authorization: Bearer {key}\" {public_url}/api/v1/plans\n  \
         Another key for the demo partner later: oytel-server demo-key\n{rule}\n"
    ));
}

/// `demo-key`: a new sandbox key for the demo partner, in development mode only (keys are
/// stored as hashes: an old one cannot be shown again, so a new one is made).
async fn demo_key(database: DatabaseArgs, mode: Mode) -> Result<()> {
    if mode == Mode::Production {
        bail!("demo-key works in development mode only (OYTEL_MODE=development)");
    }
    let opened = open_existing(&database).await?;
    let store = opened.storage.as_ref();
    let partners = store.list_partners().await?;
    let Some(partner) = partners
        .iter()
        .find(|p| p.name == DEMO_PARTNER && p.email.as_deref() == Some(DEMO_EMAIL))
    else {
        bail!("this database has no demo partner: it was not first started in development mode");
    };
    let key = generate_api_key(&partner.id, Environment::Sandbox);
    store.create_api_key(&key.record).await?;
    out(key.plaintext);
    Ok(())
}

async fn create_partner(store: &dyn Storage, name: &str, email: Option<String>) -> Result<Partner> {
    let partner = Partner::new(name, email.as_deref())?;
    store.create_partner(&partner).await?;
    Ok(partner)
}

async fn require_partner(store: &dyn Storage, partner_id: &str) -> Result<()> {
    if store.get_partner(partner_id).await?.is_none() {
        bail!("no partner `{partner_id}`");
    }
    Ok(())
}

async fn partner(database: DatabaseArgs, command: PartnerCommand) -> Result<()> {
    let opened = open_existing(&database).await?;
    let store = opened.storage.as_ref();
    match command {
        PartnerCommand::Create { name, email } => {
            out(create_partner(store, &name, email).await?.id);
        }
        PartnerCommand::List => {
            for p in store.list_partners().await? {
                out(serde_json::json!({
                    "id": p.id, "name": p.name, "email": p.email, "created_at": p.created_at,
                }));
            }
        }
        PartnerCommand::Credit {
            partner_id,
            amount,
            description,
        } => {
            if amount.cents() <= 0 {
                bail!("--amount must be positive");
            }
            require_partner(store, &partner_id).await?;
            let balance = store
                .credit(&partner_id, amount.cents(), &description, now())
                .await?;
            out(Amount::from_cents(balance));
        }
        PartnerCommand::Limits {
            partner_id,
            provision_per_hour,
            status_per_hour,
            burst_per_second,
            reset,
        } => {
            let Some(current) = store.partner_limits(&partner_id).await? else {
                bail!("no partner `{partner_id}`");
            };
            let base = if reset {
                LimitOverrides::default()
            } else {
                current
            };
            let limits = LimitOverrides {
                provision_per_hour: provision_per_hour.or(base.provision_per_hour),
                status_per_hour: status_per_hour.or(base.status_per_hour),
                burst_per_second: burst_per_second.or(base.burst_per_second),
            };
            store.set_partner_limits(&partner_id, &limits).await?;
            out(serde_json::json!({
                "partner_id": partner_id,
                "provision_per_hour": limits.provision_per_hour,
                "status_per_hour": limits.status_per_hour,
                "burst_per_second": limits.burst_per_second,
            }));
        }
        PartnerCommand::Show { partner_id } => {
            let Some(partner) = store.get_partner(&partner_id).await? else {
                bail!("no partner `{partner_id}`");
            };
            let keys = store.list_api_keys(&partner_id).await?;
            let active = |env: Environment| {
                keys.iter()
                    .filter(|k| k.environment == env && k.revoked_at.is_none())
                    .count()
            };
            let summary = store.partner_summary(&partner_id).await?;
            let esims: Vec<_> = summary
                .esims
                .iter()
                .map(|(env, status, count)| {
                    serde_json::json!({"environment": env, "status": status, "count": count})
                })
                .collect();
            let limits = store.partner_limits(&partner_id).await?.unwrap_or_default();
            out(serde_json::json!({
                "id": partner.id, "name": partner.name, "email": partner.email,
                "created_at": partner.created_at,
                "live_balance": Amount::from_cents(store.live_balance(&partner_id).await?).to_string(),
                "low_balance_threshold": store.low_balance_threshold(&partner_id).await?
                    .map(|t| Amount::from_cents(t).to_string()),
                "limits": {
                    "provision_per_hour": limits.provision_per_hour,
                    "status_per_hour": limits.status_per_hour,
                    "burst_per_second": limits.burst_per_second,
                },
                "keys": {
                    "sandbox": active(Environment::Sandbox),
                    "production": active(Environment::Production),
                    "revoked": keys.iter().filter(|k| k.revoked_at.is_some()).count(),
                },
                "esims": esims,
                "last_order_at": summary.last_order_at,
            }));
        }
        PartnerCommand::LowBalance {
            partner_id,
            threshold,
            clear: _,
        } => {
            require_partner(store, &partner_id).await?;
            store
                .set_low_balance_threshold(&partner_id, threshold.map(Amount::cents))
                .await?;
            out(serde_json::json!({
                "partner_id": partner_id,
                "low_balance_threshold": threshold.map(|t| t.to_string()),
            }));
        }
        PartnerCommand::Ledger { partner_id } => {
            require_partner(store, &partner_id).await?;
            for e in store.ledger(&partner_id).await? {
                out(serde_json::json!({
                    "id": e.id, "kind": e.kind.as_str(), "amount": Amount::from_cents(e.amount_cents).to_string(),
                    "balance_after": Amount::from_cents(e.balance_after_cents).to_string(),
                    "order_id": e.order_id, "description": e.description, "created_at": e.created_at,
                }));
            }
        }
    }
    Ok(())
}

async fn key(database: DatabaseArgs, command: KeyCommand) -> Result<()> {
    let opened = open_existing(&database).await?;
    let store = opened.storage.as_ref();
    match command {
        KeyCommand::Create { partner, env } => {
            require_partner(store, &partner).await?;
            let key = generate_api_key(&partner, env);
            store.create_api_key(&key.record).await?;
            out(key.plaintext);
        }
        KeyCommand::List { partner } => {
            require_partner(store, &partner).await?;
            for k in store.list_api_keys(&partner).await? {
                out(serde_json::json!({
                    "id": k.id, "environment": k.environment, "hint": format!("{}…", k.hint),
                    "created_at": k.created_at, "revoked_at": k.revoked_at,
                    "expires_at": k.expires_at,
                }));
            }
        }
        KeyCommand::Rotate {
            key_id,
            keep_old,
            grace_hours,
        } => {
            let mut found = None;
            for partner in store.list_partners().await? {
                let keys = store.list_api_keys(&partner.id).await?;
                if let Some(k) = keys.into_iter().find(|k| k.id == key_id) {
                    found = Some(k);
                    break;
                }
            }
            let active = |k: &oytel_core::ports::ApiKeyInfo| {
                k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now())
            };
            let Some(old) = found.filter(active) else {
                bail!("no active key `{key_id}`");
            };
            let key = generate_api_key(&old.partner_id, old.environment);
            store.create_api_key(&key.record).await?;
            // The new key first: should the old one's change fail, the new one is not lost.
            out(&key.plaintext);
            match (keep_old, grace_hours) {
                (true, _) => {}
                (false, Some(hours)) => {
                    let until = now() + chrono::Duration::hours(i64::from(hours));
                    if !store.expire_api_key(&key_id, until).await? {
                        bail!("{key_id} already stops working sooner; left as it is");
                    }
                    note(format_args!(
                        "{key_id} keeps working until {}",
                        until.to_rfc3339()
                    ));
                }
                (false, None) => {
                    store.revoke_api_key(&key_id, now()).await?;
                }
            }
        }
        KeyCommand::Revoke { key_id } => {
            if !store.revoke_api_key(&key_id, now()).await? {
                bail!("no active key `{key_id}`");
            }
            out(key_id);
        }
    }
    Ok(())
}

async fn esim(database: DatabaseArgs, command: EsimCommand) -> Result<()> {
    let (esim_id, change) = match command {
        EsimCommand::List {
            partner,
            env,
            status,
        } => return list_esims(&database, &partner, env, status).await,
        EsimCommand::Show { esim_id } => {
            let opened = open_existing(&database).await?;
            let Some(esim) = opened.storage.get_esim_any(&esim_id).await? else {
                bail!("no eSIM `{esim_id}`");
            };
            out(esim_json(&esim));
            return Ok(());
        }
        EsimCommand::Suspend { esim_id, reason } => {
            let reason = oytel_core::validation::validate_text("reason", &reason, 500)
                .map_err(|e| anyhow::anyhow!("--{e}"))?;
            let by = Suspender::Operator;
            let reason = Some(reason);
            (esim_id, SuspensionChange::Suspend { by, reason })
        }
        EsimCommand::Resume { esim_id } => (
            esim_id,
            SuspensionChange::Resume {
                by: Suspender::Operator,
            },
        ),
    };
    let opened = open_existing(&database).await?;
    let store = opened.storage.as_ref();
    match store
        .change_suspension(None, &esim_id, &change, now())
        .await?
    {
        SuspensionResult::Done { esim, changed } => out(serde_json::json!({
            "esim_id": esim.id, "status": esim.status, "changed": changed,
        })),
        SuspensionResult::NotFound => bail!("no eSIM `{esim_id}`"),
        SuspensionResult::HeldByOperator => bail!("eSIM `{esim_id}` is held by the operator"),
        SuspensionResult::Invalid(invalid) => bail!("{invalid}"),
    }
    Ok(())
}

/// Prints a partner's eSIMs, newest first, page after page.
async fn list_esims(
    database: &DatabaseArgs,
    partner_id: &str,
    env: Option<Environment>,
    status: Option<oytel_types::EsimStatus>,
) -> Result<()> {
    let opened = open_existing(database).await?;
    let store = opened.storage.as_ref();
    require_partner(store, partner_id).await?;
    let envs = match env {
        Some(env) => vec![env],
        None => vec![Environment::Production, Environment::Sandbox],
    };
    let filter = oytel_core::ports::EsimFilter {
        status,
        ..Default::default()
    };
    for environment in envs {
        let scope = oytel_core::Scope {
            partner_id: partner_id.to_owned(),
            environment,
        };
        let mut before = None;
        loop {
            let page = oytel_core::ports::PageRequest { limit: 100, before };
            let rows = store.list_esims(&scope, &filter, page).await?;
            for row in &rows {
                out(esim_json(&row.row));
            }
            match rows.last() {
                Some(last) if rows.len() == 100 => before = Some(last.seq),
                _ => break,
            }
        }
    }
    Ok(())
}

/// What the operator sees of an eSIM (never its activation code: the customer's secret).
fn esim_json(e: &oytel_core::ports::EsimRecord) -> serde_json::Value {
    serde_json::json!({
        "id": e.id, "partner_id": e.partner_id, "environment": e.environment,
        "status": e.status, "plan_id": e.plan_id, "term_months": e.term.months(),
        "iccid": e.iccid, "msisdn": e.msisdn, "reference_id": e.reference_id,
        "customer_email": e.customer_email, "data_used_mb": e.data_used_mb,
        "data_limit_mb": e.data_limit_mb, "activated_at": e.activated_at,
        "expires_at": e.expires_at, "created_at": e.created_at,
    })
}

/// Whether `e` is the database being busy or out of reach, rather than a fault of the command.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(cause.downcast_ref(), Some(StoreError::Unavailable(_)))
            || cause
                .downcast_ref::<oytel_store::OpenError>()
                .is_some_and(oytel_store::OpenError::is_busy)
    })
}

/// What to tell an operator whose command found the database busy.
fn busy_message(database: &DatabaseArgs, e: &anyhow::Error) -> String {
    if database.database_url.starts_with("sqlite:") {
        format!(
            "the database is busy: another process (a running server?) held its write lock for \
             longer than {} s. Try again, or wait longer with --db-busy-timeout-seconds \
             (OYTEL_DB_BUSY_TIMEOUT_SECONDS).",
            database.db_busy_timeout_seconds
        )
    } else {
        format!("the database does not answer or is overloaded ({e:#}); try again shortly.")
    }
}

/// The settings file named by `--config` or `OYTEL_CONFIG`, if any.
fn config_path() -> Option<std::path::PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    let flag = args.iter().enumerate().find_map(|(i, arg)| {
        arg.strip_prefix("--config=")
            .map(str::to_owned)
            .or_else(|| {
                (arg == "--config")
                    .then(|| args.get(i + 1).cloned())
                    .flatten()
            })
    });
    flag.or_else(|| std::env::var("OYTEL_CONFIG").ok())
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
}

/// Reads a settings file: `NAME = value` lines (a TOML subset: strings in double quotes,
/// numbers, `true`/`false`; `#` comments), each NAME one of `known`. Errors name the line.
fn read_config(text: &str, known: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut settings = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("line {}", number + 1);
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{}: expected `NAME = value`", at()))?;
        let name = name.trim();
        if !known.iter().any(|k| k == name) {
            return Err(format!(
                "{}: `{name}` is not a setting (the names are the environment variables \
                 of --help, such as OYTEL_DATABASE_URL)",
                at()
            ));
        }
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => quoted.to_owned(),
            None if !value.is_empty() && !value.contains([' ', '"', '#']) => value.to_owned(),
            None => {
                return Err(format!(
                    "{}: put the value of {name} in double quotes",
                    at()
                ))
            }
        };
        settings.push((name.to_owned(), value));
    }
    Ok(settings)
}

/// Applies the settings file, if one is named, as defaults: a setting already in the
/// environment (or given as a flag, which clap prefers) wins.
fn apply_config() -> Result<(), String> {
    let Some(path) = config_path() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the settings file {}: {e}", path.display()))?;
    let mut known: Vec<String> = Vec::new();
    let mut commands = vec![<Cli as clap::CommandFactory>::command()];
    while let Some(command) = commands.pop() {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                known.push(name.to_owned());
            }
        }
        commands.extend(command.get_subcommands().cloned());
    }
    known.push("OYTEL_LOG".into());
    let settings = read_config(&text, &known).map_err(|e| format!("{}: {e}", path.display()))?;
    for (name, value) in settings {
        if std::env::var_os(&name).is_none() {
            // Still one thread: nothing reads the environment concurrently.
            std::env::set_var(name, value);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    if let Err(e) = apply_config() {
        note(format_args!("error: {e}"));
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let database = cli.database.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => serve(cli.database, cli.serve).await,
            Some(Command::Serve(args)) => serve(cli.database, args).await,
            Some(Command::Migrate) => open(&cli.database).await.map(|_| ()),
            Some(Command::Partner(command)) => partner(cli.database, command).await,
            Some(Command::Key(command)) => key(cli.database, command).await,
            Some(Command::Esim(command)) => esim(cli.database, command).await,
            Some(Command::DemoKey { mode }) => demo_key(cli.database, mode).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_busy(&e) => {
            eprintln!("error: {}", busy_message(&database, &e));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
