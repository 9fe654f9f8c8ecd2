//! An SM-DP+ simulator: the four ES2+ functions an operator calls, with SGP.22's profile
//! states ([`state`]), and a control API that plays the phone and injects faults. Used by our
//! tests, and by anyone trying the platform without a vendor contract (`docs/smdp.md`).
//!
//! | path | what it does |
//! |---|---|
//! | `POST /gsma/rsp2/es2plus/{downloadOrder,confirmOrder,cancelOrder,releaseProfile}` | ES2+, as an SM-DP+ answers it: HTTP 200 with the outcome in the body's header; a repeated `functionCallIdentifier` gets its first answer |
//! | `GET /control/profiles`, `GET /control/profiles/{iccid}` | the profiles and their states |
//! | `GET /control/stats` | calls per function, replays, stock per type and state, notifications sent, the W3C `traceparent` of each function's latest call that carried one |
//! | `POST /control/inventory` `{"profile_type", "count"}` | adds profiles |
//! | `POST /control/faults` `{"function", "count", "delay_ms", "http_status", "reject"}` | the next `count` calls of `function` (any when absent) are delayed, answered with an HTTP error without acting, or refused with `reject: {subject_code, reason_code, message}`; `DELETE` clears them |
//! | `POST /control/profiles/{iccid}/{download,install,delete}` `{"eid"?}` | the phone downloads, installs, deletes: the state moves and `handleDownloadProgressInfo` is sent to the operator |
//! | `POST /control/profiles/{iccid}/fail` `{"point", "subject_code", "reason_code", "message"}` | a download fails at a point: `Error`, and a `Failed` notification |
//!
//! The control API is for tests and demonstrations: serve the simulator on a private address.

pub mod state;
#[cfg(feature = "test-support")]
pub mod testing;
pub use oytel_es2plus::tls;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use oytel_es2plus::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::state::{Inventory, ProfileState};

/// Where and how the simulator tells the operator about downloads. Its `Debug` leaves the
/// key out.
#[derive(Clone, Default)]
pub struct NotifyConfig {
    /// The operator's ES2+ base URL (the function path is added); none: nothing is sent.
    pub base_url: Option<String>,
    /// Our client certificate and key for the operator's mutual TLS, PEM.
    pub identity_pem: Option<Vec<u8>>,
    /// The operator's CA, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// The `notificationPointId` used for a deletion forwarded from the eUICC (products
    /// differ; SGP.22 leaves it to them).
    pub deletion_point: u32,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("base_url", &self.base_url)
            .field(
                "identity_pem",
                &self.identity_pem.as_ref().map(|_| "(certificate and key)"),
            )
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "(CA)"))
            .field("deletion_point", &self.deletion_point)
            .finish()
    }
}

/// What the simulator is told at start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Profiles in stock at start: type and count.
    pub stock: Vec<(String, u32)>,
    /// The address in activation codes, answered by `confirmOrder`.
    pub smdp_address: String,
    /// Our `functionRequesterIdentifier` when we notify.
    pub requester_id: String,
    /// Notifications to the operator.
    pub notify: NotifyConfig,
    /// The first digits of the ICCIDs of new profiles ([`state::DEFAULT_ICCID_PREFIX`]).
    pub iccid_prefix: String,
}

/// A fault waiting for the next calls.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Fault {
    /// The function it applies to (its wire name); any when absent.
    #[serde(default)]
    pub function: Option<String>,
    /// How many calls it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Wait this long, then act and answer (a slow SM-DP+).
    #[serde(default)]
    pub delay_ms: u64,
    /// Answer this HTTP status without acting (a broken front end).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Refuse with these codes without acting.
    #[serde(default)]
    pub reject: Option<Reject>,
}

/// The codes of an injected refusal.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Reject {
    /// What the problem concerns (`8.2.5`).
    pub subject_code: String,
    /// What it is (`3.7`).
    pub reason_code: String,
    /// Words for people.
    #[serde(default)]
    pub message: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Default)]
struct Shared {
    inventory: Inventory,
    answers: HashMap<(String, String), (Function, Value)>,
    faults: Vec<Fault>,
    calls: BTreeMap<&'static str, u64>,
    traceparents: BTreeMap<&'static str, String>,
    replays: u64,
    notifications: Vec<Value>,
}

