//! A call ready to send, with its per-call options, and what comes back with an answer.
//!
//! Every call of the client returns a [`Request`]: `.await` it as it is, or first change
//! how it is sent. The options are the same on every call:
//!
//! | option | default | what |
//! |---|---|---|
//! | [`Request::idempotency_key`] | a fresh `oytel-rs-…` key, for the paid calls | the key of an order, top-up or cancellation; send the key of a failed call again to retry it safely ([`Error::idempotency_key`]); other calls do not send one |
//! | [`Request::timeout`] | the client's (30 s) | the time one attempt may take |
//! | [`Request::deadline`] | the client's (none) | the time the whole call may take, its retries and their waits included |
//! | [`Request::max_retries`] | the client's policy (3) | retries after the first attempt, for this call |
//!
//! [`Request::send_with_metadata`] returns the answer with its [`Metadata`]: the request id,
//! whether the server replayed an earlier answer to the same key, the rate-limit figures.
//!
//! ```no_run
//! # async fn run(client: oytel_client::OytelClient) -> oytel_client::Result<()> {
//! use oytel_client::types::ProvisionRequest;
//! use std::time::Duration;
//!
//! let order = ProvisionRequest::new("eu-roam-50", "jane@example.com", "Jane Doe");
//! let answer = client
//!     .orders()
//!     .create(&order)
//!     .idempotency_key("checkout-7f3a")
//!     .timeout(Duration::from_secs(10))
//!     .deadline(Duration::from_secs(45))
//!     .send_with_metadata()
//!     .await?;
//! println!("{} (replayed: {})", answer.esim_id, answer.metadata().replayed);
//! # Ok(()) }
//! ```
//!
//! [`Error::idempotency_key`]: crate::Error::idempotency_key

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::OytelClient;
use crate::error::{Error, Result};

/// How one call is sent, beyond the client's defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub timeout: Option<Duration>,
    pub deadline: Option<Duration>,
    pub max_retries: Option<u32>,
}

/// One API call, as the request loop sends it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub path: Vec<String>,
    pub query: Option<String>,
    pub body: Option<Vec<u8>>,
    /// Sent as `Idempotency-Key` (paid calls, which the server replays by it).
    pub idempotency_key: Option<String>,
    pub if_none_match: Option<String>,
    /// A write the server treats as idempotent by itself (asking again changes nothing: a
    /// suspension of a suspended eSIM), so it is retried like a read.
    pub repeatable: bool,
}

fn owned(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| (*s).to_owned()).collect()
}

fn json(body: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| Error::Config(e.to_string()))
}

impl Call {
    pub fn get(path: &[&str]) -> Call {
        Call {
            method: Method::GET,
            path: owned(path),
            query: None,
            body: None,
            idempotency_key: None,
            if_none_match: None,
            repeatable: false,
        }
    }

    /// A write without a body that the server treats as idempotent (see `repeatable`).
    pub fn repeatable(
        method: Method,
        path: &[&str],
        body: Option<&impl Serialize>,
    ) -> Result<Call> {
        Ok(Call {
            repeatable: true,
            ..Call::once(method, path, body)?
        })
    }

    pub fn query(mut self, query: &impl Serialize) -> Result<Call> {
        let text = serde_urlencoded::to_string(query).map_err(|e| Error::Config(e.to_string()))?;
        self.query = (!text.is_empty()).then_some(text);
        Ok(self)
    }

    /// A call with this method and JSON body, sent once: not retried, since the server may
    /// have acted on it (a secret rotation, a simulated activation).
    pub fn once(method: Method, path: &[&str], body: Option<&impl Serialize>) -> Result<Call> {
        Ok(Call {
            method,
            body: body.map(json).transpose()?,
            ..Call::get(path)
        })
    }

    /// A paid POST: a JSON body and an idempotency key, fresh unless the caller sets one, so
    /// that it may be retried.
    pub fn paid(path: &[&str], body: &impl Serialize) -> Result<Call> {
        Ok(Call {
            method: Method::POST,
            body: Some(json(body)?),
            idempotency_key: Some(new_idempotency_key()),
            ..Call::get(path)
        })
    }

