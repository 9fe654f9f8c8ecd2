//! `oytel-server inventory`: the operator loads the builtin profile stock (ICCID batches,
//! checked by `oytel_core::inventory`: nothing half-imported, every bad line named),
//! generates a test batch, and reads the stock per profile type.

use anyhow::{bail, Context as _, Result};
use clap::Subcommand;
use oytel_core::clock::now;
use oytel_core::inventory::{self, Imported, NewBatch};
use oytel_server::config::DatabaseArgs;
use oytel_types::Environment;

use crate::admin::open_existing;
use crate::{note, out};

#[derive(Debug, Subcommand)]
pub(crate) enum InventoryCommand {
    /// Import a batch of ICCIDs (one per line) as stock of a profile type; prints the batch
    /// as JSON. A file with any bad line, or an ICCID already known, is not imported at all.
    Import {
        /// The profile type the ICCIDs are (as the catalog's plans name it).
        #[arg(long)]
        profile_type: String,
        /// The batch file.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Whose stock: `production` (`live`, the default) or `sandbox`.
        #[arg(long, default_value = "production")]
        env: Environment,
    },
    /// Generate and import a batch of test ICCIDs (an `8999…` test range).
    Generate {
        /// The profile type.
        #[arg(long)]
        profile_type: String,
        /// How many.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: u32,
        /// Whose stock: `production` (`live`, the default) or `sandbox`.
        #[arg(long, default_value = "production")]
        env: Environment,
    },
    /// The stock per profile type, one JSON object per line (`low` below 100 available).
    List,
}

pub(crate) async fn inventory(database: DatabaseArgs, command: InventoryCommand) -> Result<()> {
    let (profile_type, env, iccids) = match command {
        InventoryCommand::List => return list(&database).await,
        InventoryCommand::Import {
            profile_type,
            file,
            env,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let batch = inventory::parse_batch(&text);
            if !batch.refused.is_empty() {
                for refused in &batch.refused {
                    note(format_args!(
                        "line {}: `{}`: {}",
                        refused.line, refused.text, refused.reason
                    ));
                }
                bail!(
                    "nothing imported: {} line(s) refused (above); correct them and import the file again",
                    batch.refused.len()
                );
            }
            if batch.iccids.is_empty() {
                bail!("nothing imported: {} holds no ICCID", file.display());
            }
            (profile_type, env, batch.iccids)
        }
        InventoryCommand::Generate {
            profile_type,
            count,
            env,
        } => (
            profile_type,
            env,
            inventory::generate_batch(count as usize, now()),
        ),
    };
    if !oytel_core::catalog::valid_profile_type(&profile_type) {
        bail!("--profile-type: 1 to 64 letters, digits, `-`, `_` or `.`");
    }
    let opened = open_existing(&database).await?;
    let batch = NewBatch {
        id: oytel_core::numbers::new_id("bat"),
        profile_type,
        environment: env,
        iccids,
        imported_at: now(),
    };
    match opened.storage.import_batch(&batch).await? {
        Imported::Stored(count) => out(serde_json::json!({
            "batch_id": batch.id, "profile_type": batch.profile_type,
            "environment": batch.environment, "imported": count,
        })),
        Imported::Duplicates(iccids) => bail!(
            "nothing imported: these ICCIDs are in stock or on eSIMs already: {}",
            iccids.join(", ")
        ),
    }
    Ok(())
}

async fn list(database: &DatabaseArgs) -> Result<()> {
    let opened = open_existing(database).await?;
    for stock in opened.storage.stock().await? {
        out(serde_json::json!({
            "profile_type": stock.profile_type, "environment": stock.environment,
            "available": stock.available, "allocated": stock.allocated,
            "low": stock.available < inventory::LOW_STOCK,
        }));
    }
    Ok(())
}
