//! The client, its builder, and the one request loop every call goes through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oytel_types::{Environment, ErrorBody, ErrorCode, PlansResponse};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, USER_AGENT};
use reqwest::{StatusCode, Url};

use crate::error::{Error, Result};
use crate::request::{Answer, Call, Options, RateLimit};
use crate::transport::{HttpRequest, ReqwestTransport, Transport, TransportError};

/// The production API.
pub const PRODUCTION_BASE_URL: &str = "https://api.oytel.online";
/// The sandbox API. It is the same host: the environment follows the key (`sk_sandbox_…`), so
/// only the key decides which data a client sees.
pub const SANDBOX_BASE_URL: &str = "https://api.oytel.online";

/// How failed attempts are retried: exponential backoff with full jitter, the delay before
/// retry `n` (from 0) drawn uniformly from `0..=min(max_delay, base_delay × 2ⁿ)`. A
/// `Retry-After` from the server is used instead when present; one longer than `max_delay`
/// is not waited for (the call fails with [`Error::RateLimited`] and its `retry_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// The first backoff ceiling.
    pub base_delay: Duration,
    /// The largest delay waited.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the delay before retry `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// A random delay before retry `attempt`: full jitter under [`RetryPolicy::ceiling`].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis();
        let ceiling = u64::try_from(ceiling).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=ceiling))
    }
}

struct CachedPlans {
    etag: Option<String>,
    fresh_until: Instant,
    plans: PlansResponse,
}

struct Inner {
    transport: Arc<dyn Transport>,
    /// `Authorization` and `User-Agent`, sent with every attempt.
    headers: HeaderMap,
    base_url: Url,
    environment: Environment,
    timeout: Duration,
    deadline: Option<Duration>,
    retry: RetryPolicy,
    plans: Mutex<HashMap<String, CachedPlans>>,
}

/// A client of the Oytel API. Cheap to clone; clones share connections and the plan cache.
///
/// ```no_run
/// # async fn run() -> oytel_client::Result<()> {
/// let client = oytel_client::OytelClient::new("sk_sandbox_...")?;
/// let plans = client.plans().list().await?;
/// println!("{} plans", plans.plans.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OytelClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OytelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("OytelClient")
            .field("base_url", &self.inner.base_url.as_str())
            .field("environment", &self.inner.environment)
            .field("timeout", &self.inner.timeout)
            .field("deadline", &self.inner.deadline)
            .field("retry", &self.inner.retry)
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

/// Builds an [`OytelClient`].
#[derive(Clone)]
pub struct ClientBuilder {
    api_key: String,
    environment: Option<Environment>,
    base_url: Option<String>,
    timeout: Duration,
    deadline: Option<Duration>,
    connect_timeout: Duration,
    retry: RetryPolicy,
    user_agent: String,
    transport: Option<Arc<dyn Transport>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClientBuilder")
            .field("environment", &self.environment)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Asserts the environment; the key's prefix must agree (`sk_sandbox_` or `sk_live_`).
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Another API address (a local server, a proxy).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// The time allowed for one attempt, from sending to the last byte (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time a whole call may take, its retries and their waits included (default: no
    /// limit beyond the attempts'); a call may set its own ([`Request::deadline`]).
    ///
    /// [`Request::deadline`]: crate::Request::deadline
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Another transport (see [`crate::transport`]): to test how your application handles
    /// a lost answer, or to send through your own HTTP stack. `connect_timeout` then does
    /// not apply.
    pub fn transport(mut self, transport: impl Transport + 'static) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// The time allowed to connect (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 3; 0 disables retrying).
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.retry.max_retries = max_retries;
        self
    }