    /// Whether a failed attempt may be sent again: reads always, writes only with a key or
    /// when repeating them changes nothing.
    pub fn retriable(&self) -> bool {
        self.method == Method::GET || self.idempotency_key.is_some() || self.repeatable
    }
}

/// A fresh idempotency key: `oytel-rs-` and 32 random letters and digits.
pub(crate) fn new_idempotency_key() -> String {
    let mut key = String::from("oytel-rs-");
    key.extend(std::iter::repeat_with(fastrand::alphanumeric).take(32));
    key
}

/// A rate limit as the server's headers gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// The quota (`X-RateLimit-Limit`).
    pub limit: u32,
    /// What is left of it (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// When it is whole again, Unix seconds (`X-RateLimit-Reset`).
    pub reset_at: i64,
    /// The policies that apply (`RateLimit-Policy`, e.g. `"hourly";q=100;w=3600`).
    pub policy: Option<String>,
}

impl RateLimit {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
        Some(RateLimit {
            limit: u32::try_from(number("x-ratelimit-limit")?).ok()?,
            remaining: u32::try_from(number("x-ratelimit-remaining")?).ok()?,
            reset_at: number("x-ratelimit-reset")?,
            policy: headers
                .get("ratelimit-policy")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// What came with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// The HTTP status (200 for an answer from the plan cache).
    pub status: u16,
    /// The server's request id (`X-Request-Id`), for support.
    pub request_id: Option<String>,
    /// Whether the server answered a call it had already done with this idempotency key
    /// (`Idempotent-Replayed: true`): nothing was charged again.
    pub replayed: bool,
    /// The idempotency key the call was sent with.
    pub idempotency_key: Option<String>,
    /// The rate limit the call counted against, when the server named it.
    pub rate_limit: Option<RateLimit>,
    /// Attempts made (1 without retries; 0 for an answer from the plan cache).
    pub attempts: u32,
    /// Whether the answer came from the client's plan cache without asking the server.
    pub from_cache: bool,
}

impl Metadata {
    pub(crate) fn of(answer: &Answer, key: Option<&str>, attempts: u32) -> Metadata {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Metadata {
            status: answer.status.as_u16(),
            request_id: header("x-request-id"),
            replayed: header("idempotent-replayed").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            idempotency_key: key.map(str::to_owned),
            rate_limit: RateLimit::from_headers(&answer.headers),
            attempts,
            from_cache: false,
        }
    }

    pub(crate) fn cached() -> Metadata {
        Metadata {
            status: 200,
            request_id: None,
            replayed: false,
            idempotency_key: None,
            rate_limit: None,
            attempts: 0,
            from_cache: true,
        }
    }
}

/// An answer and what came with it. Dereferences to the answer.
#[derive(Debug, Clone)]
pub struct Response<T> {
    data: T,
    metadata: Metadata,
}

impl<T> Response<T> {
    /// An answer with this metadata (for tests).
    pub fn new(data: T, metadata: Metadata) -> Response<T> {
        Response { data, metadata }
    }

    /// What came with the answer.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The answer.
    pub fn into_inner(self) -> T {
        self.data
    }

    /// The answer and its metadata.
    pub fn into_parts(self) -> (T, Metadata) {
        (self.data, self.metadata)
    }
}

impl<T> std::ops::Deref for Response<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

/// A successful answer (2xx or 304).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn request_id(&self) -> Option<String> {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            status: self.status.as_u16(),
            message: e.to_string(),
            request_id: self.request_id(),
        })
    }
}

/// Turns an answer into the call's result (the client is there for the plan cache).
pub(crate) type Decode<T> = fn(&OytelClient, &Call, Answer) -> Result<T>;

/// A call ready to send: `.await` it, or set its options first (see the module's table).
/// It owns what it needs, so it may be sent from another task.
#[must_use = "a request does nothing until it is awaited"]
pub struct Request<T> {
    client: OytelClient,
    call: Result<Call>,
    options: Options,
    decode: Decode<T>,
    /// An answer known without asking (a fresh plan cache).
    ready: Option<T>,
}

impl<T> std::fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Request");
        if let Ok(call) = &self.call {
            out.field("method", &call.method)
                .field("path", &call.path.join("/"))
                .field("idempotency_key", &call.idempotency_key);
        }
        out.field("options", &self.options).finish_non_exhaustive()
    }
}

