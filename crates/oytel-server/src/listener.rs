//! HTTP connections: accepting, bounding and timing them, so that clients that connect and
//! then stall (slowloris), upload a byte at a time, or just hold connections open cannot use
//! up the server's file descriptors and memory.
//!
//! Every connection is watched by its own timer, which knows what the connection is waiting
//! for:
//!
//! | the connection is | it is closed once | setting (default) |
//! |---|---|---|
//! | new, or has sent part of a request's headers | the headers are not complete within | `OYTEL_HEADER_TIMEOUT_SECONDS` (10) |
//! | idle between requests (keep-alive) | no new request starts within | `OYTEL_IDLE_TIMEOUT_SECONDS` (75, longer than a load balancer's usual 60) |
//! | sending a request body | the body is not complete within, from the handler's first read (answered `408 REQUEST_BODY_TIMEOUT`) | `OYTEL_BODY_TIMEOUT_SECONDS` (10) |
//! | being answered | never by this module: the request timeout answers ([`crate::completion`]) | `OYTEL_REQUEST_TIMEOUT_SECONDS` (30) |
//!
//! The idle clock starts once the answer's last bytes are handed to the connection; an answer
//! (tens of kilobytes at most) is then written out well within the idle timeout.
//!
//! At most `OYTEL_MAX_CONNECTIONS` (8,192) connections are open at once. One more is
//! accepted, answered `503 SERVICE_UNAVAILABLE` with `Retry-After: 1`, and closed, so that a
//! client at the limit learns why instead of waiting in the kernel's queue. Buffers are
//! bounded too: a request's headers fit in [`MAX_HEADER_BYTES`] or the request is refused
//! (`431`); bodies are limited by [`crate::MAX_BODY_BYTES`]. The listener speaks HTTP/1.1
//! only (terminate HTTP/2 at the load balancer), so no HTTP/2 stream can hold memory.
//!
//! Connections the server has not accepted yet wait in the kernel's listen queue, which
//! [`bind`] makes as long as `OYTEL_MAX_CONNECTIONS` (the kernel caps it at
//! `net.core.somaxconn`, 4,096 on current Linux). The standard library's and tokio's 128 is
//! too short for a burst of new connections (clients reconnecting at once after a restart, a
//! load test's start): the kernel drops the SYNs beyond it, and each of those clients waits a
//! second before trying again, a second added to its request.
//!
//! At shutdown the listener stops accepting, lets each connection finish the request it is
//! serving (closing idle ones at once), and closes what remains after
//! [`crate::completion::SHUTDOWN_GRACE`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// The largest request head (request line and headers) a connection buffers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The limits of the public listener (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a connection's start, or a request's first byte, until its headers are complete.
    pub header_timeout: Duration,
    /// From the handler's first read of a request's body until the body is complete.
    pub body_timeout: Duration,
    /// Between the end of an answer and the start of the next request.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 8192,
        }
    }
}

/// The answer to a connection over the limit: the usual error body, with its own request id.
fn over_limit_response() -> Vec<u8> {
    let body = oytel_types::ErrorBody {
        success: false,
        error: "the server has as many connections open as it accepts; retry in a second".into(),
        code: oytel_types::ErrorCode::ServiceUnavailable,
        request_id: Some(crate::context::new_request_id()),
        details: None,
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What a connection is waiting for (see the module's table).
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Headers, since then.
    Headers(Instant),
    /// Nothing (keep-alive), since then.
    Idle(Instant),
    /// Its answer: no connection deadline.
    Serving,
}

/// A connection's phase, shared by its reads, its service and its timer.
///
/// Changes are plain stores: nothing wakes the timer. It never sleeps longer than the shorter
/// of the header and idle timeouts instead, which keeps every deadline exact: a phase that
/// began at `t` is looked at before its deadline. (Waking the connection's task
/// on every change cost a fifth of the throughput of small requests.)
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            phase: Mutex::new(Phase::Headers(Instant::now())),
        }
    }

    fn set(&self, phase: Phase) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    fn get(&self) -> Phase {
        self.phase.lock().map_or(Phase::Serving, |p| *p)
    }

    /// Bytes arrived: an idle connection starts a request.
    fn read(&self) {
        if let Ok(mut phase) = self.phase.lock() {
            if let Phase::Idle(_) = *phase {
                *phase = Phase::Headers(Instant::now());
            }
        }
    }

    /// Resolves when the connection has waited too long for what it waits for.
    async fn expired(&self, limits: &ConnectionLimits) {
        loop {
            let now = Instant::now();
            let deadline = match self.get() {
                Phase::Headers(since) => Some(since + limits.header_timeout),
                Phase::Idle(since) => Some(since + limits.idle_timeout),
                Phase::Serving => None,
            };
            let look_again = now + limits.header_timeout.min(limits.idle_timeout);
            match deadline {
                Some(deadline) if deadline <= now => return,
                Some(deadline) => tokio::time::sleep_until(deadline.min(look_again)).await,
                None => tokio::time::sleep_until(look_again).await,
            }
        }
    }
}