/// The simulator: its state and configuration, behind an [`axum::Router`].
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Mutex<Shared>>,
    config: Arc<SimConfig>,
    notifier: reqwest::Client,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("smdp_address", &self.config.smdp_address)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator with its starting stock.
    pub fn new(config: SimConfig) -> anyhow::Result<Simulator> {
        let prefix = &config.iccid_prefix;
        if !(2..=10).contains(&prefix.len())
            || !prefix.starts_with("89")
            || !prefix.bytes().all(|b| b.is_ascii_digit())
        {
            anyhow::bail!("an ICCID prefix is 2 to 10 digits starting with 89, not `{prefix}`");
        }
        let mut shared = Shared::default();
        shared.inventory.iccid_prefix = prefix.clone();
        for (kind, count) in &config.stock {
            shared.inventory.add(kind, *count);
        }
        let mut notifier = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(10));
        if let Some(pem) = &config.notify.identity_pem {
            notifier = notifier.identity(reqwest::Identity::from_pem(pem)?);
        }
        if let Some(pem) = &config.notify.ca_pem {
            notifier = notifier.tls_built_in_root_certs(false);
            for anchor in reqwest::Certificate::from_pem_bundle(pem)? {
                notifier = notifier.add_root_certificate(anchor);
            }
        }
        Ok(Simulator {
            shared: Arc::new(Mutex::new(shared)),
            config: Arc::new(config),
            notifier: notifier.build()?,
        })
    }

    /// The routes: ES2+ and the control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/gsma/rsp2/es2plus/{function}", post(es2plus))
            .route("/control/profiles", get(list_profiles))
            .route("/control/profiles/{iccid}", get(get_profile))
            .route("/control/profiles/{iccid}/{step}", post(device))
            .route("/control/stats", get(stats))
            .route("/control/inventory", post(add_inventory))
            .route("/control/faults", post(add_fault).delete(clear_faults))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves the state as it was between two steps.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An ES2+ answer: HTTP 200 with the body, whatever the outcome.
fn answer(body: Value) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

fn header_only(status: FunctionExecutionStatus) -> Value {
    json!({"header": {"functionExecutionStatus": status}})
}

fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Value> {
    serde_json::from_slice(body).map_err(|e| {
        header_only(FunctionExecutionStatus::failed(
            "1.6",
            "2.1",
            &format!("the request is not valid for this function: {e}"),
        ))
    })
}

