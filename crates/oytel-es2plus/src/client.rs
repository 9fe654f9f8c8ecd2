//! The ES2+ client: the four functions the operator calls, over HTTPS with mutual TLS.
//!
//! Every call has a timeout per attempt and is retried where a retry is safe: the retry carries
//! the same `functionCallIdentifier` and body. SGP.22 has callers reuse the identifier; an
//! SM-DP+ that answers a repeated identifier with its first answer (as the simulator does) then
//! acts once. Whether a given SM-DP+ does is for its vendor to confirm: where it may have acted
//! and no answer came, the error says so ([`Es2Error::outcome_unknown`]) and the caller
//! reconciles (for `downloadOrder`, by cancelling what it may have reserved).
//!
//! | what happened | retried | the error once attempts run out |
//! |---|---|---|
//! | no connection (refused, DNS, the TLS handshake refused: no or a wrong client certificate, an untrusted server) | yes | [`Es2Error::Unreachable`]: nothing reached the SM-DP+ in any attempt |
//! | no answer within the timeout | yes | [`Es2Error::Timeout`]: it may have acted |
//! | the connection broke after the request was sent | yes | [`Es2Error::Interrupted`]: it may have acted |
//! | HTTP 5xx, 429 | yes | [`Es2Error::Protocol`] |
//! | HTTP 200 with `Failed` or `Expired` | no | [`Es2Error::Rejected`] with the SM-DP+'s codes; [`Es2Error::Interrupted`] when an earlier attempt may have acted (an SM-DP+ that does not replay a call identifier refuses the repeat) |
//! | HTTP 200 with `Executed-WithWarning` | no | success, with the warning in [`Done::warning`] |
//! | another HTTP status, a body that is not the function's answer | no | [`Es2Error::Protocol`] |
//!
//! When attempts end differently, an attempt that may have acted decides the error: a timeout
//! followed by a refused connection is a [`Es2Error::Timeout`], never `Unreachable`.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::wire::*;

/// How to reach an SM-DP+. Its `Debug` leaves the key out.
#[derive(Clone)]
pub struct ClientConfig {
    /// The ES2+ base URL (`https://smdp.example.com`); the function paths are added to it.
    pub base_url: String,
    /// Our `functionRequesterIdentifier`.
    pub requester_id: String,
    /// Our client certificate and its private key, PEM (both in one buffer).
    pub identity_pem: Option<Vec<u8>>,
    /// The trust anchor of the SM-DP+'s server certificate, PEM; the system's roots are not
    /// used when it is given.
    pub ca_pem: Option<Vec<u8>>,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts per call, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each later one.
    pub backoff: Duration,
    /// Allow `http://` (development against a local simulator only).
    pub allow_http: bool,
    /// Send 19-digit ICCIDs padded to 20 with `F`, for SM-DP+s before SGP.22 v2.2.
    pub pad_iccid: bool,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("requester_id", &self.requester_id)
            .field(
                "identity_pem",
                &self.identity_pem.as_ref().map(|_| "(certificate and key)"),
            )
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "(CA)"))
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("allow_http", &self.allow_http)
            .field("pad_iccid", &self.pad_iccid)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration with the defaults: 10 s per attempt, 3 attempts, 200 ms backoff,
    /// HTTPS only, no client certificate.
    pub fn new(base_url: impl Into<String>, requester_id: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            requester_id: requester_id.into(),
            identity_pem: None,
            ca_pem: None,
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
            allow_http: false,
            pad_iccid: false,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The base URL is not an `https://` URL (or `http://` where allowed).
    #[error("the SM-DP+ URL `{0}` must start with https:// (http:// only in development)")]
    Url(String),
    /// The client certificate, its key or the CA could not be read.
    #[error("the SM-DP+ TLS material could not be read: {0}")]
    Tls(String),
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Es2Error {
    /// No connection could be made in any attempt (refused, TLS, DNS): the SM-DP+ did
    /// nothing.
    #[error("the SM-DP+ could not be reached: {0}")]
    Unreachable(String),
    /// No answer in time: the SM-DP+ may or may not have acted.
    #[error("the SM-DP+ did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke after the request was sent: the SM-DP+ may or may not have acted.
    #[error("the connection to the SM-DP+ broke before its answer: {0}")]
    Interrupted(String),
    /// The SM-DP+ refused (`Failed`, `Expired`), with its codes.
    #[error("the SM-DP+ refused {function}: {}", .data.as_deref().map(StatusCodeData::describe).unwrap_or_else(|| .status.as_str().to_owned()))]
    Rejected {
        /// The function refused.
        function: &'static str,
        /// `Failed` or `Expired` (or a word we do not know).
        status: ExecutionStatus,
        /// Its codes, where given.
        data: Option<Box<StatusCodeData>>,
    },
    /// An answer that is not ES2+ (an HTTP error, a malformed body).
    #[error("the SM-DP+ answered {0}")]
    Protocol(String),
}

impl Es2Error {
    /// A stable code for the partner's error body.
    pub fn code(&self) -> &'static str {
        match self {
            Es2Error::Unreachable(_) => "SMDP_UNAVAILABLE",
            Es2Error::Timeout(_) | Es2Error::Interrupted(_) => "SMDP_TIMEOUT",
            Es2Error::Rejected { .. } => "SMDP_REJECTED",
            Es2Error::Protocol(_) => "SMDP_PROTOCOL_ERROR",
        }
    }
}