    /// The whole retry policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The `User-Agent` (default `oytel-client-rust/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The client.
    pub fn build(self) -> Result<OytelClient> {
        let key_environment = Environment::of_key(&self.api_key).ok_or_else(|| {
            Error::Config("the API key must start with `sk_sandbox_` or `sk_live_`".into())
        })?;
        if let Some(asked) = self.environment {
            if asked != key_environment {
                return Err(Error::Config(format!(
                    "a {} key cannot be used for the {} environment",
                    key_environment, asked
                )));
            }
        }
        let default_base = match key_environment {
            Environment::Sandbox => SANDBOX_BASE_URL,
            Environment::Production => PRODUCTION_BASE_URL,
        };
        let base = self.base_url.as_deref().unwrap_or(default_base);
        let base_url = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::Config(format!("`{base}` is not an http(s) URL")))?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.api_key)).map_err(|_| {
                Error::Config("the API key has characters not allowed in a header".into())
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&self.user_agent)
                .map_err(|_| Error::Config("invalid user agent".into()))?,
        );
        let transport = match self.transport {
            Some(transport) => transport,
            None => Arc::new(ReqwestTransport::new(self.connect_timeout)?),
        };
        Ok(OytelClient {
            inner: Arc::new(Inner {
                transport,
                headers,
                base_url,
                environment: key_environment,
                timeout: self.timeout,
                deadline: self.deadline,
                retry: self.retry,
                plans: Mutex::new(HashMap::new()),
            }),
        })
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds (HTTP dates are not used by this API).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The error for a non-success answer to a call sent with `key`.
fn error_from(status: StatusCode, headers: &HeaderMap, body: &[u8], key: Option<&str>) -> Error {
    let request_id = request_id(headers);
    let idempotency_key = key.map(str::to_owned);
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message, details) = match parsed {
        Some(e) => (e.code, e.error, e.details.map(Box::new)),
        None => (
            ErrorCode::Other(format!("HTTP_{}", status.as_u16())),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            None,
        ),
    };
    match status.as_u16() {
        401 | 403 => Error::Unauthorized {
            status: status.as_u16(),
            code,
            message,
            request_id,
        },
        429 => Error::RateLimited {
            retry_after: retry_after(headers),
            limit: RateLimit::from_headers(headers).map(Box::new),
            message,
            request_id,
            idempotency_key,
        },
        _ => Error::Api {
            status: status.as_u16(),
            code,
            message,
            details,
            request_id,
            idempotency_key,
        },
    }
}

fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

impl OytelClient {
    /// A client for `api_key` on the default API address of the key's environment.
    pub fn new(api_key: impl Into<String>) -> Result<OytelClient> {
        OytelClient::builder(api_key).build()
    }

    /// A builder for `api_key`.
    pub fn builder(api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            api_key: api_key.into(),
            environment: None,
            base_url: None,
            timeout: Duration::from_secs(30),
            deadline: None,
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            user_agent: concat!("oytel-client-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            transport: None,
        }
    }

    /// The environment of the key.
    pub fn environment(&self) -> Environment {
        self.inner.environment
    }

    fn url(&self, path: &[String], query: Option<&str>) -> Result<Url> {
        let mut url = self.inner.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(path);
        url.set_query(query);
        Ok(url)
    }