fn decode_json<T: DeserializeOwned>(_: &OytelClient, _: &Call, answer: Answer) -> Result<T> {
    answer.json()
}

impl<T: Send + 'static> Request<T> {
    pub(crate) fn new(client: &OytelClient, call: Result<Call>, decode: Decode<T>) -> Request<T> {
        Request {
            client: client.clone(),
            call,
            options: Options::default(),
            decode,
            ready: None,
        }
    }

    pub(crate) fn json(client: &OytelClient, call: Result<Call>) -> Request<T>
    where
        T: DeserializeOwned,
    {
        Request::new(client, call, decode_json::<T>)
    }

    /// A request answered at once with `value` (the plan cache).
    pub(crate) fn ready(mut self, value: Option<T>) -> Request<T> {
        self.ready = value;
        self
    }

    /// The idempotency key to send, for a paid call (an order, a top-up, a cancellation):
    /// your own (a checkout id), or the key of an earlier attempt that failed, to retry it.
    /// Calls that are not paid send no key, and ignore this.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Request<T> {
        if let Ok(call) = &mut self.call {
            if call.idempotency_key.is_some() {
                call.idempotency_key = Some(key.into());
            }
        }
        self
    }

    /// The time one attempt may take, to the last byte of the answer.
    pub fn timeout(mut self, per_attempt: Duration) -> Request<T> {
        self.options.timeout = Some(per_attempt);
        self
    }

    /// The time the whole call may take, retries and their waits included; when it runs out
    /// the call ends with [`Error::Timeout`] (with its idempotency key).
    pub fn deadline(mut self, whole_call: Duration) -> Request<T> {
        self.options.deadline = Some(whole_call);
        self
    }

    /// Retries after the first attempt, for this call (0: one attempt only).
    pub fn max_retries(mut self, retries: u32) -> Request<T> {
        self.options.max_retries = Some(retries);
        self
    }

    /// The idempotency key this call will be sent with, if it is a paid call.
    pub fn key(&self) -> Option<&str> {
        self.call.as_ref().ok()?.idempotency_key.as_deref()
    }

    /// Sends the call; the answer.
    pub async fn send(self) -> Result<T> {
        self.send_with_metadata().await.map(Response::into_inner)
    }

    /// Sends the call; the answer with its [`Metadata`].
    pub async fn send_with_metadata(self) -> Result<Response<T>> {
        if let Some(value) = self.ready {
            return Ok(Response::new(value, Metadata::cached()));
        }
        let call = self.call?;
        let (answer, attempts) = self.client.execute(&call, &self.options).await?;
        let metadata = Metadata::of(&answer, call.idempotency_key.as_deref(), attempts);
        let data = (self.decode)(&self.client, &call, answer)?;
        Ok(Response::new(data, metadata))
    }
}

impl<T: Send + 'static> IntoFuture for Request<T> {
    type Output = Result<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_unique() {
        let a = new_idempotency_key();
        assert!(a.starts_with("oytel-rs-") && a.len() == 41);
        assert_ne!(a, new_idempotency_key());
    }

    #[test]
    fn the_rate_limit_is_read_from_the_servers_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(RateLimit::from_headers(&headers), None);
        for (name, value) in [
            ("x-ratelimit-limit", "100"),
            ("x-ratelimit-remaining", "97"),
            ("x-ratelimit-reset", "1795633391"),
            ("ratelimit-policy", "\"hourly\";q=100;w=3600"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        assert_eq!(
            RateLimit::from_headers(&headers),
            Some(RateLimit {
                limit: 100,
                remaining: 97,
                reset_at: 1_795_633_391,
                policy: Some("\"hourly\";q=100;w=3600".into()),
            })
        );
    }

    #[test]
    fn only_a_paid_call_takes_an_idempotency_key() {
        let client = OytelClient::new("sk_sandbox_x").unwrap();
        let paid = Request::<serde_json::Value>::json(&client, Call::paid(&["p"], &1))
            .idempotency_key("mine");
        assert_eq!(paid.key(), Some("mine"));
        let read = Request::<serde_json::Value>::json(&client, Ok(Call::get(&["p"])))
            .idempotency_key("mine");
        assert_eq!(read.key(), None);
    }
}
