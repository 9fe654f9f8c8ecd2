//! The transport: what carries one HTTP attempt to the API and its answer back.
//!
//! The client builds every attempt whole (address, `Authorization`, `Idempotency-Key`, body)
//! and hands it to a [`Transport`]; the retries, deadlines and errors above it are the
//! client's. The default is [`ReqwestTransport`] (rustls, compressed answers). Give the
//! builder another ([`ClientBuilder::transport`](crate::ClientBuilder::transport)) to test
//! how your application handles a lost answer, a timeout or a 503: [`Faults`] plays a script
//! of them over the real transport, or wrap the default in a transport of your own.
//!
//! ```no_run
//! use oytel_client::transport::{Fault, Faults, ReqwestTransport};
//! use std::time::Duration;
//!
//! # fn run() -> oytel_client::Result<()> {
//! // The first order reaches the server but its answer is lost; the rest go through.
//! let client = oytel_client::OytelClient::builder("sk_sandbox_...")
//!     .max_retries(0)
//!     .transport(Faults::new(ReqwestTransport::new(Duration::from_secs(5))?, [Fault::LoseAnswer]))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! ```
//! use oytel_client::transport::{HttpRequest, HttpResponse, Transport, TransportError};
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! /// Sends the first request, then loses its answer as a timeout would.
//! #[derive(Debug, Default)]
//! struct LoseFirstAnswer<T> { inner: T, lost: AtomicBool }
//!
//! #[oytel_client::async_trait]
//! impl<T: Transport> Transport for LoseFirstAnswer<T> {
//!     async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
//!         let answer = self.inner.send(request).await?;
//!         if !self.lost.swap(true, Ordering::SeqCst) {
//!             return Err(TransportError::Timeout);
//!         }
//!         Ok(answer)
//!     }
//! }
//! ```

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};

/// One attempt, as the client built it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The whole address, query included.
    pub url: Url,
    /// Every header, `Authorization` included (marked sensitive).
    pub headers: HeaderMap,
    /// The JSON body, if any.
    pub body: Option<Vec<u8>>,
    /// The time this attempt may take, to the last byte of the answer.
    pub timeout: Duration,
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, decompressed.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// An answer with this status, these headers and this body.
    pub fn new(status: StatusCode, headers: HeaderMap, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            headers,
            body: body.into(),
        }
    }
}

/// Why an attempt got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No answer within the attempt's timeout: the API may have acted.
    #[error("no answer within the timeout")]
    Timeout,
    /// No connection, or it broke: the API may have acted if the request was sent.
    #[error("{0}")]
    Network(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Carries attempts to the API. Implementations must be cheap to share between tasks.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends one attempt and returns the answer, whatever its status.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

#[async_trait::async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        (**self).send(request).await
    }
}

/// The default transport: reqwest with rustls, asking for compressed answers (gzip, brotli).
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    http: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport that gives up connecting after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Result<ReqwestTransport, crate::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| crate::Error::Config(e.to_string()))?;
        Ok(ReqwestTransport { http })
    }

    /// A transport over your own reqwest client (a proxy, your own roots).
    pub fn from_client(http: reqwest::Client) -> ReqwestTransport {
        ReqwestTransport { http }
    }
}

fn network(error: reqwest::Error) -> TransportError {
    if error.is_timeout() {
        TransportError::Timeout
    } else {
        TransportError::Network(Box::new(error.without_url()))
    }
}

#[async_trait::async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut sent = self
            .http
            .request(request.method, request.url)
            .headers(request.headers)
            .timeout(request.timeout);
        if let Some(body) = request.body {
            sent = sent.body(body);
        }
        let response = sent.send().await.map_err(network)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(network)?;
        Ok(HttpResponse {
            status,
            headers,
            body: body.to_vec(),
        })
    }
}

/// A fault [`Faults`] plays instead of an attempt's ordinary outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Send the request, then lose the answer as a timeout would: the API acted, the caller
    /// cannot know.
    LoseAnswer,
    /// Time out without sending: the API did not act.
    Timeout,
    /// Answer with this status and an empty body, without sending.
    Status(u16),
    /// Send and answer as usual.
    Pass,
}

/// A transport that plays a script of [`Fault`]s, one per attempt in the order given, over
/// another transport; once the script has run out every attempt goes through.
#[derive(Debug)]
pub struct Faults<T> {
    inner: T,
    script: std::sync::Mutex<std::collections::VecDeque<Fault>>,
}

impl<T: Transport> Faults<T> {
    /// `inner` with these faults first.
    pub fn new(inner: T, script: impl IntoIterator<Item = Fault>) -> Faults<T> {
        Faults {
            inner,
            script: std::sync::Mutex::new(script.into_iter().collect()),
        }
    }

    /// The faults not played yet.
    pub fn remaining(&self) -> usize {
        self.script.lock().map_or(0, |s| s.len())
    }
}

#[async_trait::async_trait]
impl<T: Transport> Transport for Faults<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let fault = self
            .script
            .lock()
            .ok()
            .and_then(|mut s| s.pop_front())
            .unwrap_or(Fault::Pass);
        match fault {
            Fault::LoseAnswer => {
                self.inner.send(request).await?;
                Err(TransportError::Timeout)
            }
            Fault::Timeout => Err(TransportError::Timeout),
            Fault::Status(status) => Ok(HttpResponse::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                HeaderMap::new(),
                Vec::new(),
            )),
            Fault::Pass => self.inner.send(request).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers 200 and counts what it was sent.
    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicU32);

    #[async_trait::async_trait]
    impl Transport for Counting {
        async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(HttpResponse::new(
                StatusCode::OK,
                HeaderMap::new(),
                b"{}".to_vec(),
            ))
        }
    }

    fn request() -> HttpRequest {
        HttpRequest {
            method: Method::GET,
            url: Url::parse("https://api.example/x").unwrap_or_else(|_| unreachable!()),
            headers: HeaderMap::new(),
            body: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn faults_are_played_in_order_then_everything_passes() {
        let faults = Faults::new(
            Counting::default(),
            [Fault::Timeout, Fault::LoseAnswer, Fault::Status(503)],
        );
        assert!(matches!(
            faults.send(request()).await,
            Err(TransportError::Timeout)
        ));
        assert_eq!(
            faults.inner.0.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "not sent"
        );
        assert!(matches!(
            faults.send(request()).await,
            Err(TransportError::Timeout)
        ));
        assert_eq!(
            faults.inner.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "sent, answer lost"
        );
        let refused = faults.send(request()).await.map(|r| r.status);
        assert_eq!(refused.ok(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(faults.remaining(), 0);
        let passed = faults.send(request()).await.map(|r| r.status);
        assert_eq!(passed.ok(), Some(StatusCode::OK));
        assert_eq!(faults.inner.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
