//! The server's side of the SM-DP+: the ES2+ adapter of the core's profile port, built from
//! the `OYTEL_SMDP_*` settings, and the reconciler that puts back what a failed or crashed
//! provisioning left reserved (the saga is `oytel_core::profiles`).
//!
//! | ES2+ client error | the partner sees | the reservation |
//! |---|---|---|
//! | `Unreachable` (refused, TLS, DNS, in every attempt) | `503 SMDP_UNAVAILABLE` | nothing held |
//! | `Timeout`, `Interrupted` (it may have acted) | `504 SMDP_TIMEOUT` | put back (the ICCID learnt by repeating the call) |
//! | `Rejected` (`Failed` with its codes) | `502 SMDP_REJECTED`, the codes in words | nothing held (`downloadOrder`), or put back |
//! | `Protocol` (HTTP 5xx, an answer that is not ES2+) | `502 SMDP_PROTOCOL_ERROR` | put back, as it may have acted |
//!
//! In every case nothing is charged and no order is written.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use oytel_core::profiles::{self, FinalState, ProfileError, ProfileSource, ReleasedProfile};
use oytel_core::provision::SmdpRoute;
use oytel_es2plus::client::{ClientConfig, Es2Error, Es2PlusClient};
use oytel_es2plus::{FinalProfileStatus, Iccid};
use tokio::sync::watch;

use crate::config::SmdpArgs;
use crate::state::AppState;

/// How often the reconciler looks for reservations to put back.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// An SM-DP+ reached over ES2+.
#[derive(Debug)]
pub struct Es2PlusSource {
    client: Es2PlusClient,
}

impl Es2PlusSource {
    /// The source for a client; its calls carry the trace context of the work under way.
    pub fn new(client: Es2PlusClient) -> Es2PlusSource {
        Es2PlusSource {
            client: client.with_extra_headers(crate::traces::add_traceparent),
        }
    }
}

/// The most of an SM-DP+'s words a partner is shown.
const MAX_SHOWN: usize = 300;

/// The SM-DP+'s words, printable and at most [`MAX_SHOWN`] characters.
fn shown(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_SHOWN)
        .collect()
}

/// Whether a matching ID is one an activation code can carry (SGP.22: `[0-9A-Z-]`, at most
/// 255 characters).
fn valid_matching_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

fn profile_error(e: Es2Error) -> ProfileError {
    let text = shown(&e.to_string());
    match e {
        Es2Error::Unreachable(_) => ProfileError::Unreachable(text),
        Es2Error::Timeout(_) | Es2Error::Interrupted(_) => ProfileError::Timeout(text),
        Es2Error::Rejected {
            function,
            data,
            status,
        } => ProfileError::Rejected(shown(&format!(
            "{function}: {}",
            data.as_deref()
                .map(|d| d.describe())
                .unwrap_or_else(|| status.as_str().to_owned())
        ))),
        Es2Error::Protocol(_) => ProfileError::Protocol(text),
    }
}

fn iccid(text: &str) -> Result<Iccid, ProfileError> {
    Iccid::parse(text).ok_or_else(|| ProfileError::Protocol(format!("`{text}` is not an ICCID")))
}

/// Makes an ES2+ call in a span of its own (the `traceparent` the SM-DP+ receives names it;
/// see [`crate::traces`]) and counts it and its outcome in the metrics.
async fn measured<T>(
    function: &'static str,
    call: impl std::future::Future<Output = Result<T, Es2Error>>,
) -> Result<T, Es2Error> {
    let span = tracing::info_span!(
        "es2plus",
        function,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        otel.status_code = tracing::field::Empty
    );
    crate::traces::name_client_span(&span, format_args!("ES2+ {function}"));
    let started = std::time::Instant::now();
    let result = tracing::Instrument::instrument(call, span.clone()).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(Es2Error::Unreachable(_)) => "unreachable",
        Err(Es2Error::Timeout(_) | Es2Error::Interrupted(_)) => "timeout",
        Err(Es2Error::Rejected { .. }) => "rejected",
        Err(Es2Error::Protocol(_)) => "protocol",
    };
    if result.is_err() {
        crate::traces::failed(&span);
    }
    crate::metrics::smdp_call(function, outcome, started.elapsed());
    result
}

#[async_trait]
impl ProfileSource for Es2PlusSource {
    async fn order(&self, call_id: &str, profile_type: &str) -> Result<String, ProfileError> {
        let done = measured(
            "downloadOrder",
            self.client.download_order(call_id, profile_type, None),
        )
        .await
        .map_err(profile_error)?;
        if let Some(warning) = done.warning {
            tracing::warn!(call_id, warning = %warning.describe(), "downloadOrder succeeded with a warning");
        }
        Ok(done.value.as_str().to_owned())
    }