    /// Sends a call, retrying as the policy allows within the deadline, and returns the
    /// successful answer (2xx or 304) with the attempts made, or the error (which names the
    /// call's idempotency key).
    pub(crate) async fn execute(&self, call: &Call, options: &Options) -> Result<(Answer, u32)> {
        let url = self.url(&call.path, call.query.as_deref())?;
        let attempts = self.attempts(call, options, url);
        match options.deadline.or(self.inner.deadline) {
            Some(deadline) => tokio::time::timeout(deadline, attempts)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        idempotency_key: call.idempotency_key.clone(),
                    })
                }),
            None => attempts.await,
        }
    }

    async fn attempts(&self, call: &Call, options: &Options, url: Url) -> Result<(Answer, u32)> {
        let mut retry = self.inner.retry;
        if let Some(max_retries) = options.max_retries {
            retry.max_retries = max_retries;
        }
        let key = call.idempotency_key.as_deref();
        let mut headers = self.inner.headers.clone();
        if call.body.is_some() {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        for (name, value) in [
            ("idempotency-key", key),
            ("if-none-match", call.if_none_match.as_deref()),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value)
                    .map_err(|_| Error::Config(format!("`{value}` cannot be sent as {name}")))?;
                headers.insert(name, value);
            }
        }
        let request = HttpRequest {
            method: call.method.clone(),
            url,
            headers,
            body: call.body.clone(),
            timeout: options.timeout.unwrap_or(self.inner.timeout),
        };
        let mut attempt = 0;
        loop {
            let outcome = self.inner.transport.send(request.clone()).await;
            let retries_left = attempt < retry.max_retries;
            let can_retry = retries_left && call.retriable();
            let delay = match outcome {
                Ok(response)
                    if response.status.is_success()
                        || response.status == StatusCode::NOT_MODIFIED =>
                {
                    let answer = Answer {
                        status: response.status,
                        headers: response.headers,
                        body: response.body,
                    };
                    return Ok((answer, attempt + 1));
                }
                Ok(response) => {
                    let error = error_from(response.status, &response.headers, &response.body, key);
                    // A request with the same key still running (or cut off by a crash, until
                    // its lease ends) is worth waiting for.
                    let in_progress =
                        error.code() == Some(&ErrorCode::IdempotencyRequestInProgress);
                    // A 429 was refused before anything was done: any call may be sent again.
                    let refused_unread = response.status == StatusCode::TOO_MANY_REQUESTS;
                    let may_repeat = can_retry || (retries_left && refused_unread);
                    if !may_repeat || !(transient(response.status) || in_progress) {
                        return Err(error);
                    }
                    match retry_after(&response.headers) {
                        Some(wait) if wait > retry.max_delay => return Err(error),
                        Some(wait) => wait,
                        None => retry.backoff(attempt),
                    }
                }
                Err(error) => {
                    if !can_retry {
                        return Err(transport_error(error, key));
                    }
                    retry.backoff(attempt)
                }
            };
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// The plan cache: what is cached for a query, fresh or not.
    pub(crate) fn cached_plans(
        &self,
        query: &str,
    ) -> Option<(bool, Option<String>, PlansResponse)> {
        let cache = self.inner.plans.lock().ok()?;
        cache.get(query).map(|c| {
            (
                Instant::now() < c.fresh_until,
                c.etag.clone(),
                c.plans.clone(),
            )
        })
    }

    /// Stores plans for a query with the answer's `ETag` and `Cache-Control: max-age`.
    pub(crate) fn cache_plans(&self, query: &str, headers: &HeaderMap, plans: PlansResponse) {
        let etag = headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let max_age = headers
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .filter_map(|d| d.trim().strip_prefix("max-age="))
                    .find_map(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0);
        if let Ok(mut cache) = self.inner.plans.lock() {
            cache.insert(
                query.to_owned(),
                CachedPlans {
                    etag,
                    fresh_until: Instant::now() + Duration::from_secs(max_age),
                    plans,
                },
            );
        }
    }

    /// Marks cached plans fresh again (after a `304`).
    pub(crate) fn refresh_plans(&self, query: &str, headers: &HeaderMap) -> Option<PlansResponse> {
        let (_, _, plans) = self.cached_plans(query)?;
        self.cache_plans(query, headers, plans.clone());
        Some(plans)
    }
}

fn transport_error(error: TransportError, key: Option<&str>) -> Error {
    let idempotency_key = key.map(str::to_owned);
    match error {
        TransportError::Timeout => Error::Timeout { idempotency_key },
        TransportError::Network(source) => Error::Network {
            source,
            idempotency_key,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(policy.ceiling(0), Duration::from_millis(100));
        assert_eq!(policy.ceiling(3), Duration::from_millis(800));
        assert_eq!(policy.ceiling(4), Duration::from_secs(1));
        assert_eq!(policy.ceiling(40), Duration::from_secs(1));
        for attempt in 0..6 {
            for _ in 0..100 {
                assert!(policy.backoff(attempt) <= policy.ceiling(attempt));
            }
        }
    }

    #[test]
    fn the_key_decides_the_environment() {
        assert_eq!(
            OytelClient::new("sk_live_abc").unwrap().environment(),
            Environment::Production
        );
        let err = OytelClient::builder("sk_sandbox_abc")
            .environment(Environment::Production)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(m) if m.contains("sandbox key")));
        assert!(matches!(OytelClient::new("pk_123"), Err(Error::Config(_))));
        assert!(matches!(
            OytelClient::builder("sk_live_a")
                .base_url("ftp://x")
                .build(),
            Err(Error::Config(_))
        ));
        let debug = format!("{:?}", OytelClient::new("sk_live_secretvalue").unwrap());
        assert!(!debug.contains("secretvalue"), "{debug}");
    }

    #[test]
    fn urls_escape_ids_and_keep_a_base_path() {
        let client = OytelClient::builder("sk_live_a")
            .base_url("https://gw.example/oytel/")
            .build()
            .unwrap();
        let path = ["api", "v1", "esim", "a/b?c"].map(String::from);
        let url = client.url(&path, None).unwrap();
        assert_eq!(
            url.as_str(),
            "https://gw.example/oytel/api/v1/esim/a%2Fb%3Fc"
        );
    }
}