impl Es2Error {
    /// Whether the SM-DP+ may have acted although no answer says so (a timeout, a connection
    /// broken after the request): the caller must reconcile, e.g. with the same call
    /// identifier or by cancelling.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Es2Error::Timeout(_) | Es2Error::Interrupted(_))
    }
}

/// What a function gave back, and the SM-DP+'s warning when it answered
/// `Executed-WithWarning`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done<T> {
    /// The answer.
    pub value: T,
    /// The warning's codes, where there was one.
    pub warning: Option<StatusCodeData>,
}

/// What `confirmOrder` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// The matching ID of the activation code.
    pub matching_id: String,
    /// The address for the activation code, where the SM-DP+ names one.
    pub smdp_address: Option<String>,
    /// The eUICC the profile is linked to, where known.
    pub eid: Option<String>,
}

/// An ES2+ client.
#[derive(Debug, Clone)]
pub struct Es2PlusClient {
    http: reqwest::Client,
    base_url: String,
    requester_id: String,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
    pad_iccid: bool,
    extra_headers: Option<ExtraHeaders>,
}

/// Adds headers to every request (e.g. the W3C `traceparent` of the call under way); called
/// for each attempt, in the caller's task.
#[derive(Clone)]
struct ExtraHeaders(std::sync::Arc<dyn Fn(&mut reqwest::header::HeaderMap) + Send + Sync>);

impl std::fmt::Debug for ExtraHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraHeaders")
    }
}

/// A fresh `functionCallIdentifier`: keep it to retry the same call later.
pub fn new_call_id() -> String {
    use rand::Rng as _;
    let n: u128 = rand::thread_rng().gen();
    format!("oytel-{n:032x}")
}

impl Es2PlusClient {
    /// A client for `config`.
    pub fn new(config: &ClientConfig) -> Result<Es2PlusClient, ConfigError> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let https = base.starts_with("https://");
        if !(https || (config.allow_http && base.starts_with("http://"))) {
            return Err(ConfigError::Url(config.base_url.clone()));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(!config.allow_http)
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.identity_pem {
            let identity = reqwest::Identity::from_pem(pem)
                .map_err(|e| ConfigError::Tls(format!("client certificate and key: {e}")))?;
            builder = builder.identity(identity);
        }
        if let Some(pem) = &config.ca_pem {
            let anchors = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ConfigError::Tls(format!("CA certificate: {e}")))?;
            if anchors.is_empty() {
                return Err(ConfigError::Tls(
                    "CA certificate: no certificate in the PEM".into(),
                ));
            }
            builder = builder.tls_built_in_root_certs(false);
            for anchor in anchors {
                builder = builder.add_root_certificate(anchor);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::Tls(e.to_string()))?;
        Ok(Es2PlusClient {
            http,
            base_url: base,
            requester_id: config.requester_id.clone(),
            timeout: config.timeout,
            attempts: config.attempts.max(1),
            backoff: config.backoff,
            pad_iccid: config.pad_iccid,
            extra_headers: None,
        })
    }