    async fn release(
        &self,
        call_id: &str,
        iccid_text: &str,
    ) -> Result<ReleasedProfile, ProfileError> {
        let iccid = iccid(iccid_text)?;
        let done = measured(
            "confirmOrder",
            self.client.confirm_order(call_id, &iccid, None),
        )
        .await
        .map_err(profile_error)?;
        if let Some(warning) = done.warning {
            tracing::warn!(call_id, warning = %warning.describe(), "confirmOrder succeeded with a warning");
        }
        if !valid_matching_id(&done.value.matching_id) {
            return Err(ProfileError::Protocol(format!(
                "confirmOrder answered a matching ID that no activation code can carry: `{}`",
                shown(&done.value.matching_id)
            )));
        }
        // An address that is no host name is not written into activation codes: the
        // configured one is (OYTEL_SMDP_ADDRESS).
        let smdp_address = done.value.smdp_address.and_then(|address| {
            let checked = crate::config::parse_smdp(&address).ok();
            if checked.is_none() {
                tracing::warn!(address = %shown(&address), "confirmOrder named an SM-DP+ address that is no host name; the configured one is used");
            }
            checked
        });
        Ok(ReleasedProfile {
            matching_id: done.value.matching_id,
            smdp_address,
        })
    }

    async fn put_back(
        &self,
        call_id: &str,
        iccid_text: &str,
        to: FinalState,
    ) -> Result<(), ProfileError> {
        let to = match to {
            FinalState::Available => FinalProfileStatus::Available,
            FinalState::Unavailable => FinalProfileStatus::Unavailable,
        };
        let iccid = iccid(iccid_text)?;
        measured(
            "cancelOrder",
            self.client.cancel_order(call_id, &iccid, None, to),
        )
        .await
        .map(|_| ())
        .map_err(profile_error)
    }
}

/// The customer's phone, played through the SM-DP+ simulator's control API
/// (`OYTEL_SMDP_SIMULATOR`): the sandbox's activation route downloads and installs the
/// profile there, then applies the reports the simulator says it sent. Each report is
/// applied once per call identifier, so it does not matter whether it also reached the
/// ES2+ listener.
#[derive(Debug)]
pub struct SimulatorPhone {
    http: reqwest::Client,
    base: String,
    /// The notification point of a deletion (`OYTEL_ES2PLUS_DELETION_POINT`).
    pub deletion_point: u32,
}

impl SimulatorPhone {
    /// The phone of the simulator `client` calls (its control API shares the ES2+ port).
    pub fn new(client: &Es2PlusClient, deletion_point: u32) -> SimulatorPhone {
        SimulatorPhone {
            http: client.http().clone(),
            base: client.base_url().to_owned(),
            deletion_point,
        }
    }
}

/// The EID of the sandbox's phone.
pub const SANDBOX_EID: &str = "89049032000001000000000000000000";