/// A TCP stream that tells its connection's [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The error of a request body that did not arrive within the body timeout.
#[derive(Debug)]
pub struct BodyTimedOut(pub Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} seconds",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

impl BodyTimedOut {
    /// Whether `error`, or an error it wraps, is a body timeout.
    pub fn caused<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimedOut> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(timed_out) = e.downcast_ref::<BodyTimedOut>() {
                return Some(timed_out);
            }
            current = e.source();
        }
        None
    }
}

/// A request body that fails with [`BodyTimedOut`] once its deadline has passed. The clock
/// starts when the handler first reads the body, so a server slow to get there does not
/// blame the client.
struct TimedBody {
    inner: Incoming,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
}

impl hyper::body::Body for TimedBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that returns its connection to idle when it is done (sent or dropped).
struct Answer {
    inner: Body,
    activity: Arc<Activity>,
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.activity.set(Phase::Idle(Instant::now()));
    }
}

impl hyper::body::Body for Answer {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves one connection until it ends, its timer expires, or shutdown has waited long enough.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = hyper_util::rt::TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let serving = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        serving.set(Phase::Serving);
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let body = if hyper::body::Body::is_end_stream(&body) {
            Body::new(body)
        } else {
            Body::new(TimedBody {
                inner: body,
                deadline: None,
                timeout: limits.body_timeout,
            })
        };
        let (app, activity) = (app.clone(), serving.clone());
        async move {
            let response = match app.oneshot(hyper::Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|inner| Answer { inner, activity }))
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(served);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.expired(&limits) => {
                tracing::debug!(client = %peer, "connection closed: it waited too long for a request");
                return;
            }
            changed = shutdown.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Connections over the limit: each is answered `503` and closed without a reset.
struct Refusals {
    /// Refusals being closed at once (each reads what its client sent, for up to a second).
    closing: Arc<Semaphore>,
    /// When a refusal was last logged: one line a minute, with the count since.
    logged: Mutex<Option<(Instant, u64)>>,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals {
            closing: Arc::new(Semaphore::new(64)),
            logged: Mutex::new(None),
        }
    }
}

impl Refusals {
    fn refuse(&self, stream: TcpStream, limit: usize) {
        // A fresh socket's send buffer takes the answer whole, without waiting.
        let _ = stream.try_write(&over_limit_response());
        // Closing with unread input would send a reset, which can destroy the answer before
        // the client reads it: read what it sends for a moment first, a few at a time.
        if let Ok(permit) = self.closing.clone().try_acquire_owned() {
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = stream.shutdown().await;
                let mut sink = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                })
                .await;
                drop(permit);
            });
        }
        if let Ok(mut logged) = self.logged.lock() {
            let now = Instant::now();
            let report = match &mut *logged {
                Some((at, count)) if now.duration_since(*at) < Duration::from_secs(60) => {
                    *count += 1;
                    None
                }
                earlier => Some(earlier.as_ref().map_or(0, |(_, count)| *count)),
            };
            if let Some(since) = report {
                tracing::warn!(
                    limit,
                    refused_since_last_report = since,
                    "connection refused: the connection limit is reached"
                );
                *logged = Some((now, 0));
            }
        }
    }
}

