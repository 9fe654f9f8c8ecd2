//! The client, its builder, and the one request loop every call goes through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oytel_types::{Environment, ErrorBody, ErrorCode, PlansResponse};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, IF_NONE_MATCH, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

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
    http: reqwest::Client,
    base_url: Url,
    environment: Environment,
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
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Builds an [`OytelClient`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    api_key: String,
    environment: Option<Environment>,
    base_url: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    user_agent: String,
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
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(OytelClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                environment: key_environment,
                retry: self.retry,
                plans: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// One API call, as the request loop sends it.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: &'a [&'a str],
    pub query: Option<String>,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
    pub if_none_match: Option<String>,
    /// A write the server treats as idempotent by itself (asking again changes nothing: a
    /// suspension of a suspended eSIM), so it is retried like a read.
    pub repeatable: bool,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a [&'a str]) -> Call<'a> {
        Call {
            method: Method::GET,
            path,
            query: None,
            body: None,
            idempotency_key: None,
            if_none_match: None,
            repeatable: false,
        }
    }

    /// A POST without a body that the server treats as idempotent (see `repeatable`).
    pub fn repeatable_post(path: &'a [&'a str]) -> Call<'a> {
        Call {
            method: Method::POST,
            repeatable: true,
            ..Call::get(path)
        }
    }

    pub fn query(mut self, query: &impl Serialize) -> Result<Call<'a>> {
        let text = serde_urlencoded::to_string(query).map_err(|e| Error::Config(e.to_string()))?;
        self.query = (!text.is_empty()).then_some(text);
        Ok(self)
    }

    /// A call with this method and JSON body, sent once: not retried, since the server may
    /// have acted on it (a secret rotation, a simulated activation).
    pub fn once(
        method: Method,
        path: &'a [&'a str],
        body: Option<&impl Serialize>,
    ) -> Result<Call<'a>> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Call {
            method,
            path,
            query: None,
            body,
            idempotency_key: None,
            if_none_match: None,
            repeatable: false,
        })
    }

    /// A POST with a JSON body and an idempotency key (so that it may be retried).
    pub fn post(
        path: &'a [&'a str],
        body: &impl Serialize,
        idempotency_key: String,
    ) -> Result<Call<'a>> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Call {
            method: Method::POST,
            path,
            query: None,
            body: Some(body),
            idempotency_key: Some(idempotency_key),
            if_none_match: None,
            repeatable: false,
        })
    }

    /// Whether a failed attempt may be sent again: reads always, writes only with a key or
    /// when repeating them changes nothing.
    fn retriable(&self) -> bool {
        self.method == Method::GET || self.idempotency_key.is_some() || self.repeatable
    }
}

/// A successful answer.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn request_id(&self) -> Option<String> {
        request_id(&self.headers)
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            status: self.status.as_u16(),
            message: e.to_string(),
            request_id: self.request_id(),
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

/// The error for a non-success answer.
fn error_from(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let request_id = request_id(headers);
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message) = match parsed {
        Some(e) => (e.code, e.error),
        None => (
            ErrorCode::Other(format!("HTTP_{}", status.as_u16())),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
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
            message,
            request_id,
        },
        _ => Error::Api {
            status: status.as_u16(),
            code,
            message,
            details: serde_json::from_slice::<ErrorBody>(body)
                .ok()
                .and_then(|e| e.details)
                .map(Box::new),
            request_id,
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
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            user_agent: concat!("oytel-client-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// The environment of the key.
    pub fn environment(&self) -> Environment {
        self.inner.environment
    }

    fn url(&self, path: &[&str], query: Option<&str>) -> Result<Url> {
        let mut url = self.inner.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(path);
        url.set_query(query);
        Ok(url)
    }

    /// Sends a call, retrying as the policy allows, and returns the successful answer (2xx or
    /// 304) or the error.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Answer> {
        let url = self.url(call.path, call.query.as_deref())?;
        let retry = self.inner.retry;
        let mut attempt = 0;
        loop {
            let mut request = self.inner.http.request(call.method.clone(), url.clone());
            if let Some(body) = &call.body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let Some(key) = &call.idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(etag) = &call.if_none_match {
                request = request.header(IF_NONE_MATCH, etag);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(body) => Ok((status, headers, body.to_vec())),
                        Err(e) => Err(transport(e)),
                    }
                }
                Err(e) => Err(transport(e)),
            };
            let can_retry = attempt < retry.max_retries && call.retriable();
            let delay = match outcome {
                Ok((status, headers, body))
                    if status.is_success() || status == StatusCode::NOT_MODIFIED =>
                {
                    return Ok(Answer {
                        status,
                        headers,
                        body,
                    });
                }
                Ok((status, headers, body)) => {
                    let error = error_from(status, &headers, &body);
                    // A request with the same key still running (or cut off by a crash, until
                    // its lease ends) is worth waiting for.
                    let in_progress =
                        error.code() == Some(&ErrorCode::IdempotencyRequestInProgress);
                    if !can_retry || !(transient(status) || in_progress) {
                        return Err(error);
                    }
                    match retry_after(&headers) {
                        Some(wait) if wait > retry.max_delay => return Err(error),
                        Some(wait) => wait,
                        None => retry.backoff(attempt),
                    }
                }
                Err(error) => {
                    if !can_retry {
                        return Err(error);
                    }
                    retry.backoff(attempt)
                }
            };
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// GET and decode.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T> {
        self.execute(&call).await?.json()
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

fn transport(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout
    } else {
        Error::Network(Box::new(error.without_url()))
    }
}

/// A fresh idempotency key: `oytel-rs-` and 32 random letters and digits.
pub(crate) fn new_idempotency_key() -> String {
    let mut key = String::from("oytel-rs-");
    key.extend(std::iter::repeat_with(fastrand::alphanumeric).take(32));
    key
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
        let url = client.url(&["api", "v1", "esim", "a/b?c"], None).unwrap();
        assert_eq!(
            url.as_str(),
            "https://gw.example/oytel/api/v1/esim/a%2Fb%3Fc"
        );
    }

    #[test]
    fn idempotency_keys_are_unique() {
        let a = new_idempotency_key();
        assert!(a.starts_with("oytel-rs-") && a.len() == 41);
        assert_ne!(a, new_idempotency_key());
    }
}