    /// This client, adding what `add` puts in a header map to every request it sends (each
    /// attempt asks again, in the caller's task): for headers that vary by call, such as the
    /// W3C `traceparent` of the work under way.
    pub fn with_extra_headers(
        mut self,
        add: impl Fn(&mut reqwest::header::HeaderMap) + Send + Sync + 'static,
    ) -> Es2PlusClient {
        self.extra_headers = Some(ExtraHeaders(std::sync::Arc::new(add)));
        self
    }

    /// The HTTP client, with our TLS identity: for other calls to the same SM-DP+ (the
    /// simulator's control API shares its port).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The ES2+ base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The request header of the call `call_id`.
    pub fn header(&self, call_id: &str) -> RequestHeader {
        RequestHeader {
            function_requester_identifier: self.requester_id.clone(),
            function_call_identifier: call_id.to_owned(),
        }
    }

    /// `downloadOrder` of a profile of `profile_type`: the reserved ICCID.
    pub async fn download_order(
        &self,
        call_id: &str,
        profile_type: &str,
        eid: Option<&str>,
    ) -> Result<Done<Iccid>, Es2Error> {
        let request = DownloadOrderRequest {
            header: self.header(call_id),
            eid: eid.map(str::to_owned),
            iccid: None,
            profile_type: Some(profile_type.to_owned()),
        };
        let (answer, uncertain): (DownloadOrderResponse, _) =
            self.call(Function::DownloadOrder, &request).await?;
        let warning = outcome(Function::DownloadOrder, &answer.header, uncertain)?;
        let value = answer
            .iccid
            .ok_or_else(|| Es2Error::Protocol("downloadOrder succeeded without an iccid".into()))?;
        Ok(Done { value, warning })
    }

    /// `confirmOrder` of `iccid`, released for download at once (`releaseFlag: true`): the
    /// matching ID and, where the SM-DP+ names them, its address and the EID.
    pub async fn confirm_order(
        &self,
        call_id: &str,
        iccid: &Iccid,
        matching_id: Option<&str>,
    ) -> Result<Done<Confirmed>, Es2Error> {
        let request = ConfirmOrderRequest {
            header: self.header(call_id),
            iccid: iccid.clone(),
            eid: None,
            matching_id: matching_id.map(str::to_owned),
            confirmation_code: None,
            smds_address: None,
            release_flag: true,
        };
        let (answer, uncertain): (ConfirmOrderResponse, _) =
            self.call(Function::ConfirmOrder, &request).await?;
        let warning = outcome(Function::ConfirmOrder, &answer.header, uncertain)?;
        let matching_id = answer
            .matching_id
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                Es2Error::Protocol("confirmOrder succeeded without a matchingId".into())
            })?;
        let value = Confirmed {
            matching_id,
            smdp_address: answer.smdp_address,
            eid: answer.eid,
        };
        Ok(Done { value, warning })
    }

    /// `cancelOrder` of `iccid`: back in stock (`Available`) or retired (`Unavailable`).
    pub async fn cancel_order(
        &self,
        call_id: &str,
        iccid: &Iccid,
        matching_id: Option<&str>,
        final_status: FinalProfileStatus,
    ) -> Result<Done<()>, Es2Error> {
        let request = CancelOrderRequest {
            header: self.header(call_id),
            iccid: iccid.clone(),
            eid: None,
            matching_id: matching_id.map(str::to_owned),
            final_profile_status_indicator: final_status,
        };
        let (answer, uncertain): (HeaderOnlyResponse, _) =
            self.call(Function::CancelOrder, &request).await?;
        let warning = outcome(Function::CancelOrder, &answer.header, uncertain)?;
        Ok(Done { value: (), warning })
    }

    /// `releaseProfile` of `iccid`.
    pub async fn release_profile(
        &self,
        call_id: &str,
        iccid: &Iccid,
    ) -> Result<Done<()>, Es2Error> {
        let request = ReleaseProfileRequest {
            header: self.header(call_id),
            iccid: iccid.clone(),
        };
        let (answer, uncertain): (HeaderOnlyResponse, _) =
            self.call(Function::ReleaseProfile, &request).await?;
        let warning = outcome(Function::ReleaseProfile, &answer.header, uncertain)?;
        Ok(Done { value: (), warning })
    }

    /// Sends `body` to `function`, retrying as the module's table says: the answer, and the
    /// error of an earlier attempt that may have acted, if there was one.
    async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        function: Function,
        body: &Q,
    ) -> Result<(A, Option<Es2Error>), Es2Error> {
        let url = format!("{}{}", self.base_url, function.path());
        let mut body = serde_json::to_value(body)
            .map_err(|e| Es2Error::Protocol(format!("a request that is not JSON: {e}")))?;
        if self.pad_iccid {
            if let Some(iccid) = body.get_mut("iccid") {
                if let Some(padded) = iccid.as_str().and_then(Iccid::parse).map(|i| i.padded()) {
                    *iccid = serde_json::Value::String(padded);
                }
            }
        }
        let mut last = Es2Error::Unreachable("no attempt was made".into());
        // The latest attempt that may have reached the SM-DP+ without an answer.
        let mut uncertain: Option<Es2Error> = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(self.backoff * 2u32.saturating_pow(attempt - 1)).await;
            }
            let mut extra = reqwest::header::HeaderMap::new();
            if let Some(ExtraHeaders(add)) = &self.extra_headers {
                add(&mut extra);
            }
            let sent = self
                .http
                .post(&url)
                .headers(extra)
                .header("X-Admin-Protocol", ADMIN_PROTOCOL)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json;charset=UTF-8",
                )
                .json(&body)
                .send()
                .await;
            let answer = match sent {
                Ok(response) => {
                    let status = response.status();
                    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    {
                        last = Es2Error::Protocol(format!("HTTP {status} to {}", function.name()));
                        continue;
                    }
                    if status != reqwest::StatusCode::OK {
                        return Err(uncertain.unwrap_or(Es2Error::Protocol(format!(
                            "HTTP {status} to {}",
                            function.name()
                        ))));
                    }
                    response.bytes().await
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(bytes) => {
                    let answer = serde_json::from_slice(&bytes).map_err(|e| {
                        Es2Error::Protocol(format!(
                            "a {} answer that is not ES2+: {e}",
                            function.name()
                        ))
                    })?;
                    return Ok((answer, uncertain));
                }
                Err(e) => {
                    last = self.transport(&e);
                    if last.outcome_unknown() {
                        uncertain = Some(last.clone());
                    }
                }
            }
        }
        Err(uncertain.unwrap_or(last))
    }
}