impl SimulatorPhone {
    /// Plays `step` (`download`, `install`) for the profile `iccid`: the report the
    /// simulator sent about it.
    pub async fn play(
        &self,
        iccid: &str,
        step: &str,
    ) -> Result<oytel_es2plus::DownloadProgressInfo, crate::error::ApiError> {
        use axum::http::StatusCode;
        use oytel_types::ErrorCode;
        let url = format!("{}/control/profiles/{iccid}/{step}", self.base);
        let response = self
            .http
            .post(&url)
            .json(&serde_json::json!({"eid": SANDBOX_EID}))
            .send()
            .await
            .map_err(|e| {
                crate::error::ApiError::from(oytel_core::CoreError::Smdp(
                    ProfileError::Unreachable(format!("the simulator's control API: {e}")),
                ))
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == StatusCode::CONFLICT {
            return Err(crate::error::ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidStateTransition,
                format!("the simulated phone cannot {step} this profile: {text}"),
            ));
        }
        let played: serde_json::Value = serde_json::from_str(&text)
            .ok()
            .filter(|_| status.is_success())
            .ok_or_else(|| {
                crate::error::ApiError::from(oytel_core::CoreError::Smdp(ProfileError::Protocol(
                    format!("the simulator's control API answered {status}"),
                )))
            })?;
        serde_json::from_value(played["notification"]["notification"].clone()).map_err(|e| {
            crate::error::ApiError::from(oytel_core::CoreError::Smdp(ProfileError::Protocol(
                format!("the simulator's report: {e}"),
            )))
        })
    }
}

/// The SM-DP+ of `args`: the route profiles come from, and the simulated phone when the
/// SM-DP+ is the simulator.
#[derive(Debug)]
pub struct Configured {
    /// Where profiles come from.
    pub route: SmdpRoute,
    /// The longest a provisioning's two calls may take, their attempts included.
    pub longest_calls: Duration,
    /// The phone of the sandbox routes (`OYTEL_SMDP_SIMULATOR`).
    pub phone: Option<Arc<SimulatorPhone>>,
}

/// The SM-DP+ of `args`, or `None` when no `OYTEL_SMDP_URL` is set (builtin profiles).
/// Refuses settings that cannot work: an `http://` URL outside development, half a client
/// identity, unreadable files, or calls that could outlast the key's hold.
pub fn configure(
    args: &SmdpArgs,
    development: bool,
    deletion_point: u32,
) -> anyhow::Result<Option<Configured>> {
    let Some(url) = args.smdp_url.as_deref().filter(|u| !u.is_empty()) else {
        if args.smdp_simulator {
            bail!("OYTEL_SMDP_SIMULATOR needs OYTEL_SMDP_URL (the simulator's address)");
        }
        return Ok(None);
    };
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
    };
    let mut config = ClientConfig::new(url, &args.smdp_requester_id);
    config.allow_http = development;
    config.timeout = Duration::from_secs(args.smdp_timeout_seconds);
    config.pad_iccid = args.smdp_pad_iccid;
    config.identity_pem = match (&args.smdp_client_cert, &args.smdp_client_key) {
        (Some(cert), Some(key)) => {
            let mut pem = read(cert, "SM-DP+ client certificate (OYTEL_SMDP_CLIENT_CERT)")?;
            pem.push(b'\n');
            pem.extend(read(key, "SM-DP+ client key (OYTEL_SMDP_CLIENT_KEY)")?);
            Some(pem)
        }
        (None, None) => None,
        _ => bail!(
            "OYTEL_SMDP_CLIENT_CERT and OYTEL_SMDP_CLIENT_KEY go together: set both or neither"
        ),
    };
    if let Some(ca) = &args.smdp_ca_cert {
        config.ca_pem = Some(read(ca, "SM-DP+ CA certificate (OYTEL_SMDP_CA_CERT)")?);
    }
    let stale_after = Duration::from_secs(args.smdp_stale_after_seconds);
    let hold = stale_after * 3 / 4;
    // Two calls (downloadOrder, confirmOrder), each with its attempts and backoffs.
    let backoff: Duration = (0..config.attempts.saturating_sub(1))
        .map(|i| config.backoff * 2u32.pow(i))
        .sum();
    let longest = 2 * (config.timeout * config.attempts + backoff);
    if longest >= hold {
        bail!(
            "OYTEL_SMDP_TIMEOUT_SECONDS ({}) is too long for OYTEL_SMDP_STALE_AFTER_SECONDS ({}): \
             a provisioning's calls may take {longest:?}, and must end within three quarters of it",
            args.smdp_timeout_seconds,
            args.smdp_stale_after_seconds
        );
    }
    let client = Es2PlusClient::new(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let phone = args
        .smdp_simulator
        .then(|| Arc::new(SimulatorPhone::new(&client, deletion_point)));
    Ok(Some(Configured {
        longest_calls: longest,
        route: SmdpRoute {
            source: Arc::new(Es2PlusSource::new(client)),
            sandbox: args.smdp_sandbox,
            hold,
            stale_after,
        },
        phone,
    }))
}

/// Puts back, every [`RECONCILE_INTERVAL`] until `shutdown`, what provisionings left
/// reserved at the SM-DP+ (nothing to do without one).
pub async fn run_reconciler(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let Some(route) = state.settings.provision.smdp.clone() else {
        return;
    };
    loop {
        match profiles::reconcile(
            state.store.as_ref(),
            route.source.as_ref(),
            route.stale_after,
            100,
        )
        .await
        {
            Ok(done) if done.unconfirmed > 0 => {
                tracing::warn!(
                    taken_over = done.taken_over,
                    put_back = done.put_back,
                    failed = done.failed,
                    unconfirmed = done.unconfirmed,
                    "SM-DP+ reservations closed without the SM-DP+'s confirmation: see their \
                     last_error in profile_reservations, and look at the SM-DP+"
                );
            }
            Ok(done) if done != profiles::Reconciled::default() => {
                tracing::info!(
                    taken_over = done.taken_over,
                    put_back = done.put_back,
                    failed = done.failed,
                    "SM-DP+ reservations reconciled"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not look for SM-DP+ reservations to put back")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RECONCILE_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matching_ids_an_activation_code_can_carry_are_taken() {
        assert!(valid_matching_id("QR-G-5C-KR-1PBJBUU"));
        for bad in [
            "",
            "lower-case",
            "HAS$DOLLAR",
            "WITH SPACE",
            &"A".repeat(256),
        ] {
            assert!(!valid_matching_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_smdps_words_are_shown_printable_and_short() {
        let long = format!("refused\n{}", "x".repeat(1_000));
        let text = shown(&long);
        assert_eq!(text.chars().count(), MAX_SHOWN);
        assert!(!text.contains('\n'));
    }
}
