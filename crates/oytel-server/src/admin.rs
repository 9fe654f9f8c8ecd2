//! The operator's admin commands (`partner`, `key`, `esim`, `demo-key`): each says which
//! database it uses and never creates one (`open_existing`), and prints machine-readable
//! output: ids and keys alone on stdout, lists as JSON lines.

use anyhow::{bail, Result};
use clap::Subcommand;
use oytel_core::clock::now;
use oytel_core::keys::generate_api_key;
use oytel_core::lifecycle::{Suspender, SuspensionChange};
use oytel_core::limits::LimitOverrides;
use oytel_core::ports::{Partner, Storage, SuspensionResult};
use oytel_server::config::{parse_usd, DatabaseArgs, Mode};
use oytel_types::{Amount, Environment};

use crate::{note, open, out, DEMO_EMAIL, DEMO_PARTNER};

#[derive(Debug, Subcommand)]
pub(crate) enum PartnerCommand {
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
pub(crate) enum KeyCommand {
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

#[derive(Debug, Subcommand)]
pub(crate) enum EsimCommand {
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

/// Opens the database for an admin command: says on stderr which database it is, and refuses
/// to create one, so that a command run from the wrong folder (the default URL is relative)
/// cannot write partners or keys into a new, empty database. `serve` and `migrate` create it.
pub(crate) async fn open_existing(database: &DatabaseArgs) -> Result<oytel_store::Opened> {
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
pub(crate) fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && !file.contains(":memory:")).then(|| std::path::PathBuf::from(file))
}

/// A database URL without its user name and password.
pub(crate) fn without_credentials(url: &str) -> String {
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

pub(crate) async fn create_partner(
    store: &dyn Storage,
    name: &str,
    email: Option<String>,
) -> Result<Partner> {
    let partner = Partner::new(name, email.as_deref())?;
    store.create_partner(&partner).await?;
    Ok(partner)
}

pub(crate) async fn require_partner(store: &dyn Storage, partner_id: &str) -> Result<()> {
    if store.get_partner(partner_id).await?.is_none() {
        bail!("no partner `{partner_id}`");
    }
    Ok(())
}

pub(crate) async fn partner(database: DatabaseArgs, command: PartnerCommand) -> Result<()> {
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

pub(crate) async fn key(database: DatabaseArgs, command: KeyCommand) -> Result<()> {
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

pub(crate) async fn esim(database: DatabaseArgs, command: EsimCommand) -> Result<()> {
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
pub(crate) async fn list_esims(
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
pub(crate) fn esim_json(e: &oytel_core::ports::EsimRecord) -> serde_json::Value {
    serde_json::json!({
        "id": e.id, "partner_id": e.partner_id, "environment": e.environment,
        "status": e.status, "plan_id": e.plan_id, "term_months": e.term.months(),
        "iccid": e.iccid, "msisdn": e.msisdn, "reference_id": e.reference_id,
        "customer_email": e.customer_email, "data_used_mb": e.data_used_mb,
        "data_limit_mb": e.data_limit_mb, "activated_at": e.activated_at,
        "expires_at": e.expires_at, "created_at": e.created_at,
    })
}

/// `demo-key`: a new sandbox key for the demo partner, in development mode only (keys are
/// stored as hashes: an old one cannot be shown again, so a new one is made).
pub(crate) async fn demo_key(database: DatabaseArgs, mode: Mode) -> Result<()> {
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