impl Es2PlusClient {
    /// A failure of the connection or of the wait for an answer: `Unreachable` only where no
    /// request can have reached the SM-DP+ (no connection, or a TLS handshake it refused).
    fn transport(&self, error: &reqwest::Error) -> Es2Error {
        let chain = error_chain(error);
        if error.is_timeout() {
            Es2Error::Timeout(self.timeout)
        } else if error.is_connect() || refused_handshake(&chain) {
            Es2Error::Unreachable(chain)
        } else {
            Es2Error::Interrupted(chain)
        }
    }
}

/// Whether an error is the peer refusing our TLS handshake (an alert such as
/// `CertificateRequired`, `BadCertificate`, `UnknownCA`): with TLS 1.3 a client certificate is
/// refused after the client has finished its side, so the error comes with the first read,
/// yet the server processed nothing.
fn refused_handshake(chain: &str) -> bool {
    chain.contains("received fatal alert")
}

/// Success (with the warning, if any), or the refusal with its codes.
fn outcome(
    function: Function,
    header: &ResponseHeader,
    uncertain: Option<Es2Error>,
) -> Result<Option<StatusCodeData>, Es2Error> {
    let status = &header.function_execution_status;
    if status.status.executed() {
        return Ok(status.status_code_data.clone());
    }
    let refused = Es2Error::Rejected {
        function: function.name(),
        status: status.status.clone(),
        data: status.status_code_data.clone().map(Box::new),
    };
    match uncertain {
        // A refusal after an attempt that may have acted does not say that nothing was
        // done: an SM-DP+ that does not replay a call identifier refuses the repeat.
        Some(_) => Err(Es2Error::Interrupted(format!(
            "{refused}, after an earlier attempt that may have acted"
        ))),
        None => Err(refused),
    }
}

/// An error with its causes, which say what went wrong (a TLS alert, a refused connection).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