async fn es2plus(
    State(sim): State<Simulator>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(function) =
        Function::from_name(&name).filter(|f| *f != Function::HandleDownloadProgressInfo)
    else {
        return (StatusCode::NOT_FOUND, "no such ES2+ function").into_response();
    };
    // Kept as sent (a bounded, printable header) so that tests and operators see what arrived.
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(str::to_owned);
    let protocol = headers
        .get("x-admin-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !protocol.starts_with("gsma/rsp/v2.") {
        return (
            StatusCode::BAD_REQUEST,
            "X-Admin-Protocol: gsma/rsp/v2.x.y is required",
        )
            .into_response();
    }
    let header = match read::<Value>(&body)
        .map(|v| serde_json::from_value::<RequestHeader>(v["header"].clone()))
    {
        Ok(Ok(header)) => header,
        Ok(Err(e)) => {
            return answer(header_only(FunctionExecutionStatus::failed(
                "1.6",
                "2.2",
                &format!("header: {e}"),
            )))
        }
        Err(refusal) => return answer(refusal),
    };
    let key = (
        header.function_requester_identifier.clone(),
        header.function_call_identifier.clone(),
    );

    // One lock for the decision: a repeated call identifier gets its first answer; a new
    // call may meet an injected fault, whose refusal is then its answer for good.
    let (fault, body) = {
        let mut shared = sim.lock();
        *shared.calls.entry(function.name()).or_default() += 1;
        if let Some(traceparent) = traceparent {
            shared.traceparents.insert(function.name(), traceparent);
        }
        let replay = shared.answers.get(&key).cloned();
        let fault = take_fault(&mut shared.faults, function, replay.is_some());
        if let Some(status) = fault.as_ref().and_then(|f| f.http_status) {
            drop(shared);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (status, "injected fault").into_response();
        }
        let body = match replay {
            Some((first, value)) => {
                shared.replays += 1;
                if first == function {
                    value
                } else {
                    header_only(FunctionExecutionStatus::failed(
                        "1.6",
                        "3.3",
                        "this functionCallIdentifier was used for another function",
                    ))
                }
            }
            None => {
                let value = match fault.as_ref().and_then(|f| f.reject.as_ref()) {
                    Some(reject) => header_only(FunctionExecutionStatus::failed(
                        &reject.subject_code,
                        &reject.reason_code,
                        reject.message.as_deref().unwrap_or("injected refusal"),
                    )),
                    None => match execute(&sim, &mut shared.inventory, function, &body) {
                        Ok(value) | Err(value) => value,
                    },
                };
                shared.answers.insert(key, (function, value.clone()));
                value
            }
        };
        (fault, body)
    };
    // A slow SM-DP+: it acted, and answers late (a client that gave up retries, and gets
    // this answer again by its functionCallIdentifier).
    if let Some(delay) = fault.map(|f| f.delay_ms).filter(|d| *d > 0) {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    answer(body)
}

/// The fault that applies to this call, counted off its queue entry: a delay or an HTTP
/// error applies to any call of the function; a refusal only to a new call (a repeated call
/// identifier keeps its first answer).
fn take_fault(faults: &mut Vec<Fault>, function: Function, replay: bool) -> Option<Fault> {
    let index = faults.iter().position(|f| {
        f.function.as_deref().is_none_or(|n| n == function.name())
            && !(replay && f.reject.is_some())
    })?;
    let fault = faults[index].clone();
    faults[index].count -= 1;
    if faults[index].count == 0 {
        faults.remove(index);
    }
    Some(fault)
}

fn success() -> Value {
    json!({"functionExecutionStatus": FunctionExecutionStatus::success()})
}

/// Runs `function` on the inventory: the answer's body (`Err` for a refusal, also an answer).
fn execute(
    sim: &Simulator,
    inventory: &mut Inventory,
    function: Function,
    body: &[u8],
) -> Result<Value, Value> {
    let failed = |refusal: FunctionExecutionStatus| header_only(refusal);
    match function {
        Function::DownloadOrder => {
            let request: DownloadOrderRequest = read(body)?;
            let iccid = inventory
                .download_order(
                    request.iccid.as_ref(),
                    request.profile_type.as_deref(),
                    request.eid.as_deref(),
                )
                .map_err(failed)?;
            Ok(json!({"header": success(), "iccid": iccid}))
        }
        Function::ConfirmOrder => {
            let request: ConfirmOrderRequest = read(body)?;
            let (matching_id, eid) = inventory
                .confirm_order(
                    &request.iccid,
                    request.eid.as_deref(),
                    request.matching_id.as_deref(),
                    request.release_flag,
                )
                .map_err(failed)?;
            let mut value = json!({"header": success(), "matchingId": matching_id,
                "smdpAddress": sim.config.smdp_address});
            if let Some(eid) = eid {
                value["eid"] = json!(eid);
            }
            Ok(value)
        }
        Function::CancelOrder => {
            let request: CancelOrderRequest = read(body)?;
            inventory
                .cancel_order(
                    &request.iccid,
                    request.matching_id.as_deref(),
                    request.final_profile_status_indicator,
                )
                .map_err(failed)?;
            Ok(json!({"header": success()}))
        }
        Function::ReleaseProfile => {
            let request: ReleaseProfileRequest = read(body)?;
            inventory.release_profile(&request.iccid).map_err(failed)?;
            Ok(json!({"header": success()}))
        }
        Function::HandleDownloadProgressInfo => Err(failed(FunctionExecutionStatus::failed(
            "1.6",
            "1.1",
            "an SM-DP+ does not take notifications",
        ))),
    }
}

async fn list_profiles(State(sim): State<Simulator>) -> Json<Value> {
    let shared = sim.lock();
    Json(json!({"profiles": shared.inventory.all().collect::<Vec<_>>()}))
}

async fn get_profile(State(sim): State<Simulator>, Path(iccid): Path<String>) -> Response {
    let shared = sim.lock();
    match Iccid::parse(&iccid).and_then(|i| shared.inventory.get(&i).cloned()) {
        Some(profile) => Json(profile).into_response(),
        None => (StatusCode::NOT_FOUND, "no such profile").into_response(),
    }
}

async fn stats(State(sim): State<Simulator>) -> Json<Value> {
    let shared = sim.lock();
    Json(json!({
        "calls": shared.calls,
        "traceparents": shared.traceparents,
        "replays": shared.replays,
        "stock": shared.inventory.stock(),
        "notifications": shared.notifications,
    }))
}

#[derive(Deserialize)]
struct AddInventory {
    profile_type: String,
    count: u32,
}

async fn add_inventory(State(sim): State<Simulator>, Json(add): Json<AddInventory>) -> StatusCode {
    sim.lock()
        .inventory
        .add(&add.profile_type, add.count.min(1_000_000));
    StatusCode::NO_CONTENT
}

async fn add_fault(State(sim): State<Simulator>, Json(fault): Json<Fault>) -> Response {
    if fault
        .function
        .as_deref()
        .is_some_and(|n| Function::from_name(n).is_none())
    {
        return (StatusCode::BAD_REQUEST, "function: an ES2+ function name").into_response();
    }
    if fault.count > 0 {
        sim.lock().faults.push(fault);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(sim): State<Simulator>) -> StatusCode {
    sim.lock().faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Default, Deserialize)]
struct Step {
    #[serde(default)]
    eid: Option<String>,
    #[serde(default)]
    point: Option<u32>,
    #[serde(default)]
    subject_code: Option<String>,
    #[serde(default)]
    reason_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The phone: a step of a download, then the notification to the operator.
async fn device(
    State(sim): State<Simulator>,
    Path((iccid, step)): Path<(String, String)>,
    body: Option<Json<Step>>,
) -> Response {
    use ProfileState::*;
    let step_body = body.map(|Json(b)| b).unwrap_or_default();
    let Some(key) = Iccid::parse(&iccid) else {
        return (StatusCode::NOT_FOUND, "no such profile").into_response();
    };
    let (from, to, point, status): (&[ProfileState], _, _, _) = match step.as_str() {
        "download" => (
            &[Released],
            Downloaded,
            3,
            FunctionExecutionStatus::success(),
        ),
        "install" => (
            &[Downloaded],
            Installed,
            4,
            FunctionExecutionStatus::success(),
        ),
        "delete" => (
            &[Installed],
            Unavailable,
            sim.config.notify.deletion_point,
            FunctionExecutionStatus::success(),
        ),
        "fail" => (
            &[Released, Downloaded],
            Error,
            step_body.point.unwrap_or(3),
            FunctionExecutionStatus::failed(
                step_body.subject_code.as_deref().unwrap_or("8.1"),
                step_body.reason_code.as_deref().unwrap_or("4.2"),
                step_body
                    .message
                    .as_deref()
                    .unwrap_or("the download failed on the device"),
            ),
        ),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "steps: download, install, delete, fail",
            )
                .into_response()
        }
    };
    let moved = sim
        .lock()
        .inventory
        .device_step(&key, from, to, step_body.eid.as_deref());
    let profile = match moved {
        Ok(profile) => profile,
        Err(why) => return (StatusCode::CONFLICT, why).into_response(),
    };
    let notification = DownloadProgressInfo {
        header: RequestHeader {
            function_requester_identifier: sim.config.requester_id.clone(),
            function_call_identifier: oytel_es2plus::client::new_call_id(),
        },
        eid: profile.eid.clone(),
        iccid: key,
        profile_type: profile.profile_type.clone(),
        timestamp: chrono::Utc::now(),
        notification_point_id: point,
        notification_point_status: status,
        result_data: None,
    };
    let delivered = notify(&sim, &notification).await;
    let record = json!({"notification": notification, "delivered": delivered});
    sim.lock().notifications.push(record.clone());
    Json(json!({"profile": profile, "notification": record})).into_response()
}

/// Sends a notification to the operator, retrying a few times; what came of it.
async fn notify(sim: &Simulator, info: &DownloadProgressInfo) -> Value {
    let Some(base) = &sim.config.notify.base_url else {
        return json!("not sent: no operator URL is configured");
    };
    let url = format!(
        "{}{}",
        base.trim_end_matches('/'),
        Function::HandleDownloadProgressInfo.path()
    );
    let mut outcome = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        let sent = sim
            .notifier
            .post(&url)
            .header("X-Admin-Protocol", ADMIN_PROTOCOL)
            .json(info)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                return json!(format!("HTTP {}", response.status().as_u16()));
            }
            Ok(response) => outcome = format!("HTTP {}", response.status().as_u16()),
            Err(e) => outcome = format!("failed: {e}"),
        }
    }
    json!(outcome)
}
