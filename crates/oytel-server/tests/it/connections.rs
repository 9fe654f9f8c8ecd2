//! Connection limits of the public listener: clients that stall mid-headers (slowloris), trickle
//! a body, idle on keep-alive or open more connections than allowed are answered or closed
//! within the configured times, and normal requests go on meanwhile. The tests print their
//! figures; they run on SQLite and, with `OYTEL_TEST_BACKEND=postgres`, on PostgreSQL.

use std::time::{Duration, Instant};

use oytel_server::listener::ConnectionLimits;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{assert_error, TestApp, TestServer};

/// The limits these tests run with: short, so that a test takes seconds.
fn short_limits() -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        max_connections: 8192,
    }
}

async fn server(limits: ConnectionLimits) -> TestApp {
    TestApp::wrap(TestServer::spawn_with(|s| s.connections = limits).await)
}

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Open descriptors of this process (the server runs in it, so both ends of each test
/// connection count).
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// How many stalled connections this process can afford: two descriptors each, with room to
/// spare under the open-files limit.
fn affordable(wanted: usize) -> usize {
    let limit = oytel_server::listener::open_files_limit().unwrap_or(1024);
    let spare = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(400)
        / 2;
    wanted.min(spare)
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn until_closed(mut stream: TcpStream) -> (Vec<u8>, Instant) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return (received, Instant::now()),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

async fn normal_request_works(app: &TestApp) -> Duration {
    let started = Instant::now();
    let (status, body) = app.get(&app.partner.sandbox_key, "/api/v1/plans").await;
    assert_eq!(status, 200, "{body}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_closed_within_the_header_timeout_and_others_are_served() {
    let limits = short_limits();
    let app = server(limits).await;
    let count = affordable(2000);
    let (descriptors_before, rss_before) = (open_descriptors(), resident_mb());
    let opened = Instant::now();
    let mut stalled = tokio::task::JoinSet::new();
    for i in 0..count {
        let mut stream = TcpStream::connect(address(&app)).await.unwrap();
        // Half send part of a request's headers, half send nothing at all.
        if i % 2 == 0 {
            stream
                .write_all(b"GET /api/v1/plans HTTP/1.1\r\nHost: oytel\r\nX-Slow: ")
                .await
                .unwrap();
        }
        stalled.spawn(until_closed(stream));
    }
    let all_open = opened.elapsed();
    let descriptors_open = open_descriptors();
    let served_in = normal_request_works(&app).await;
    let mut closed_at = Vec::with_capacity(count);
    while let Some(done) = stalled.join_next().await {
        let (received, at) = done.unwrap();
        assert!(
            received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&received)
        );
        closed_at.push(at.duration_since(opened));
    }
    let last = closed_at.iter().max().copied().unwrap_or_default();
    let first = closed_at.iter().min().copied().unwrap_or_default();
    // Opening takes a moment: each connection's clock starts when it is accepted.
    assert!(
        last <= all_open + limits.header_timeout + Duration::from_secs(2),
        "the last stalled connection closed after {last:?}"
    );
    assert!(
        first >= limits.header_timeout - Duration::from_millis(100),
        "{first:?}"
    );
    let descriptors_after = open_descriptors();
    println!(
        "slowloris: {count} stalled connections (half mid-headers, half silent) opened in {} ms; \
         a normal request meanwhile took {} ms; the server closed them all {}–{} ms after the \
         first was opened (header timeout {} s); descriptors {descriptors_before} before, \
         {descriptors_open} with them open, {descriptors_after} once the server had closed its \
         ends; RSS {rss_before:.1} MB before, {:.1} MB after",
        all_open.as_millis(),
        served_in.as_millis(),
        first.as_millis(),
        last.as_millis(),
        limits.header_timeout.as_secs(),
        resident_mb()
    );
    // Other tests run in this process too, opening and closing their own: a margin for them.
    assert!(
        descriptors_after + 2 * count <= descriptors_open + 500,
        "both ends of every stalled connection are closed: {descriptors_open} open, \
         {descriptors_after} after"
    );
    normal_request_works(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_answered_408_within_the_body_timeout_and_nothing_is_done() {
    let limits = short_limits();
    let app = server(limits).await;
    let before = app.esim_count(&app.partner.sandbox_key).await;
    let count = 100;
    let started = Instant::now();
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..count {
        let mut stream = TcpStream::connect(address(&app)).await.unwrap();
        let head = format!(
            "POST /api/v1/esim/provision HTTP/1.1\r\nHost: oytel\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"plan_id\": ",
            app.partner.sandbox_key
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        slow.spawn(async move {
            // One more byte a second, never the whole body.
            let (mut reader, mut writer) = stream.into_split();
            let trickle = tokio::spawn(async move {
                while writer.write_all(b" ").await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            let mut received = Vec::new();
            let _ = reader.read_to_end(&mut received).await;
            trickle.abort();
            (received, Instant::now())
        });
    }
    let served_in = normal_request_works(&app).await;
    let mut last = Duration::ZERO;
    while let Some(done) = slow.join_next().await {
        let (received, at) = done.unwrap();
        let text = String::from_utf8_lossy(&received).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 408"), "{text}");
        let body: Value = serde_json::from_str(body).unwrap();
        assert_error(408, &body, 408, "REQUEST_BODY_TIMEOUT");
        assert!(
            !body["error"].as_str().unwrap_or_default().contains("Error"),
            "{body}"
        );
        last = last.max(at.duration_since(started));
    }
    assert!(
        last <= limits.body_timeout + Duration::from_secs(3),
        "the last slow body was answered after {last:?}"
    );
    assert_eq!(
        app.esim_count(&app.partner.sandbox_key).await,
        before,
        "nothing was provisioned"
    );
    println!(
        "slow bodies: {count} uploads trickling a byte a second were each answered 408 \
         REQUEST_BODY_TIMEOUT and closed within {} ms (body timeout {} s); a normal request \
         meanwhile took {} ms",
        last.as_millis(),
        limits.body_timeout.as_secs(),
        served_in.as_millis()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let limits = short_limits();
    let app = server(limits).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: oytel\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();
    // A second request on the same connection, just before the idle timeout, is served.
    tokio::time::sleep(limits.idle_timeout - Duration::from_millis(500)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: oytel\r\n\r\n")
        .await
        .unwrap();
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"), "kept alive");
    let answered_again = Instant::now();
    let (rest, closed) = until_closed(stream).await;
    assert!(rest.is_empty());
    let idle = closed.duration_since(answered_again);
    assert!(
        idle >= limits.idle_timeout - Duration::from_millis(100)
            && idle <= limits.idle_timeout + Duration::from_secs(1),
        "{idle:?}"
    );
    println!(
        "keep-alive: a connection idle {} ms was reused; idle again, it was closed after {} ms \
         (idle timeout {} s)",
        answered_again.duration_since(answered).as_millis(),
        idle.as_millis(),
        limits.idle_timeout.as_secs()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_limit_a_client_is_told_503_and_a_freed_slot_is_reused() {
    let limits = ConnectionLimits {
        max_connections: 20,
        header_timeout: Duration::from_secs(30),
        ..short_limits()
    };
    let app = server(limits).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(address(&app)).await.unwrap());
    }
    // Let the server accept them all before the one too many.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The client has sent its request before it reads: the refusal must still reach it (a
    // close with its request unread would be a reset that can destroy the answer).
    let mut one_too_many = TcpStream::connect(address(&app)).await.unwrap();
    one_too_many
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: oytel\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (received, _) = until_closed(one_too_many).await;
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
    assert!(head.starts_with("HTTP/1.1 503"), "{text}");
    assert!(head.contains("retry-after: 1"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_error(503, &body, 503, "SERVICE_UNAVAILABLE");
    // A client that leaves frees its slot for the next.
    held.truncate(15);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = app
            .client
            .get(app.url("/healthz"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if matches!(response, Ok(200)) {
            break;
        }
        assert!(Instant::now() < deadline, "no slot was freed: {response:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused_not_buffered() {
    let app = server(short_limits()).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: oytel\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // The server may close before it has read it all.
    let _ = stream.write_all(huge.as_bytes()).await;
    let (received, _) = until_closed(stream).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    normal_request_works(&app).await;
    app.stop().await;
}
