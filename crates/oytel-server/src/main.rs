//! `oytel-server`: the API server (`serve`, the default) and the admin commands.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use oytel_core::catalog::Catalog;
use oytel_core::clock::now;
use oytel_core::keys::generate_api_key;
use oytel_core::ports::{Storage, StoreError};
use oytel_core::provision::ProvisionSettings;
use oytel_server::config::{DatabaseArgs, LogFormat, Mode, ServeArgs};
use oytel_server::state::Settings;
use oytel_store::PoolOptions;
use oytel_types::Environment;

/// The Oytel eSIM API server and its admin commands.
///
/// Without a command it serves the API. Every setting can also be given as an environment
/// variable (shown in brackets).
mod admin;
mod settings_file;
mod stock;

use admin::{EsimCommand, KeyCommand, PartnerCommand};

#[derive(Debug, Parser)]
#[command(
    name = "oytel-server",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Logging: OYTEL_LOG sets what is logged, as tracing's filter syntax \
                  (default `info,sqlx=warn`; e.g. `warn`, or `info,oytel_server=debug`).\n\
                  Traces: OTEL_EXPORTER_OTLP_ENDPOINT (an OTLP/HTTP collector, e.g. \
                  `http://127.0.0.1:4318`) exports OpenTelemetry spans; the standard OTEL_* \
                  variables apply (docs/observability.md)."
)]
pub(crate) struct Cli {
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
    Serve(Box<ServeArgs>),
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
    /// The builtin profile stock: import ICCID batches, generate a test batch, list it.
    #[command(subcommand)]
    Inventory(stock::InventoryCommand),
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

/// Logs to stderr through a queue (see [`oytel_server::logwriter`]), and turns spans into
/// OpenTelemetry spans when `tracer` is given (see [`oytel_server::traces`]); keep what it
/// returns until the last line is logged.
fn init_logging(
    format: LogFormat,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) -> oytel_server::logwriter::LogWriter {
    use oytel_server::logfmt::{JsonLines, JsonSpanFields};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("OYTEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a person at a terminal: a log file or a collector gets plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, thread) = oytel_server::logwriter::stderr();
    // A macro, not a value: each arm's layer sits on a different stack of layers.
    macro_rules! fmt {
        () => {
            tracing_subscriber::fmt::layer()
                .with_ansi(terminal)
                .with_writer(writer)
        };
    }
    let registry = tracing_subscriber::registry();
    // Without traces the filter is the subscriber's own (the cheapest); with them each layer
    // has its filter, so that OYTEL_LOG does not decide which spans are exported.
    match (format, tracer) {
        (LogFormat::Json, None) => registry
            .with(filter)
            .with(fmt!().fmt_fields(JsonSpanFields).event_format(JsonLines))
            .init(),
        (LogFormat::Text, None) => registry.with(filter).with(fmt!()).init(),
        (LogFormat::Json, Some(tracer)) => registry
            .with(
                fmt!()
                    .fmt_fields(JsonSpanFields)
                    .event_format(JsonLines)
                    .with_filter(filter),
            )
            .with(oytel_server::traces::layer(tracer))
            .init(),
        (LogFormat::Text, Some(tracer)) => registry
            .with(fmt!().with_filter(filter))
            .with(oytel_server::traces::layer(tracer))
            .init(),
    }
    thread
}

pub(crate) async fn open(database: &DatabaseArgs) -> Result<oytel_store::Opened> {
    let pool = PoolOptions {
        max_connections: database.db_max_connections,
        busy_timeout: std::time::Duration::from_secs(database.db_busy_timeout_seconds),
    };
    Ok(oytel_store::open(&database.database_url, &pool).await?)
}

#[allow(clippy::print_stderr)]
pub(crate) fn note(line: impl std::fmt::Display) {
    eprintln!("{line}");
}

#[allow(clippy::print_stdout)]
pub(crate) fn out(line: impl std::fmt::Display) {
    println!("{line}");
}

async fn serve(database: DatabaseArgs, args: ServeArgs) -> Result<()> {
    let (exporter, tracer) =
        match oytel_server::traces::Exporter::start(tokio::runtime::Handle::current())? {
            Some((exporter, tracer)) => (Some(exporter), Some(tracer)),
            None => (None, None),
        };
    let log = init_logging(args.log_format, tracer);
    let served = serve_logged(database, args).await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    report_dropped(&log);
    served
}

/// Says on stderr itself (not through the queue that was full) how many log lines were lost.
fn report_dropped(log: &oytel_server::logwriter::LogWriter) {
    if log.dropped() > 0 {
        note(format_args!(
            "oytel-server: {} log lines were dropped while the log queue was full (stderr was slower than the requests)",
            log.dropped()
        ));
    }
}

async fn serve_logged(database: DatabaseArgs, args: ServeArgs) -> Result<()> {
    let store = open(&database).await?;
    let catalog = match &args.catalog {
        Some(path) => Catalog::from_json(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading the catalog {}", path.display()))?,
        )?,
        None => Catalog::default_catalog(),
    };
    let es2plus =
        oytel_server::es2plus_listener::bind(&args.es2plus, args.mode == Mode::Development).await?;
    let metrics = match args.metrics_listen {
        Some(address) => Some((
            oytel_server::metrics::bind(address).await?,
            oytel_server::metrics::install()?,
        )),
        None => None,
    };
    let backlog = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    let listener = oytel_server::listener::bind(args.listen, backlog)
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    if args.public_url.is_none() && local.ip().is_unspecified() {
        tracing::warn!("OYTEL_PUBLIC_URL is not set: QR code URLs will name {public_url}");
    }
    let smdp = oytel_server::smdp::configure(
        &args.smdp,
        args.mode == Mode::Development,
        args.es2plus.es2plus_deletion_point,
    )?;
    if let Some(configured) = &smdp {
        if configured.longest_calls.as_secs() >= args.request_timeout_seconds {
            tracing::warn!(
                smdp_calls_up_to_seconds = configured.longest_calls.as_secs(),
                request_timeout_seconds = args.request_timeout_seconds,
                "a provisioning's SM-DP+ calls may outlast the request timeout: its client then \
                 gets 503 REQUEST_TIMEOUT while the order goes on; only a retry with the same \
                 Idempotency-Key (which the SDKs send) cannot order twice"
            );
        }
    }
    let (smdp, sandbox_phone) = match smdp {
        Some(configured) => (Some(configured.route), configured.phone),
        None => (None, None),
    };
    let settings = Settings {
        public_url: public_url.clone(),
        provision: ProvisionSettings {
            smdp_address: args.smdp_address.clone(),
            minimum_balance: args.min_balance_usd,
            smdp,
            stock: args.profile_stock.into(),
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
        sandbox_phone,
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
        oytel_server::demo::populate(&state, &key).await;
        show_demo_key(&partner_id, &key, &public_url);
    }
    let reports = es2plus.map(|bound| {
        tracing::info!(listen = %bound.address, "SM-DP+ notifications (ES2+) listening");
        tokio::spawn(oytel_server::es2plus_listener::serve(
            bound,
            state.store.clone(),
            args.es2plus.es2plus_deletion_point,
        ))
    });
    let scraped = metrics.map(|(listener, handle)| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(listen = %address, "metrics listening");
        }
        tokio::spawn(oytel_server::metrics::serve(
            listener,
            handle,
            state.store.clone(),
        ))
    });
    oytel_server::serve(listener, state, shutdown).await?;
    for task in [reports, scraped].into_iter().flatten() {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// On the first start of an empty development database: a demo partner and one sandbox key,
/// to show once (never to the logs); its demo eSIMs follow once the server is built
/// ([`oytel_server::demo`]). `None` on any later start.
async fn seed_demo(store: &dyn Storage) -> Result<Option<(String, String)>> {
    if !store.list_partners().await?.is_empty()
        || !store
            .set_setting_once("demo_seeded", &now().to_rfc3339())
            .await?
    {
        return Ok(None);
    }
    let partner = admin::create_partner(store, DEMO_PARTNER, Some(DEMO_EMAIL.into())).await?;
    let key = generate_api_key(&partner.id, Environment::Sandbox);
    store.create_api_key(&key.record).await?;
    Ok(Some((partner.id, key.plaintext)))
}

/// The demo partner's name and email (development mode's first start).
pub(crate) const DEMO_PARTNER: &str = "Demo Partner";
pub(crate) const DEMO_EMAIL: &str = "demo@example.com";

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

fn main() -> ExitCode {
    if let Err(e) = settings_file::apply_config() {
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
            Some(Command::Serve(args)) => serve(cli.database, *args).await,
            Some(Command::Migrate) => open(&cli.database).await.map(|_| ()),
            Some(Command::Partner(command)) => admin::partner(cli.database, command).await,
            Some(Command::Key(command)) => admin::key(cli.database, command).await,
            Some(Command::Esim(command)) => admin::esim(cli.database, command).await,
            Some(Command::Inventory(command)) => stock::inventory(cli.database, command).await,
            Some(Command::DemoKey { mode }) => admin::demo_key(cli.database, mode).await,
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