/// Listens on `address` with a listen queue of `backlog` connections (at least 128; the
/// kernel caps it at `net.core.somaxconn`).
pub fn bind(address: SocketAddr, backlog: usize) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As mio does: a restarted server can listen again at once (not on Windows, where the
    // option lets another process take the port).
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(u32::try_from(backlog.clamp(128, 65_535)).unwrap_or(65_535))
}

/// Accepts connections on `listener` and serves `app` on each, within `limits`, until
/// `shutdown` resolves; then lets connections finish their requests, for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Refusals::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, or a connection reset before it was accepted:
                        // wait a moment rather than spin.
                        tracing::warn!(error = %e, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refusals.refuse(stream, limits.max_connections);
                    continue;
                };
                let (app, stop) = (app.clone(), stop_rx.clone());
                connections.spawn(async move {
                    connection(stream, peer, app, limits, stop).await;
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections still open after the shutdown grace"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// The soft limit on open files of this process (Linux), to check the connection limit
/// against at start-up.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_answer_with_our_error_body() {
        let text = String::from_utf8(over_limit_response()).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("retry-after: 1"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(json["code"], "SERVICE_UNAVAILABLE");
        assert!(json["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_")));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_burst_of_connections_beyond_128_waits_in_the_queue_instead_of_being_dropped() {
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok());
        if let Some(cap) = somaxconn {
            assert!(
                cap >= 300,
                "net.core.somaxconn is {cap}: this machine caps every listen queue below the \
                 burst this test makes (raise it, as docs/operations.md says)"
            );
        }
        let listener = bind("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let address = listener.local_addr().unwrap();
        // Nothing is accepted while they connect: every handshake completes in the queue.
        // Beyond a full queue the kernel drops the SYN and the client's connect waits (1 s,
        // then 3, 7, 15…), so a connection dropped there cannot complete within the 10 s.
        let mut connects = JoinSet::new();
        for _ in 0..300 {
            connects.spawn(tokio::time::timeout(
                Duration::from_secs(10),
                TcpStream::connect(address),
            ));
        }
        let mut open = Vec::new();
        while let Some(Ok(Ok(Ok(stream)))) = connects.join_next().await {
            open.push(stream);
        }
        assert_eq!(
            open.len(),
            300,
            "connections completed while none was accepted"
        );
        drop(listener);
    }

    #[test]
    fn a_body_timeout_is_found_inside_the_errors_that_wrap_it() {
        let wrapped = axum::Error::new(BodyTimedOut(Duration::from_secs(10)));
        assert!(BodyTimedOut::caused(&wrapped).is_some());
        let other = io::Error::other("reset");
        assert!(BodyTimedOut::caused(&other).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_waits_for_headers_then_is_served_then_idles() {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            ..ConnectionLimits::default()
        };
        let activity = Arc::new(Activity::new());
        let started = Instant::now();
        activity.expired(&limits).await;
        assert_eq!(started.elapsed(), Duration::from_secs(10), "headers");

        let activity = Arc::new(Activity::new());
        activity.set(Phase::Serving);
        let watcher = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.expired(&limits).await })
        };
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!watcher.is_finished(), "no deadline while serving");
        let answered = Instant::now();
        activity.set(Phase::Idle(Instant::now()));
        let _ = watcher.await;
        assert_eq!(answered.elapsed(), Duration::from_secs(75), "idle");
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_byte_of_a_request_starts_the_header_clock() {
        let limits = ConnectionLimits::default();
        let activity = Arc::new(Activity::new());
        activity.set(Phase::Idle(Instant::now()));
        let watcher = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.expired(&limits).await })
        };
        tokio::time::sleep(Duration::from_secs(70)).await;
        let first_byte = Instant::now();
        activity.read();
        let _ = watcher.await;
        assert_eq!(first_byte.elapsed(), limits.header_timeout);
    }
}
